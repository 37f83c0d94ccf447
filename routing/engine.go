package routing

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// Clock gives the engine its notion of "now"; tests inject one they move.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

// Config tunes the engine. Zero values take the defaults noted.
type Config struct {
	// OfferTimeout is how long an agent has to accept, per capacity channel
	// (default voice 15 s, chat and email 20 s). A queue may override it.
	OfferTimeout map[agentdesk.Channel]time.Duration
	// MaxMissedOffers offers timing out in a row set the agent away (default 3).
	MaxMissedOffers int
	// VoiceAlongside lets an agent on a call still get chats and emails
	// (default false: a call blocks other work, and other work blocks calls).
	VoiceAlongside bool
	// StickyWindow is how long a customer's last agent is preferred (default
	// 24 h; negative disables).
	StickyWindow time.Duration
	// WrapUp is the after-contact time before the agent is available again
	// (default 60 s). A queue may override it.
	WrapUp time.Duration
	// SweepInterval is how often timers are checked and tasks dispatched
	// without a notification (default 1 s).
	SweepInterval time.Duration
	// StatsInterval is how often queue stats and positions are published
	// (default 1 s; negative disables).
	StatsInterval time.Duration
	// BatchSize is how many waiting tasks one dispatch transaction considers
	// (default 64).
	BatchSize int
	// RefusalBackoff is how long a task every eligible agent turned down
	// waits before it is offered to them again (default 10 s; doubled each
	// further round, at most 80 s).
	RefusalBackoff time.Duration
	// DefaultHandleTime is used for wait estimates before a queue has history
	// (default 3 min).
	DefaultHandleTime time.Duration
}

func (c *Config) defaults() {
	if c.OfferTimeout == nil {
		c.OfferTimeout = map[agentdesk.Channel]time.Duration{}
	}
	for ch, d := range map[agentdesk.Channel]time.Duration{agentdesk.ChannelVoice: 15 * time.Second, agentdesk.ChannelChat: 20 * time.Second, agentdesk.ChannelEmail: 20 * time.Second} {
		if c.OfferTimeout[ch] <= 0 {
			c.OfferTimeout[ch] = d
		}
	}
	if c.MaxMissedOffers <= 0 {
		c.MaxMissedOffers = 3
	}
	if c.StickyWindow == 0 {
		c.StickyWindow = 24 * time.Hour
	}
	if c.WrapUp == 0 {
		c.WrapUp = time.Minute
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = time.Second
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 64
	}
	if c.RefusalBackoff <= 0 {
		c.RefusalBackoff = 10 * time.Second
	}
	if c.DefaultHandleTime <= 0 {
		c.DefaultHandleTime = 3 * time.Minute
	}
}

