package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nyaruka/phonenumbers"

	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
	"agentdesk/routing"
	"agentdesk/web"
)

func count(t *testing.T, db *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestSeedDemoIfEmpty runs what `make run` runs, twice: the first run creates
// the demo operation, the second finds data and leaves it alone.
func TestSeedDemoIfEmpty(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	ctx := context.Background()
	args := []string{"--database-url", url, "--demo", "--if-empty", "--progress=false"}
	if err := runSeed(ctx, args); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tickets := count(t, db, `SELECT count(*) FROM tickets`)
	if err := runSeed(ctx, args); err != nil {
		t.Fatal(err)
	}
	// Without --if-empty, --demo still does not add the demo twice.
	if err := runSeed(ctx, []string{"--database-url", url, "--demo", "--progress=false"}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT count(*) FROM accounts`); n != 1 {
		t.Errorf("accounts = %d after a second --if-empty run, want 1", n)
	}
	if n := count(t, db, `SELECT count(*) FROM tickets`); n != tickets {
		t.Errorf("tickets = %d after seeding the demo again, want %d", n, tickets)
	}

	checks := []struct {
		name, sql string
		min, max  int
	}{
		{"users", `SELECT count(*) FROM agents`, 15, 15},
		{"agents", `SELECT count(*) FROM agents WHERE role = 'agent'`, 12, 12},
		{"supervisors", `SELECT count(*) FROM agents WHERE role = 'supervisor'`, 2, 2},
		{"queues", `SELECT count(*) FROM queues`, 3, 3},
		{"support addresses", `SELECT count(*) FROM email_mailboxes WHERE queue_id IN (SELECT id FROM queues)`, 3, 3},
		{"customers", `SELECT count(*) FROM customers`, demoCustomers, demoCustomers},
		{"companies", `SELECT count(*) FROM companies`, demoCompanies, demoCompanies},
		{"messages", `SELECT count(*) FROM messages`, demoMessages, demoMessages},
		{"email share %", `SELECT (100 * count(*) FILTER (WHERE channel = 'email') / count(*))::int FROM tickets`, 55, 66},
		{"chat share %", `SELECT (100 * count(*) FILTER (WHERE channel = 'chat') / count(*))::int FROM tickets`, 20, 30},
		{"voice share %", `SELECT (100 * count(*) FILTER (WHERE channel = 'voice') / count(*))::int FROM tickets`, 10, 20},
		{"done tickets without reason or times", `SELECT count(*) FROM tickets WHERE status IN ('solved', 'closed')
			AND (contact_reason_id IS NULL OR resolution_seconds IS NULL OR first_response_seconds IS NULL)`, 0, 0},
		{"cancellations", `SELECT count(*) FROM tickets WHERE resolution_code = 'cancellation'`, 100, 600},
		{"churned customers", `SELECT count(*) FROM customers WHERE lifecycle_stage = 'churned'`, 100, 600},
		{"open tickets of the printed agent", `SELECT count(*) FROM tickets t JOIN agents a ON a.id = t.assignee_id
			WHERE a.email = 'agent@demo.agentdesk.local' AND t.status NOT IN ('solved', 'closed')`, 1, 200},
		{"orders", `SELECT count(*) FROM orders`, demoCustomers, 4 * demoCustomers},
		{"rated tickets %", `SELECT (100 * count(*) FILTER (WHERE csat_rating IS NOT NULL) / count(*))::int FROM tickets WHERE status IN ('solved', 'closed')`, 25, 35},
		{"CSAT % (ratings of 4 or 5)", `SELECT (100 * count(*) FILTER (WHERE csat_rating >= 4) / count(*))::int FROM tickets WHERE csat_rating IS NOT NULL`, 80, 90},
		{"completed routing tasks", `SELECT count(*) FROM tasks WHERE state = 'completed'`, 4000, 7000},
		{"routing tasks holding an agent", `SELECT count(*) FROM tasks WHERE state IN ('offered', 'assigned', 'wrapping')`, 0, 0},
		{"abandon rate % (calls and chats, short abandons left out)", `SELECT round(100.0 * count(*) FILTER (WHERE state = 'abandoned')
			/ count(*))::int FROM tasks WHERE channel <> 'email' AND (state = 'completed' OR wait_seconds >= 5)`, 3, 8},
		{"task events out of step", `SELECT count(*) FROM tasks t LEFT JOIN (SELECT task_id, count(*) n FROM task_events GROUP BY 1) e ON e.task_id = t.id
			WHERE coalesce(e.n, 0) <> CASE t.state WHEN 'completed' THEN 5 WHEN 'abandoned' THEN 2 ELSE 1 END`, 0, 0},
		{"messages before their ticket", `SELECT count(*) FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE m.created_at < t.created_at`, 0, 0},
		{"tickets before their customer", `SELECT count(*) FROM tickets t JOIN customers c ON c.id = t.customer_id WHERE t.created_at < c.created_at`, 0, 0},
		{"tickets in the future", `SELECT count(*) FROM tickets WHERE created_at > now() OR resolved_at > now()`, 0, 0},
	}
	for _, c := range checks {
		if n := count(t, db, c.sql); n < c.min || n > c.max {
			t.Errorf("%s = %d, want %d..%d", c.name, n, c.min, c.max)
		}
	}
	// The routing engine reads the seeded queues and history.
	var acct int64
	db.QueryRow(ctx, `SELECT id FROM accounts`).Scan(&acct)
	engine := routing.New(db, nil, slog.New(slog.DiscardHandler), nil, routing.Config{})
	stats, err := engine.QueueStats(ctx, acct)
	if err != nil || len(stats) != 3 {
		t.Errorf("QueueStats = %d queues, %v; want the 3 demo queues", len(stats), err)
	}
	if _, err := engine.Dispatch(ctx); err != nil {
		t.Errorf("Dispatch on the demo: %v", err)
	}

	// Monday is the busiest weekday, and the peaks are at 10:00 and 14:00.
	var busiest string
	db.QueryRow(ctx, `SELECT to_char(created_at, 'Dy') FROM tickets GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`).Scan(&busiest)
	if busiest != "Mon" {
		t.Errorf("busiest weekday = %s, want Mon", busiest)
	}
	var topCancel string
	db.QueryRow(ctx, `SELECT r.name FROM tickets t JOIN reasons r ON r.id = t.cancellation_reason_id
		WHERE t.resolution_code = 'cancellation' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`).Scan(&topCancel)
	if topCancel != "Too expensive" && topCancel != "Moved to competitor" {
		t.Errorf("most common cancellation reason = %q, want price or competitor", topCancel)
	}

	// The printed logins work.
	var b strings.Builder
	printDemoLogins(&b)
	store := postgres.NewStore(db)
	for _, login := range []struct{ email, password string }{
		{"admin@demo.agentdesk.local", demoAdminPassword},
		{"supervisor@demo.agentdesk.local", demoSupervisorPassword},
		{"agent@demo.agentdesk.local", demoAgentPassword},
		{"agent2@demo.agentdesk.local", demoAgentPassword},
	} {
		if !strings.Contains(b.String(), login.email) || !strings.Contains(b.String(), login.password) {
			t.Errorf("--print-logins does not show %s", login.email)
		}
		creds, err := store.CredentialsByEmail(ctx, login.email)
		if err != nil {
			t.Fatalf("%s: %v", login.email, err)
		}
		if !web.CheckPassword(creds.PasswordHash, login.password) {
			t.Errorf("%s: printed password does not match", login.email)
		}
	}
}

// TestSeedDataSet checks the benchmark data set: exact customer and message
// counts, and a second data set added to the same account without clashing
// identities or order ids.
func TestSeedDataSet(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	ctx := context.Background()
	args := []string{"--database-url", url, "--customers", "300", "--messages", "2500", "--progress=false"}
	for range 2 {
		if err := runSeed(ctx, args); err != nil {
			t.Fatal(err)
		}
	}
	db, err := postgres.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := count(t, db, `SELECT count(*) FROM customers`); n != 600 {
		t.Errorf("customers = %d, want 600", n)
	}
	if n := count(t, db, `SELECT count(*) FROM messages`); n != 5000 {
		t.Errorf("messages = %d, want 5000", n)
	}
	if n := count(t, db, `SELECT count(*) FROM companies`); n != 12 {
		t.Errorf("companies = %d, want 12 (customers/50 per run)", n)
	}
	if n := count(t, db, `SELECT count(*) FROM accounts`); n != 1 {
		t.Errorf("accounts = %d, want 1", n)
	}
}

// TestSeedDeterministic: the same seed and day give the same data.
func TestSeedDeterministic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	var sums []string
	for range 2 {
		db := pgtest.New(t)
		acct, err := createDemoOrg(ctx, postgres.NewStore(db))
		if err != nil {
			t.Fatal(err)
		}
		o, err := loadOrg(ctx, db, acct)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := generate(ctx, db, o, genConfig{customers: 200, companies: 4, messages: 1500, months: 6, seed: 7, now: now}, nil); err != nil {
			t.Fatal(err)
		}
		var sum string
		err = db.QueryRow(ctx, `SELECT md5(
			(SELECT string_agg(concat_ws('|', id, subject, status, channel, customer_id, assignee_id, created_at, resolution_seconds), ',' ORDER BY id) FROM tickets) ||
			(SELECT string_agg(concat_ws('|', id, ticket_id, direction, body, created_at), ',' ORDER BY id) FROM messages) ||
			(SELECT string_agg(concat_ws('|', customer_id, kind, value), ',' ORDER BY id) FROM identities) ||
			(SELECT string_agg(concat_ws('|', external_id, amount_cents, placed_at), ',' ORDER BY id) FROM orders))`).Scan(&sum)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
	}
	if sums[0] != sums[1] {
		t.Errorf("two runs with the same seed differ: %s vs %s", sums[0], sums[1])
	}
}

// TestSeedPhoneNumbersValid: generated numbers pass the validation the API
// applies to phone numbers, and stay distinct.
func TestSeedPhoneNumbersValid(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, idx := range []int{0, 1, 421, 9999, 10000, 123456, 999999, 2_799_999} {
		for _, country := range []byte{'U', 'D', 'G'} {
			p := phoneNumber(&genCustomer{idx: idx, country: country})
			n, err := phonenumbers.Parse(p, "")
			if err != nil || !phonenumbers.IsValidNumber(n) || phonenumbers.Format(n, phonenumbers.E164) != p {
				t.Errorf("customer %d (%c): %s is not a valid E.164 number", idx, country, p)
			}
			if seen[p] {
				t.Errorf("customer %d (%c): %s given twice", idx, country, p)
			}
			seen[p] = true
		}
	}
	for i, code := range usAreaCodes {
		n, _ := phonenumbers.Parse(fmt.Sprintf("+1%d5550100", code), "")
		if !phonenumbers.IsValidNumber(n) {
			t.Errorf("area code %d (index %d) is not valid", code, i)
		}
	}
}
