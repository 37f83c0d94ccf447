package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"agentdesk/agentdesk"
	"agentdesk/web/hub"
)

// wsCallFrames sends a client message and returns every frame read up to and
// including its reply (ack or error).
func wsCallFrames(t *testing.T, ws *websocket.Conn, typ, id string, data any) (reply map[string]any, before []map[string]any) {
	t.Helper()
	if err := ws.WriteJSON(map[string]any{"type": typ, "id": id, "data": data}); err != nil {
		t.Fatal(err)
	}
	for {
		f := readAny(t, ws)
		if f["id"] == id && (f["type"] == "ack" || f["type"] == "error") {
			return f, before
		}
		before = append(before, f)
	}
}

// readUntil reads frames until one satisfies stop, returning all of them.
func readUntil(t *testing.T, ws *websocket.Conn, stop func(map[string]any) bool) []map[string]any {
	t.Helper()
	var got []map[string]any
	for {
		f := readAny(t, ws)
		got = append(got, f)
		if stop(f) {
			return got
		}
	}
}

func readAny(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	var f map[string]any
	if err := ws.ReadJSON(&f); err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return f
}

func createdIDs(frames []map[string]any) []int64 {
	var ids []int64
	for _, f := range frames {
		if f["type"] == TicketCreated {
			ids = append(ids, int64(dataOf(f)["id"].(float64)))
		}
	}
	return ids
}

