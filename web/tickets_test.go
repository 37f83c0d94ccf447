package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"agentdesk/agentdesk"
)

// deskCustomer adds a customer straight in the database: the tickets tests
// need one to hang tickets on, not the customer API.
func (e *testEnv) deskCustomer(name string) int64 {
	e.t.Helper()
	var id int64
	err := e.store.DB().QueryRow(context.Background(), `INSERT INTO customers (account_id, name) VALUES ($1, $2) RETURNING id`, e.account, name).Scan(&id)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// deskReason creates a reason through the API as admin.
func (e *testEnv) deskReason(kind agentdesk.ReasonKind, name string, parent *int64) int64 {
	e.t.Helper()
	res := e.clients["admin"].do(e.t, "POST", "/api/v1/reasons", reasonRequest{Kind: kind, Name: name, ParentID: parent})
	if res.status != http.StatusCreated {
		e.t.Fatalf("create reason %s: %d %s", name, res.status, res.body)
	}
	var r agentdesk.Reason
	res.json(e.t, &r)
	return r.ID
}

func (e *testEnv) deskTicket(c string, body map[string]any) ticketCreated {
	e.t.Helper()
	res := e.clients[c].do(e.t, "POST", "/api/v1/tickets", body)
	if res.status != http.StatusCreated {
		e.t.Fatalf("create ticket: %d %s", res.status, res.body)
	}
	var tc ticketCreated
	res.json(e.t, &tc)
	return tc
}

func (e *testEnv) deskCount(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.store.DB().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestTicketRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent := e.clients["agent"]
	customer := e.deskCustomer("Ada")
	billing := e.deskReason(agentdesk.ContactReason, "Billing", nil)
	refund := e.deskReason(agentdesk.ContactReason, "Refund request", &billing)
	expensive := e.deskReason(agentdesk.CancellationReason, "Too expensive", nil)

	created := e.deskTicket("agent", map[string]any{
		"subject": "Cancel my plan", "customer_id": customer, "channel": "chat", "tags": []string{"VIP", "vip", "churn"},
		"message": map[string]any{"direction": "in", "body": "Please cancel"},
	})
	if created.Status != agentdesk.StatusNew || created.Message == nil || created.Message.Kind != agentdesk.KindChat || created.Message.TicketID != created.ID {
		t.Fatalf("created: %+v message %+v", created.Ticket, created.Message)
	}
	if strings.Join(created.Tags, ",") != "vip,churn" {
		t.Fatalf("tags not normalised: %v", created.Tags)
	}
	path := fmt.Sprintf("/api/v1/tickets/%d", created.ID)

	// Take it, reply, and the first response is recorded.
	res := agent.do(t, "PATCH", path, map[string]any{"assignee_id": e.ids["agent"], "priority": "high"})
	if res.status != http.StatusOK {
		t.Fatalf("assign: %d %s", res.status, res.body)
	}
	res = agent.do(t, "POST", path+"/messages", map[string]any{"direction": "out", "body": "Sorry to see you go"})
	if res.status != http.StatusCreated {
		t.Fatalf("reply: %d %s", res.status, res.body)
	}
	var reply agentdesk.Message
	res.json(t, &reply)
	if reply.AuthorID == nil || *reply.AuthorID != e.ids["agent"] || reply.Meta["delivery"] != "not_sent" {
		t.Fatalf("reply without a sender: %+v", reply)
	}
	res = agent.do(t, "POST", path+"/messages", map[string]any{"kind": "note", "body": "offered 20% off"})
	if res.status != http.StatusCreated {
		t.Fatalf("note: %d %s", res.status, res.body)
	}
	var got agentdesk.Ticket
	agent.do(t, "GET", path, nil).json(t, &got)
	if got.Status != agentdesk.StatusOpen || got.Times.FirstResponseAt == nil || got.Times.FirstResponseSeconds == nil || got.Priority != agentdesk.PriorityHigh {
		t.Fatalf("after reply: %+v", got)
	}

	// Wrap-up: a cancellation needs its reason, and the reasons must be of
	// the right kind.
	res = agent.do(t, "PATCH", path, map[string]any{"status": "solved", "outcome": map[string]any{"contact_reason_id": refund, "resolution_code": "cancellation"}})
	if k, f := res.errorKind(t); res.status != 422 || k != agentdesk.Invalid || f != "outcome.cancellation_reason_id" {
		t.Fatalf("cancel without reason: %d %s", res.status, res.body)
	}
	res = agent.do(t, "PATCH", path, map[string]any{"status": "solved", "outcome": map[string]any{
		"contact_reason_id": refund, "resolution_code": "cancellation", "cancellation_reason_id": expensive, "revenue_lost_cents": 4900, "retention_offered": true}})
	if res.status != http.StatusOK {
		t.Fatalf("solve: %d %s", res.status, res.body)
	}
	res.json(t, &got)
	if got.Times.ResolvedAt == nil || got.Times.ResolutionSeconds == nil || got.Outcome.RevenueLostCents != 4900 || *got.Outcome.CancellationReasonID != expensive {
		t.Fatalf("solved: %+v", got)
	}

	// The conversation, oldest first, in pages.
	var page1, page2 List[agentdesk.Message]
	agent.do(t, "GET", path+"/messages?limit=2", nil).json(t, &page1)
	if len(page1.Items) != 2 || page1.NextCursor == "" || page1.Items[0].Direction != agentdesk.DirIn {
		t.Fatalf("page 1: %+v", page1)
	}
	agent.do(t, "GET", path+"/messages?limit=2&cursor="+page1.NextCursor, nil).json(t, &page2)
	if len(page2.Items) != 1 || page2.Items[0].Kind != agentdesk.KindNote || page2.NextCursor != "" {
		t.Fatalf("page 2: %+v", page2)
	}
	// The customer's timeline, newest first, with a second ticket.
	e.deskTicket("supervisor", map[string]any{"subject": "Invoice", "customer_id": customer, "message": map[string]any{"kind": "email", "direction": "in", "body": "where is my invoice"}})
	var tl List[agentdesk.Message]
	agent.do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/timeline", customer), nil).json(t, &tl)
	if len(tl.Items) != 4 || tl.Items[0].Kind != agentdesk.KindEmail || tl.Items[3].Direction != agentdesk.DirIn {
		t.Fatalf("timeline: %+v", tl.Items)
	}
	if res := agent.do(t, "GET", "/api/v1/customers/999999/timeline", nil); res.status != 404 {
		t.Fatalf("unknown customer timeline: %d", res.status)
	}

	// Lists and their filters.
	for q, want := range map[string]int{
		"assignee=me": 1, "unassigned=true": 1, "status=solved": 1, "status=new,open": 1, "channel=chat": 1,
		"tag=vip": 1, "priority=high": 1, fmt.Sprintf("customer=%d", customer): 2, "": 2,
	} {
		var l List[agentdesk.Ticket]
		res := agent.do(t, "GET", "/api/v1/tickets?"+q, nil)
		res.json(t, &l)
		if res.status != 200 || len(l.Items) != want {
			t.Errorf("?%s: %d, %d tickets, want %d", q, res.status, len(l.Items), want)
		}
	}
	if res := e.clients["token"].do(t, "GET", "/api/v1/tickets?assignee=me", nil); res.status != 422 {
		t.Errorf("assignee=me for a token: %d", res.status)
	}

	// A create retried with the same Idempotency-Key creates once.
	body := map[string]any{"subject": "Retried", "customer_id": customer, "message": map[string]any{"direction": "in", "body": "hello"}}
	a := agent.do(t, "POST", "/api/v1/tickets", body, IdempotencyHeader, "k-1")
	b := agent.do(t, "POST", "/api/v1/tickets", body, IdempotencyHeader, "k-1")
	if a.status != 201 || b.status != 201 || string(a.body) != string(b.body) || b.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("idempotent create: %d %d", a.status, b.status)
	}
	if n := e.deskCount(`SELECT count(*) FROM tickets WHERE subject = 'Retried'`); n != 1 {
		t.Fatalf("%d tickets from one retried create", n)
	}
}

