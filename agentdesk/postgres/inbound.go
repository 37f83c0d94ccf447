package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// Ingest stores one inbound contact in the caller's transaction: it finds
// the customer by in.Identity (creating one when the address is new, and
// adding in.Extra addresses nobody holds), then opens a ticket or appends to
// in.TicketID, and writes the timeline message. The caller enqueues the
// routing task in the same transaction, so a committed contact is always
// routed and a failed enqueue leaves nothing behind.
func (s *Store) Ingest(ctx context.Context, tx pgx.Tx, accountID int64, in agentdesk.Inbound) (agentdesk.IngestResult, error) {
	var r agentdesk.IngestResult
	if err := in.Normalize(); err != nil {
		return r, err
	}
	ids := append([]agentdesk.Identity{in.Identity}, in.Extra...)
	customerID, created, err := resolveCustomer(ctx, tx, accountID, ids, in.Name)
	if err != nil {
		return r, err
	}
	w, err := writeContact(ctx, tx, accountID, customerID, &in)
	if err != nil {
		return r, err
	}
	w.CustomerID, w.CustomerCreated = customerID, created
	return w, nil
}

// resolveCustomer returns the customer holding the first of ids that anyone
// holds, or a new customer holding them all. Addresses held by nobody are
// added to the customer found; addresses held by someone else are left
// alone (an agent may merge the two). name fills an empty name.
//
// Two first contacts from the same new address at once both try to create:
// the second's identity insert waits for the first's commit, finds the
// address taken, drops its own new (still empty) customer and uses the
// first's, ending as if the two had come one after the other.
func resolveCustomer(ctx context.Context, tx pgx.Tx, accountID int64, ids []agentdesk.Identity, name string) (int64, bool, error) {
	var customerID int64
	for _, id := range ids {
		holder, err := identityHolder(ctx, tx, accountID, id.Kind, id.Network, id.Value)
		if err == nil {
			customerID = holder
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, false, fmt.Errorf("find customer: %w", err)
		}
	}
	created := false
	if customerID == 0 {
		if err := tx.QueryRow(ctx, `INSERT INTO customers (account_id, name) VALUES ($1, $2) RETURNING id`, accountID, name).Scan(&customerID); err != nil {
			return 0, false, fmt.Errorf("create customer: %w", err)
		}
		created = true
	}
	// Inserts go in one global order, so two contacts naming the same
	// addresses in different orders cannot deadlock.
	ids = slices.Clone(ids)
	slices.SortFunc(ids, func(a, b agentdesk.Identity) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Network, b.Network), cmp.Compare(a.Value, b.Value))
	})
	for i := 0; i < len(ids); i++ {
		id := ids[i]
		var added int64
		err := tx.QueryRow(ctx, `INSERT INTO identities (account_id, customer_id, kind, network, value) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (account_id, kind, network, value) DO NOTHING RETURNING id`, accountID, customerID, id.Kind, id.Network, id.Value).Scan(&added)
		if errors.Is(err, pgx.ErrNoRows) {
			if created {
				// Lost a race: a concurrent contact created a customer with
				// this address since we looked. Use that customer, as if we
				// had come second, and give it the other addresses.
				holder, herr := identityHolder(ctx, tx, accountID, id.Kind, id.Network, id.Value)
				if herr != nil {
					return 0, false, fmt.Errorf("find customer: %w", herr)
				}
				if _, err := tx.Exec(ctx, `DELETE FROM identities WHERE account_id = $1 AND customer_id = $2`, accountID, customerID); err != nil {
					return 0, false, fmt.Errorf("drop duplicate customer: %w", err)
				}
				if _, err := tx.Exec(ctx, `DELETE FROM customers WHERE account_id = $1 AND id = $2`, accountID, customerID); err != nil {
					return 0, false, fmt.Errorf("drop duplicate customer: %w", err)
				}
				customerID, created = holder, false
				i = -1 // add the other addresses to the holder
			}
			continue
		}
		if err != nil {
			return 0, false, translate(err, "identity")
		}
	}
	if name != "" && !created {
		if _, err := tx.Exec(ctx, `UPDATE customers SET name = $3, updated_at = now() WHERE account_id = $1 AND id = $2 AND name = ''`,
			accountID, customerID, name); err != nil {
			return 0, false, fmt.Errorf("name customer: %w", err)
		}
	}
	return customerID, created, nil
}

// writeContact opens a ticket (or appends to in.TicketID) and writes the
// message. A customer's message reopens a solved, closed or pending ticket;
// order events never change a ticket's status.
func writeContact(ctx context.Context, tx pgx.Tx, accountID, customerID int64, in *agentdesk.Inbound) (agentdesk.IngestResult, error) {
	r := agentdesk.IngestResult{CustomerID: customerID}
	var at any // nil: the database's now()
	if !in.At.IsZero() {
		at = in.At
	}
	if in.TicketID != 0 {
		var status agentdesk.Status
		err := tx.QueryRow(ctx, `SELECT status FROM tickets WHERE account_id = $1 AND id = $2 FOR UPDATE`, accountID, in.TicketID).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return r, agentdesk.FieldError("ticket_id", "no such ticket")
		}
		if err != nil {
			return r, fmt.Errorf("lock ticket: %w", err)
		}
		r.TicketID = in.TicketID
		sql := `UPDATE tickets SET updated_at = coalesce($3, now()) WHERE account_id = $1 AND id = $2`
		if in.Kind != agentdesk.KindOrder && (status.Done() || status == agentdesk.StatusPending) {
			sql = `UPDATE tickets SET status = 'open', closed_at = NULL, updated_at = coalesce($3, now()) WHERE account_id = $1 AND id = $2`
			r.Reopened = status.Done()
		}
		if _, err := tx.Exec(ctx, sql, accountID, in.TicketID, at); err != nil {
			return r, fmt.Errorf("update ticket: %w", err)
		}
	} else {
		err := tx.QueryRow(ctx, `INSERT INTO tickets (account_id, subject, status, priority, channel, customer_id, created_at, updated_at, closed_at)
			VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()), coalesce($7, now()), CASE WHEN $3 = 'closed' THEN coalesce($7, now()) END)
			RETURNING id`, accountID, in.Subject, in.Status, in.Priority, in.Channel, customerID, at).Scan(&r.TicketID)
		if err != nil {
			return r, translate(err, "ticket")
		}
		r.TicketCreated = true
	}
	meta := []byte("{}")
	if len(in.Meta) > 0 {
		var err error
		if meta, err = json.Marshal(in.Meta); err != nil {
			return r, agentdesk.FieldError("meta", "cannot be stored as JSON")
		}
	}
	err := tx.QueryRow(ctx, `INSERT INTO messages (account_id, ticket_id, customer_id, kind, direction, subject, body, meta, created_at)
		VALUES ($1, $2, $3, $4, 'in', $5, $6, $7, coalesce($8, now())) RETURNING id`,
		accountID, r.TicketID, customerID, in.Kind, in.Subject, in.Body, meta, at).Scan(&r.MessageID)
	if err != nil {
		return r, translate(err, "message")
	}
	return r, nil
}

// AccountExists checks that a public endpoint's ?account= names a tenant.
func (s *Store) AccountExists(ctx context.Context, accountID int64) error {
	var one int
	return translate(s.db.QueryRow(ctx, `SELECT 1 FROM accounts WHERE id = $1`, accountID).Scan(&one), "account")
}
