package email

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// Admin changes an account's support addresses (email_mailboxes) and IMAP
// accounts (email_imap_accounts) for the REST API, each change audited in
// its transaction. Changes take effect without a restart: the SMTP server
// looks every recipient up in the database, and pollers reload their
// accounts every Config.IMAPPoll, at once in this process (AdminConfig.Changed).
type Admin struct {
	db      *pgxpool.Pool
	keys    *keys
	changed func()
}

// AdminConfig configures an Admin.
type AdminConfig struct {
	// Secret is the server's email secret (Config.Secret). Without it IMAP
	// passwords cannot be sealed, so accounts with a password are refused.
	Secret []byte
	// Changed is called after a change committed (the poller's Reload).
	Changed func()
}

// NewAdmin returns an Admin on db.
func NewAdmin(db *pgxpool.Pool, cfg AdminConfig) *Admin {
	a := &Admin{db: db, changed: cfg.Changed}
	if len(cfg.Secret) >= 32 {
		k := deriveKeys(cfg.Secret)
		a.keys = &k
	}
	return a
}

// ErrNoSecret is the reason an IMAP password cannot be stored.
var ErrNoSecret = errors.New("the server has no email secret (--email-secret) to seal IMAP passwords with")

func (a *Admin) done() {
	if a.changed != nil {
		a.changed()
	}
}

func target(kind string, id int64) string { return fmt.Sprintf("%s:%d", kind, id) }

// Mailbox returns one support address of the account.
func (a *Admin) Mailbox(ctx context.Context, acct, id int64) (*Mailbox, error) {
	m, err := scanMailbox(a.db.QueryRow(ctx, selectMailboxByID, acct, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, agentdesk.Errorf(agentdesk.NotFound, "support address %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load mailbox: %w", err)
	}
	return m, nil
}

// Mailboxes lists the account's support addresses.
func (a *Admin) Mailboxes(ctx context.Context, acct int64) ([]Mailbox, error) {
	return Mailboxes(ctx, a.db, acct)
}

// checkMailboxRefs checks that the queue and team a mailbox routes to exist
// in the account (queue 0 is the email channel's default queue).
func checkMailboxRefs(ctx context.Context, tx pgx.Tx, acct int64, m *Mailbox) error {
	if m.QueueID < 0 {
		return agentdesk.FieldError("queue_id", "must be a queue id, or 0 for the default email queue")
	}
	if m.QueueID != 0 {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM queues WHERE account_id = $1 AND id = $2)`, acct, m.QueueID).Scan(&ok); err != nil {
			return fmt.Errorf("check queue: %w", err)
		}
		if !ok {
			return agentdesk.FieldError("queue_id", "no queue %d in this account", m.QueueID)
		}
	}
	if m.TeamID != nil {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM teams WHERE account_id = $1 AND id = $2)`, acct, *m.TeamID).Scan(&ok); err != nil {
			return fmt.Errorf("check team: %w", err)
		}
		if !ok {
			return agentdesk.FieldError("team_id", "no team %d in this account", *m.TeamID)
		}
	}
	return nil
}

// errAddressUnavailable answers an address another account uses. Support
// addresses are unique across accounts (the SMTP server learns the account
// from the recipient), so the address cannot be given, but the answer must
// not tell one account about another's: it says no more than that the
// address is not available.
func errAddressUnavailable() error {
	return &agentdesk.Error{Kind: agentdesk.Conflict, Field: "address", Message: "address is not available"}
}

// checkAddressFree refuses an address already in use: by another support
// address of this account (said plainly) or by any other account (said
// neutrally). self is the mailbox being changed (0 on create). The unique
// index still decides a race; addressTaken answers that one neutrally.
func checkAddressFree(ctx context.Context, tx pgx.Tx, acct, self int64, address string) error {
	var owner int64
	err := tx.QueryRow(ctx, `SELECT account_id FROM email_mailboxes WHERE address = $1 AND id <> $2`, address, self).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check address: %w", err)
	}
	if owner == acct {
		return &agentdesk.Error{Kind: agentdesk.Conflict, Field: "address", Message: "already a support address of this account"}
	}
	return errAddressUnavailable()
}

