package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"agentdesk/agentdesk"
	"agentdesk/web/hub"
)

// createdStreamsOf lists the streams that got ticket.created for ticket id,
// sorted.
func createdStreamsOf(t *testing.T, ct *chatTest, id int64) []string {
	t.Helper()
	rows, err := ct.store.DB().Query(context.Background(), `SELECT stream FROM stream_events
		WHERE account_id = $1 AND type = $2 AND (data->>'id')::bigint = $3 ORDER BY stream`, ct.account, TicketCreated, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// readOnEach reads until a frame of type typ whose data matches has come on
// each of streams, and returns their data by stream. Frames of different
// streams may arrive in any order.
func readOnEach(t *testing.T, ws *websocket.Conn, typ string, match func(map[string]any) bool, streams ...string) map[string]map[string]any {
	t.Helper()
	got := map[string]map[string]any{}
	want := map[string]bool{}
	for _, s := range streams {
		want[s] = true
	}
	readUntil(t, ws, func(f map[string]any) bool {
		if s, _ := f["stream"].(string); f["type"] == typ && want[s] && got[s] == nil && match(dataOf(f)) {
			got[s] = dataOf(f)
		}
		return len(got) == len(want)
	})
	return got
}

// readCreated reads until ticket.created of ticket id on stream.
func readCreated(t *testing.T, ws *websocket.Conn, stream string, id int64) map[string]any {
	t.Helper()
	for {
		f := readFrame(t, ws, TicketCreated)
		if f["stream"] == stream && dataOf(f)["id"] == float64(id) {
			return f
		}
	}
}

func (ct *chatTest) team(t *testing.T, name string, private bool, members ...int64) int64 {
	t.Helper()
	res := ct.clients["admin"].do(t, "POST", "/api/v1/teams", map[string]any{"name": name, "private": private, "member_ids": members})
	wantStatus(t, "create team "+name, res, http.StatusCreated)
	var team struct{ ID int64 }
	res.json(t, &team)
	return team.ID
}

// A ticket created over REST, by a web form or by a chat reaches, in the
// transaction that creates it, the lists that show it: its assignee's, its
// team's, the account's "all open" (not for private teams) and the
// supervisors'. Desks connected to those streams receive it live.
func TestTicketCreatedReachesItsLists(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	acct := ct.account
	agentID, agent2ID := ct.ids["agent"], ct.ids["agent2"]
	billing := ct.team(t, "Billing", false, agentID)
	vip := ct.team(t, "VIP", true, agent2ID)
	cust := &agentdesk.Customer{Name: "Nora"}
	if err := ct.store.CreateCustomer(context.Background(), acct, cust); err != nil {
		t.Fatal(err)
	}

	agentWS := ct.agentSocket(t, "agent", hub.AgentStream(agentID), hub.TeamStream(billing), hub.AccountStream(acct))
	agent2WS := ct.agentSocket(t, "agent2", hub.AgentStream(agent2ID), hub.TeamStream(vip), hub.AccountStream(acct))
	supWS := ct.agentSocket(t, "supervisor", hub.SupervisorStream(acct))
	// A member of another team may not follow a private team's stream.
	agentWS.WriteJSON(map[string]any{"type": "resume", "id": "vip", "data": map[string]any{"streams": []any{map[string]any{"stream": hub.TeamStream(vip)}}}}) //nolint:errcheck
	if f := readFrame(t, agentWS, "error"); f["id"] != "vip" || dataOf(f)["code"] != string(agentdesk.Forbidden) {
		t.Errorf("agent follows a private team's stream: %v", f)
	}

	create := ct.ticketsFor(t, cust.ID)

	// Assigned, in a public team: everywhere.
	assigned := create(map[string]any{"subject": "Refund", "assignee_id": agentID, "team_id": billing,
		"message": map[string]any{"direction": "in", "body": "Please refund"}})
	// Three streams: their frames may arrive in any order.
	want := map[any]bool{hub.AgentStream(agentID): true, hub.TeamStream(billing): true, hub.AccountStream(acct): true}
	readUntil(t, agentWS, func(f map[string]any) bool {
		if d := dataOf(f); f["type"] == TicketCreated && d["id"] == float64(assigned) && want[f["stream"]] {
			if d["subject"] != "Refund" || d["assignee_id"] != float64(agentID) {
				t.Errorf("ticket.created on %s: %v", f["stream"], d)
			}
			delete(want, f["stream"])
		}
		return len(want) == 0
	})
	readCreated(t, supWS, hub.SupervisorStream(acct), assigned)
	readCreated(t, agent2WS, hub.AccountStream(acct), assigned)

	// Unassigned, in a private team: its members and supervisors only.
	private := create(map[string]any{"subject": "VIP question", "team_id": vip})
	readCreated(t, agent2WS, hub.TeamStream(vip), private)
	readCreated(t, supWS, hub.SupervisorStream(acct), private)

	// A web form's ticket: unassigned, no team.
	form := url.Values{"name": {"Ola"}, "email": {"ola@example.org"}, "subject": {"Broken lid"}, "message": {"The lid broke."}}
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/inbound/form?account=%d", ct.srv.URL, acct), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("form: HTTP %d", resp.StatusCode)
	}
	f := readFrame(t, agentWS, TicketCreated)
	for f["stream"] != hub.AccountStream(acct) {
		f = readFrame(t, agentWS, TicketCreated)
	}
	formTicket := int64(dataOf(f)["id"].(float64))
	if d := dataOf(f); d["subject"] != "Broken lid" || d["channel"] != string(agentdesk.ChannelForm) {
		t.Errorf("form ticket.created %v", d)
	}
	readCreated(t, supWS, hub.SupervisorStream(acct), formTicket)

	// A chat started in the widget.
	v := ct.visitor(t, "")
	started := v.startChat(map[string]any{"name": "Pia", "email": "pia@example.org", "body": "Hello"})
	readCreated(t, supWS, hub.SupervisorStream(acct), started.TicketID)
	readCreated(t, agentWS, hub.AccountStream(acct), started.TicketID)

	// What the database holds: each ticket's event on exactly its lists' streams.
	for _, tc := range []struct {
		name string
		id   int64
		want []string
	}{
		{"assigned in a public team", assigned, []string{hub.AccountStream(acct), hub.AgentStream(agentID), hub.SupervisorStream(acct), hub.TeamStream(billing)}},
		{"private team", private, []string{hub.SupervisorStream(acct), hub.TeamStream(vip)}},
		{"web form", formTicket, []string{hub.AccountStream(acct), hub.SupervisorStream(acct)}},
		{"chat", started.TicketID, []string{hub.AccountStream(acct), hub.SupervisorStream(acct)}},
	} {
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if got := createdStreamsOf(t, ct, tc.id); !slices.Equal(got, want) {
			t.Errorf("%s: ticket.created on %v, want %v", tc.name, got, want)
		}
	}

	// A refused create publishes nothing.
	var before, after int
	db := ct.store.DB()
	db.QueryRow(context.Background(), `SELECT count(*) FROM stream_events WHERE account_id = $1 AND type = $2`, acct, TicketCreated).Scan(&before) //nolint:errcheck
	res := ct.clients["supervisor"].do(t, "POST", "/api/v1/tickets", map[string]any{"subject": "x", "customer_id": cust.ID, "assignee_id": 999999})
	if res.status < 400 {
		t.Fatalf("ticket with a missing assignee: HTTP %d", res.status)
	}
	db.QueryRow(context.Background(), `SELECT count(*) FROM stream_events WHERE account_id = $1 AND type = $2`, acct, TicketCreated).Scan(&after) //nolint:errcheck
	if after != before {
		t.Errorf("a refused create published %d events", after-before)
	}
}

// Two desks, an agent's and a supervisor's, on the same ticket: a reply, a
// note, a status change and an assignment made in one appear in the other
// live, and the assignment reaches the new assignee's list and leaves the
// previous one's.
func TestTwoDesksSeeEachOthersChanges(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	acct := ct.account
	agentID, agent2ID := ct.ids["agent"], ct.ids["agent2"]
	cust := &agentdesk.Customer{Name: "Rita"}
	if err := ct.store.CreateCustomer(context.Background(), acct, cust); err != nil {
		t.Fatal(err)
	}
	agent, sup := ct.clients["agent"], ct.clients["supervisor"]
	res := sup.do(t, "POST", "/api/v1/tickets", map[string]any{"subject": "Late parcel", "customer_id": cust.ID, "assignee_id": agentID,
		"message": map[string]any{"direction": "in", "body": "Where is it?"}})
	wantStatus(t, "create", res, http.StatusCreated)
	var tk agentdesk.Ticket
	res.json(t, &tk)
	ts := hub.TicketStream(tk.ID)
	agentWS := ct.agentSocket(t, "agent", hub.AgentStream(agentID), ts)
	supWS := ct.agentSocket(t, "supervisor", hub.SupervisorStream(acct), ts)
	agent2WS := ct.agentSocket(t, "agent2", hub.AgentStream(agent2ID))
	path := fmt.Sprintf("/api/v1/tickets/%d", tk.ID)

	readOn := func(ws *websocket.Conn, typ, stream string, match func(d map[string]any) bool) map[string]any {
		t.Helper()
		for {
			f := readFrame(t, ws, typ)
			if f["stream"] == stream && match(dataOf(f)) {
				return dataOf(f)
			}
		}
	}
	body := func(b string) func(map[string]any) bool {
		return func(d map[string]any) bool { return d["body"] == b }
	}

	// The agent replies: the supervisor's desk shows it, and the status the
	// first reply set.
	wantStatus(t, "reply", agent.do(t, "POST", path+"/messages", map[string]any{"direction": "out", "body": "It left today."}), http.StatusCreated)
	readOn(supWS, MessageCreated, ts, body("It left today."))
	readOn(supWS, TicketUpdated, ts, func(d map[string]any) bool { return d["status"] == string(agentdesk.StatusOpen) })

	// The supervisor adds a note: the agent sees it on the ticket and in
	// their own stream (unread counts).
	wantStatus(t, "note", sup.do(t, "POST", path+"/messages", map[string]any{"kind": "note", "body": "Offer a voucher"}), http.StatusCreated)
	for _, d := range readOnEach(t, agentWS, MessageCreated, body("Offer a voucher"), ts, hub.AgentStream(agentID)) {
		if d["direction"] != string(agentdesk.DirInternal) {
			t.Errorf("note event %v", d)
		}
	}

	// The agent sets it pending: the supervisor sees the status.
	wantStatus(t, "status", agent.do(t, "PATCH", path, map[string]any{"status": "pending"}), http.StatusOK)
	readOn(supWS, TicketUpdated, ts, func(d map[string]any) bool { return d["status"] == string(agentdesk.StatusPending) })

	// The supervisor assigns it to agent2: the agent's desk (ticket and own
	// list) hears it has gone, agent2's list that it arrived.
	wantStatus(t, "assign", sup.do(t, "PATCH", path, map[string]any{"assignee_id": agent2ID}), http.StatusOK)
	toAgent2 := func(d map[string]any) bool { return d["assignee_id"] == float64(agent2ID) }
	// The two streams' frames come in either order.
	var updated, unassigned bool
	readUntil(t, agentWS, func(f map[string]any) bool {
		d := dataOf(f)
		updated = updated || (f["type"] == TicketUpdated && f["stream"] == ts && toAgent2(d))
		unassigned = unassigned || (f["type"] == TicketUnassigned && f["stream"] == hub.AgentStream(agentID) && d["ticket_id"] == float64(tk.ID))
		return updated && unassigned
	})
	readOn(agent2WS, TicketUpdated, hub.AgentStream(agent2ID), toAgent2)
}
