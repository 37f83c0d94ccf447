package main

import (
	"context"
	"log/slog"

	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
)

// The chat channel's REST side is part of the API (web/widget_chat.go) and
// needs the hub's widget token secret (serve_hub.go) and the routing engine
// (serve_routing.go). This adds the demo page GET /demo/widget, which embeds
// the seeded demo widget (seed_widget.go).
func init() {
	partWirers = append(partWirers, func(context.Context, serveConfig, *postgres.Store, *slog.Logger, *lifecycle) []web.Option {
		return []web.Option{web.WithChatDemo(demoWidgetID)}
	})
}
