package agentdesk

import (
	"strings"
	"time"
)

// Inbound is one contact arriving on a channel (a web form, a chat line, a
// social message, a shop event), as a channel adapter hands it to the store.
// The store resolves or creates the customer by Identity and writes the
// ticket and the timeline message in the adapter's transaction, so the adapter
// can enqueue the routing task in that same transaction.
type Inbound struct {
	Identity Identity // how the customer is known on this channel; phone values in E.164
	// Extra identities learned from the same contact (a form's phone next to
	// its email). Added to the customer when no other customer holds them.
	Extra    []Identity
	Name     string // the customer's name as given; fills an empty name only
	Channel  Channel
	Kind     MessageKind // default: the channel's natural kind (form → form, ...)
	Subject  string
	Body     string
	Meta     map[string]any
	TicketID int64    // an existing ticket to append to; 0 opens a new ticket
	Priority Priority // of a new ticket; default normal
	// Status of a new ticket; default new. Order events open their record
	// ticket closed: they are history, not work.
	Status Status
	At     time.Time // when the contact happened; zero means now
}

// IngestResult says what Ingest found or created.
type IngestResult struct {
	CustomerID      int64
	CustomerCreated bool
	TicketID        int64
	TicketCreated   bool
	// Reopened is set when the message reopened a solved, closed or pending
	// ticket: the adapter routes it again.
	Reopened  bool
	MessageID int64
}

// Routable reports whether the contact needs an agent: a new or reopened
// ticket that is not closed at birth.
func (r IngestResult) Routable(in Inbound) bool {
	return (r.TicketCreated && !in.Status.Done()) || r.Reopened
}

// Normalize fills defaults and validates an inbound contact.
func (in *Inbound) Normalize() error {
	if err := in.Identity.Validate(); err != nil {
		return err
	}
	for i := range in.Extra {
		if err := in.Extra[i].Validate(); err != nil {
			return err
		}
	}
	in.Name = strings.TrimSpace(in.Name)
	if len(in.Name) > 200 {
		return FieldError("name", "must be at most 200 characters")
	}
	if !in.Channel.Valid() {
		return FieldError("channel", "unknown channel %q", in.Channel)
	}
	if in.Kind == "" {
		in.Kind = kindOf(in.Channel)
	}
	if in.Priority == "" {
		in.Priority = PriorityNormal
	}
	if !in.Priority.Valid() {
		return FieldError("priority", "must be one of low, normal, high, urgent")
	}
	if in.Status == "" {
		in.Status = StatusNew
	}
	if !in.Status.Valid() {
		return FieldError("status", "unknown status %q", in.Status)
	}
	in.Subject = strings.TrimSpace(in.Subject)
	if in.Subject == "" && in.TicketID == 0 {
		in.Subject = subjectFrom(in.Body)
	}
	if in.TicketID < 0 {
		return FieldError("ticket_id", "must not be negative")
	}
	m := Message{Kind: in.Kind, Direction: DirIn, Subject: in.Subject, Body: in.Body}
	return m.Validate()
}

// subjectFrom makes a ticket subject from the first line of a body, for
// contacts that come without one.
func subjectFrom(body string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(body), "\n")
	line = strings.TrimSpace(line)
	if r := []rune(line); len(r) > 80 {
		line = string(r[:80]) + "…"
	}
	if line == "" {
		return "(no subject)"
	}
	return line
}

// kindOf is the timeline kind of a contact arriving on channel c.
func kindOf(c Channel) MessageKind {
	switch c {
	case ChannelEmail:
		return KindEmail
	case ChannelChat:
		return KindChat
	case ChannelVoice:
		return KindCall
	case ChannelOrder:
		return KindOrder
	case ChannelSocial:
		return KindSocial
	case ChannelInPerson:
		return KindInPerson
	}
	return KindForm
}

// InboundOrder is a shop's order event: the order and who placed it. The
// customer is found by shop account id first, then by email, and created when
// neither is known.
type InboundOrder struct {
	Order         Order
	ShopAccountID string
	Email         string
	Name          string
}

// OrderReceipt says what an order event changed.
type OrderReceipt struct {
	Order           Order
	Created         bool // a new order (false: an update or an identical replay)
	Changed         bool // something changed (false: an identical replay)
	CustomerCreated bool
	TicketID        int64 // the order's record ticket on the timeline
	MessageID       int64 // 0 when nothing changed
}
