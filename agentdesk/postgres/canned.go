package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"agentdesk/agentdesk"
)

const cannedColumns = `c.id, c.title, c.body, c.shortcut, c.team_id, c.agent_id, c.created_by, c.created_at, c.updated_at`

func scanCanned(row pgx.Row, accountID int64) (*agentdesk.CannedResponse, error) {
	c := &agentdesk.CannedResponse{AccountID: accountID}
	err := row.Scan(&c.ID, &c.Title, &c.Body, &c.Shortcut, &c.TeamID, &c.AgentID, &c.CreatedBy, &c.CreatedAt, &c.UpdatedAt)
	return c, err
}

// cannedVisible is the condition on c for what actor may see, its arguments
// numbered from arg: the account's shared responses, the actor's teams'
// (every team's for supervisors and admins, who manage them) and the actor's
// own personal ones, never another agent's.
func cannedVisible(actor agentdesk.Actor, arg int) (string, []any) {
	me := `$` + strconv.Itoa(arg)
	if actor.Role.AtLeast(agentdesk.RoleSupervisor) {
		return ` AND (c.agent_id IS NULL OR c.agent_id = ` + me + `)`, []any{actor.AgentID}
	}
	teams := actor.TeamIDs
	if teams == nil {
		teams = []int64{}
	}
	return ` AND ((c.agent_id IS NULL AND (c.team_id IS NULL OR c.team_id = ANY($` + strconv.Itoa(arg+1) + `::bigint[])))
		OR c.agent_id = ` + me + `)`, []any{actor.AgentID, teams}
}

// cannedCursor is the position of a row in the list ordered by title.
type cannedCursor struct {
	Title string `json:"t"`
	ID    int64  `json:"i"`
}

func encodeCannedCursor(c cannedCursor) string {
	raw, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeCannedCursor(s string) (*cannedCursor, error) {
	if s == "" {
		return nil, nil
	}
	var c cannedCursor
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(raw, &c) != nil || c.ID <= 0 {
		return nil, agentdesk.FieldError("cursor", "malformed cursor")
	}
	return &c, nil
}

// likePattern quotes s for LIKE: its own % and _ match themselves.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// CannedResponses lists the canned responses actor may see, by title; q
// matches a part of the title or the body, or the start of the shortcut.
func (s *Store) CannedResponses(ctx context.Context, actor agentdesk.Actor, f agentdesk.CannedFilter) ([]agentdesk.CannedResponse, string, error) {
	p := f.Page.Normalize()
	k, err := decodeCannedCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	args := []any{actor.AccountID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var b strings.Builder
	// lower(title) comes from the database: the cursor must compare the way
	// the ORDER BY does, in the database's collation.
	b.WriteString(`SELECT ` + cannedColumns + `, lower(c.title) FROM canned_responses c WHERE c.account_id = $1`)
	if q := strings.TrimSpace(f.Query); q != "" {
		like := likePattern(strings.ToLower(q))
		b.WriteString(` AND (lower(c.title) LIKE '%' || ` + arg(like) + ` || '%' OR c.shortcut LIKE ` + arg(strings.TrimPrefix(like, "/")) +
			` || '%' OR lower(c.body) LIKE '%' || $` + strconv.Itoa(len(args)-1) + ` || '%')`)
	}
	if k != nil {
		b.WriteString(` AND (lower(c.title), c.id) > (` + arg(k.Title) + `, ` + arg(k.ID) + `)`)
	}
	vis, extra := cannedVisible(actor, len(args)+1)
	args = append(args, extra...)
	b.WriteString(vis)
	b.WriteString(` ORDER BY lower(c.title), c.id LIMIT ` + arg(p.Limit+1))
	rows, err := s.db.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list canned responses: %w", err)
	}
	var (
		items []agentdesk.CannedResponse
		keys  []string
	)
	for rows.Next() {
		c := agentdesk.CannedResponse{AccountID: actor.AccountID}
		var key string
		if err := rows.Scan(&c.ID, &c.Title, &c.Body, &c.Shortcut, &c.TeamID, &c.AgentID, &c.CreatedBy, &c.CreatedAt, &c.UpdatedAt, &key); err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("list canned responses: %w", err)
		}
		items, keys = append(items, c), append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list canned responses: %w", err)
	}
	if len(items) <= p.Limit {
		return items, "", nil
	}
	last := items[p.Limit-1]
	return items[:p.Limit], encodeCannedCursor(cannedCursor{Title: keys[p.Limit-1], ID: last.ID}), nil
}

