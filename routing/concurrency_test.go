package routing

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
)

// overCapacity counts, in one snapshot, agents holding more than their
// capacity on a channel or holding a call together with other work.
const overCapacity = `
WITH held AS (
	SELECT CASE WHEN t.state = 'offered' THEN t.offered_to ELSE t.agent_id END AS agent_id, t.capacity_channel, count(*) AS n
	FROM tasks t WHERE t.state IN ('offered', 'assigned')
	GROUP BY 1, 2
)
SELECT
	(SELECT count(*) FROM held h JOIN agents a ON a.id = h.agent_id
	 WHERE h.n > coalesce((a.capacity->>h.capacity_channel)::int, 0)) +
	(SELECT count(*) FROM held v JOIN held o ON o.agent_id = v.agent_id
	 WHERE v.capacity_channel = 'voice' AND o.capacity_channel <> 'voice')`

// simulate runs agents that accept (or now and then reject) every offer they
// are sent, through a randomly chosen engine, and complete the work.
type simulation struct {
	engines []*Engine
	account int64
	reason  int64
	offers  chan Event
	rejects atomic.Int64
}

func (s *simulation) publisher() Publisher {
	return &recorder{onPub: func(e Event) {
		if e.Type == "offer" {
			s.offers <- e
		}
	}}
}

func (s *simulation) agentLoop(ctx context.Context, t *testing.T) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-s.offers:
			agent, _ := strconv.ParseInt(strings.TrimPrefix(ev.Stream, "agent:"), 10, 64)
			task := ev.Data.(Offer).TaskID
			e := s.engines[rand.IntN(len(s.engines))]
			if rand.IntN(10) == 0 {
				if err := e.Reject(ctx, s.account, agent, task, "busy"); err == nil {
					s.rejects.Add(1)
				} else if !agentdesk.IsKind(err, agentdesk.Conflict) && ctx.Err() == nil {
					t.Errorf("reject: %v", err)
				}
				continue
			}
			if err := e.Accept(ctx, s.account, agent, task); err != nil {
				if !agentdesk.IsKind(err, agentdesk.Conflict) && ctx.Err() == nil {
					t.Errorf("accept: %v", err)
				}
				continue
			}
			if rand.IntN(2) == 0 {
				if err := e.EndInteraction(ctx, s.account, agent, task); err != nil && ctx.Err() == nil {
					t.Errorf("end: %v", err)
				}
			}
			if err := e.Complete(ctx, s.account, agent, task, agentdesk.Outcome{ContactReasonID: &s.reason}); err != nil && ctx.Err() == nil {
				t.Errorf("complete: %v", err)
			}
		}
	}
}

