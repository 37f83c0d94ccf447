package main

// loadgen email measures inbound mail: N mails sent over SMTP by C
// concurrent senders (each on its own connection, one mail after another)
// into the email channel's SMTP server running in this process, every mail
// a new ticket routed by the real routing engine. It prints the throughput
// and two latencies:
//
//   - accept: end of DATA (the client sends ".") → the server's 250, which
//     comes only after the mail, its ticket and its task are committed;
//   - visible: end of DATA → an observer on another connection sees the
//     routing task in the tasks table, which is what an agent's queue reads.
//
// It works in a fresh account of the database given, so it can run against
// a development database without disturbing it.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/email"
	"agentdesk/agentdesk/postgres"
	"agentdesk/routing"
	"agentdesk/web"
)

func init() {
	registerLoadgen("email", "inbound mail over SMTP: mails/s and DATA accepted → task visible", loadgenEmail)
}

// noEvents drops routing's events: nobody watches in this benchmark.
type noEvents struct{}

func (noEvents) Publish(context.Context, pgx.Tx, routing.Event) error { return nil }

func loadgenEmail(ctx context.Context, args []string) error {
	fs := newFlagSet("loadgen email")
	dbURL := databaseURLFlag(fs)
	total := fs.Int("mails", 10000, "mails to send")
	senders := fs.Int("senders", 8, "concurrent SMTP senders")
	customers := fs.Int("customers", 2000, "distinct customer addresses")
	size := fs.Int("body-bytes", 1500, "approximate body size of each mail")
	conns := fs.Int("db-max-conns", 16, "PostgreSQL connections of the server side")
	withRouting := fs.Bool("routing", true, "enqueue a routing task per mail (false: measure the email side alone)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dbURL == "" {
		return fmt.Errorf("loadgen email: --database-url (or DATABASE_URL) is required")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := postgres.Open(ctx, *dbURL, int32(*conns))
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := postgres.Migrate(ctx, db); err != nil {
		return err
	}

	// A fresh account with one support address and an email queue.
	var acct int64
	if err := db.QueryRow(ctx, `INSERT INTO accounts (name) VALUES ('loadgen email') RETURNING id`).Scan(&acct); err != nil {
		return err
	}
	engine := routing.New(db, nil, log, noEvents{}, routing.Config{})
	q := routing.Queue{Name: "Email", Channels: []agentdesk.Channel{agentdesk.ChannelEmail}, ServiceLevel: routing.ServiceLevel{Seconds: 28800, Percent: 90}}
	if err := engine.CreateQueue(ctx, acct, &q); err != nil {
		return err
	}
	var tag [4]byte
	rand.Read(tag[:])
	run := hex.EncodeToString(tag[:])
	mb := &email.Mailbox{Address: "support-" + run + "@bench.example", QueueID: q.ID}
	if err := email.CreateMailbox(ctx, db, acct, mb); err != nil {
		return err
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	var enq email.Enqueuer = engine
	if !*withRouting {
		enq = nil
	}
	// Events as serve publishes them (ticket.created for a new ticket,
	// message.created and ticket.updated for mail on an open one).
	srv, err := email.NewServer(email.Config{Addr: "127.0.0.1:0", Hostname: "bench.example", Secret: secret, Events: hubEmailEvents{},
		TicketCreated: web.PublishTicketCreated}, db, enq, log)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Stop(context.WithoutCancel(ctx))

	// The observer: polls the tasks of this account and records when each
	// ticket's task first became visible.
	var mu sync.Mutex
	visibleAt := map[int64]time.Time{}
	ticketOf := map[string]int64{}
	obsCtx, stopObs := context.WithCancel(ctx)
	defer stopObs()
	obsDone := make(chan struct{})
	go func() {
		defer close(obsDone)
		var last int64
		for obsCtx.Err() == nil {
			// Tasks commit out of id order (ids are taken before commit), so
			// look back a little behind the highest id seen.
			rows, err := db.Query(obsCtx, `SELECT id, ticket_id FROM tasks WHERE account_id = $1 AND id > $2 ORDER BY id`, acct, last-200)
			if err == nil {
				now := time.Now()
				mu.Lock()
				for rows.Next() {
					var id, tkt int64
					if rows.Scan(&id, &tkt) == nil {
						last = max(last, id)
						if _, seen := visibleAt[tkt]; !seen {
							visibleAt[tkt] = now
						}
					}
				}
				mu.Unlock()
				rows.Close()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	body := strings.Repeat("The parcel has not arrived and tracking shows no update since Monday. ", max(1, *size/70))
	type sample struct {
		id       string
		dataEnd  time.Time
		accepted time.Time
	}
	samples := make([][]sample, *senders)
	var next atomic.Int64
	var failures atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for s := range *senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(srv.Addr())
			if err != nil {
				failures.Add(1)
				return
			}
			defer c.Close()
			if err := c.Hello("loadgen.example"); err != nil {
				failures.Add(1)
				return
			}
			for {
				n := next.Add(1)
				if n > int64(*total) {
					return
				}
				from := fmt.Sprintf("customer%d-%s@example.net", n%int64(*customers), run)
				id := fmt.Sprintf("lg-%s-%d@example.net", run, n)
				raw := fmt.Sprintf("From: Customer %d <%s>\r\nTo: %s\r\nSubject: Order %d has not arrived\r\nMessage-ID: <%s>\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
					n, from, mb.Address, n, id, time.Now().Format(time.RFC1123Z), body)
				if err := c.Mail(from, nil); err != nil {
					failures.Add(1)
					continue
				}
				if err := c.Rcpt(mb.Address, nil); err != nil {
					failures.Add(1)
					c.Reset()
					continue
				}
				w, err := c.Data()
				if err != nil {
					failures.Add(1)
					continue
				}
				io.WriteString(w, raw)
				end := time.Now()
				if err := w.Close(); err != nil {
					failures.Add(1)
					continue
				}
				samples[s] = append(samples[s], sample{id: id, dataEnd: end, accepted: time.Now()})
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	// Map Message-IDs to tickets, wait for the observer to have seen all.
	rows, err := db.Query(ctx, `SELECT rfc_message_id, ticket_id FROM email_messages WHERE account_id = $1 AND direction = 'in'`, acct)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		var tkt int64
		if err := rows.Scan(&id, &tkt); err != nil {
			return err
		}
		ticketOf[id] = tkt
	}
	rows.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(visibleAt)
		mu.Unlock()
		if n >= len(ticketOf) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopObs()
	<-obsDone

	var accept, visible []time.Duration
	missing := 0
	for _, ss := range samples {
		for _, s := range ss {
			accept = append(accept, s.accepted.Sub(s.dataEnd))
			v, ok := visibleAt[ticketOf[s.id]]
			if !ok && *withRouting {
				missing++
				continue
			}
			if !ok {
				continue
			}
			visible = append(visible, max(0, v.Sub(s.dataEnd)))
		}
	}
	var tasks int
	db.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE account_id = $1`, acct).Scan(&tasks)
	fmt.Printf("loadgen email: %d mails, %d senders, %d customers, ~%d-byte bodies\n", *total, *senders, *customers, len(body))
	fmt.Printf("  accepted %d, refused/failed %d, tickets %d, routing tasks %d, task never seen %d\n", len(accept), failures.Load(), len(ticketOf), tasks, missing)
	fmt.Printf("  throughput      %.0f mails/s (%.1f s)\n", float64(len(accept))/elapsed.Seconds(), elapsed.Seconds())
	fmt.Printf("  DATA end → 250           p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms\n", emailPct(accept, 50), emailPct(accept, 99), emailPct(accept, 100))
	if *withRouting {
		fmt.Printf("  DATA end → task visible  p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  (observer polls every 2 ms)\n", emailPct(visible, 50), emailPct(visible, 99), emailPct(visible, 100))
	}
	return nil
}

func emailPct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, (len(s)*p+99)/100-1)
	return float64(s[max(0, i)].Microseconds()) / 1000
}
