package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"agentdesk/agentdesk"
	"agentdesk/routing"
)

// routingEnv is a test server with a routing engine (not started: the test
// dispatches by hand, so nothing runs behind its back).
func routingEnv(t *testing.T) (*testEnv, *routing.Engine) {
	t.Helper()
	var eng *routing.Engine
	e := newEnv(t, func(s *Server) {
		eng = routing.New(s.store.DB(), nil, s.log, nil, routing.Config{})
		WithRouting(eng)(s)
	})
	return e, eng
}

func wantStatus(t *testing.T, what string, res response, status int) {
	t.Helper()
	if res.status != status {
		t.Fatalf("%s: %d, want %d: %s", what, res.status, status, res.body)
	}
}

func TestRoutingAPIAgentFlow(t *testing.T) {
	t.Parallel()
	e, eng := routingEnv(t)
	ctx := context.Background()
	admin, sup, agent, agent2 := e.clients["admin"], e.clients["supervisor"], e.clients["agent"], e.clients["agent2"]
	agentID := e.ids["agent"]

	// Admin sets up a queue, the agent's skills and capacity.
	var q routing.Queue
	res := admin.do(t, "POST", "/api/v1/queues", map[string]any{"name": "Billing", "channels": []string{"chat"},
		"required_skills": map[string]int{"billing": 3}, "service_level": map[string]int{"seconds": 30, "percent": 90}})
	wantStatus(t, "create queue", res, http.StatusCreated)
	res.json(t, &q)
	wantStatus(t, "create queue as agent", agent.do(t, "POST", "/api/v1/queues", map[string]any{"name": "X"}), http.StatusForbidden)
	res = admin.do(t, "POST", "/api/v1/queues", map[string]any{"name": "Y", "colour": "red"})
	if k, f := res.errorKind(t); res.status != http.StatusBadRequest || k != agentdesk.Invalid || f != "colour" {
		t.Fatalf("unknown field: %d %s %s", res.status, k, f)
	}
	res = admin.do(t, "PUT", fmt.Sprintf("/api/v1/queues/%d/business-hours", q.ID), map[string]any{"timezone": "Nowhere/Land"})
	wantStatus(t, "bad time zone", res, http.StatusUnprocessableEntity)
	wantStatus(t, "skills", admin.do(t, "PUT", fmt.Sprintf("/api/v1/agents/%d/skills", agentID), map[string]int{"billing": 4}), http.StatusOK)
	wantStatus(t, "skills of agent2", admin.do(t, "PUT", fmt.Sprintf("/api/v1/agents/%d/skills", e.ids["agent2"]), map[string]int{"billing": 4}), http.StatusOK)
	var ar routing.AgentRouting
	res = admin.do(t, "PUT", fmt.Sprintf("/api/v1/agents/%d/capacity", agentID), map[string]int{"chat": 2})
	wantStatus(t, "capacity", res, http.StatusOK)
	res.json(t, &ar)
	if ar.Capacity[agentdesk.ChannelChat] != 2 || ar.Skills["billing"] != 4 {
		t.Fatalf("agent routing = %+v", ar)
	}
	wantStatus(t, "capacity 99", admin.do(t, "PUT", fmt.Sprintf("/api/v1/agents/%d/capacity", agentID), map[string]int{"chat": 99}), http.StatusUnprocessableEntity)
	wantStatus(t, "other agent's routing", agent2.do(t, "GET", fmt.Sprintf("/api/v1/agents/%d/routing", agentID), nil), http.StatusForbidden)
	var audit List[struct {
		Action string `json:"action"`
		Target string `json:"target"`
	}]
	admin.do(t, "GET", "/api/v1/audit", nil).json(t, &audit)
	actions := map[string]bool{}
	for _, a := range audit.Items {
		actions[a.Action+" "+a.Target] = true
	}
	for _, want := range []string{fmt.Sprintf("queue.create queue:%d", q.ID), fmt.Sprintf("agent.skills agent:%d", agentID), fmt.Sprintf("agent.capacity agent:%d", agentID)} {
		if !actions[want] {
			t.Errorf("audit log lacks %q: %v", want, actions)
		}
	}

	// The agent signs in to routing; an API token cannot.
	var p routing.Presence
	res = agent.do(t, "PUT", "/api/v1/presence", map[string]string{"state": "available"})
	wantStatus(t, "presence", res, http.StatusOK)
	res.json(t, &p)
	if p.State != routing.Available {
		t.Fatalf("presence = %+v", p)
	}
	wantStatus(t, "presence by token", e.clients["token"].do(t, "PUT", "/api/v1/presence", map[string]string{"state": "available"}), http.StatusForbidden)
	wantStatus(t, "bad state", agent.do(t, "PUT", "/api/v1/presence", map[string]string{"state": "sleeping"}), http.StatusUnprocessableEntity)

	// A contact arrives and is offered to the agent.
	id, err := eng.Enqueue(ctx, agentdesk.TaskRequest{AccountID: e.account, Channel: agentdesk.ChannelChat, QueueID: q.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Dispatch(ctx); err != nil {
		t.Fatal(err)
	}
	task := fmt.Sprintf("/api/v1/tasks/%d", id)
	var tk routing.Task
	res = agent.do(t, "GET", task, nil)
	wantStatus(t, "get task", res, http.StatusOK)
	res.json(t, &tk)
	if tk.State != routing.StateOffered {
		t.Fatalf("task = %+v", tk)
	}
	wantStatus(t, "someone else's task", agent2.do(t, "GET", task, nil), http.StatusNotFound)
	wantStatus(t, "accept someone else's offer", agent2.do(t, "POST", task+"/accept", nil), http.StatusConflict)
	wantStatus(t, "accept", agent.do(t, "POST", task+"/accept", nil), http.StatusOK)
	res = agent.do(t, "POST", task+"/wrap-up", nil)
	wantStatus(t, "wrap-up", res, http.StatusOK)
	res.json(t, &tk)
	if tk.State != routing.StateWrapping {
		t.Fatalf("after wrap-up: %s", tk.State)
	}
	res = agent.do(t, "POST", task+"/complete", map[string]any{})
	if k, f := res.errorKind(t); res.status != http.StatusUnprocessableEntity || k != agentdesk.Invalid || f != "outcome.contact_reason_id" {
		t.Fatalf("complete without reason: %d %s %s", res.status, k, f)
	}
	var reason int64
	if err := e.store.DB().QueryRow(ctx, `INSERT INTO reasons (account_id, kind, name) VALUES ($1, 'contact', 'Invoice') RETURNING id`, e.account).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	res = agent.do(t, "POST", task+"/complete", map[string]any{"contact_reason_id": reason, "resolution_code": "solved"})
	wantStatus(t, "complete", res, http.StatusOK)
	res.json(t, &tk)
	if tk.State != routing.StateCompleted {
		t.Fatalf("after complete: %s", tk.State)
	}
	var evs List[routing.TaskEvent]
	res = sup.do(t, "GET", task+"/events", nil)
	wantStatus(t, "events", res, http.StatusOK)
	res.json(t, &evs)
	if len(evs.Items) != 5 { // new→queued→offered→assigned→wrapping→completed
		t.Fatalf("events = %+v", evs.Items)
	}
	wantStatus(t, "events as agent", agent.do(t, "GET", task+"/events", nil), http.StatusForbidden)
}

func TestRoutingAPISupervisor(t *testing.T) {
	t.Parallel()
	e, eng := routingEnv(t)
	ctx := context.Background()
	admin, sup, agent := e.clients["admin"], e.clients["supervisor"], e.clients["agent"]
	var q1, q2 routing.Queue
	admin.do(t, "POST", "/api/v1/queues", map[string]any{"name": "One"}).json(t, &q1)
	admin.do(t, "POST", "/api/v1/queues", map[string]any{"name": "Two"}).json(t, &q2)
	wantStatus(t, "default queue", admin.do(t, "PUT", "/api/v1/queue-defaults/chat", map[string]int64{"queue_id": q2.ID}), http.StatusNoContent)
	wantStatus(t, "default queue of nothing", admin.do(t, "PUT", "/api/v1/queue-defaults/chat", map[string]int64{"queue_id": 987654}), http.StatusUnprocessableEntity)

	id, err := eng.Enqueue(ctx, agentdesk.TaskRequest{AccountID: e.account, Channel: agentdesk.ChannelChat, QueueID: q1.ID})
	if err != nil {
		t.Fatal(err)
	}
	task := fmt.Sprintf("/api/v1/tasks/%d", id)
	var tk routing.Task
	res := sup.do(t, "POST", task+"/move", map[string]int64{"queue_id": q2.ID})
	wantStatus(t, "move", res, http.StatusOK)
	res.json(t, &tk)
	if tk.QueueID != q2.ID {
		t.Fatalf("queue after move = %d", tk.QueueID)
	}
	wantStatus(t, "move as agent", agent.do(t, "POST", task+"/move", map[string]int64{"queue_id": q1.ID}), http.StatusForbidden)
	res = sup.do(t, "PUT", task+"/priority", map[string]string{"priority": "urgent"})
	wantStatus(t, "priority", res, http.StatusOK)
	res.json(t, &tk)
	if tk.Priority != agentdesk.PriorityUrgent {
		t.Fatalf("priority = %s", tk.Priority)
	}
	wantStatus(t, "bad priority", sup.do(t, "PUT", task+"/priority", map[string]string{"priority": "asap"}), http.StatusUnprocessableEntity)

	var pos routing.Position
	sup.do(t, "GET", task+"/position", nil).json(t, &pos)
	if pos.Position != 1 {
		t.Fatalf("position = %+v", pos)
	}
	var p routing.Presence
	res = sup.do(t, "PUT", fmt.Sprintf("/api/v1/agents/%d/presence", e.ids["agent"]), map[string]string{"state": "away", "reason": "coaching"})
	wantStatus(t, "force presence", res, http.StatusOK)
	res.json(t, &p)
	if p.State != routing.Away || p.Reason != "coaching" {
		t.Fatalf("forced presence = %+v", p)
	}
	var all List[routing.Presence]
	sup.do(t, "GET", "/api/v1/agents/presence", nil).json(t, &all)
	if len(all.Items) != 1 {
		t.Fatalf("presences = %+v", all.Items)
	}
	var stats List[routing.QueueStats]
	res = agent.do(t, "GET", "/api/v1/queues/stats", nil)
	wantStatus(t, "stats", res, http.StatusOK)
	res.json(t, &stats)
	waiting := 0
	for _, s := range stats.Items {
		waiting += s.Waiting
	}
	if len(stats.Items) != 2 || waiting != 1 {
		t.Fatalf("stats = %+v", stats.Items)
	}
	wantStatus(t, "delete used queue", admin.do(t, "DELETE", fmt.Sprintf("/api/v1/queues/%d", q2.ID), nil), http.StatusConflict)
	wantStatus(t, "delete unused queue", admin.do(t, "DELETE", fmt.Sprintf("/api/v1/queues/%d", q1.ID), nil), http.StatusNoContent)
}
