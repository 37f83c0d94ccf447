package main

// loadgen routing measures the routing engine with simulated agents in this
// process, in a fresh database of its own on the server given:
//
//   - steady: --agents agents signed in (chat capacity 3), tasks enqueued at
//     --rate per second for --duration; each offer is accepted after a
//     random delay and completed after a random handle time. It reports
//     tasks/s, enqueue → offer latency (Enqueue called → the transaction
//     that made the offer committed: the enqueue's own when the task was
//     offered on arrival, else the dispatcher's) p50/p99/max, and the CPU
//     and RSS of this process (engine and simulated agents together).
//   - saturate: --saturate-tasks tasks already waiting (queued while the
//     agents were away, then all back at once), agents accepting and
//     completing at once; reports durable assignments (accepted offers,
//     committed) per second, and offers per second.
//
// --cpuprofile writes a pprof CPU profile of the whole run; --latency-log
// writes each steady task's latency with when it was due, to line the slow
// ones up with what else happened then (a server log, a sampler).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/routing"
	"agentdesk/web"
)

func init() {
	registerLoadgen("routing", "routing engine: tasks/s, enqueue → offer latency, saturating assignments/s", loadgenRouting)
}

type routingLoad struct {
	db *pgxpool.Pool
	// engine is set up as agentdesk serve sets up its own: one engine on
	// the process's pool, started (it dispatches, sweeps and publishes the
	// stats), which also takes the enqueues and the simulated agents'
	// accepts and completions, as serve's API handlers hand them to it.
	engine  *routing.Engine
	account int64
	reason  int64

	mu         sync.Mutex
	enqueuedAt map[int64]time.Time
	latencies  []time.Duration
	dueAt      []time.Time // when each of latencies' tasks was due, for --latency-log
	// committed → offered: the enqueue's commit is seen when EnqueueTx's
	// transaction returns; an offer made by that same commit (on arrival)
	// counts as 0.
	committedAt map[int64]time.Time
	offeredAt   map[int64]time.Time
	enqueueDur  []time.Duration
	afterCommit []time.Duration

	acceptMin, acceptMax time.Duration
	handleMin, handleMax time.Duration
	silent               bool // agents never answer: measures the dispatcher alone
	inTx                 bool // enqueue in a transaction of the caller's (EnqueueTx), as a channel does
	offers, accepted     atomic.Int64
	completed, errs      atomic.Int64
	inflight             sync.WaitGroup
	stopping             atomic.Bool
}

// Publish is the simulated agents' websocket. An offer counts as made when
// the transaction that made it has committed (as the hub delivers it), and
// it is answered after a random delay, on timers, so the dispatcher is never
// slowed by the simulated agents.
func (l *routingLoad) Publish(_ context.Context, tx pgx.Tx, e routing.Event) error {
	if e.Type != "offer" {
		return nil
	}
	if !postgres.AfterCommit(tx, func() { l.offered(e) }) {
		return fmt.Errorf("loadgen routing: offer published outside a postgres.InTx transaction")
	}
	return nil
}

// PublishCommitted takes the offers of tasks that Enqueue inserted and
// offered with one statement: they are committed when they arrive.
func (l *routingLoad) PublishCommitted(_ context.Context, e routing.Event) error {
	if e.Type == "offer" {
		l.offered(e)
	}
	return nil
}

// storedEvents is serve's publisher (next) with the simulated agents
// listening: they learn of an offer once the transaction that stored it has
// committed, as the hub would deliver it. It takes no committed events, so
// the engine keeps every change in a transaction with its events, as it
// does in serve.
type storedEvents struct {
	next   routing.Publisher
	agents *routingLoad
}

func (s storedEvents) Publish(ctx context.Context, tx pgx.Tx, e routing.Event) error {
	if err := s.next.Publish(ctx, tx, e); err != nil {
		return err
	}
	return s.agents.Publish(ctx, tx, e)
}

