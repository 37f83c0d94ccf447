package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"agentdesk/agentdesk"
)

// secondAccount adds another tenant to the env's database with a supervisor
// and an agent of its own, signed in, and returns their clients.
func (e *testEnv) secondAccount(t *testing.T) (int64, map[string]*client) {
	t.Helper()
	ctx := context.Background()
	acct, err := e.store.CreateAccount(ctx, "Other Co")
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]*client{}
	for _, u := range []struct {
		name string
		role agentdesk.Role
	}{{"supervisor", agentdesk.RoleSupervisor}, {"agent", agentdesk.RoleAgent}} {
		hash, err := HashPassword(testPassword, cheapParams)
		if err != nil {
			t.Fatal(err)
		}
		email := "b-" + u.name + "@other.example"
		if err := e.store.CreateAgent(ctx, acct.ID, &agentdesk.Agent{Email: email, Name: "B " + u.name, Role: u.role}, hash); err != nil {
			t.Fatal(err)
		}
		clients[u.name] = e.login(email, testPassword)
	}
	return acct.ID, clients
}

// TestCustomerTenancy proves account B can never read or change account A's
// customers, identities, merges, companies or orders: every attempt is a
// 404 (or names the foreign id as unknown) and the database is unchanged.
func TestCustomerTenancy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.clients["supervisor"]
	r := a.do(t, "POST", "/api/v1/companies", map[string]any{"name": "A Corp", "domain": "a.example"})
	mustStatus(t, r, http.StatusCreated)
	var co agentdesk.Company
	r.json(t, &co)
	c1 := e.newCustomer(t, a, map[string]any{"name": "Alice", "company_id": co.ID, "identities": []map[string]string{{"kind": "email", "value": "alice@a.example"}}})
	c2 := e.newCustomer(t, a, map[string]any{"name": "Alicia", "identities": []map[string]string{{"kind": "email", "value": "alicia@a.example"}}})
	r = a.do(t, "POST", "/api/v1/orders", map[string]any{"external_id": "A-1", "customer_id": c1.ID, "amount_cents": 100, "currency": "EUR", "placed_at": "2026-01-01T00:00:00Z"})
	mustStatus(t, r, http.StatusCreated)
	var order agentdesk.Order
	r.json(t, &order)
	r = a.do(t, "POST", fmt.Sprintf("/api/v1/customers/%d/merge", c1.ID), map[string]int64{"merge_id": c2.ID})
	mustStatus(t, r, http.StatusCreated)
	var m agentdesk.Merge
	r.json(t, &m)

	bAccount, b := e.secondAccount(t)
	bCustomer := e.newCustomer(t, b["agent"], map[string]any{"name": "Bob"})
	identityID := c1.Identities[0].ID

	before := e.dumpRows(t)
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", fmt.Sprintf("/api/v1/customers/%d", c1.ID), nil, 404},
		{"PATCH", fmt.Sprintf("/api/v1/customers/%d", c1.ID), map[string]string{"name": "pwned"}, 404},
		{"POST", fmt.Sprintf("/api/v1/customers/%d/identities", c1.ID), map[string]string{"kind": "visitor", "value": "v"}, 404},
		{"DELETE", fmt.Sprintf("/api/v1/customers/%d/identities/%d", c1.ID, identityID), nil, 404},
		{"DELETE", fmt.Sprintf("/api/v1/customers/%d/identities/%d", bCustomer.ID, identityID), nil, 404},
		{"GET", fmt.Sprintf("/api/v1/customers/%d/orders", c1.ID), nil, 404},
		{"GET", fmt.Sprintf("/api/v1/customers/%d/lifetime-value", c1.ID), nil, 404},
		{"GET", fmt.Sprintf("/api/v1/customers/%d/merges", c1.ID), nil, 404},
		{"POST", fmt.Sprintf("/api/v1/customers/%d/merge", c1.ID), map[string]int64{"merge_id": bCustomer.ID}, 404},
		{"POST", fmt.Sprintf("/api/v1/customers/%d/merge", bCustomer.ID), map[string]int64{"merge_id": c1.ID}, 404},
		{"POST", fmt.Sprintf("/api/v1/merges/%d/undo", m.ID), nil, 404},
		{"GET", fmt.Sprintf("/api/v1/companies/%d", co.ID), nil, 404},
		{"PATCH", fmt.Sprintf("/api/v1/companies/%d", co.ID), map[string]string{"name": "pwned"}, 404},
		{"GET", fmt.Sprintf("/api/v1/companies/%d/customers", co.ID), nil, 404},
		{"GET", fmt.Sprintf("/api/v1/orders/%d", order.ID), nil, 404},
		{"GET", fmt.Sprintf("/api/v1/orders?customer_id=%d", c1.ID), nil, 404},
		// Pointing B's rows at A's: the foreign id is simply unknown.
		{"POST", "/api/v1/customers", map[string]any{"name": "x", "company_id": co.ID}, 422},
		{"PATCH", fmt.Sprintf("/api/v1/customers/%d", bCustomer.ID), map[string]any{"company_id": co.ID}, 422},
		{"POST", "/api/v1/orders", map[string]any{"external_id": "A-1", "customer_id": c1.ID, "amount_cents": 999, "currency": "EUR", "placed_at": "2026-01-01T00:00:00Z"}, 422},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := b["supervisor"].do(t, tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
		})
	}
	if d := cmp.Diff(before, e.dumpRows(t)); d != "" {
		t.Fatalf("account B changed account A's data (-before +after):\n%s", d)
	}

	// B's lists and lookups never show A's rows, even A's exact addresses.
	for _, path := range []string{"/api/v1/customers", "/api/v1/customers?q=alice%40a.example", "/api/v1/customers?q=Ali", "/api/v1/companies"} {
		r := b["agent"].do(t, "GET", path, nil)
		mustStatus(t, r, http.StatusOK)
		var l List[map[string]any]
		r.json(t, &l)
		for _, item := range l.Items {
			if item["id"] != float64(bCustomer.ID) {
				t.Errorf("%s shows %v to account B", path, item)
			}
		}
	}
	// B's own identical address and order number do not collide with A's.
	e.newCustomer(t, b["agent"], map[string]any{"name": "Alice B", "identities": []map[string]string{{"kind": "email", "value": "alice@a.example"}}})
	mustStatus(t, b["supervisor"].do(t, "POST", "/api/v1/orders", map[string]any{"external_id": "A-1", "customer_id": bCustomer.ID, "amount_cents": 5, "currency": "EUR", "placed_at": "2026-01-01T00:00:00Z"}), http.StatusCreated)
	mustStatus(t, b["supervisor"].do(t, "POST", "/api/v1/companies", map[string]any{"name": "B copy", "domain": "a.example"}), http.StatusCreated)

	// A's shop webhook secret does not open B's endpoint, and the reverse.
	secretA, _ := e.store.OrderWebhookSecret(t.Context(), e.account)
	before = e.dumpRows(t)
	mustStatus(t, e.signedOrder(t, bAccount, secretA, map[string]any{"external_id": "X", "amount_cents": 1, "currency": "EUR",
		"placed_at": "2026-01-01T00:00:00Z", "customer": map[string]string{"email": "alice@a.example"}}), http.StatusUnauthorized)
	if d := cmp.Diff(before, e.dumpRows(t)); d != "" {
		t.Fatalf("cross-account webhook stored something:\n%s", d)
	}
	// A still sees its own rows as before.
	r = a.do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/lifetime-value", c1.ID), nil)
	var v lifetimeValue
	r.json(t, &v)
	if v.Totals["EUR"] != 100 {
		t.Fatalf("A's lifetime value: %s", r.body)
	}
}
