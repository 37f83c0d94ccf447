package routing

import (
	"context"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// QueueStats is the live picture of one queue, as supervisors see it.
type QueueStats struct {
	QueueID            int64        `json:"queue_id"`
	Name               string       `json:"name"`
	Waiting            int          `json:"waiting"`
	Offered            int          `json:"offered"`
	LongestWaitSeconds int          `json:"longest_wait_seconds"`
	EWTSeconds         int          `json:"ewt_seconds"` // for a contact arriving now
	AgentsAvailable    int          `json:"agents_available"`
	AgentsBusy         int          `json:"agents_busy"`
	AnsweredToday      int          `json:"answered_today"`
	AbandonedToday     int          `json:"abandoned_today"`
	ServiceLevelToday  float64      `json:"service_level_today"` // percent answered within target, of answered + abandoned
	ServiceLevelTarget ServiceLevel `json:"service_level_target"`
}

// Position is what a waiting customer is told.
type Position struct {
	TaskID     int64 `json:"task_id"`
	State      State `json:"state"`
	Position   int   `json:"position"` // 1 = next; 0 when no longer waiting
	EWTSeconds int   `json:"ewt_seconds"`
}

// queueStatsQuery gives one row per queue: waiting and offered tasks, today
// (midnight in the queue's time zone) answered/abandoned counts, agents.
// Each part reads a partial index or a small table, never the queue's
// history:
//   - the longest wait is the older of the oldest queued and the oldest
//     offered task, each counted and aged by one aggregate. A min() alone
//     would be planned as the first row of tasks_queue_day in enqueued_at
//     order that is offered, walking every task the queue ever had (27 ms
//     with a day of history, growing with it); next to count(*) it reads
//     the partial index's rows only. One "state IN" would walk the day's
//     tasks the same way;
//   - the agents' slots are the capacity columns matching uses, not
//     agents.capacity parsed per agent.
const queueStatsQuery = `
SELECT q.id, q.name, q.sl_target_seconds, q.sl_target_percent, coalesce(q.channels[1], 'chat'),
	w.n, o.n, least(w.oldest, o.oldest),
	d.answered, d.within, d.abandoned,
	a.available, a.busy, a.slots, h.aht
FROM queues q
CROSS JOIN LATERAL (
	SELECT count(*) AS n, min(t.enqueued_at) AS oldest FROM tasks t
	WHERE t.account_id = q.account_id AND t.queue_id = q.id AND t.state = 'queued'
) w
CROSS JOIN LATERAL (
	SELECT count(*) AS n, min(t.enqueued_at) AS oldest FROM tasks t
	WHERE t.account_id = q.account_id AND t.queue_id = q.id AND t.state = 'offered'
) o
CROSS JOIN LATERAL (
	SELECT coalesce(sum(c.answered), 0) AS answered, coalesce(sum(c.within_sl), 0) AS within,
	       coalesce(sum(c.abandoned), 0) AS abandoned
	FROM queue_day_counts c
	WHERE c.account_id = q.account_id AND c.queue_id = q.id AND c.day = ($2::timestamptz AT TIME ZONE q.timezone)::date
) d
CROSS JOIN LATERAL (
	SELECT count(*) FILTER (WHERE p.state = 'available' AND p.load_voice + p.load_chat + p.load_email = 0) AS available,
	       count(*) FILTER (WHERE p.state = 'wrap_up' OR (p.state = 'available' AND p.load_voice + p.load_chat + p.load_email > 0)) AS busy,
	       coalesce(sum(CASE coalesce(q.channels[1], 'chat') WHEN 'voice' THEN p.cap_voice WHEN 'chat' THEN p.cap_chat ELSE p.cap_email END)
	                FILTER (WHERE p.state IN ('available', 'wrap_up')), 0) AS slots
	FROM agent_presence p
	WHERE p.account_id = q.account_id AND p.state <> 'offline'
	  AND (q.team_id IS NULL OR EXISTS (SELECT 1 FROM team_members tm WHERE tm.team_id = q.team_id AND tm.agent_id = p.agent_id))
) a
CROSS JOIN LATERAL (
	SELECT avg(extract(epoch FROM r.completed_at - r.assigned_at))::float8 AS aht FROM (
		SELECT t.completed_at, t.assigned_at FROM tasks t
		WHERE t.account_id = q.account_id AND t.queue_id = q.id AND t.state = 'completed'
		ORDER BY t.completed_at DESC LIMIT 50) r
) h
WHERE q.account_id = $1
ORDER BY q.name`

// countSQL adds one answered (within the service level or not) or
// abandoned contact to its queue's count for the day, in the queue's time
// zone, on the task's shard ($3 the time, $4 the task id, $5 answered, $6
// the wait in seconds, $7 abandoned).
const countSQL = `
INSERT INTO queue_day_counts AS c (account_id, queue_id, day, shard, answered, within_sl, abandoned)
SELECT $1, q.id, ($3::timestamptz AT TIME ZONE q.timezone)::date, $4::bigint % 16,
	$5::int, CASE WHEN $5::int = 1 AND $6::int <= q.sl_target_seconds THEN 1 ELSE 0 END, $7::int
FROM queues q WHERE q.account_id = $1 AND q.id = $2
ON CONFLICT (account_id, queue_id, day, shard) DO UPDATE
SET answered = c.answered + EXCLUDED.answered, within_sl = c.within_sl + EXCLUDED.within_sl,
	abandoned = c.abandoned + EXCLUDED.abandoned`

type queueLoad struct {
	aht   time.Duration
	slots int
	free  bool
}

// QueueStats returns the live stats of every queue of the account.
func (e *Engine) QueueStats(ctx context.Context, accountID int64) ([]QueueStats, error) {
	st, _, err := e.queueStats(ctx, e.db, accountID)
	return st, err
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (e *Engine) queueStats(ctx context.Context, db querier, accountID int64) ([]QueueStats, map[int64]queueLoad, error) {
	now := e.now()
	rows, err := db.Query(ctx, queueStatsQuery, accountID, now)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	out := []QueueStats{}
	loads := map[int64]queueLoad{}
	for rows.Next() {
		var s QueueStats
		var ch string
		var oldest *time.Time
		var within, slots int
		var aht *float64
		if err := rows.Scan(&s.QueueID, &s.Name, &s.ServiceLevelTarget.Seconds, &s.ServiceLevelTarget.Percent, &ch,
			&s.Waiting, &s.Offered, &oldest, &s.AnsweredToday, &within, &s.AbandonedToday,
			&s.AgentsAvailable, &s.AgentsBusy, &slots, &aht); err != nil {
			return nil, nil, err
		}
		if oldest != nil {
			s.LongestWaitSeconds = int(now.Sub(*oldest) / time.Second)
		}
		if n := s.AnsweredToday + s.AbandonedToday; n > 0 {
			s.ServiceLevelToday = math.Round(1000*float64(within)/float64(n)) / 10
		} else {
			s.ServiceLevelToday = 100
		}
		l := queueLoad{aht: e.cfg.DefaultHandleTime, slots: slots, free: s.AgentsAvailable > 0}
		if aht != nil && *aht > 0 {
			l.aht = time.Duration(*aht * float64(time.Second))
		}
		loads[s.QueueID] = l
		s.EWTSeconds = ewt(s.Waiting+1, l)
		out = append(out, s)
	}
	return out, loads, rows.Err()
}

// ewt estimates the wait of the contact at position pos (1 = next): the
// contacts ahead of it are served in parallel by the staffed slots, each
// taking the recent average handle time.
func ewt(pos int, l queueLoad) int {
	if pos <= 0 {
		return 0
	}
	if l.slots == 0 {
		// Nobody staffed: report the handle time of everyone ahead; the
		// number only gets better when agents sign in.
		return int(time.Duration(pos) * l.aht / time.Second)
	}
	ahead := pos
	if l.free {
		ahead = pos - 1
	}
	return int(math.Ceil(float64(ahead) * l.aht.Seconds() / float64(l.slots)))
}

const positionQuery = `
SELECT count(*) + 1 FROM tasks o, tasks t
WHERE t.account_id = $1 AND t.id = $2
  AND o.account_id = $1 AND o.queue_id = t.queue_id AND o.state = 'queued'
  AND (o.priority > t.priority OR (o.priority = t.priority AND (o.enqueued_at, o.id) < (t.enqueued_at, t.id)))`

// Position returns where a task stands in its queue and its estimated wait.
func (e *Engine) Position(ctx context.Context, accountID, taskID int64) (*Position, error) {
	return e.position(ctx, e.db, accountID, taskID)
}

func (e *Engine) position(ctx context.Context, db querier, accountID, taskID int64) (*Position, error) {
	var state State
	var queueID int64
	if err := db.QueryRow(ctx, `SELECT state, queue_id FROM tasks WHERE account_id = $1 AND id = $2`, accountID, taskID).Scan(&state, &queueID); err != nil {
		return nil, translate(err, "task")
	}
	p := &Position{TaskID: taskID, State: state}
	if state != StateQueued {
		return p, nil
	}
	if err := db.QueryRow(ctx, positionQuery, accountID, taskID).Scan(&p.Position); err != nil {
		return nil, err
	}
	l, err := e.queueLoadOf(ctx, db, accountID, queueID)
	if err != nil {
		return nil, err
	}
	p.EWTSeconds = ewt(p.Position, l)
	return p, nil
}

// queueLoadOf is the cheap part of the stats that a wait estimate needs.
func (e *Engine) queueLoadOf(ctx context.Context, db querier, accountID, queueID int64) (queueLoad, error) {
	l := queueLoad{aht: e.cfg.DefaultHandleTime}
	var aht *float64
	var avail int
	err := db.QueryRow(ctx, `
SELECT (SELECT avg(extract(epoch FROM r.completed_at - r.assigned_at))::float8 FROM (
		SELECT completed_at, assigned_at FROM tasks
		WHERE account_id = $1 AND queue_id = $2 AND state = 'completed' ORDER BY completed_at DESC LIMIT 50) r),
	count(*) FILTER (WHERE p.state IN ('available', 'wrap_up')),
	count(*) FILTER (WHERE p.state = 'available' AND p.load_voice + p.load_chat + p.load_email = 0)
FROM agent_presence p WHERE p.account_id = $1 AND p.state IN ('available', 'wrap_up')`, accountID, queueID).Scan(&aht, &l.slots, &avail)
	if err != nil {
		return l, err
	}
	if aht != nil && *aht > 0 {
		l.aht = time.Duration(*aht * float64(time.Second))
	}
	l.free = avail > 0
	return l, nil
}

// statsLock is the advisory lock that lets one engine of many publish the
// periodic stats, so supervisors do not get them once per process.
const statsLock = 0x726f75746e67 // "routng"

// maxPositionUpdates caps the waiting customers told their position per
// queue and tick; those further back learn it on the next change near them.
const maxPositionUpdates = 200

// PublishStats publishes every active account's queue stats to its
// supervisors and each waiting customer's position.
//
// A position is published when it changes; PublishStats is called from one
// goroutine only (the engine's stats loop, or a test).
func (e *Engine) PublishStats(ctx context.Context) error {
	seen := map[int64]bool{}
	published := map[int64]Position{}
	if e.lastPos == nil {
		e.lastPos = map[int64]Position{}
	}
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		clear(seen)
		clear(published)
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(statsLock)).Scan(&got); err != nil || !got {
			return err
		}
		rows, err := tx.Query(ctx, `
SELECT a.id FROM accounts a
WHERE EXISTS (SELECT 1 FROM agent_presence p WHERE p.account_id = a.id AND p.state <> 'offline')
   OR `+anyWaiting("a.id", ""))
		if err != nil {
			return err
		}
		accounts, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, acct := range accounts {
			stats, loads, err := e.queueStats(ctx, tx, acct)
			if err != nil {
				return err
			}
			if err := e.pub.Publish(ctx, tx, Event{AccountID: acct, Stream: SupervisorStream(acct), Type: "queue_stats", Data: stats}); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `
SELECT id, queue_id, pos FROM (
	SELECT id, queue_id, row_number() OVER (PARTITION BY queue_id ORDER BY priority DESC, enqueued_at, id) AS pos
	FROM tasks WHERE account_id = $1 AND state = 'queued') w
WHERE pos <= $2`, acct, maxPositionUpdates)
			if err != nil {
				return err
			}
			var ps []Position
			var qs []int64
			for rows.Next() {
				var p Position
				var q int64
				if err := rows.Scan(&p.TaskID, &q, &p.Position); err != nil {
					rows.Close()
					return err
				}
				p.State = StateQueued
				ps, qs = append(ps, p), append(qs, q)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			for i, p := range ps {
				p.EWTSeconds = ewt(p.Position, loads[qs[i]])
				seen[p.TaskID] = true
				if last, ok := e.lastPos[p.TaskID]; ok && last == p {
					continue // the customer already has this
				}
				if err := e.pub.Publish(ctx, tx, Event{AccountID: acct, Stream: TaskStream(p.TaskID), Type: "queue_position", Data: p}); err != nil {
					return err
				}
				published[p.TaskID] = p
			}
		}
		return nil
	})
	if err == nil {
		// Remember what was delivered (the transaction committed), forget
		// tasks no longer waiting.
		for id := range e.lastPos {
			if !seen[id] {
				delete(e.lastPos, id)
			}
		}
		for id, p := range published {
			e.lastPos[id] = p
		}
	}
	return err
}
