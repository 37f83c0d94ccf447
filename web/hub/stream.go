package hub

import (
	"context"
	"encoding/json"
	"math"
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
	subs   map[*conn]*sub
	known  int64 // highest sequence number this process has read
	queued bool  // in the work queue or being served
	dirty  bool  // must be served (again)
}

// sub is one connection's position in one stream.
type sub struct {
	pending bool  // resumed, not yet answered with subscribed/resync
	want    int64 // pending: last seq the client has, -1 = start from now
	last    int64 // active: last seq sent to the client
}

func (s *stream) behind(seq int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return seq > s.known
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

func (q *workQueue) pop(ctx context.Context) (*stream, bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, false
		}
		if len(q.items) > 0 {
			s := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
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

// markAllDirty is for after a listener reconnect: notifications may have
// been lost, so every stream is read again.
func (h *Hub) markAllDirty() {
	h.mu.Lock()
	all := make([]*stream, 0, len(h.streams))
	for _, s := range h.streams {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		h.markDirty(s)
	}
}

func (h *Hub) worker(ctx context.Context) {
	for {
		s, ok := h.work.pop(ctx)
		if !ok {
			return
		}
		for {
			s.mu.Lock()
			s.dirty = false
			s.mu.Unlock()
			if err := h.serve(ctx, s); err != nil && ctx.Err() == nil {
				// The next poll marks the stream again; nothing is lost.
				h.log.Warn("hub: read stream", "stream", s.key.name, "account", s.key.account, "err", err)
			}
			s.mu.Lock()
			if !s.dirty || ctx.Err() != nil {
				s.queued = false
				s.mu.Unlock()
				break
			}
			s.mu.Unlock()
		}
	}
}

// subscribe registers c on a stream; want is the last seq the client has
// (-1: start from now). The worker answers with "subscribed" or "resync".
func (h *Hub) subscribe(c *conn, key streamKey, want int64) *stream {
	h.mu.Lock()
	s := h.streams[key]
	if s == nil {
		s = &stream{key: key, subs: map[*conn]*sub{}, known: -1}
		h.streams[key] = s
	}
	s.mu.Lock()
	s.subs[c] = &sub{pending: true, want: want}
	s.mu.Unlock()
	h.mu.Unlock()
	h.markDirty(s)
	return s
}

func (h *Hub) unsubscribe(c *conn, s *stream) {
	h.mu.Lock()
	s.mu.Lock()
	delete(s.subs, c)
	if len(s.subs) == 0 && h.streams[s.key] == s {
		delete(h.streams, s.key)
	}
	s.mu.Unlock()
	h.mu.Unlock()
}

// readStream returns the head and up to limit events after from, in one
// statement so both come from the same snapshot.
const readStream = `
SELECT coalesce(h.last_seq, 0), e.seq, e.type, e.data
FROM (SELECT 1) AS one
LEFT JOIN stream_heads h ON h.account_id = $1 AND h.stream = $2
LEFT JOIN LATERAL (
    SELECT seq, type, data FROM stream_events
    WHERE account_id = $1 AND stream = $2 AND seq > $3
    ORDER BY seq LIMIT $4
) e ON true
ORDER BY e.seq`

type storedEvent struct {
	seq   int64
	frame []byte
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

// serve reads what the subscribers of s are missing and queues it to them.
func (h *Hub) serve(ctx context.Context, s *stream) error {
	s.mu.Lock()
	if len(s.subs) == 0 {
		s.mu.Unlock()
		return nil
	}
	from := int64(math.MaxInt64)
	for _, sb := range s.subs {
		switch {
		case sb.pending && sb.want >= 0:
			from = min(from, sb.want)
		case !sb.pending:
			from = min(from, sb.last)
		}
	}
	s.mu.Unlock()

	limit := h.cfg.FetchBatch
	if from == math.MaxInt64 {
		limit = 0 // only the head is needed
	}
	h.stats.Fetches.Add(1)
	rows, err := h.db.Query(ctx, readStream, s.key.account, s.key.name, from, limit)
	if err != nil {
		return err
	}
	var head int64
	var events []storedEvent
	for rows.Next() {
		var seq *int64
		var typ *string
		var data []byte
		if err := rows.Scan(&head, &seq, &typ, &data); err != nil {
			rows.Close()
			return err
		}
		if seq == nil {
			continue
		}
		events = append(events, storedEvent{*seq, marshalFrame(envelope{Type: *typ, Stream: s.key.name, Seq: *seq, Data: data})})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

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
	for c, sb := range s.subs {
		if sb.pending {
			switch {
			case sb.want < 0:
				sb.last = head
				c.send(marshalFrame(envelope{Type: "subscribed", Stream: s.key.name, Seq: head}))
			case sb.want > head || head-sb.want > h.cfg.MaxBacklog || (sb.want < head && sb.want+1 < firstRetained):
				h.resync(c, sb, s.key.name, head)
			case sb.want < from:
				continue // joined after this read started; served next round
			default:
				sb.last = sb.want
				c.send(marshalFrame(envelope{Type: "subscribed", Stream: s.key.name, Seq: sb.want}))
			}
			sb.pending = false
		}
		if sb.last < head && (head-sb.last > h.cfg.MaxBacklog || sb.last+1 < firstRetained) {
			h.resync(c, sb, s.key.name, head)
			continue
		}
		res := sent
		for _, e := range events {
			if e.seq != sb.last+1 {
				continue
			}
			// full: the writer marks s dirty when it takes the queue.
			// gone: the reader unsubscribes c.
			if res = c.offer(e.frame, s, now); res != sent {
				break
			}
			sb.last = e.seq
			h.stats.EventsSent.Add(1)
		}
		if res == sent && sb.last < head {
			again = true
		}
	}
	if again || hasPendingSubs(s) {
		s.dirty = true
	}
	return nil
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
}
