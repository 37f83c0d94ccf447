package postgres_test

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// The foundation's latency benchmarks (issue 3) run against a database seeded
// with the benchmark data set, never in `make test`:
//
//	agentdesk seed --customers 100000 --messages 1000000   (into that database)
//	AGENTDESK_BENCH_DATABASE_URL=postgres://... go test ./agentdesk/postgres -run '^$' -bench . -benchtime 5000x
//
// Each reports p50 and p99 of single calls, one at a time, in milliseconds
// (p50-ms, p99-ms) next to Go's mean ns/op.

const benchEnv = "AGENTDESK_BENCH_DATABASE_URL"

type benchData struct {
	db        *pgxpool.Pool
	store     *postgres.Store
	account   int64
	emails    []string
	phones    []string
	customers []int64
	agents    []agentdesk.Actor
}

func openBench(b *testing.B) *benchData {
	b.Helper()
	url := os.Getenv(benchEnv)
	if url == "" {
		b.Skipf("%s is not set (a database seeded with agentdesk seed --customers N --messages M)", benchEnv)
	}
	ctx := context.Background()
	db, err := postgres.Open(ctx, url, 8)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	d := &benchData{db: db, store: postgres.NewStore(db)}
	// The account with the data set is the one with the most customers.
	if err := db.QueryRow(ctx, `SELECT account_id FROM customers GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`).Scan(&d.account); err != nil {
		b.Fatalf("no customers: seed the database first (%v)", err)
	}
	// Samples drawn once, so the timed loop only runs the call under test.
	rows, err := db.Query(ctx, `SELECT kind, value, customer_id FROM identities
		WHERE account_id = $1 AND kind IN ('email', 'phone') ORDER BY random() LIMIT 20000`, d.account)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var kind, value string
		var customer int64
		if err := rows.Scan(&kind, &value, &customer); err != nil {
			b.Fatal(err)
		}
		if kind == "email" {
			d.emails = append(d.emails, value)
		} else {
			d.phones = append(d.phones, value)
		}
		d.customers = append(d.customers, customer)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	rows, err = db.Query(ctx, `SELECT a.id, coalesce(array_agg(m.team_id) FILTER (WHERE m.team_id IS NOT NULL), '{}')
		FROM agents a LEFT JOIN team_members m ON m.agent_id = a.id
		WHERE a.account_id = $1 AND a.role = 'agent' GROUP BY a.id ORDER BY a.id`, d.account)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		a := agentdesk.Actor{AccountID: d.account, Role: agentdesk.RoleAgent}
		if err := rows.Scan(&a.AgentID, &a.TeamIDs); err != nil {
			b.Fatal(err)
		}
		d.agents = append(d.agents, a)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(d.emails) == 0 || len(d.phones) == 0 || len(d.agents) == 0 {
		b.Fatal("the data set needs email and phone identities and agents")
	}
	return d
}

// measure runs op b.N times one after the other and reports the p50 and p99
// latency. A few untimed calls first warm the pool's connections.
func measure(b *testing.B, op func(i int) error) {
	b.Helper()
	for i := range 20 {
		if err := op(-1 - i); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(0.999), "p99.9-ms")
}

func BenchmarkCustomerByEmail(b *testing.B) {
	d := openBench(b)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	measure(b, func(int) error {
		_, err := d.store.CustomerByIdentity(ctx, d.account, agentdesk.IdentityEmail, "", d.emails[r.IntN(len(d.emails))])
		return err
	})
}

func BenchmarkCustomerByPhone(b *testing.B) {
	d := openBench(b)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 3))
	measure(b, func(int) error {
		_, err := d.store.CustomerByIdentity(ctx, d.account, agentdesk.IdentityPhone, "", d.phones[r.IntN(len(d.phones))])
		return err
	})
}

// BenchmarkTicketCreate opens an email ticket with its first message, as the
// email channel and the API do. It adds rows to the benchmark database.
func BenchmarkTicketCreate(b *testing.B) {
	d := openBench(b)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 4))
	actor := agentdesk.Actor{AccountID: d.account, Role: agentdesk.RoleAdmin}
	measure(b, func(int) error {
		t := &agentdesk.Ticket{Subject: "Where is my order?", Channel: agentdesk.ChannelEmail, CustomerID: d.customers[r.IntN(len(d.customers))]}
		m := &agentdesk.Message{Kind: agentdesk.KindEmail, Direction: agentdesk.DirIn, Subject: t.Subject,
			Body: "Hello, my order has not arrived yet and the tracking has not changed for four days. Can you check?"}
		return d.store.CreateTicket(ctx, actor, t, m)
	})
}

// BenchmarkTicketListAgent is an agent's desk: the first page (50) of the
// agent's own tickets, newest first, all statuses and open ones only.
func BenchmarkTicketListAgent(b *testing.B) {
	d := openBench(b)
	ctx := context.Background()
	open := []agentdesk.Status{agentdesk.StatusNew, agentdesk.StatusOpen, agentdesk.StatusPending, agentdesk.StatusOnHold}
	for _, c := range []struct {
		name   string
		status []agentdesk.Status
	}{{"mine", nil}, {"mine-open", open}} {
		b.Run(c.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 5))
			measure(b, func(int) error {
				a := d.agents[r.IntN(len(d.agents))]
				_, _, err := d.store.Tickets(ctx, a, agentdesk.TicketFilter{AssigneeID: &a.AgentID, Status: c.status})
				return err
			})
		})
	}
}

// BenchmarkTicketCreateRawSQL is the floor under BenchmarkTicketCreate: the
// same rows written by hand-written SQL in one transaction (insert ticket,
// insert message, update ticket), without the store's rules.
func BenchmarkTicketCreateRawSQL(b *testing.B) {
	d := openBench(b)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 4))
	measure(b, func(int) error {
		cust := d.customers[r.IntN(len(d.customers))]
		return postgres.InTx(ctx, d.db, func(tx pgx.Tx) error {
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO tickets (account_id, subject, status, priority, channel, customer_id, tags)
				VALUES ($1, 'Where is my order?', 'new', 'normal', 'email', $2, '{}') RETURNING id`, d.account, cust).Scan(&id); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO messages (account_id, ticket_id, customer_id, kind, direction, body)
				VALUES ($1, $2, $3, 'email', 'in', 'Hello, my order has not arrived yet.')`, d.account, id, cust); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE tickets SET updated_at = now() WHERE account_id = $1 AND id = $2`, d.account, id)
			return err
		})
	})
}
