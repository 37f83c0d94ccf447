package web

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/routing"
	"agentdesk/web/hub"
)

// HubActions carries out what websocket clients ask for (hub.Actions) with
// this server's store and routing engine. It is created before the hub and
// bound to the server by WithHub, because the hub needs it at construction
// and the server needs the hub for its routes.
type HubActions struct {
	s *Server
}

var _ hub.Actions = (*HubActions)(nil)

func (a *HubActions) server() (*Server, error) {
	if a.s == nil {
		return nil, agentdesk.Errorf(agentdesk.Unavailable, "not ready")
	}
	return a.s, nil
}

// system is who the hub acts as when it only looks a ticket up for
// authorisation: the hub itself decides who may see it.
func system(accountID int64) agentdesk.Actor {
	return agentdesk.Actor{AccountID: accountID, Role: agentdesk.RoleAdmin}
}

// ticketVisitor is the visitor who started the ticket's chat from a
// widget: agents' replies go to it alone. Visitors are linked to customers
// by an email nobody verified, so the customer's other visitor ids (anyone
// who typed the same address) never receive them.
const ticketVisitor = `SELECT c.visitor_id FROM chats c WHERE c.account_id = $1 AND c.ticket_id = $2`

// Ticket describes a ticket for the hub's rules. Its visitor is the one
// who started its chat; tickets without a widget chat have none.
func (a *HubActions) Ticket(ctx context.Context, accountID, ticketID int64) (hub.TicketInfo, error) {
	s, err := a.server()
	if err != nil {
		return hub.TicketInfo{}, err
	}
	t, err := s.store.Ticket(ctx, system(accountID), ticketID)
	if err != nil {
		return hub.TicketInfo{}, err
	}
	info := hub.TicketInfo{ID: t.ID}
	if t.AssigneeID != nil {
		info.AssigneeID = *t.AssigneeID
	}
	if t.TeamID != nil {
		info.TeamID = *t.TeamID
		team, err := s.store.Team(ctx, accountID, *t.TeamID)
		if err != nil {
			return hub.TicketInfo{}, err
		}
		info.Private = team.Private
	}
	// Only the visitor who started the chat may write to it (see ticketVisitor).
	if c, err := postgres.ChatOfTicket(ctx, s.store.DB(), accountID, ticketID); err == nil {
		info.VisitorID = c.VisitorID
	} else if !agentdesk.IsKind(err, agentdesk.NotFound) {
		return hub.TicketInfo{}, err
	}
	return info, nil
}

// Task describes the ticket of a routing task.
func (a *HubActions) Task(ctx context.Context, accountID, taskID int64) (hub.TicketInfo, error) {
	s, err := a.server()
	if err != nil {
		return hub.TicketInfo{}, err
	}
	if s.routing == nil {
		return hub.TicketInfo{}, agentdesk.Errorf(agentdesk.NotFound, "task not found")
	}
	t, err := s.routing.Task(ctx, accountID, taskID)
	if err != nil {
		return hub.TicketInfo{}, err
	}
	if t.TicketID == nil {
		return hub.TicketInfo{}, agentdesk.Errorf(agentdesk.NotFound, "task not found")
	}
	return a.Ticket(ctx, accountID, *t.TicketID)
}

// SendChat: an agent's reply goes through the chat channel's reply sender
// (which stores it and publishes it to the visitor); a visitor's message is
// stored on its open chat ticket and published to the ticket's stream (the
// desks) and back to the visitor's (its other tabs; the widget drops its
// own echo by client_msg_id).
func (a *HubActions) SendChat(ctx context.Context, p hub.Principal, ticketID int64, m hub.ChatMessage) (int64, int64, error) {
	s, err := a.server()
	if err != nil {
		return 0, 0, err
	}
	if p.IsCustomer() {
		return a.visitorMessage(ctx, s, p.Visitor, ticketID, m)
	}
	rs := s.replies[agentdesk.KindChat]
	if rs == nil {
		return 0, 0, agentdesk.Errorf(agentdesk.Unavailable, "chat is not available on this server")
	}
	t, err := s.store.Ticket(ctx, p.Actor, ticketID)
	if err != nil {
		return 0, 0, err
	}
	author := p.Actor.AgentID
	msg := &agentdesk.Message{TicketID: t.ID, CustomerID: t.CustomerID, Kind: agentdesk.KindChat, Direction: agentdesk.DirOut, AuthorID: &author, Body: m.Body,
		AttachmentIDs: m.AttachmentIDs}
	if m.ClientMsgID != "" {
		msg.Meta = map[string]any{"client_msg_id": m.ClientMsgID}
	}
	id, err := rs.SendReply(ctx, p.Actor, t, msg)
	return id, t.ID, err
}

