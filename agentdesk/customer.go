package agentdesk

import (
	"context"
	"net/mail"
	"strings"
	"time"
)

// LifecycleStage is where a customer stands in the sales and service lifecycle.
type LifecycleStage string

const (
	StageLead     LifecycleStage = "lead"
	StageProspect LifecycleStage = "prospect"
	StageCustomer LifecycleStage = "customer"
	StageChurned  LifecycleStage = "churned"
)

// Valid reports whether s is a known stage.
func (s LifecycleStage) Valid() bool {
	switch s {
	case StageLead, StageProspect, StageCustomer, StageChurned:
		return true
	}
	return false
}

// Customer is a person who contacts the company (the contact record). A
// customer is reached through identities; tickets, messages and orders hang off
// the customer.
type Customer struct {
	ID               int64             `json:"id"`
	AccountID        int64             `json:"-"`
	Name             string            `json:"name"`
	CompanyID        *int64            `json:"company_id"`
	Stage            LifecycleStage    `json:"lifecycle_stage"`
	PreferredChannel Channel           `json:"preferred_channel,omitempty"`
	Attributes       map[string]string `json:"attributes"`
	Identities       []Identity        `json:"identities"`
	// MergedInto is set while this customer is merged into another: its
	// identities, tickets, messages and orders live on that customer.
	MergedInto *int64    `json:"merged_into,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Validate checks the fields a caller sets.
func (c *Customer) Validate() error {
	c.Name = strings.TrimSpace(c.Name)
	if len(c.Name) > 200 {
		return FieldError("name", "must be at most 200 characters")
	}
	if c.Stage == "" {
		c.Stage = StageCustomer
	}
	if !c.Stage.Valid() {
		return FieldError("lifecycle_stage", "must be one of lead, prospect, customer, churned")
	}
	if c.PreferredChannel != "" && !c.PreferredChannel.Valid() {
		return FieldError("preferred_channel", "unknown channel %q", c.PreferredChannel)
	}
	if len(c.Attributes) > 100 {
		return FieldError("attributes", "at most 100 attributes")
	}
	for k, v := range c.Attributes {
		if k == "" || len(k) > 100 || len(v) > 2000 {
			return FieldError("attributes", "keys must be 1-100 characters and values at most 2000")
		}
	}
	for i := range c.Identities {
		if err := c.Identities[i].Validate(); err != nil {
			return err
		}
	}
	return nil
}

// IdentityKind is the kind of address a customer is reached at.
type IdentityKind string

const (
	IdentityEmail   IdentityKind = "email"
	IdentityPhone   IdentityKind = "phone"   // E.164, normalised by the caller
	IdentityVisitor IdentityKind = "visitor" // chat widget visitor id
	IdentitySocial  IdentityKind = "social"  // handle on Network
	IdentityShop    IdentityKind = "shop"    // shop account id
)

// Identity is one address of a customer. (Kind, Network, Value) is unique in an
// account: two customers never share an address.
type Identity struct {
	ID      int64        `json:"id"`
	Kind    IdentityKind `json:"kind"`
	Network string       `json:"network,omitempty"` // social network; "" otherwise
	Value   string       `json:"value"`
}

// Validate normalises and checks the identity. Phone numbers must already be
// E.164 (the adapters parse them with a phone-number library).
func (id *Identity) Validate() error {
	id.Value = strings.TrimSpace(id.Value)
	id.Network = strings.ToLower(strings.TrimSpace(id.Network))
	if id.Value == "" {
		return FieldError("identities.value", "must not be empty")
	}
	if len(id.Value) > 320 {
		return FieldError("identities.value", "must be at most 320 characters")
	}
	switch id.Kind {
	case IdentityEmail:
		addr, err := NormalizeEmail(id.Value)
		if err != nil {
			return FieldError("identities.value", "%q is not a valid email address", id.Value)
		}
		id.Value = addr
	case IdentityPhone:
		if !IsE164(id.Value) {
			return FieldError("identities.value", "phone %q is not an E.164 number", id.Value)
		}
	case IdentitySocial:
		if id.Network == "" {
			return FieldError("identities.network", "social identities need a network")
		}
	case IdentityVisitor, IdentityShop:
	default:
		return FieldError("identities.kind", "must be one of email, phone, visitor, social, shop")
	}
	if id.Kind != IdentitySocial {
		id.Network = ""
	}
	return nil
}

// NormalizeEmail checks an address and returns it lower-cased, without a
// display name.
func NormalizeEmail(s string) (string, error) {
	a, err := mail.ParseAddress(strings.TrimSpace(s))
	if err != nil || a.Name != "" || !strings.Contains(a.Address, "@") || strings.ContainsAny(a.Address, " <>") {
		return "", FieldError("email", "%q is not a valid email address", s)
	}
	at := strings.LastIndex(a.Address, "@")
	if !strings.Contains(a.Address[at:], ".") {
		return "", FieldError("email", "%q is not a valid email address", s)
	}
	return strings.ToLower(a.Address), nil
}

// IsE164 reports whether s looks like an E.164 number: + and 8 to 15 digits.
func IsE164(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// CustomerFilter selects customers in a list.
type CustomerFilter struct {
	Query     string // name prefix or identity value
	CompanyID *int64
	Stage     LifecycleStage
	Page
}

// CustomerStore keeps customers, identities and merges.
type CustomerStore interface {
	CreateCustomer(ctx context.Context, accountID int64, c *Customer) error
	Customer(ctx context.Context, accountID, id int64) (*Customer, error)
	CustomerByIdentity(ctx context.Context, accountID int64, kind IdentityKind, network, value string) (*Customer, error)
	UpdateCustomer(ctx context.Context, accountID int64, c *Customer) error
	Customers(ctx context.Context, accountID int64, f CustomerFilter) ([]Customer, string, error)
	AddIdentity(ctx context.Context, accountID, customerID int64, id *Identity) error
	RemoveIdentity(ctx context.Context, accountID, customerID, identityID int64) error
	Merge(ctx context.Context, accountID int64, survivorID, mergedID int64, actor Actor) (*Merge, error)
	Unmerge(ctx context.Context, accountID, mergeID int64, actor Actor) (*Merge, error)
}

// Merge records that one customer was folded into another, with everything
// needed to undo it.
type Merge struct {
	ID         int64 `json:"id"`
	SurvivorID int64 `json:"survivor_id"`
	MergedID   int64 `json:"merged_id"`
	// Moved counts the rows that moved to the survivor, by table.
	Moved     map[string]int `json:"moved"`
	CreatedAt time.Time      `json:"created_at"`
	UndoneAt  *time.Time     `json:"undone_at"`
}
