package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"agentdesk/agentdesk"
)

// dumpRows returns every row of the business tables a customer touches, as
// JSON text in id order, so a test can assert that a request changed nothing
// (or that an unmerge put everything back).
func (e *testEnv) dumpRows(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range []string{"customers", "identities", "companies", "tickets", "messages", "orders", "merges", "audit_log"} {
		rows, err := e.store.DB().Query(context.Background(), `SELECT to_jsonb(x)::text FROM `+table+` x ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// dumpCustomers returns the rows of the given customers and of everything
// hanging off them, per customer.
func (e *testEnv) dumpCustomers(t *testing.T, ids ...int64) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, id := range ids {
		for _, q := range []struct{ name, sql string }{
			{"customer", `SELECT to_jsonb(x)::text FROM customers x WHERE id = $1`},
			{"identities", `SELECT to_jsonb(x)::text FROM identities x WHERE customer_id = $1 ORDER BY id`},
			{"tickets", `SELECT to_jsonb(x)::text FROM tickets x WHERE customer_id = $1 ORDER BY id`},
			{"messages", `SELECT to_jsonb(x)::text FROM messages x WHERE customer_id = $1 ORDER BY id`},
			{"orders", `SELECT to_jsonb(x)::text FROM orders x WHERE customer_id = $1 ORDER BY id`},
		} {
			rows, err := e.store.DB().Query(context.Background(), q.sql, id)
			if err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("%d/%s", id, q.name)
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				out[key] = append(out[key], s)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// count runs a COUNT(*) query.
func (e *testEnv) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.store.DB().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// mustStatus fails unless r has status want.
func mustStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
}

func (e *testEnv) newCustomer(t *testing.T, c *client, body map[string]any) agentdesk.Customer {
	t.Helper()
	r := c.do(t, "POST", "/api/v1/customers", body)
	mustStatus(t, r, http.StatusCreated)
	var out agentdesk.Customer
	r.json(t, &out)
	return out
}

func TestCustomerRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent := e.clients["agent"]

	r := agent.do(t, "POST", "/api/v1/companies", map[string]any{"name": "Acme GmbH", "domain": "Acme.example"})
	mustStatus(t, r, http.StatusCreated)
	var co agentdesk.Company
	r.json(t, &co)

	c := e.newCustomer(t, agent, map[string]any{
		"name": "Ada Lovelace", "company_id": co.ID, "lifecycle_stage": "prospect", "preferred_channel": "email",
		"attributes": map[string]string{"plan": "pro"},
		"identities": []map[string]string{
			{"kind": "email", "value": "Ada@Example.COM"},
			{"kind": "phone", "value": "+1 (415) 555-0132"},
			{"kind": "social", "network": "Mastodon", "value": "@ada@example.social"},
		},
	})
	want := []agentdesk.Identity{
		{Kind: "email", Value: "ada@example.com"},
		{Kind: "phone", Value: "+14155550132"},
		{Kind: "social", Network: "mastodon", Value: "@ada@example.social"},
	}
	if d := cmp.Diff(want, c.Identities, cmpIgnoreIDs); d != "" {
		t.Fatalf("identities (-want +got):\n%s", d)
	}

	byPhone, err := e.store.CustomerByIdentity(t.Context(), e.account, agentdesk.IdentityPhone, "", "+14155550132")
	if err != nil || byPhone.ID != c.ID || len(byPhone.Identities) != 3 {
		t.Fatalf("by phone: %+v %v", byPhone, err)
	}
	if _, err := e.store.CustomerByIdentity(t.Context(), e.account, agentdesk.IdentityEmail, "", "nobody@example.com"); !agentdesk.IsKind(err, agentdesk.NotFound) {
		t.Fatalf("unknown email: %v", err)
	}

	r = agent.do(t, "GET", fmt.Sprintf("/api/v1/customers/%d", c.ID), nil)
	mustStatus(t, r, http.StatusOK)
	var got agentdesk.Customer
	r.json(t, &got)
	if d := cmp.Diff(c, got); d != "" {
		t.Fatalf("GET differs from POST (-post +get):\n%s", d)
	}

	other := e.newCustomer(t, agent, map[string]any{"name": "Grace Hopper", "identities": []map[string]string{{"kind": "email", "value": "grace@example.com"}}})
	adam := e.newCustomer(t, agent, map[string]any{"name": "Adam Smith", "lifecycle_stage": "lead"})

	// Search by name prefix, email (any case), phone as typed, company, stage.
	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"q=ada+l", []int64{c.ID}},
		{"q=ADA%40example.com", []int64{c.ID}},
		{"q=%2B1+415+555+0132", []int64{c.ID}},
		{"q=grace%40example.com", []int64{other.ID}},
		{"q=nobody", nil},
		{fmt.Sprintf("company_id=%d", co.ID), []int64{c.ID}},
		{"lifecycle_stage=prospect", []int64{c.ID}},
		{"q=ad&lifecycle_stage=lead", []int64{adam.ID}},
		{"q=Ad", []int64{adam.ID, c.ID}}, // newest first
		{"q=ad%25", nil},                 // % is a character, not a wildcard
	} {
		r := agent.do(t, "GET", "/api/v1/customers?"+tc.query, nil)
		mustStatus(t, r, http.StatusOK)
		var l List[agentdesk.Customer]
		r.json(t, &l)
		var ids []int64
		for _, x := range l.Items {
			ids = append(ids, x.ID)
		}
		if !cmp.Equal(ids, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.query, ids, tc.want)
		}
	}

	// Keyset pages: 3 customers, 2 per page.
	r = agent.do(t, "GET", "/api/v1/customers?limit=2", nil)
	var p1 List[agentdesk.Customer]
	r.json(t, &p1)
	if len(p1.Items) != 2 || p1.NextCursor == "" {
		t.Fatalf("page 1: %s", r.body)
	}
	r = agent.do(t, "GET", "/api/v1/customers?limit=2&cursor="+p1.NextCursor, nil)
	var p2 List[agentdesk.Customer]
	r.json(t, &p2)
	if len(p2.Items) != 1 || p2.NextCursor != "" || p2.Items[0].ID != c.ID {
		t.Fatalf("page 2: %s", r.body)
	}

	// PATCH changes only what is sent; null clears the company.
	r = agent.do(t, "PATCH", fmt.Sprintf("/api/v1/customers/%d", c.ID), map[string]any{"name": "Ada King", "company_id": nil})
	mustStatus(t, r, http.StatusOK)
	r.json(t, &got)
	if got.Name != "Ada King" || got.CompanyID != nil || got.Stage != "prospect" || got.Attributes["plan"] != "pro" || len(got.Identities) != 3 {
		t.Fatalf("after PATCH: %+v", got)
	}

	// Identities: agents add, supervisors remove.
	r = agent.do(t, "POST", fmt.Sprintf("/api/v1/customers/%d/identities", c.ID), map[string]string{"kind": "shop", "value": "shop-42"})
	mustStatus(t, r, http.StatusCreated)
	var ident agentdesk.Identity
	r.json(t, &ident)
	path := fmt.Sprintf("/api/v1/customers/%d/identities/%d", c.ID, ident.ID)
	mustStatus(t, agent.do(t, "DELETE", path, nil), http.StatusForbidden)
	mustStatus(t, e.clients["supervisor"].do(t, "DELETE", path, nil), http.StatusNoContent)
	mustStatus(t, e.clients["supervisor"].do(t, "DELETE", path, nil), http.StatusNotFound)
	if n := e.count(t, `SELECT count(*) FROM identities WHERE customer_id = $1`, c.ID); n != 3 {
		t.Fatalf("identities after add+remove: %d", n)
	}

	// Idempotent create: the retry gets the first answer, not a second customer.
	body := map[string]any{"name": "Once", "identities": []map[string]string{{"kind": "visitor", "value": "v-1"}}}
	r1 := agent.do(t, "POST", "/api/v1/customers", body, IdempotencyHeader, "k1")
	r2 := agent.do(t, "POST", "/api/v1/customers", body, IdempotencyHeader, "k1")
	mustStatus(t, r1, http.StatusCreated)
	if r2.status != http.StatusCreated || string(r1.body) != string(r2.body) || r2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", r2.status, r2.body)
	}
}

var cmpIgnoreIDs = cmp.Transformer("noIDs", func(ids []agentdesk.Identity) []agentdesk.Identity {
	out := make([]agentdesk.Identity, len(ids))
	for i, id := range ids {
		id.ID = 0
		out[i] = id
	}
	return out
})

func TestCompanyRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent := e.clients["agent"]
	r := agent.do(t, "POST", "/api/v1/companies", map[string]any{"name": " Initech ", "domain": "initech.example", "attributes": map[string]string{"tier": "gold"}}, IdempotencyHeader, "co-1")
	mustStatus(t, r, http.StatusCreated)
	var co agentdesk.Company
	r.json(t, &co)
	if co.Name != "Initech" || co.Domain != "initech.example" || co.Attributes["tier"] != "gold" {
		t.Fatalf("created: %+v", co)
	}
	r = agent.do(t, "GET", fmt.Sprintf("/api/v1/companies/%d", co.ID), nil)
	var got agentdesk.Company
	r.json(t, &got)
	if d := cmp.Diff(co, got); d != "" {
		t.Fatalf("GET (-post +get):\n%s", d)
	}
	r = agent.do(t, "PATCH", fmt.Sprintf("/api/v1/companies/%d", co.ID), map[string]any{"domain": ""})
	mustStatus(t, r, http.StatusOK)
	got = agentdesk.Company{}
	r.json(t, &got)
	if got.Domain != "" || got.Name != "Initech" || !got.UpdatedAt.After(co.UpdatedAt) {
		t.Fatalf("patched: %+v", got)
	}
	mustStatus(t, agent.do(t, "POST", "/api/v1/companies", map[string]any{"name": "Umbrella", "domain": "umbrella.example"}), http.StatusCreated)
	r = agent.do(t, "POST", "/api/v1/companies", map[string]any{"name": "Umbrella 2", "domain": "UMBRELLA.example"})
	mustStatus(t, r, http.StatusConflict)
	if _, f := r.errorKind(t); f != "domain" {
		t.Fatalf("duplicate domain names field %q", f)
	}

	cust := e.newCustomer(t, agent, map[string]any{"name": "Peter Gibbons", "company_id": co.ID})
	e.newCustomer(t, agent, map[string]any{"name": "Not at Initech"})
	r = agent.do(t, "GET", fmt.Sprintf("/api/v1/companies/%d/customers", co.ID), nil)
	var l List[agentdesk.Customer]
	r.json(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != cust.ID {
		t.Fatalf("company customers: %s", r.body)
	}
	r = agent.do(t, "GET", "/api/v1/companies?limit=1", nil)
	var cl List[agentdesk.Company]
	r.json(t, &cl)
	if len(cl.Items) != 1 || cl.Items[0].Name != "Umbrella" || cl.NextCursor == "" {
		t.Fatalf("companies page 1: %s", r.body)
	}
	r = agent.do(t, "GET", "/api/v1/companies?limit=1&cursor="+cl.NextCursor, nil)
	cl = List[agentdesk.Company]{}
	r.json(t, &cl)
	if len(cl.Items) != 1 || cl.Items[0].ID != co.ID || cl.NextCursor != "" {
		t.Fatalf("companies page 2: %s", r.body)
	}
	mustStatus(t, agent.do(t, "GET", "/api/v1/companies/999999", nil), http.StatusNotFound)
	mustStatus(t, agent.do(t, "GET", "/api/v1/companies/999999/customers", nil), http.StatusNotFound)
}

func TestOrdersAndLifetimeValue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sup := e.clients["supervisor"]
	c := e.newCustomer(t, e.clients["agent"], map[string]any{"name": "Buyer"})
	order := func(ext string, cents int64, cur, status, at string) map[string]any {
		return map[string]any{"external_id": ext, "customer_id": c.ID, "amount_cents": cents, "currency": cur, "status": status,
			"placed_at": at, "items": []map[string]any{{"sku": "A1", "name": "Widget", "quantity": 1, "price_cents": cents}}}
	}
	mustStatus(t, e.clients["agent"].do(t, "POST", "/api/v1/orders", order("1001", 1000, "EUR", "paid", "2026-01-01T10:00:00Z")), http.StatusForbidden)
	for _, o := range []map[string]any{
		order("1001", 1000, "EUR", "paid", "2026-01-01T10:00:00Z"),
		order("1002", 2550, "eur", "delivered", "2026-02-01T10:00:00Z"),
		order("1003", 9999, "EUR", "refunded", "2026-03-01T10:00:00Z"),
		order("1004", 500, "EUR", "cancelled", "2026-04-01T10:00:00Z"),
		order("1005", 4200, "USD", "shipped", "2026-05-01T10:00:00Z"),
	} {
		mustStatus(t, sup.do(t, "POST", "/api/v1/orders", o), http.StatusCreated)
	}
	ltv := func() map[string]int64 {
		r := e.clients["agent"].do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/lifetime-value", c.ID), nil)
		mustStatus(t, r, http.StatusOK)
		var v lifetimeValue
		r.json(t, &v)
		return v.Totals
	}
	if d := cmp.Diff(map[string]int64{"EUR": 3550, "USD": 4200}, ltv()); d != "" {
		t.Fatalf("lifetime value (-want +got):\n%s", d)
	}
	// The same external id updates: a refund leaves the lifetime value.
	r := sup.do(t, "POST", "/api/v1/orders", order("1002", 2550, "EUR", "refunded", "2026-02-01T10:00:00Z"))
	mustStatus(t, r, http.StatusOK)
	if d := cmp.Diff(map[string]int64{"EUR": 1000, "USD": 4200}, ltv()); d != "" {
		t.Fatalf("lifetime value after refund (-want +got):\n%s", d)
	}
	var o agentdesk.Order
	r.json(t, &o)
	r = e.clients["agent"].do(t, "GET", fmt.Sprintf("/api/v1/orders/%d", o.ID), nil)
	mustStatus(t, r, http.StatusOK)
	var got agentdesk.Order
	r.json(t, &got)
	if d := cmp.Diff(o, got); d != "" {
		t.Fatalf("GET order (-post +get):\n%s", d)
	}

	// Most recently placed first, in keyset pages.
	var ext []string
	cursor := ""
	for range 5 {
		r := e.clients["agent"].do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/orders?limit=2&cursor=%s", c.ID, cursor), nil)
		mustStatus(t, r, http.StatusOK)
		var l List[agentdesk.Order]
		r.json(t, &l)
		for _, o := range l.Items {
			ext = append(ext, o.ExternalID)
		}
		if cursor = l.NextCursor; cursor == "" {
			break
		}
	}
	if d := cmp.Diff([]string{"1005", "1004", "1003", "1002", "1001"}, ext); d != "" {
		t.Fatalf("order pages (-want +got):\n%s", d)
	}
	r = e.clients["agent"].do(t, "GET", "/api/v1/orders?external_id=1002", nil)
	var found List[agentdesk.Order]
	r.json(t, &found)
	if len(found.Items) != 1 || found.Items[0].ID != o.ID {
		t.Fatalf("order by external id: %s", r.body)
	}
	r = e.clients["agent"].do(t, "GET", fmt.Sprintf("/api/v1/orders?customer_id=%d&limit=1", c.ID), nil)
	found = List[agentdesk.Order]{}
	r.json(t, &found)
	if len(found.Items) != 1 || found.Items[0].ExternalID != "1005" || found.NextCursor == "" {
		t.Fatalf("orders by customer: %s", r.body)
	}
	mustStatus(t, e.clients["agent"].do(t, "GET", "/api/v1/orders", nil), http.StatusUnprocessableEntity)
	mustStatus(t, e.clients["agent"].do(t, "GET", "/api/v1/customers/999999/lifetime-value", nil), http.StatusNotFound)
	mustStatus(t, e.clients["agent"].do(t, "GET", "/api/v1/customers/999999/orders", nil), http.StatusNotFound)
	r = sup.do(t, "POST", "/api/v1/orders", map[string]any{"external_id": "x", "customer_id": 999999, "amount_cents": 1, "currency": "EUR", "placed_at": "2026-01-01T00:00:00Z"})
	mustStatus(t, r, http.StatusUnprocessableEntity)
	if _, f := r.errorKind(t); f != "customer_id" {
		t.Fatalf("unknown customer names %q", f)
	}
}

func TestCustomerBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent := e.clients["agent"]
	held := e.newCustomer(t, agent, map[string]any{"name": "Holder", "identities": []map[string]string{{"kind": "email", "value": "taken@example.com"}, {"kind": "phone", "value": "+442079460958"}}})
	customer := fmt.Sprintf("/api/v1/customers/%d", held.ID)
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, tc := range []struct {
		name         string
		method, path string
		body         any
		status       int
		field        string
	}{
		{"malformed json", "POST", "/api/v1/customers", `{"name": "x",`, 400, ""},
		{"not an object", "POST", "/api/v1/customers", `[1,2]`, 400, ""},
		{"wrong type", "POST", "/api/v1/customers", `{"name": 5}`, 400, "name"},
		{"wrong nested type", "POST", "/api/v1/customers", `{"identities": [{"kind": "email", "value": 7}]}`, 400, "identities.value"},
		{"unknown field", "POST", "/api/v1/customers", `{"name": "x", "nickname": "y"}`, 400, "nickname"},
		{"oversize body", "POST", "/api/v1/customers", big, 413, ""},
		{"invalid email", "POST", "/api/v1/customers", `{"identities": [{"kind": "email", "value": "not-an-email"}]}`, 422, "identities.value"},
		{"invalid phone", "POST", "/api/v1/customers", `{"identities": [{"kind": "phone", "value": "+1 555"}]}`, 422, "identities.value"},
		{"phone without country", "POST", "/api/v1/customers", `{"identities": [{"kind": "phone", "value": "030 1234567"}]}`, 422, "identities.value"},
		{"unknown identity kind", "POST", "/api/v1/customers", `{"identities": [{"kind": "fax", "value": "1"}]}`, 422, "identities.kind"},
		{"duplicate email", "POST", "/api/v1/customers", `{"name": "Dup", "identities": [{"kind": "email", "value": "new@example.com"}, {"kind": "email", "value": "TAKEN@example.com"}]}`, 409, "identities.value"},
		{"duplicate phone as typed differently", "POST", "/api/v1/customers", `{"identities": [{"kind": "phone", "value": "+44 20 7946 0958"}]}`, 409, "identities.value"},
		{"duplicate within request", "POST", "/api/v1/customers", `{"identities": [{"kind": "email", "value": "a@example.com"}, {"kind": "email", "value": "A@example.com"}]}`, 409, "identities.value"},
		{"unknown company", "POST", "/api/v1/customers", `{"name": "x", "company_id": 999999}`, 422, "company_id"},
		{"bad stage", "POST", "/api/v1/customers", `{"lifecycle_stage": "vip"}`, 422, "lifecycle_stage"},
		{"bad channel", "POST", "/api/v1/customers", `{"preferred_channel": "pigeon"}`, 422, "preferred_channel"},
		{"patch wrong type", "PATCH", customer, `{"company_id": "abc"}`, 422, "company_id"},
		{"patch empty stage", "PATCH", customer, `{"lifecycle_stage": ""}`, 422, "lifecycle_stage"},
		{"patch unknown field", "PATCH", customer, `{"vip": true}`, 400, "vip"},
		{"patch missing customer", "PATCH", "/api/v1/customers/999999", `{"name": "x"}`, 404, ""},
		{"add duplicate identity", "POST", customer + "/identities", `{"kind": "email", "value": "taken@example.com"}`, 409, "value"},
		{"add invalid phone", "POST", customer + "/identities", `{"kind": "phone", "value": "12"}`, 422, "value"},
		{"merge without id", "POST", customer + "/merge", `{}`, 403, ""}, // agents may not merge at all
		{"bad cursor", "GET", "/api/v1/customers?cursor=bad!", nil, 422, "cursor"},
		{"bad limit", "GET", "/api/v1/customers?limit=0", nil, 422, "limit"},
		{"company empty name", "POST", "/api/v1/companies", `{"name": " "}`, 422, "name"},
		{"company bad domain", "POST", "/api/v1/companies", `{"name": "x", "domain": "not a domain"}`, 422, "domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.dumpRows(t)
			r := agent.do(t, tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if kind, field := r.errorKind(t); field != tc.field || kind == "" {
				t.Errorf("error %s names field %q, want %q: %s", kind, field, tc.field, r.body)
			}
			if d := cmp.Diff(before, e.dumpRows(t)); d != "" {
				t.Errorf("database changed (-before +after):\n%s", d)
			}
		})
	}
}
