package hub

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter holds token buckets per visitor and per IP for customer messages.
// Buckets idle for a while are dropped so the maps stay small.
type limiter struct {
	visitorRate, ipRate   rate.Limit
	visitorBurst, ipBurst int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiter(cfg Config) *limiter {
	return &limiter{
		visitorRate: rate.Limit(cfg.VisitorRate), visitorBurst: int(cfg.VisitorBurst),
		ipRate: rate.Limit(cfg.IPRate), ipBurst: int(cfg.IPBurst),
		buckets: map[string]*bucket{},
	}
}

// allow takes one token from the visitor's and the IP's bucket.
func (l *limiter) allow(now time.Time, visitorKey, ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.get("v:"+visitorKey, now, l.visitorRate, l.visitorBurst)
	i := l.get("ip:"+ip, now, l.ipRate, l.ipBurst)
	if !v.AllowN(now, 1) {
		return false
	}
	if !i.AllowN(now, 1) {
		return false
	}
	return true
}

func (l *limiter) get(key string, now time.Time, r rate.Limit, burst int) *rate.Limiter {
	b := l.buckets[key]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(r, burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b.l
}

func (l *limiter) sweepLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			l.mu.Lock()
			for k, b := range l.buckets {
				if now.Sub(b.seen) > 10*time.Minute {
					delete(l.buckets, k)
				}
			}
			l.mu.Unlock()
		}
	}
}