// Engine is the routing engine. All its state is in PostgreSQL; several
// engines (one per server process) may run on one database.
type Engine struct {
	db    *pgxpool.Pool
	clock Clock
	log   *slog.Logger
	pub   Publisher
	cfg   Config

	wakeCh chan struct{}
	// woken holds the accounts named by notifications since the last
	// dispatch, so a wake-up dispatches them without first asking the
	// database which accounts have waiting tasks.
	mu    sync.Mutex
	woken map[int64]bool
	// pending collects, per transaction of inTx, the accounts to wake
	// after it commits.
	pending map[pgx.Tx]map[int64]bool
	// id tells this engine's notifications from other engines': each
	// engine wakes itself directly and ignores its own NOTIFYs.
	id string
	// signal collects the accounts to announce to the other engines; the
	// notifier goroutine sends them, so no caller waits for a NOTIFY.
	signalMu sync.Mutex
	signal   map[int64]bool
	signalCh chan struct{}
	// lastPos is the queue position last published per waiting task (used
	// by the stats goroutine only).
	lastPos map[int64]Position
	// queues is the engine's copy of the queues new tasks go to.
	queues queueCache
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// New builds an engine. It does nothing in the background until Start; its
// methods work without Start (useful for API-only processes and tests).
func New(db *pgxpool.Pool, clock Clock, log *slog.Logger, pub Publisher, cfg Config) *Engine {
	cfg.defaults()
	if clock == nil {
		clock = SystemClock{}
	}
	if pub == nil {
		pub = discard{}
	}
	return &Engine{db: db, clock: clock, log: log, pub: pub, cfg: cfg, wakeCh: make(chan struct{}, 1), pending: map[pgx.Tx]map[int64]bool{},
		id: strconv.FormatUint(rand.Uint64(), 36)}
}

// now is the single source of business time, truncated to what PostgreSQL
// stores so comparisons in Go and SQL agree.
func (e *Engine) now() time.Time { return e.clock.Now().UTC().Truncate(time.Microsecond) }

// Start recovers from the database (expires dead offers, ends finished
// wrap-ups, dispatches what waits) and then runs the dispatcher until Stop.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.Sweep(ctx); err != nil {
		return fmt.Errorf("routing: recover: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	e.signalMu.Lock()
	e.signalCh = make(chan struct{}, 1)
	e.signalMu.Unlock()
	e.done.Add(4 + dispatchers)
	go func() { defer e.done.Done(); e.listen(runCtx) }()
	go func() { defer e.done.Done(); e.signalLoop(runCtx) }()
	for i := range dispatchers {
		go func() { defer e.done.Done(); e.run(runCtx, i == 0) }()
	}
	go func() { defer e.done.Done(); e.sweepLoop(runCtx) }()
	go func() { defer e.done.Done(); e.publishStatsLoop(runCtx) }()
	e.Wake()
	return nil
}

// Stop ends the background work and waits for it (or for ctx).
func (e *Engine) Stop(ctx context.Context) error {
	if e.cancel == nil {
		return nil
	}
	e.cancel()
	ch := make(chan struct{})
	go func() { e.done.Wait(); close(ch) }()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wake makes the dispatcher look for work now.
func (e *Engine) Wake() {
	select {
	case e.wakeCh <- struct{}{}:
	default:
	}
}

// dispatchers is how many dispatch passes one engine runs at once. A task
// that arrives while a pass waits on PostgreSQL (its reads, its offers, its
// durable commit) is taken by the other instead of waiting for the pass to
// end. They never offer the same task or fill the same agent twice: passes
// claim tasks and agents with SKIP LOCKED, exactly as two engines do.
const dispatchers = 2

// run is one dispatcher: it dispatches the woken accounts on every wake-up;
// the first also passes over every account with waiting tasks each
// SweepInterval (a notification may be lost while the listener
// reconnects); timers run on their own goroutine.
func (e *Engine) run(ctx context.Context, first bool) {
	var tick <-chan time.Time
	if first {
		sweep := time.NewTicker(e.cfg.SweepInterval)
		defer sweep.Stop()
		tick = sweep.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.wakeCh:
		case <-tick:
			// A full pass: every account with waiting tasks.
			e.mu.Lock()
			e.woken = nil
			e.mu.Unlock()
		}
		start := time.Now()
		e.mu.Lock()
		woken := e.woken
		e.woken = map[int64]bool{}
		e.mu.Unlock()
		var n int
		var err error
		if len(woken) > 0 {
			accounts := make([]int64, 0, len(woken))
			for a := range woken {
				accounts = append(accounts, a)
			}
			n, err = e.dispatchWoken(ctx, accounts)
		} else {
			n, err = e.Dispatch(ctx)
		}
		if err != nil && ctx.Err() == nil {
			e.log.Error("routing dispatch", "err", err)
		}
		e.log.Debug("routing dispatch", "offers", n, "took", time.Since(start))
	}
}

// sweepLoop runs the timers. It is apart from dispatching so that a slow
// sweep never delays an offer; what it re-queues wakes the dispatchers
// through NOTIFY.
func (e *Engine) sweepLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.Sweep(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("routing sweep", "err", err)
			}
			e.Wake()
		}
	}
}

// publishStatsLoop publishes queue stats and positions on its own goroutine:
// the stats queries read a day of tasks and must not delay dispatching.
func (e *Engine) publishStatsLoop(ctx context.Context) {
	if e.cfg.StatsInterval <= 0 {
		return
	}
	t := time.NewTicker(e.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.PublishStats(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("routing stats", "err", err)
			}
		}
	}
}

// listen turns NOTIFY agentdesk_routing into wake-ups, reconnecting on error.
func (e *Engine) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := e.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		e.log.Warn("routing listener reconnecting", "err", err)
		e.Wake() // we may have missed notifications
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (e *Engine) listenOnce(ctx context.Context) error {
	conn, err := e.db.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN agentdesk_routing"); err != nil {
		return err
	}
	defer func() {
		// The connection goes back to the pool: stop listening first.
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := conn.Exec(c, "UNLISTEN *"); err != nil {
			conn.Conn().Close(c) //nolint:errcheck // the pool drops closed connections
		}
	}()
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		acctID, from, _ := strings.Cut(n.Payload, "/")
		if from == e.id {
			continue // our own: we woke ourselves when we sent it
		}
		if acct, err := strconv.ParseInt(acctID, 10, 64); err == nil && acct > 0 {
			e.mu.Lock()
			if e.woken != nil {
				e.woken[acct] = true
			}
			e.mu.Unlock()
		}
		e.Wake()
	}
}

// inTx runs fn in a transaction, retrying deadlocks between engines.
func (e *Engine) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return e.retrying(func() error {
		var woken map[int64]bool
		// postgres.InTx, so that publishers may act once the change is
		// visible (postgres.AfterCommit).
		err := postgres.InTx(ctx, e.db, func(tx pgx.Tx) error {
			e.mu.Lock()
			e.pending[tx] = map[int64]bool{}
			e.mu.Unlock()
			defer func() {
				e.mu.Lock()
				woken = e.pending[tx]
				delete(e.pending, tx)
				e.mu.Unlock()
			}()
			if err := fn(tx); err != nil {
				return err
			}
			return runAlsoInTx(ctx, tx)
		})
		if err == nil {
			markAlsoInTxDone(ctx)
			e.notify(ctx, woken)
		}
		return err
	})
}

