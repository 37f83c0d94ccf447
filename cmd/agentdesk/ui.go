package main

import (
	"context"
	"log/slog"

	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
	"agentdesk/web/ui"
)

// The browser apps are embedded in the binary; `make` builds them first.
func init() {
	partWirers = append(partWirers, func(context.Context, serveConfig, *postgres.Store, *slog.Logger, *lifecycle) []web.Option {
		return []web.Option{web.WithUI(ui.Handler())}
	})
}