const (
	// the visitor's newest chat that is not solved or closed: one this
	// visitor started, never another chat of its (email-linked) customer
	visitorOpenChat = `
SELECT t.id FROM chats c
JOIN tickets t ON t.account_id = c.account_id AND t.id = c.ticket_id
WHERE c.account_id = $1 AND c.visitor_id = $2
  AND t.status NOT IN ('solved', 'closed')
ORDER BY c.ticket_id DESC
LIMIT 1`
	// a retried send (same client_msg_id) is stored once
	visitorRetry = `
SELECT id FROM messages
WHERE account_id = $1 AND ticket_id = $2 AND direction = 'in' AND meta->>'client_msg_id' = $3
LIMIT 1`
)

func (a *HubActions) visitorMessage(ctx context.Context, s *Server, v *hub.WidgetToken, ticketID int64, m hub.ChatMessage) (int64, int64, error) {
	acct := v.AccountID
	if ticketID == 0 {
		err := s.store.DB().QueryRow(ctx, visitorOpenChat, acct, v.VisitorID).Scan(&ticketID)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, 0, agentdesk.Errorf(agentdesk.NotFound, "there is no open chat; start one first")
		}
		if err != nil {
			return 0, 0, err
		}
	}
	msg := &agentdesk.Message{TicketID: ticketID, Kind: agentdesk.KindChat, Direction: agentdesk.DirIn, Body: m.Body,
		AttachmentIDs: m.AttachmentIDs, AttachBy: agentdesk.Uploader{VisitorID: v.VisitorID}}
	if m.ClientMsgID != "" {
		msg.Meta = map[string]any{"client_msg_id": m.ClientMsgID}
	}
	err := postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
		if m.ClientMsgID != "" {
			err := tx.QueryRow(ctx, visitorRetry, acct, ticketID, m.ClientMsgID).Scan(&msg.ID)
			if err == nil {
				return nil // stored before: answer as then, publish nothing twice
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		// The hub has checked that the ticket is this visitor's; the store
		// applies the ticket's rules (a solved ticket reopens).
		if _, err := postgres.AddMessageTx(ctx, tx, system(acct), msg); err != nil {
			return err
		}
		for _, stream := range []string{hub.TicketStream(ticketID), hub.VisitorStream(v.VisitorID)} {
			if err := hub.Publish(ctx, tx, hub.Event{AccountID: acct, Stream: stream, Type: MessageCreated, Data: msg}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return msg.ID, ticketID, nil
}

// SetPresence changes the agent's own presence in the routing engine.
func (a *HubActions) SetPresence(ctx context.Context, actor agentdesk.Actor, state, reason string) error {
	e, err := a.engine()
	if err != nil {
		return err
	}
	return e.SetPresence(ctx, actor.AccountID, actor.AgentID, routing.PresenceState(state), reason)
}

// AcceptOffer accepts the offer of task offerID (an offer's id is its task's).
func (a *HubActions) AcceptOffer(ctx context.Context, actor agentdesk.Actor, offerID int64) error {
	e, err := a.engine()
	if err != nil {
		return err
	}
	return e.Accept(ctx, actor.AccountID, actor.AgentID, offerID)
}

// RejectOffer passes the offer of task offerID on to the next agent.
func (a *HubActions) RejectOffer(ctx context.Context, actor agentdesk.Actor, offerID int64, reason string) error {
	e, err := a.engine()
	if err != nil {
		return err
	}
	return e.Reject(ctx, actor.AccountID, actor.AgentID, offerID, reason)
}

// WidgetOrigins are the sites the chat widget may run on (its settings,
// widgets.go).
func (a *HubActions) WidgetOrigins(ctx context.Context, accountID int64, widgetID string) ([]string, error) {
	s, err := a.server()
	if err != nil {
		return nil, err
	}
	w, err := s.store.WidgetByPublicID(ctx, widgetID)
	if err != nil {
		return nil, err
	}
	if w.AccountID != accountID {
		return nil, agentdesk.Errorf(agentdesk.NotFound, "no such chat widget")
	}
	return w.AllowedOrigins, nil
}

func (a *HubActions) engine() (*routing.Engine, error) {
	s, err := a.server()
	if err != nil {
		return nil, err
	}
	if s.routing == nil {
		return nil, agentdesk.Errorf(agentdesk.Unavailable, "routing is not running on this server")
	}
	return s.routing, nil
}
