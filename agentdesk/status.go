package agentdesk

import (
	"context"
	"strings"
)

// CustomStatus is an account's own name for a stage of work ("waiting for
// parts", "escalated"), mapped onto a base status. Reports, routing and the
// resolution timestamps read the base status; agents see the custom name.
type CustomStatus struct {
	ID        int64  `json:"id"`
	AccountID int64  `json:"-"`
	Name      string `json:"name"`
	MapsTo    Status `json:"maps_to"`
}

// Validate normalises the name (lower case, trimmed) and checks the mapping.
func (c *CustomStatus) Validate() error {
	c.Name = strings.ToLower(strings.TrimSpace(c.Name))
	if c.Name == "" || len(c.Name) > 50 {
		return FieldError("name", "must be 1-50 characters")
	}
	if Status(c.Name).Valid() {
		return FieldError("name", "%q is a base status already", c.Name)
	}
	if !c.MapsTo.Valid() {
		return FieldError("maps_to", "must be one of new, open, pending, on_hold, solved, closed")
	}
	return nil
}

// StatusStore keeps custom statuses. Changes are admin actions and are
// audited with the actor.
type StatusStore interface {
	CustomStatuses(ctx context.Context, accountID int64) ([]CustomStatus, error)
	CreateCustomStatus(ctx context.Context, actor Actor, c *CustomStatus) error
	// UpdateCustomStatus renames a status (tickets carrying it follow) or
	// changes its mapping while no ticket carries it.
	UpdateCustomStatus(ctx context.Context, actor Actor, c *CustomStatus) error
	// DeleteCustomStatus removes a status no ticket carries.
	DeleteCustomStatus(ctx context.Context, actor Actor, id int64) error
}
