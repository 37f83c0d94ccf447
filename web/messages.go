package web

import (
	"context"
	"net/http"

	"agentdesk/agentdesk"
)

func init() { registerAPI(mountMessages) }

// Roles: agent+ for the conversation and the customer timeline; the store
// leaves out what the caller may not see (another team's private tickets),
// and posting into a ticket the caller cannot see is 404.
func mountMessages(s *Server, a *apiRouter) {
	a.route("GET", "/tickets/{id}/messages", agentdesk.RoleAgent, "A ticket's conversation, oldest first, internal notes included (agent+)",
		s.listTicketMessages, doc{Response: List[agentdesk.Message]{}, Query: []string{"limit", "cursor"}})
	a.route("POST", "/tickets/{id}/messages", agentdesk.RoleAgent, "Add a message or internal note to a ticket (agent+); an outbound reply is handed to the channel's sender when one is configured",
		s.postMessage, doc{Body: messageRequest{}, Response: agentdesk.Message{}, Status: 201, Idempotent: true})
	a.route("GET", "/customers/{id}/timeline", agentdesk.RoleAgent, "Everything with a customer on every channel, newest first, notes included (agent+)",
		s.customerTimeline, doc{Response: List[agentdesk.Message]{}, Query: []string{"limit", "cursor"}})
}

// ReplySender hands an agent's outbound reply to the channel that delivers it
// (email through the outbox; chat through the websocket hub). The sender
// stores the message on the ticket itself, in the same transaction that
// queues its delivery, so a reply is never recorded without being sent or
// sent without being recorded; it keeps the ticket's first response in step
// like the store does, and returns the stored message's id. ticket is as the
// caller saw it, visibility already checked.
type ReplySender interface {
	SendReply(ctx context.Context, actor agentdesk.Actor, ticket *agentdesk.Ticket, m *agentdesk.Message) (messageID int64, err error)
}

// replySenders are the configured senders by message kind.
type replySenders map[agentdesk.MessageKind]ReplySender

// ReplySenderFunc adapts a function to ReplySender.
type ReplySenderFunc func(ctx context.Context, actor agentdesk.Actor, ticket *agentdesk.Ticket, m *agentdesk.Message) (int64, error)

// SendReply calls f.
func (f ReplySenderFunc) SendReply(ctx context.Context, actor agentdesk.Actor, ticket *agentdesk.Ticket, m *agentdesk.Message) (int64, error) {
	return f(ctx, actor, ticket, m)
}

// WithReplySender delivers outbound messages of kind (email, chat, social)
// through rs. Without a sender for its kind an outbound message is only
// recorded, and carries meta.delivery = "not_sent" so nobody mistakes it for
// a delivered reply.
func WithReplySender(kind agentdesk.MessageKind, rs ReplySender) Option {
	return func(s *Server) {
		if s.replies == nil {
			s.replies = replySenders{}
		}
		s.replies[kind] = rs
	}
}

// deliveredKinds are the message kinds a channel carries to the customer;
// the others (calls, notes, in-person visits, order events, forms) record
// something that already happened.
var deliveredKinds = map[agentdesk.MessageKind]bool{agentdesk.KindEmail: true, agentdesk.KindChat: true, agentdesk.KindSocial: true}

// messageRequest is a timeline entry as a client writes it. kind defaults to
// the ticket's channel; notes are always internal.
type messageRequest struct {
	Kind      agentdesk.MessageKind `json:"kind,omitempty"`
	Direction agentdesk.Direction   `json:"direction"`
	Subject   string                `json:"subject,omitempty"`
	Body      string                `json:"body"`
	Meta      map[string]any        `json:"meta,omitempty"`
	// AttachmentIDs are files uploaded with POST /attachments (at most 10),
	// linked to the message in its transaction (attachments.go).
	AttachmentIDs []int64 `json:"attachment_ids,omitempty"`
}

// kindOf is the message kind a ticket's channel speaks.
func kindOf(c agentdesk.Channel) agentdesk.MessageKind {
	switch c {
	case agentdesk.ChannelChat:
		return agentdesk.KindChat
	case agentdesk.ChannelVoice:
		return agentdesk.KindCall
	case agentdesk.ChannelForm:
		return agentdesk.KindForm
	case agentdesk.ChannelOrder:
		return agentdesk.KindOrder
	case agentdesk.ChannelSocial:
		return agentdesk.KindSocial
	case agentdesk.ChannelInPerson:
		return agentdesk.KindInPerson
	}
	return agentdesk.KindEmail
}

// message builds the domain message. Outbound messages and notes written by
// a signed-in agent carry the agent as author: that is what makes a reply
// count as the first response.
func (req *messageRequest) message(actor agentdesk.Actor, channel agentdesk.Channel) *agentdesk.Message {
	m := &agentdesk.Message{Kind: req.Kind, Direction: req.Direction, Subject: req.Subject, Body: req.Body, Meta: req.Meta, AttachmentIDs: req.AttachmentIDs}
	if m.Kind == "" {
		m.Kind = kindOf(channel)
	}
	if m.Kind == agentdesk.KindNote && m.Direction == "" {
		m.Direction = agentdesk.DirInternal
	}
	if actor.IsAgent() && m.Direction != agentdesk.DirIn {
		m.AuthorID = &actor.AgentID
	}
	return m
}

// timelinePage answers a page of the timeline that list reads for the path's
// {id} as the caller may see it.
func timelinePage(w http.ResponseWriter, r *http.Request, list func(ctx context.Context, actor agentdesk.Actor, id int64, p agentdesk.Page) ([]agentdesk.Message, string, error)) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	p, err := page(r)
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	items, next, err := list(r.Context(), actor, id, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, next))
	return nil
}

func (s *Server) listTicketMessages(w http.ResponseWriter, r *http.Request) error {
	return timelinePage(w, r, s.withAttachments(s.store.TicketMessages))
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req messageRequest
	if err := decode(w, r, &req, maxBody); err != nil {
		return err
	}
	ctx := r.Context()
	actor, _ := actorOf(ctx)
	// Reading the ticket first checks visibility: posting into a ticket the
	// caller cannot see is 404, exactly like reading it.
	t, err := s.store.Ticket(ctx, actor, id)
	if err != nil {
		return err
	}
	m := req.message(actor, t.Channel)
	m.TicketID, m.CustomerID = t.ID, t.CustomerID
	if err := m.Validate(); err != nil {
		return err
	}
	if m.Direction == agentdesk.DirOut && deliveredKinds[m.Kind] {
		if rs := s.replies[m.Kind]; rs != nil {
			msgID, err := rs.SendReply(ctx, actor, t, m)
			if err != nil {
				return err
			}
			stored, err := s.store.Message(ctx, actor, t.ID, msgID)
			if err != nil {
				return err
			}
			if stored, err = s.messageAttachments(ctx, actor.AccountID, stored); err != nil {
				return err
			}
			writeJSON(w, http.StatusCreated, stored)
			return nil
		}
		if m.Meta == nil {
			m.Meta = map[string]any{}
		}
		m.Meta["delivery"] = "not_sent"
	}
	if err := s.addMessage(ctx, actor, m); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, m)
	return nil
}

func (s *Server) customerTimeline(w http.ResponseWriter, r *http.Request) error {
	return timelinePage(w, r, s.withAttachments(s.store.CustomerTimeline))
}
