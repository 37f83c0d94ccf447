package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"agentdesk/agentdesk"
	"agentdesk/routing"
	"agentdesk/web/hub"
)

// readErrorsFor reads until an error frame has named each of streams, and
// returns every frame read.
func readErrorsFor(t *testing.T, ws *websocket.Conn, streams ...string) []map[string]any {
	t.Helper()
	want := map[string]bool{}
	for _, s := range streams {
		want[s] = true
	}
	return readUntil(t, ws, func(f map[string]any) bool {
		if f["type"] == "error" {
			if s, _ := f["stream"].(string); want[s] {
				if d := dataOf(f); d["code"] != string(agentdesk.Forbidden) || d["field"] != "stream" {
					t.Errorf("error frame for %s: %v", s, f)
				}
				delete(want, s)
			}
		}
		return len(want) == 0
	})
}

// wantClosed reads until the server closes ws and checks the close code.
func wantClosed(t *testing.T, ws *websocket.Conn, code int) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("connection ended with %v, want close code %d", err, code)
		}
		return
	}
}

// An agent removed from a private team stops receiving its events on the
// connection already open: the team's stream and its private tickets'
// are dropped with an error frame naming each, the agent's other streams
// go on. Signing out then closes the connection.
func TestAccessChangeTeamRemovalAndLogout(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	agentID, agent2ID := ct.ids["agent"], ct.ids["agent2"]
	vip := ct.team(t, "VIP", true, agentID, agent2ID)
	sup := ct.clients["supervisor"]
	create := ct.ticketMaker(t, "Nora")
	private := create(map[string]any{"subject": "VIP only", "team_id": vip})
	public := create(map[string]any{"subject": "Anyone"})

	ws := ct.agentSocket(t, "agent", hub.AgentStream(agentID), hub.TeamStream(vip), hub.TicketStream(private), hub.TicketStream(public))
	// The agent's own access stream is the hubs' alone.
	if f, _ := wsCallFrames(t, ws, "resume", "access", map[string]any{"streams": []any{map[string]any{"stream": hub.AccessStream(agentID)}}}); f["type"] != "error" || dataOf(f)["code"] != string(agentdesk.Forbidden) {
		t.Errorf("follow the access stream: %v", f)
	}
	// While a member, the team's new tickets arrive.
	before := create(map[string]any{"subject": "VIP before", "team_id": vip})
	readCreated(t, ws, hub.TeamStream(vip), before)

	res := ct.clients["admin"].do(t, "PATCH", "/api/v1/teams/"+strconv.FormatInt(vip, 10), map[string]any{"member_ids": []int64{agent2ID}})
	wantStatus(t, "remove from team", res, http.StatusOK)
	readErrorsFor(t, ws, hub.TeamStream(vip), hub.TicketStream(private))

	// Nothing of the team reaches the desk any more; the rest does.
	after := create(map[string]any{"subject": "VIP after", "team_id": vip})
	for _, id := range []int64{private, public} {
		res := sup.do(t, "PATCH", fmt.Sprintf("/api/v1/tickets/%d", id), map[string]any{"status": "pending"})
		wantStatus(t, "update ticket", res, http.StatusOK)
	}
	mine := create(map[string]any{"subject": "Mine", "assignee_id": agentID})
	// Read until both the public ticket's change and the marker came (the
	// two streams' frames may arrive in either order).
	publicUpdated, marker := false, false
	frames := readUntil(t, ws, func(f map[string]any) bool {
		publicUpdated = publicUpdated || (f["stream"] == hub.TicketStream(public) && f["type"] == TicketUpdated)
		marker = marker || (f["type"] == TicketCreated && dataOf(f)["id"] == float64(mine))
		return publicUpdated && marker
	})
	for _, f := range frames {
		switch f["stream"] {
		case hub.TeamStream(vip), hub.TicketStream(private):
			t.Errorf("after leaving the team: %v", f)
		}
		if f["type"] == TicketCreated && dataOf(f)["id"] == float64(after) {
			t.Errorf("ticket.created of the team's ticket after leaving: %v", f)
		}
	}
	// Following again is refused like any other forbidden stream.
	if f, _ := wsCallFrames(t, ws, "resume", "again", map[string]any{"streams": []any{map[string]any{"stream": hub.TeamStream(vip)}}}); f["type"] != "error" || dataOf(f)["code"] != string(agentdesk.Forbidden) {
		t.Errorf("follow the team again: %v", f)
	}

	// Signing out closes the connection that session opened.
	res = ct.clients["agent"].do(t, "POST", "/api/v1/auth/logout", nil)
	wantStatus(t, "logout", res, http.StatusNoContent)
	wantClosed(t, ws, hub.CloseUnauthorized)
}