// addressTaken maps a unique violation on the address (a concurrent create
// checkAddressFree could not see) to the neutral conflict: it may be
// another account's.
func addressTaken(err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" {
		return errAddressUnavailable()
	}
	return nil
}

// CreateMailbox adds a support address; the SMTP server accepts mail for it
// from the next RCPT on.
func (a *Admin) CreateMailbox(ctx context.Context, actor agentdesk.Actor, m *Mailbox) error {
	if err := m.Validate(); err != nil {
		return err
	}
	acct := actor.AccountID
	m.AccountID = acct
	err := pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) error {
		if err := checkMailboxRefs(ctx, tx, acct, m); err != nil {
			return err
		}
		if err := checkAddressFree(ctx, tx, acct, 0, m.Address); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, insertMailbox, acct, m.Address, m.DisplayName, m.QueueID, m.TeamID, m.Priority, m.AutoAck, m.ClosedReply).Scan(&m.ID)
		if c := addressTaken(err); c != nil {
			return c
		}
		if err != nil {
			return fmt.Errorf("create mailbox: %w", err)
		}
		return postgres.Audit(ctx, tx, actor, "email_mailbox.create", target("email_mailbox", m.ID), m)
	})
	if err != nil {
		return err
	}
	a.done()
	return nil
}

// UpdateMailbox changes a support address: change edits the stored one.
func (a *Admin) UpdateMailbox(ctx context.Context, actor agentdesk.Actor, id int64, change func(*Mailbox) error) (*Mailbox, error) {
	acct := actor.AccountID
	var out *Mailbox
	err := pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) error {
		m, err := scanMailbox(tx.QueryRow(ctx, selectMailboxByID+` FOR UPDATE`, acct, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return agentdesk.Errorf(agentdesk.NotFound, "support address %d not found", id)
		}
		if err != nil {
			return fmt.Errorf("load mailbox: %w", err)
		}
		if err := change(m); err != nil {
			return err
		}
		if err := m.Validate(); err != nil {
			return err
		}
		if err := checkMailboxRefs(ctx, tx, acct, m); err != nil {
			return err
		}
		if err := checkAddressFree(ctx, tx, acct, id, m.Address); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
UPDATE email_mailboxes SET address = $3, display_name = $4, queue_id = $5, team_id = $6, priority = $7, auto_ack = $8, closed_reply = $9
WHERE account_id = $1 AND id = $2`, acct, id, m.Address, m.DisplayName, m.QueueID, m.TeamID, m.Priority, m.AutoAck, m.ClosedReply)
		if c := addressTaken(err); c != nil {
			return c
		}
		if err != nil {
			return fmt.Errorf("update mailbox: %w", err)
		}
		out = m
		return postgres.Audit(ctx, tx, actor, "email_mailbox.update", target("email_mailbox", id), m)
	})
	if err != nil {
		return nil, err
	}
	a.done()
	return out, nil
}

// DeleteMailbox removes a support address and its IMAP accounts. Mail
// already stored keeps its tickets; replies on them go out from the
// account's remaining first support address.
func (a *Admin) DeleteMailbox(ctx context.Context, actor agentdesk.Actor, id int64) error {
	err := pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) error {
		var addr string
		err := tx.QueryRow(ctx, `DELETE FROM email_mailboxes WHERE account_id = $1 AND id = $2 RETURNING address`, actor.AccountID, id).Scan(&addr)
		if errors.Is(err, pgx.ErrNoRows) {
			return agentdesk.Errorf(agentdesk.NotFound, "support address %d not found", id)
		}
		if err != nil {
			return fmt.Errorf("delete mailbox: %w", err)
		}
		return postgres.Audit(ctx, tx, actor, "email_mailbox.delete", target("email_mailbox", id), map[string]string{"address": addr})
	})
	if err != nil {
		return err
	}
	a.done()
	return nil
}

// IMAPAccountView is an IMAP account as the API shows it: never the password.
type IMAPAccountView struct {
	IMAPAccount
	Enabled      bool       `json:"enabled"`
	LastPolledAt *time.Time `json:"last_polled_at"`
	LastError    string     `json:"last_error"`
}

const imapColumns = `id, account_id, mailbox_id, host, port, security, username, folder, processed_folder, ca_pem, enabled, last_polled_at, last_error`

func scanIMAPView(row pgx.Row) (*IMAPAccountView, error) {
	var v IMAPAccountView
	err := row.Scan(&v.ID, &v.AccountID, &v.MailboxID, &v.Host, &v.Port, &v.Security, &v.Username, &v.Folder, &v.ProcessedFolder, &v.CAPEM, &v.Enabled, &v.LastPolledAt, &v.LastError)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// IMAPAccounts lists the account's IMAP accounts.
func (a *Admin) IMAPAccounts(ctx context.Context, acct int64) ([]IMAPAccountView, error) {
	rows, err := a.db.Query(ctx, `SELECT `+imapColumns+` FROM email_imap_accounts WHERE account_id = $1 ORDER BY id`, acct)
	if err != nil {
		return nil, fmt.Errorf("list imap accounts: %w", err)
	}
	defer rows.Close()
	out := []IMAPAccountView{}
	for rows.Next() {
		v, err := scanIMAPView(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, rows.Err()
}

// IMAPAccount returns one IMAP account.
func (a *Admin) IMAPAccount(ctx context.Context, acct, id int64) (*IMAPAccountView, error) {
	v, err := scanIMAPView(a.db.QueryRow(ctx, `SELECT `+imapColumns+` FROM email_imap_accounts WHERE account_id = $1 AND id = $2`, acct, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, agentdesk.Errorf(agentdesk.NotFound, "IMAP account %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load imap account: %w", err)
	}
	return v, nil
}

func (a *Admin) seal(password string) ([]byte, error) {
	if a.keys == nil {
		return nil, &agentdesk.Error{Kind: agentdesk.Invalid, Field: "password", Message: "cannot be stored: " + ErrNoSecret.Error(), Err: ErrNoSecret}
	}
	return a.keys.seal(password)
}

func checkIMAPMailbox(ctx context.Context, tx pgx.Tx, acct, mailboxID int64) error {
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM email_mailboxes WHERE account_id = $1 AND id = $2)`, acct, mailboxID).Scan(&ok); err != nil {
		return fmt.Errorf("check mailbox: %w", err)
	}
	if !ok {
		return agentdesk.FieldError("mailbox_id", "no support address %d in this account", mailboxID)
	}
	return nil
}

