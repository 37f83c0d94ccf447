package main

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/routing"
	"agentdesk/web"
	"agentdesk/web/hub"
)

// enqueuer is how channels hand a contact to routing, inside their own
// transaction.
type enqueuer interface {
	EnqueueTx(ctx context.Context, tx pgx.Tx, req agentdesk.TaskRequest) (int64, error)
}

// unrouted stands in for the engine on processes run with
// --disable-routing: contacts are stored and wait, unrouted, for a process
// that routes (the engine's sweep picks up only tasks, so they stay tickets).
type unrouted struct{ log *slog.Logger }

func (u unrouted) EnqueueTx(_ context.Context, _ pgx.Tx, req agentdesk.TaskRequest) (int64, error) {
	u.log.Warn("routing disabled on this process: contact stored unrouted", "ticket_id", req.TicketID, "channel", req.Channel)
	return 0, nil
}

// hubEvents publishes routing events to the hub's streams.
type hubEvents struct{}

func (hubEvents) Publish(ctx context.Context, tx pgx.Tx, e routing.Event) error {
	return hub.Publish(ctx, tx, hub.Event(e))
}

// wireRouting builds the engine; it runs in every serve process (several may
// share one database) unless --disable-routing. Its events go to the
// websocket streams through the hub's event table, in the transaction of
// each change.
func wireRouting(c channelConfig, store *postgres.Store, log *slog.Logger, parts *lifecycle) (*routing.Engine, []web.Option) {
	if c.disableRouting {
		return nil, nil
	}
	engine := routing.New(store.DB(), routing.SystemClock{}, log.With("part", "routing"), web.ChatRoutingEvents(hubEvents{}), routing.Config{})
	parts.add("routing", engine)
	return engine, []web.Option{web.WithRouting(engine)}
}
