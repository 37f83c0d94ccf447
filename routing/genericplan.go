package routing

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// PostgreSQL plans a prepared statement anew on every execution (a "custom
// plan") while it estimates that its cached generic plan costs more. For the
// enqueue statement it always does: without the parameters' values it cannot
// tell that a task usually needs no skills, so it prices the skill check of
// every agent, although the generic plan is the custom plan's shape (the
// walk of the fairness index). Planning that statement took 1.3 ms, more
// than running it (pg_stat_statements with track_planning, 2026-12-07).
//
// withGenericPlan queues the statement between two settings of
// plan_cache_mode, so that it runs with its cached generic plan. Both are
// local to the transaction (the caller's, or the implicit one of a batch
// outside any), and the second puts back the value the first found, so
// nothing else on the connection plans differently.
func withGenericPlan(b *pgx.Batch, sql string, args ...any) {
	b.Queue(`SELECT set_config('agentdesk.plan_cache_mode', current_setting('plan_cache_mode'), true),
	set_config('plan_cache_mode', 'force_generic_plan', true)`)
	b.Queue(sql, args...)
	b.Queue(`SELECT set_config('plan_cache_mode', current_setting('agentdesk.plan_cache_mode'), true)`)
}

// batcher is a transaction or a pool: what can run a batch.
type batcher interface {
	querier
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// queryRowGeneric runs one statement that returns a row with its generic
// plan, in one round trip, and scans the row into dest.
func queryRowGeneric(ctx context.Context, db batcher, dest []any, sql string, args ...any) error {
	b := &pgx.Batch{}
	withGenericPlan(b, sql, args...)
	br := db.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return err
	}
	if err := br.QueryRow().Scan(dest...); err != nil {
		br.Close()
		return err
	}
	return br.Close()
}
