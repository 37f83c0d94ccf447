package main

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk/postgres"
	"agentdesk/routing"
	"agentdesk/web"
	"agentdesk/web/hub"
)

// The routing engine runs in every serve process (several may share one
// database); AGENTDESK_ROUTING=off leaves it out (API-only processes).
// Its events go to the websocket streams through the hub's event table, in
// the transaction of each change.
func init() {
	partWirers = append(partWirers, wireRouting)
}

// hubEvents publishes routing events to the hub's streams.
type hubEvents struct{}

func (hubEvents) Publish(ctx context.Context, tx pgx.Tx, e routing.Event) error {
	return hub.Publish(ctx, tx, hub.Event(e))
}

func wireRouting(_ context.Context, _ serveConfig, store *postgres.Store, log *slog.Logger, parts *lifecycle) []web.Option {
	if strings.EqualFold(os.Getenv("AGENTDESK_ROUTING"), "off") {
		return nil
	}
	engine := routing.New(store.DB(), routing.SystemClock{}, log.With("part", "routing"), web.ChatRoutingEvents(hubEvents{}), routing.Config{})
	parts.add("routing", engine)
	// Email and web forms enqueue through the engine from now on.
	emailEnqueuer = engine
	return []web.Option{web.WithRouting(engine)}
}
