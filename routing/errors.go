package routing

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"agentdesk/agentdesk"
)

// translate turns database errors caused by the caller into domain errors.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	var de *agentdesk.Error
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return agentdesk.Errorf(agentdesk.NotFound, "%s not found", what)
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "23505":
			field := ""
			if strings.HasSuffix(pg.ConstraintName, "_name_key") {
				field = "name"
			}
			return &agentdesk.Error{Kind: agentdesk.Conflict, Message: what + " already exists", Field: field, Err: err}
		case "23503":
			return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "refers to something that does not exist", Field: fkField(pg.ConstraintName), Err: err}
		case "23514", "22001", "22P02", "22003", "22007", "22008":
			return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "value not accepted: " + pg.Message, Err: err}
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// retryable reports errors after which the whole transaction may simply be
// run again: deadlocks and serialization failures between engines.
func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40P01" || pg.Code == "40001")
}

// fkField names the field a violated foreign key is about, from PostgreSQL's
// default constraint names (tasks_account_id_ticket_id_fkey → ticket_id).
func fkField(constraint string) string {
	for _, f := range []string{"ticket_id", "customer_id", "overflow_queue_id", "queue_id", "team_id", "agent_id"} {
		if strings.Contains(constraint, "_"+f+"_") {
			return f
		}
	}
	return ""
}
