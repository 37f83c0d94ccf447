package routing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
)

// recorder is the test Publisher: it keeps every event in memory.
type recorder struct {
	mu     sync.Mutex
	events []Event
	onPub  func(Event)
}

// Publish records e at once; onPub, which acts on it as a client would, runs
// once the transaction is committed, when a real client could see it.
func (r *recorder) Publish(_ context.Context, tx pgx.Tx, e Event) error {
	r.mu.Lock()
	r.events = append(r.events, e)
	f := r.onPub
	r.mu.Unlock()
	if f != nil && !postgres.AfterCommit(tx, func() { f(e) }) {
		f(e)
	}
	return nil
}

// PublishCommitted takes the events of an Enqueue that ran as one
// statement, which has committed when they arrive.
func (r *recorder) PublishCommitted(_ context.Context, e Event) error {
	r.mu.Lock()
	r.events = append(r.events, e)
	f := r.onPub
	r.mu.Unlock()
	if f != nil {
		f(e)
	}
	return nil
}

func (r *recorder) find(stream, typ string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if (stream == "" || e.Stream == stream) && e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// fakeClock is moved by the test; nothing in the engine sleeps on it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// monday10 is Monday 23 November 2026, 10:00 UTC.
var monday10 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type fixture struct {
	t       *testing.T
	ctx     context.Context
	db      *pgxpool.Pool
	e       *Engine
	clock   *fakeClock
	pub     *recorder
	account int64
	n       int
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	db := pgtest.New(t)
	return newFixtureOn(t, db, cfg)
}

func newFixtureOn(t *testing.T, db *pgxpool.Pool, cfg Config) *fixture {
	f := &fixture{t: t, ctx: context.Background(), db: db, clock: &fakeClock{t: monday10}, pub: &recorder{}}
	f.e = New(db, f.clock, quietLogger(), f.pub, cfg)
	f.must(db.QueryRow(f.ctx, `INSERT INTO accounts (name) VALUES ('Acme') RETURNING id`).Scan(&f.account))
	return f
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// agent creates an agent with capacity and skills and signs them in.
func (f *fixture) agent(capacity map[string]int, skills map[string]int) int64 {
	f.t.Helper()
	f.n++
	var id int64
	if capacity == nil {
		capacity = map[string]int{"voice": 1, "chat": 3, "email": 5}
	}
	f.must(f.db.QueryRow(f.ctx, `INSERT INTO agents (account_id, email, name, role, capacity) VALUES ($1, $2, $3, 'agent', $4) RETURNING id`,
		f.account, fmt.Sprintf("a%d@example.com", f.n), fmt.Sprintf("Agent %d", f.n), capacity).Scan(&id))
	if len(skills) > 0 {
		f.must(f.e.SetAgentSkills(f.ctx, f.account, id, skills))
	}
	f.must(f.e.SetPresence(f.ctx, f.account, id, Available, ""))
	return id
}

func (f *fixture) customer() int64 {
	var id int64
	f.must(f.db.QueryRow(f.ctx, `INSERT INTO customers (account_id, name) VALUES ($1, 'C') RETURNING id`, f.account).Scan(&id))
	return id
}

func (f *fixture) ticket(customer int64) int64 {
	var id int64
	f.must(f.db.QueryRow(f.ctx, `INSERT INTO tickets (account_id, subject, status, priority, channel, customer_id)
VALUES ($1, 'Help', 'new', 'normal', 'chat', $2) RETURNING id`, f.account, customer).Scan(&id))
	return id
}

func (f *fixture) reason(kind agentdesk.ReasonKind, name string) int64 {
	var id int64
	f.must(f.db.QueryRow(f.ctx, `INSERT INTO reasons (account_id, kind, name) VALUES ($1, $2, $3) RETURNING id`, f.account, string(kind), name).Scan(&id))
	return id
}

func (f *fixture) queue(q Queue) int64 {
	f.t.Helper()
	f.must(f.e.CreateQueue(f.ctx, f.account, &q))
	return q.ID
}

func (f *fixture) enqueue(req agentdesk.TaskRequest) int64 {
	f.t.Helper()
	req.AccountID = f.account
	if req.Channel == "" {
		req.Channel = agentdesk.ChannelChat
	}
	id, err := f.e.Enqueue(f.ctx, req)
	f.must(err)
	return id
}

func (f *fixture) dispatch() int {
	f.t.Helper()
	n, err := f.e.Dispatch(f.ctx)
	f.must(err)
	return n
}

func (f *fixture) sweep() {
	f.t.Helper()
	f.must(f.e.Sweep(f.ctx))
}

func (f *fixture) task(id int64) *Task {
	f.t.Helper()
	t, err := f.e.Task(f.ctx, f.account, id)
	f.must(err)
	return t
}

// offeredTo asserts task id is offered to agent.
func (f *fixture) offeredTo(id, agent int64) {
	f.t.Helper()
	t := f.task(id)
	if t.State != StateOffered || t.OfferedTo == nil || *t.OfferedTo != agent {
		who := int64(0)
		if t.OfferedTo != nil {
			who = *t.OfferedTo
		}
		f.t.Fatalf("task %d: state %s offered to %d, want offered to %d", id, t.State, who, agent)
	}
}

func (f *fixture) state(id int64, want State) {
	f.t.Helper()
	if got := f.task(id).State; got != want {
		f.t.Fatalf("task %d is %s, want %s", id, got, want)
	}
}

// handle accepts and completes a task straight away.
func (f *fixture) handle(id, agent int64) {
	f.t.Helper()
	f.must(f.e.Accept(f.ctx, f.account, agent, id))
	reason := f.reason(agentdesk.ContactReason, fmt.Sprintf("r%d", id))
	f.must(f.e.Complete(f.ctx, f.account, agent, id, agentdesk.Outcome{ContactReasonID: &reason, ResolutionCode: agentdesk.ResolutionSolved}))
}

// checkConsistency asserts, from the database alone, the invariants the
// engine promises: every task's state is the "to" of its last event, no task
// is assigned twice, each agent's load counters equal the tasks they hold
// and never exceed capacity.
func checkConsistency(t *testing.T, ctx context.Context, db *pgxpool.Pool) {
	t.Helper()
	var bad int
	if err := db.QueryRow(ctx, `
SELECT count(*) FROM tasks t
WHERE t.state <> (SELECT e.to_state FROM task_events e WHERE e.task_id = t.id ORDER BY e.id DESC LIMIT 1)`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad > 0 {
		t.Errorf("%d tasks whose state is not that of their last event", bad)
	}
	if err := db.QueryRow(ctx, `
SELECT count(*) FROM (SELECT task_id FROM task_events WHERE to_state = 'assigned' AND from_state = 'offered'
GROUP BY task_id HAVING count(*) > 1) d`).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad > 0 {
		t.Errorf("%d tasks were accepted more than once", bad)
	}
	rows, err := db.Query(ctx, `
SELECT p.agent_id, p.load_voice, p.load_chat, p.load_email,
	count(t.id) FILTER (WHERE t.capacity_channel = 'voice'),
	count(t.id) FILTER (WHERE t.capacity_channel = 'chat'),
	count(t.id) FILTER (WHERE t.capacity_channel = 'email'),
	coalesce((a.capacity->>'voice')::int, 0), coalesce((a.capacity->>'chat')::int, 0), coalesce((a.capacity->>'email')::int, 0)
FROM agent_presence p JOIN agents a ON a.id = p.agent_id
LEFT JOIN tasks t ON (t.state = 'offered' AND t.offered_to = p.agent_id) OR (t.state = 'assigned' AND t.agent_id = p.agent_id)
GROUP BY p.agent_id, a.capacity`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var lv, lc, le, nv, nc, ne, cv, cc, ce int
		if err := rows.Scan(&id, &lv, &lc, &le, &nv, &nc, &ne, &cv, &cc, &ce); err != nil {
			t.Fatal(err)
		}
		if lv != nv || lc != nc || le != ne {
			t.Errorf("agent %d: load counters %d/%d/%d, tasks held %d/%d/%d", id, lv, lc, le, nv, nc, ne)
		}
		if nv > cv || nc > cc || ne > ce {
			t.Errorf("agent %d holds %d/%d/%d tasks over capacity %d/%d/%d", id, nv, nc, ne, cv, cc, ce)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// The day counts the live stats read agree with the tasks, per queue.
	var off int
	if err := db.QueryRow(ctx, `
SELECT count(*) FROM (
	SELECT queue_id, count(*) FILTER (WHERE assigned_at IS NOT NULL) AS answered,
		count(*) FILTER (WHERE state = 'abandoned') AS abandoned FROM tasks GROUP BY queue_id) t
FULL JOIN (
	SELECT queue_id, sum(answered) AS answered, sum(abandoned) AS abandoned FROM queue_day_counts GROUP BY queue_id) c
USING (queue_id)
WHERE coalesce(t.answered, 0) <> coalesce(c.answered, 0) OR coalesce(t.abandoned, 0) <> coalesce(c.abandoned, 0)`).Scan(&off); err != nil {
		t.Fatal(err)
	}
	if off > 0 {
		t.Errorf("%d queues whose day counts disagree with their tasks", off)
	}
}
