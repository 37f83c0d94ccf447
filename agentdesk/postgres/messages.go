package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

const messageColumns = `m.id, m.ticket_id, m.customer_id, m.kind, m.direction, m.author_id, m.subject, m.body, m.meta, m.created_at`

func scanMessage(row pgx.Row, accountID int64) (*agentdesk.Message, error) {
	m := &agentdesk.Message{AccountID: accountID}
	var meta []byte
	if err := row.Scan(&m.ID, &m.TicketID, &m.CustomerID, &m.Kind, &m.Direction, &m.AuthorID, &m.Subject, &m.Body, &meta, &m.CreatedAt); err != nil {
		return nil, err
	}
	if len(meta) > 2 { // "{}" stays nil so it is left out of JSON
		if err := json.Unmarshal(meta, &m.Meta); err != nil {
			return nil, fmt.Errorf("message %d meta: %w", m.ID, err)
		}
	}
	return m, nil
}

// insertMessage writes m (already validated, ticket and customer set) and
// fills its id and time.
func insertMessage(ctx context.Context, q querier, accountID int64, m *agentdesk.Message) error {
	meta := []byte("{}")
	if len(m.Meta) > 0 {
		var err error
		if meta, err = json.Marshal(m.Meta); err != nil {
			return agentdesk.FieldError("meta", "cannot be stored: %v", err)
		}
	}
	err := q.QueryRow(ctx, `INSERT INTO messages (account_id, ticket_id, customer_id, kind, direction, author_id, subject, body, meta)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id, created_at`,
		accountID, m.TicketID, m.CustomerID, m.Kind, m.Direction, m.AuthorID, m.Subject, m.Body, meta).Scan(&m.ID, &m.CreatedAt)
	if err != nil {
		return err
	}
	m.AccountID = accountID
	return nil
}

// afterMessage brings the ticket in step with a message just written:
//   - the first outbound message written by an agent is the first response
//     (first_response_at and its seconds are set once and never move), and it
//     opens a new ticket;
//   - a customer writing into a solved ticket reopens it, which clears its
//     resolution until the next solve. Closed tickets stay closed: channels
//     open a follow-up ticket instead.
const afterMessageSQL = `UPDATE tickets AS t SET updated_at = now(),
	first_response_at = CASE WHEN $3 AND first_response_at IS NULL THEN $5::timestamptz ELSE first_response_at END,
	first_response_seconds = CASE WHEN $3 AND first_response_at IS NULL
		THEN greatest(0, floor(extract(epoch FROM $5::timestamptz - created_at)))::bigint ELSE first_response_seconds END,
	status = CASE WHEN $3 AND status = 'new' THEN 'open' WHEN $4 AND status = 'solved' THEN 'open' ELSE status END,
	custom_status = CASE WHEN ($3 AND status = 'new') OR ($4 AND status = 'solved') THEN '' ELSE custom_status END,
	resolved_at = CASE WHEN $4 AND status = 'solved' THEN NULL ELSE resolved_at END,
	resolution_seconds = CASE WHEN $4 AND status = 'solved' THEN NULL ELSE resolution_seconds END
WHERE t.account_id = $1 AND t.id = $2
RETURNING ` + ticketColumns

func afterMessage(ctx context.Context, q querier, accountID, ticketID int64, m *agentdesk.Message) (*agentdesk.Ticket, error) {
	agentReply := m.Direction == agentdesk.DirOut && m.AuthorID != nil
	customer := m.Direction == agentdesk.DirIn
	return scanTicket(q.QueryRow(ctx, afterMessageSQL, accountID, ticketID, agentReply, customer, m.CreatedAt), accountID)
}

// AddMessage appends m to a ticket's timeline. The ticket must be visible to
// the actor (NotFound otherwise); the message takes the ticket's customer.
func (s *Store) AddMessage(ctx context.Context, actor agentdesk.Actor, m *agentdesk.Message) error {
	return translate(InTx(ctx, s.db, func(tx pgx.Tx) error {
		_, err := AddMessageTx(ctx, tx, actor, m)
		return err
	}), "message")
}