// A deactivated agent's connection is closed; a supervisor demoted to agent
// loses the supervisors' stream and keeps their own.
func TestAccessChangeDeactivationAndDemotion(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	acct := ct.account
	admin := ct.clients["admin"]

	ws2 := ct.agentSocket(t, "agent2", hub.AgentStream(ct.ids["agent2"]))
	supID := ct.ids["supervisor"]
	wsSup := ct.agentSocket(t, "supervisor", hub.AgentStream(supID), hub.SupervisorStream(acct))

	res := admin.do(t, "PATCH", "/api/v1/agents/"+strconv.FormatInt(ct.ids["agent2"], 10), map[string]any{"active": false})
	wantStatus(t, "deactivate", res, http.StatusOK)
	wantClosed(t, ws2, hub.CloseUnauthorized)

	res = admin.do(t, "PATCH", "/api/v1/agents/"+strconv.FormatInt(supID, 10), map[string]any{"role": "agent"})
	wantStatus(t, "demote", res, http.StatusOK)
	readErrorsFor(t, wsSup, hub.SupervisorStream(acct))
	if f, _ := wsCallFrames(t, wsSup, "resume", "sup", map[string]any{"streams": []any{map[string]any{"stream": hub.SupervisorStream(acct)}}}); f["type"] != "error" || dataOf(f)["code"] != string(agentdesk.Forbidden) {
		t.Errorf("a demoted supervisor follows supervisor:%d again: %v", acct, f)
	}
	// Their own stream still flows.
	cust := &agentdesk.Customer{Name: "Nora"}
	if err := ct.store.CreateCustomer(context.Background(), acct, cust); err != nil {
		t.Fatal(err)
	}
	res = admin.do(t, "POST", "/api/v1/tickets", map[string]any{"customer_id": cust.ID, "subject": "For the former supervisor", "assignee_id": supID})
	wantStatus(t, "create ticket", res, http.StatusCreated)
	var tk agentdesk.Ticket
	res.json(t, &tk)
	readCreated(t, wsSup, hub.AgentStream(supID), tk.ID)
}

// failAccessEvents makes every publish to agentID's access stream fail in
// the database until the returned function is called: the crash between
// "change committed" and "open sockets told" that must not exist.
func failAccessEvents(t *testing.T, ct *chatTest, agentID int64) (restore func()) {
	t.Helper()
	ctx := context.Background()
	db := ct.store.DB()
	for _, q := range []string{
		`CREATE FUNCTION test_fail_access_event() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'test: publishing % refused', NEW.stream; END $$`,
		fmt.Sprintf(`CREATE TRIGGER test_fail_access_event BEFORE INSERT ON stream_events FOR EACH ROW
			WHEN (NEW.stream = '%s') EXECUTE FUNCTION test_fail_access_event()`, hub.AccessStream(agentID)),
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		t.Helper()
		if _, err := db.Exec(ctx, `DROP TRIGGER test_fail_access_event ON stream_events; DROP FUNCTION test_fail_access_event()`); err != nil {
			t.Fatal(err)
		}
	}
}

