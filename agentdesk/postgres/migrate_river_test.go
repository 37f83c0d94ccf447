package postgres_test

import (
	"context"
	"testing"

	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
)

// Migrate brings River's schema along (the email outbox runs on it), and
// Status and Pending account for it.
func TestMigrateAppliesRiver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, pgtest.EmptyURL(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Status(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	river := 0
	for _, s := range st {
		if s.River {
			river++
			if !s.Applied {
				t.Errorf("river migration %d %s not applied", s.Version, s.Name)
			}
		}
	}
	if river == 0 || st[len(st)-1].Version != postgres.RiverVersion() {
		t.Errorf("status lists %d river migrations, last %d, want up to %d", river, st[len(st)-1].Version, postgres.RiverVersion())
	}
	var ok bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('river_job') IS NOT NULL`).Scan(&ok); err != nil || !ok {
		t.Errorf("river_job missing: %v", err)
	}
	if n, err := postgres.Pending(ctx, pool); err != nil || n != 0 {
		t.Errorf("after migrate: pending %d, %v", n, err)
	}
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Errorf("second migrate: %v", err)
	}
}