func TestCustomStatusesReasonsAgentsTeams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.clients["admin"]
	// A custom status maps onto its base status.
	res := admin.do(t, "POST", "/api/v1/statuses", map[string]any{"name": "Waiting for parts", "maps_to": "on_hold"})
	if res.status != 201 {
		t.Fatalf("create status: %d %s", res.status, res.body)
	}
	var cs agentdesk.CustomStatus
	res.json(t, &cs)
	tk := e.deskTicket("agent", map[string]any{"subject": "Broken", "customer_id": e.deskCustomer("Bo")})
	var got agentdesk.Ticket
	res = e.clients["agent"].do(t, "PATCH", fmt.Sprintf("/api/v1/tickets/%d", tk.ID), map[string]any{"custom_status": "waiting for parts"})
	res.json(t, &got)
	if res.status != 200 || got.Status != agentdesk.StatusOnHold || got.CustomStatus != "waiting for parts" {
		t.Fatalf("custom status: %d %s", res.status, res.body)
	}
	var sl statusList
	e.clients["agent"].do(t, "GET", "/api/v1/statuses", nil).json(t, &sl)
	if len(sl.Base) != 6 || len(sl.Items) != 1 {
		t.Fatalf("statuses: %+v", sl)
	}
	if res := admin.do(t, "DELETE", fmt.Sprintf("/api/v1/statuses/%d", cs.ID), nil); res.status != 409 {
		t.Fatalf("delete a status in use: %d", res.status)
	}

	// Reasons: a used reason is archived on delete, an unused one deleted.
	cat := e.deskReason(agentdesk.ContactReason, "Orders", nil)
	used := e.deskReason(agentdesk.ContactReason, "Where is my order", &cat)
	unused := e.deskReason(agentdesk.ContactReason, "Wrong item", &cat)
	if res := e.clients["agent"].do(t, "PATCH", fmt.Sprintf("/api/v1/tickets/%d", tk.ID), map[string]any{"status": "solved", "outcome": map[string]any{"contact_reason_id": used}}); res.status != 200 {
		t.Fatalf("solve: %d %s", res.status, res.body)
	}
	var del reasonDeleted
	admin.do(t, "DELETE", fmt.Sprintf("/api/v1/reasons/%d", used), nil).json(t, &del)
	if !del.Archived {
		t.Fatalf("used reason deleted")
	}
	admin.do(t, "DELETE", fmt.Sprintf("/api/v1/reasons/%d", unused), nil).json(t, &del)
	if del.Archived || e.deskCount(`SELECT count(*) FROM reasons WHERE id = $1`, unused) != 0 {
		t.Fatalf("unused reason kept")
	}
	var active, all List[agentdesk.Reason]
	e.clients["agent"].do(t, "GET", "/api/v1/reasons?kind=contact", nil).json(t, &active)
	e.clients["agent"].do(t, "GET", "/api/v1/reasons?kind=contact&archived=true", nil).json(t, &all)
	if len(active.Items) != 1 || len(all.Items) != 2 || all.Items[0].ID != cat || all.Items[1].ID != used {
		t.Fatalf("reasons: active %+v all %+v", active.Items, all.Items)
	}
	res = admin.do(t, "PATCH", fmt.Sprintf("/api/v1/reasons/%d", used), map[string]any{"archived": false, "name": "Where is my parcel"})
	if res.status != 200 {
		t.Fatalf("restore reason: %d %s", res.status, res.body)
	}

	// Agents: an admin creates a user who can then sign in; the password can
	// be changed; the changes are audited without the password.
	res = admin.do(t, "POST", "/api/v1/agents", map[string]any{"email": "New@Example.com", "name": "Nina", "role": "agent", "password": "first password 1", "skills": map[string]int{"german": 4}})
	if res.status != 201 {
		t.Fatalf("create agent: %d %s", res.status, res.body)
	}
	var nina agentdesk.Agent
	res.json(t, &nina)
	e.login("new@example.com", "first password 1")
	ninaOld := e.login("new@example.com", "first password 1")
	if res := ninaOld.do(t, "GET", "/api/v1/me", nil); res.status != 200 {
		t.Fatalf("signed in: %d", res.status)
	}
	res = admin.do(t, "PATCH", fmt.Sprintf("/api/v1/agents/%d", nina.ID), map[string]any{"password": "second password 2", "role": "supervisor"})
	if res.status != 200 {
		t.Fatalf("patch agent: %d %s", res.status, res.body)
	}
	if res := ninaOld.do(t, "GET", "/api/v1/me", nil); res.status != 401 {
		t.Fatalf("a session from before the password reset still works: %d", res.status)
	}
	e.login("new@example.com", "second password 2")
	if n := e.deskCount(`SELECT count(*) FROM audit_log WHERE target = $1 AND details::text LIKE '%password 2%'`, fmt.Sprintf("agent:%d", nina.ID)); n != 0 {
		t.Fatal("a password reached the audit log")
	}
	if n := e.deskCount(`SELECT count(*) FROM audit_log WHERE action IN ('agent.create', 'agent.update', 'reason.create', 'reason.archive', 'reason.delete', 'status.create')`); n < 6 {
		t.Fatalf("only %d audited admin actions", n)
	}
	if res := admin.do(t, "PATCH", fmt.Sprintf("/api/v1/agents/%d", e.ids["admin"]), map[string]any{"role": "agent"}); res.status != 409 {
		t.Fatalf("admin demoting themselves: %d", res.status)
	}
	var dir List[agentdesk.Agent]
	e.clients["agent"].do(t, "GET", "/api/v1/agents", nil).json(t, &dir)
	if len(dir.Items) != 5 {
		t.Fatalf("directory: %d agents", len(dir.Items))
	}

	// Teams.
	res = admin.do(t, "POST", "/api/v1/teams", map[string]any{"name": "Billing", "private": true, "member_ids": []int64{e.ids["agent"]}})
	if res.status != 201 {
		t.Fatalf("create team: %d %s", res.status, res.body)
	}
	var team agentdesk.Team
	res.json(t, &team)
	res = admin.do(t, "PATCH", fmt.Sprintf("/api/v1/teams/%d", team.ID), map[string]any{"member_ids": []int64{e.ids["agent"], nina.ID}})
	res.json(t, &team)
	if res.status != 200 || len(team.MemberIDs) != 2 || !team.Private {
		t.Fatalf("patch team: %d %s", res.status, res.body)
	}
	var me agentdesk.Agent
	e.clients["agent"].do(t, "GET", fmt.Sprintf("/api/v1/agents/%d", e.ids["agent"]), nil).json(t, &me)
	if len(me.TeamIDs) != 1 || me.TeamIDs[0] != team.ID {
		t.Fatalf("agent's teams: %v", me.TeamIDs)
	}
}

