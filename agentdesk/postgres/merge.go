package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// mergedTables are the tables whose rows follow a customer into a merge, in
// the order they move. Each has account_id, customer_id and id.
var mergedTables = []string{"identities", "tickets", "messages", "orders"}

// customerState is the part of a customer row a merge may change on the
// survivor. It is kept before and after the merge so an unmerge can put
// back exactly what the merge changed, and only that.
type customerState struct {
	Name             string            `json:"name"`
	CompanyID        *int64            `json:"company_id"`
	Stage            string            `json:"lifecycle_stage"`
	PreferredChannel string            `json:"preferred_channel"`
	Attributes       map[string]string `json:"attributes"`
	UpdatedAt        time.Time         `json:"updated_at"`
}

func stateOf(c *agentdesk.Customer) customerState {
	return customerState{Name: c.Name, CompanyID: c.CompanyID, Stage: string(c.Stage), PreferredChannel: string(c.PreferredChannel),
		Attributes: maps.Clone(c.Attributes), UpdatedAt: c.UpdatedAt}
}

// mergeRecord is the moved column of a merge: the ids of every row that
// moved, by table, and the survivor's state right after the merge.
type mergeRecord struct {
	Rows          map[string][]int64 `json:"rows"`
	SurvivorAfter customerState      `json:"survivor_after"`
}

func (m mergeRecord) counts() map[string]int {
	out := make(map[string]int, len(m.Rows))
	for t, ids := range m.Rows {
		out[t] = len(ids)
	}
	return out
}

// lockPair locks two customers in id order, so two merges touching the same
// pair cannot deadlock, and returns them in the order asked.
func lockPair(ctx context.Context, tx pgx.Tx, accountID, a, b int64) (*agentdesk.Customer, *agentdesk.Customer, error) {
	first, second := min(a, b), max(a, b)
	c1, err := customerByID(ctx, tx, accountID, first, true)
	if err != nil {
		return nil, nil, err
	}
	c2, err := customerByID(ctx, tx, accountID, second, true)
	if err != nil {
		return nil, nil, err
	}
	if a == first {
		return c1, c2, nil
	}
	return c2, c1, nil
}

