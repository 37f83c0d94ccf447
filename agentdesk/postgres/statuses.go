package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// CustomStatuses lists an account's custom statuses by base status and name.
func (s *Store) CustomStatuses(ctx context.Context, accountID int64) ([]agentdesk.CustomStatus, error) {
	rows, err := s.db.Query(ctx, `SELECT id, name, maps_to FROM custom_statuses WHERE account_id = $1
		ORDER BY array_position(ARRAY['new', 'open', 'pending', 'on_hold', 'solved', 'closed'], maps_to), name`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list custom statuses: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (agentdesk.CustomStatus, error) {
		c := agentdesk.CustomStatus{AccountID: accountID}
		err := r.Scan(&c.ID, &c.Name, &c.MapsTo)
		return c, err
	})
}

// CustomStatus returns one custom status.
func (s *Store) CustomStatus(ctx context.Context, accountID, id int64) (*agentdesk.CustomStatus, error) {
	c := &agentdesk.CustomStatus{AccountID: accountID}
	err := s.db.QueryRow(ctx, `SELECT id, name, maps_to FROM custom_statuses WHERE account_id = $1 AND id = $2`, accountID, id).Scan(&c.ID, &c.Name, &c.MapsTo)
	if err != nil {
		return nil, translate(err, "custom status")
	}
	return c, nil
}

// CreateCustomStatus adds a custom status.
func (s *Store) CreateCustomStatus(ctx context.Context, actor agentdesk.Actor, c *agentdesk.CustomStatus) error {
	if err := c.Validate(); err != nil {
		return err
	}
	return translate(InTx(ctx, s.db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO custom_statuses (account_id, name, maps_to) VALUES ($1, $2, $3) RETURNING id`,
			actor.AccountID, c.Name, c.MapsTo).Scan(&c.ID)
		if err != nil {
			return err
		}
		c.AccountID = actor.AccountID
		return Audit(ctx, tx, actor, "status.create", fmt.Sprintf("status:%d", c.ID), c)
	}), "custom status")
}

// lockCustomStatus reads a status for update and counts the tickets carrying it.
func lockCustomStatus(ctx context.Context, tx pgx.Tx, accountID, id int64) (*agentdesk.CustomStatus, bool, error) {
	c := &agentdesk.CustomStatus{AccountID: accountID}
	err := tx.QueryRow(ctx, `SELECT id, name, maps_to FROM custom_statuses WHERE account_id = $1 AND id = $2 FOR UPDATE`, accountID, id).Scan(&c.ID, &c.Name, &c.MapsTo)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, agentdesk.Errorf(agentdesk.NotFound, "custom status %d not found", id)
	}
	if err != nil {
		return nil, false, err
	}
	var used bool
	err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tickets WHERE account_id = $1 AND custom_status = $2)`, accountID, c.Name).Scan(&used)
	return c, used, err
}

// UpdateCustomStatus renames a status, carrying the tickets that have it
// along, or remaps it while no ticket has it: remapping a status in use would
// silently move tickets between base statuses behind their timestamps.
func (s *Store) UpdateCustomStatus(ctx context.Context, actor agentdesk.Actor, c *agentdesk.CustomStatus) error {
	if err := c.Validate(); err != nil {
		return err
	}
	acct := actor.AccountID
	return translate(InTx(ctx, s.db, func(tx pgx.Tx) error {
		before, used, err := lockCustomStatus(ctx, tx, acct, c.ID)
		if err != nil {
			return err
		}
		if used && before.MapsTo != c.MapsTo {
			return &agentdesk.Error{Kind: agentdesk.Conflict, Field: "maps_to", Message: fmt.Sprintf("tickets have status %q; move them first, or create a new status", before.Name)}
		}
		if _, err := tx.Exec(ctx, `UPDATE custom_statuses SET name = $3, maps_to = $4 WHERE account_id = $1 AND id = $2`, acct, c.ID, c.Name, c.MapsTo); err != nil {
			return err
		}
		if used && before.Name != c.Name {
			if _, err := tx.Exec(ctx, `UPDATE tickets SET custom_status = $3 WHERE account_id = $1 AND custom_status = $2`, acct, before.Name, c.Name); err != nil {
				return err
			}
		}
		c.AccountID = acct
		return Audit(ctx, tx, actor, "status.update", fmt.Sprintf("status:%d", c.ID), map[string]any{"before": before, "after": c})
	}), "custom status")
}

// DeleteCustomStatus removes a status that no ticket has.
func (s *Store) DeleteCustomStatus(ctx context.Context, actor agentdesk.Actor, id int64) error {
	acct := actor.AccountID
	return translate(InTx(ctx, s.db, func(tx pgx.Tx) error {
		before, used, err := lockCustomStatus(ctx, tx, acct, id)
		if err != nil {
			return err
		}
		if used {
			return agentdesk.Errorf(agentdesk.Conflict, "tickets have status %q; move them to another status first", before.Name)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM custom_statuses WHERE account_id = $1 AND id = $2`, acct, id); err != nil {
			return err
		}
		return Audit(ctx, tx, actor, "status.delete", fmt.Sprintf("status:%d", id), before)
	}), "custom status")
}

// Compile-time checks that the store implements the domain's interfaces.
var (
	_ agentdesk.TicketStore  = (*Store)(nil)
	_ agentdesk.MessageStore = (*Store)(nil)
	_ agentdesk.ReasonStore  = (*Store)(nil)
	_ agentdesk.StatusStore  = (*Store)(nil)
)
