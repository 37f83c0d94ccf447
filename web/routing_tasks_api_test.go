package web

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"agentdesk/agentdesk"
	"agentdesk/routing"
)

// A channel integration with an API token queues contacts, reports a
// customer who hung up, turns a waiting caller into a callback and withdraws
// a contact; what the database holds follows each call.
func TestRoutingTasksAPIForIntegrations(t *testing.T) {
	t.Parallel()
	e, _ := routingEnv(t)
	token := e.clients["token"]
	customer := struct{ ID int64 }{e.deskCustomer("Caller")}
	var res response

	create := func(body map[string]any) routing.Task {
		t.Helper()
		var tk routing.Task
		res := token.do(t, "POST", "/api/v1/tasks", body)
		wantStatus(t, "create task", res, 201)
		res.json(t, &tk)
		return tk
	}
	call := create(map[string]any{"channel": "voice", "priority": "high", "customer_id": customer.ID,
		"attributes": map[string]any{"ivr": "billing"}})
	if call.State != routing.StateQueued || call.Channel != agentdesk.ChannelVoice || call.Priority != agentdesk.PriorityHigh ||
		call.CustomerID == nil || *call.CustomerID != customer.ID || call.Attributes["ivr"] != "billing" {
		t.Fatalf("created task = %+v", call)
	}
	var pos routing.Position
	token.do(t, "GET", fmt.Sprintf("/api/v1/tasks/%d/position", call.ID), nil).json(t, &pos)
	if pos.Position != 1 {
		t.Fatalf("position = %+v", pos)
	}

	// The caller asks to be called back: an outbound call takes its place.
	var cb routing.Task
	res = token.do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/callback", call.ID), map[string]string{"number": "+49 30 1234567"})
	wantStatus(t, "callback", res, 201)
	res.json(t, &cb)
	if cb.Direction != "outbound" || cb.Callback != "+49 30 1234567" || cb.ParentTaskID == nil || *cb.ParentTaskID != call.ID ||
		!cb.Times.EnqueuedAt.Equal(call.Times.EnqueuedAt) {
		t.Fatalf("callback task = %+v", cb)
	}
	if state := taskState(t, e, call.ID); state != "cancelled callback requested" {
		t.Fatalf("original task = %q", state)
	}

	// Another caller hangs up: the wait and the reason are kept.
	chat := create(map[string]any{"channel": "chat"})
	var ab routing.Task
	res = token.do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/abandon", chat.ID), map[string]string{"reason": "hung up"})
	wantStatus(t, "abandon", res, 200)
	res.json(t, &ab)
	if ab.State != routing.StateAbandoned || ab.Reason != "hung up" || ab.Times.WaitSeconds == nil {
		t.Fatalf("abandoned = %+v", ab)
	}
	wantStatus(t, "abandon twice", token.do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/abandon", chat.ID), nil), 409)
	email := create(map[string]any{"channel": "email"})
	res = e.clients["supervisor"].do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/cancel", email.ID), nil)
	wantStatus(t, "cancel", res, 200)
	if state := taskState(t, e, email.ID); state != "cancelled cancelled" {
		t.Fatalf("cancelled task = %q", state)
	}

	// A retried create queues once.
	a := token.do(t, "POST", "/api/v1/tasks", map[string]any{"channel": "chat", "attributes": map[string]any{"k": "retry"}}, IdempotencyHeader, "task-1")
	b := token.do(t, "POST", "/api/v1/tasks", map[string]any{"channel": "chat", "attributes": map[string]any{"k": "retry"}}, IdempotencyHeader, "task-1")
	if a.status != 201 || b.status != 201 || string(a.body) != string(b.body) {
		t.Fatalf("idempotent create: %d %d", a.status, b.status)
	}
	if n := e.deskCount(`SELECT count(*) FROM tasks WHERE attributes->>'k' = 'retry'`); n != 1 {
		t.Fatalf("%d tasks from one retried create", n)
	}

	// Bad input names the field and stores nothing.
	before := e.deskCount(`SELECT count(*) FROM tasks`)
	events := e.deskCount(`SELECT count(*) FROM task_events`)
	bad := []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"unknown field", "POST", "/api/v1/tasks", map[string]any{"channel": "chat", "colour": "red"}, 400, "colour"},
		{"wrong type", "POST", "/api/v1/tasks", map[string]any{"channel": 7}, 400, "channel"},
		{"malformed", "POST", "/api/v1/tasks", "{", 400, ""},
		{"no channel", "POST", "/api/v1/tasks", map[string]any{}, 422, "channel"},
		{"unknown channel", "POST", "/api/v1/tasks", map[string]any{"channel": "fax"}, 422, "channel"},
		{"bad priority", "POST", "/api/v1/tasks", map[string]any{"channel": "chat", "priority": "asap"}, 422, "priority"},
		{"skill level", "POST", "/api/v1/tasks", map[string]any{"channel": "chat", "skills": map[string]int{"french": 9}}, 422, "skills"},
		{"foreign ticket", "POST", "/api/v1/tasks", map[string]any{"channel": "chat", "ticket_id": 987654}, 422, "ticket_id"},
		{"unknown queue", "POST", "/api/v1/tasks", map[string]any{"channel": "chat", "queue_id": 987654}, 404, ""},
		{"oversize", "POST", "/api/v1/tasks", map[string]any{"channel": "chat", "attributes": map[string]string{"x": strings.Repeat("x", 70<<10)}}, 413, ""},
		{"long reason", "POST", fmt.Sprintf("/api/v1/tasks/%d/abandon", cb.ID), map[string]string{"reason": strings.Repeat("r", 600)}, 422, "reason"},
		{"bad number", "POST", fmt.Sprintf("/api/v1/tasks/%d/callback", cb.ID), map[string]string{"number": "call me"}, 422, "number"},
		{"no such task", "POST", "/api/v1/tasks/987654/abandon", nil, 404, ""},
		{"callback of an ended task", "POST", fmt.Sprintf("/api/v1/tasks/%d/callback", chat.ID), map[string]string{"number": "+4930123"}, 409, ""},
	}
	for _, tc := range bad {
		res := token.do(t, tc.method, tc.path, tc.body)
		if res.status != tc.status {
			t.Errorf("%s: %d, want %d: %s", tc.name, res.status, tc.status, res.body)
			continue
		}
		if _, field := res.errorKind(t); tc.field != "" && field != tc.field {
			t.Errorf("%s: field %q, want %q", tc.name, field, tc.field)
		}
	}
	if after := e.deskCount(`SELECT count(*) FROM tasks`); after != before {
		t.Errorf("bad input changed tasks: %d → %d", before, after)
	}
	if after := e.deskCount(`SELECT count(*) FROM task_events`); after != events {
		t.Errorf("bad input changed task events: %d → %d", events, after)
	}

	// Roles: agents and anonymous callers cannot speak for customers.
	wantStatus(t, "agent creates", e.clients["agent"].do(t, "POST", "/api/v1/tasks", map[string]any{"channel": "chat"}), 403)
	wantStatus(t, "agent abandons", e.clients["agent"].do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/abandon", cb.ID), nil), 403)
	wantStatus(t, "anonymous", e.clients["anon"].do(t, "POST", "/api/v1/tasks", map[string]any{"channel": "chat"}), 401)
}

