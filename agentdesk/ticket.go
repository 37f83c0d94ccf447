package agentdesk

import (
	"context"
	"strings"
	"time"
)

// Status is a ticket's lifecycle state. Admins may add custom statuses; each
// maps onto one of these, which is what reports and routing read.
type Status string

const (
	StatusNew     Status = "new"
	StatusOpen    Status = "open"
	StatusPending Status = "pending" // waiting for the customer
	StatusOnHold  Status = "on_hold" // waiting for a third party
	StatusSolved  Status = "solved"
	StatusClosed  Status = "closed"
)

// Valid reports whether s is a base status.
func (s Status) Valid() bool {
	switch s {
	case StatusNew, StatusOpen, StatusPending, StatusOnHold, StatusSolved, StatusClosed:
		return true
	}
	return false
}

// Done reports whether a ticket in s counts as resolved.
func (s Status) Done() bool { return s == StatusSolved || s == StatusClosed }

// Priority of a ticket; routing serves higher priorities first.
type Priority string

const (
	PriorityLow    Priority = "low"
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// Valid reports whether p is a known priority.
func (p Priority) Valid() bool { return p.Rank() > 0 }

// Rank orders priorities: urgent 4 … low 1.
func (p Priority) Rank() int {
	switch p {
	case PriorityLow:
		return 1
	case PriorityNormal:
		return 2
	case PriorityHigh:
		return 3
	case PriorityUrgent:
		return 4
	}
	return 0
}

// Resolution codes say how a ticket ended. A cancellation needs a
// cancellation reason.
const (
	ResolutionSolved       = "solved"
	ResolutionCancellation = "cancellation"
	ResolutionRetained     = "retained" // wanted to cancel, accepted a retention offer
	ResolutionDuplicate    = "duplicate"
	ResolutionNoResponse   = "no_response"
	ResolutionSpam         = "spam"
)

// ResolutionCodes lists the valid resolution codes.
var ResolutionCodes = []string{ResolutionSolved, ResolutionCancellation, ResolutionRetained, ResolutionDuplicate, ResolutionNoResponse, ResolutionSpam}

// Ticket is a case: the interactions about one problem of one customer.
type Ticket struct {
	ID           int64       `json:"id"`
	AccountID    int64       `json:"-"`
	Subject      string      `json:"subject"`
	Status       Status      `json:"status"`
	CustomStatus string      `json:"custom_status,omitempty"`
	Priority     Priority    `json:"priority"`
	Channel      Channel     `json:"channel"`
	CustomerID   int64       `json:"customer_id"`
	CustomerName string      `json:"customer_name,omitempty"` // read-only, for lists
	AssigneeID   *int64      `json:"assignee_id"`
	TeamID       *int64      `json:"team_id"`
	Tags         []string    `json:"tags"`
	Outcome      Outcome     `json:"outcome"`
	Times        TicketTimes `json:"times"`
}

// Outcome is how a ticket was wrapped up.
type Outcome struct {
	ContactReasonID      *int64 `json:"contact_reason_id"`
	ResolutionCode       string `json:"resolution_code,omitempty"`
	CancellationReasonID *int64 `json:"cancellation_reason_id"`
	RevenueLostCents     int64  `json:"revenue_lost_cents,omitempty"`
	RetentionOffered     bool   `json:"retention_offered,omitempty"`
	RetentionAccepted    bool   `json:"retention_accepted,omitempty"`
}

// TicketTimes are the timestamps and derived durations reports read.
type TicketTimes struct {
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
	FirstResponseAt      *time.Time `json:"first_response_at"`
	ResolvedAt           *time.Time `json:"resolved_at"`
	ClosedAt             *time.Time `json:"closed_at"`
	FirstResponseSeconds *int64     `json:"first_response_seconds"`
	ResolutionSeconds    *int64     `json:"resolution_seconds"`
}

// Validate checks the caller-set fields of a ticket.
func (t *Ticket) Validate() error {
	t.Subject = strings.TrimSpace(t.Subject)
	if t.Subject == "" {
		return FieldError("subject", "must not be empty")
	}
	if len(t.Subject) > 500 {
		return FieldError("subject", "must be at most 500 characters")
	}
	if t.Status == "" {
		t.Status = StatusNew
	}
	if !t.Status.Valid() {
		return FieldError("status", "must be one of new, open, pending, on_hold, solved, closed")
	}
	if t.Priority == "" {
		t.Priority = PriorityNormal
	}
	if !t.Priority.Valid() {
		return FieldError("priority", "must be one of low, normal, high, urgent")
	}
	if t.Channel == "" {
		t.Channel = ChannelEmail
	}
	if !t.Channel.Valid() {
		return FieldError("channel", "unknown channel %q", t.Channel)
	}
	if t.CustomerID <= 0 {
		return FieldError("customer_id", "is required")
	}
	if len(t.Tags) > 50 {
		return FieldError("tags", "at most 50 tags")
	}
	seen := map[string]bool{}
	tags := t.Tags[:0]
	for _, tag := range t.Tags {
		tag = strings.ToLower(strings.TrimSpace(tag))
		if tag == "" || len(tag) > 50 {
			return FieldError("tags", "tags must be 1-50 characters")
		}
		if !seen[tag] {
			seen[tag] = true
			tags = append(tags, tag)
		}
	}
	t.Tags = tags
	return t.Outcome.Validate(t.Status)
}

// Validate checks the wrap-up rules: a resolved ticket with a cancellation
// outcome must name the cancellation reason.
func (o *Outcome) Validate(status Status) error {
	if o.ResolutionCode != "" {
		ok := false
		for _, c := range ResolutionCodes {
			ok = ok || c == o.ResolutionCode
		}
		if !ok {
			return FieldError("outcome.resolution_code", "must be one of %s", strings.Join(ResolutionCodes, ", "))
		}
	}
	cancels := o.ResolutionCode == ResolutionCancellation || o.ResolutionCode == ResolutionRetained
	if cancels && o.CancellationReasonID == nil {
		return FieldError("outcome.cancellation_reason_id", "is required when the outcome is a cancellation")
	}
	if !cancels && o.CancellationReasonID != nil {
		return FieldError("outcome.cancellation_reason_id", "is only set when the outcome is a cancellation or retention")
	}
	if o.RevenueLostCents < 0 {
		return FieldError("outcome.revenue_lost_cents", "must not be negative")
	}
	if status.Done() && o.ContactReasonID == nil {
		return FieldError("outcome.contact_reason_id", "is required to solve or close a ticket")
	}
	return nil
}

// TicketFilter selects tickets in a list. Fields left zero do not filter.
type TicketFilter struct {
	Status     []Status
	AssigneeID *int64
	TeamID     *int64
	CustomerID *int64
	Channel    Channel
	Priority   Priority
	Tag        string
	Unassigned bool
	Page
}

// TicketStore keeps tickets. Visibility rules (private teams) are applied from
// the actor: a ticket the actor may not see is NotFound, never Forbidden, so
// its existence does not leak.
type TicketStore interface {
	// CreateTicket stores t and, when first is not nil, its first message in
	// the same transaction.
	CreateTicket(ctx context.Context, actor Actor, t *Ticket, first *Message) error
	Ticket(ctx context.Context, actor Actor, id int64) (*Ticket, error)
	// UpdateTicket applies change to the ticket as it is now, under a row
	// lock, so concurrent partial updates never overwrite each other. The
	// store keeps the timestamps (resolved, closed, first response) in step
	// with the status and returns the ticket as stored.
	UpdateTicket(ctx context.Context, actor Actor, id int64, change func(*Ticket) error) (*Ticket, error)
	Tickets(ctx context.Context, actor Actor, f TicketFilter) ([]Ticket, string, error)
}

// CanSeeTeam reports whether a's private-team rule lets a see a ticket of a
// team with the given privacy: supervisors and admins see every team, agents
// their own teams and the public ones.
func (a Actor) CanSeeTeam(teamID int64, private bool) bool {
	if !private || a.Role.AtLeast(RoleSupervisor) {
		return true
	}
	for _, id := range a.TeamIDs {
		if id == teamID {
			return true
		}
	}
	return false
}

// SameID tells whether two optional references (an assignee, a team, a
// reason: nil when unset) point at the same row.
func SameID(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
