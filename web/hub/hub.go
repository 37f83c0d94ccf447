package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config tunes a Hub. Zero values take the defaults in parentheses.
type Config struct {
	Retention     time.Duration // how long events stay resumable (24h)
	PruneInterval time.Duration // how often the retention sweep runs (10m)
	FeedInterval  time.Duration // how often the change feed is read: the delivery latency (10ms)
	FeedOverlap   time.Duration // how far back every tenth feed read goes, for commits that finish out of order (1s)
	PollInterval  time.Duration // full poll of every followed stream's head, the guarantee (1s)
	MaxBacklog    int64         // a client further behind gets "resync" (1000)
	FetchBatch    int           // events read per query (500)
	Workers       int           // goroutines fetching streams (4)

	SendQueue       int           // event frames queued per connection; more wait in the database (256)
	SlowAfter       time.Duration // a connection whose queue stays full this long is dropped (5s)
	MaxMessageBytes int           // largest client message accepted (32 KiB); up to 4× gets an error frame, more closes
	PingInterval    time.Duration // server pings (25s)
	PongWait        time.Duration // connection dropped after this long without any frame (60s)
	WriteWait       time.Duration // one frame's write deadline (10s)
	ReadBufferSize  int           // per-connection read buffer (256; gorilla's minimum is 125)

	// AllowedOrigins are the origins allowed on /ws/agent and /ws/supervisor
	// besides the server's own host ("https://desk.example.com").
	AllowedOrigins []string

	// Customer rate limits: messages per second and burst, per visitor and per IP.
	VisitorRate, VisitorBurst float64 // (2/s, 20)
	IPRate, IPBurst           float64 // (20/s, 100)
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Retention, 24*time.Hour)
	def(&c.PruneInterval, 10*time.Minute)
	def(&c.PollInterval, time.Second)
	def(&c.FeedInterval, 10*time.Millisecond)
	def(&c.FeedOverlap, time.Second)
	def(&c.PingInterval, 25*time.Second)
	def(&c.PongWait, 60*time.Second)
	def(&c.WriteWait, 10*time.Second)
	def(&c.SlowAfter, 5*time.Second)
	if c.MaxBacklog <= 0 {
		c.MaxBacklog = 1000
	}
	if c.FetchBatch <= 0 {
		c.FetchBatch = 500
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 32 << 10
	}
	if c.ReadBufferSize <= 0 {
		c.ReadBufferSize = 256
	}
	if c.VisitorRate <= 0 {
		c.VisitorRate, c.VisitorBurst = 2, 20
	}
	if c.IPRate <= 0 {
		c.IPRate, c.IPBurst = 20, 100
	}
}

// Hub fans durable stream events out to the websocket connections of this
// process. Several processes each run a Hub on the same database.
type Hub struct {
	db      *pgxpool.Pool
	cfg     Config
	log     *slog.Logger
	actions Actions
	limits  *limiter

	mu      sync.Mutex
	streams map[streamKey]*stream
	conns   map[*conn]struct{}
	closed  bool

	work     workQueue
	expiries expiries
	loops    sync.WaitGroup // listener, poller, pruner, expiries, workers
	connWG   sync.WaitGroup // readers, writers, closers
	stop     context.CancelFunc
	started  bool
	listenUp atomic.Bool

	stats Stats
}

// Stats are counters for /metrics and tests.
type Stats struct {
	Connections    atomic.Int64 // open now
	SlowClosed     atomic.Int64 // disconnected for not reading fast enough
	Resyncs        atomic.Int64 // resync instructions sent
	EventsSent     atomic.Int64 // event frames queued to clients
	Fetches        atomic.Int64 // stream reads from the database
	Notifications  atomic.Int64 // notifications received (ephemeral events)
	FeedWakes      atomic.Int64 // streams woken by the change feed
	PollWakes      atomic.Int64 // streams woken by the full poll: the feed missed them
	ErrorsReturned atomic.Int64 // error frames sent
}

