package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
)

// Store implements the domain's store interfaces on one pool. Its methods are
// grouped by concept in files of their own (customers.go, tickets.go, ...).
type Store struct {
	db *pgxpool.Pool
}

// NewStore returns a store on db.
func NewStore(db *pgxpool.Pool) *Store { return &Store{db: db} }

// DB exposes the pool for adapters that run their own transactions (channel
// ingestion, routing) alongside the store.
func (s *Store) DB() *pgxpool.Pool { return s.db }

// querier is what both a pool and a transaction offer, so a query helper can
// run inside or outside a caller's transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Audit records an action in the audit log, inside tx when given.
func Audit(ctx context.Context, q querier, actor agentdesk.Actor, action, target string, details any) error {
	raw, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	_, err = q.Exec(ctx, `INSERT INTO audit_log (account_id, agent_id, token_id, action, target, details)
		VALUES ($1, nullif($2, 0::bigint), nullif($3, 0::bigint), $4, $5, $6)`,
		actor.AccountID, actor.AgentID, actor.TokenID, action, target, raw)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID        int64           `json:"id"`
	AgentID   *int64          `json:"agent_id"`
	TokenID   *int64          `json:"token_id"`
	Action    string          `json:"action"`
	Target    string          `json:"target"`
	Details   json.RawMessage `json:"details"`
	CreatedAt any             `json:"created_at"`
}

// AuditLog lists an account's audit log, newest first.
func (s *Store) AuditLog(ctx context.Context, accountID int64, p agentdesk.Page) ([]AuditEntry, string, error) {
	p = p.Normalize()
	k, err := agentdesk.DecodeCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	args := []any{accountID, p.Limit + 1}
	where := ""
	if k != nil {
		where = " AND (created_at, id) < ($3, $4)"
		args = append(args, k.At, k.ID)
	}
	rows, err := s.db.Query(ctx, `SELECT id, agent_id, token_id, action, target, details, created_at
		FROM audit_log WHERE account_id = $1`+where+` ORDER BY created_at DESC, id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []AuditEntry
	var keys []agentdesk.Keyset
	for rows.Next() {
		var e AuditEntry
		var k agentdesk.Keyset
		if err := rows.Scan(&e.ID, &e.AgentID, &e.TokenID, &e.Action, &e.Target, &e.Details, &k.At); err != nil {
			return nil, "", err
		}
		k.ID = e.ID
		e.CreatedAt = k.At
		out = append(out, e)
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	out, next := trimPage(out, keys, p.Limit)
	return out, next, nil
}

// trimPage cuts a page fetched with limit+1 rows back to limit and returns the
// cursor of the next page ("" when this is the last).
func trimPage[T any](items []T, keys []agentdesk.Keyset, limit int) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	return items[:limit], agentdesk.EncodeCursor(keys[limit-1])
}
