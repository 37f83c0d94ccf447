package agentdesk

import (
	"context"
	"strings"
	"time"
)

// ReasonKind separates the admin-managed reason lists.
type ReasonKind string

const (
	ContactReason      ReasonKind = "contact"
	CancellationReason ReasonKind = "cancellation"
)

// Reason is a category (ParentID nil) or a reason under a category. Reasons
// that were used are archived, never deleted, so reports stay true.
type Reason struct {
	ID         int64      `json:"id"`
	AccountID  int64      `json:"-"`
	Kind       ReasonKind `json:"kind"`
	ParentID   *int64     `json:"parent_id"`
	Name       string     `json:"name"`
	ArchivedAt *time.Time `json:"archived_at"`
	CreatedAt  time.Time  `json:"created_at"`
}

// Validate checks the caller-set fields.
func (r *Reason) Validate() error {
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" || len(r.Name) > 200 {
		return FieldError("name", "must be 1-200 characters")
	}
	if r.Kind != ContactReason && r.Kind != CancellationReason {
		return FieldError("kind", "must be contact or cancellation")
	}
	return nil
}

// ReasonStore keeps reasons. Changes take the actor: they are admin actions
// and land in the audit log with the change.
type ReasonStore interface {
	CreateReason(ctx context.Context, actor Actor, r *Reason) error
	Reason(ctx context.Context, accountID, id int64) (*Reason, error)
	// Reasons lists one kind ("" for both), categories before their reasons.
	Reasons(ctx context.Context, accountID int64, kind ReasonKind, includeArchived bool) ([]Reason, error)
	UpdateReason(ctx context.Context, actor Actor, r *Reason) error
	// DeleteReason deletes an unused reason and archives a used one (a
	// category counts as used when any of its reasons is).
	DeleteReason(ctx context.Context, actor Actor, id int64) (archived bool, err error)
}