// New returns a Hub on db. actions carries out what clients ask for; it may be
// nil for a hub that only delivers events (every action is then refused).
func New(db *pgxpool.Pool, actions Actions, cfg Config, log *slog.Logger) *Hub {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{
		db:       db,
		cfg:      cfg,
		log:      log,
		actions:  actions,
		limits:   newLimiter(cfg),
		streams:  map[streamKey]*stream{},
		conns:    map[*conn]struct{}{},
		work:     newWorkQueue(),
		expiries: newExpiries(),
	}
}

// Stats returns the hub's counters.
func (h *Hub) Stats() *Stats { return &h.stats }

// Start begins reading the change feed, polling, pruning and listening for
// ephemeral events. It returns once the listener is connected (or failed
// once; it keeps retrying).
func (h *Hub) Start(ctx context.Context) error {
	if h.started {
		return errors.New("hub: already started")
	}
	h.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.stop = cancel
	ready := make(chan error, 1)
	watermark, err := h.feedStart(ctx)
	var pg *pgconn.PgError
	switch {
	case errors.As(err, &pg) && pg.Code == "42703": // undefined column
		// A database migrated with an early 004_streams has no change feed;
		// the full poll still delivers everything, a second late at most.
		h.log.Error("hub: no change feed in this database (migrated with an earlier 004_streams; recreate it): delivering by polling only", "err", err)
		watermark = -1
	case err != nil:
		cancel()
		return err
	}
	h.loops.Add(7 + h.cfg.Workers)
	go func() { defer h.loops.Done(); h.pingLoop(runCtx) }()
	go func() { defer h.loops.Done(); h.expiries.run(runCtx, (*conn).recheck) }()
	go func() { defer h.loops.Done(); h.listen(runCtx, ready) }()
	go func() {
		defer h.loops.Done()
		if watermark >= 0 {
			h.feedLoop(runCtx, watermark)
		}
	}()
	go func() { defer h.loops.Done(); h.pollLoop(runCtx) }()
	go func() { defer h.loops.Done(); h.pruneLoop(runCtx) }()
	go func() { defer h.loops.Done(); h.limits.sweepLoop(runCtx) }()
	for range h.cfg.Workers {
		go func() { defer h.loops.Done(); h.worker(runCtx) }()
	}
	select {
	case err := <-ready:
		if err != nil {
			// The listener keeps retrying; only typing indicators wait.
			h.log.Warn("hub: notification listener not connected yet", "err", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop closes every connection with "going away" (clients reconnect to
// another process and resume), then stops the background loops.
func (h *Hub) Stop(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.closeWith(closeGoingAway, "server shutting down")
	}
	if h.stop != nil {
		h.stop()
	}
	h.work.close()
	done := make(chan struct{})
	go func() { h.connWG.Wait(); h.loops.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.ws.Close()
		}
		<-done
		return ctx.Err()
	}
}

// listen holds a dedicated connection in LISTEN for ephemeral events
// (typing), which exist only as notifications.
func (h *Hub) listen(ctx context.Context, ready chan<- error) {
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		err := h.listenOnce(ctx, func() {
			if first {
				ready <- nil
				first = false
			}
			h.listenUp.Store(true)
			backoff = 100 * time.Millisecond
		})
		h.listenUp.Store(false)
		if ctx.Err() != nil {
			break
		}
		if first {
			ready <- err
			first = false
		}
		h.log.Warn("hub: notification listener lost; typing indicators pause", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	if first {
		ready <- ctx.Err()
	}
}

func (h *Hub) listenOnce(ctx context.Context, up func()) error {
	cfg := h.db.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+ephemeralChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	up()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		h.stats.Notifications.Add(1)
		h.onEphemeral(n.Payload)
	}
}

func (h *Hub) onEphemeral(payload string) {
	var p ephemeralPayload
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return
	}
	h.mu.Lock()
	s := h.streams[streamKey{p.AccountID, p.Stream}]
	h.mu.Unlock()
	if s == nil {
		return
	}
	frame, err := json.Marshal(envelope{Type: p.Type, Stream: p.Stream, Data: p.Data})
	if err != nil {
		return
	}
	s.mu.Lock()
	subs := make([]*conn, 0, len(s.subs))
	for _, sb := range s.subs {
		if !sb.pending {
			subs = append(subs, sb.c)
		}
	}
	s.mu.Unlock()
	now := time.Now()
	for _, c := range subs {
		c.offer(frame, nil, now) // dropped when the queue is full: it is only a hint
	}
}

// Wake tells this hub that streams of account probably moved (the caller
// has just committed events to them), so they are read now instead of at
// the next change-feed read. Only a hint: without it delivery is the same,
// ~10 ms later.
func (h *Hub) Wake(accountID int64, streams ...string) {
	for _, name := range streams {
		h.mu.Lock()
		s := h.streams[streamKey{accountID, name}]
		h.mu.Unlock()
		if s != nil {
			h.markDirty(s)
		}
	}
}

// PublishEphemeral sends an event that is not stored (a typing indicator) to
// whoever is subscribed now, in every process. It has no sequence number and
// is not resumed.
func (h *Hub) PublishEphemeral(ctx context.Context, e Event) error {
	if err := e.validate(); err != nil {
		return err
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return fmt.Errorf("ephemeral %s: %w", e.Type, err)
	}
	payload, err := json.Marshal(ephemeralPayload{AccountID: e.AccountID, Stream: e.Stream, Type: e.Type, Data: data})
	if err != nil {
		return fmt.Errorf("ephemeral %s: %w", e.Type, err)
	}
	if len(payload) > maxEphemeralBytes {
		return fmt.Errorf("ephemeral %s: payload of %d bytes is too large", e.Type, len(payload))
	}
	_, err = h.db.Exec(ctx, "SELECT pg_notify($1, $2)", ephemeralChannel, string(payload))
	return err
}

const (
	feedHead = `SELECT coalesce(max(change_id), 0) FROM stream_heads`
	feedRead = `
SELECT account_id, stream, last_seq, change_id FROM stream_heads
WHERE change_id > $1 ORDER BY change_id LIMIT $2`
	feedBatch = 2000
)

func (h *Hub) feedStart(ctx context.Context) (int64, error) {
	var w int64
	if err := h.db.QueryRow(ctx, feedHead).Scan(&w); err != nil {
		return 0, fmt.Errorf("hub: read change feed: %w", err)
	}
	return w, nil
}

// feedLoop reads the heads that changed since it last looked and wakes the
// streams someone here follows. Change ids are taken just before commit, so
// two transactions can commit in the other order and a read can pass over
// a change that commits a moment later. So every tenth read goes back
// FeedOverlap (those changes are read again and cheaply ignored), and a
// change later still is caught by the full poll.
func (h *Hub) feedLoop(ctx context.Context, watermark int64) {
	type mark struct {
		at time.Time
		id int64
	}
	var marks []mark // maxima seen, oldest first
	maxSeen := watermark
	t := time.NewTicker(h.cfg.FeedInterval)
	defer t.Stop()
	for tick := 0; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		for len(marks) > 0 && now.Sub(marks[0].at) >= h.cfg.FeedOverlap {
			watermark = max(watermark, marks[0].id)
			marks = marks[1:]
		}
		from := maxSeen
		if tick%10 == 0 {
			from = watermark
		}
		for {
			n, top, err := h.feedOnce(ctx, from)
			if err != nil {
				if ctx.Err() == nil {
					h.log.Warn("hub: read change feed", "err", err)
				}
				break
			}
			maxSeen = max(maxSeen, top)
			if n < feedBatch {
				break
			}
			from = top // a burst: page on
		}
		marks = append(marks, mark{now, maxSeen})
	}
}

func (h *Hub) feedOnce(ctx context.Context, from int64) (n int, top int64, err error) {
	rows, err := h.db.Query(ctx, feedRead, from, feedBatch)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	var k streamKey
	var head, change int64
	for rows.Next() {
		if err := rows.Scan(&k.account, &k.name, &head, &change); err != nil {
			return n, top, err
		}
		n++
		top = change
		h.mu.Lock()
		s := h.streams[k]
		h.mu.Unlock()
		if s != nil && s.behind(head) {
			h.stats.FeedWakes.Add(1)
			h.markDirty(s)
		}
	}
	return n, top, rows.Err()
}

const pollHeads = `
SELECT w.account_id, w.stream, coalesce(h.last_seq, 0)
FROM unnest($1::bigint[], $2::text[]) AS w(account_id, stream)
LEFT JOIN stream_heads h ON h.account_id = w.account_id AND h.stream = w.stream`

// pollLoop reads the heads of every stream someone here is subscribed to
// and wakes those that moved. Correctness never depends on a notification.
func (h *Hub) pollLoop(ctx context.Context) {
	t := time.NewTicker(h.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := h.pollOnce(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("hub: poll stream heads", "err", err)
		}
	}
}

func (h *Hub) pollOnce(ctx context.Context) error {
	h.mu.Lock()
	accts := make([]int64, 0, len(h.streams))
	names := make([]string, 0, len(h.streams))
	for k := range h.streams {
		accts = append(accts, k.account)
		names = append(names, k.name)
	}
	h.mu.Unlock()
	if len(accts) == 0 {
		return nil
	}
	rows, err := h.db.Query(ctx, pollHeads, accts, names)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k streamKey
		var head int64
		if err := rows.Scan(&k.account, &k.name, &head); err != nil {
			return err
		}
		h.mu.Lock()
		s := h.streams[k]
		h.mu.Unlock()
		if s != nil && s.stale(head) {
			h.stats.PollWakes.Add(1)
			h.markDirty(s)
		}
	}
	return rows.Err()
}