// An agent's desk no longer follows the account's new tickets by default:
// it follows account:<id> (All open) and team:<id> (Team queue) only while
// such a list is on screen, with resume/unsubscribe, each authorised. A
// new ticket is then one frame per desk that shows a list of it, not one
// per connected agent.
func TestListStreamsFollowedOnDemand(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	acct := ct.account
	agentID := ct.ids["agent"]
	vip := ct.team(t, "VIP", true, ct.ids["agent2"])
	billing := ct.team(t, "Billing", false, agentID)
	create := ct.ticketMaker(t, "Nora")

	// The desk connects and resumes its default streams: its own only. The
	// ack names the account, for the list streams' names.
	u, _ := url.Parse(ct.srv.URL)
	var cookies []string
	for _, c := range ct.clients["agent"].http.Jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	ws, _, err := websocket.DefaultDialer.Dial(ct.wsURL("/ws/agent"), http.Header{"Origin": {ct.srv.URL}, "Cookie": {strings.Join(cookies, "; ")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	ack, _ := wsCallFrames(t, ws, "resume", "defaults", map[string]any{"streams": []any{}})
	if ack["type"] != "ack" || dataOf(ack)["account_id"] != float64(acct) {
		t.Fatalf("resume of the default streams: %v", ack)
	}
	if f := readFrame(t, ws, "subscribed"); f["stream"] != hub.AgentStream(agentID) {
		t.Fatalf("default stream %v", f["stream"])
	}

	// An unassigned ticket without a team goes to account:<id> (and the
	// supervisors'): this desk is not told.
	unseen := create(map[string]any{"subject": "Nobody looks"})
	if got := createdStreamsOf(t, ct, unseen); !slices.Contains(got, hub.AccountStream(acct)) {
		t.Fatalf("ticket.created of an unassigned ticket on %v", got)
	}
	// A ticket of the agent's own marks how far the desk has read: the
	// unassigned one must not be among the frames before it.
	mine := create(map[string]any{"subject": "Mine", "assignee_id": agentID})
	frames := readUntil(t, ws, func(f map[string]any) bool {
		return f["type"] == TicketCreated && dataOf(f)["id"] == float64(mine)
	})
	if ids := createdIDs(frames); slices.Contains(ids, unseen) {
		t.Errorf("a desk not following account:%d got ticket.created %d", acct, unseen)
	}

	// All open on screen: the desk follows account:<id> from now. The
	// subscribed seq is the stream's head: every ticket up to it is
	// committed, so the REST reload that follows lists it.
	follow := func(id, stream string) {
		t.Helper()
		if f, _ := wsCallFrames(t, ws, "resume", id, map[string]any{"streams": []any{map[string]any{"stream": stream}}}); f["type"] != "ack" {
			t.Fatalf("follow %s: %v", stream, f)
		}
		if f := readFrame(t, ws, "subscribed"); f["stream"] != stream {
			t.Fatalf("subscribed %v, want %s", f["stream"], stream)
		}
	}
	follow("open", hub.AccountStream(acct))
	res := ct.clients["agent"].do(t, "GET", "/api/v1/tickets?status=new", nil)
	wantStatus(t, "list", res, http.StatusOK)
	if !strings.Contains(string(res.body), `"Nobody looks"`) {
		t.Errorf("the reload after following lacks the ticket created before: %s", res.body)
	}
	seen := create(map[string]any{"subject": "Everybody looks"})
	if d := dataOf(readCreated(t, ws, hub.AccountStream(acct), seen)); d["subject"] != "Everybody looks" {
		t.Errorf("ticket.created %v", d)
	}

	// The Team queue follows the team's stream the same way.
	follow("queue", hub.TeamStream(billing))
	queued := create(map[string]any{"subject": "Billing question", "team_id": billing})
	readCreated(t, ws, hub.TeamStream(billing), queued)

	// The agent leaves the lists: unsubscribe stops both.
	for _, s := range []string{hub.AccountStream(acct), hub.TeamStream(billing)} {
		if f, _ := wsCallFrames(t, ws, "unsubscribe", "leave "+s, map[string]any{"stream": s}); f["type"] != "ack" {
			t.Fatalf("unsubscribe %s: %v", s, f)
		}
	}
	gone := create(map[string]any{"subject": "Nobody looks again", "team_id": billing})
	mine2 := create(map[string]any{"subject": "Mine again", "assignee_id": agentID})
	frames = readUntil(t, ws, func(f map[string]any) bool {
		return f["type"] == TicketCreated && dataOf(f)["id"] == float64(mine2)
	})
	for _, f := range frames {
		if f["type"] == TicketCreated && dataOf(f)["id"] == float64(gone) {
			t.Errorf("ticket.created %d on %v after unsubscribe", gone, f["stream"])
		}
	}

	// Streams the agent may not follow are refused with an error frame
	// naming the stream; the connection goes on.
	for _, tc := range []struct {
		stream, code, field string
	}{
		{hub.AccountStream(acct + 1000), string(agentdesk.Forbidden), "streams[0].stream"}, // another account's
		{hub.TeamStream(vip), string(agentdesk.Forbidden), "streams[0].stream"},            // a private team of others
		{hub.SupervisorStream(acct), string(agentdesk.Forbidden), "streams[0].stream"},
		{hub.AgentStream(ct.ids["agent2"]), string(agentdesk.Forbidden), "streams[0].stream"},
		{"account:", string(agentdesk.Invalid), "stream"},
		{"nonsense", string(agentdesk.Invalid), "stream"},
	} {
		f, _ := wsCallFrames(t, ws, "resume", "bad "+tc.stream, map[string]any{"streams": []any{map[string]any{"stream": tc.stream}}})
		if f["type"] != "error" || dataOf(f)["code"] != tc.code || dataOf(f)["field"] != tc.field {
			t.Errorf("follow %q: %v, want error %s on %s", tc.stream, f, tc.code, tc.field)
		}
	}
	if f, _ := wsCallFrames(t, ws, "ping", "still there", nil); f["type"] != "ack" {
		t.Errorf("after the refusals: %v", f)
	}
	// Refused follows took nothing: a private team's ticket does not reach
	// this desk (supervisors see it on their stream).
	private := create(map[string]any{"subject": "VIP only", "team_id": vip})
	mine3 := create(map[string]any{"subject": "Mine at last", "assignee_id": agentID})
	frames = readUntil(t, ws, func(f map[string]any) bool {
		return f["type"] == TicketCreated && dataOf(f)["id"] == float64(mine3)
	})
	if ids := createdIDs(frames); slices.Contains(ids, private) {
		t.Errorf("a refused follow delivered ticket %d: %v", private, ids)
	}
}
