package email

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"agentdesk/agentdesk"
)

// The outbox is a River queue: one job per outbound mail, inserted in the
// transaction that stores the message, so a reply is never recorded without
// being queued. email_deliveries keeps what is sent (the raw mail) and what
// happened to it (state, attempts, the relay's last answer); River owns the
// scheduling, claiming and retries.

// outboxQueue is the River queue of outbound mail.
const outboxQueue = "email_outbox"

// maxJobAttempts is River's own limit on a delivery job. The worker gives up
// earlier, at RelayConfig.MaxAttempts, so the message shows "failed" with
// the relay's answer rather than a job River discarded silently.
const maxJobAttempts = 100

// deliverArgs is the job of one outbound mail.
type deliverArgs struct {
	AccountID  int64 `json:"account_id"`
	DeliveryID int64 `json:"delivery_id"`
}

func (deliverArgs) Kind() string { return "email_delivery" }

func (deliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: outboxQueue, MaxAttempts: maxJobAttempts}
}

// newInserter is a River client that only inserts jobs (it is never
// started): the ingester queues auto-acknowledgements with it, and a server
// without a relay still queues replies for a process that has one.
func newInserter(db *pgxpool.Pool, log *slog.Logger) (*river.Client[pgx.Tx], error) {
	c, err := river.NewClient(riverpgxv5.New(db), &river.Config{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("email outbox: %w", err)
	}
	return c, nil
}

// queueDelivery records an outbound mail and queues its job, in tx.
func queueDelivery(ctx context.Context, tx pgx.Tx, jobs *river.Client[pgx.Tx], acct, msgID, ticketID int64, kind, from string, rcpt []string, raw []byte) error {
	var id int64
	err := tx.QueryRow(ctx, `
INSERT INTO email_deliveries (account_id, message_id, ticket_id, kind, mail_from, rcpt_to, raw)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, acct, msgID, ticketID, kind, from, rcpt, raw).Scan(&id)
	if err != nil {
		return fmt.Errorf("record delivery: %w", err)
	}
	res, err := jobs.InsertTx(ctx, tx, deliverArgs{AccountID: acct, DeliveryID: id}, nil)
	if err != nil {
		return fmt.Errorf("queue delivery: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE email_deliveries SET river_job_id = $3 WHERE account_id = $1 AND id = $2`, acct, id, res.Job.ID); err != nil {
		return fmt.Errorf("queue delivery: %w", err)
	}
	return nil
}

// deliveryWorker sends one outbound mail through the relay.
type deliveryWorker struct {
	river.WorkerDefaults[deliverArgs]
	s *Sender
}

// Timeout covers a slow relay: the connection itself gives up after two
// minutes.
func (w *deliveryWorker) Timeout(*river.Job[deliverArgs]) time.Duration { return 3 * time.Minute }

// NextRetry keeps the outbox's schedule: RelayConfig.Backoff, doubling per
// attempt, at most an hour.
func (w *deliveryWorker) NextRetry(job *river.Job[deliverArgs]) time.Time {
	return time.Now().Add(w.s.backoff(job.Attempt))
}

// errGaveUp cancels the job of a delivery that failed for good; the reason
// is on the delivery and the message.
var errGaveUp = errors.New("delivery failed")

func (w *deliveryWorker) Work(ctx context.Context, job *river.Job[deliverArgs]) error {
	s := w.s
	a := job.Args
	// A delivery that started finishes and is recorded even when Stop
	// cancels the job: abandoning it after the relay said 250 would send the
	// mail twice. (River's client stays in the context for JobCompleteTx.)
	ctx = context.WithoutCancel(ctx)
	var msgID int64
	var from, state string
	var rcpt []string
	var raw []byte
	err := s.db.QueryRow(ctx, `SELECT coalesce(message_id, 0), mail_from, rcpt_to, raw, state FROM email_deliveries WHERE account_id = $1 AND id = $2`,
		a.AccountID, a.DeliveryID).Scan(&msgID, &from, &rcpt, &raw, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("delivery %d no longer exists", a.DeliveryID))
	}
	if err != nil {
		return fmt.Errorf("load delivery: %w", err)
	}
	if state != "queued" {
		return nil // a bounce or an earlier run already settled it
	}
	answer, sendErr := s.send(ctx, from, rcpt, raw)
	attempts := job.Attempt
	state = "sent"
	permanent := false
	if sendErr != nil {
		answer = sendErr.Error()
		var se *smtp.SMTPError
		permanent = errors.As(sendErr, &se) && se.Code >= 500
		state = "queued"
		if permanent || attempts >= s.relay.MaxAttempts {
			state = "failed"
		}
		s.log.Warn("email delivery failed", "delivery_id", a.DeliveryID, "attempt", attempts, "state", state, "answer", answer)
	}
	answer = truncate(answer, 1000)
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
UPDATE email_deliveries SET state = $3, attempts = $4, last_answer = $5, updated_at = now(),
    sent_at = CASE WHEN $3 = 'sent' THEN now() END
WHERE account_id = $1 AND id = $2`, a.AccountID, a.DeliveryID, state, attempts, answer)
		if err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		if msgID != 0 {
			if err := setDeliveryMeta(ctx, tx, s.pub, a.AccountID, msgID, deliveryState{State: state, Answer: answer, Attempts: attempts}); err != nil {
				return err
			}
		}
		if state == "sent" {
			// The job completes with the record of the send, in one commit.
			_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch state {
	case "failed":
		return river.JobCancel(fmt.Errorf("%w: %s", errGaveUp, answer))
	case "queued":
		return sendErr // River retries it at NextRetry
	}
	return nil
}

// deliveryState is what the desk shows of a delivery: meta.email.delivery.
type deliveryState struct {
	State    string `json:"state"`
	Answer   string `json:"answer"`
	Attempts int    `json:"attempts"`
}

// setDeliveryMeta mirrors a delivery's state into its message, which is
// what the agent desk shows, and tells the desks that have the ticket open
// (message.updated, in the same transaction).
func setDeliveryMeta(ctx context.Context, tx pgx.Tx, pub Publisher, acct, messageID int64, d deliveryState) error {
	b, _ := json.Marshal(d)
	m, err := scanMessage(tx.QueryRow(ctx, `
UPDATE messages SET meta = jsonb_set(CASE WHEN meta ? 'email' THEN meta ELSE meta || '{"email":{}}' END, '{email,delivery}', $3::jsonb)
WHERE account_id = $1 AND id = $2
RETURNING `+messageColumns, acct, messageID, string(b)), acct)
	if err != nil {
		return fmt.Errorf("update delivery state: %w", err)
	}
	return publish(ctx, tx, pub, acct, MessageUpdated, m, TicketStream(m.TicketID))
}

const messageColumns = `id, ticket_id, customer_id, kind, direction, author_id, subject, body, meta, created_at`

func scanMessage(row pgx.Row, acct int64) (*agentdesk.Message, error) {
	m := &agentdesk.Message{AccountID: acct}
	var meta []byte
	if err := row.Scan(&m.ID, &m.TicketID, &m.CustomerID, &m.Kind, &m.Direction, &m.AuthorID, &m.Subject, &m.Body, &meta, &m.CreatedAt); err != nil {
		return nil, err
	}
	if len(meta) > 2 {
		if err := json.Unmarshal(meta, &m.Meta); err != nil {
			return nil, fmt.Errorf("message %d meta: %w", m.ID, err)
		}
	}
	return m, nil
}
