package email

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// Event is a live update for the desks: a customer's mail appended to a
// ticket, an agent's reply queued, a delivery sent or failed. The names and
// data are those of the websocket protocol (web/PROTOCOL.md).
type Event struct {
	AccountID int64
	// Stream is "ticket:<id>" (desks with the ticket open) or
	// "agent:<id>" (the assignee's lists).
	Stream string
	Type   string
	Data   any
}

// Publisher delivers events. Publish is called inside the transaction that
// makes the change, so an implementation that writes the event to a table
// in tx delivers it exactly when the change commits. cmd/agentdesk wires the
// hub's; this package never imports web.
type Publisher interface {
	Publish(ctx context.Context, tx pgx.Tx, e Event) error
}

// Event types (the same names as web's).
const (
	MessageCreated = "message.created" // data: the message
	MessageUpdated = "message.updated" // data: the message, e.g. with a new meta.email.delivery
	TicketUpdated  = "ticket.updated"  // data: the ticket
)

// TicketStream and AgentStream name the streams events go to.
func TicketStream(ticketID int64) string { return fmt.Sprintf("ticket:%d", ticketID) }
func AgentStream(agentID int64) string   { return fmt.Sprintf("agent:%d", agentID) }

func publish(ctx context.Context, tx pgx.Tx, pub Publisher, acct int64, typ string, data any, streams ...string) error {
	if pub == nil {
		return nil
	}
	for _, s := range streams {
		if err := pub.Publish(ctx, tx, Event{AccountID: acct, Stream: s, Type: typ, Data: data}); err != nil {
			return fmt.Errorf("publish %s: %w", typ, err)
		}
	}
	return nil
}

// publishNewMessage tells the ticket's desks and its assignee about a
// message just stored on a ticket, and about the ticket, which the message
// changed (status, updated time, first response).
func publishNewMessage(ctx context.Context, tx pgx.Tx, pub Publisher, m *agentdesk.Message) error {
	if pub == nil {
		return nil
	}
	t, err := postgres.TicketTx(ctx, tx, agentdesk.Actor{AccountID: m.AccountID, Role: agentdesk.RoleAdmin}, m.TicketID)
	if err != nil {
		return fmt.Errorf("load ticket for events: %w", err)
	}
	streams := []string{TicketStream(t.ID)}
	if t.AssigneeID != nil {
		streams = append(streams, AgentStream(*t.AssigneeID))
	}
	if err := publish(ctx, tx, pub, m.AccountID, MessageCreated, m, streams...); err != nil {
		return err
	}
	return publish(ctx, tx, pub, m.AccountID, TicketUpdated, t, streams...)
}
