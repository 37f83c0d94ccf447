package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// Event is one thing that happened, published to one stream of one account.
// Its fields match routing.Event one for one, so the routing engine's
// publisher is a plain conversion: hub.Publish(ctx, tx, hub.Event(e)).
type Event struct {
	AccountID int64
	Stream    string
	Type      string
	Data      any
}

// streamPattern is what a stream name looks like: a kind and an id.
var streamPattern = regexp.MustCompile(`^[a-z][a-z_]{0,30}:[A-Za-z0-9_.\-]{1,100}$`)

// ValidStream reports whether name is a well-formed stream name such as
// "agent:42" or "visitor:v_3f9a".
func ValidStream(name string) bool { return streamPattern.MatchString(name) }

// Stream names used across the product. Keep them in one place so producers
// and the authorisation rules agree.
func AgentStream(agentID int64) string        { return fmt.Sprintf("agent:%d", agentID) }
func SupervisorStream(accountID int64) string { return fmt.Sprintf("supervisor:%d", accountID) }
func TicketStream(ticketID int64) string      { return fmt.Sprintf("ticket:%d", ticketID) }
func VisitorStream(visitorID string) string   { return "visitor:" + visitorID }
func TaskStream(taskID int64) string          { return fmt.Sprintf("task:%d", taskID) }

// TeamStream carries what a team's queue list needs (new tickets of the
// team); its members and supervisors may follow it.
func TeamStream(teamID int64) string { return fmt.Sprintf("team:%d", teamID) }

// AccountStream carries new tickets every agent of the account may see
// (those of private teams go only to the team's stream), for the desk's
// "all open" list.
func AccountStream(accountID int64) string { return fmt.Sprintf("account:%d", accountID) }

// insertEvent stores an event inside its transaction; the commit trigger of
// migration 004 numbers it at the commit.
const insertEvent = `INSERT INTO stream_events (account_id, stream, type, data) VALUES ($1, $2, $3, $4)`

// insertNumberedEvent stores an event with its number, bumping the stream's
// head as the commit trigger would. It is for statements sent with the
// COMMIT (postgres.AtCommit), where it runs where the trigger would: just
// before the commit, holding the head's row lock through it. The trigger
// passes over rows that come numbered (migration 013), so each event is
// written once instead of inserted and then updated.
const insertNumberedEvent = `
WITH head AS (
	INSERT INTO stream_heads AS h (account_id, stream, last_seq, change_id)
	VALUES ($1, $2, 1, nextval('stream_change_seq'))
	ON CONFLICT (account_id, stream)
	DO UPDATE SET last_seq = h.last_seq + 1, change_id = nextval('stream_change_seq'), updated_at = now()
	RETURNING last_seq
)
INSERT INTO stream_events (account_id, stream, seq, type, data) SELECT $1, $2, last_seq, $3, $4 FROM head`

// Publish appends e to its stream inside tx. The event gets its sequence
// number when tx commits and is never seen by anyone if tx rolls back; the
// hubs of every process pick it up from the change feed after the commit.
//
// In a transaction of postgres.InTx the row is written in the round trip
// of the COMMIT (postgres.AtCommit), not in one of its own, and numbered by
// its insert: nothing in the transaction reads the events it publishes, and
// a change that tells three streams would otherwise wait for three more
// round trips. A row that fails to insert then fails the commit, so the
// change and its events still commit or roll back together.
func Publish(ctx context.Context, tx pgx.Tx, e Event) error {
	if err := e.validate(); err != nil {
		return err
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return fmt.Errorf("publish %s to %s: encode data: %w", e.Type, e.Stream, err)
	}
	if postgres.AtCommit(tx, insertNumberedEvent, e.AccountID, e.Stream, e.Type, data) {
		return nil
	}
	if _, err := tx.Exec(ctx, insertEvent, e.AccountID, e.Stream, e.Type, data); err != nil {
		return fmt.Errorf("publish %s to %s: %w", e.Type, e.Stream, err)
	}
	return nil
}

// Publisher publishes through the package function; it satisfies interfaces
// that want a Publish method.
type Publisher struct{}

// Publish calls the package-level Publish.
func (Publisher) Publish(ctx context.Context, tx pgx.Tx, e Event) error { return Publish(ctx, tx, e) }

func (e Event) validate() error {
	if e.AccountID <= 0 {
		return agentdesk.FieldError("account_id", "an event needs an account")
	}
	if !ValidStream(e.Stream) {
		return agentdesk.FieldError("stream", "%q is not a stream name (kind:id)", e.Stream)
	}
	if e.Type == "" || len(e.Type) > 100 {
		return agentdesk.FieldError("type", "must be 1-100 characters")
	}
	return nil
}

// ephemeralChannel carries events that are not stored: typing indicators.
// They reach whoever is connected now, in any process, and are never resumed.
const ephemeralChannel = "agentdesk_stream_ephemeral"

type ephemeralPayload struct {
	AccountID int64           `json:"a"`
	Stream    string          `json:"s"`
	Type      string          `json:"t"`
	Data      json.RawMessage `json:"d"`
}

// maxEphemeralBytes keeps payloads well under PostgreSQL's 8000-byte NOTIFY limit.
const maxEphemeralBytes = 4000
