package email

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// Ingester stores inbound mail: customer, ticket, message, attachments, raw
// mail and routing task in one transaction. The SMTP server and the IMAP
// poller both feed it.
type Ingester struct {
	db   *pgxpool.Pool
	enq  Enqueuer
	cfg  Config
	keys keys
	log  *slog.Logger
	jobs *river.Client[pgx.Tx] // queues auto-acknowledgements; never started
}

// NewIngester returns an Ingester. cfg must carry a Secret.
func NewIngester(cfg Config, db *pgxpool.Pool, enq Enqueuer, log *slog.Logger) (*Ingester, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	jobs, err := newInserter(db, log)
	if err != nil {
		return nil, err
	}
	return &Ingester{db: db, enq: enq, cfg: cfg, keys: deriveKeys(cfg.Secret), log: log, jobs: jobs}, nil
}

// Result says what happened to one inbound mail.
type Result struct {
	TicketID   int64
	MessageID  int64  // 0 for mail kept only raw (an unmatched bounce)
	Duplicate  bool   // the Message-ID was already stored; nothing changed
	NewTicket  bool   // a ticket was opened (new contact or follow-up)
	Reopened   bool   // a solved or closed ticket was reopened
	ThreadedBy string // which rule joined the mail to its ticket
	TaskID     int64  // the routing task, when one was queued
}

// Delivery is one inbound mail as it arrived.
type Delivery struct {
	Mailbox      *Mailbox
	Tags         []string // plus-address tags of the recipients
	EnvelopeFrom string   // MAIL FROM; "" for the null sender of bounces
	Raw          []byte
}

// ErrNoSender is returned for mail with no usable sender address at all.
var ErrNoSender = agentdesk.Errorf(agentdesk.Invalid, "no valid sender address in From or MAIL FROM")

// Ingest parses and stores one mail. A Message-ID already stored in the
// account returns Duplicate and changes nothing.
func (in *Ingester) Ingest(ctx context.Context, d Delivery) (Result, error) {
	p, err := Parse(d.Raw)
	if err != nil {
		return Result{}, &agentdesk.Error{Kind: agentdesk.Invalid, Message: "the message could not be parsed", Err: err}
	}
	return in.IngestParsed(ctx, d, p)
}

// IngestParsed stores a mail parsed already.
func (in *Ingester) IngestParsed(ctx context.Context, d Delivery, p *Parsed) (Result, error) {
	var res Result
	// postgres.InTx, so the routing task wakes the dispatchers after the
	// commit rather than with a NOTIFY inside it.
	err := postgres.InTx(ctx, in.db, func(tx pgx.Tx) error {
		var err error
		res, err = in.ingestTx(ctx, tx, d, p)
		if err == nil && res.Duplicate {
			return errDuplicate // roll back: a redelivery must not change anything
		}
		return err
	})
	if errors.Is(err, errDuplicate) {
		return res, nil
	}
	return res, err
}

var errDuplicate = errors.New("duplicate message")

const claimMessageID = `
INSERT INTO email_messages (account_id, rfc_message_id, mailbox_id, direction, peer_addr, subject_key, thread_root, auto_reply, bounce)
VALUES ($1, $2, $3, 'in', $4, $5, $6, $7, $8)
ON CONFLICT (account_id, rfc_message_id) DO NOTHING
RETURNING id`

const selectClaimed = `SELECT coalesce(ticket_id, 0), coalesce(message_id, 0) FROM email_messages WHERE account_id = $1 AND rfc_message_id = $2`