// A change to an agent's rights and the access.changed event that tells
// their open websockets commit together: when the event cannot be written,
// the change is not made either (and the socket, which was not told, is
// still right to follow what it follows). Then the retry does both.
func TestAccessChangeCommitsWithTheChange(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	acct, agentID, agent2ID := ct.account, ct.ids["agent"], ct.ids["agent2"]
	admin := ct.clients["admin"]
	vip := ct.team(t, "VIP", true, agentID, agent2ID)
	cust := &agentdesk.Customer{Name: "Nora"}
	if err := ct.store.CreateCustomer(context.Background(), acct, cust); err != nil {
		t.Fatal(err)
	}
	ws := ct.agentSocket(t, "agent", hub.AgentStream(agentID), hub.TeamStream(vip))

	restore := failAccessEvents(t, ct, agentID)
	teamPath := "/api/v1/teams/" + strconv.FormatInt(vip, 10)
	res := admin.do(t, "PATCH", teamPath, map[string]any{"member_ids": []int64{agent2ID}})
	wantStatus(t, "remove from team while the event cannot be written", res, http.StatusInternalServerError)
	res = admin.do(t, "GET", teamPath, nil)
	wantStatus(t, "get team", res, http.StatusOK)
	var team agentdesk.Team
	res.json(t, &team)
	if !slices.Contains(team.MemberIDs, agentID) {
		t.Errorf("the agent left the team without their sockets being told: members %v", team.MemberIDs)
	}
	agentPath := "/api/v1/agents/" + strconv.FormatInt(agentID, 10)
	res = admin.do(t, "PATCH", agentPath, map[string]any{"active": false})
	wantStatus(t, "deactivate while the event cannot be written", res, http.StatusInternalServerError)
	res = ct.clients["agent"].do(t, "GET", "/api/v1/me", nil)
	wantStatus(t, "the agent is still signed in", res, http.StatusOK)
	var me agentdesk.Agent
	res.json(t, &me)
	if !me.Active {
		t.Errorf("the agent was deactivated without their sockets being told")
	}
	// The socket still has the team, as the database says it should.
	res = ct.clients["supervisor"].do(t, "POST", "/api/v1/tickets", map[string]any{"customer_id": cust.ID, "subject": "VIP", "team_id": vip})
	wantStatus(t, "create ticket", res, http.StatusCreated)
	var tk agentdesk.Ticket
	res.json(t, &tk)
	readCreated(t, ws, hub.TeamStream(vip), tk.ID)

	restore()
	res = admin.do(t, "PATCH", teamPath, map[string]any{"member_ids": []int64{agent2ID}})
	wantStatus(t, "remove from team", res, http.StatusOK)
	readErrorsFor(t, ws, hub.TeamStream(vip))
	res = admin.do(t, "PATCH", agentPath, map[string]any{"active": false})
	wantStatus(t, "deactivate", res, http.StatusOK)
	wantClosed(t, ws, hub.CloseUnauthorized)
}

// ticketMaker creates a customer named name and returns a function that
// opens tickets for them (POST /tickets as the supervisor) with body's
// fields, returning each ticket's id.
func (ct *chatTest) ticketMaker(t *testing.T, name string) func(body map[string]any) int64 {
	t.Helper()
	cust := &agentdesk.Customer{Name: name}
	if err := ct.store.CreateCustomer(context.Background(), ct.account, cust); err != nil {
		t.Fatal(err)
	}
	return ct.ticketsFor(t, cust.ID)
}

// ticketsFor returns a function that opens tickets for customer (POST
// /tickets as the supervisor) with body's fields, returning each id.
func (ct *chatTest) ticketsFor(t *testing.T, customer int64) func(body map[string]any) int64 {
	return func(body map[string]any) int64 {
		t.Helper()
		body["customer_id"] = customer
		res := ct.clients["supervisor"].do(t, "POST", "/api/v1/tickets", body)
		wantStatus(t, "create ticket", res, http.StatusCreated)
		var tk agentdesk.Ticket
		res.json(t, &tk)
		return tk.ID
	}
}