// offered notes an offer. The enqueue that made it may not have returned
// yet (an offer made on arrival); then enqueue takes the time from offeredAt.
func (l *routingLoad) offered(e routing.Event) {
	now := time.Now()
	off := e.Data.(routing.Offer)
	agent, _ := strconv.ParseInt(strings.TrimPrefix(e.Stream, "agent:"), 10, 64)
	l.offers.Add(1)
	l.mu.Lock()
	if t0, ok := l.enqueuedAt[off.TaskID]; ok {
		l.latencies = append(l.latencies, now.Sub(t0))
		l.dueAt = append(l.dueAt, t0)
		delete(l.enqueuedAt, off.TaskID)
		l.afterCommit = append(l.afterCommit, now.Sub(l.committedAt[off.TaskID]))
		delete(l.committedAt, off.TaskID)
	} else {
		l.offeredAt[off.TaskID] = now
	}
	l.mu.Unlock()
	if l.stopping.Load() || l.silent {
		return
	}
	l.inflight.Add(1)
	time.AfterFunc(randBetween(l.acceptMin, l.acceptMax), func() { l.work(agent, off.TaskID) })
}

func (l *routingLoad) work(agent, task int64) {
	ctx := context.Background()
	if err := l.engine.Accept(ctx, l.account, agent, task); err != nil {
		// An offer published in a transaction that was retried is stale.
		if !agentdesk.IsKind(err, agentdesk.Conflict) {
			if l.errs.Add(1) == 1 {
				fmt.Fprintln(os.Stderr, "loadgen routing: first accept error:", err)
			}
		}
		l.inflight.Done()
		return
	}
	l.accepted.Add(1)
	time.AfterFunc(randBetween(l.handleMin, l.handleMax), func() {
		defer l.inflight.Done()
		if err := l.engine.Complete(ctx, l.account, agent, task, agentdesk.Outcome{ContactReasonID: &l.reason}); err != nil {
			l.errs.Add(1)
			return
		}
		l.completed.Add(1)
	})
}

func randBetween(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(mrand.Int64N(int64(hi-lo)))
}