// Merge folds customer mergedID into survivorID: every identity, ticket,
// message and order of the merged customer moves to the survivor; the
// survivor takes the merged customer's name, company, preferred channel and
// attributes where it has none of its own. The merged row stays, marked
// merged_into, so Unmerge can restore both exactly. Recorded in the audit log.
func (s *Store) Merge(ctx context.Context, accountID int64, survivorID, mergedID int64, actor agentdesk.Actor) (*agentdesk.Merge, error) {
	if survivorID == mergedID {
		return nil, agentdesk.FieldError("merge_id", "a customer cannot be merged into itself")
	}
	actor.AccountID = accountID
	var m agentdesk.Merge
	err := InTx(ctx, s.db, func(tx pgx.Tx) error {
		survivor, merged, err := lockPair(ctx, tx, accountID, survivorID, mergedID)
		if err != nil {
			return err
		}
		if merged.MergedInto != nil {
			return agentdesk.Errorf(agentdesk.Conflict, "customer %d is already merged into customer %d", mergedID, *merged.MergedInto)
		}
		if survivor.MergedInto != nil {
			return agentdesk.Errorf(agentdesk.Conflict, "customer %d is merged into customer %d; merge into that one", survivorID, *survivor.MergedInto)
		}
		before := stateOf(survivor)
		rec := mergeRecord{Rows: map[string][]int64{}}
		for _, table := range mergedTables {
			ids, err := moveRows(ctx, tx, table, accountID, mergedID, survivorID, nil)
			if err != nil {
				return err
			}
			rec.Rows[table] = ids
		}
		fillFrom(survivor, merged)
		err = tx.QueryRow(ctx, `UPDATE customers SET name = $3, company_id = $4, preferred_channel = $5, attributes = $6, updated_at = now()
			WHERE account_id = $1 AND id = $2 RETURNING updated_at`,
			accountID, survivorID, survivor.Name, survivor.CompanyID, survivor.PreferredChannel, attrJSON(survivor.Attributes)).Scan(&survivor.UpdatedAt)
		if err != nil {
			return fmt.Errorf("update survivor: %w", err)
		}
		// The merged row keeps its own updated_at: an unmerge restores it as
		// it was, and merged_into is what says it is gone.
		if _, err := tx.Exec(ctx, `UPDATE customers SET merged_into = $3 WHERE account_id = $1 AND id = $2`, accountID, mergedID, survivorID); err != nil {
			return fmt.Errorf("mark merged: %w", err)
		}
		rec.SurvivorAfter = stateOf(survivor)
		moved, _ := json.Marshal(rec)
		beforeJSON, _ := json.Marshal(before)
		actorJSON, _ := json.Marshal(map[string]any{"agent_id": actor.AgentID, "token_id": actor.TokenID, "role": actor.Role})
		err = tx.QueryRow(ctx, `INSERT INTO merges (account_id, survivor_id, merged_id, moved, survivor_before, actor)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at`,
			accountID, survivorID, mergedID, moved, beforeJSON, actorJSON).Scan(&m.ID, &m.CreatedAt)
		if err != nil {
			return fmt.Errorf("record merge: %w", err)
		}
		m.SurvivorID, m.MergedID, m.Moved = survivorID, mergedID, rec.counts()
		return Audit(ctx, tx, actor, "customer.merge", fmt.Sprintf("customer:%d", survivorID),
			map[string]any{"merge_id": m.ID, "survivor_id": survivorID, "merged_id": mergedID, "moved": m.Moved})
	})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// fillFrom gives the survivor what the merged customer knows and it does not.
func fillFrom(survivor, merged *agentdesk.Customer) {
	if survivor.Name == "" {
		survivor.Name = merged.Name
	}
	if survivor.CompanyID == nil {
		survivor.CompanyID = merged.CompanyID
	}
	if survivor.PreferredChannel == "" {
		survivor.PreferredChannel = merged.PreferredChannel
	}
	attrs := maps.Clone(survivor.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	for k, v := range merged.Attributes {
		if _, ok := attrs[k]; !ok {
			attrs[k] = v
		}
	}
	survivor.Attributes = attrs
}

// moveRows re-points rows of table from customer from to customer to; with
// only set, just those rows. It returns the ids moved, ascending.
func moveRows(ctx context.Context, tx pgx.Tx, table string, accountID, from, to int64, only []int64) ([]int64, error) {
	sql := `WITH moved AS (UPDATE ` + pgx.Identifier{table}.Sanitize() + ` SET customer_id = $3
		WHERE account_id = $1 AND customer_id = $2`
	args := []any{accountID, from, to}
	if only != nil {
		sql += ` AND id = ANY($4)`
		args = append(args, only)
	}
	sql += ` RETURNING id) SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM moved`
	var ids []int64
	if err := tx.QueryRow(ctx, sql, args...).Scan(&ids); err != nil {
		return nil, fmt.Errorf("move %s: %w", table, err)
	}
	return ids, nil
}

// Unmerge undoes a merge: the rows that moved go back to the merged
// customer, which is live again, and the survivor's fields the merge filled
// are restored, unless someone changed them since (then the later edit
// wins). Rows created on the survivor after the merge stay there. A merge
// can be undone once; if the survivor has since been merged into a third
// customer, that merge must be undone first. Recorded in the audit log.
func (s *Store) Unmerge(ctx context.Context, accountID, mergeID int64, actor agentdesk.Actor) (*agentdesk.Merge, error) {
	actor.AccountID = accountID
	var m agentdesk.Merge
	err := InTx(ctx, s.db, func(tx pgx.Tx) error {
		var movedJSON, beforeJSON []byte
		err := tx.QueryRow(ctx, `SELECT survivor_id, merged_id, moved, survivor_before, created_at, undone_at FROM merges
			WHERE account_id = $1 AND id = $2 FOR UPDATE`, accountID, mergeID).
			Scan(&m.SurvivorID, &m.MergedID, &movedJSON, &beforeJSON, &m.CreatedAt, &m.UndoneAt)
		if err != nil {
			return translate(err, "merge")
		}
		m.ID = mergeID
		if m.UndoneAt != nil {
			return agentdesk.Errorf(agentdesk.Conflict, "merge %d was already undone", mergeID)
		}
		var rec mergeRecord
		var before customerState
		if err := json.Unmarshal(movedJSON, &rec); err != nil {
			return fmt.Errorf("merge %d record: %w", mergeID, err)
		}
		if err := json.Unmarshal(beforeJSON, &before); err != nil {
			return fmt.Errorf("merge %d survivor state: %w", mergeID, err)
		}
		survivor, merged, err := lockPair(ctx, tx, accountID, m.SurvivorID, m.MergedID)
		if err != nil {
			return err
		}
		if survivor.MergedInto != nil {
			var later int64
			_ = tx.QueryRow(ctx, `SELECT id FROM merges WHERE account_id = $1 AND merged_id = $2 AND undone_at IS NULL ORDER BY id DESC LIMIT 1`,
				accountID, m.SurvivorID).Scan(&later)
			return agentdesk.Errorf(agentdesk.Conflict, "customer %d has since been merged into customer %d; undo merge %d first", m.SurvivorID, *survivor.MergedInto, later)
		}
		if merged.MergedInto == nil || *merged.MergedInto != m.SurvivorID {
			return agentdesk.Errorf(agentdesk.Conflict, "customer %d is no longer merged into customer %d", m.MergedID, m.SurvivorID)
		}
		back := map[string]int{}
		for _, table := range mergedTables {
			ids := rec.Rows[table]
			if len(ids) == 0 {
				back[table] = 0
				continue
			}
			moved, err := moveRows(ctx, tx, table, accountID, m.SurvivorID, m.MergedID, ids)
			if err != nil {
				return err
			}
			back[table] = len(moved)
		}
		if _, err := tx.Exec(ctx, `UPDATE customers SET merged_into = NULL WHERE account_id = $1 AND id = $2`, accountID, m.MergedID); err != nil {
			return fmt.Errorf("unmark merged: %w", err)
		}
		if err := restoreSurvivor(ctx, tx, accountID, survivor, before, rec.SurvivorAfter); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `UPDATE merges SET undone_at = now() WHERE account_id = $1 AND id = $2 RETURNING undone_at`, accountID, mergeID).Scan(&m.UndoneAt); err != nil {
			return fmt.Errorf("mark merge undone: %w", err)
		}
		m.Moved = back
		return Audit(ctx, tx, actor, "customer.unmerge", fmt.Sprintf("customer:%d", m.SurvivorID),
			map[string]any{"merge_id": mergeID, "survivor_id": m.SurvivorID, "merged_id": m.MergedID, "moved_back": back})
	})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// restoreSurvivor puts back each field the merge changed, where it still
// holds what the merge left; updated_at too when nothing changed since.
func restoreSurvivor(ctx context.Context, tx pgx.Tx, accountID int64, cur *agentdesk.Customer, before, after customerState) error {
	now := stateOf(cur)
	next := now
	untouched := true
	if now.Name == after.Name {
		next.Name = before.Name
	} else {
		untouched = false
	}
	if agentdesk.SameID(now.CompanyID, after.CompanyID) {
		next.CompanyID = before.CompanyID
	} else {
		untouched = false
	}
	if now.PreferredChannel == after.PreferredChannel {
		next.PreferredChannel = before.PreferredChannel
	} else {
		untouched = false
	}
	if maps.Equal(now.Attributes, after.Attributes) {
		next.Attributes = before.Attributes
	} else {
		untouched = false
	}
	untouched = untouched && now.Stage == after.Stage && now.UpdatedAt.Equal(after.UpdatedAt)
	sql := `UPDATE customers SET name = $3, company_id = $4, preferred_channel = $5, attributes = $6, updated_at = now() WHERE account_id = $1 AND id = $2`
	args := []any{accountID, cur.ID, next.Name, next.CompanyID, next.PreferredChannel, attrJSON(next.Attributes)}
	if untouched {
		sql = `UPDATE customers SET name = $3, company_id = $4, preferred_channel = $5, attributes = $6, updated_at = $7 WHERE account_id = $1 AND id = $2`
		args = append(args, before.UpdatedAt)
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("restore survivor: %w", err)
	}
	return nil
}

// Merges lists the merges a customer took part in, newest first.
func (s *Store) Merges(ctx context.Context, accountID, customerID int64) ([]agentdesk.Merge, error) {
	rows, err := s.db.Query(ctx, `SELECT id, survivor_id, merged_id, moved, created_at, undone_at FROM merges
		WHERE account_id = $1 AND (survivor_id = $2 OR merged_id = $2) ORDER BY id DESC LIMIT 200`, accountID, customerID)
	if err != nil {
		return nil, fmt.Errorf("list merges: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (agentdesk.Merge, error) {
		var m agentdesk.Merge
		var moved []byte
		if err := r.Scan(&m.ID, &m.SurvivorID, &m.MergedID, &moved, &m.CreatedAt, &m.UndoneAt); err != nil {
			return m, err
		}
		var rec mergeRecord
		if err := json.Unmarshal(moved, &rec); err != nil {
			return m, err
		}
		m.Moved = rec.counts()
		return m, nil
	})
}