func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// TestTwoEnginesShareOneDatabase runs two engines on two pools, as two
// server processes would, under concurrent load, and checks from the
// database that no task went to two agents and no agent exceeded capacity.
func TestTwoEnginesShareOneDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	t.Parallel()
	url := pgtest.NewURL(t)
	db1, db2 := openPool(t, url), openPool(t, url)
	f := newFixtureOn(t, db1, Config{})
	for i := 0; i < 12; i++ {
		f.agent(map[string]int{"voice": 1, "chat": 2, "email": 3}, nil)
	}
	sim := &simulation{account: f.account, reason: f.reason(agentdesk.ContactReason, "Question"), offers: make(chan Event, 10000)}
	cfg := Config{WrapUp: -1, SweepInterval: 20 * time.Millisecond, StatsInterval: 50 * time.Millisecond}
	sim.engines = []*Engine{
		New(db1, SystemClock{}, quietLogger(), sim.publisher(), cfg),
		New(db2, SystemClock{}, quietLogger(), sim.publisher(), cfg),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, e := range sim.engines {
		f.must(e.Start(ctx))
	}
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); sim.agentLoop(ctx, t) }()
	}
	// The snapshot checker runs while the load does.
	var violations, snapshots atomic.Int64
	checkDone := make(chan struct{})
	go func() {
		defer close(checkDone)
		for ctx.Err() == nil {
			var n int64
			if err := db2.QueryRow(ctx, overCapacity).Scan(&n); err == nil {
				violations.Add(n)
				snapshots.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	const total = 600
	channels := []agentdesk.Channel{agentdesk.ChannelChat, agentdesk.ChannelChat, agentdesk.ChannelEmail, agentdesk.ChannelVoice}
	var prod sync.WaitGroup
	for p := 0; p < 4; p++ {
		prod.Add(1)
		go func() {
			defer prod.Done()
			for i := p; i < total; i += 4 {
				_, err := sim.engines[i%2].Enqueue(ctx, agentdesk.TaskRequest{AccountID: f.account, Channel: channels[i%len(channels)],
					Priority: []agentdesk.Priority{agentdesk.PriorityNormal, agentdesk.PriorityHigh}[i%2]})
				if err != nil {
					t.Errorf("enqueue: %v", err)
					return
				}
			}
		}()
	}
	prod.Wait()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var done int
		f.must(db1.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE state = 'completed'`).Scan(&done))
		if done == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d tasks completed", done, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	<-checkDone
	for _, e := range sim.engines {
		f.must(e.Stop(context.Background()))
	}
	if violations.Load() > 0 {
		t.Errorf("%d capacity violations seen in %d snapshots", violations.Load(), snapshots.Load())
	}
	var offeredBy int
	f.must(db1.QueryRow(f.ctx, `SELECT count(DISTINCT agent_id) FROM task_events WHERE to_state = 'assigned'`).Scan(&offeredBy))
	t.Logf("%d tasks, %d rejections, %d snapshots, %d agents used", total, sim.rejects.Load(), snapshots.Load(), offeredBy)
	checkConsistency(t, f.ctx, db1)
}

const crashEnv = "AGENTDESK_ROUTING_CRASH_CHILD"

// TestCrashChild is the engine process of TestCrashRecovery; it runs only
// when that test starts it.
func TestCrashChild(t *testing.T) {
	url := os.Getenv(crashEnv)
	if url == "" {
		t.Skip("started by TestCrashRecovery only")
	}
	account, _ := strconv.ParseInt(os.Getenv(crashEnv+"_ACCOUNT"), 10, 64)
	reason, _ := strconv.ParseInt(os.Getenv(crashEnv+"_REASON"), 10, 64)
	db, err := postgres.Open(context.Background(), url, 10)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	offers := make(chan Event, 10000)
	pub := &recorder{onPub: func(e Event) {
		if e.Type == "offer" {
			offers <- e
		}
	}}
	e := New(db, SystemClock{}, quietLogger(), pub, Config{WrapUp: -1, SweepInterval: 50 * time.Millisecond, StatsInterval: -1})
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Agents with even ids work; odd ones never answer, so their offers are
	// pending when the process dies.
	for w := 0; w < 4; w++ {
		go func() {
			for ev := range offers {
				agent, _ := strconv.ParseInt(strings.TrimPrefix(ev.Stream, "agent:"), 10, 64)
				id := ev.Data.(Offer).TaskID
				if agent%2 == 1 {
					continue
				}
				if e.Accept(ctx, account, agent, id) == nil && rand.IntN(2) == 0 {
					e.Complete(ctx, account, agent, id, agentdesk.Outcome{ContactReasonID: &reason}) //nolint:errcheck
				}
			}
		}()
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		id, err := e.Enqueue(ctx, agentdesk.TaskRequest{AccountID: account, Channel: agentdesk.ChannelChat})
		if err != nil {
			t.Fatal(err)
		}
		// Printed only after the commit: the parent may hold us to it.
		fmt.Fprintf(out, "enqueued %d\n", id)
		out.Flush()
	}
}

// TestCrashRecovery kills an engine process with SIGKILL in the middle of
// its work and checks that every task it acknowledged is in the database in a
// state consistent with its events, and that its dead offers re-queue.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	t.Parallel()
	url := pgtest.NewURL(t)
	db := openPool(t, url)
	f := newFixtureOn(t, db, Config{})
	f.clock.t = time.Now().UTC() // the child uses the wall clock
	for i := 0; i < 10; i++ {
		f.agent(map[string]int{"chat": 3}, nil)
	}
	reason := f.reason(agentdesk.ContactReason, "Question")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+url, fmt.Sprintf("%s_ACCOUNT=%d", crashEnv, f.account), fmt.Sprintf("%s_REASON=%d", crashEnv, reason))
	stdout, err := cmd.StdoutPipe()
	f.must(err)
	cmd.Stderr = os.Stderr
	f.must(cmd.Start())
	var acked []int64
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(acked) < 400 {
		if id, ok := strings.CutPrefix(sc.Text(), "enqueued "); ok {
			n, _ := strconv.ParseInt(id, 10, 64)
			acked = append(acked, n)
		}
	}
	f.must(cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait() //nolint:errcheck // killed on purpose
	if len(acked) < 400 {
		t.Fatalf("child acknowledged only %d tasks", len(acked))
	}

	var missing int
	f.must(db.QueryRow(f.ctx, `SELECT count(*) FROM unnest($1::bigint[]) a(id) WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = a.id)`, acked).Scan(&missing))
	if missing > 0 {
		t.Fatalf("%d acknowledged tasks are missing after the crash", missing)
	}
	checkConsistency(t, f.ctx, db)
	states := map[State]int{}
	rows, err := db.Query(f.ctx, `SELECT state, count(*) FROM tasks GROUP BY state`)
	f.must(err)
	for rows.Next() {
		var s State
		var n int
		f.must(rows.Scan(&s, &n))
		states[s] = n
	}
	f.must(rows.Err())
	if states[StateOffered] == 0 {
		t.Fatalf("expected dead offers at the crash, states = %v", states)
	}
	dead, err := pgx.CollectRows(must(db.Query(f.ctx, `SELECT id FROM tasks WHERE state = 'offered'`)), pgx.RowTo[int64])
	f.must(err)

	// Restart: a new engine, its clock past every offer's timeout.
	f.clock.t = time.Now().UTC().Add(time.Minute)
	restarted := New(db, f.clock, quietLogger(), &recorder{}, Config{StatsInterval: -1})
	f.must(restarted.Start(f.ctx))
	f.must(restarted.Stop(f.ctx))
	var stillDead int
	f.must(db.QueryRow(f.ctx, `SELECT count(*) FROM tasks WHERE state = 'offered' AND offer_expires_at <= $1`, f.clock.t).Scan(&stillDead))
	if stillDead > 0 {
		t.Fatalf("%d expired offers survived the restart", stillDead)
	}
	var requeued int
	f.must(db.QueryRow(f.ctx, `
SELECT count(DISTINCT task_id) FROM task_events
WHERE task_id = ANY($1) AND from_state = 'offered' AND to_state = 'queued' AND reason = 'offer timed out'`, dead).Scan(&requeued))
	if requeued != len(dead) {
		t.Fatalf("%d of %d dead offers were re-queued", requeued, len(dead))
	}
	checkConsistency(t, f.ctx, db)
	t.Logf("killed after %d acknowledged tasks; states at crash %v; %d dead offers re-queued", len(acked), states, len(dead))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestFairness gives tasks to 50 equal agents: each agent's share must be
// within ±10% of even. It runs 2,000 tasks; AGENTDESK_FAIRNESS_TASKS=10000
// runs the benchmark's full size (recorded in BENCHMARKS.md).
func TestFairness(t *testing.T) {
	if testing.Short() {
		t.Skip("thousands of tasks")
	}
	t.Parallel()
	f := newFixture(t, Config{WrapUp: -1, StatsInterval: -1})
	const agents = 50
	tasks := 2000
	if n, err := strconv.Atoi(os.Getenv("AGENTDESK_FAIRNESS_TASKS")); err == nil && n > 0 {
		tasks = n
	}
	for i := 0; i < agents; i++ {
		f.agent(map[string]int{"chat": 1}, nil)
	}
	reason := f.reason(agentdesk.ContactReason, "Question")
	f.must(pgx.BeginFunc(f.ctx, f.db, func(tx pgx.Tx) error {
		for i := 0; i < tasks; i++ {
			if _, err := f.e.EnqueueTx(f.ctx, tx, agentdesk.TaskRequest{AccountID: f.account, Channel: agentdesk.ChannelChat}); err != nil {
				return err
			}
		}
		return nil
	}))
	for {
		// The first agents' offers were made on arrival, the others by
		// the dispatcher as the agents free up.
		f.clock.Advance(time.Second)
		f.dispatch()
		rows, err := f.db.Query(f.ctx, `SELECT id, offered_to FROM tasks WHERE state = 'offered'`)
		f.must(err)
		type pair struct{ Task, Agent int64 }
		offered, err := pgx.CollectRows(rows, pgx.RowToStructByPos[pair])
		f.must(err)
		if len(offered) == 0 {
			break
		}
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(offered); i += 4 {
					p := offered[i]
					if err := f.e.Accept(f.ctx, f.account, p.Agent, p.Task); err != nil {
						t.Error(err)
						return
					}
					if err := f.e.Complete(f.ctx, f.account, p.Agent, p.Task, agentdesk.Outcome{ContactReasonID: &reason}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
	}
	rows, err := f.db.Query(f.ctx, `SELECT agent_id, count(*) FROM tasks WHERE state = 'completed' GROUP BY agent_id`)
	f.must(err)
	shares := map[int64]int{}
	total := 0
	for rows.Next() {
		var a int64
		var n int
		f.must(rows.Scan(&a, &n))
		shares[a] = n
		total += n
	}
	f.must(rows.Err())
	if total != tasks || len(shares) != agents {
		t.Fatalf("%d tasks completed by %d agents", total, len(shares))
	}
	even := float64(tasks) / agents
	lo, hi := tasks, 0
	for _, n := range shares {
		lo, hi = min(lo, n), max(hi, n)
		if float64(n) < 0.9*even || float64(n) > 1.1*even {
			t.Errorf("an agent handled %d tasks, even is %.0f", n, even)
		}
	}
	t.Logf("shares: min %d, max %d, even %.0f", lo, hi, even)
}
