package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"agentdesk/agentdesk"
)

// A client that stops reading is disconnected once its queue overflows;
// a client on the same stream keeps receiving every event.
func TestSlowConsumerDisconnectedOthersKeepReceiving(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{SendQueue: 8, MaxBacklog: 100000, SlowAfter: 500 * time.Millisecond})
	slow := srv.dialAgent(t, 10, "agent")
	fast := srv.dialAgent(t, 10, "agent")
	for _, c := range []*client{slow, fast} {
		c.request("resume", nil)
		c.readUntil("subscribed", "")
	}
	// The slow client reads nothing from here on. Big events fill the
	// kernel's socket buffers first, then the hub's queue; events keep
	// coming until the hub gives up on it.
	big := strings.Repeat("x", 64<<10)
	var n int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		defer close(stop)
		for i := 0; i < 5000 && srv.hub.Stats().SlowClosed.Load() == 0; i++ {
			e.publish("agent:10", "big", map[string]any{"i": i, "pad": big})
			n++
		}
	})
	for want := int64(1); ; want++ {
		f := fast.readUntil("big", "")
		if f.Seq != want {
			t.Fatalf("fast client: seq %d, want %d", f.Seq, want)
		}
		select {
		case <-stop:
			if want < n {
				continue
			}
		default:
			continue
		}
		break
	}
	wg.Wait()
	if got := srv.hub.Stats().SlowClosed.Load(); got != 1 {
		t.Errorf("slow closes = %d, want 1", got)
	}
	// Now the slow client reads what it was sent, then learns it was cut off.
	slow.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	var err error
	read := 0
	for err == nil {
		_, _, err = slow.ws.ReadMessage()
		read++
	}
	// 4008 if the close frame got through; a client that stopped reading
	// usually has a full socket, and then the server just hangs up (1006).
	if code, ok := isClose(err); ok && code != CloseSlowConsumer && code != websocket.CloseAbnormalClosure {
		t.Errorf("slow client closed with %d, want %d or 1006", code, CloseSlowConsumer)
	}
	if int64(read) > n {
		t.Errorf("slow client read %d frames of %d", read, n)
	}
}

