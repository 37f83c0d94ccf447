package postgres_test

import (
	"context"
	"testing"
	"time"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
)

// TestTokenActorWritesLastUsedOncePerMinute: a token's first use records
// last_used_at; further uses within the minute only read, so API calls do not
// each pay for a write (and a WAL flush) on the token's row.
func TestTokenActorWritesLastUsedOncePerMinute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	store := postgres.NewStore(db)
	acct, err := store.CreateAccount(ctx, "Tokens")
	if err != nil {
		t.Fatal(err)
	}
	tok := &postgres.APIToken{Name: "shop", Role: agentdesk.RoleAdmin, Scopes: []string{"read"}}
	if err := store.CreateAPIToken(ctx, acct.ID, tok, "adk_secret"); err != nil {
		t.Fatal(err)
	}
	use := func() (lastUsed *time.Time, version string) {
		t.Helper()
		a, scopes, err := store.TokenActor(ctx, "adk_secret")
		if err != nil {
			t.Fatal(err)
		}
		if a.AccountID != acct.ID || a.TokenID != tok.ID || a.Role != agentdesk.RoleAdmin || len(scopes) != 1 {
			t.Fatalf("TokenActor = %+v %v", a, scopes)
		}
		// xmin changes whenever the row is written.
		if err := db.QueryRow(ctx, `SELECT last_used_at, xmin::text FROM api_tokens WHERE id = $1`, tok.ID).Scan(&lastUsed, &version); err != nil {
			t.Fatal(err)
		}
		return lastUsed, version
	}
	first, v1 := use()
	if first == nil {
		t.Fatal("last_used_at not set by the first use")
	}
	_, v2 := use()
	if v2 != v1 {
		t.Error("a second use within the minute wrote the token row")
	}
	// An hour later the next use records the time again.
	if _, err := db.Exec(ctx, `UPDATE api_tokens SET last_used_at = now() - interval '1 hour' WHERE id = $1`, tok.ID); err != nil {
		t.Fatal(err)
	}
	again, _ := use()
	if again == nil || time.Since(*again) > time.Minute {
		t.Errorf("last_used_at = %v after a use an hour later, want about now", again)
	}
	if _, _, err := store.TokenActor(ctx, "adk_wrong"); !agentdesk.IsKind(err, agentdesk.Unauthenticated) {
		t.Errorf("unknown token: err = %v, want Unauthenticated", err)
	}
	if err := store.RevokeAPIToken(ctx, acct.ID, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.TokenActor(ctx, "adk_secret"); !agentdesk.IsKind(err, agentdesk.Unauthenticated) {
		t.Errorf("revoked token: err = %v, want Unauthenticated", err)
	}
}