// dialWS opens path with header and follows streams.
func dialWS(t *testing.T, ct *chatTest, path string, header http.Header, streams ...string) *websocket.Conn {
	t.Helper()
	header.Set("Origin", ct.srv.URL)
	ws, res, err := websocket.DefaultDialer.Dial(ct.wsURL(path), header)
	if err != nil {
		t.Fatalf("websocket %s: %v (%v)", path, err, res)
	}
	t.Cleanup(func() { ws.Close() })
	var list []any
	for _, s := range streams {
		list = append(list, map[string]any{"stream": s})
	}
	ws.WriteJSON(map[string]any{"type": "resume", "id": "r", "data": map[string]any{"streams": list}}) //nolint:errcheck
	for range streams {
		readFrame(t, ws, "subscribed")
	}
	return ws
}

// A connection opened by a session is closed with 4001 when the session
// expires, without waiting for anything to change; one whose session was
// renewed meanwhile stays open.
func TestAccessChangeSessionExpiry(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	ctx := context.Background()
	acct, agentID := ct.account, ct.ids["agent"]
	// Sessions made here rather than by login, so their lifetime can be
	// short: long enough to connect, short enough not to slow the test.
	session := func(life time.Duration) string {
		token := NewSecret("")
		if err := ct.store.CreateSession(ctx, acct, agentID, token, time.Now().Add(life)); err != nil {
			t.Fatal(err)
		}
		return token
	}
	renewed, expiring := session(time.Second), session(1500*time.Millisecond)
	wsRenewed := dialWS(t, ct, "/ws/agent", http.Header{"Cookie": {SessionCookie + "=" + renewed}}, hub.AgentStream(agentID))
	ws := dialWS(t, ct, "/ws/agent", http.Header{"Cookie": {SessionCookie + "=" + expiring}}, hub.AgentStream(agentID))
	// A session renewed in the database (as a sliding session would be)
	// keeps its connection: the timer re-reads it before closing.
	if _, err := ct.store.DB().Exec(ctx, `UPDATE sessions SET expires_at = now() + interval '1 hour' WHERE token_hash = sha256($1::bytea)`, []byte(renewed)); err != nil {
		t.Fatal(err)
	}

	wantClosed(t, ws, hub.CloseUnauthorized)

	// The renewed session's timer fired before the other's; its connection
	// still delivers.
	cust := &agentdesk.Customer{Name: "Nora"}
	if err := ct.store.CreateCustomer(ctx, acct, cust); err != nil {
		t.Fatal(err)
	}
	res := ct.clients["supervisor"].do(t, "POST", "/api/v1/tickets", map[string]any{"customer_id": cust.ID, "subject": "Still here?", "assignee_id": agentID})
	wantStatus(t, "create ticket", res, http.StatusCreated)
	var tk agentdesk.Ticket
	res.json(t, &tk)
	readCreated(t, wsRenewed, hub.AgentStream(agentID), tk.ID)
}

