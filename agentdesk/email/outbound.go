package email

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// outbound is one mail to queue: its timeline message and its delivery.
type outbound struct {
	actor                      agentdesk.Actor
	acct, ticketID, customerID int64
	authorID                   *int64
	kind                       string // reply or auto_ack
	mailbox                    *Mailbox
	mail                       outMail
	threadRoot                 string
	jobs                       *river.Client[pgx.Tx] // inserts the delivery job
	pub                        Publisher
}

// queueOutbound stores the message, indexes its Message-ID for threading,
// records the delivery and queues its River job, all in the caller's
// transaction, and tells the ticket's desks (message.created,
// ticket.updated).
func queueOutbound(ctx context.Context, tx pgx.Tx, o outbound) (int64, error) {
	raw, err := compose(o.mail)
	if err != nil {
		return 0, fmt.Errorf("compose mail: %w", err)
	}
	atts := make([]Attachment, 0, len(o.mail.Attachments))
	for _, a := range o.mail.Attachments {
		atts = append(atts, Attachment{Filename: a.Filename, ContentType: a.ContentType, Data: a.Data, SHA256: sumOf(a.Data)})
	}
	em := map[string]any{
		"message_id":  o.mail.MessageID,
		"from":        o.mail.From,
		"to":          []Address{o.mail.To},
		"mailbox":     o.mailbox.Address,
		"attachments": attachmentMeta(atts),
		"delivery":    deliveryState{State: "queued"},
	}
	if o.mail.HTML != "" {
		em["html"] = sanitizer.Sanitize(o.mail.HTML)
	}
	if o.kind == "auto_ack" {
		em["auto_ack"] = true
	}
	// The store applies the ticket's rules (visibility, first response, a
	// new ticket opening on the agent's reply) as for any other message.
	m := &agentdesk.Message{
		TicketID: o.ticketID, Kind: agentdesk.KindEmail, Direction: agentdesk.DirOut, AuthorID: o.authorID,
		Subject: truncate(o.mail.Subject, 500), Body: o.mail.Text, Meta: map[string]any{"email": em},
	}
	if _, err := postgres.AddMessageTx(ctx, tx, o.actor, m); err != nil {
		return 0, err
	}
	msgID := m.ID
	if err := putAttachments(ctx, tx, o.acct, msgID, atts); err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `
INSERT INTO email_messages (account_id, rfc_message_id, message_id, ticket_id, mailbox_id, direction, peer_addr, subject_key, thread_root)
VALUES ($1, $2, $3, $4, $5, 'out', $6, $7, $8)`,
		o.acct, o.mail.MessageID, msgID, o.ticketID, o.mailbox.ID, o.mail.To.Address, subjectKey(o.mail.Subject), o.threadRoot)
	if err != nil {
		return 0, fmt.Errorf("index outbound message id: %w", err)
	}
	if err := queueDelivery(ctx, tx, o.jobs, o.acct, msgID, o.ticketID, o.kind, o.mailbox.Address, []string{o.mail.To.Address}, raw); err != nil {
		return 0, err
	}
	if err := publishNewMessage(ctx, tx, o.pub, m); err != nil {
		return 0, err
	}
	return msgID, nil
}

// autoAck queues the acknowledgement of a new ticket, at most one per sender
// per AutoAckInterval and never to an address that bounced.
func (in *Ingester) autoAck(ctx context.Context, tx pgx.Tx, mb *Mailbox, ticketID, customerID int64, to string, p *Parsed) error {
	var failing bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM email_failing_addresses WHERE account_id = $1 AND address = $2)`, mb.AccountID, to).Scan(&failing); err != nil {
		return err
	}
	if failing {
		return nil
	}
	var ok int
	err := tx.QueryRow(ctx, `
