package agentdesk

import (
	"context"
	"strings"
	"time"
)

// Company is an organisation customers belong to (B2B).
type Company struct {
	ID         int64             `json:"id"`
	AccountID  int64             `json:"-"`
	Name       string            `json:"name"`
	Domain     string            `json:"domain,omitempty"`
	Attributes map[string]string `json:"attributes"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

// Validate checks the company's fields.
func (c *Company) Validate() error {
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" || len(c.Name) > 200 {
		return FieldError("name", "must be 1-200 characters")
	}
	c.Domain = strings.ToLower(strings.TrimSpace(c.Domain))
	if c.Domain != "" && (len(c.Domain) > 253 || !strings.Contains(c.Domain, ".") || strings.ContainsAny(c.Domain, " /@:")) {
		return FieldError("domain", "%q is not a domain name", c.Domain)
	}
	return nil
}

// CompanyStore keeps companies.
type CompanyStore interface {
	CreateCompany(ctx context.Context, accountID int64, c *Company) error
	Company(ctx context.Context, accountID, id int64) (*Company, error)
	UpdateCompany(ctx context.Context, accountID int64, c *Company) error
	Companies(ctx context.Context, accountID int64, p Page) ([]Company, string, error)
}