// AddMessageTx is AddMessage inside the caller's transaction, for channel
// adapters that write a message together with something of their own (a
// delivery job, a websocket event) and still want the ticket's rules applied
// in one place: first response, opening a new ticket on the agent's reply,
// reopening a solved one on the customer's. It returns the ticket as it is
// after the message.
func AddMessageTx(ctx context.Context, tx pgx.Tx, actor agentdesk.Actor, m *agentdesk.Message) (*agentdesk.Ticket, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	acct := actor.AccountID
	t, err := loadTicket(ctx, tx, actor, m.TicketID, true)
	if err != nil {
		return nil, err
	}
	m.CustomerID = t.CustomerID
	if err := insertMessage(ctx, tx, acct, m); err != nil {
		return nil, translate(err, "message")
	}
	if err := linkAttachments(ctx, tx, actor, m); err != nil { // uploads.go
		return nil, err
	}
	t, err = afterMessage(ctx, tx, acct, t.ID, m)
	if err != nil {
		return nil, fmt.Errorf("ticket after message: %w", err)
	}
	return t, nil
}

// Message returns one message of a ticket the actor may see.
func (s *Store) Message(ctx context.Context, actor agentdesk.Actor, ticketID, id int64) (*agentdesk.Message, error) {
	if _, err := loadTicket(ctx, s.db, actor, ticketID, false); err != nil {
		return nil, err
	}
	m, err := scanMessage(s.db.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages m WHERE m.account_id = $1 AND m.ticket_id = $2 AND m.id = $3`,
		actor.AccountID, ticketID, id), actor.AccountID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, agentdesk.Errorf(agentdesk.NotFound, "message %d not found", id)
	}
	return m, err
}

// TicketMessages is a ticket's conversation in the order it happened, oldest
// first, notes included (agents read them; customers never get them).
func (s *Store) TicketMessages(ctx context.Context, actor agentdesk.Actor, ticketID int64, p agentdesk.Page) ([]agentdesk.Message, string, error) {
	p = p.Normalize()
	k, err := agentdesk.DecodeCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	if _, err := loadTicket(ctx, s.db, actor, ticketID, false); err != nil {
		return nil, "", err
	}
	args := []any{actor.AccountID, ticketID, p.Limit + 1}
	where := ""
	if k != nil {
		where = ` AND (m.created_at, m.id) > ($4, $5)`
		args = append(args, k.At, k.ID)
	}
	rows, err := s.db.Query(ctx, `SELECT `+messageColumns+` FROM messages m
		WHERE m.ticket_id = $2 AND m.account_id = $1`+where+` ORDER BY m.created_at, m.id LIMIT $3`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("ticket messages: %w", err)
	}
	return collectMessages(rows, actor.AccountID, p.Limit)
}

// CustomerTimeline is everything that happened with a customer on every
// channel, newest first. Messages of tickets the actor may not see (another
// team's private tickets) are left out.
func (s *Store) CustomerTimeline(ctx context.Context, actor agentdesk.Actor, customerID int64, p agentdesk.Page) ([]agentdesk.Message, string, error) {
	p = p.Normalize()
	k, err := agentdesk.DecodeCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	var exists bool
	if err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM customers WHERE account_id = $1 AND id = $2)`, actor.AccountID, customerID).Scan(&exists); err != nil {
		return nil, "", fmt.Errorf("customer timeline: %w", err)
	}
	if !exists {
		return nil, "", agentdesk.Errorf(agentdesk.NotFound, "customer %d not found", customerID)
	}
	args := []any{actor.AccountID, customerID, p.Limit + 1}
	where := ""
	if k != nil {
		where = ` AND (m.created_at, m.id) < ($4, $5)`
		args = append(args, k.At, k.ID)
	}
	vis, extra := visibleTo(actor, len(args)+1)
	args = append(args, extra...)
	sql := `SELECT ` + messageColumns + ` FROM messages m`
	if vis != "" {
		sql += ` JOIN tickets t ON t.account_id = m.account_id AND t.id = m.ticket_id`
	}
	sql += ` WHERE m.account_id = $1 AND m.customer_id = $2` + where + vis + ` ORDER BY m.created_at DESC, m.id DESC LIMIT $3`
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("customer timeline: %w", err)
	}
	return collectMessages(rows, actor.AccountID, p.Limit)
}

func collectMessages(rows pgx.Rows, accountID int64, limit int) ([]agentdesk.Message, string, error) {
	defer rows.Close()
	var (
		out  []agentdesk.Message
		keys []agentdesk.Keyset
	)
	for rows.Next() {
		m, err := scanMessage(rows, accountID)
		if err != nil {
			return nil, "", err
		}
		out = append(out, *m)
		keys = append(keys, agentdesk.Keyset{At: m.CreatedAt, ID: m.ID})
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	out, next := trimPage(out, keys, limit)
	return out, next, nil
}
