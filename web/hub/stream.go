package hub

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

type streamKey struct {
	account int64
	name    string
}

// stream is this process's view of one durable stream: who is subscribed
// and how far each subscriber has been served. At most one worker serves a
// stream at a time (queued), so frames reach each subscriber in order.
type stream struct {
	key streamKey

	mu     sync.Mutex
	subs   []*sub // a slice: most streams have one subscriber, and a map costs ~200 bytes
	known  int64  // highest sequence number this process has read
	queued bool   // in the work queue or being served
	dirty  bool   // must be served (again)
}

// sub is one connection's position in one stream.
type sub struct {
	c    *conn
	want int64 // pending: last seq the client has, -1 = start from now
	last int64 // active: last seq sent to the client
	// held: nothing after last is sent until the connection's rights are
	// re-checked (an access.changed event on the stream, or a resync of a
	// ticket stream, which may have skipped one); 0 = not held. cleared:
	// the last seq such a re-check passed (access.go).
	held, cleared int64
	pending       bool // resumed, not yet answered with subscribed/resync
	// internal: the hub's own subscription to the agent's access stream;
	// nothing is sent, a new event makes the connection re-check its rights.
	// (The bools last: 48 bytes instead of 56, a smaller size class.)
	internal bool
}

func (s *stream) behind(seq int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return seq > s.known
}

// stale reports whether the poll should wake s: behind head, or a
// subscriber still waiting for its answer (a failed read leaves one).
func (s *stream) stale(head int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return head > s.known || hasPendingSubs(s)
}

// workQueue is an unbounded FIFO of streams to serve. A stream is in it at
// most once (stream.queued), so its length is bounded by the streams in use.
type workQueue struct {
	mu     sync.Mutex
	items  []*stream
	wake   chan struct{}
	closed bool
}

func newWorkQueue() workQueue { return workQueue{wake: make(chan struct{}, 1)} }

func (q *workQueue) push(s *stream) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, s)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop takes up to n streams, waiting for at least one.
func (q *workQueue) pop(ctx context.Context, n int) ([]*stream, bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, false
		}
		if len(q.items) > 0 {
			n = min(n, len(q.items))
			s := slices.Clone(q.items[:n])
			clear(q.items[:n])
			q.items = q.items[n:]
			more := len(q.items) > 0
			q.mu.Unlock()
			if more { // pass the wake-up on to another worker
				select {
				case q.wake <- struct{}{}:
				default:
				}
			}
			return s, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil, false
		}
	}
}

func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.items = nil
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (h *Hub) markDirty(s *stream) {
	s.mu.Lock()
	s.dirty = true
	enqueue := !s.queued
	s.queued = true
	s.mu.Unlock()
	if enqueue {
		h.work.push(s)
	}
}

// readBatch is how many streams one query reads: a burst (a mass
// reconnect, a busy minute) costs a query per batch, not per stream.
const readBatch = 64

func (h *Hub) worker(ctx context.Context) {
	for {
		batch, ok := h.work.pop(ctx, readBatch)
		if !ok {
			return
		}
		reads := make([]streamRead, 0, len(batch))
		for _, s := range batch {
			s.mu.Lock()
			s.dirty = false
			s.mu.Unlock()
			if r, ok := h.plan(s); ok {
				reads = append(reads, r)
			}
		}
		if err := h.read(ctx, reads); err != nil && ctx.Err() == nil {
			// The next poll marks the streams again; nothing is lost.
			h.log.Warn("hub: read streams", "streams", len(reads), "err", err)
		}
		for _, r := range reads {
			h.snapshot(ctx, r.s.key, h.apply(r))
		}
		for _, s := range batch {
			s.mu.Lock()
			again := s.dirty && ctx.Err() == nil
			if !again {
				s.queued = false
			}
			s.mu.Unlock()
			if again { // still queued: back of the line, fair to the others
				h.work.push(s)
			}
		}
	}
}

// subscribe registers c on a stream; want is the last seq the client has
// (-1: start from now). The worker answers with "subscribed" or "resync".
func (h *Hub) subscribe(c *conn, key streamKey, want int64) *stream {
	h.mu.Lock()
	s := h.streams[key]
	if s == nil {
		s = &stream{key: key, known: -1}
		h.streams[key] = s
	}
	s.mu.Lock()
	nsb := &sub{c: c, pending: true, want: want}
	if i := s.subIndex(c); i >= 0 {
		s.subs[i] = nsb // a new resume replaces c's position
	} else {
		s.subs = append(s.subs, nsb)
	}
	s.mu.Unlock()
	h.mu.Unlock()
	h.markDirty(s)
	return s
}

