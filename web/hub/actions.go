package hub

import (
	"context"
	"time"

	"agentdesk/agentdesk"
)

// Actions carries out what clients ask for. Package web implements it with
// the routing engine and the store; the hub only decides who may ask.
// Implementations publish the resulting events themselves, in the same
// transaction as their writes (Publish).
type Actions interface {
	// Ticket describes a ticket for authorisation; NotFound if it does not
	// exist in the account.
	Ticket(ctx context.Context, accountID, ticketID int64) (TicketInfo, error)
	// Task describes the ticket of a routing task (its queue position and
	// wait go to "task:<id>"), so its visitor may follow that stream;
	// NotFound if there is no such task.
	Task(ctx context.Context, accountID, taskID int64) (TicketInfo, error)
	// SendChat stores a chat message on a ticket and publishes it to the
	// ticket's and the visitor's streams. For a customer ticketID may be 0:
	// the visitor's open chat. It returns the message and ticket ids.
	SendChat(ctx context.Context, p Principal, ticketID int64, m ChatMessage) (messageID, ticket int64, err error)
	// SetPresence changes the agent's own presence (available, away with a reason, ...).
	SetPresence(ctx context.Context, a agentdesk.Actor, state, reason string) error
	// AcceptOffer and RejectOffer answer an offer made to this agent; the
	// routing engine refuses offers made to someone else.
	AcceptOffer(ctx context.Context, a agentdesk.Actor, offerID int64) error
	RejectOffer(ctx context.Context, a agentdesk.Actor, offerID int64, reason string) error
	// Agent returns the agent's current rights (role, teams) for an open
	// connection to re-check what it follows, and when session (if not "")
	// expires. Unauthenticated when the agent is no longer active or that
	// session has ended or expired.
	Agent(ctx context.Context, accountID, agentID int64, session string) (agentdesk.Actor, time.Time, error)
	// Token returns an API token's rights for the re-check of a connection
	// it opened; Unauthenticated once it is revoked.
	Token(ctx context.Context, accountID, tokenID int64) (agentdesk.Actor, error)
	// WidgetOrigins lists the origins a chat widget may be embedded on;
	// "*" allows any.
	WidgetOrigins(ctx context.Context, accountID int64, widgetID string) ([]string, error)
}

// TicketInfo is what authorisation needs to know about a ticket.
type TicketInfo struct {
	ID         int64
	AssigneeID int64  // 0 = unassigned
	TeamID     int64  // 0 = no team
	Private    bool   // visible only to its team (and supervisors)
	VisitorID  string // the visitor who started the ticket's chat, "" when it has none
}

// HasVisitor reports whether visitor id v started the ticket's chat. A chat
// is bound to the visitor of the token that started it and to no one else:
// visitors are linked to customers by an email they type and nobody
// verified, so "another visitor of the same customer" may be anyone who
// knows the address.
func (t TicketInfo) HasVisitor(v string) bool {
	return v != "" && v == t.VisitorID
}

// ChatMessage is what a client sends with chat.send.
type ChatMessage struct {
	Body          string
	ClientMsgID   string  // the client's id, so a retried send is stored once
	AttachmentIDs []int64 // uploaded files to link to the message
}
