package postgres_test

import (
	"context"
	"sync"
	"testing"

	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
)

func TestMigrateFromEmptyIsIdempotentAndLocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := pgtest.EmptyURL(t)
	all, err := postgres.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	// Two processes' worth of pools migrating at once: each migration must be
	// applied exactly once between them.
	var wg sync.WaitGroup
	applied := make([][]int, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := postgres.Open(ctx, u, 2)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			applied[i], errs[i] = postgres.Migrate(ctx, pool)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(applied[0]) + len(applied[1]); got != len(all) {
		t.Fatalf("migrations applied %d times in total, want %d (once each)", got, len(all))
	}
	pool, err := postgres.Open(ctx, u, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	again, err := postgres.Migrate(ctx, pool)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %v, err %v; want nothing", again, err)
	}
	pending, err := postgres.Pending(ctx, pool)
	if err != nil || pending != 0 {
		t.Fatalf("pending = %d, %v", pending, err)
	}
	st, err := postgres.Status(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if !s.Applied {
			t.Errorf("migration %d not applied", s.Version)
		}
	}
}
