package web

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"agentdesk/agentdesk"
)

// postForm sends a contact form for the env's account.
func (e *testEnv) postForm(t *testing.T, body map[string]string) response {
	t.Helper()
	return e.clients["anon"].do(t, "POST", fmt.Sprintf("/api/v1/inbound/form?account=%d", e.account), body)
}

func TestMergeAndUnmergeRestoreExactly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent, sup := e.clients["agent"], e.clients["supervisor"]
	r := agent.do(t, "POST", "/api/v1/companies", map[string]any{"name": "Bob's Shop"})
	mustStatus(t, r, http.StatusCreated)
	var co agentdesk.Company
	r.json(t, &co)

	// The survivor has no name and no company; the merge fills them in.
	survivor := e.newCustomer(t, agent, map[string]any{"attributes": map[string]string{"tier": "gold"},
		"identities": []map[string]string{{"kind": "email", "value": "bob@work.example"}}})
	merged := e.newCustomer(t, agent, map[string]any{"name": "Bob Builder", "company_id": co.ID, "preferred_channel": "chat",
		"attributes": map[string]string{"tier": "silver", "newsletter": "yes"},
		"identities": []map[string]string{{"kind": "email", "value": "bob@home.example"}, {"kind": "phone", "value": "+4930901820"}}})
	for _, f := range []map[string]string{
		{"email": "bob@work.example", "message": "Invoice question"},
		{"email": "bob@home.example", "message": "Where is my order?"},
		{"email": "bob@home.example", "message": "Still waiting"},
		{"phone": "+49 30 901820", "message": "Call me back"},
	} {
		mustStatus(t, e.postForm(t, f), http.StatusAccepted)
	}
	for _, o := range []struct {
		ext      string
		customer int64
		cents    int64
	}{{"A-1", survivor.ID, 1000}, {"B-1", merged.ID, 2000}, {"B-2", merged.ID, 3000}} {
		mustStatus(t, sup.do(t, "POST", "/api/v1/orders", map[string]any{"external_id": o.ext, "customer_id": o.customer,
			"amount_cents": o.cents, "currency": "EUR", "status": "paid", "placed_at": "2026-03-01T12:00:00Z"}), http.StatusCreated)
	}
	before := e.dumpCustomers(t, survivor.ID, merged.ID)
	if len(before[fmt.Sprintf("%d/tickets", merged.ID)]) != 3 || len(before[fmt.Sprintf("%d/messages", merged.ID)]) != 3 {
		t.Fatalf("setup: merged customer's rows: %v", before)
	}

	mergePath := fmt.Sprintf("/api/v1/customers/%d/merge", survivor.ID)
	mustStatus(t, agent.do(t, "POST", mergePath, map[string]int64{"merge_id": merged.ID}), http.StatusForbidden)
	r = sup.do(t, "POST", mergePath, map[string]int64{"merge_id": merged.ID})
	mustStatus(t, r, http.StatusCreated)
	var m agentdesk.Merge
	r.json(t, &m)
	if d := cmp.Diff(map[string]int{"identities": 2, "tickets": 3, "messages": 3, "orders": 2}, m.Moved); d != "" {
		t.Fatalf("moved (-want +got):\n%s", d)
	}

	// Everything of the merged customer is on the survivor now.
	var got agentdesk.Customer
	r = agent.do(t, "GET", fmt.Sprintf("/api/v1/customers/%d", survivor.ID), nil)
	r.json(t, &got)
	if got.Name != "Bob Builder" || got.CompanyID == nil || *got.CompanyID != co.ID || got.PreferredChannel != "chat" ||
		!cmp.Equal(got.Attributes, map[string]string{"tier": "gold", "newsletter": "yes"}) || len(got.Identities) != 3 {
		t.Fatalf("survivor after merge: %+v", got)
	}
	r = agent.do(t, "GET", fmt.Sprintf("/api/v1/customers/%d", merged.ID), nil)
	r.json(t, &got)
	if got.MergedInto == nil || *got.MergedInto != survivor.ID || len(got.Identities) != 0 {
		t.Fatalf("merged after merge: %+v", got)
	}
	r = agent.do(t, "GET", "/api/v1/customers?q=bob%40home.example", nil)
	var l List[agentdesk.Customer]
	r.json(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != survivor.ID {
		t.Fatalf("lookup by the merged customer's email: %s", r.body)
	}
	r = agent.do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/lifetime-value", survivor.ID), nil)
	var v lifetimeValue
	r.json(t, &v)
	if v.Totals["EUR"] != 6000 {
		t.Fatalf("survivor lifetime value: %s", r.body)
	}
	// A new contact from the merged customer's address lands on the survivor.
	mustStatus(t, e.postForm(t, map[string]string{"email": "bob@home.example", "message": "after the merge"}), http.StatusAccepted)
	if n := e.count(t, `SELECT count(*) FROM tickets WHERE customer_id = $1`, survivor.ID); n != 5 {
		t.Fatalf("survivor tickets after new contact: %d", n)
	}
	r = agent.do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/merges", merged.ID), nil)
	var ml List[agentdesk.Merge]
	r.json(t, &ml)
	if len(ml.Items) != 1 || ml.Items[0].ID != m.ID {
		t.Fatalf("merges of merged customer: %s", r.body)
	}

	// Refusals: each a clear 4xx, nothing changed.
	third := e.newCustomer(t, agent, map[string]any{"name": "Third"})
	for _, tc := range []struct {
		name   string
		path   string
		body   any
		status int
		field  string
	}{
		{"into itself", mergePath, map[string]int64{"merge_id": survivor.ID}, 422, "merge_id"},
		{"missing merge_id", mergePath, map[string]int64{}, 422, "merge_id"},
		{"already merged", fmt.Sprintf("/api/v1/customers/%d/merge", third.ID), map[string]int64{"merge_id": merged.ID}, 409, ""},
		{"into a merged customer", fmt.Sprintf("/api/v1/customers/%d/merge", merged.ID), map[string]int64{"merge_id": third.ID}, 409, ""},
		{"unknown customer", mergePath, map[string]int64{"merge_id": 999999}, 404, ""},
		{"change a merged customer", fmt.Sprintf("/api/v1/customers/%d/identities", merged.ID), map[string]string{"kind": "visitor", "value": "v9"}, 409, ""},
		{"unknown merge", "/api/v1/merges/999999/undo", nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dump := e.dumpRows(t)
			r := sup.do(t, "POST", tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if _, field := r.errorKind(t); field != tc.field {
				t.Errorf("field %q, want %q", field, tc.field)
			}
			if d := cmp.Diff(dump, e.dumpRows(t)); d != "" {
				t.Errorf("database changed:\n%s", d)
			}
		})
	}

	// The ticket opened after the merge stays with the survivor on undo;
	// set it aside so the before/after comparison is of the original rows.
	var lateTicket int64
	if err := e.store.DB().QueryRow(t.Context(), `SELECT max(id) FROM tickets WHERE customer_id = $1`, survivor.ID).Scan(&lateTicket); err != nil {
		t.Fatal(err)
	}

	undo := fmt.Sprintf("/api/v1/merges/%d/undo", m.ID)
	mustStatus(t, agent.do(t, "POST", undo, nil), http.StatusForbidden)
	r = sup.do(t, "POST", undo, nil)
	mustStatus(t, r, http.StatusOK)
	r.json(t, &m)
	if m.UndoneAt == nil {
		t.Fatalf("undo: %s", r.body)
	}
	if _, err := e.store.DB().Exec(t.Context(), `DELETE FROM messages WHERE ticket_id = $1`, lateTicket); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.DB().Exec(t.Context(), `DELETE FROM tickets WHERE id = $1`, lateTicket); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, e.dumpCustomers(t, survivor.ID, merged.ID)); d != "" {
		t.Fatalf("unmerge did not restore both customers exactly (-before +after):\n%s", d)
	}

	r = sup.do(t, "POST", undo, nil)
	mustStatus(t, r, http.StatusConflict)
	if n := e.count(t, `SELECT count(*) FROM audit_log WHERE action IN ('customer.merge', 'customer.unmerge') AND target = $1`, fmt.Sprintf("customer:%d", survivor.ID)); n != 2 {
		t.Fatalf("audit entries: %d", n)
	}
}