func (in *Ingester) ingestTx(ctx context.Context, tx pgx.Tx, d Delivery, p *Parsed) (Result, error) {
	mb := d.Mailbox
	acct := mb.AccountID
	var res Result
	sender, err := p.customerAddress()
	if err != nil {
		if sender, err = agentdesk.NormalizeEmail(d.EnvelopeFrom); err != nil && p.Bounce == nil {
			return res, ErrNoSender
		}
	}
	// Claiming the Message-ID first serialises concurrent redeliveries: the
	// second waits on the unique index and then sees the first's row.
	var emID int64
	err = tx.QueryRow(ctx, claimMessageID, acct, p.MessageID, mb.ID, sender, subjectKey(p.Subject), p.ThreadRoot, p.AutoReply, p.Bounce != nil).Scan(&emID)
	if errors.Is(err, pgx.ErrNoRows) {
		res.Duplicate = true
		err = tx.QueryRow(ctx, selectClaimed, acct, p.MessageID).Scan(&res.TicketID, &res.MessageID)
		return res, err
	}
	if err != nil {
		return res, fmt.Errorf("claim message id: %w", err)
	}
	if err := putBlob(ctx, tx, acct, p.RawSHA256, p.Raw); err != nil {
		return res, err
	}
	if p.Bounce != nil {
		if err := in.recordBounce(ctx, tx, acct, p); err != nil {
			return res, err
		}
	}

	var customerID int64
	if sender != "" && p.Bounce == nil {
		if customerID, err = customerByEmail(ctx, tx, acct, sender, p.From.Name); err != nil {
			return res, err
		}
	}
	th, err := in.thread(ctx, tx, acct, customerID, sender, d.Tags, p)
	if err != nil {
		return res, err
	}
	res.ThreadedBy = th.by
	if p.Bounce != nil && th.ticketID == 0 {
		// A bounce about mail we cannot find: keep it raw, open nothing.
		_, err := tx.Exec(ctx, `UPDATE email_messages SET raw_sha256 = $3 WHERE account_id = $1 AND id = $2`, acct, emID, p.RawSHA256[:])
		return res, err
	}

	automated := p.AutoReply || p.Bounce != nil
	route := false
	t := ticketState{}
	if th.ticketID != 0 {
		if t, err = lockTicket(ctx, tx, acct, th.ticketID); err != nil {
			return res, err
		}
		if customerID == 0 {
			customerID = t.customerID
		}
	}
	switch {
	case th.ticketID == 0:
		res.TicketID, err = createTicket(ctx, tx, acct, mb, customerID, p.Subject)
		res.NewTicket, route = true, true
	case t.status.Done() && !automated && t.status == agentdesk.StatusClosed && mb.ClosedReply == ClosedFollowUp:
		res.TicketID, err = createTicket(ctx, tx, acct, mb, customerID, p.Subject)
		if err == nil {
			_, err = tx.Exec(ctx, `INSERT INTO email_ticket_links (account_id, ticket_id, follows_id) VALUES ($1, $2, $3)`, acct, res.TicketID, t.id)
		}
		res.NewTicket, route = true, true
	case t.status.Done() && !automated:
		res.TicketID = t.id
		// As the store does on a customer's message: the resolution of a
		// reopened ticket is its next solve, so the old one is cleared.
		_, err = tx.Exec(ctx, `
UPDATE tickets SET status = 'open', custom_status = '', closed_at = NULL, resolved_at = NULL, resolution_seconds = NULL, updated_at = now()
WHERE account_id = $1 AND id = $2`, acct, t.id)
		res.Reopened, route = true, true
	case t.status == agentdesk.StatusPending && !automated:
		res.TicketID = t.id
		_, err = tx.Exec(ctx, `UPDATE tickets SET status = 'open', custom_status = '', updated_at = now() WHERE account_id = $1 AND id = $2`, acct, t.id)
	default:
		res.TicketID = t.id
		_, err = tx.Exec(ctx, `UPDATE tickets SET updated_at = now() WHERE account_id = $1 AND id = $2`, acct, t.id)
	}
	if err != nil {
		return res, fmt.Errorf("store ticket: %w", err)
	}

	msg, err := insertInbound(ctx, tx, acct, res.TicketID, customerID, mb, p, th.by)
	if err != nil {
		return res, err
	}
	res.MessageID = msg.ID
	if err := putAttachments(ctx, tx, acct, res.MessageID, p.Attachments); err != nil {
		return res, err
	}
	_, err = tx.Exec(ctx, `UPDATE email_messages SET message_id = $3, ticket_id = $4, raw_sha256 = $5 WHERE account_id = $1 AND id = $2`,
		acct, emID, res.MessageID, res.TicketID, p.RawSHA256[:])
	if err != nil {
		return res, fmt.Errorf("index message id: %w", err)
	}
	if route && in.enq != nil {
		res.TaskID, err = in.enq.EnqueueTx(ctx, tx, agentdesk.TaskRequest{
			AccountID:  acct,
			Channel:    agentdesk.ChannelEmail,
			QueueID:    mb.QueueID,
			Priority:   mb.Priority,
			TicketID:   res.TicketID,
			CustomerID: customerID,
			Attributes: map[string]any{"mailbox": mb.Address, "subject": p.Subject},
		})
		if err != nil {
			return res, fmt.Errorf("enqueue email task: %w", err)
		}
	}
	// The desks with the ticket open, and its assignee, see the mail at
	// once. A ticket the mail opened has neither yet: the lists of new
	// tickets learn about it instead.
	if !res.NewTicket {
		if err := publishNewMessage(ctx, tx, in.cfg.Events, msg); err != nil {
			return res, err
		}
	} else if in.cfg.TicketCreated != nil {
		t, err := postgres.TicketTx(ctx, tx, agentdesk.Actor{AccountID: acct, Role: agentdesk.RoleAdmin}, res.TicketID)
		if err != nil {
			return res, fmt.Errorf("load new ticket: %w", err)
		}
		if err := in.cfg.TicketCreated(ctx, tx, t); err != nil {
			return res, fmt.Errorf("publish new ticket: %w", err)
		}
	}
	if res.NewTicket && mb.AutoAck && !automated && !p.Bulk && d.EnvelopeFrom != "" && sender != "" {
		if err := in.autoAck(ctx, tx, mb, res.TicketID, customerID, sender, p); err != nil {
			return res, err
		}
	}
	return res, nil
}