// Revoking an API token closes the websockets it opened with 4001.
func TestAccessChangeTokenRevoked(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	admin := ct.clients["admin"]
	res := admin.do(t, "POST", "/api/v1/tokens", map[string]any{"name": "wallboard", "role": "supervisor", "scopes": []string{"read"}})
	wantStatus(t, "create token", res, http.StatusCreated)
	var tok tokenCreated
	res.json(t, &tok)
	res = admin.do(t, "POST", "/api/v1/tokens", map[string]any{"name": "other", "role": "supervisor", "scopes": []string{"read"}})
	wantStatus(t, "create token", res, http.StatusCreated)
	var other tokenCreated
	res.json(t, &other)

	ws := dialWS(t, ct, "/ws/supervisor", http.Header{"Authorization": {"Bearer " + tok.Token}}, hub.SupervisorStream(ct.account))
	wsOther := dialWS(t, ct, "/ws/supervisor", http.Header{"Authorization": {"Bearer " + other.Token}}, hub.SupervisorStream(ct.account))
	// Its access stream is the hubs' alone.
	if f, _ := wsCallFrames(t, ws, "resume", "access", map[string]any{"streams": []any{map[string]any{"stream": hub.TokenAccessStream(tok.ID)}}}); f["type"] != "error" || dataOf(f)["code"] != string(agentdesk.Forbidden) {
		t.Errorf("follow the token's access stream: %v", f)
	}

	res = admin.do(t, "DELETE", "/api/v1/tokens/"+strconv.FormatInt(tok.ID, 10), nil)
	wantStatus(t, "revoke", res, http.StatusNoContent)
	wantClosed(t, ws, hub.CloseUnauthorized)

	// The other token's connection goes on.
	cust := &agentdesk.Customer{Name: "Nora"}
	if err := ct.store.CreateCustomer(context.Background(), ct.account, cust); err != nil {
		t.Fatal(err)
	}
	res = admin.do(t, "POST", "/api/v1/tickets", map[string]any{"customer_id": cust.ID, "subject": "On the wall"})
	wantStatus(t, "create ticket", res, http.StatusCreated)
	var tk agentdesk.Ticket
	res.json(t, &tk)
	readCreated(t, wsOther, hub.SupervisorStream(ct.account), tk.ID)
}

// A ticket moved into a private team the agent is not in, or taken from
// them while in such a team, leaves their open desk: the ticket's stream is
// dropped with an error frame naming it, before the change itself (its
// ticket.updated) or anything later of the ticket reaches them. A member of
// the new team following the ticket gets the change and goes on.
func TestAccessChangeTicketMovedOutOfSight(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	agentID, agent2ID := ct.ids["agent"], ct.ids["agent2"]
	billing := ct.team(t, "Billing", false, agentID)
	vip := ct.team(t, "VIP", true, agent2ID)
	sup := ct.clients["supervisor"]
	create := ct.ticketMaker(t, "Nora")
	patch := func(id int64, body map[string]any) {
		t.Helper()
		res := sup.do(t, "PATCH", fmt.Sprintf("/api/v1/tickets/%d", id), body)
		wantStatus(t, "update ticket", res, http.StatusOK)
	}
	moved := create(map[string]any{"subject": "Billing question", "team_id": billing})
	taken := create(map[string]any{"subject": "VIP, assigned to agent", "team_id": vip, "assignee_id": agentID})

	ws := ct.agentSocket(t, "agent", hub.AgentStream(agentID), hub.TicketStream(moved), hub.TicketStream(taken))
	ws2 := ct.agentSocket(t, "agent2", hub.TicketStream(moved))

	// Nothing of the ticket before its error frame: the change is after it.
	noneOf := func(frames []map[string]any, stream string) {
		t.Helper()
		for _, f := range frames {
			if f["stream"] == stream && f["type"] != "error" {
				t.Errorf("before the error frame of %s: %v", stream, f)
			}
		}
	}
	patch(moved, map[string]any{"team_id": vip})
	noneOf(readErrorsFor(t, ws, hub.TicketStream(moved)), hub.TicketStream(moved))
	// The member of the new team is held at the same point, re-checked and
	// let through: the move arrives.
	readUntil(t, ws2, func(f map[string]any) bool {
		return f["type"] == TicketUpdated && f["stream"] == hub.TicketStream(moved) && dataOf(f)["team_id"] == float64(vip)
	})

	patch(taken, map[string]any{"assignee_id": agent2ID})
	seen := readErrorsFor(t, ws, hub.TicketStream(taken))
	noneOf(seen, hub.TicketStream(taken))

	// Later changes of both reach the member, not the agent.
	patch(moved, map[string]any{"status": "pending"})
	patch(taken, map[string]any{"status": "pending"})
	readUntil(t, ws2, func(f map[string]any) bool {
		return f["type"] == TicketUpdated && f["stream"] == hub.TicketStream(moved) && dataOf(f)["status"] == "pending"
	})
	mine := create(map[string]any{"subject": "Mine", "assignee_id": agentID})
	frames := readUntil(t, ws, func(f map[string]any) bool {
		return f["type"] == TicketCreated && dataOf(f)["id"] == float64(mine)
	})
	for _, f := range frames {
		if s := f["stream"]; s == hub.TicketStream(moved) || s == hub.TicketStream(taken) {
			t.Errorf("after the ticket left the agent's sight: %v", f)
		}
	}
	// The former assignee's own stream is told the ticket was taken from
	// them, by its id alone: not the ticket as it is now.
	unassigned := 0
	for _, f := range append(seen, frames...) {
		if f["stream"] != hub.AgentStream(agentID) {
			continue
		}
		switch d := dataOf(f); f["type"] {
		case TicketUnassigned:
			if len(d) != 1 || d["ticket_id"] != float64(taken) {
				t.Errorf("ticket.unassigned carries %v, want only ticket_id %d", d, taken)
			}
			unassigned++
		case TicketUpdated:
			if d["id"] == float64(taken) {
				t.Errorf("the former assignee got the reassigned ticket: %v", f)
			}
		}
	}
	if unassigned != 1 {
		t.Errorf("ticket.unassigned frames: %d, want 1", unassigned)
	}
	// Following it again is refused.
	if f, _ := wsCallFrames(t, ws, "resume", "again", map[string]any{"streams": []any{map[string]any{"stream": hub.TicketStream(moved)}}}); f["type"] != "error" || dataOf(f)["code"] != string(agentdesk.Forbidden) {
		t.Errorf("follow the moved ticket again: %v", f)
	}
}