// TestPrivateTeamTickets: another team's private ticket is invisible to an
// agent outside the team — reads, lists, updates, messages and the
// customer's timeline — and answers 404, as if it did not exist.
func TestPrivateTeamTickets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.clients["admin"].do(t, "POST", "/api/v1/teams", map[string]any{"name": "Retention", "private": true, "member_ids": []int64{e.ids["agent"]}})
	var team agentdesk.Team
	res.json(t, &team)
	customer := e.deskCustomer("Pia")
	private := e.deskTicket("agent", map[string]any{"subject": "Secret", "customer_id": customer, "team_id": team.ID,
		"message": map[string]any{"direction": "in", "body": "private matter"}})
	public := e.deskTicket("agent2", map[string]any{"subject": "Open", "customer_id": customer})
	path := fmt.Sprintf("/api/v1/tickets/%d", private.ID)

	for who, sees := range map[string]bool{"agent": true, "agent2": false, "supervisor": true, "admin": true, "token": true} {
		c := e.clients[who]
		want := map[bool]int{true: 200, false: 404}[sees]
		if res := c.do(t, "GET", path, nil); res.status != want {
			t.Errorf("%s GET: %d, want %d", who, res.status, want)
		}
		if res := c.do(t, "GET", path+"/messages", nil); res.status != want {
			t.Errorf("%s GET messages: %d, want %d", who, res.status, want)
		}
		if res := c.do(t, "PATCH", path, map[string]any{"priority": "urgent"}); res.status != want {
			t.Errorf("%s PATCH: %d, want %d", who, res.status, want)
		}
		if res := c.do(t, "POST", path+"/messages", map[string]any{"kind": "note", "body": "hi"}); res.status != map[bool]int{true: 201, false: 404}[sees] {
			t.Errorf("%s POST message: %d", who, res.status)
		}
		var l List[agentdesk.Ticket]
		c.do(t, "GET", "/api/v1/tickets", nil).json(t, &l)
		listed := map[int64]bool{}
		for _, tk := range l.Items {
			listed[tk.ID] = true
		}
		if listed[private.ID] != sees || !listed[public.ID] {
			t.Errorf("%s list: %v", who, listed)
		}
		var tl List[agentdesk.Message]
		c.do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/timeline", customer), nil).json(t, &tl)
		shown := false
		for _, m := range tl.Items {
			shown = shown || m.TicketID == private.ID
		}
		if shown != sees {
			t.Errorf("%s timeline shows the private ticket: %v", who, shown)
		}
	}
	// agent2's attempts changed nothing.
	if n := e.deskCount(`SELECT count(*) FROM messages WHERE ticket_id = $1 AND author_id = $2`, private.ID, e.ids["agent2"]); n != 0 {
		t.Fatalf("an outsider wrote %d messages into a private ticket", n)
	}
}

