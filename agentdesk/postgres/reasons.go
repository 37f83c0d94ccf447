package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

const reasonColumns = `r.id, r.kind, r.parent_id, r.name, r.archived_at, r.created_at`

func scanReason(row pgx.Row, accountID int64) (*agentdesk.Reason, error) {
	r := &agentdesk.Reason{AccountID: accountID}
	err := row.Scan(&r.ID, &r.Kind, &r.ParentID, &r.Name, &r.ArchivedAt, &r.CreatedAt)
	return r, err
}

// checkParent keeps the list two levels deep: a reason's parent is an active
// category (itself without a parent) of the same kind.
func checkParent(ctx context.Context, q querier, accountID int64, r *agentdesk.Reason) error {
	if r.ParentID == nil {
		return nil
	}
	if *r.ParentID == r.ID {
		return agentdesk.FieldError("parent_id", "a reason cannot be its own category")
	}
	p, err := scanReason(q.QueryRow(ctx, `SELECT `+reasonColumns+` FROM reasons r WHERE r.account_id = $1 AND r.id = $2`, accountID, *r.ParentID), accountID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return agentdesk.FieldError("parent_id", "no category %d", *r.ParentID)
	case err != nil:
		return fmt.Errorf("reason parent: %w", err)
	case p.Kind != r.Kind:
		return agentdesk.FieldError("parent_id", "category %d holds %s reasons, not %s reasons", p.ID, p.Kind, r.Kind)
	case p.ParentID != nil:
		return agentdesk.FieldError("parent_id", "%d is a reason, not a category", p.ID)
	case p.ArchivedAt != nil && r.ArchivedAt == nil:
		return agentdesk.FieldError("parent_id", "category %d is archived", p.ID)
	}
	return nil
}

// CreateReason adds a category (no parent) or a reason under a category.
func (s *Store) CreateReason(ctx context.Context, actor agentdesk.Actor, r *agentdesk.Reason) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.ArchivedAt = nil
	acct := actor.AccountID
	return translate(InTx(ctx, s.db, func(tx pgx.Tx) error {
		if err := checkParent(ctx, tx, acct, r); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO reasons (account_id, kind, parent_id, name) VALUES ($1, $2, $3, $4) RETURNING id, created_at`,
			acct, r.Kind, r.ParentID, r.Name).Scan(&r.ID, &r.CreatedAt)
		if err != nil {
			return err
		}
		r.AccountID = acct
		return Audit(ctx, tx, actor, "reason.create", fmt.Sprintf("reason:%d", r.ID), r)
	}), "reason")
}

// Reason returns one reason, archived or not.
func (s *Store) Reason(ctx context.Context, accountID, id int64) (*agentdesk.Reason, error) {
	r, err := scanReason(s.db.QueryRow(ctx, `SELECT `+reasonColumns+` FROM reasons r WHERE r.account_id = $1 AND r.id = $2`, accountID, id), accountID)
	if err != nil {
		return nil, translate(err, "reason")
	}
	return r, nil
}

// Reasons lists reasons of one kind ("" for both), each category followed by
// its reasons, by name.
func (s *Store) Reasons(ctx context.Context, accountID int64, kind agentdesk.ReasonKind, includeArchived bool) ([]agentdesk.Reason, error) {
	rows, err := s.db.Query(ctx, `SELECT `+reasonColumns+` FROM reasons r LEFT JOIN reasons p ON p.account_id = r.account_id AND p.id = r.parent_id
		WHERE r.account_id = $1 AND ($2 = '' OR r.kind = $2) AND ($3 OR r.archived_at IS NULL)
		ORDER BY r.kind, lower(coalesce(p.name, r.name)), coalesce(r.parent_id, r.id), r.parent_id IS NOT NULL, lower(r.name)`,
		accountID, string(kind), includeArchived)
	if err != nil {
		return nil, fmt.Errorf("list reasons: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (agentdesk.Reason, error) {
		r, err := scanReason(row, accountID)
		return *r, err
	})
}

// UpdateReason renames a reason, moves it to another category of its kind, or
// archives or restores it (ArchivedAt set or nil). The kind never changes:
// tickets that used the reason must keep meaning the same thing. Archiving a
// category archives its reasons too.
func (s *Store) UpdateReason(ctx context.Context, actor agentdesk.Actor, r *agentdesk.Reason) error {
	acct := actor.AccountID
	return translate(InTx(ctx, s.db, func(tx pgx.Tx) error {
		before, err := scanReason(tx.QueryRow(ctx, `SELECT `+reasonColumns+` FROM reasons r WHERE r.account_id = $1 AND r.id = $2 FOR UPDATE`, acct, r.ID), acct)
		if errors.Is(err, pgx.ErrNoRows) {
			return agentdesk.Errorf(agentdesk.NotFound, "reason %d not found", r.ID)
		}
		if err != nil {
			return err
		}
		r.Kind = before.Kind
		if err := r.Validate(); err != nil {
			return err
		}
		if err := checkParent(ctx, tx, acct, r); err != nil {
			return err
		}
		if r.ParentID != nil {
			var children bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM reasons WHERE account_id = $1 AND parent_id = $2)`, acct, r.ID).Scan(&children); err != nil {
				return err
			}
			if children {
				return agentdesk.FieldError("parent_id", "reason %d is a category with reasons under it; it cannot move under another", r.ID)
			}
		}
		archive := r.ArchivedAt != nil
		updated, err := scanReason(tx.QueryRow(ctx, `UPDATE reasons r SET name = $3, parent_id = $4,
				archived_at = CASE WHEN $5 THEN coalesce(r.archived_at, now()) END
			WHERE r.account_id = $1 AND r.id = $2 RETURNING `+reasonColumns,
			acct, r.ID, r.Name, r.ParentID, archive), acct)
		if err != nil {
			return err
		}
		*r = *updated
		if archive && before.ArchivedAt == nil && before.ParentID == nil {
			if _, err := tx.Exec(ctx, `UPDATE reasons SET archived_at = coalesce(archived_at, now()) WHERE account_id = $1 AND parent_id = $2`, acct, r.ID); err != nil {
				return err
			}
		}
		return Audit(ctx, tx, actor, "reason.update", fmt.Sprintf("reason:%d", r.ID), map[string]any{"before": before, "after": r})
	}), "reason")
}