// A routing transfer takes the ticket from its assignee like a
// reassignment over REST: when the ticket is in a private team the
// previous assignee is not in, their desk loses its stream.
func TestAccessChangeTicketTransferred(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	ctx := context.Background()
	agentID, agent2ID := ct.ids["agent"], ct.ids["agent2"]
	vip := ct.team(t, "VIP", true, agent2ID)
	admin, sup := ct.clients["admin"], ct.clients["supervisor"]

	v := ct.visitor(t, "")
	v.connect(ct)
	started := v.startChat(map[string]any{"name": "Carla", "email": "carla@example.org", "queue_id": ct.queueID, "body": "Hello"})
	taskID := ct.chatTask(t, started.TicketID)
	for _, who := range []string{"agent", "agent2"} {
		wantStatus(t, "capacity", admin.do(t, "PUT", fmt.Sprintf("/api/v1/agents/%d/capacity", ct.ids[who]), map[string]int{"chat": 2}), http.StatusOK)
	}
	wantStatus(t, "available", ct.clients["agent"].do(t, "PUT", "/api/v1/presence", map[string]string{"state": "available"}), http.StatusOK)
	if _, err := ct.eng.Dispatch(ctx); err != nil {
		t.Fatal(err)
	}
	task := fmt.Sprintf("/api/v1/tasks/%d", taskID)
	wantStatus(t, "accept", ct.clients["agent"].do(t, "POST", task+"/accept", nil), http.StatusOK)

	ticket := hub.TicketStream(started.TicketID)
	ws := ct.agentSocket(t, "agent", hub.AgentStream(agentID), ticket)
	// Into the private team: its assignee still sees it.
	wantStatus(t, "move to VIP", sup.do(t, "PATCH", fmt.Sprintf("/api/v1/tickets/%d", started.TicketID), map[string]any{"team_id": vip}), http.StatusOK)
	readUntil(t, ws, func(f map[string]any) bool {
		return f["type"] == TicketUpdated && f["stream"] == ticket && dataOf(f)["team_id"] == float64(vip)
	})

	wantStatus(t, "available", ct.clients["agent2"].do(t, "PUT", "/api/v1/presence", map[string]string{"state": "available"}), http.StatusOK)
	wantStatus(t, "transfer", sup.do(t, "POST", task+"/move", map[string]any{"agent_id": agent2ID}), http.StatusOK)
	for _, f := range readErrorsFor(t, ws, ticket) {
		if f["stream"] == ticket && f["type"] != "error" {
			t.Errorf("before the error frame: %v", f)
		}
	}
	// A later message of the chat does not reach the former assignee.
	wantStatus(t, "reply", ct.clients["agent2"].do(t, "POST", fmt.Sprintf("/api/v1/tickets/%d/messages", started.TicketID), map[string]any{"direction": "out", "body": "agent2 here"}), http.StatusCreated)
	readMessage(t, v.ws, "agent2 here")
	cust := &agentdesk.Customer{Name: "Nora"}
	if err := ct.store.CreateCustomer(ctx, ct.account, cust); err != nil {
		t.Fatal(err)
	}
	res := sup.do(t, "POST", "/api/v1/tickets", map[string]any{"customer_id": cust.ID, "subject": "Mine", "assignee_id": agentID})
	wantStatus(t, "create ticket", res, http.StatusCreated)
	var mine agentdesk.Ticket
	res.json(t, &mine)
	frames := readUntil(t, ws, func(f map[string]any) bool {
		return f["type"] == TicketCreated && dataOf(f)["id"] == float64(mine.ID)
	})
	for _, f := range frames {
		if f["stream"] == ticket {
			t.Errorf("after the transfer: %v", f)
		}
	}
}