func loadgenRouting(ctx context.Context, args []string) error {
	var cleanups []func()
	fs := newFlagSet("loadgen routing")
	dbURL := databaseURLFlag(fs)
	agents := fs.Int("agents", 2000, "simulated agents")
	rate := fs.Int("rate", 200, "new tasks per second in the steady run")
	duration := fs.Duration("duration", 60*time.Second, "length of the steady run")
	acceptMin := fs.Duration("accept-min", 200*time.Millisecond, "shortest time to accept an offer")
	acceptMax := fs.Duration("accept-max", 2*time.Second, "longest time to accept an offer")
	handleMin := fs.Duration("handle-min", 2*time.Second, "shortest handle time")
	handleMax := fs.Duration("handle-max", 20*time.Second, "longest handle time")
	satTasks := fs.Int("saturate-tasks", 20000, "waiting tasks for the saturating run (0 skips it)")
	conns := fs.Int("db-max-conns", defaultDBMaxConns(), "PostgreSQL connections of the engine: by default agentdesk serve's")
	keep := fs.Bool("keep", false, "keep the benchmark database afterwards")
	publisher := fs.String("publisher", "hub", "where the engine's events go: hub (as agentdesk serve: stored in the hub's streams in the change's transaction, for the websockets) or engine (the simulated agents alone, after the commit: the engine's own statements, no event stored)")
	inTx := fs.Bool("enqueue-in-tx", false, "enqueue inside a transaction of the caller's (EnqueueTx), as a channel stores a contact with its task, instead of Enqueue")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	latencyLog := fs.String("latency-log", "", "write each task's enqueue → offer latency of the steady run to this file (CSV: ms since the start, latency in ms), to find when the slow ones happened")
	debug := fs.Bool("debug", false, "log the engine's debug messages to stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dbURL == "" {
		return fmt.Errorf("loadgen routing: --database-url (or DATABASE_URL) is required")
	}
	if *publisher != "hub" && *publisher != "engine" {
		return fmt.Errorf("loadgen routing: --publisher: %q is neither hub nor engine", *publisher)
	}
	hub := *publisher == "hub"
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	// Each run gets a database of its own, so no run inherits another's
	// waiting offers or dead rows.
	fresh := func() (string, error) {
		u, drop, err := freshDatabase(ctx, *dbURL)
		if err != nil {
			return "", err
		}
		if !*keep {
			cleanups = append(cleanups, drop)
		}
		fmt.Printf("database %s\n", redactURL(u))
		if p, err := url.Parse(u); err == nil {
			benchDatabase = strings.TrimPrefix(p.Path, "/")
		}
		return u, nil
	}
	defer func() {
		for _, c := range cleanups {
			c()
		}
	}()

	if *debug {
		routingLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	steady := routingRun{latencyLog: *latencyLog, agents: *agents, rate: *rate, duration: *duration, conns: *conns, inTx: *inTx, hub: hub,
		acceptMin: *acceptMin, acceptMax: *acceptMax, handleMin: *handleMin, handleMax: *handleMax}
	if *rate > 0 && *duration > 0 {
		benchURL, err := fresh()
		if err != nil {
			return err
		}
		if err := steady.run(ctx, benchURL); err != nil {
			return err
		}
	}
	if *satTasks > 0 {
		// First the dispatcher alone: nobody answers, and every agent has
		// room for its share, so each offer is a durable reservation.
		room := (*satTasks + *agents - 1) / *agents
		disp := routingRun{agents: *agents, conns: *conns, hub: hub, preload: *satTasks, silent: true, chatCap: max(room, 3)}
		benchURL, err := fresh()
		if err != nil {
			return err
		}
		if err := disp.run(ctx, benchURL); err != nil {
			return err
		}
		// Then the whole cycle: offer, accept, complete.
		sat := routingRun{agents: *agents, conns: *conns, hub: hub, preload: *satTasks, chatCap: 3}
		benchURL, err = fresh()
		if err != nil {
			return err
		}
		if err := sat.run(ctx, benchURL); err != nil {
			return err
		}
	}
	return nil
}

var routingLog = slog.New(slog.NewTextHandler(io.Discard, nil))

type routingRun struct {
	agents, rate, conns, preload int
	chatCap                      int
	silent, inTx                 bool
	hub                          bool // events through serve's publisher (--publisher hub)
	latencyLog                   string
	duration                     time.Duration
	acceptMin, acceptMax         time.Duration
	handleMin, handleMax         time.Duration
}

// events names where the run's events go, for its report.
func (r routingRun) events() string {
	if r.hub {
		return "hub (stored with each change, as serve)"
	}
	return "simulated agents only (after the commit, none stored)"
}

func (r routingRun) run(ctx context.Context, benchURL string) error {
	db, err := postgres.Open(ctx, benchURL, int32(r.conns))
	if err != nil {
		return err
	}
	defer db.Close()
	l := &routingLoad{db: db, enqueuedAt: map[int64]time.Time{}, silent: r.silent, inTx: r.inTx,
		committedAt: map[int64]time.Time{}, offeredAt: map[int64]time.Time{},
		acceptMin: r.acceptMin, acceptMax: r.acceptMax, handleMin: r.handleMin, handleMax: r.handleMax}
	cfg := routing.Config{WrapUp: -1, StatsInterval: time.Second}
	if r.silent {
		// Nobody answers: offers must outlive the run, or their timeouts
		// would re-queue tasks and set the agents away for missed offers.
		cfg.OfferTimeout = map[agentdesk.Channel]time.Duration{agentdesk.ChannelChat: time.Hour}
	}
	var pub routing.Publisher = l
	if r.hub {
		// serve's publisher: every event stored in the hub's streams in the
		// transaction of the change, which the websockets deliver.
		pub = storedEvents{next: web.ChatRoutingEvents(hubEvents{}), agents: l}
	}
	l.engine = routing.New(db, nil, routingLog, pub, cfg)
	if err := l.setup(ctx, r.agents, max(r.chatCap, 3)); err != nil {
		return err
	}
	if r.preload > 0 {
		return r.saturate(ctx, l)
	}
	return r.steady(ctx, l)
}

// setup creates a fresh account, its agents (signed in, chat capacity 3)
// and a contact reason, straight in SQL: 2,000 sign-ins through the API
// would only measure setup.
func (l *routingLoad) setup(ctx context.Context, agents, chatCap int) error {
	err := pgx.BeginFunc(ctx, l.db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO accounts (name) VALUES ('loadgen routing') RETURNING id`).Scan(&l.account); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO reasons (account_id, kind, name) VALUES ($1, 'contact', 'Question') RETURNING id`, l.account).Scan(&l.reason); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO agents (account_id, email, name, role, capacity)
SELECT $1, 'agent' || g || '@loadgen.example', 'Agent ' || g, 'agent', jsonb_build_object('voice', 1, 'chat', $3::int, 'email', 5)
FROM generate_series(1, $2) g`, l.account, agents, chatCap); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
INSERT INTO agent_presence (account_id, agent_id, state, since, cap_voice, cap_chat, cap_email)
SELECT account_id, id, 'available', now(), 1, $2, 5 FROM agents WHERE account_id = $1`, l.account, chatCap)
		return err
	})
	if err != nil {
		return err
	}
	// A contact center's database has history, statistics, and has been
	// vacuumed, long before it has 2,000 agents signed in. A fresh benchmark
	// database has none of that: plans made on its empty tables (PostgreSQL
	// keeps a prepared statement's generic plan until the statistics
	// change) scan tasks as if it stayed empty, and autovacuum's first visit
	// (every table and catalog the migrations touched, at once) would land
	// in the middle of the measurement. So the chat queue gets a day of
	// history (50,000 completed contacts) and the database is vacuumed and
	// analyzed. Autovacuum of the routing tables because of the load itself
	// still happens during the run.
	_, err = l.db.Exec(ctx, `
WITH q AS (
	INSERT INTO queues (account_id, name, channels) VALUES ($1, 'chat', ARRAY['chat']) RETURNING id
), d AS (
	INSERT INTO queue_defaults (account_id, channel, queue_id) SELECT $1, 'chat', id FROM q
)
INSERT INTO tasks (account_id, queue_id, channel, capacity_channel, state, priority, priority_name,
	enqueued_at, queue_entered_at, updated_at, agent_id, assigned_at, ended_at, completed_at, closed_at,
	wait_seconds, offer_count, contact_reason_id)
SELECT $1, q.id, 'chat', 'chat', 'completed', 200, 'normal',
	t, t, t + interval '5 minutes', a.ids[1 + g % cardinality(a.ids)], t + interval '10 seconds', t + interval '5 minutes',
	t + interval '5 minutes', t + interval '5 minutes', 10, 1, $2
FROM q, (SELECT array_agg(id) AS ids FROM agents WHERE account_id = $1) a, generate_series(1, 50000) g
CROSS JOIN LATERAL (SELECT now() - interval '1 day' + g * interval '1 second' AS t) at`,
		l.account, l.reason)
	if err != nil {
		return fmt.Errorf("task history: %w", err)
	}
	_, err = l.db.Exec(ctx, `VACUUM ANALYZE`)
	return err
}

