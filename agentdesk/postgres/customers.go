package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"agentdesk/agentdesk"
)

var _ agentdesk.CustomerStore = (*Store)(nil)

const customerColumns = `c.id, c.name, c.company_id, c.lifecycle_stage, c.preferred_channel, c.attributes, c.merged_into, c.created_at, c.updated_at`

func scanCustomer(row pgx.Row, accountID int64) (*agentdesk.Customer, error) {
	c := &agentdesk.Customer{AccountID: accountID}
	var attrs []byte
	if err := row.Scan(&c.ID, &c.Name, &c.CompanyID, &c.Stage, &c.PreferredChannel, &attrs, &c.MergedInto, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(attrs, &c.Attributes); err != nil {
		return nil, fmt.Errorf("customer %d attributes: %w", c.ID, err)
	}
	if c.Attributes == nil {
		c.Attributes = map[string]string{}
	}
	c.Identities = []agentdesk.Identity{}
	return c, nil
}

// attrJSON encodes attributes, never as JSON null.
func attrJSON(m map[string]string) []byte {
	if m == nil {
		return []byte("{}")
	}
	raw, _ := json.Marshal(m)
	return raw
}

// CreateCustomer adds a customer with its identities. A taken identity is a
// Conflict naming identities.value, and nothing is written.
func (s *Store) CreateCustomer(ctx context.Context, accountID int64, c *agentdesk.Customer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	err := InTx(ctx, s.db, func(tx pgx.Tx) error { return createCustomer(ctx, tx, accountID, c) })
	if err != nil {
		c.ID = 0
		s.nameHolder(ctx, accountID, err, c.Identities)
	}
	return err
}

// nameHolder improves a duplicate-identity conflict with the customer that
// holds the address, once the failed transaction is over, so an agent can
// find the duplicate and merge.
func (s *Store) nameHolder(ctx context.Context, accountID int64, err error, ids []agentdesk.Identity) {
	var e *agentdesk.Error
	if !errors.As(err, &e) || e.Kind != agentdesk.Conflict || e.Field != "identities.value" {
		return
	}
	for _, id := range ids {
		if holder, herr := identityHolder(ctx, s.db, accountID, id.Kind, id.Network, id.Value); herr == nil {
			e.Message = fmt.Sprintf("%s %q already belongs to customer %d", id.Kind, id.Value, holder)
			return
		}
	}
}

func createCustomer(ctx context.Context, q querier, accountID int64, c *agentdesk.Customer) error {
	err := q.QueryRow(ctx, `INSERT INTO customers (account_id, name, company_id, lifecycle_stage, preferred_channel, attributes)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at, updated_at`,
		accountID, c.Name, c.CompanyID, c.Stage, c.PreferredChannel, attrJSON(c.Attributes)).Scan(&c.ID, &c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return translate(err, "customer")
	}
	c.AccountID = accountID
	if c.Attributes == nil {
		c.Attributes = map[string]string{}
	}
	for i := range c.Identities {
		if err := insertIdentity(ctx, q, accountID, c.ID, &c.Identities[i]); err != nil {
			return err
		}
	}
	if c.Identities == nil {
		c.Identities = []agentdesk.Identity{}
	}
	return nil
}

// insertIdentity adds one identity. A unique violation names the customer
// that holds the address, so an agent can find the duplicate and merge.
func insertIdentity(ctx context.Context, q querier, accountID, customerID int64, id *agentdesk.Identity) error {
	err := q.QueryRow(ctx, `INSERT INTO identities (account_id, customer_id, kind, network, value) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		accountID, customerID, id.Kind, id.Network, id.Value).Scan(&id.ID)
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" {
		e := &agentdesk.Error{Kind: agentdesk.Conflict, Field: "identities.value",
			Message: fmt.Sprintf("%s %q already belongs to a customer", id.Kind, id.Value), Err: err}
		return e
	}
	return translate(err, "identity")
}

func identityHolder(ctx context.Context, q querier, accountID int64, kind agentdesk.IdentityKind, network, value string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT customer_id FROM identities WHERE account_id = $1 AND kind = $2 AND network = $3 AND value = $4`,
		accountID, kind, network, value).Scan(&id)
	return id, err
}

// Customer returns one customer with its identities. A merged customer is
// returned too, with MergedInto set, so old links can lead to the survivor.
func (s *Store) Customer(ctx context.Context, accountID, id int64) (*agentdesk.Customer, error) {
	return customerByID(ctx, s.db, accountID, id, false)
}

func customerByID(ctx context.Context, q querier, accountID, id int64, lock bool) (*agentdesk.Customer, error) {
	sql := `SELECT ` + customerColumns + ` FROM customers c WHERE c.account_id = $1 AND c.id = $2`
	if lock {
		sql += ` FOR UPDATE`
	}
	c, err := scanCustomer(q.QueryRow(ctx, sql, accountID, id), accountID)
	if err != nil {
		return nil, translate(err, "customer")
	}
	if err := loadIdentities(ctx, q, accountID, []*agentdesk.Customer{c}); err != nil {
		return nil, err
	}
	return c, nil
}

// loadIdentities fills the identities of customers with one query.
func loadIdentities(ctx context.Context, q querier, accountID int64, cs []*agentdesk.Customer) error {
	if len(cs) == 0 {
		return nil
	}
	ids := make([]int64, len(cs))
	byID := make(map[int64]*agentdesk.Customer, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
		byID[c.ID] = c
		c.Identities = []agentdesk.Identity{}
	}
	rows, err := q.Query(ctx, `SELECT customer_id, id, kind, network, value FROM identities
		WHERE account_id = $1 AND customer_id = ANY($2) ORDER BY id`, accountID, ids)
	if err != nil {
		return fmt.Errorf("load identities: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var owner int64
		var id agentdesk.Identity
		if err := rows.Scan(&owner, &id.ID, &id.Kind, &id.Network, &id.Value); err != nil {
			return err
		}
		byID[owner].Identities = append(byID[owner].Identities, id)
	}
	return rows.Err()
}

// CustomerByIdentity finds the customer holding an address. Identities move
// on merge, so the answer is never a merged customer.
func (s *Store) CustomerByIdentity(ctx context.Context, accountID int64, kind agentdesk.IdentityKind, network, value string) (*agentdesk.Customer, error) {
	id := agentdesk.Identity{Kind: kind, Network: network, Value: value}
	if err := id.Validate(); err != nil {
		return nil, err
	}
	// One round trip for the customer, one for its identities: this runs
	// on every inbound contact and every caller-id lookup.
	c, err := scanCustomer(s.db.QueryRow(ctx, `SELECT `+customerColumns+` FROM identities i JOIN customers c ON c.account_id = i.account_id AND c.id = i.customer_id
		WHERE i.account_id = $1 AND i.kind = $2 AND i.network = $3 AND i.value = $4`, accountID, id.Kind, id.Network, id.Value), accountID)
	if err != nil {
		return nil, translate(err, "customer")
	}
	if err := loadIdentities(ctx, s.db, accountID, []*agentdesk.Customer{c}); err != nil {
		return nil, err
	}
	return c, nil
}

// UpdateCustomer replaces the caller-settable fields (not identities, which
// have their own calls). A merged customer cannot be changed: its survivor is
// the record now.
func (s *Store) UpdateCustomer(ctx context.Context, accountID int64, c *agentdesk.Customer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	return InTx(ctx, s.db, func(tx pgx.Tx) error {
		cur, err := customerByID(ctx, tx, accountID, c.ID, true)
		if err != nil {
			return err
		}
		if cur.MergedInto != nil {
			return agentdesk.Errorf(agentdesk.Conflict, "customer %d is merged into customer %d; change that one", c.ID, *cur.MergedInto)
		}
		err = tx.QueryRow(ctx, `UPDATE customers SET name = $3, company_id = $4, lifecycle_stage = $5, preferred_channel = $6, attributes = $7, updated_at = now()
			WHERE account_id = $1 AND id = $2 RETURNING `+strings.ReplaceAll(customerColumns, "c.", ""),
			accountID, c.ID, c.Name, c.CompanyID, c.Stage, c.PreferredChannel, attrJSON(c.Attributes)).
			Scan(&c.ID, &c.Name, &c.CompanyID, &c.Stage, &c.PreferredChannel, new([]byte), &c.MergedInto, &c.CreatedAt, &c.UpdatedAt)
		if err != nil {
			return translate(err, "customer")
		}
		c.AccountID = accountID
		if c.Attributes == nil {
			c.Attributes = map[string]string{}
		}
		c.Identities = cur.Identities
		return nil
	})
}

// Customers lists live (not merged) customers, newest first. Query matches a
// name prefix (case-insensitive) or an exact identity value; the caller
// normalises phone numbers to E.164 before asking.
func (s *Store) Customers(ctx context.Context, accountID int64, f agentdesk.CustomerFilter) ([]agentdesk.Customer, string, error) {
	p := f.Page.Normalize()
	k, err := agentdesk.DecodeCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	if f.Stage != "" && !f.Stage.Valid() {
		return nil, "", agentdesk.FieldError("lifecycle_stage", "must be one of lead, prospect, customer, churned")
	}
	args := []any{accountID, p.Limit + 1}
	where := []string{"c.account_id = $1", "c.merged_into IS NULL"}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		// An exact address (email, E.164 phone, visitor or shop id) wins;
		// otherwise q is a name prefix. Two separate conditions, because
		// an OR of both makes PostgreSQL walk every customer, and a UNION
		// of both sorts every customer a common prefix matches.
		var ids []int64
		err := s.db.QueryRow(ctx, `SELECT coalesce(array_agg(customer_id), '{}') FROM identities
			WHERE account_id = $1 AND kind IN ('email', 'phone', 'visitor', 'shop') AND network = '' AND value = ANY($2)`,
			accountID, []string{q, strings.ToLower(q)}).Scan(&ids)
		if err != nil {
			return nil, "", fmt.Errorf("find customers by address: %w", err)
		}
		if len(ids) > 0 {
			where = append(where, "c.id = ANY("+arg(ids)+")")
		} else {
			where = append(where, "lower(c.name) LIKE "+arg(likePrefix(strings.ToLower(q))))
		}
	}
	if f.CompanyID != nil {
		where = append(where, "c.company_id = "+arg(*f.CompanyID))
	}
	if f.Stage != "" {
		where = append(where, "c.lifecycle_stage = "+arg(string(f.Stage)))
	}
	if k != nil {
		where = append(where, fmt.Sprintf("(c.created_at, c.id) < (%s, %s)", arg(k.At), arg(k.ID)))
	}
	rows, err := s.db.Query(ctx, `SELECT `+customerColumns+` FROM customers c WHERE `+strings.Join(where, " AND ")+
		` ORDER BY c.created_at DESC, c.id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list customers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agentdesk.Customer, error) {
		c, err := scanCustomer(r, accountID)
		if err != nil {
			return agentdesk.Customer{}, err
		}
		return *c, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list customers: %w", err)
	}
	keys := make([]agentdesk.Keyset, len(out))
	for i, c := range out {
		keys[i] = agentdesk.Keyset{At: c.CreatedAt, ID: c.ID}
	}
	out, next := trimPage(out, keys, p.Limit)
	ptrs := make([]*agentdesk.Customer, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	if err := loadIdentities(ctx, s.db, accountID, ptrs); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// likePrefix escapes LIKE wildcards so a search for "50%" means the text.
func likePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s) + "%"
}

// AddIdentity gives a customer one more address.
func (s *Store) AddIdentity(ctx context.Context, accountID, customerID int64, id *agentdesk.Identity) error {
	if err := id.Validate(); err != nil {
		return err
	}
	err := InTx(ctx, s.db, func(tx pgx.Tx) error {
		if err := liveCustomer(ctx, tx, accountID, customerID); err != nil {
			return err
		}
		return insertIdentity(ctx, tx, accountID, customerID, id)
	})
	s.nameHolder(ctx, accountID, err, []agentdesk.Identity{*id})
	return err
}

// liveCustomer locks a customer row and checks it is not merged away.
func liveCustomer(ctx context.Context, q querier, accountID, customerID int64) error {
	var merged *int64
	err := q.QueryRow(ctx, `SELECT merged_into FROM customers WHERE account_id = $1 AND id = $2 FOR UPDATE`, accountID, customerID).Scan(&merged)
	if err != nil {
		return translate(err, "customer")
	}
	if merged != nil {
		return agentdesk.Errorf(agentdesk.Conflict, "customer %d is merged into customer %d", customerID, *merged)
	}
	return nil
}

// RemoveIdentity deletes one address of a customer. Past tickets and
// messages stay with the customer; only future contacts from that address
// no longer find it.
func (s *Store) RemoveIdentity(ctx context.Context, accountID, customerID, identityID int64) error {
	return InTx(ctx, s.db, func(tx pgx.Tx) error {
		if err := liveCustomer(ctx, tx, accountID, customerID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM identities WHERE account_id = $1 AND customer_id = $2 AND id = $3`, accountID, customerID, identityID)
		if err != nil {
			return fmt.Errorf("remove identity: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return agentdesk.Errorf(agentdesk.NotFound, "identity not found")
		}
		return nil
	})
}
