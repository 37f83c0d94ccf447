package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

var _ agentdesk.CompanyStore = (*Store)(nil)

const companyColumns = `id, name, coalesce(domain, ''), attributes, created_at, updated_at`

func scanCompany(row pgx.Row, accountID int64) (*agentdesk.Company, error) {
	c := &agentdesk.Company{AccountID: accountID}
	var attrs []byte
	if err := row.Scan(&c.ID, &c.Name, &c.Domain, &attrs, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(attrs, &c.Attributes); err != nil {
		return nil, fmt.Errorf("company %d attributes: %w", c.ID, err)
	}
	if c.Attributes == nil {
		c.Attributes = map[string]string{}
	}
	return c, nil
}

// CreateCompany adds a company. A domain is unique in an account (it is how
// mail from a colleague finds the company), so a taken one is a Conflict.
func (s *Store) CreateCompany(ctx context.Context, accountID int64, c *agentdesk.Company) error {
	if err := c.Validate(); err != nil {
		return err
	}
	got, err := scanCompany(s.db.QueryRow(ctx, `INSERT INTO companies (account_id, name, domain, attributes)
		VALUES ($1, $2, nullif($3, ''), $4) RETURNING `+companyColumns, accountID, c.Name, c.Domain, attrJSON(c.Attributes)), accountID)
	if err != nil {
		return translate(err, "company")
	}
	*c = *got
	return nil
}

// Company returns one company.
func (s *Store) Company(ctx context.Context, accountID, id int64) (*agentdesk.Company, error) {
	c, err := scanCompany(s.db.QueryRow(ctx, `SELECT `+companyColumns+` FROM companies WHERE account_id = $1 AND id = $2`, accountID, id), accountID)
	if err != nil {
		return nil, translate(err, "company")
	}
	return c, nil
}

// UpdateCompany replaces a company's name, domain and attributes.
func (s *Store) UpdateCompany(ctx context.Context, accountID int64, c *agentdesk.Company) error {
	if err := c.Validate(); err != nil {
		return err
	}
	got, err := scanCompany(s.db.QueryRow(ctx, `UPDATE companies SET name = $3, domain = nullif($4, ''), attributes = $5, updated_at = now()
		WHERE account_id = $1 AND id = $2 RETURNING `+companyColumns, accountID, c.ID, c.Name, c.Domain, attrJSON(c.Attributes)), accountID)
	if err != nil {
		return translate(err, "company")
	}
	*c = *got
	return nil
}

// Companies lists companies, newest first.
func (s *Store) Companies(ctx context.Context, accountID int64, p agentdesk.Page) ([]agentdesk.Company, string, error) {
	p = p.Normalize()
	k, err := agentdesk.DecodeCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	args := []any{accountID, p.Limit + 1}
	where := ""
	if k != nil {
		where = ` AND (created_at, id) < ($3, $4)`
		args = append(args, k.At, k.ID)
	}
	rows, err := s.db.Query(ctx, `SELECT `+companyColumns+` FROM companies WHERE account_id = $1`+where+
		` ORDER BY created_at DESC, id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list companies: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agentdesk.Company, error) {
		c, err := scanCompany(r, accountID)
		if err != nil {
			return agentdesk.Company{}, err
		}
		return *c, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list companies: %w", err)
	}
	keys := make([]agentdesk.Keyset, len(out))
	for i, c := range out {
		keys[i] = agentdesk.Keyset{At: c.CreatedAt, ID: c.ID}
	}
	out, next := trimPage(out, keys, p.Limit)
	return out, next, nil
}
