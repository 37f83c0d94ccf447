package web

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/routing"
	"agentdesk/web/hub"
)

// Live events for changes made over REST, so every desk showing a ticket
// updates at once. Each event is published in the transaction of the write
// it describes: it is delivered exactly when the change commits. Without a
// hub (WithHub) nothing is published.

// TicketUpdated is the event type of a changed ticket (data: the ticket).
const TicketUpdated = "ticket.updated"

// TicketUnassigned tells the previous assignee that a ticket was taken from
// them: only its id, since they may no longer see it; their list reloads.
const TicketUnassigned = "ticket.unassigned"

// TicketCreated is the event type of a new ticket (data: the ticket).
const TicketCreated = "ticket.created"

// Chat event types on a visitor's stream (web/ui/WIDGET.md).
const (
	ChatQueued      = "chat.queued"
	ChatAgentJoined = "chat.agent_joined"
	ChatEnded       = "chat.ended"
)

// ticketStreams are the streams that hear about a ticket: its own (desks
// that have it open) and its assignee's (their lists and unread counts).
func ticketStreams(t *agentdesk.Ticket, also ...*int64) []string {
	streams := []string{hub.TicketStream(t.ID)}
	seen := map[int64]bool{}
	for _, a := range append([]*int64{t.AssigneeID}, also...) {
		if a != nil && !seen[*a] {
			seen[*a] = true
			streams = append(streams, hub.AgentStream(*a))
		}
	}
	return streams
}

// createdStreams are the streams whose lists show a new ticket: its
// assignee's ("my tickets"), its team's (the team queue), the account's
// ("all open", unless the team is private: only its members and
// supervisors may see those) and the supervisors'.
func createdStreams(ctx context.Context, tx pgx.Tx, t *agentdesk.Ticket) ([]string, error) {
	streams := []string{hub.SupervisorStream(t.AccountID)}
	if t.AssigneeID != nil {
		streams = append(streams, hub.AgentStream(*t.AssigneeID))
	}
	private := false
	if t.TeamID != nil {
		streams = append(streams, hub.TeamStream(*t.TeamID))
		if err := tx.QueryRow(ctx, `SELECT private FROM teams WHERE account_id = $1 AND id = $2`, t.AccountID, *t.TeamID).Scan(&private); err != nil {
			return nil, fmt.Errorf("team of ticket %d: %w", t.ID, err)
		}
	}
	if !private {
		streams = append(streams, hub.AccountStream(t.AccountID))
	}
	return streams, nil
}

// publishTicketCreated tells the lists that show it about a new ticket, in
// the transaction that created it.
func publishTicketCreated(ctx context.Context, tx pgx.Tx, t *agentdesk.Ticket) error {
	streams, err := createdStreams(ctx, tx, t)
	if err != nil {
		return err
	}
	return publishAll(ctx, tx, t.AccountID, streams, TicketCreated, t)
}

// newTicket stores a ticket (and its first message) and publishes
// ticket.created with it.
func (s *Server) newTicket(ctx context.Context, actor agentdesk.Actor, t *agentdesk.Ticket, first *agentdesk.Message) error {
	if !s.chat.live {
		return s.store.CreateTicket(ctx, actor, t, first)
	}
	return postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
		if err := postgres.CreateTicketTx(ctx, tx, actor, t, first); err != nil {
			return err
		}
		return publishTicketCreated(ctx, tx, t)
	})
}

// ingested publishes ticket.created for a ticket an inbound contact opened
// (a web form, a chat, a message left in the widget), in the contact's
// transaction. Nothing when the contact went to an existing ticket.
func (s *Server) ingested(ctx context.Context, tx pgx.Tx, accountID int64, res agentdesk.IngestResult) error {
	if !s.chat.live || !res.TicketCreated {
		return nil
	}
	t, err := postgres.TicketTx(ctx, tx, system(accountID), res.TicketID)
	if err != nil {
		return err
	}
	return publishTicketCreated(ctx, tx, t)
}

func publishAll(ctx context.Context, tx pgx.Tx, accountID int64, streams []string, typ string, data any) error {
	for _, s := range streams {
		if err := hub.Publish(ctx, tx, hub.Event{AccountID: accountID, Stream: s, Type: typ, Data: data}); err != nil {
			return err
		}
	}
	return nil
}

