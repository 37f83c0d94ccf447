package hub

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

// The hub's expiries fire each connection once its time has come, in order
// of expiry; a rescheduled one fires at its new time, an unscheduled or
// ended one never; and nothing stays behind in the heap.
func TestExpiriesFireWhenDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newExpiries()
		var mu sync.Mutex
		var fired []string
		names := map[*conn]string{}
		fire := func(c *conn) {
			mu.Lock()
			fired = append(fired, names[c])
			mu.Unlock()
		}
		firedSoFar := func() []string {
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), fired...)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.run(ctx, fire) }()

		start := time.Now()
		conns := map[string]*conn{}
		for _, n := range []string{"a", "b", "c", "d", "e", "renewed"} {
			c := &conn{}
			conns[n], names[c] = c, n
		}
		e.set(conns["c"], start.Add(3*time.Second))
		e.set(conns["a"], start.Add(1*time.Second))
		e.set(conns["b"], start.Add(2*time.Second))
		e.set(conns["d"], start.Add(4*time.Second))
		e.set(conns["e"], start.Add(4*time.Second))
		e.set(conns["renewed"], start.Add(1500*time.Millisecond))
		e.set(conns["renewed"], start.Add(5*time.Second)) // renewed before it came due
		e.remove(conns["d"])                              // ended
		e.set(conns["e"], time.Time{})                    // no session any more
		if got := e.len(); got != 4 {
			t.Fatalf("scheduled: %d, want 4", got)
		}

		time.Sleep(2500 * time.Millisecond)
		if diff := cmp.Diff([]string{"a", "b"}, firedSoFar()); diff != "" {
			t.Errorf("fired by 2.5s (-want +got):\n%s", diff)
		}
		// One scheduled earlier than all others wakes the loop early.
		e.set(conns["a"], time.Now().Add(100*time.Millisecond))
		time.Sleep(200 * time.Millisecond)
		if diff := cmp.Diff([]string{"a", "b", "a"}, firedSoFar()); diff != "" {
			t.Errorf("fired by 2.7s (-want +got):\n%s", diff)
		}
		time.Sleep(10 * time.Second)
		if diff := cmp.Diff([]string{"a", "b", "a", "c", "renewed"}, firedSoFar()); diff != "" {
			t.Errorf("fired in the end (-want +got):\n%s", diff)
		}
		if got := e.len(); got != 0 {
			t.Errorf("left in the heap: %d", got)
		}
		for n, c := range conns {
			if c.expirySlot != 0 {
				t.Errorf("%s still has slot %d", n, c.expirySlot)
			}
		}
		cancel()
		<-done
	})
}

// Many connections that come and go leave nothing scheduled, whatever the
// order they end in.
func TestExpiriesRemoveLeavesNothing(t *testing.T) {
	e := newExpiries()
	now := time.Now()
	var cs []*conn
	for i := range 5000 {
		c := &conn{}
		e.set(c, now.Add(time.Duration((i*7919)%5000)*time.Second))
		cs = append(cs, c)
	}
	for i := range cs {
		e.remove(cs[(i*104729)%len(cs)])
		if i%500 == 0 {
			checkHeap(t, &e)
		}
	}
	if got := e.len(); got != 0 {
		t.Errorf("left in the heap: %d", got)
	}
	if cap(e.due) > 1024 {
		t.Errorf("the heap kept room for %d connections after all ended", cap(e.due))
	}
}

func checkHeap(t *testing.T, e *expiries) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, c := range e.due {
		if int(c.expirySlot) != i+1 {
			t.Fatalf("connection at %d has slot %d", i, c.expirySlot)
		}
		if i > 0 && e.due[(i-1)/2].expiresAt > c.expiresAt {
			t.Fatalf("heap order broken at %d", i)
		}
	}
}

// What every idle connection holds stays in the allocator's size classes
// it was measured in (BENCHMARKS.md, Realtime): a field added to conn or
// sub must find room or be worth a larger class.
func TestIdleConnectionStructSizes(t *testing.T) {
	if got := unsafe.Sizeof(conn{}); got > 288 {
		t.Errorf("conn is %d bytes, over its 288-byte size class", got)
	}
	if got := unsafe.Sizeof(sub{}); got > 48 {
		t.Errorf("sub is %d bytes, over its 48-byte size class", got)
	}
}