func (h *Hub) unsubscribe(c *conn, s *stream) {
	h.mu.Lock()
	s.mu.Lock()
	if i := s.subIndex(c); i >= 0 {
		s.subs = slices.Delete(s.subs, i, i+1)
	}
	if len(s.subs) == 0 && h.streams[s.key] == s {
		delete(h.streams, s.key)
	}
	s.mu.Unlock()
	h.mu.Unlock()
}

// readStreams returns, for each stream asked, its head and up to lim
// events after from_seq, all from one snapshot. Ordinality ties rows back.
const readStreams = `
SELECT w.i, coalesce(h.last_seq, 0), e.seq, e.type, e.data
FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::int[]) WITH ORDINALITY
     AS w(account_id, stream, from_seq, lim, i)
LEFT JOIN stream_heads h ON h.account_id = w.account_id AND h.stream = w.stream
LEFT JOIN LATERAL (
    SELECT seq, type, data FROM stream_events
    WHERE account_id = w.account_id AND stream = w.stream AND seq > w.from_seq
    ORDER BY seq LIMIT w.lim
) e ON true
ORDER BY w.i, e.seq`

type storedEvent struct {
	seq   int64
	frame []byte
	// recheck: an access.changed event. Who may follow the stream may have
	// changed (a ticket moved to another team): each follower's rights are
	// re-checked before it gets this event or any after it.
	recheck bool
}

// streamRead is one stream's part of a batched read.
type streamRead struct {
	s      *stream
	from   int64 // events after this; MaxInt64 when only the head is needed
	limit  int
	head   int64
	events []storedEvent
	ok     bool // the read succeeded
}