// auditIMAP is what the audit log keeps of an account: never the password.
func auditIMAP(v *IMAPAccount, enabled bool, passwordChanged bool) map[string]any {
	return map[string]any{"mailbox_id": v.MailboxID, "host": v.Host, "port": v.Port, "security": v.Security, "username": v.Username,
		"folder": v.Folder, "processed_folder": v.ProcessedFolder, "custom_ca": v.CAPEM != "", "enabled": enabled, "password_changed": passwordChanged}
}

// CreateIMAPAccount adds an IMAP account to poll, its password sealed.
func (a *Admin) CreateIMAPAccount(ctx context.Context, actor agentdesk.Actor, in *IMAPAccount, enabled bool) (*IMAPAccountView, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	sealed, err := a.seal(in.Password)
	if err != nil {
		return nil, err
	}
	acct := actor.AccountID
	var out *IMAPAccountView
	err = pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) error {
		if err := checkIMAPMailbox(ctx, tx, acct, in.MailboxID); err != nil {
			return err
		}
		v, err := scanIMAPView(tx.QueryRow(ctx, `
INSERT INTO email_imap_accounts (account_id, mailbox_id, host, port, security, username, password_sealed, folder, processed_folder, ca_pem, enabled)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING `+imapColumns,
			acct, in.MailboxID, in.Host, in.Port, in.Security, in.Username, sealed, in.Folder, in.ProcessedFolder, in.CAPEM, enabled))
		if err != nil {
			return fmt.Errorf("create imap account: %w", err)
		}
		out = v
		return postgres.Audit(ctx, tx, actor, "email_imap_account.create", target("email_imap_account", v.ID), auditIMAP(&v.IMAPAccount, enabled, true))
	})
	if err != nil {
		return nil, err
	}
	a.done()
	return out, nil
}