// TestUnmergeInOrder: A into B, then B into C; undoing A→B first is refused
// until B→C is undone, and then both undo cleanly.
func TestUnmergeInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent, sup := e.clients["agent"], e.clients["supervisor"]
	var ids [3]int64
	for i, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		ids[i] = e.newCustomer(t, agent, map[string]any{"name": email, "identities": []map[string]string{{"kind": "email", "value": email}}}).ID
		mustStatus(t, e.postForm(t, map[string]string{"email": email, "message": "hello from " + email}), http.StatusAccepted)
	}
	before := e.dumpCustomers(t, ids[:]...)
	merge := func(survivor, merged int64) int64 {
		r := sup.do(t, "POST", fmt.Sprintf("/api/v1/customers/%d/merge", survivor), map[string]int64{"merge_id": merged})
		mustStatus(t, r, http.StatusCreated)
		var m agentdesk.Merge
		r.json(t, &m)
		return m.ID
	}
	ab := merge(ids[1], ids[0])
	bc := merge(ids[2], ids[1])
	if n := e.count(t, `SELECT count(*) FROM identities WHERE customer_id = $1`, ids[2]); n != 3 {
		t.Fatalf("C holds %d identities, want 3", n)
	}
	mustStatus(t, sup.do(t, "POST", fmt.Sprintf("/api/v1/merges/%d/undo", ab), nil), http.StatusConflict)
	mustStatus(t, sup.do(t, "POST", fmt.Sprintf("/api/v1/merges/%d/undo", bc), nil), http.StatusOK)
	mustStatus(t, sup.do(t, "POST", fmt.Sprintf("/api/v1/merges/%d/undo", ab), nil), http.StatusOK)
	if d := cmp.Diff(before, e.dumpCustomers(t, ids[:]...)); d != "" {
		t.Fatalf("not restored (-before +after):\n%s", d)
	}
}
