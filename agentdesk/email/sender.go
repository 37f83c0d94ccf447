package email

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sender delivers the outbox through the configured SMTP relay. Several
// processes may run one: each delivery is claimed with FOR UPDATE SKIP
// LOCKED, so only one of them sends it.
type Sender struct {
	db    *pgxpool.Pool
	cfg   Config
	relay RelayConfig
	keys  keys
	log   *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}
}

// NewSender returns a Sender; QueueReply works before Start, Start begins
// delivering.
func NewSender(cfg Config, relay RelayConfig, db *pgxpool.Pool, log *slog.Logger) (*Sender, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Sender{db: db, cfg: cfg, relay: relay.withDefaults(), keys: deriveKeys(cfg.Secret), log: log, wake: make(chan struct{}, 1)}, nil
}

// Start runs the workers and the LISTEN that wakes them.
func (s *Sender) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("email sender already started")
	}
	if s.relay.Addr == "" {
		return errors.New("email sender: no relay address configured")
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(1 + s.relay.Workers)
	go func() { defer s.wg.Done(); s.listen(runCtx) }()
	for range s.relay.Workers {
		go func() { defer s.wg.Done(); s.work(runCtx) }()
	}
	return nil
}

// Stop lets deliveries in flight finish (or ctx expire) and stops.
func (s *Sender) Stop(ctx context.Context) error {
	s.mu.Lock()
	cancel := s.cancel
	s.cancel = nil
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wake makes the workers look at the outbox now.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Sender) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := func() error {
			conn, err := s.db.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, "LISTEN email_outbox"); err != nil {
				return err
			}
			defer conn.Exec(context.WithoutCancel(ctx), "UNLISTEN email_outbox") //nolint:errcheck
			for {
				if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
					return err
				}
				s.Wake()
			}
		}()
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("email outbox listen failed; polling only until it reconnects", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(s.relay.Poll):
		}
	}
}

func (s *Sender) work(ctx context.Context) {
	t := time.NewTicker(s.relay.Poll)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			did, err := s.deliverOne(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Error("email delivery", "err", err)
				}
				break
			}
			if !did {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			// Pass the wake-up on so idle siblings look too.
			s.Wake()
		case <-t.C:
		}
	}
}

const claimDelivery = `
SELECT id, account_id, coalesce(message_id, 0), mail_from, rcpt_to, raw, attempts
FROM email_deliveries
WHERE state = 'queued' AND next_attempt_at <= now()
ORDER BY next_attempt_at
LIMIT 1
FOR UPDATE SKIP LOCKED`

// deliverOne sends the oldest due delivery, holding its row lock while it
// talks to the relay so no other sender picks it up. A crash in between
// rolls the claim back and the mail is sent again later: delivery is at
// least once, as with any MTA.
func (s *Sender) deliverOne(ctx context.Context) (bool, error) {
	did := false
	// The commit must not be cancelled by Stop once the mail went out (see
	// below); the claim itself still is.
	err := pgx.BeginFunc(context.WithoutCancel(ctx), s.db, func(tx pgx.Tx) error {
		var id, acct, msgID int64
		var from string
		var rcpt []string
		var raw []byte
		var attempts int
		err := tx.QueryRow(ctx, claimDelivery).Scan(&id, &acct, &msgID, &from, &rcpt, &raw, &attempts)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim delivery: %w", err)
		}
		did = true
		// A delivery that started finishes and is recorded even when Stop
		// cancels ctx: abandoning it after the relay said 250 would send
		// the mail twice.
		ctx := context.WithoutCancel(ctx)
		answer, sendErr := s.send(ctx, from, rcpt, raw)
		attempts++
		state := "sent"
		var retryIn time.Duration
		if sendErr != nil {
			answer = sendErr.Error()
			var se *smtp.SMTPError
			permanent := errors.As(sendErr, &se) && se.Code >= 500
			if permanent || attempts >= s.relay.MaxAttempts {
				state = "failed"
			} else {
				state = "queued"
				retryIn = s.backoff(attempts)
			}
			s.log.Warn("email delivery failed", "delivery_id", id, "attempt", attempts, "state", state, "answer", answer)
		}
		_, err = tx.Exec(ctx, `
UPDATE email_deliveries SET state = $3, attempts = $4, last_answer = $5, updated_at = now(),
    next_attempt_at = now() + $6::interval,
    sent_at = CASE WHEN $3 = 'sent' THEN now() END
WHERE account_id = $1 AND id = $2`, acct, id, state, attempts, truncate(answer, 1000), fmt.Sprintf("%d milliseconds", retryIn.Milliseconds()))
		if err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		if msgID != 0 {
			return setDeliveryMeta(ctx, tx, acct, msgID, state, truncate(answer, 1000))
		}
		return nil
	})
	return did, err
}

func (s *Sender) backoff(attempt int) time.Duration {
	d := s.relay.Backoff
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// send submits one mail to the relay and returns its answer to DATA.
func (s *Sender) send(ctx context.Context, from string, rcpt []string, raw []byte) (string, error) {
	r := s.relay
	d := net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return "", fmt.Errorf("connect to relay: %w", err)
	}
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	var c *smtp.Client
	switch r.Security {
	case "tls":
		c = smtp.NewClient(tlsClient(conn, r))
	case "starttls":
		c, err = smtp.NewClientStartTLS(conn, tlsConfig(r))
		if err != nil {
			conn.Close()
			return "", fmt.Errorf("relay STARTTLS: %w", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.Hostname); err != nil {
		return "", err
	}
	if r.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", r.Username, r.Password)); err != nil {
			return "", fmt.Errorf("relay AUTH: %w", err)
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return "", err
	}
	for _, to := range rcpt {
		if err := c.Rcpt(to, nil); err != nil {
			return "", err
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := bytes.NewReader(raw).WriteTo(w); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	c.Quit() //nolint:errcheck
	return "250 " + resp.StatusText, nil
}