// retrying runs fn, a transaction or a statement that is one, again after
// a deadlock or serialization failure between engines, up to five times.
func (e *Engine) retrying(fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !retryable(err) || attempt == 4 {
			return err
		}
		e.log.Debug("routing: retrying transaction", "err", err, "attempt", attempt)
	}
}

// publishCommitted hands the events of a change that committed without a
// transaction of the engine's (Enqueue's and Accept's single statements) to
// the publisher. The change is stored whatever happens here: an offer the
// agent never sees expires and goes to the next agent.
func (e *Engine) publishCommitted(ctx context.Context, cp CommittedPublisher, taskID int64, events []Event) {
	for _, ev := range events {
		if err := cp.PublishCommitted(ctx, ev); err != nil {
			e.log.Warn("routing: publish a committed change", "task_id", taskID, "type", ev.Type, "err", err)
		}
	}
}

// AlsoInTx returns a context under which the engine's next committing
// transaction (the change a method makes) also runs fn, so what fn writes
// (an audit entry) commits or rolls back with the change. fn runs once, even
// when the method runs more transactions after its change.
func AlsoInTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) context.Context {
	return context.WithValue(ctx, alsoInTxKey{}, &alsoInTx{fn: fn})
}

type alsoInTxKey struct{}

type alsoInTx struct {
	mu   sync.Mutex
	fn   func(context.Context, pgx.Tx) error
	done bool
}

// singleStatement says whether a change (Enqueue, Accept, Complete) may run
// as one statement in its own transaction, and returns the publisher that
// takes its events once it has committed: only when the engine's publisher
// takes committed events and no function given to AlsoInTx waits to join
// the change's transaction.
func (e *Engine) singleStatement(ctx context.Context) (CommittedPublisher, bool) {
	cp, ok := e.pub.(CommittedPublisher)
	if !ok {
		return nil, false
	}
	if h, _ := ctx.Value(alsoInTxKey{}).(*alsoInTx); h != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.done {
			return nil, false
		}
	}
	return cp, true
}

func runAlsoInTx(ctx context.Context, tx pgx.Tx) error {
	h, _ := ctx.Value(alsoInTxKey{}).(*alsoInTx)
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return nil
	}
	return h.fn(ctx, tx)
}

// markAlsoInTxDone records that the transaction that ran the AlsoInTx
// function committed; a transaction retried after a deadlock runs it again.
func markAlsoInTxDone(ctx context.Context) {
	if h, _ := ctx.Value(alsoInTxKey{}).(*alsoInTx); h != nil {
		h.mu.Lock()
		h.done = true
		h.mu.Unlock()
	}
}

// notify wakes this engine's dispatchers and, through NOTIFY, the other
// engines', for accounts whose tasks or agents just changed. The NOTIFY is
// sent by the signal goroutine, after the change committed and without
// making the caller wait for it.
func (e *Engine) notify(ctx context.Context, accounts map[int64]bool) {
	if len(accounts) == 0 {
		return
	}
	e.mu.Lock()
	for a := range accounts {
		if e.woken != nil {
			e.woken[a] = true
		}
	}
	e.mu.Unlock()
	e.Wake()
	e.signalMu.Lock()
	started := e.signalCh != nil
	if started {
		if e.signal == nil {
			e.signal = map[int64]bool{}
		}
		for a := range accounts {
			e.signal[a] = true
		}
	}
	e.signalMu.Unlock()
	if !started {
		// Not started (tools, tests): tell the others at once.
		e.sendSignal(context.WithoutCancel(ctx), accounts)
		return
	}
	select {
	case e.signalCh <- struct{}{}:
	default:
	}
}

// signalLoop sends the NOTIFYs notify collected, several accounts and
// changes in one statement when they pile up.
func (e *Engine) signalLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.signalCh:
		}
		e.signalMu.Lock()
		accounts := e.signal
		e.signal = nil
		e.signalMu.Unlock()
		e.sendSignal(ctx, accounts)
	}
}

func (e *Engine) sendSignal(ctx context.Context, accounts map[int64]bool) {
	if len(accounts) == 0 {
		return
	}
	payloads := make([]string, 0, len(accounts))
	for a := range accounts {
		payloads = append(payloads, strconv.FormatInt(a, 10)+"/"+e.id)
	}
	if _, err := e.db.Exec(ctx, `SELECT pg_notify('agentdesk_routing', a) FROM unnest($1::text[]) a`, payloads); err != nil && ctx.Err() == nil {
		e.log.Warn("routing: notify other engines", "err", err)
	}
}

// discard is the Publisher of an engine nobody listens to (seeding, tools).
type discard struct{}

func (discard) Publish(context.Context, pgx.Tx, Event) error { return nil }
