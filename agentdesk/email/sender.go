package email

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// Sender delivers the outbox through the configured SMTP relay: it runs a
// River client working the outbox queue. Several processes may run one;
// River hands each job to one of them.
type Sender struct {
	db    *pgxpool.Pool
	cfg   Config
	relay RelayConfig
	keys  keys
	log   *slog.Logger
	pub   Publisher
	jobs  *river.Client[pgx.Tx]

	mu      sync.Mutex
	started bool
}

// NewSender returns a Sender; QueueReply works before Start (the job waits
// in the queue for a started sender, here or in another process), Start
// begins delivering. Nothing runs until Start.
func NewSender(cfg Config, relay RelayConfig, db *pgxpool.Pool, log *slog.Logger) (*Sender, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Sender{db: db, cfg: cfg, relay: relay.withDefaults(), keys: deriveKeys(cfg.Secret), log: log, pub: cfg.Events}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &deliveryWorker{s: s}); err != nil {
		return nil, err
	}
	s.jobs, err = river.NewClient(riverpgxv5.New(db), &river.Config{
		Queues:            map[string]river.QueueConfig{outboxQueue: {MaxWorkers: s.relay.Workers}},
		Workers:           workers,
		FetchPollInterval: s.relay.Poll,
		FetchCooldown:     min(s.relay.Poll, 100*time.Millisecond),
		// A process killed mid-delivery leaves its job running; another
		// process's River rescues it (and the mail goes again: at least
		// once) after this long, well past the worker's 3-minute timeout.
		RescueStuckJobsAfter: 10 * time.Minute,
		Logger:               log.With("component", "outbox"),
	})
	if err != nil {
		return nil, fmt.Errorf("email outbox: %w", err)
	}
	return s, nil
}

// Start begins working the outbox queue.
func (s *Sender) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("email sender already started")
	}
	if s.relay.Addr == "" {
		return errors.New("email sender: no relay address configured")
	}
	if err := s.adoptStranded(ctx); err != nil {
		return err
	}
	// River stops when Start's context ends; serve stops it with Stop.
	if err := s.jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("email outbox: %w", err)
	}
	s.started = true
	return nil
}

// Stop lets deliveries in flight finish (or ctx expire) and stops.
func (s *Sender) Stop(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.started = false
	s.mu.Unlock()
	if !started {
		return nil
	}
	return s.jobs.Stop(ctx)
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

// adoptBatch bounds one InsertManyTx of adoptStranded.
const adoptBatch = 1000

// adoptStranded gives a River job to every delivery the outbox before
// migration 007 left queued: that outbox claimed rows by their due time,
// River only works jobs, so such a row (state queued, no river_job_id) would
// never be sent. One transaction inserts the jobs and records their ids, so
// a row is adopted once: a second start finds none, and a process starting
// at the same time skips the rows this one holds (SKIP LOCKED). Every
// delivery queued since has its job from the transaction that recorded it.
// The scan reads email_deliveries without an index, once per start.
func (s *Sender) adoptStranded(ctx context.Context) error {
	n := 0
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
SELECT account_id, id FROM email_deliveries WHERE state = 'queued' AND river_job_id IS NULL
ORDER BY id FOR UPDATE SKIP LOCKED`)
		if err != nil {
			return err
		}
		var all []deliverArgs
		for rows.Next() {
			var a deliverArgs
			if err := rows.Scan(&a.AccountID, &a.DeliveryID); err != nil {
				rows.Close()
				return err
			}
			all = append(all, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for len(all) > 0 {
			batch := all[:min(len(all), adoptBatch)]
			all = all[len(batch):]
			params := make([]river.InsertManyParams, len(batch))
			for i, a := range batch {
				params[i] = river.InsertManyParams{Args: a}
			}
			res, err := s.jobs.InsertManyTx(ctx, tx, params)
			if err != nil {
				return err
			}
			// Each job names its delivery in its args; River does not
			// promise the results in the order of the params.
			accts, ids, jobs := make([]int64, len(res)), make([]int64, len(res)), make([]int64, len(res))
			for i, r := range res {
				var a deliverArgs
				if err := json.Unmarshal(r.Job.EncodedArgs, &a); err != nil {
					return fmt.Errorf("job %d args: %w", r.Job.ID, err)
				}
				accts[i], ids[i], jobs[i] = a.AccountID, a.DeliveryID, r.Job.ID
			}
			if _, err := tx.Exec(ctx, `
UPDATE email_deliveries d SET river_job_id = j.job
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS j(acct, id, job)
WHERE d.account_id = j.acct AND d.id = j.id`, accts, ids, jobs); err != nil {
				return err
			}
			n += len(batch)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("email outbox: adopt deliveries queued before River: %w", err)
	}
	if n > 0 {
		s.log.Info("email outbox: adopted deliveries queued by the outbox before River", "deliveries", n)
	}
	return nil
}
