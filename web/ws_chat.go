package web

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web/hub"
)

// chatReplies delivers agents' chat replies: the message is stored and
// published to the ticket's stream (the desks following it) and to the
// chat visitor's stream (the widget) in one transaction, so a reply is
// never stored without reaching the visitor's stream or the reverse.
// WithHub installs it unless another chat sender is configured.
type chatReplies struct{ s *Server }

// MessageCreated is the event type of a new message on ticket and visitor
// streams (web/ui reads it on both).
const MessageCreated = "message.created"

func (c chatReplies) SendReply(ctx context.Context, actor agentdesk.Actor, t *agentdesk.Ticket, m *agentdesk.Message) (int64, error) {
	err := postgres.InTx(ctx, c.s.store.DB(), func(tx pgx.Tx) error {
		after, err := postgres.AddMessageTx(ctx, tx, actor, m)
		if err != nil {
			return err
		}
		if err := hub.Publish(ctx, tx, hub.Event{AccountID: actor.AccountID, Stream: hub.TicketStream(t.ID), Type: MessageCreated, Data: m}); err != nil {
			return err
		}
		if err := publishTicketChange(ctx, tx, actor.AccountID, t, after); err != nil {
			return err
		}
		var visitor string
		err = tx.QueryRow(ctx, ticketVisitor, actor.AccountID, t.ID).Scan(&visitor)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !hub.ValidStream(hub.VisitorStream(visitor))) {
			return nil // no chat visitor (yet): the desk still has it
		}
		if err != nil {
			return err
		}
		return hub.Publish(ctx, tx, hub.Event{AccountID: actor.AccountID, Stream: hub.VisitorStream(visitor), Type: MessageCreated, Data: m})
	})
	if err != nil {
		return 0, err
	}
	return m.ID, nil
}