// DeleteReason deletes a reason no ticket ever used, and archives a used one
// so the tickets and reports that name it stay true. A category goes with its
// reasons: deleted when none was used, archived otherwise.
func (s *Store) DeleteReason(ctx context.Context, actor agentdesk.Actor, id int64) (bool, error) {
	acct := actor.AccountID
	var archived bool
	err := InTx(ctx, s.db, func(tx pgx.Tx) error {
		// Lock the reason and its reasons: a ticket taking one of them now
		// waits (its foreign key check needs a share lock), so "unused" stays
		// true until the delete commits.
		rows, err := tx.Query(ctx, `SELECT id FROM reasons WHERE account_id = $1 AND (id = $2 OR parent_id = $2) FOR UPDATE`, acct, id)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if !slices.Contains(ids, id) {
			return agentdesk.Errorf(agentdesk.NotFound, "reason %d not found", id)
		}
		var used bool
		err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tickets WHERE account_id = $1 AND (contact_reason_id = ANY($2) OR cancellation_reason_id = ANY($2)))`,
			acct, ids).Scan(&used)
		if err != nil {
			return err
		}
		if used {
			archived = true
			_, err = tx.Exec(ctx, `UPDATE reasons SET archived_at = coalesce(archived_at, now()) WHERE account_id = $1 AND id = ANY($2)`, acct, ids)
		} else {
			_, err = tx.Exec(ctx, `DELETE FROM reasons WHERE account_id = $1 AND parent_id = $2`, acct, id)
			if err == nil {
				_, err = tx.Exec(ctx, `DELETE FROM reasons WHERE account_id = $1 AND id = $2`, acct, id)
			}
		}
		if err != nil {
			return err
		}
		action := "reason.delete"
		if archived {
			action = "reason.archive"
		}
		return Audit(ctx, tx, actor, action, fmt.Sprintf("reason:%d", id), map[string]any{"ids": ids})
	})
	return archived, translate(err, "reason")
}