// addMessage stores a message that no channel delivers (a note, a call
// record) and publishes message.created to the ticket's streams.
func (s *Server) addMessage(ctx context.Context, actor agentdesk.Actor, m *agentdesk.Message) error {
	if !s.chat.live {
		return s.store.AddMessage(ctx, actor, m)
	}
	return postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
		before, err := postgres.TicketTx(ctx, tx, actor, m.TicketID)
		if err != nil {
			return err
		}
		t, err := postgres.AddMessageTx(ctx, tx, actor, m)
		if err != nil {
			return err
		}
		if err := publishAll(ctx, tx, actor.AccountID, ticketStreams(t), MessageCreated, m); err != nil {
			return err
		}
		return publishTicketChange(ctx, tx, actor.AccountID, before, t)
	})
}

// publishTicketChange tells the ticket's streams when a message changed the
// ticket itself (an agent's first reply opens it and records the first
// response; a customer's message reopens it), so open desks do not show a
// stale status.
func publishTicketChange(ctx context.Context, tx pgx.Tx, accountID int64, before, after *agentdesk.Ticket) error {
	if before.Status == after.Status && (before.Times.FirstResponseAt == nil) == (after.Times.FirstResponseAt == nil) {
		return nil
	}
	return publishAll(ctx, tx, accountID, ticketStreams(after), TicketUpdated, after)
}

// updateTicket changes a ticket and publishes ticket.updated to its streams,
// and ticket.unassigned (the id only) to the previous assignee's, whose
// list loses it. A chat ticket that
// is solved or closed ends its chat: the visitor gets chat.ended.
func (s *Server) updateTicket(ctx context.Context, actor agentdesk.Actor, id int64, change func(*agentdesk.Ticket) error) (*agentdesk.Ticket, error) {
	if !s.chat.live {
		return s.store.UpdateTicket(ctx, actor, id, change)
	}
	var out *agentdesk.Ticket
	err := postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
		var before agentdesk.Ticket
		t, err := postgres.UpdateTicketTx(ctx, tx, actor, id, func(t *agentdesk.Ticket) error {
			before = *t
			return change(t)
		})
		if err != nil {
			return err
		}
		out = t
		// Who may see the ticket follows its team and assignee: when either
		// changes, the hubs re-authorise the followers of its stream before
		// they get anything more of it (this ticket.updated included), so
		// a desk that may no longer see it gets the forbidden error frame.
		if !agentdesk.SameID(before.TeamID, t.TeamID) || !agentdesk.SameID(before.AssigneeID, t.AssigneeID) {
			if err := hub.PublishTicketAccessChanged(ctx, tx, actor.AccountID, t.ID); err != nil {
				return err
			}
		}
		if err := publishAll(ctx, tx, actor.AccountID, ticketStreams(t), TicketUpdated, t); err != nil {
			return err
		}
		if before.AssigneeID != nil && !agentdesk.SameID(before.AssigneeID, t.AssigneeID) {
			if err := publishAll(ctx, tx, actor.AccountID, []string{hub.AgentStream(*before.AssigneeID)}, TicketUnassigned,
				map[string]int64{"ticket_id": t.ID}); err != nil {
				return err
			}
		}
		if t.Channel == agentdesk.ChannelChat && t.Status.Done() && !before.Status.Done() {
			return endChatTx(ctx, tx, actor.AccountID, t.ID, "agent")
		}
		return nil
	})
	return out, err
}

