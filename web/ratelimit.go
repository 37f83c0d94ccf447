package web

import (
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter keeps one token bucket per key (client address, email,
// visitor), forgetting keys idle for longer than an interval so memory stays
// bounded under a spray of addresses.
type keyedLimiter struct {
	mu      sync.Mutex
	perMin  int
	idle    time.Duration
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newKeyedLimiter(perMinute int, idle time.Duration) *keyedLimiter {
	return &keyedLimiter{perMin: perMinute, idle: idle, buckets: map[string]*bucket{}}
}

// Allow takes one token from key's bucket.
func (l *keyedLimiter) Allow(key string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > l.idle {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > l.idle {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(rate.Every(time.Minute/time.Duration(l.perMin)), l.perMin)}
		l.buckets[key] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
