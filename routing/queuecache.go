package routing

import (
	"context"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// queueCache keeps the queue a new task goes to, so that an enqueue does not
// first ask the database for it: every enqueue needs the queue's channels,
// hours, skills, team and timeouts, and they change rarely.
//
// An entry is never trusted blindly. It carries the version of the queue row
// it was read from (the row's xmin, which every update changes), and the
// enqueue statement inserts the task only while that is still the queue's
// version and, for a task sent to its channel's default queue, while the
// queue is still the default. A change made by any process therefore costs
// the next enqueue one more read, never a task routed by stale settings.
type queueCache struct {
	mu      sync.Mutex
	entries map[queueKey]cachedQueue
}

// queueKey names what an enqueue asked for: a queue by id, or (queue 0) the
// default queue of a channel.
type queueKey struct {
	account, queue int64
	channel        agentdesk.Channel
}

type cachedQueue struct {
	q       *Queue
	version int64
}

// maxCachedQueues bounds the cache; past it, the cache starts over. Even a
// large installation has far fewer queues.
const maxCachedQueues = 10000

func keyFor(req *agentdesk.TaskRequest) queueKey {
	if req.QueueID != 0 {
		return queueKey{account: req.AccountID, queue: req.QueueID}
	}
	return queueKey{account: req.AccountID, channel: req.Channel}
}

func (c *queueCache) get(k queueKey) (cachedQueue, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q, ok := c.entries[k]
	return q, ok
}

func (c *queueCache) put(k queueKey, q cachedQueue) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCachedQueues {
		c.entries = map[queueKey]cachedQueue{}
	}
	c.entries[k] = q
}

func (c *queueCache) drop(k queueKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}

// loadQueue reads the queue a new task goes to (the one asked for, else the
// channel's default queue) with its version, creating the channel's default
// queue for an account's very first contact on it.
func loadQueue(ctx context.Context, db querier, req *agentdesk.TaskRequest) (cachedQueue, error) {
	read := func() (cachedQueue, error) {
		var c cachedQueue
		q, err := scanQueue(versioned{db.QueryRow(ctx, `SELECT `+queueColumns+`, xmin::text::bigint FROM queues
WHERE account_id = $1 AND id = CASE WHEN $2::bigint <> 0 THEN $2::bigint ELSE (
	SELECT queue_id FROM queue_defaults WHERE account_id = $1 AND channel = ANY($3)
	ORDER BY channel = $4 DESC LIMIT 1) END`,
			req.AccountID, req.QueueID, defaultChannels(req.Channel), string(req.Channel)), &c.version})
		c.q = q
		return c, err
	}
	c, err := read()
	if errors.Is(err, pgx.ErrNoRows) && req.QueueID == 0 {
		if _, err := defaultQueue(ctx, db, req.AccountID, req.Channel); err != nil {
			return c, err
		}
		c, err = read()
	}
	if err != nil {
		return c, translate(err, "queue")
	}
	return c, nil
}

// defaultChannels are the queue_defaults rows a channel's tasks may use: the
// exact channel's first, then its capacity channel's.
func defaultChannels(ch agentdesk.Channel) []string {
	return []string{string(ch), string(ch.CapacityChannel())}
}

// versioned scans a queue row followed by its version.
type versioned struct {
	row     pgx.Row
	version *int64
}

func (v versioned) Scan(dest ...any) error { return v.row.Scan(append(dest, v.version)...) }

// errQueueChanged says the queue changed between the engine's read and the
// enqueue; the enqueue reads it again.
var errQueueChanged = errors.New("routing: queue changed while enqueuing")
