package hub

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// expiries re-checks connections when the sessions that opened them
// expire (access.go): one goroutine per hub and a min-heap of connections
// by expiry, instead of a time.AfterFunc per connection — a timer and its
// callback cost ~130 bytes of every idle connection, a slot here 8 (plus
// two fields in conn that fit in its size class). A connection leaves the
// heap when it comes due or when it ends (readEnded), so the heap holds
// at most the open connections that have a session.
type expiries struct {
	mu   sync.Mutex
	due  connHeap
	wake chan struct{} // the earliest expiry changed
}

func newExpiries() expiries { return expiries{wake: make(chan struct{}, 1)} }

// set (re)schedules c for at; a zero at unschedules it. Called with c.mu
// held (lock order: conn, then expiries), so a closed connection is never
// put back after readEnded took it out.
func (e *expiries) set(c *conn, at time.Time) {
	if at.IsZero() {
		e.remove(c)
		return
	}
	e.mu.Lock()
	c.expiresAt = at.UnixNano()
	if c.expirySlot != 0 {
		heap.Fix(&e.due, int(c.expirySlot-1))
	} else {
		heap.Push(&e.due, c)
	}
	first := c.expirySlot == 1
	e.mu.Unlock()
	if first {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// remove unschedules c, if it is scheduled.
func (e *expiries) remove(c *conn) {
	e.mu.Lock()
	if c.expirySlot != 0 {
		heap.Remove(&e.due, int(c.expirySlot-1))
	}
	e.mu.Unlock()
}

// len is how many connections are scheduled.
func (e *expiries) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.due)
}

// run calls fire (outside the lock) for every connection whose expiry has
// come, taking it off the heap, until ctx ends. fire re-reads the session;
// a renewed one schedules the connection again.
func (e *expiries) run(ctx context.Context, fire func(*conn)) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	var fired []*conn
	for {
		e.mu.Lock()
		now := time.Now().UnixNano()
		for len(e.due) > 0 && e.due[0].expiresAt <= now {
			fired = append(fired, heap.Pop(&e.due).(*conn))
		}
		wait := time.Duration(-1)
		if len(e.due) > 0 {
			wait = time.Duration(e.due[0].expiresAt - now)
		}
		e.mu.Unlock()
		for i, c := range fired {
			fire(c)
			fired[i] = nil
		}
		fired = fired[:0]
		if wait >= 0 {
			t.Reset(wait)
		} else {
			t.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.wake:
		}
	}
}

// connHeap orders connections by expiresAt; each knows its slot
// (index + 1, 0 when not in the heap).
type connHeap []*conn

func (h connHeap) Len() int           { return len(h) }
func (h connHeap) Less(i, j int) bool { return h[i].expiresAt < h[j].expiresAt }
func (h connHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].expirySlot, h[j].expirySlot = int32(i+1), int32(j+1)
}
func (h *connHeap) Push(x any) {
	c := x.(*conn)
	c.expirySlot = int32(len(*h) + 1)
	*h = append(*h, c)
}
func (h *connHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	if cap(old) > 1024 && len(*h) < cap(old)/4 { // a crowd left: give back its room
		*h = append(connHeap(nil), *h...)
	}
	c.expirySlot = 0
	return c
}