// customerByEmail finds the customer owning an email identity, or creates
// both. Two mails from a new address at once create one customer: the loser
// of the identity insert drops its customer row and takes the winner's.
func customerByEmail(ctx context.Context, tx pgx.Tx, acct int64, addr, name string) (int64, error) {
	const find = `
SELECT coalesce(c.merged_into, c.id) FROM identities i JOIN customers c ON c.account_id = i.account_id AND c.id = i.customer_id
WHERE i.account_id = $1 AND i.kind = 'email' AND i.network = '' AND i.value = $2`
	var id int64
	err := tx.QueryRow(ctx, find, acct, addr).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("find customer %s: %w", addr, err)
	}
	name = strings.TrimSpace(name)
	if len(name) > 200 {
		name = name[:200]
	}
	if err := tx.QueryRow(ctx, `INSERT INTO customers (account_id, name, preferred_channel) VALUES ($1, $2, 'email') RETURNING id`, acct, name).Scan(&id); err != nil {
		return 0, fmt.Errorf("create customer: %w", err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO identities (account_id, customer_id, kind, value) VALUES ($1, $2, 'email', $3) ON CONFLICT DO NOTHING`, acct, id, addr)
	if err != nil {
		return 0, fmt.Errorf("add identity: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return id, nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM customers WHERE account_id = $1 AND id = $2`, acct, id); err != nil {
		return 0, err
	}
	if err := tx.QueryRow(ctx, find, acct, addr).Scan(&id); err != nil {
		return 0, fmt.Errorf("find customer %s: %w", addr, err)
	}
	return id, nil
}

type ticketState struct {
	id         int64
	status     agentdesk.Status
	customerID int64
}

func lockTicket(ctx context.Context, tx pgx.Tx, acct, id int64) (ticketState, error) {
	t := ticketState{id: id}
	err := tx.QueryRow(ctx, `SELECT status, customer_id FROM tickets WHERE account_id = $1 AND id = $2 FOR UPDATE`, acct, id).Scan(&t.status, &t.customerID)
	if err != nil {
		return t, fmt.Errorf("lock ticket %d: %w", id, err)
	}
	return t, nil
}

