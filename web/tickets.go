package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"

	"agentdesk/agentdesk"
)

func init() { registerAPI(mountTickets) }

// Roles: every agent works tickets, so all ticket routes are agent+. What an
// agent may see is narrowed by the store (private teams), and a ticket the
// caller may not see answers 404, like one that does not exist.
func mountTickets(s *Server, a *apiRouter) {
	a.route("GET", "/tickets", agentdesk.RoleAgent, "List the tickets you may see, newest first (agent+); status is a comma list, assignee an id or \"me\", unassigned=true",
		s.listTickets, doc{Response: List[agentdesk.Ticket]{}, Query: []string{"status", "assignee", "team", "customer", "channel", "priority", "tag", "unassigned", "limit", "cursor"}})
	a.route("POST", "/tickets", agentdesk.RoleAgent, "Open a ticket, with its first message when given, in one transaction (agent+)",
		s.createTicket, doc{Body: ticketRequest{}, Response: ticketCreated{}, Status: 201, Idempotent: true})
	a.route("GET", "/tickets/{id}", agentdesk.RoleAgent, "One ticket (agent+); another team's private ticket is 404",
		s.getTicket, doc{Response: agentdesk.Ticket{}})
	a.route("PATCH", "/tickets/{id}", agentdesk.RoleAgent, "Change a ticket (agent+): status or custom status, priority, assignee, team, tags, outcome; solving needs a contact reason, a cancellation a cancellation reason",
		s.patchTicket, doc{Body: ticketPatch{}, Response: agentdesk.Ticket{}})
}

// ticketRequest opens a ticket. message, when present, is stored with it in
// the same transaction.
type ticketRequest struct {
	Subject      string             `json:"subject"`
	Status       agentdesk.Status   `json:"status,omitempty"`
	CustomStatus string             `json:"custom_status,omitempty"`
	Priority     agentdesk.Priority `json:"priority,omitempty"`
	Channel      agentdesk.Channel  `json:"channel,omitempty"`
	CustomerID   int64              `json:"customer_id"`
	AssigneeID   *int64             `json:"assignee_id"`
	TeamID       *int64             `json:"team_id"`
	Tags         []string           `json:"tags"`
	Outcome      *agentdesk.Outcome `json:"outcome,omitempty"`
	Message      *messageRequest    `json:"message,omitempty"`
}

// ticketCreated is the new ticket and, when one was sent, its first message.
type ticketCreated struct {
	agentdesk.Ticket
	Message *agentdesk.Message `json:"message,omitempty"`
}

// ticketPatch changes only the fields present; "assignee_id": null
// unassigns, "team_id": null takes the ticket out of its team. Setting
// custom_status alone sets the status it maps to; setting status alone clears
// the custom status.
type ticketPatch struct {
	Subject      *string             `json:"subject"`
	Status       *agentdesk.Status   `json:"status"`
	CustomStatus *string             `json:"custom_status"`
	Priority     *agentdesk.Priority `json:"priority"`
	AssigneeID   nullableID          `json:"assignee_id"`
	TeamID       nullableID          `json:"team_id"`
	Tags         *[]string           `json:"tags"`
	Outcome      *outcomePatch       `json:"outcome"`
}

// outcomePatch is the wrap-up, field by field.
type outcomePatch struct {
	ContactReasonID      nullableID `json:"contact_reason_id"`
	ResolutionCode       *string    `json:"resolution_code"`
	CancellationReasonID nullableID `json:"cancellation_reason_id"`
	RevenueLostCents     *int64     `json:"revenue_lost_cents"`
	RetentionOffered     *bool      `json:"retention_offered"`
	RetentionAccepted    *bool      `json:"retention_accepted"`
}

// nullableID tells an absent field from an explicit null. A value that is not
// an integer is reported as a type error, which the decoder names with the
// field's full path (outcome.contact_reason_id).
type nullableID struct {
	Set   bool
	Value *int64
}

// jsonSchema is how the OpenAPI document shows it: an id or null.
func (nullableID) jsonSchema() map[string]any {
	return map[string]any{"type": "integer", "nullable": true}
}

func (o *nullableID) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(b, []byte("null")) {
		o.Value = nil
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[int64]()}
	}
	o.Value = &n
	return nil
}

// jsonKind names the JSON type of a raw value for error messages.
func jsonKind(b []byte) string {
	switch {
	case len(b) == 0:
		return "value"
	case b[0] == '"':
		return "string"
	case b[0] == '{':
		return "object"
	case b[0] == '[':
		return "array"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	}
	return "number"
}