INSERT INTO email_auto_acks (account_id, address, last_sent_at) VALUES ($1, $2, now())
ON CONFLICT (account_id, address) DO UPDATE SET last_sent_at = now()
WHERE email_auto_acks.last_sent_at < now() - $3::interval
RETURNING 1`, mb.AccountID, to, fmt.Sprintf("%d seconds", int64(in.cfg.AutoAckInterval.Seconds()))).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // acknowledged this sender recently
	}
	if err != nil {
		return fmt.Errorf("auto-ack rate limit: %w", err)
	}
	token := in.keys.ticketToken(mb.AccountID, ticketID)
	subject := strings.TrimSpace(p.Subject)
	if subject == "" {
		subject = "your request"
	}
	text := fmt.Sprintf("Thank you for your message. We have received it as ticket #%d and will answer as soon as we can.\n\nTo add information, simply reply to this mail.\n", ticketID)
	_, err = queueOutbound(ctx, tx, outbound{
		actor: agentdesk.Actor{AccountID: mb.AccountID, Role: agentdesk.RoleAdmin},
		acct:  mb.AccountID, ticketID: ticketID, customerID: customerID, kind: "auto_ack", mailbox: mb,
		// No events: the ticket was opened by the mail being acknowledged,
		// and nobody follows it yet (its delivery state is published).
		jobs: in.jobs,
		mail: outMail{
			From: Address{Name: mb.DisplayName, Address: mb.Address}, To: Address{Name: p.From.Name, Address: to},
			ReplyTo: plusAddress(mb.Address, token), Subject: fmt.Sprintf("[#%d] Re: %s", ticketID, subject),
			MessageID: newMessageID(token, in.cfg.Hostname), InReplyTo: p.MessageID, References: []string{p.MessageID},
			Text: text, AutoSubmitted: true, Date: time.Now(),
		},
	})
	return err
}

// Why a reply cannot go out by email at all (wrapped in *agentdesk.Error):
// the caller may record it without delivery instead.
var (
	ErrNoAddress = errors.New("no email address for the customer")
	ErrNoMailbox = errors.New("no support address configured")
)

// maxReferences bounds the References header; the first and the newest ids
// are the ones clients use.
const maxReferences = 20

// QueueReply queues an agent's reply on an email ticket: it is stored on the
// ticket at once (delivery state "queued") and sent by the Sender. The reply
// goes to the address of the customer's latest mail on the ticket (or the
// customer's email identity), from the support address that mail came to.
func (s *Sender) QueueReply(ctx context.Context, actor agentdesk.Actor, ticketID int64, body, htmlBody string, attachments ...OutAttachment) (int64, error) {
	body = strings.TrimSpace(body)
	if body == "" && strings.TrimSpace(htmlBody) == "" && len(attachments) == 0 {
		return 0, agentdesk.FieldError("body", "must not be empty")
	}
	if body == "" && strings.TrimSpace(htmlBody) == "" {
		body = filesOnlyText(attachments) // files alone: the text names them
	}
	if body == "" {
		body = htmlToText(htmlBody)
	}
	if len(body) > agentdesk.MaxMessageBody || len(htmlBody) > agentdesk.MaxMessageBody {
		return 0, &agentdesk.Error{Kind: agentdesk.TooLarge, Field: "body", Message: "must be at most 256 KiB"}
	}
	total := 0
	for _, a := range attachments {
		total += len(a.Data)
		if strings.TrimSpace(a.Filename) == "" {
			return 0, agentdesk.FieldError("attachments", "every attachment needs a file name")
		}
	}
	if int64(total) > s.cfg.MaxMessageBytes*3/4 { // base64 grows by a third
		return 0, &agentdesk.Error{Kind: agentdesk.TooLarge, Field: "attachments", Message: "attachments are too large to send by email"}
	}
	var authorID *int64
	if actor.AgentID != 0 {
		authorID = &actor.AgentID
	}
	acct := actor.AccountID
	var msgID int64
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var t ticketState
		var subject string
		var channel agentdesk.Channel
		err := tx.QueryRow(ctx, `SELECT status, customer_id, subject, channel FROM tickets WHERE account_id = $1 AND id = $2 FOR UPDATE`, acct, ticketID).
			Scan(&t.status, &t.customerID, &subject, &channel)
		if errors.Is(err, pgx.ErrNoRows) {
			return agentdesk.Errorf(agentdesk.NotFound, "ticket %d not found", ticketID)
		}
		if err != nil {
			return fmt.Errorf("load ticket: %w", err)
		}
		th, err := replyThread(ctx, tx, acct, ticketID, t.customerID)
		if err != nil {
			return err
		}
		if th.to == "" {
			return &agentdesk.Error{Kind: agentdesk.Invalid, Message: fmt.Sprintf("the customer of ticket %d has no email address", ticketID), Err: ErrNoAddress}
		}
		if th.mailbox == nil {
			return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "the account has no support address to send from", Err: ErrNoMailbox}
		}
		if th.subject != "" {
			subject = th.subject
		}
		if !isReplySubject(subject) {
			subject = "Re: " + subject
		}
		token := s.keys.ticketToken(acct, ticketID)
		m := outMail{
			From: Address{Name: th.mailbox.DisplayName, Address: th.mailbox.Address}, To: Address{Name: th.toName, Address: th.to},
			ReplyTo: plusAddress(th.mailbox.Address, token), Subject: subject,
			MessageID: newMessageID(token, s.cfg.Hostname), InReplyTo: th.inReplyTo, References: th.references,
			Text: body, HTML: htmlBody, Attachments: attachments, Date: time.Now(),
		}
		if th.threadRoot != "" {
			m.ThreadIndex, m.ThreadTopic = childThreadIndex(th.threadRoot), subjectKeyTopic(subject)
		}
		msgID, err = queueOutbound(ctx, tx, outbound{
			actor: actor, acct: acct, ticketID: ticketID, customerID: t.customerID, authorID: authorID, kind: "reply",
			mailbox: th.mailbox, mail: m, threadRoot: th.threadRoot, jobs: s.jobs, pub: s.pub,
		})
		return err
	})
	if err != nil {
		return 0, err
	}
	return msgID, nil
}

// subjectKeyTopic is the Thread-Topic Outlook expects: the subject without
// reply prefixes, original case.
func subjectKeyTopic(s string) string {
	return strings.TrimSpace(replyPrefixes.ReplaceAllString(s, ""))
}

type replyTarget struct {
	to, toName, inReplyTo, subject, threadRoot string
	references                                 []string
	mailbox                                    *Mailbox
}

// replyThread gathers what makes the customer's client thread the reply:
// the latest inbound mail (In-Reply-To, subject, mailbox, address) and the
// Message-IDs of the conversation (References). Only the ticket customer's
// own addresses are answered: a third party who wrote into the thread never
// receives the customer's conversation.
func replyThread(ctx context.Context, tx pgx.Tx, acct, ticketID, customerID int64) (replyTarget, error) {
	var r replyTarget
	rows, err := tx.Query(ctx, `