// fakeSender stands in for the email channel: it stores the reply the way
// a real sender does and remembers what it was asked to send.
type fakeSender struct {
	e    *testEnv
	mu   sync.Mutex
	sent []string
}

func (f *fakeSender) SendReply(ctx context.Context, actor agentdesk.Actor, t *agentdesk.Ticket, m *agentdesk.Message) (int64, error) {
	f.mu.Lock()
	f.sent = append(f.sent, m.Body)
	f.mu.Unlock()
	m.Meta = map[string]any{"delivery": "queued"}
	if err := f.e.store.AddMessage(ctx, actor, m); err != nil {
		return 0, err
	}
	return m.ID, nil
}

func TestEmailRepliesGoThroughTheSender(t *testing.T) {
	t.Parallel()
	fs := &fakeSender{}
	e := newEnv(t, WithReplySender(agentdesk.KindEmail, fs))
	fs.e = e
	tk := e.deskTicket("agent", map[string]any{"subject": "Help", "customer_id": e.deskCustomer("Eve"), "message": map[string]any{"direction": "in", "body": "help"}})
	path := fmt.Sprintf("/api/v1/tickets/%d/messages", tk.ID)
	res := e.clients["agent"].do(t, "POST", path, map[string]any{"direction": "out", "body": "Here you go"})
	var m agentdesk.Message
	res.json(t, &m)
	if res.status != 201 || m.Meta["delivery"] != "queued" || len(fs.sent) != 1 || fs.sent[0] != "Here you go" {
		t.Fatalf("reply: %d %s, sent %v", res.status, res.body, fs.sent)
	}
	// Notes never go to the customer.
	e.clients["agent"].do(t, "POST", path, map[string]any{"kind": "note", "body": "internal"})
	if len(fs.sent) != 1 {
		t.Fatalf("a note was sent: %v", fs.sent)
	}
}