func createTicket(ctx context.Context, tx pgx.Tx, acct int64, mb *Mailbox, customerID int64, subject string) (int64, error) {
	subject = strings.TrimSpace(subject)
	if subject == "" {
		subject = "(no subject)"
	}
	subject = truncate(subject, 500)
	var id int64
	err := tx.QueryRow(ctx, `
INSERT INTO tickets (account_id, subject, status, priority, channel, customer_id, team_id)
VALUES ($1, $2, 'new', $3, 'email', $4, $5) RETURNING id`, acct, subject, mb.Priority, customerID, mb.TeamID).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create ticket: %w", err)
	}
	return id, nil
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// AttachmentMeta is how an attachment appears in a message's meta.
type AttachmentMeta struct {
	SHA256      string `json:"sha256"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	ContentID   string `json:"content_id,omitempty"`
	Inline      bool   `json:"inline,omitempty"`
	Size        int    `json:"size"`
}

func attachmentMeta(as []Attachment) []AttachmentMeta {
	out := make([]AttachmentMeta, 0, len(as))
	for _, a := range as {
		out = append(out, AttachmentMeta{SHA256: fmt.Sprintf("%x", a.SHA256), Filename: a.Filename, ContentType: a.ContentType, ContentID: a.ContentID, Inline: a.Inline, Size: len(a.Data)})
	}
	return out
}

func insertInbound(ctx context.Context, tx pgx.Tx, acct, ticketID, customerID int64, mb *Mailbox, p *Parsed, threadedBy string) (*agentdesk.Message, error) {
	body := truncate(p.Text, agentdesk.MaxMessageBody)
	if strings.TrimSpace(body) == "" {
		body = "(no text)"
	}
	em := map[string]any{
		"message_id":  p.MessageID,
		"from":        p.From,
		"to":          p.To,
		"mailbox":     mb.Address,
		"visible":     truncate(p.Visible, agentdesk.MaxMessageBody),
		"folds":       p.Folds,
		"attachments": attachmentMeta(p.Attachments),
		"raw_sha256":  fmt.Sprintf("%x", p.RawSHA256),
	}
	if len(p.Cc) > 0 {
		em["cc"] = p.Cc
	}
	if p.HTML != "" {
		em["html"] = truncate(p.HTML, agentdesk.MaxMessageBody)
	}
	if p.HTMLVisible != "" {
		em["html_visible"] = truncate(p.HTMLVisible, agentdesk.MaxMessageBody)
	}
	if threadedBy != "" {
		em["threaded_by"] = threadedBy
	}
	if p.SyntheticID {
		em["synthetic_message_id"] = true
	}
	if p.AutoReply {
		em["auto_reply"] = true
	}
	if p.Bounce != nil {
		em["bounce"] = p.Bounce.FailedRecipients()
	}
	if len(p.Warnings) > 0 {
		em["warnings"] = p.Warnings
	}
	meta, err := json.Marshal(map[string]any{"email": em})
	if err != nil {
		return nil, err
	}
	m, err := scanMessage(tx.QueryRow(ctx, `
INSERT INTO messages (account_id, ticket_id, customer_id, kind, direction, subject, body, meta)
VALUES ($1, $2, $3, 'email', 'in', $4, $5, $6) RETURNING `+messageColumns,
		acct, ticketID, customerID, truncate(p.Subject, 500), body, meta), acct)
	if err != nil {
		return nil, fmt.Errorf("insert message: %w", err)
	}
	return m, nil
}

// insertBlob stores a blob once per content. On an existing row it takes
// the row's lock with a no-op update rather than doing nothing: the upload
// cleanup deletes unreferenced blobs with SKIP LOCKED, so it now passes over
// this one, and if the cleanup got there first PostgreSQL waits for its
// delete and inserts the row afresh. Doing nothing would leave a window in
// which the blob vanishes before the reference to it is written.
const insertBlob = `INSERT INTO email_blobs (account_id, sha256, size, bytes) VALUES ($1, $2, $3, $4)
ON CONFLICT (account_id, sha256) DO UPDATE SET size = email_blobs.size`

func putBlob(ctx context.Context, tx pgx.Tx, acct int64, sum [32]byte, data []byte) error {
	_, err := tx.Exec(ctx, insertBlob, acct, sum[:], len(data), data)
	if err != nil {
		return fmt.Errorf("store blob: %w", err)
	}
	return nil
}

func putAttachments(ctx context.Context, tx pgx.Tx, acct, messageID int64, as []Attachment) error {
	if len(as) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, a := range as {
		b.Queue(insertBlob, acct, a.SHA256[:], len(a.Data), a.Data)
		b.Queue(`INSERT INTO email_attachments (account_id, message_id, sha256, filename, content_type, content_id, inline, size)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, acct, messageID, a.SHA256[:], truncate(a.Filename, 255), a.ContentType, a.ContentID, a.Inline, len(a.Data))
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("store attachments: %w", err)
	}
	return nil
}

// recordBounce marks every failed recipient as failing and the outbound
// delivery the bounce is about as failed, with the remote answer.
func (in *Ingester) recordBounce(ctx context.Context, tx pgx.Tx, acct int64, p *Parsed) error {
	for _, r := range p.Bounce.FailedRecipients() {
		if _, err := agentdesk.NormalizeEmail(r.Address); err != nil {
			continue
		}
		_, err := tx.Exec(ctx, `
INSERT INTO email_failing_addresses (account_id, address, status, diagnostic) VALUES ($1, $2, $3, $4)
ON CONFLICT (account_id, address) DO UPDATE SET status = excluded.status, diagnostic = excluded.diagnostic,
    bounces = email_failing_addresses.bounces + 1, last_at = now()`, acct, r.Address, r.Status, truncate(r.Diagnostic, 1000))
		if err != nil {
			return fmt.Errorf("mark address failing: %w", err)
		}
	}
	orig := p.Bounce.OriginalMessageID
	if orig == "" && len(p.InReplyTo) > 0 {
		orig = p.InReplyTo[0]
	}
	if orig == "" {
		return nil
	}
	answer := "bounced"
	if f := p.Bounce.FailedRecipients(); len(f) > 0 {
		answer = strings.TrimSpace(f[0].Status + " " + f[0].Diagnostic)
	}
	var deliveryID, messageID int64
	var attempts int
	err := tx.QueryRow(ctx, `
UPDATE email_deliveries d SET state = 'failed', last_answer = $3, updated_at = now()
FROM email_messages m
WHERE m.account_id = $1 AND m.rfc_message_id = $2 AND m.direction = 'out'
  AND d.account_id = m.account_id AND d.message_id = m.message_id
RETURNING d.id, d.message_id, d.attempts`, acct, orig, truncate(answer, 1000)).Scan(&deliveryID, &messageID, &attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark delivery bounced: %w", err)
	}
	return setDeliveryMeta(ctx, tx, in.cfg.Events, acct, messageID, deliveryState{State: "failed", Answer: truncate(answer, 1000), Attempts: attempts})
}
