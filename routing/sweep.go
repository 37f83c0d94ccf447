package routing

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Sweep runs every timer that is due: expired offers go back in line (and
// count as missed), finished wrap-ups make agents available, waiting tasks
// relax their skill requirements, overflow to another queue or end after
// their queue's maximum wait. It depends on nothing but the database and the
// clock, so it is also the recovery after a crash: run at Start, it re-queues
// the offers a dead process made.
func (e *Engine) Sweep(ctx context.Context) error {
	for _, step := range []struct {
		name string
		fn   func(context.Context) (int, error)
	}{
		{"expire offers", e.expireOffers},
		{"end wrap-ups", e.endWrapUps},
		{"queue timers", e.queueTimers},
	} {
		for {
			n, err := step.fn(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", step.name, err)
			}
			if n < sweepBatch {
				break
			}
		}
	}
	return nil
}

const sweepBatch = 200

// sweepDue handles, in one transaction, the rows that query finds due at now
// ($1), at most sweepBatch ($2) of them, locked with SKIP LOCKED so that
// sweepers in other processes take other rows. It returns how many rows were
// due: Sweep goes on while a batch comes back full.
func sweepDue[T any](ctx context.Context, e *Engine, query string, scan func(pgx.CollectableRow) (T, error), handle func(tx pgx.Tx, now time.Time, d T) error) (int, error) {
	n := 0
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		n = 0
		now := e.now()
		rows, err := tx.Query(ctx, query, now, sweepBatch)
		if err != nil {
			return err
		}
		due, err := pgx.CollectRows(rows, scan)
		if err != nil {
			return err
		}
		for _, d := range due {
			if err := handle(tx, now, d); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// scanPair reads a row of two bigints (an account and a task or agent id).
func scanPair(row pgx.CollectableRow) ([2]int64, error) {
	var k [2]int64
	err := row.Scan(&k[0], &k[1])
	return k, err
}

func (e *Engine) expireOffers(ctx context.Context) (int, error) {
	return sweepDue(ctx, e, `
SELECT account_id, id FROM tasks
WHERE state = 'offered' AND offer_expires_at <= $1
ORDER BY offer_expires_at LIMIT $2
FOR UPDATE SKIP LOCKED`, scanPair, func(tx pgx.Tx, _ time.Time, k [2]int64) error {
		t, err := lockTask(ctx, tx, k[0], k[1])
		if err != nil {
			return err
		}
		return e.requeue(ctx, tx, t, "offer timed out", true)
	})
}

func (e *Engine) endWrapUps(ctx context.Context) (int, error) {
	return sweepDue(ctx, e, `
SELECT account_id, agent_id FROM agent_presence
WHERE state = 'wrap_up' AND wrap_up_until <= $1
LIMIT $2 FOR UPDATE SKIP LOCKED`, scanPair, func(tx pgx.Tx, now time.Time, k [2]int64) error {
		return e.changePresence(ctx, tx, k[0], k[1], WrapUp, Available, "", 0, now)
	})
}

// queueTimers handles waiting tasks whose queue's relaxation, overflow or
// maximum wait has come due.
func (e *Engine) queueTimers(ctx context.Context) (int, error) {
	type due struct {
		account, id, queue     int64
		enqueued, entered      time.Time
		step                   int
		overflowTo             *int64
		overflowAfter, maxWait int
		relax                  []RelaxStep
	}
	scan := func(row pgx.CollectableRow) (due, error) {
		var d due
		err := row.Scan(&d.account, &d.id, &d.queue, &d.enqueued, &d.entered, &d.step, &d.overflowTo,
			&d.overflowAfter, &d.maxWait, &d.relax)
		return d, err
	}
	return sweepDue(ctx, e, `
SELECT t.account_id, t.id, t.queue_id, t.enqueued_at, t.queue_entered_at, t.relax_step,
	q.overflow_queue_id, q.overflow_after_seconds, q.max_wait_seconds, q.relaxation
FROM tasks t JOIN queues q ON q.id = t.queue_id
WHERE t.state = 'queued' AND (
	(q.overflow_queue_id IS NOT NULL AND q.overflow_after_seconds > 0
		AND t.queue_entered_at <= $1::timestamptz - make_interval(secs => q.overflow_after_seconds))
	OR (q.max_wait_seconds > 0 AND t.enqueued_at <= $1::timestamptz - make_interval(secs => q.max_wait_seconds))
	OR (jsonb_array_length(q.relaxation) > t.relax_step
		AND t.queue_entered_at <= $1::timestamptz - make_interval(secs => (q.relaxation->t.relax_step->>'after_seconds')::int)))
ORDER BY t.enqueued_at
LIMIT $2
FOR UPDATE OF t SKIP LOCKED`, scan, func(tx pgx.Tx, now time.Time, d due) error {
		t, err := lockTask(ctx, tx, d.account, d.id)
		if err != nil {
			return err
		}
		switch {
		case d.maxWait > 0 && !now.Before(d.enqueued.Add(time.Duration(d.maxWait)*time.Second)):
			if err := e.endWaiting(ctx, tx, d.account, d.id, StateOverflowed, "maximum wait reached"); err != nil {
				return err
			}
		case d.overflowTo != nil && d.overflowAfter > 0 && !now.Before(d.entered.Add(time.Duration(d.overflowAfter)*time.Second)):
			if err := e.moveQueue(ctx, tx, t, *d.overflowTo, fmt.Sprintf("overflow from queue %d", d.queue)); err != nil {
				return err
			}
		default:
			step := d.step
			for step < len(d.relax) && !now.Before(d.entered.Add(time.Duration(d.relax[step].AfterSeconds)*time.Second)) {
				step++
			}
			if _, err := tx.Exec(ctx, `UPDATE tasks SET relax_step = $2, updated_at = $3, retry_at = NULL WHERE id = $1`, d.id, step, now); err != nil {
				return err
			}
			if err := logTransition(ctx, tx, d.account, d.id, StateQueued, StateQueued, 0, d.queue,
				fmt.Sprintf("requirements relaxed (step %d)", step), now); err != nil {
				return err
			}
			if err := e.wake(ctx, tx, d.account); err != nil {
				return err
			}
		}
		return nil
	})
}