// Every client message type is authorised: who may send it, and who not.
func TestAuthorisationOfEveryMessageType(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{})
	agent10 := func() *client { return srv.dialAgent(t, 10, "agent") }
	agent11 := func() *client { return srv.dialAgent(t, 11, "agent") }
	agent12 := func() *client { return srv.dialAgent(t, 12, "agent") }
	sup := func() *client { return srv.dial(t, "/ws/supervisor", http.Header{"X-Agent": {"20,supervisor"}}) }
	cust := func(v string) func() *client {
		return func() *client {
			return srv.dial(t, "/ws/customer?token="+e.token(v), http.Header{"Origin": {"https://shop.example"}})
		}
	}
	acct := fmt.Sprint(e.account)
	tests := []struct {
		name string
		who  func() *client
		typ  string
		data any
		want string // "" = ack, else the error code
	}{
		{"ping by anyone", cust("v1"), "ping", nil, ""},
		{"agent resumes own stream", agent10, "resume", resumeFrom("agent:10", -1), ""},
		{"agent resumes another agent's stream", agent10, "resume", resumeFrom("agent:11", -1), "forbidden"},
		{"agent resumes supervisor stream", agent10, "resume", resumeFrom("supervisor:"+acct, -1), "forbidden"},
		{"agent follows a public ticket", agent12, "resume", resumeFrom("ticket:1", -1), ""},
		{"agent follows a private ticket of another team", agent12, "resume", resumeFrom("ticket:2", -1), "forbidden"},
		{"team member follows private team ticket", agent11, "resume", resumeFrom("ticket:3", -1), ""},
		{"agent follows a missing ticket", agent10, "resume", resumeFrom("ticket:999", -1), "not_found"},
		{"supervisor follows supervisor stream", sup, "resume", resumeFrom("supervisor:"+acct, -1), ""},
		{"supervisor follows another account's supervisor stream", sup, "resume", resumeFrom("supervisor:999999", -1), "forbidden"},
		{"supervisor follows any agent", sup, "resume", resumeFrom("agent:10", -1), ""},
		{"customer resumes own visitor stream", cust("v1"), "resume", resumeFrom("visitor:v1", -1), ""},
		{"customer resumes another visitor", cust("v1"), "resume", resumeFrom("visitor:v2", -1), "forbidden"},
		{"customer follows a ticket stream (internal notes)", cust("v1"), "resume", resumeFrom("ticket:1", -1), "forbidden"},
		{"customer follows own task (queue position)", cust("v1"), "resume", resumeFrom("task:7", -1), ""},
		{"customer follows another's task", cust("v2"), "resume", resumeFrom("task:7", -1), "forbidden"},
		{"customer follows a missing task", cust("v1"), "resume", resumeFrom("task:8", -1), "forbidden"},
		{"agent follows a task stream", agent10, "resume", resumeFrom("task:7", -1), "forbidden"},
		{"team member follows the team stream", agent11, "resume", resumeFrom("team:5", -1), ""},
		{"agent follows another team's stream", agent10, "resume", resumeFrom("team:5", -1), "forbidden"},
		{"supervisor follows a team stream", sup, "resume", resumeFrom("team:5", -1), ""},
		{"customer follows a team stream", cust("v1"), "resume", resumeFrom("team:5", -1), "forbidden"},
		{"agent follows the account's ticket stream", agent10, "resume", resumeFrom("account:"+acct, -1), ""},
		{"agent follows another account's ticket stream", agent10, "resume", resumeFrom("account:999999", -1), "forbidden"},
		{"customer follows the account's ticket stream", cust("v1"), "resume", resumeFrom("account:"+acct, -1), "forbidden"},
		{"bad stream name", agent10, "resume", resumeFrom("agent 10", -1), "invalid"},
		{"unsubscribe anything", agent10, "unsubscribe", map[string]any{"stream": "agent:11"}, ""},
		{"agent types into assigned ticket", agent10, "typing", map[string]any{"ticket_id": 1, "typing": true}, ""},
		{"agent types into another's ticket", agent12, "typing", map[string]any{"ticket_id": 1, "typing": true}, "forbidden"},
		{"customer types into own ticket", cust("v1"), "typing", map[string]any{"ticket_id": 1, "typing": true}, ""},
		{"customer types into another ticket", cust("v2"), "typing", map[string]any{"ticket_id": 1, "typing": true}, "not_found"},
		{"another visitor of the same customer types (an unverified email link)", cust("v9"), "typing", map[string]any{"ticket_id": 1, "typing": true}, "not_found"},
		{"another visitor of the same customer posts", cust("v9"), "chat.send", map[string]any{"ticket_id": 1, "body": "hello"}, "not_found"},
		{"another visitor of the same customer follows its task", cust("v9"), "resume", resumeFrom("task:7", -1), "forbidden"},
		{"agent posts into assigned ticket", agent10, "chat.send", map[string]any{"ticket_id": 1, "body": "hi"}, ""},
		{"agent posts into unassigned-to-them ticket", agent12, "chat.send", map[string]any{"ticket_id": 1, "body": "hi"}, "forbidden"},
		{"supervisor posts into any ticket", sup, "chat.send", map[string]any{"ticket_id": 2, "body": "hi"}, ""},
		{"customer posts into own chat", cust("v1"), "chat.send", map[string]any{"body": "hello"}, ""},
		{"customer posts into own ticket", cust("v1"), "chat.send", map[string]any{"ticket_id": 1, "body": "hello"}, ""},
		{"customer posts into another's ticket", cust("v2"), "chat.send", map[string]any{"ticket_id": 1, "body": "hello"}, "not_found"},
		{"agent sets presence", agent10, "presence.set", map[string]any{"state": "available"}, ""},
		{"customer sets presence", cust("v1"), "presence.set", map[string]any{"state": "available"}, "forbidden"},
		{"agent accepts offer", agent10, "offer.accept", map[string]any{"offer_id": 4}, ""},
		{"customer accepts offer", cust("v1"), "offer.accept", map[string]any{"offer_id": 4}, "forbidden"},
		{"agent rejects offer", agent10, "offer.reject", map[string]any{"offer_id": 4, "reason": "busy"}, ""},
		{"customer rejects offer", cust("v1"), "offer.reject", map[string]any{"offer_id": 4}, "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.who()
			c.t = t
			f := c.request(tc.typ, tc.data)
			if got := errCode(f); got != tc.want {
				t.Errorf("%s: got %q (%s), want %q", tc.typ, got, f.Data, tc.want)
			}
		})
	}
	// Each message type is covered by the table.
	covered := map[string]bool{}
	for _, tc := range tests {
		covered[tc.typ] = true
	}
	for _, typ := range MessageTypes {
		if !covered[typ] {
			t.Errorf("message type %s has no authorisation case", typ)
		}
	}
	calls := strings.Join(e.actions.calls, "\n")
	for _, want := range []string{"presence.set available", "offer.accept 4", "offer.reject 4", "chat.send 1 hi", "chat.send 2 hi"} {
		if !strings.Contains(calls, want) {
			t.Errorf("action %q not carried out; calls:\n%s", want, calls)
		}
	}
	if strings.Count(calls, "offer.accept") != 1 || strings.Count(calls, "presence.set") != 1 {
		t.Errorf("a refused action was carried out:\n%s", calls)
	}
}

func TestConnectRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{AllowedOrigins: []string{"https://desk.example"}})
	expired := SignWidgetToken(testSecret, WidgetToken{AccountID: e.account, WidgetID: "w1", VisitorID: "v1", Expires: time.Now().Add(-time.Minute)})
	forged := SignWidgetToken([]byte("another secret, another secret!!"), WidgetToken{AccountID: e.account, WidgetID: "w1", VisitorID: "v1", Expires: time.Now().Add(time.Hour)})
	tests := []struct {
		name string
		path string
		hdr  http.Header
		ok   bool
	}{
		{"agent", "/ws/agent", http.Header{"X-Agent": {"10,agent"}}, true},
		{"agent from allowed origin", "/ws/agent", http.Header{"X-Agent": {"10,agent"}, "Origin": {"https://desk.example"}}, true},
		{"agent from foreign origin", "/ws/agent", http.Header{"X-Agent": {"10,agent"}, "Origin": {"https://evil.example"}}, false},
		{"agent without agent id (API token)", "/ws/agent", http.Header{"X-Agent": {"0,admin"}}, false},
		{"agent on supervisor endpoint", "/ws/supervisor", http.Header{"X-Agent": {"10,agent"}}, false},
		{"supervisor", "/ws/supervisor", http.Header{"X-Agent": {"20,supervisor"}}, true},
		{"customer from widget origin", "/ws/customer?token=" + e.token("v1"), http.Header{"Origin": {"https://shop.example"}}, true},
		{"customer from other origin", "/ws/customer?token=" + e.token("v1"), http.Header{"Origin": {"https://evil.example"}}, false},
		{"customer without token", "/ws/customer", http.Header{"Origin": {"https://shop.example"}}, false},
		{"customer with expired token", "/ws/customer?token=" + expired, http.Header{"Origin": {"https://shop.example"}}, false},
		{"customer with forged token", "/ws/customer?token=" + forged, http.Header{"Origin": {"https://shop.example"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := srv.tryDial(tc.path, tc.hdr)
			if c != nil {
				c.Close()
			}
			if (err == nil) != tc.ok {
				t.Errorf("dial: err = %v, want ok = %v", err, tc.ok)
			}
		})
	}
}