type cpuSample struct {
	wall time.Time
	cpu  time.Duration // this process
	pg   time.Duration // PostgreSQL backends serving the benchmark database
}

func readCPU() cpuSample {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru) //nolint:errcheck
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpuSample{wall: time.Now(), cpu: cpu, pg: backendCPU(benchDatabase)}
}

// benchDatabase is the name of the benchmark's database, whose PostgreSQL
// backends' CPU time is counted (their process titles name it).
var benchDatabase string

// backendCPU sums user+system time of the processes whose command line
// names database db: the PostgreSQL backends connected to it (same machine).
func backendCPU(db string) time.Duration {
	if db == "" {
		return 0
	}
	entries, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.HasPrefix(string(cmd), "postgres: ") || !strings.Contains(string(cmd), " "+db+" ") {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: utime and stime are the
		// 12th and 13th (clock ticks, 100 per second on Linux).
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		f := strings.Fields(rest)
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + s
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// procMemory returns this process's resident and peak resident memory.
func procMemory() (rss, peak uint64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		for key, dst := range map[string]*uint64{"VmRSS:": &rss, "VmHWM:": &peak} {
			if v, ok := strings.CutPrefix(line, key); ok {
				kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				*dst = kb << 10
			}
		}
	}
	return rss, peak
}

func (r routingRun) steady(ctx context.Context, l *routingLoad) error {
	if err := l.engine.Start(ctx); err != nil {
		return err
	}
	fmt.Printf("steady: %d agents, %d tasks/s for %s, accept after %s-%s, handle %s-%s, events to the %s\n",
		r.agents, r.rate, r.duration, r.acceptMin, r.acceptMax, r.handleMin, r.handleMax, r.events())
	start := readCPU()
	total := int(r.duration.Seconds() * float64(r.rate))
	interval := time.Second / time.Duration(r.rate)
	jobs := make(chan struct{}, 1024)
	var enqErrs atomic.Int64
	var producers sync.WaitGroup
	for w := 0; w < 8; w++ {
		producers.Add(1)
		go func() {
			defer producers.Done()
			for range jobs {
				if err := l.enqueue(ctx, time.Now()); err != nil {
					enqErrs.Add(1)
				}
			}
		}()
	}
	var peakRSS uint64
	for i := 0; i < total && ctx.Err() == nil; i++ {
		if d := time.Until(start.wall.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		jobs <- struct{}{}
		if i%r.rate == 0 {
			rss, _ := procMemory()
			peakRSS = max(peakRSS, rss)
		}
	}
	close(jobs)
	producers.Wait()
	sent := readCPU()
	// Let the last offers go out, then stop answering and wind down.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		left := len(l.enqueuedAt)
		l.mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	end := readCPU()
	rss, _ := procMemory()
	peakRSS = max(peakRSS, rss)
	l.stopping.Store(true)
	l.engine.Stop(context.WithoutCancel(ctx)) //nolint:errcheck
	l.inflight.Wait()

	l.mu.Lock()
	lat := slices.Clone(l.latencies)
	unoffered := len(l.enqueuedAt)
	if r.latencyLog != "" {
		if err := writeLatencyLog(r.latencyLog, start.wall, l.dueAt, l.latencies); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	l.mu.Unlock()
	slices.Sort(lat)
	wall := sent.wall.Sub(start.wall)
	fmt.Printf("steady: %d tasks enqueued in %.1fs = %.1f tasks/s; %d offered, %d accepted, %d completed, %d not offered, %d errors (+%d enqueue)\n",
		total, wall.Seconds(), float64(total)/wall.Seconds(), len(lat), l.accepted.Load(), l.completed.Load(), unoffered, l.errs.Load(), enqErrs.Load())
	if len(lat) > 0 {
		fmt.Printf("steady: enqueue → offer latency p50 %s, p99 %s, max %s (from the Enqueue call)\n",
			pct(lat, 50), pct(lat, 99), lat[len(lat)-1])
	}
	l.mu.Lock()
	enq, ac := slices.Clone(l.enqueueDur), slices.Clone(l.afterCommit)
	l.mu.Unlock()
	slices.Sort(enq)
	slices.Sort(ac)
	if len(enq) > 0 && len(ac) > 0 {
		fmt.Printf("steady: of which the enqueue transaction p50 %s, p99 %s; its commit → offer p50 %s, p99 %s, max %s\n",
			pct(enq, 50), pct(enq, 99), pct(ac, 50), pct(ac, 99), ac[len(ac)-1])
	}
	if r.hub {
		var offers, events int64
		if err := l.db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE type = 'offer'), count(*) FROM stream_events WHERE account_id = $1`, l.account).Scan(&offers, &events); err != nil {
			return err
		}
		fmt.Printf("steady: the hub's streams hold %d offers (%d events in all)\n", offers, events)
	}
	cpu := end.cpu - start.cpu
	secs := end.wall.Sub(start.wall).Seconds()
	fmt.Printf("steady: CPU %.2f cores (%.1fs CPU in %.1fs, engine and simulated agents), RSS %d MiB (peak seen); PostgreSQL backends %.2f cores\n",
		cpu.Seconds()/secs, cpu.Seconds(), secs, peakRSS>>20, (end.pg-start.pg).Seconds()/secs)
	return nil
}

// enqueue adds one task through the engine's Enqueue, as the integration
// API does (or, with --enqueue-in-tx, through EnqueueTx in a transaction of
// its own, as a channel does). t0 is when the task was due; an offer made before Enqueue
// returned (on arrival) is waiting in offeredAt.
func (l *routingLoad) enqueue(ctx context.Context, t0 time.Time) error {
	req := agentdesk.TaskRequest{AccountID: l.account, Channel: agentdesk.ChannelChat}
	var id int64
	var err error
	if l.inTx {
		err = postgres.InTx(ctx, l.db, func(tx pgx.Tx) error {
			id, err = l.engine.EnqueueTx(ctx, tx, req)
			return err
		})
	} else {
		id, err = l.engine.Enqueue(ctx, req)
	}
	if err != nil {
		return err
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.enqueueDur = append(l.enqueueDur, now.Sub(t0))
	if at, ok := l.offeredAt[id]; ok {
		l.latencies = append(l.latencies, at.Sub(t0))
		l.dueAt = append(l.dueAt, t0)
		l.afterCommit = append(l.afterCommit, max(at.Sub(now), 0))
		delete(l.offeredAt, id)
		return nil
	}
	l.enqueuedAt[id] = t0
	l.committedAt[id] = now
	return nil
}

// writeLatencyLog writes one line per offered task, in due order: when it
// was due (ms since the run started) and its enqueue → offer latency (ms).
func writeLatencyLog(path string, start time.Time, due []time.Time, lat []time.Duration) error {
	order := make([]int, len(due))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return due[a].Compare(due[b]) })
	var b strings.Builder
	fmt.Fprintf(&b, "# run started at %s\ndue_ms,latency_ms\n", start.UTC().Format(time.RFC3339Nano))
	for _, i := range order {
		fmt.Fprintf(&b, "%.1f,%.3f\n", float64(due[i].Sub(start).Microseconds())/1000, float64(lat[i].Microseconds())/1000)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)].Round(10 * time.Microsecond)
}

func (r routingRun) saturate(ctx context.Context, l *routingLoad) error {
	if r.silent {
		fmt.Printf("saturate dispatch: %d tasks waiting, %d agents with chat capacity %d who never answer\n", r.preload, r.agents, r.chatCap)
	} else {
		fmt.Printf("saturate: %d tasks waiting, %d agents accepting and completing at once\n", r.preload, r.agents)
	}
	// The line builds up while the agents are away (were they signed in,
	// the first tasks would be offered on arrival); they all come back at
	// once, and the dispatcher works through the line.
	if _, err := l.db.Exec(ctx, `UPDATE agent_presence SET state = 'away' WHERE account_id = $1`, l.account); err != nil {
		return err
	}
	for done := 0; done < r.preload; done += 1000 {
		err := postgres.InTx(ctx, l.db, func(tx pgx.Tx) error {
			for i := done; i < min(done+1000, r.preload); i++ {
				if _, err := l.engine.EnqueueTx(ctx, tx, agentdesk.TaskRequest{AccountID: l.account, Channel: agentdesk.ChannelChat}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if _, err := l.db.Exec(ctx, `UPDATE agent_presence SET state = 'available' WHERE account_id = $1`, l.account); err != nil {
		return err
	}
	start := readCPU()
	if err := l.engine.Start(ctx); err != nil {
		return err
	}
	done := func() bool {
		if r.silent {
			return l.offers.Load() >= int64(r.preload)
		}
		return l.accepted.Load() >= int64(r.preload)
	}
	for !done() && ctx.Err() == nil && time.Since(start.wall) < 5*time.Minute {
		time.Sleep(5 * time.Millisecond)
	}
	end := readCPU()
	l.stopping.Store(true)
	l.engine.Stop(context.WithoutCancel(ctx)) //nolint:errcheck
	l.inflight.Wait()
	wall := end.wall.Sub(start.wall).Seconds()
	_, peak := procMemory()
	if r.silent {
		fmt.Printf("saturate dispatch: %d offers (capacity reserved, committed) in %.2fs = %.0f durable assignments/s by the dispatcher\n",
			l.offers.Load(), wall, float64(l.offers.Load())/wall)
		fmt.Printf("saturate dispatch: CPU %.2f cores, peak RSS %d MiB; PostgreSQL backends %.2f cores\n", (end.cpu-start.cpu).Seconds()/wall, peak>>20, (end.pg-start.pg).Seconds()/wall)
		return nil
	}
	fmt.Printf("saturate: %d assignments in %.2fs = %.0f durable assignments/s (%d offers = %.0f offers/s, %d completed), errors %d\n",
		l.accepted.Load(), wall, float64(l.accepted.Load())/wall, l.offers.Load(), float64(l.offers.Load())/wall, l.completed.Load(), l.errs.Load())
	fmt.Printf("saturate: CPU %.2f cores, peak RSS %d MiB; PostgreSQL backends %.2f cores\n", (end.cpu-start.cpu).Seconds()/wall, peak>>20, (end.pg-start.pg).Seconds()/wall)
	return nil
}

// freshDatabase creates an empty database next to the one in u, migrates it
// and returns its URL and a function that drops it.
func freshDatabase(ctx context.Context, u string) (string, func(), error) {
	var b [4]byte
	rand.Read(b[:])
	name := "loadgen_routing_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, u)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create benchmark database: %w", err)
	}
	p, err := url.Parse(u)
	if err != nil {
		return "", nil, err
	}
	p.Path = "/" + name
	fresh := p.String()
	db, err := postgres.Open(ctx, fresh, 2)
	if err != nil {
		return "", nil, err
	}
	_, err = postgres.Migrate(ctx, db)
	db.Close()
	if err != nil {
		return "", nil, err
	}
	drop := func() {
		c, err := pgx.Connect(context.Background(), u)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") //nolint:errcheck
	}
	return fresh, drop, nil
}

func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "?"
	}
	return p.Redacted()
}