// envelope is every server→client frame.
type envelope struct {
	Type   string          `json:"type"`
	Stream string          `json:"stream,omitempty"`
	Seq    int64           `json:"seq,omitempty"`
	ID     string          `json:"id,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

func marshalFrame(e envelope) []byte {
	b, err := json.Marshal(e)
	if err != nil { // only RawMessage that is not JSON; ours always is
		panic(err)
	}
	return b
}

// plan decides what to read for s: from the lowest position among its
// subscribers.
func (h *Hub) plan(s *stream) (streamRead, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.subs) == 0 {
		return streamRead{}, false
	}
	from := int64(math.MaxInt64)
	now := time.Now()
	for _, sb := range s.subs {
		c := sb.c
		switch {
		case sb.internal: // only the head is needed
		case sb.held != 0: // nothing is sent until its re-check
		case sb.pending && sb.want >= 0:
			from = min(from, sb.want)
		case !sb.pending && sb.last < s.known && c.room(s, now) != sent:
			// Its queue is full: a slow reader must not make every read
			// of the stream start from its position. Its writer wakes s
			// when there is room.
		case !sb.pending:
			from = min(from, sb.last)
		}
	}
	limit := h.cfg.FetchBatch
	if from == math.MaxInt64 {
		limit = 0 // only the head is needed
	}
	return streamRead{s: s, from: from, limit: limit}, true
}

// read runs one query for all of reads.
func (h *Hub) read(ctx context.Context, reads []streamRead) error {
	if len(reads) == 0 {
		return nil
	}
	accts := make([]int64, len(reads))
	names := make([]string, len(reads))
	froms := make([]int64, len(reads))
	limits := make([]int32, len(reads))
	for i, r := range reads {
		accts[i], names[i], froms[i], limits[i] = r.s.key.account, r.s.key.name, r.from, int32(r.limit)
	}
	h.stats.Fetches.Add(1)
	rows, err := h.db.Query(ctx, readStreams, accts, names, froms, limits)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var i, head int64
		var seq *int64
		var typ *string
		var data []byte
		if err := rows.Scan(&i, &head, &seq, &typ, &data); err != nil {
			return err
		}
		r := &reads[i-1]
		r.head, r.ok = head, true
		if seq != nil {
			r.events = append(r.events, storedEvent{*seq, marshalFrame(envelope{Type: *typ, Stream: r.s.key.name, Seq: *seq, Data: data}), *typ == AccessChanged})
		}
	}
	if err := rows.Err(); err != nil {
		for i := range reads {
			reads[i].ok = false
		}
		return err
	}
	return nil
}

// apply queues to the subscribers of r.s what they are missing. It returns
// the connections it told to resync (they get the stream's snapshot).
func (h *Hub) apply(r streamRead) (resynced []*conn) {
	if !r.ok {
		return nil
	}
	s, head, events := r.s, r.head, r.events
	from, limit := r.from, r.limit
	// Retained events are a contiguous suffix of the stream (Prune deletes
	// prefixes), so the first one read tells what was pruned.
	firstRetained := head + 1
	if len(events) > 0 {
		firstRetained = events[0].seq
	}
	truncated := limit > 0 && len(events) == limit

	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if top := head; top > s.known {
		if truncated {
			top = events[len(events)-1].seq
		}
		s.known = top
	}
	again := false
	for _, sb := range s.subs {
		c := sb.c
		if sb.internal {
			if sb.pending {
				// The connection's rights were read before this first
				// read: a change committed in between is already behind
				// head. A stream with any change at all is re-checked
				// once; one that never had a change (most) costs nothing.
				sb.pending, sb.last = false, head
				if head > 0 {
					c.recheck()
				}
			} else if head > sb.last {
				sb.last = head
				c.recheck()
			}
			continue
		}
		if sb.pending {
			switch {
			case sb.want >= 0 && sb.want < from:
				continue // joined after this read was planned; served next round
			case sb.want < 0:
				sb.last = head
				c.send(marshalFrame(envelope{Type: "subscribed", Stream: s.key.name, Seq: head}))
			case sb.want > head || head-sb.want > h.cfg.MaxBacklog || (sb.want < head && sb.want+1 < firstRetained):
				h.resync(c, sb, s.key.name, head)
				resynced = append(resynced, c)
			default:
				sb.last = sb.want
				c.send(marshalFrame(envelope{Type: "subscribed", Stream: s.key.name, Seq: sb.want}))
			}
			sb.pending = false
		}
		if sb.held != 0 {
			continue // its re-check releases it (access.go)
		}
		if sb.last < from {
			// Left out of this read (its queue was full), so firstRetained
			// says nothing about it. Still full: its writer wakes s. Room
			// again: read once more.
			if head-sb.last > h.cfg.MaxBacklog {
				h.resync(c, sb, s.key.name, head)
				resynced = append(resynced, c)
			} else if c.room(s, now) == sent {
				again = true
			}
			continue
		}
		if sb.last < head && (head-sb.last > h.cfg.MaxBacklog || sb.last+1 < firstRetained) {
			h.resync(c, sb, s.key.name, head)
			resynced = append(resynced, c)
			continue
		}
		res := sent
		for _, e := range events {
			if e.seq != sb.last+1 {
				continue
			}
			if e.recheck && e.seq > sb.cleared {
				sb.held = e.seq
				c.recheck()
				break
			}
			// full: the writer marks s dirty when it takes the queue.
			// gone: the reader unsubscribes c.
			if res = c.offer(e.frame, s, now); res != sent {
				break
			}
			sb.last = e.seq
			h.stats.EventsSent.Add(1)
		}
		if res == sent && sb.held == 0 && sb.last < head {
			again = true
		}
	}
	if again || hasPendingSubs(s) {
		s.dirty = true
	}
	return resynced
}

func (s *stream) subIndex(c *conn) int {
	return slices.IndexFunc(s.subs, func(sb *sub) bool { return sb.c == c })
}

func hasPendingSubs(s *stream) bool {
	for _, sb := range s.subs {
		if sb.pending {
			return true
		}
	}
	return false
}

// resync tells the client its copy of the stream cannot be brought up to
// date event by event: it reloads its state and continues after head.
func (h *Hub) resync(c *conn, sb *sub, name string, head int64) {
	h.stats.Resyncs.Add(1)
	sb.last = head
	c.send(marshalFrame(envelope{Type: "resync", Stream: name, Seq: head}))
	if strings.HasPrefix(name, "ticket:") {
		// The skipped events may have moved the ticket out of c's sight.
		sb.held = head
		c.recheck()
	}
}