// cannedByID reads one canned response actor may see, locked when lock.
func cannedByID(ctx context.Context, q querier, actor agentdesk.Actor, id int64, lock bool) (*agentdesk.CannedResponse, error) {
	vis, args := cannedVisible(actor, 3)
	sql := `SELECT ` + cannedColumns + ` FROM canned_responses c WHERE c.account_id = $1 AND c.id = $2` + vis
	if lock {
		sql += ` FOR UPDATE`
	}
	c, err := scanCanned(q.QueryRow(ctx, sql, append([]any{actor.AccountID, id}, args...)...), actor.AccountID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, agentdesk.Errorf(agentdesk.NotFound, "canned response %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("canned response %d: %w", id, err)
	}
	return c, nil
}

// CannedResponse returns one canned response the actor may see.
func (s *Store) CannedResponse(ctx context.Context, actor agentdesk.Actor, id int64) (*agentdesk.CannedResponse, error) {
	return cannedByID(ctx, s.db, actor, id, false)
}

// translateCanned names the shortcut when it is already taken in the scope:
// the unique index is on an expression, which translate cannot read a field
// from.
func translateCanned(err error) error {
	var de *agentdesk.Error
	if errors.As(err, &de) {
		return de
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" && pg.ConstraintName == "canned_responses_scope_shortcut" {
		return &agentdesk.Error{Kind: agentdesk.Conflict, Field: "shortcut", Message: "this shortcut is taken in the same scope", Err: err}
	}
	return translate(err, "canned response")
}

// auditCanned records a change of a shared canned response; personal ones
// are their owner's business.
func auditCanned(ctx context.Context, q querier, actor agentdesk.Actor, action string, c *agentdesk.CannedResponse, details any) error {
	if c.Scope() == agentdesk.CannedPersonal {
		return nil
	}
	return Audit(ctx, q, actor, action, fmt.Sprintf("canned_response:%d", c.ID), details)
}

// CreateCannedResponse stores c; the caller has decided c's scope and
// checked the actor may create it.
func (s *Store) CreateCannedResponse(ctx context.Context, actor agentdesk.Actor, c *agentdesk.CannedResponse) error {
	if err := c.Validate(); err != nil {
		return err
	}
	var by *int64
	if actor.IsAgent() {
		by = &actor.AgentID
	}
	return translateCanned(InTx(ctx, s.db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO canned_responses (account_id, title, body, shortcut, team_id, agent_id, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, created_by, created_at, updated_at`,
			actor.AccountID, c.Title, c.Body, c.Shortcut, c.TeamID, c.AgentID, by).Scan(&c.ID, &c.CreatedBy, &c.CreatedAt, &c.UpdatedAt)
		if err != nil {
			return err
		}
		c.AccountID = actor.AccountID
		return auditCanned(ctx, tx, actor, "canned_response.create", c, c)
	}))
}

// UpdateCannedResponse applies change to a canned response the actor may
// see and change, under a row lock. The scope stays what it was.
func (s *Store) UpdateCannedResponse(ctx context.Context, actor agentdesk.Actor, id int64, change func(*agentdesk.CannedResponse) error) (*agentdesk.CannedResponse, error) {
	var out *agentdesk.CannedResponse
	err := InTx(ctx, s.db, func(tx pgx.Tx) error {
		before, err := cannedByID(ctx, tx, actor, id, true)
		if err != nil {
			return err
		}
		if err := before.CanChange(actor); err != nil {
			return err
		}
		c := *before
		if err := change(&c); err != nil {
			return err
		}
		c.ID, c.AccountID, c.TeamID, c.AgentID, c.CreatedBy, c.CreatedAt = before.ID, before.AccountID, before.TeamID, before.AgentID, before.CreatedBy, before.CreatedAt
		if err := c.Validate(); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `UPDATE canned_responses SET title = $3, body = $4, shortcut = $5, updated_at = now()
			WHERE account_id = $1 AND id = $2 RETURNING updated_at`, actor.AccountID, id, c.Title, c.Body, c.Shortcut).Scan(&c.UpdatedAt)
		if err != nil {
			return err
		}
		out = &c
		return auditCanned(ctx, tx, actor, "canned_response.update", &c, map[string]any{"before": before, "after": &c})
	})
	if err != nil {
		return nil, translateCanned(err)
	}
	return out, nil
}

// DeleteCannedResponse removes a canned response the actor may see and
// change.
func (s *Store) DeleteCannedResponse(ctx context.Context, actor agentdesk.Actor, id int64) error {
	return translateCanned(InTx(ctx, s.db, func(tx pgx.Tx) error {
		before, err := cannedByID(ctx, tx, actor, id, true)
		if err != nil {
			return err
		}
		if err := before.CanChange(actor); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM canned_responses WHERE account_id = $1 AND id = $2`, actor.AccountID, id); err != nil {
			return err
		}
		return auditCanned(ctx, tx, actor, "canned_response.delete", before, before)
	}))
}

var _ agentdesk.CannedStore = (*Store)(nil)
