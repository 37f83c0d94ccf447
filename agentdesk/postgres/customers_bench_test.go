package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
)

// BenchmarkCustomerLookup measures what the agent desk does on every
// inbound contact and search: find a customer by email, by phone, and list
// by a name prefix, on 100,000 customers with an email and a phone each.
// It reports p50/p99 latencies besides ns/op:
//
//	go test ./agentdesk/postgres -run "^$" -bench CustomerLookup -benchtime 2000x
func BenchmarkCustomerLookup(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	db := pgtest.New(b)
	store := postgres.NewStore(db)
	acct, err := store.CreateAccount(ctx, "Bench")
	if err != nil {
		b.Fatal(err)
	}
	// Set-based inserts: the point is the lookups, not the loading.
	_, err = db.Exec(ctx, `INSERT INTO customers (account_id, name, created_at)
		SELECT $1, 'Customer ' || g, now() - g * interval '1 minute' FROM generate_series(1, $2) g`, acct.ID, n)
	if err == nil {
		_, err = db.Exec(ctx, `INSERT INTO identities (account_id, customer_id, kind, value)
			SELECT $1, id, 'email', 'user' || id || '@example.com' FROM customers WHERE account_id = $1
			UNION ALL
			SELECT $1, id, 'phone', '+1415' || lpad(id::text, 7, '0') FROM customers WHERE account_id = $1`, acct.ID)
	}
	if err == nil {
		_, err = db.Exec(ctx, `ANALYZE customers; ANALYZE identities`)
	}
	if err != nil {
		b.Fatal(err)
	}
	var firstID int64
	if err := db.QueryRow(ctx, `SELECT min(id) FROM customers WHERE account_id = $1`, acct.ID).Scan(&firstID); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		run  func(i int) error
	}{
		{"by-email", func(i int) error {
			_, err := store.CustomerByIdentity(ctx, acct.ID, agentdesk.IdentityEmail, "", fmt.Sprintf("user%d@example.com", firstID+int64(i%n)))
			return err
		}},
		{"by-phone", func(i int) error {
			_, err := store.CustomerByIdentity(ctx, acct.ID, agentdesk.IdentityPhone, "", fmt.Sprintf("+1415%07d", firstID+int64(i%n)))
			return err
		}},
		{"search-email", func(i int) error {
			got, _, err := store.Customers(ctx, acct.ID, agentdesk.CustomerFilter{Query: fmt.Sprintf("user%d@example.com", firstID+int64(i%n))})
			if err == nil && len(got) != 1 {
				err = fmt.Errorf("search found %d customers", len(got))
			}
			return err
		}},
		{"search-name-prefix", func(i int) error {
			_, _, err := store.Customers(ctx, acct.ID, agentdesk.CustomerFilter{Query: fmt.Sprintf("customer %d", 1+i%9), Page: agentdesk.Page{Limit: 50}})
			return err
		}},
		{"search-rare-name", func(i int) error {
			_, _, err := store.Customers(ctx, acct.ID, agentdesk.CustomerFilter{Query: fmt.Sprintf("customer %d", firstID+int64(i%n)), Page: agentdesk.Page{Limit: 50}})
			return err
		}},
		{"list-first-page", func(i int) error {
			_, _, err := store.Customers(ctx, acct.ID, agentdesk.CustomerFilter{Page: agentdesk.Page{Limit: 50}})
			return err
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				t0 := time.Now()
				if err := c.run(i * 7919); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				i++
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
