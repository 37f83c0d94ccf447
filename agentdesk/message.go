package agentdesk

import (
	"context"
	"strings"
	"time"
)

// MessageKind is what a timeline entry records. Every channel's contacts land
// in one ordered stream per ticket and per customer.
type MessageKind string

const (
	KindEmail    MessageKind = "email"
	KindChat     MessageKind = "chat"
	KindCall     MessageKind = "call" // a voice interaction; Meta holds durations
	KindForm     MessageKind = "form"
	KindOrder    MessageKind = "order_event"
	KindSocial   MessageKind = "social"
	KindInPerson MessageKind = "in_person"
	KindNote     MessageKind = "note" // internal, never shown to the customer
)

// Valid reports whether k is a known kind.
func (k MessageKind) Valid() bool {
	switch k {
	case KindEmail, KindChat, KindCall, KindForm, KindOrder, KindSocial, KindInPerson, KindNote:
		return true
	}
	return false
}

// Direction says who spoke.
type Direction string

const (
	DirIn       Direction = "in"       // from the customer
	DirOut      Direction = "out"      // from us to the customer
	DirInternal Direction = "internal" // among agents
)

// MaxMessageBody is the largest body the timeline accepts, in bytes.
const MaxMessageBody = 256 << 10

// Message is one entry of a ticket's timeline.
type Message struct {
	ID         int64          `json:"id"`
	AccountID  int64          `json:"-"`
	TicketID   int64          `json:"ticket_id"`
	CustomerID int64          `json:"customer_id"`
	Kind       MessageKind    `json:"kind"`
	Direction  Direction      `json:"direction"`
	AuthorID   *int64         `json:"author_id"` // agent, for outbound and notes
	Subject    string         `json:"subject,omitempty"`
	Body       string         `json:"body"`
	Meta       map[string]any `json:"meta,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
	// Attachments are the message's files (uploads linked to it, files of
	// an email), oldest first.
	Attachments []Attachment `json:"attachments,omitempty"`
	// AttachmentIDs are uploads to link to the message as it is stored, in
	// the same transaction; each must be an upload of AttachBy (default:
	// the writing actor) that no message holds yet.
	AttachmentIDs []int64  `json:"-"`
	AttachBy      Uploader `json:"-"`
}

// Validate checks the caller-set fields.
func (m *Message) Validate() error {
	if !m.Kind.Valid() {
		return FieldError("kind", "unknown message kind %q", m.Kind)
	}
	if m.Kind == KindNote {
		m.Direction = DirInternal
	}
	switch m.Direction {
	case DirIn, DirOut, DirInternal:
	default:
		return FieldError("direction", "must be in, out or internal")
	}
	if m.Direction == DirInternal && m.Kind != KindNote {
		return FieldError("direction", "only notes are internal")
	}
	if len(m.AttachmentIDs) > MaxMessageAttachments {
		return FieldError("attachment_ids", "at most %d files per message", MaxMessageAttachments)
	}
	// A file alone is a message too (a visitor sends a photo).
	if strings.TrimSpace(m.Body) == "" && m.Kind != KindCall && m.Kind != KindOrder && len(m.AttachmentIDs) == 0 {
		return FieldError("body", "must not be empty")
	}
	if len(m.Body) > MaxMessageBody {
		return &Error{Kind: TooLarge, Field: "body", Message: "must be at most 256 KiB"}
	}
	if len(m.Subject) > 500 {
		return FieldError("subject", "must be at most 500 characters")
	}
	return nil
}

// MessageStore keeps the timeline.
type MessageStore interface {
	AddMessage(ctx context.Context, actor Actor, m *Message) error
	TicketMessages(ctx context.Context, actor Actor, ticketID int64, p Page) ([]Message, string, error)
	CustomerTimeline(ctx context.Context, actor Actor, customerID int64, p Page) ([]Message, string, error)
}
