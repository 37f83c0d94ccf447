package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
)

// Open connects a pool to url and checks that the database answers.
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return pool, nil
}

// translate turns database errors into domain errors: a unique violation is a
// Conflict, a missing row NotFound, a foreign key violation Invalid on the
// column it names. what says which object the query was about.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return agentdesk.Errorf(agentdesk.NotFound, "%s not found", what)
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "23505":
			return &agentdesk.Error{Kind: agentdesk.Conflict, Message: what + " already exists", Field: constraintField(pg.ConstraintName), Err: err}
		case "23503":
			return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "refers to something that does not exist", Field: constraintField(pg.ConstraintName), Err: err}
		case "23514", "22001", "22P02", "22003":
			return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "value not accepted: " + pg.Message, Err: err}
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// constraintField guesses the API field from a constraint name such as
// "tickets_account_id_customer_id_fkey" or "identities_account_id_kind_network_value_key".
func constraintField(name string) string {
	for _, f := range []string{"customer_id", "assignee_id", "team_id", "contact_reason_id", "cancellation_reason_id", "company_id", "parent_id", "author_id", "ticket_id", "agent_id", "skill_id", "external_id", "email", "name", "domain", "value"} {
		if containsWord(name, f) {
			return f
		}
	}
	return ""
}

func containsWord(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if s[i:i+len(w)] == w && (i == 0 || s[i-1] == '_') && (i+len(w) == len(s) || s[i+len(w)] == '_') {
			return true
		}
	}
	return false
}
