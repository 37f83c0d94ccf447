package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"agentdesk/agentdesk"
)

// TestTicketsStayInTheirAccount: an admin of another account can neither
// read nor change this account's tickets, messages, customers' timelines,
// reasons, statuses, agents or teams, nor refer to them from its own
// tickets — every attempt is 404 or 422, and no row changes.
func TestTicketsStayInTheirAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	other, err := e.store.CreateAccount(ctx, "Other Co")
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := HashPassword(testPassword, cheapParams)
	intruder := &agentdesk.Agent{Email: "boss@other.example.com", Name: "Other admin", Role: agentdesk.RoleAdmin}
	if err := e.store.CreateAgent(ctx, other.ID, intruder, hash); err != nil {
		t.Fatal(err)
	}
	x := e.login("boss@other.example.com", testPassword)
	var theirCustomer int64
	if err := e.store.DB().QueryRow(ctx, `INSERT INTO customers (account_id, name) VALUES ($1, 'Theirs') RETURNING id`, other.ID).Scan(&theirCustomer); err != nil {
		t.Fatal(err)
	}

	// This account's things.
	customer := e.deskCustomer("Ours")
	reason := e.deskReason(agentdesk.ContactReason, "Ours", nil)
	var team agentdesk.Team
	e.clients["admin"].do(t, "POST", "/api/v1/teams", map[string]any{"name": "Ours"}).json(t, &team)
	var status agentdesk.CustomStatus
	e.clients["admin"].do(t, "POST", "/api/v1/statuses", map[string]any{"name": "ours", "maps_to": "open"}).json(t, &status)
	tk := e.deskTicket("agent", map[string]any{"subject": "Ours", "customer_id": customer, "message": map[string]any{"direction": "in", "body": "ours"}})
	before := e.deskSnapshot()

	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", fmt.Sprintf("/api/v1/tickets/%d", tk.ID), nil, 404},
		{"PATCH", fmt.Sprintf("/api/v1/tickets/%d", tk.ID), map[string]any{"priority": "urgent"}, 404},
		{"GET", fmt.Sprintf("/api/v1/tickets/%d/messages", tk.ID), nil, 404},
		{"POST", fmt.Sprintf("/api/v1/tickets/%d/messages", tk.ID), map[string]any{"kind": "note", "body": "x"}, 404},
		{"GET", fmt.Sprintf("/api/v1/customers/%d/timeline", customer), nil, 404},
		{"PATCH", fmt.Sprintf("/api/v1/reasons/%d", reason), map[string]any{"name": "Mine"}, 404},
		{"DELETE", fmt.Sprintf("/api/v1/reasons/%d", reason), nil, 404},
		{"PATCH", fmt.Sprintf("/api/v1/statuses/%d", status.ID), map[string]any{"name": "mine"}, 404},
		{"DELETE", fmt.Sprintf("/api/v1/statuses/%d", status.ID), nil, 404},
		{"GET", fmt.Sprintf("/api/v1/agents/%d", e.ids["agent"]), nil, 404},
		{"PATCH", fmt.Sprintf("/api/v1/agents/%d", e.ids["agent"]), map[string]any{"active": false}, 404},
		{"GET", fmt.Sprintf("/api/v1/teams/%d", team.ID), nil, 404},
		{"PATCH", fmt.Sprintf("/api/v1/teams/%d", team.ID), map[string]any{"private": true}, 404},
		// Referring to this account's rows from the other account's writes.
		{"POST", "/api/v1/tickets", map[string]any{"subject": "x", "customer_id": customer}, 422},
		{"POST", "/api/v1/tickets", map[string]any{"subject": "x", "customer_id": theirCustomer, "team_id": team.ID}, 422},
		{"POST", "/api/v1/tickets", map[string]any{"subject": "x", "customer_id": theirCustomer, "assignee_id": e.ids["agent"]}, 422},
		{"POST", "/api/v1/tickets", map[string]any{"subject": "x", "customer_id": theirCustomer, "outcome": map[string]any{"contact_reason_id": reason}}, 422},
		{"POST", "/api/v1/tickets", map[string]any{"subject": "x", "customer_id": theirCustomer, "custom_status": "ours"}, 422},
		{"POST", "/api/v1/teams", map[string]any{"name": "Spies", "member_ids": []int64{e.ids["agent"]}}, 422},
		{"POST", "/api/v1/reasons", map[string]any{"kind": "contact", "name": "Under theirs", "parent_id": reason}, 422},
	} {
		if res := x.do(t, c.method, c.path, c.body); res.status != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, res.status, c.status, res.body)
		}
	}
	for _, path := range []string{"/api/v1/tickets", "/api/v1/reasons", "/api/v1/teams"} {
		var l struct {
			Items []map[string]any `json:"items"`
		}
		res := x.do(t, "GET", path, nil)
		res.json(t, &l)
		if res.status != http.StatusOK || len(l.Items) != 0 {
			t.Errorf("%s from the other account: %d, %d items", path, res.status, len(l.Items))
		}
	}
	var sl statusList
	x.do(t, "GET", "/api/v1/statuses", nil).json(t, &sl)
	if len(sl.Items) != 0 {
		t.Errorf("statuses leak: %+v", sl.Items)
	}
	after := e.deskSnapshot()
	for _, table := range deskTables {
		if table != "audit_log" && before[table] != after[table] {
			t.Errorf("table %s changed", table)
		}
	}
}
