package email

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
)

// ClosedReply says what a customer's reply to a closed ticket does.
const (
	ClosedReopen   = "reopen"
	ClosedFollowUp = "follow_up"
)

// Mailbox is a support address and where its mail goes.
type Mailbox struct {
	ID          int64              `json:"id"`
	AccountID   int64              `json:"-"`
	Address     string             `json:"address"`
	DisplayName string             `json:"display_name"`
	QueueID     int64              `json:"queue_id"`
	TeamID      *int64             `json:"team_id"`
	Priority    agentdesk.Priority `json:"priority"`
	AutoAck     bool               `json:"auto_ack"`
	ClosedReply string             `json:"closed_reply"`
}

// Validate normalises and checks the mailbox.
func (m *Mailbox) Validate() error {
	addr, err := agentdesk.NormalizeEmail(m.Address)
	if err != nil {
		return agentdesk.FieldError("address", "%q is not a valid email address", m.Address)
	}
	if base, tag := splitPlus(addr); tag != "" {
		return agentdesk.FieldError("address", "a support address cannot contain '+' (use %s)", base)
	}
	m.Address = addr
	m.DisplayName = strings.TrimSpace(m.DisplayName)
	if len(m.DisplayName) > 200 || strings.ContainsAny(m.DisplayName, "\r\n") {
		return agentdesk.FieldError("display_name", "must be one line of at most 200 bytes")
	}
	if m.Priority == "" {
		m.Priority = agentdesk.PriorityNormal
	}
	if !m.Priority.Valid() {
		return agentdesk.FieldError("priority", "must be one of low, normal, high, urgent")
	}
	if m.ClosedReply == "" {
		m.ClosedReply = ClosedReopen
	}
	if m.ClosedReply != ClosedReopen && m.ClosedReply != ClosedFollowUp {
		return agentdesk.FieldError("closed_reply", "must be reopen or follow_up")
	}
	return nil
}

const insertMailbox = `
INSERT INTO email_mailboxes (account_id, address, display_name, queue_id, team_id, priority, auto_ack, closed_reply)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`

// CreateMailbox adds a support address to an account.
func CreateMailbox(ctx context.Context, db *pgxpool.Pool, accountID int64, m *Mailbox) error {
	if err := m.Validate(); err != nil {
		return err
	}
	m.AccountID = accountID
	err := db.QueryRow(ctx, insertMailbox, accountID, m.Address, m.DisplayName, m.QueueID, m.TeamID, m.Priority, m.AutoAck, m.ClosedReply).Scan(&m.ID)
	if c := addressTaken(err); c != nil {
		return c
	}
	if err != nil {
		return fmt.Errorf("create mailbox: %w", err)
	}
	return nil
}

const selectMailbox = `
SELECT id, account_id, address, display_name, queue_id, team_id, priority, auto_ack, closed_reply
FROM email_mailboxes WHERE address = $1`

const selectMailboxByID = `
SELECT id, account_id, address, display_name, queue_id, team_id, priority, auto_ack, closed_reply
FROM email_mailboxes WHERE account_id = $1 AND id = $2`

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func scanMailbox(row pgx.Row) (*Mailbox, error) {
	var m Mailbox
	err := row.Scan(&m.ID, &m.AccountID, &m.Address, &m.DisplayName, &m.QueueID, &m.TeamID, &m.Priority, &m.AutoAck, &m.ClosedReply)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// mailboxFor resolves a recipient (plus-addresses included) to its mailbox.
// It returns nil, "" when the address is not one of ours.
func mailboxFor(ctx context.Context, q querier, rcpt string) (*Mailbox, string, error) {
	addr, err := agentdesk.NormalizeEmail(rcpt)
	if err != nil {
		return nil, "", nil
	}
	base, tag := splitPlus(addr)
	m, err := scanMailbox(q.QueryRow(ctx, selectMailbox, base))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("look up mailbox %s: %w", base, err)
	}
	return m, tag, nil
}

// Blob returns stored bytes by their sha256 (hex): an attachment, an inline
// image or a raw message, as listed in a message's meta.email.
func Blob(ctx context.Context, db *pgxpool.Pool, accountID int64, sha256Hex string) ([]byte, error) {
	sum, err := hex.DecodeString(sha256Hex)
	if err != nil || len(sum) != 32 {
		return nil, agentdesk.FieldError("sha256", "must be 64 hex digits")
	}
	var b []byte
	var path *string
	err = db.QueryRow(ctx, `SELECT bytes, path FROM email_blobs WHERE account_id = $1 AND sha256 = $2`, accountID, sum).Scan(&b, &path)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, agentdesk.Errorf(agentdesk.NotFound, "attachment not found")
	}
	if err != nil {
		return nil, fmt.Errorf("read blob: %w", err)
	}
	if b == nil && path != nil {
		return os.ReadFile(*path)
	}
	return b, nil
}

// Mailboxes lists an account's support addresses.
func Mailboxes(ctx context.Context, db *pgxpool.Pool, accountID int64) ([]Mailbox, error) {
	rows, err := db.Query(ctx, `
SELECT id, account_id, address, display_name, queue_id, team_id, priority, auto_ack, closed_reply
FROM email_mailboxes WHERE account_id = $1 ORDER BY address`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	defer rows.Close()
	var out []Mailbox
	for rows.Next() {
		m, err := scanMailbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *m)
	}
	return out, rows.Err()
}