func (p *ticketPatch) apply(t *agentdesk.Ticket) error {
	if p.Status != nil && !p.Status.Valid() {
		return agentdesk.FieldError("status", "unknown status %q; use new, open, pending, on_hold, solved or closed", *p.Status)
	}
	if p.Subject != nil {
		t.Subject = *p.Subject
	}
	if p.Status != nil {
		t.Status = *p.Status
		if p.CustomStatus == nil {
			t.CustomStatus = ""
		}
	}
	if p.CustomStatus != nil {
		t.CustomStatus = *p.CustomStatus
		if p.Status == nil && strings.TrimSpace(*p.CustomStatus) != "" {
			t.Status = "" // taken from the custom status
		}
	}
	if p.Priority != nil {
		t.Priority = *p.Priority
	}
	if p.AssigneeID.Set {
		t.AssigneeID = p.AssigneeID.Value
	}
	if p.TeamID.Set {
		t.TeamID = p.TeamID.Value
	}
	if p.Tags != nil {
		t.Tags = *p.Tags
	}
	if o := p.Outcome; o != nil {
		if o.ContactReasonID.Set {
			t.Outcome.ContactReasonID = o.ContactReasonID.Value
		}
		if o.ResolutionCode != nil {
			t.Outcome.ResolutionCode = *o.ResolutionCode
		}
		if o.CancellationReasonID.Set {
			t.Outcome.CancellationReasonID = o.CancellationReasonID.Value
		}
		if o.RevenueLostCents != nil {
			t.Outcome.RevenueLostCents = *o.RevenueLostCents
		}
		if o.RetentionOffered != nil {
			t.Outcome.RetentionOffered = *o.RetentionOffered
		}
		if o.RetentionAccepted != nil {
			t.Outcome.RetentionAccepted = *o.RetentionAccepted
		}
	}
	return nil
}

func (s *Server) listTickets(w http.ResponseWriter, r *http.Request) error {
	actor, _ := actorOf(r.Context())
	p, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := agentdesk.TicketFilter{Page: p, Channel: agentdesk.Channel(q.Get("channel")), Priority: agentdesk.Priority(q.Get("priority")), Tag: q.Get("tag")}
	if v := q.Get("status"); v != "" {
		for _, st := range strings.Split(v, ",") {
			st := agentdesk.Status(strings.TrimSpace(st))
			if !st.Valid() {
				return agentdesk.FieldError("status", "unknown status %q; use new, open, pending, on_hold, solved or closed", st)
			}
			f.Status = append(f.Status, st)
		}
	}
	if v := q.Get("assignee"); v == "me" {
		if !actor.IsAgent() {
			return agentdesk.FieldError("assignee", "\"me\" needs a signed-in agent, not an API token")
		}
		f.AssigneeID = &actor.AgentID
	} else if f.AssigneeID, err = queryID(r, "assignee"); err != nil {
		return err
	}
	if f.TeamID, err = queryID(r, "team"); err != nil {
		return err
	}
	if f.CustomerID, err = queryID(r, "customer"); err != nil {
		return err
	}
	switch q.Get("unassigned") {
	case "", "false", "0":
	case "true", "1":
		f.Unassigned = true
	default:
		return agentdesk.FieldError("unassigned", "must be true or false")
	}
	if f.Unassigned && f.AssigneeID != nil {
		return agentdesk.FieldError("unassigned", "cannot be combined with assignee")
	}
	items, next, err := s.store.Tickets(r.Context(), actor, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, next))
	return nil
}

func (s *Server) createTicket(w http.ResponseWriter, r *http.Request) error {
	actor, _ := actorOf(r.Context())
	var req ticketRequest
	if err := decode(w, r, &req, maxBody); err != nil {
		return err
	}
	t := &agentdesk.Ticket{
		Subject: req.Subject, Status: req.Status, CustomStatus: req.CustomStatus, Priority: req.Priority, Channel: req.Channel,
		CustomerID: req.CustomerID, AssigneeID: req.AssigneeID, TeamID: req.TeamID, Tags: req.Tags,
	}
	if req.Outcome != nil {
		t.Outcome = *req.Outcome
	}
	if t.Channel == "" {
		t.Channel = agentdesk.ChannelEmail
	}
	var first *agentdesk.Message
	if req.Message != nil {
		first = req.Message.message(actor, t.Channel)
		// A channel's sender cannot join this transaction: an outbound
		// first message is recorded, not delivered, and says so.
		if first.Direction == agentdesk.DirOut && deliveredKinds[first.Kind] {
			if first.Meta == nil {
				first.Meta = map[string]any{}
			}
			first.Meta["delivery"] = "not_sent"
		}
	}
	if err := s.newTicket(r.Context(), actor, t, first); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, ticketCreated{Ticket: *t, Message: first})
	return nil
}

func (s *Server) getTicket(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	t, err := s.store.Ticket(r.Context(), actor, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) patchTicket(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var p ticketPatch
	if err := decode(w, r, &p, 64<<10); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	t, err := s.updateTicket(r.Context(), actor, id, p.apply)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}