// Malformed frames get an error frame naming the problem, and the
// connection keeps working: the next request is answered normally.
func TestMalformedFramesGetErrorFrames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{})
	c := srv.dialAgent(t, 10, "agent")
	c.request("resume", nil)
	c.readUntil("subscribed", "")
	tests := []struct {
		name      string
		msgType   int
		payload   string
		code      string
		field     string
		wantReply bool // the error carries the client's id
	}{
		{"binary frame", websocket.BinaryMessage, `{"type":"ping"}`, "invalid", "", false},
		{"not JSON", websocket.TextMessage, `hello`, "invalid", "", false},
		{"two objects", websocket.TextMessage, `{"type":"ping"} {"type":"ping"}`, "invalid", "", false},
		{"array", websocket.TextMessage, `[1,2]`, "invalid", "", false},
		{"no type", websocket.TextMessage, `{"id":"m1"}`, "invalid", "type", true},
		{"unknown type", websocket.TextMessage, `{"type":"launch","id":"m1"}`, "unknown_type", "type", true},
		{"wrong field type", websocket.TextMessage, `{"type":"chat.send","id":"m1","data":{"ticket_id":"one","body":"x"}}`, "invalid", "ticket_id", true},
		{"unknown field", websocket.TextMessage, `{"type":"chat.send","id":"m1","data":{"ticket_id":1,"bdy":"x"}}`, "invalid", "bdy", true},
		{"data not an object", websocket.TextMessage, `{"type":"resume","id":"m1","data":"x"}`, "invalid", "", true},
		{"missing ticket", websocket.TextMessage, `{"type":"chat.send","id":"m1","data":{"body":"x"}}`, "invalid", "ticket_id", true},
		{"empty message", websocket.TextMessage, `{"type":"chat.send","id":"m1","data":{"ticket_id":1,"body":"  "}}`, "invalid", "body", true},
		{"chat over size", websocket.TextMessage, `{"type":"chat.send","id":"m1","data":{"ticket_id":1,"body":"` + strings.Repeat("é", MaxChatRunes+1) + `"}}`, "too_large", "", false},
		{"frame over message limit", websocket.TextMessage, `{"type":"ping","data":"` + strings.Repeat("x", 40<<10) + `"}`, "too_large", "", false},
		{"negative last_seq", websocket.TextMessage, `{"type":"resume","id":"m1","data":{"streams":[{"stream":"agent:10","last_seq":-4}]}}`, "invalid", "streams[0].last_seq", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.ws.WriteMessage(tc.msgType, []byte(tc.payload)); err != nil {
				t.Fatal(err)
			}
			f := c.readUntil("error", "")
			var b errorBody
			json.Unmarshal(f.Data, &b)
			if b.Code != tc.code || (tc.field != "" && b.Field != tc.field) || b.Message == "" {
				t.Errorf("error %+v, want code %q field %q", b, tc.code, tc.field)
			}
			if tc.wantReply && f.ID != "m1" {
				t.Errorf("error id %q, want m1", f.ID)
			}
			// still consistent: a request gets its own answer, and events flow
			if r := c.request("ping", nil); r.Type != "ack" {
				t.Fatalf("after %s: ping got %+v", tc.name, r)
			}
		})
	}
	e.publish("agent:10", "still.here", nil)
	if f := c.readUntil("still.here", ""); f.Seq != 1 {
		t.Errorf("seq %d", f.Seq)
	}
	// Beyond the hard limit the connection is closed with 1009.
	c.ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 32<<10*hardLimitFactor+1)))
	c.wantClosedWith(t, websocket.CloseMessageTooBig)
}

func TestCustomerRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{VisitorRate: 0.001, VisitorBurst: 3})
	c := srv.dial(t, "/ws/customer?token="+e.token("v1"), http.Header{"Origin": {"https://shop.example"}})
	for i := range 3 {
		if f := c.request("chat.send", map[string]any{"body": fmt.Sprint("m", i)}); f.Type != "ack" {
			t.Fatalf("message %d: %s", i, f.Data)
		}
	}
	if f := c.request("chat.send", map[string]any{"body": "one too many"}); errCode(f) != string(agentdesk.RateLimited) {
		t.Errorf("got %s %s, want rate_limited", f.Type, f.Data)
	}
	// another visitor is not affected
	c2 := srv.dial(t, "/ws/customer?token="+e.token("v2"), http.Header{"Origin": {"https://shop.example"}})
	if f := c2.request("ping", nil); f.Type != "ack" {
		t.Errorf("ping: %s", f.Data)
	}
}

// A stopped hub tells its clients to go away (and reconnect elsewhere).
func TestStopClosesWithGoingAway(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.startHub(Config{})
	c := srv.dialAgent(t, 10, "agent")
	c.request("resume", nil)
	c.readUntil("subscribed", "")
	if err := srv.hub.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.wantClosedWith(t, websocket.CloseGoingAway)
}

func TestWidgetToken(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tok := WidgetToken{AccountID: 3, WidgetID: "w", VisitorID: "v_1", Expires: now.Add(time.Hour)}
	s := SignWidgetToken(testSecret, tok)
	got, err := ParseWidgetToken(testSecret, s, now)
	if err != nil || got.AccountID != 3 || got.VisitorID != "v_1" || got.WidgetID != "w" {
		t.Fatalf("parse: %+v %v", got, err)
	}
	if _, err := ParseWidgetToken(testSecret, s, now.Add(2*time.Hour)); !agentdesk.IsKind(err, agentdesk.Unauthenticated) {
		t.Errorf("expired token: %v", err)
	}
	// tamper with the payload: visitor v_1 → v_2
	parts := strings.Split(s, ".")
	other := SignWidgetToken(testSecret, WidgetToken{AccountID: 3, WidgetID: "w", VisitorID: "v_2", Expires: now.Add(time.Hour)})
	forged := parts[0] + "." + strings.Split(other, ".")[1] + "." + parts[2]
	for _, bad := range []string{"", "wt1.", forged, s + "x", strings.Replace(s, "wt1.", "wt2.", 1)} {
		if _, err := ParseWidgetToken(testSecret, bad, now); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
}