// taskState is a task's state and reason as the database holds them.
func taskState(t *testing.T, e *testEnv, id int64) string {
	t.Helper()
	var s string
	if err := e.store.DB().QueryRow(context.Background(), `SELECT state || ' ' || reason FROM tasks WHERE id = $1`, id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Abandon, cancel and callback by an integration are in the audit log,
// written with the change; a refused one leaves no entry.
func TestRoutingTasksAPIAudited(t *testing.T) {
	t.Parallel()
	e, _ := routingEnv(t)
	token := e.clients["token"]
	ids := make([]int64, 3)
	for i := range ids {
		var tk routing.Task
		res := token.do(t, "POST", "/api/v1/tasks", map[string]any{"channel": "voice"})
		wantStatus(t, "create", res, 201)
		res.json(t, &tk)
		ids[i] = tk.ID
	}
	wantStatus(t, "abandon", token.do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/abandon", ids[0]), map[string]string{"reason": "hung up"}), 200)
	wantStatus(t, "cancel", token.do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/cancel", ids[1]), nil), 200)
	wantStatus(t, "callback", token.do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/callback", ids[2]), map[string]string{"number": "+4930123456"}), 201)
	wantStatus(t, "abandon again", token.do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/abandon", ids[0]), nil), 409)
	for _, want := range []struct {
		action string
		id     int64
	}{{"task.abandon", ids[0]}, {"task.cancel", ids[1]}, {"task.callback", ids[2]}} {
		if n := e.deskCount(`SELECT count(*) FROM audit_log WHERE action = $1 AND target = $2`, want.action, fmt.Sprintf("task:%d", want.id)); n != 1 {
			t.Errorf("%s of task %d: %d audit entries, want 1", want.action, want.id, n)
		}
	}
}