const (
	pruneLock     = 0x61676e747374 // one pruner at a time across processes
	pruneAccounts = `SELECT DISTINCT account_id FROM stream_heads`
	pruneAccount  = `
WITH old AS (
    SELECT stream, max(seq) AS upto
    FROM stream_events
    WHERE account_id = $1 AND created_at < $2 AND seq IS NOT NULL
    GROUP BY stream
)
DELETE FROM stream_events e
USING old
WHERE e.account_id = $1 AND e.stream = old.stream AND e.seq <= old.upto`
)

func (h *Hub) pruneLoop(ctx context.Context) {
	t := time.NewTicker(h.cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := h.Prune(ctx, time.Now().Add(-h.cfg.Retention)); err != nil && ctx.Err() == nil {
			h.log.Warn("hub: prune events", "err", err)
		} else if n > 0 {
			h.log.Info("hub: pruned events", "count", n)
		}
	}
}

// Prune deletes events created before cutoff and returns how many. It deletes
// whole prefixes of each stream (up to the highest old sequence number), so
// what remains of a stream is always contiguous and a reader can tell
// "pruned" from "not there yet".
func (h *Hub) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	err := pgx.BeginFunc(ctx, h.db, func(tx pgx.Tx) error {
		var got bool
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", pruneLock).Scan(&got); err != nil || !got {
			return err
		}
		rows, err := tx.Query(ctx, pruneAccounts)
		if err != nil {
			return err
		}
		accts, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, a := range accts {
			tag, err := tx.Exec(ctx, pruneAccount, a, cutoff)
			if err != nil {
				return fmt.Errorf("account %d: %w", a, err)
			}
			total += tag.RowsAffected()
		}
		return nil
	})
	return total, err
}