// A team turned private takes its tickets out of the sight of the agents
// outside it: their desks drop those tickets' streams; its members keep
// them.
func TestAccessChangeTeamTurnedPrivate(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	acct, agentID, agent2ID := ct.account, ct.ids["agent"], ct.ids["agent2"]
	billing := ct.team(t, "Billing", false, agent2ID)
	cust := &agentdesk.Customer{Name: "Nora"}
	if err := ct.store.CreateCustomer(context.Background(), acct, cust); err != nil {
		t.Fatal(err)
	}
	sup := ct.clients["supervisor"]
	res := sup.do(t, "POST", "/api/v1/tickets", map[string]any{"customer_id": cust.ID, "subject": "Invoice", "team_id": billing})
	wantStatus(t, "create ticket", res, http.StatusCreated)
	var tk agentdesk.Ticket
	res.json(t, &tk)
	ticket := hub.TicketStream(tk.ID)
	ws := ct.agentSocket(t, "agent", hub.AgentStream(agentID), ticket)
	ws2 := ct.agentSocket(t, "agent2", ticket)

	res = ct.clients["admin"].do(t, "PATCH", "/api/v1/teams/"+strconv.FormatInt(billing, 10), map[string]any{"private": true})
	wantStatus(t, "make private", res, http.StatusOK)
	readErrorsFor(t, ws, ticket)

	res = sup.do(t, "PATCH", fmt.Sprintf("/api/v1/tickets/%d", tk.ID), map[string]any{"status": "pending"})
	wantStatus(t, "update ticket", res, http.StatusOK)
	readUntil(t, ws2, func(f map[string]any) bool {
		return f["type"] == TicketUpdated && f["stream"] == ticket && dataOf(f)["status"] == "pending"
	})
	res = sup.do(t, "POST", "/api/v1/tickets", map[string]any{"customer_id": cust.ID, "subject": "Mine", "assignee_id": agentID})
	wantStatus(t, "create ticket", res, http.StatusCreated)
	var mine agentdesk.Ticket
	res.json(t, &mine)
	for _, f := range readUntil(t, ws, func(f map[string]any) bool {
		return f["type"] == TicketCreated && dataOf(f)["id"] == float64(mine.ID)
	}) {
		if f["stream"] == ticket {
			t.Errorf("after the team turned private: %v", f)
		}
	}
}