// endChatTx ends a ticket's chat (if it came from a widget and is still
// going) and tells the visitor and the desks.
func endChatTx(ctx context.Context, tx pgx.Tx, accountID, ticketID int64, by string) error {
	c, err := postgres.ChatOfTicket(ctx, tx, accountID, ticketID)
	if agentdesk.IsKind(err, agentdesk.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ended, err := postgres.EndChatTx(ctx, tx, accountID, ticketID, by)
	if err != nil || !ended {
		return err
	}
	data := map[string]any{"ticket_id": ticketID, "ended_by": by}
	return publishAll(ctx, tx, accountID, []string{hub.VisitorStream(c.VisitorID), hub.TicketStream(ticketID)}, ChatEnded, data)
}

// ChatRoutingEvents publishes the routing engine's events through next and
// tells chat visitors what routing did with their chat, in the same
// transaction: their place in the queue (chat.queued), the agent who took
// it (chat.agent_joined), and its end when the agent wraps up (chat.ended).
// Events of tasks that are not widget chats pass through unchanged.
func ChatRoutingEvents(next routing.Publisher) routing.Publisher {
	return chatRoutingEvents{next: next}
}

type chatRoutingEvents struct{ next routing.Publisher }

func (c chatRoutingEvents) Publish(ctx context.Context, tx pgx.Tx, e routing.Event) error {
	if err := c.next.Publish(ctx, tx, e); err != nil {
		return err
	}
	if err := transferredTicket(ctx, tx, e); err != nil {
		return err
	}
	var taskID int64
	switch d := e.Data.(type) {
	case routing.TaskChange:
		taskID = d.TaskID
	case *routing.TaskChange:
		taskID = d.TaskID
	case routing.Position:
		taskID = d.TaskID
	case *routing.Position:
		taskID = d.TaskID
	default:
		return nil
	}
	switch {
	case e.Type == "task_assigned" && e.Stream == routing.TaskStream(taskID):
	case e.Type == "queue_position":
	case e.Type == "task_state":
	default:
		return nil
	}
	chat, err := postgres.ChatOfTask(ctx, tx, e.AccountID, taskID)
	if agentdesk.IsKind(err, agentdesk.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	visitor := hub.VisitorStream(chat.VisitorID)
	switch d := e.Data.(type) {
	case routing.TaskChange:
		return c.taskChange(ctx, tx, e, chat, visitor, d)
	case *routing.TaskChange:
		return c.taskChange(ctx, tx, e, chat, visitor, *d)
	case routing.Position:
		return publishPosition(ctx, tx, e.AccountID, chat, visitor, d)
	case *routing.Position:
		return publishPosition(ctx, tx, e.AccountID, chat, visitor, *d)
	}
	return nil
}

// ticketOfTask is the ticket a routing task works on (0: none).
const ticketOfTask = `SELECT coalesce(ticket_id, 0) FROM tasks WHERE account_id = $1 AND id = $2`

// transferredTicket: a transfer, or an accepted offer for a ticket that
// had another assignee, gives the ticket a new assignee, so the previous
// one may no longer see it (a private team they are not in). The followers
// of the ticket's stream are re-authorised, in the same transaction, as for
// a reassignment over REST (updateTicket). The engine announces a transfer
// once on each agent's stream, and an acceptance on the accepting agent's;
// this acts on the new agent's. A first assignment costs nothing here.
func transferredTicket(ctx context.Context, tx pgx.Tx, e routing.Event) error {
	var d routing.TaskChange
	switch v := e.Data.(type) {
	case routing.TaskChange:
		d = v
	case *routing.TaskChange:
		d = *v
	default:
		return nil
	}
	if e.Type != "task_assigned" || (d.Reason != "transfer" && d.PreviousAssignee == 0) || e.Stream != routing.AgentStream(d.AgentID) {
		return nil
	}
	var ticketID int64
	if err := tx.QueryRow(ctx, ticketOfTask, e.AccountID, d.TaskID).Scan(&ticketID); err != nil {
		return fmt.Errorf("ticket of task %d: %w", d.TaskID, err)
	}
	if ticketID == 0 {
		return nil
	}
	return hub.PublishTicketAccessChanged(ctx, tx, e.AccountID, ticketID)
}

func (c chatRoutingEvents) taskChange(ctx context.Context, tx pgx.Tx, e routing.Event, chat *agentdesk.Chat, visitor string, d routing.TaskChange) error {
	switch {
	case e.Type == "task_assigned":
		name, err := postgres.AgentName(ctx, tx, e.AccountID, d.AgentID)
		if err != nil {
			return err
		}
		return hub.Publish(ctx, tx, hub.Event{AccountID: e.AccountID, Stream: visitor, Type: ChatAgentJoined,
			Data: map[string]any{"ticket_id": chat.TicketID, "agent_name": name}})
	case d.State == routing.StateWrapping || d.State == routing.StateCompleted:
		return endChatTx(ctx, tx, e.AccountID, chat.TicketID, "agent")
	case d.State == routing.StateOverflowed || d.State == routing.StateCancelled:
		// Nobody will take it (the queue closed with nowhere to go).
		return endChatTx(ctx, tx, e.AccountID, chat.TicketID, "agent")
	}
	return nil
}

func publishPosition(ctx context.Context, tx pgx.Tx, accountID int64, chat *agentdesk.Chat, visitor string, p routing.Position) error {
	if p.State != routing.StateQueued || chat.EndedAt != nil {
		return nil
	}
	return hub.Publish(ctx, tx, hub.Event{AccountID: accountID, Stream: visitor, Type: ChatQueued,
		Data: queuedData{TicketID: chat.TicketID, Position: p.Position, EWT: p.EWTSeconds}})
}

// queuedData is chat.queued's payload.
type queuedData struct {
	TicketID int64 `json:"ticket_id"`
	Position int   `json:"position"`
	EWT      int   `json:"estimated_wait_seconds"`
}
