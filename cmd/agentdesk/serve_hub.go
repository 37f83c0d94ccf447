package main

import (
	"crypto/rand"
	"log/slog"

	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
	"agentdesk/web/hub"
)

// wireHub builds the websocket hub, which runs in every serve process:
// /ws/agent, /ws/supervisor and /ws/customer (web/PROTOCOL.md). Events reach
// a client on any process through the database, so processes need nothing
// from each other but the widget token secret, which must be the same on all.
func wireHub(c channelConfig, store *postgres.Store, log *slog.Logger, parts *lifecycle) []web.Option {
	secret := []byte(c.widgetSecret)
	if len(secret) < 32 {
		// One process works with a random secret; several must share one.
		secret = make([]byte, 32)
		rand.Read(secret)
		log.Warn("--widget-secret not set (32+ bytes): chat widget tokens are valid on this process only")
	}
	actions := &web.HubActions{}
	h := hub.New(store.DB(), actions, hub.Config{}, log.With("part", "hub"))
	parts.add("hub", h)
	return []web.Option{web.WithHub(h, actions, secret)}
}