// UpdateIMAPAccount changes an IMAP account: change edits the stored one
// (its Password empty; set it to change the password). A change of host,
// port, security or username must set a new password. A running poller
// reconnects with the new settings.
func (a *Admin) UpdateIMAPAccount(ctx context.Context, actor agentdesk.Actor, id int64, change func(*IMAPAccount, *bool) error) (*IMAPAccountView, error) {
	acct := actor.AccountID
	var out *IMAPAccountView
	err := pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) error {
		v, err := scanIMAPView(tx.QueryRow(ctx, `SELECT `+imapColumns+` FROM email_imap_accounts WHERE account_id = $1 AND id = $2 FOR UPDATE`, acct, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return agentdesk.Errorf(agentdesk.NotFound, "IMAP account %d not found", id)
		}
		if err != nil {
			return fmt.Errorf("load imap account: %w", err)
		}
		acc := v.IMAPAccount
		enabled := v.Enabled
		if err := change(&acc, &enabled); err != nil {
			return err
		}
		if err := acc.validateSettings(); err != nil {
			return err
		}
		// The stored password is only ever sent to the server and user it
		// was given for: otherwise an admin who cannot read it could point
		// the account at a host of theirs (or drop TLS) and have the poller
		// log in there with it.
		if acc.Password == "" && credentialsMoved(&v.IMAPAccount, &acc) {
			return agentdesk.FieldError("password", "a new password is required when the server or user changes")
		}
		var sealed []byte
		if acc.Password != "" {
			if err := validPassword(acc.Password); err != nil {
				return err
			}
			if sealed, err = a.seal(acc.Password); err != nil {
				return err
			}
		}
		if err := checkIMAPMailbox(ctx, tx, acct, acc.MailboxID); err != nil {
			return err
		}
		// A changed account is polled again from scratch: its last error
		// belongs to the old settings.
		out, err = scanIMAPView(tx.QueryRow(ctx, `
UPDATE email_imap_accounts SET mailbox_id = $3, host = $4, port = $5, security = $6, username = $7,
    password_sealed = coalesce($8, password_sealed), folder = $9, processed_folder = $10, ca_pem = $11, enabled = $12, last_error = ''
WHERE account_id = $1 AND id = $2 RETURNING `+imapColumns,
			acct, id, acc.MailboxID, acc.Host, acc.Port, acc.Security, acc.Username, sealed, acc.Folder, acc.ProcessedFolder, acc.CAPEM, enabled))
		if err != nil {
			return fmt.Errorf("update imap account: %w", err)
		}
		return postgres.Audit(ctx, tx, actor, "email_imap_account.update", target("email_imap_account", id), auditIMAP(&acc, enabled, sealed != nil))
	})
	if err != nil {
		return nil, err
	}
	a.done()
	return out, nil
}

// credentialsMoved reports whether an account's password would go to
// another place than it was given for: another host, port, transport
// security or user name. (Host names compare case-insensitively.)
func credentialsMoved(old, cur *IMAPAccount) bool {
	return !strings.EqualFold(old.Host, cur.Host) || old.Port != cur.Port || old.Security != cur.Security || old.Username != cur.Username
}

// DeleteIMAPAccount stops polling an account and forgets it.
func (a *Admin) DeleteIMAPAccount(ctx context.Context, actor agentdesk.Actor, id int64) error {
	err := pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) error {
		var host, user string
		err := tx.QueryRow(ctx, `DELETE FROM email_imap_accounts WHERE account_id = $1 AND id = $2 RETURNING host, username`, actor.AccountID, id).Scan(&host, &user)
		if errors.Is(err, pgx.ErrNoRows) {
			return agentdesk.Errorf(agentdesk.NotFound, "IMAP account %d not found", id)
		}
		if err != nil {
			return fmt.Errorf("delete imap account: %w", err)
		}
		return postgres.Audit(ctx, tx, actor, "email_imap_account.delete", target("email_imap_account", id), map[string]string{"host": host, "username": user})
	})
	if err != nil {
		return err
	}
	a.done()
	return nil
}