SELECT e.rfc_message_id, e.direction, e.peer_addr, coalesce(e.mailbox_id, 0), e.thread_root, coalesce(m.subject, ''),
       coalesce(m.meta->'email'->'from'->>'name', '')
FROM email_messages e LEFT JOIN messages m ON m.account_id = e.account_id AND m.id = e.message_id
WHERE e.account_id = $1 AND e.ticket_id = $2 AND NOT e.auto_reply AND NOT e.bounce
  AND (e.direction = 'out' OR e.peer_addr IN (
      SELECT value FROM identities WHERE account_id = $1 AND customer_id = $3 AND kind = 'email'))
ORDER BY e.created_at, e.id`, acct, ticketID, customerID)
	if err != nil {
		return r, fmt.Errorf("load thread: %w", err)
	}
	var mailboxID int64
	for rows.Next() {
		var id, dir, peer, root, subject, name string
		var mbID int64
		if err := rows.Scan(&id, &dir, &peer, &mbID, &root, &subject, &name); err != nil {
			rows.Close()
			return r, err
		}
		r.references = append(r.references, id)
		if root != "" {
			r.threadRoot = root
		}
		if dir == "in" {
			r.inReplyTo, r.to, r.toName, r.subject = id, peer, name, subject
			if mbID != 0 {
				mailboxID = mbID
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, err
	}
	if len(r.references) > maxReferences {
		r.references = append(r.references[:1], r.references[len(r.references)-maxReferences+1:]...)
	}
	if r.to == "" {
		err := tx.QueryRow(ctx, `SELECT value FROM identities WHERE account_id = $1 AND customer_id = $2 AND kind = 'email' ORDER BY id LIMIT 1`, acct, customerID).Scan(&r.to)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return r, err
		}
	}
	// The support address the customer wrote to, or (none, or since
	// removed) the account's first.
	var mb *Mailbox
	if mailboxID != 0 {
		mb, err = scanMailbox(tx.QueryRow(ctx, selectMailboxByID, acct, mailboxID))
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return r, err
		}
	}
	if mb == nil {
		mb, err = scanMailbox(tx.QueryRow(ctx, `SELECT id, account_id, address, display_name, queue_id, team_id, priority, auto_ack, closed_reply FROM email_mailboxes WHERE account_id = $1 ORDER BY id LIMIT 1`, acct))
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return r, err
		}
	}
	r.mailbox = mb
	return r, nil
}

// filesOnlyText is the text part of a reply that carries files and no text,
// so the customer's client shows more than an empty mail.
func filesOnlyText(as []OutAttachment) string {
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.Filename
	}
	return "Attached: " + strings.Join(names, ", ")
}