// A resync of a ticket stream re-authorises the connection before any
// later event (the skipped events may have moved the ticket); one still
// allowed goes on receiving.
func TestAccessChangeTicketResync(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	cust := &agentdesk.Customer{Name: "Nora"}
	if err := ct.store.CreateCustomer(context.Background(), ct.account, cust); err != nil {
		t.Fatal(err)
	}
	sup := ct.clients["supervisor"]
	res := sup.do(t, "POST", "/api/v1/tickets", map[string]any{"customer_id": cust.ID, "subject": "Anyone"})
	wantStatus(t, "create ticket", res, http.StatusCreated)
	var tk agentdesk.Ticket
	res.json(t, &tk)
	ticket := hub.TicketStream(tk.ID)
	ws := ct.agentSocket(t, "agent")
	// A last_seq ahead of the stream: resync.
	ws.WriteJSON(map[string]any{"type": "resume", "id": "r2", "data": map[string]any{"streams": []any{map[string]any{"stream": ticket, "last_seq": 999}}}}) //nolint:errcheck
	if f := readFrame(t, ws, "resync"); f["stream"] != ticket {
		t.Fatalf("resync %v", f)
	}
	res = sup.do(t, "PATCH", fmt.Sprintf("/api/v1/tickets/%d", tk.ID), map[string]any{"status": "pending"})
	wantStatus(t, "update ticket", res, http.StatusOK)
	readUntil(t, ws, func(f map[string]any) bool {
		if f["type"] == "error" {
			t.Fatalf("after the resync: %v", f)
		}
		return f["type"] == TicketUpdated && f["stream"] == ticket
	})
}

// An offer accepted for a ticket that had another assignee gives it a new
// one: the former assignee, who saw the private team's ticket only as its
// assignee, is re-checked and loses its stream.
func TestAccessChangeTicketAcceptedByAnother(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	ctx := context.Background()
	agentID, agent2ID := ct.ids["agent"], ct.ids["agent2"]
	vip := ct.team(t, "VIP", true, agent2ID)
	admin, sup := ct.clients["admin"], ct.clients["supervisor"]
	cust := &agentdesk.Customer{Name: "Nora"}
	if err := ct.store.CreateCustomer(ctx, ct.account, cust); err != nil {
		t.Fatal(err)
	}
	res := sup.do(t, "POST", "/api/v1/tickets", map[string]any{"customer_id": cust.ID, "subject": "Refund", "team_id": vip, "assignee_id": agentID})
	wantStatus(t, "create ticket", res, http.StatusCreated)
	var tk agentdesk.Ticket
	res.json(t, &tk)
	ticket := hub.TicketStream(tk.ID)
	ws := ct.agentSocket(t, "agent", hub.AgentStream(agentID), ticket)

	wantStatus(t, "capacity", admin.do(t, "PUT", fmt.Sprintf("/api/v1/agents/%d/capacity", agent2ID), map[string]int{"email": 2}), http.StatusOK)
	wantStatus(t, "available", ct.clients["agent2"].do(t, "PUT", "/api/v1/presence", map[string]string{"state": "available"}), http.StatusOK)
	res = sup.do(t, "POST", "/api/v1/tasks", map[string]any{"channel": "email", "ticket_id": tk.ID, "customer_id": cust.ID})
	wantStatus(t, "queue", res, http.StatusCreated)
	var task routing.Task
	res.json(t, &task)
	if _, err := ct.eng.Dispatch(ctx); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "accept", ct.clients["agent2"].do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/accept", task.ID), nil), http.StatusOK)
	for _, f := range readErrorsFor(t, ws, ticket) {
		if f["stream"] == ticket && f["type"] != "error" {
			t.Errorf("before the error frame: %v", f)
		}
	}
	var assignee int64
	if err := ct.store.DB().QueryRow(ctx, `SELECT assignee_id FROM tickets WHERE id = $1`, tk.ID).Scan(&assignee); err != nil {
		t.Fatal(err)
	}
	if assignee != agent2ID {
		t.Fatalf("assignee %d, want %d", assignee, agent2ID)
	}
}
