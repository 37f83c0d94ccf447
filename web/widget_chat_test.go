package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/routing"
	"agentdesk/web/hub"
)

// routingHub publishes routing events to the hub's streams, as serve does.
type routingHub struct{}

func (routingHub) Publish(ctx context.Context, tx pgx.Tx, e routing.Event) error {
	return hub.Publish(ctx, tx, hub.Event(e))
}

// chatEnv is a test server with the chat channel as serve wires it: a
// running hub, a routing engine (dispatched by hand) whose events reach
// visitors, and a chat queue and widget for the shop at shopOrigin.
type chatTest struct {
	*testEnv
	eng     *routing.Engine
	queueID int64
	widget  string
}

const shopOrigin = "https://shop.example"

func newChatEnv(t *testing.T) *chatTest {
	t.Helper()
	ctx := context.Background()
	var eng *routing.Engine
	var h *hub.Hub
	actions := &HubActions{}
	e := newEnv(t, func(s *Server) {
		eng = routing.New(s.store.DB(), nil, s.log, ChatRoutingEvents(routingHub{}), routing.Config{})
		WithRouting(eng)(s)
		WithEnqueuer(eng)(s)
		h = hub.New(s.store.DB(), actions, hub.Config{}, nil)
		WithHub(h, actions, []byte("0123456789abcdef0123456789abcdef"))(s)
	})
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop(context.Background()) }) //nolint:errcheck
	c := &chatTest{testEnv: e, eng: eng, widget: "acme"}
	var q routing.Queue
	res := e.clients["admin"].do(t, "POST", "/api/v1/queues", map[string]any{"name": "Chat", "channels": []string{"chat", "email"}})
	wantStatus(t, "create queue", res, http.StatusCreated)
	res.json(t, &q)
	c.queueID = q.ID
	res = e.clients["admin"].do(t, "POST", "/api/v1/widgets", map[string]any{"public_id": "acme", "name": "Acme shop",
		"allowed_origins": []string{shopOrigin}, "topics": []map[string]any{{"name": "Orders", "queue_id": q.ID}},
		"title": "Acme support", "greeting": "Hi!"})
	wantStatus(t, "create widget", res, http.StatusCreated)
	var w widgetView
	res.json(t, &w)
	if !strings.Contains(w.Embed, `/widget.js" data-widget="acme"`) || w.Offline != agentdesk.OfflineMessage || len(w.Topics) != 1 {
		t.Fatalf("widget %+v", w)
	}
	return c
}

// visitor is a chat visitor: a token and a websocket, as widget.js has.
type visitor struct {
	t       *testing.T
	id      string
	token   string
	session sessionResponse
	c       *client
	ws      *websocket.Conn
}

func (ct *chatTest) visitor(t *testing.T, visitorID string) *visitor {
	t.Helper()
	c := ct.newClient()
	body := map[string]any{}
	if visitorID != "" {
		body["visitor_id"] = visitorID
	}
	res := c.do(t, "POST", "/api/v1/widget/"+ct.widget+"/session", body, "Origin", shopOrigin)
	wantStatus(t, "session", res, http.StatusOK)
	if got := res.header.Get("Access-Control-Allow-Origin"); got != shopOrigin {
		t.Errorf("CORS origin %q", got)
	}
	v := &visitor{t: t, c: c}
	res.json(t, &v.session)
	v.id, v.token = v.session.VisitorID, v.session.Token
	return v
}

func (ct *chatTest) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(ct.srv.URL, "http") + path
}

func (v *visitor) connect(ct *chatTest) {
	t := v.t
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(ct.wsURL("/ws/customer?token="+url.QueryEscape(v.token)), http.Header{"Origin": {shopOrigin}})
	if err != nil {
		t.Fatalf("visitor websocket: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	v.ws = ws
	ws.WriteJSON(map[string]any{"type": "resume", "id": "r", "data": map[string]any{"streams": []any{}}}) //nolint:errcheck
	readFrame(t, ws, "subscribed")
}

func (v *visitor) post(path string, body any) response {
	v.t.Helper()
	return v.c.do(v.t, "POST", "/api/v1/widget/acme"+path, body, "Origin", shopOrigin, "Authorization", "Bearer "+v.token)
}

// startChat starts the visitor's chat with the widget form's fields and
// returns what the widget is told.
func (v *visitor) startChat(fields map[string]any) chatStarted {
	v.t.Helper()
	res := v.post("/chat", fields)
	wantStatus(v.t, "start chat", res, http.StatusCreated)
	var started chatStarted
	res.json(v.t, &started)
	return started
}

// chatTask is the routing task of the chat on the ticket.
func (ct *chatTest) chatTask(t *testing.T, ticketID int64) int64 {
	t.Helper()
	var id int64
	if err := ct.store.DB().QueryRow(context.Background(), `SELECT task_id FROM chats WHERE account_id = $1 AND ticket_id = $2`,
		ct.account, ticketID).Scan(&id); err != nil {
		t.Fatalf("task of the chat on ticket %d: %v", ticketID, err)
	}
	return id
}

// readFrame reads until a frame of type typ and returns it.
func readFrame(t *testing.T, ws *websocket.Conn, typ string) map[string]any {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	for {
		var f map[string]any
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if f["type"] == typ {
			return f
		}
	}
}

// readMessage reads until message.created with body.
func readMessage(t *testing.T, ws *websocket.Conn, body string) map[string]any {
	t.Helper()
	for {
		if f := readFrame(t, ws, MessageCreated); dataOf(f)["body"] == body {
			return f
		}
	}
}

func dataOf(f map[string]any) map[string]any { d, _ := f["data"].(map[string]any); return d }

func (ct *chatTest) agentSocket(t *testing.T, who string, streams ...string) *websocket.Conn {
	t.Helper()
	u, _ := url.Parse(ct.srv.URL)
	var parts []string
	for _, c := range ct.clients[who].http.Jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return dialWS(t, ct, "/ws/agent", http.Header{"Cookie": {strings.Join(parts, "; ")}}, streams...)
}

// The whole chat over HTTP and websockets, as widget.js and the desk do it.
func TestChatFlow(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	ctx := context.Background()
	db := ct.store.DB()
	agent := ct.clients["agent"]

	v := ct.visitor(t, "")
	if !v.session.Online || len(v.session.Queues) != 1 || v.session.Queues[0].ID != ct.queueID || v.session.Title != "Acme support" || !strings.HasPrefix(v.id, "v_") {
		t.Fatalf("session %+v", v.session)
	}
	v.connect(ct)

	// The pre-chat form starts the chat: queued at position 1.
	started := v.startChat(map[string]any{"name": "Carla Customer", "email": "Carla@Example.org", "queue_id": ct.queueID, "body": "Where is my order?"})
	if started.Position != 1 || started.TicketID == 0 {
		t.Fatalf("started %+v", started)
	}
	if d := dataOf(readFrame(t, v.ws, ChatQueued)); d["position"] != float64(1) || d["ticket_id"] != float64(started.TicketID) {
		t.Errorf("chat.queued %v", d)
	}
	taskID := ct.chatTask(t, started.TicketID)

	// The agent goes available, gets the offer and accepts: the visitor
	// learns the agent's name.
	wantStatus(t, "capacity", ct.clients["admin"].do(t, "PUT", fmt.Sprintf("/api/v1/agents/%d/capacity", ct.ids["agent"]), map[string]int{"chat": 2}), http.StatusOK)
	wantStatus(t, "available", agent.do(t, "PUT", "/api/v1/presence", map[string]string{"state": "available"}), http.StatusOK)
	if _, err := ct.eng.Dispatch(ctx); err != nil {
		t.Fatal(err)
	}
	task := fmt.Sprintf("/api/v1/tasks/%d", taskID)
	wantStatus(t, "accept", agent.do(t, "POST", task+"/accept", nil), http.StatusOK)
	if d := dataOf(readFrame(t, v.ws, ChatAgentJoined)); d["agent_name"] != "agent" || d["ticket_id"] != float64(started.TicketID) {
		t.Errorf("chat.agent_joined %v", d)
	}

	// Messages both ways.
	desk := ct.agentSocket(t, "agent", hub.TicketStream(started.TicketID))
	ticketPath := fmt.Sprintf("/api/v1/tickets/%d", started.TicketID)
	wantStatus(t, "agent reply", agent.do(t, "POST", ticketPath+"/messages", map[string]any{"direction": "out", "body": "Hi Carla, it ships today."}), http.StatusCreated)
	if d := dataOf(readFrame(t, v.ws, MessageCreated)); d["body"] != "Hi Carla, it ships today." || d["direction"] != "out" {
		t.Errorf("visitor got %v", d)
	}
	v.ws.WriteJSON(map[string]any{"type": "chat.send", "id": "s1", "data": map[string]any{"body": "Great, thanks!", "client_msg_id": "m1"}}) //nolint:errcheck
	if d := dataOf(readMessage(t, desk, "Great, thanks!")); d["direction"] != "in" {
		t.Errorf("desk got %v", d)
	}
	// An internal note posted over REST reaches the desk live, not the visitor.
	wantStatus(t, "note", agent.do(t, "POST", ticketPath+"/messages", map[string]any{"kind": "note", "body": "VIP"}), http.StatusCreated)
	if d := dataOf(readMessage(t, desk, "VIP")); d["direction"] != "internal" {
		t.Errorf("desk got %v", d)
	}

	// The agent wraps up: the chat ends for the visitor; the ticket change
	// reaches the desk.
	var reason int64
	if err := db.QueryRow(ctx, `INSERT INTO reasons (account_id, kind, name) VALUES ($1, 'contact', 'Where is my order') RETURNING id`, ct.account).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "complete", agent.do(t, "POST", task+"/complete", map[string]any{"contact_reason_id": reason, "resolution_code": "solved"}), http.StatusOK)
	if d := dataOf(readFrame(t, v.ws, ChatEnded)); d["ticket_id"] != float64(started.TicketID) || d["ended_by"] != "agent" {
		t.Errorf("chat.ended %v", d)
	}
	wantStatus(t, "solve", agent.do(t, "PATCH", ticketPath, map[string]any{"status": "solved", "outcome": map[string]any{"contact_reason_id": reason, "resolution_code": "solved"}}), http.StatusOK)
	if d := dataOf(readFrame(t, desk, TicketUpdated)); d["status"] != "solved" {
		t.Errorf("ticket.updated %v", d)
	}

	// The visitor rates the chat and asks for the transcript.
	wantStatus(t, "rate", v.post("/chat/rating", map[string]any{"rating": 5, "comment": "Quick and friendly"}), http.StatusNoContent)
	wantStatus(t, "rate again", v.post("/chat/rating", map[string]any{"rating": 1}), http.StatusConflict)
	wantStatus(t, "transcript", v.post("/chat/transcript", map[string]any{"email": "carla@example.org"}), http.StatusAccepted)
	var rating int
	var comment, state string
	var ended *time.Time
	if err := db.QueryRow(ctx, `SELECT t.csat_rating, t.csat_comment, k.state, c.ended_at FROM tickets t JOIN tasks k ON k.id = $3 JOIN chats c ON c.ticket_id = t.id
		WHERE t.account_id = $1 AND t.id = $2`, ct.account, started.TicketID, taskID).Scan(&rating, &comment, &state, &ended); err != nil {
		t.Fatal(err)
	}
	if rating != 5 || comment != "Quick and friendly" || state != "completed" || ended == nil {
		t.Errorf("CSAT %d %q, task %s, ended %v", rating, comment, state, ended)
	}
	var transcript string
	if err := db.QueryRow(ctx, `SELECT body FROM messages WHERE account_id = $1 AND ticket_id = $2 AND kind = 'email'`, ct.account, started.TicketID).Scan(&transcript); err != nil {
		t.Fatalf("transcript: %v", err)
	}
	if !strings.Contains(transcript, "You: Where is my order?") || !strings.Contains(transcript, "agent: Hi Carla, it ships today.") || strings.Contains(transcript, "VIP") {
		t.Errorf("transcript:\n%s", transcript)
	}

	// Back later: the visitor is recognised and linked to the customer by email.
	again := ct.visitor(t, v.id)
	if again.id != v.id || again.session.Name != "Carla Customer" || again.session.Email != "carla@example.org" || again.session.Chat != nil {
		t.Errorf("returning visitor %+v", again.session)
	}
	stranger := ct.visitor(t, "v_never_issued")
	if stranger.id == "v_never_issued" {
		t.Error("a visitor id the server never issued was accepted")
	}
}

// A visitor who leaves while waiting abandons the routing task, its wait kept.
func TestChatEndWhileQueued(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	ctx := context.Background()
	v := ct.visitor(t, "")
	v.connect(ct)
	started := v.startChat(map[string]any{"name": "Ann", "email": "ann@example.org", "body": "Hello"})
	again := ct.visitor(t, v.id)
	if again.session.Chat == nil || again.session.Chat.Status != "queued" || len(again.session.Chat.Messages) != 1 || again.session.Chat.Position != 1 {
		t.Errorf("open chat after a reload: %+v", again.session.Chat)
	}
	wantStatus(t, "second chat", v.post("/chat", map[string]any{"name": "Ann", "email": "ann@example.org", "body": "Hello?"}), http.StatusConflict)
	// Bob waits behind Ann.
	bob := ct.visitor(t, "")
	bob.connect(ct)
	res := bob.post("/chat", map[string]any{"name": "Bob", "email": "bob@example.org", "body": "Hi"})
	wantStatus(t, "bob starts", res, http.StatusCreated)
	if d := dataOf(readFrame(t, bob.ws, ChatQueued)); d["position"] != float64(2) {
		t.Errorf("bob's first chat.queued %v", d)
	}
	wantStatus(t, "end", v.post("/chat/end", map[string]any{}), http.StatusNoContent)
	if d := dataOf(readFrame(t, v.ws, ChatEnded)); d["ended_by"] != "visitor" {
		t.Errorf("chat.ended %v", d)
	}
	// Ann left: routing tells Bob he moved up.
	if err := ct.eng.PublishStats(ctx); err != nil {
		t.Fatal(err)
	}
	if d := dataOf(readFrame(t, bob.ws, ChatQueued)); d["position"] != float64(1) {
		t.Errorf("bob's chat.queued after Ann left %v", d)
	}
	wantStatus(t, "end again", v.post("/chat/end", map[string]any{}), http.StatusNoContent)
	var state string
	var wait *int
	if err := ct.store.DB().QueryRow(ctx, `SELECT k.state, k.wait_seconds FROM tasks k JOIN chats c ON c.task_id = k.id WHERE c.account_id = $1 AND c.ticket_id = $2`,
		ct.account, started.TicketID).Scan(&state, &wait); err != nil {
		t.Fatal(err)
	}
	if state != "abandoned" || wait == nil {
		t.Errorf("task %s, wait %v; want abandoned with its wait", state, wait)
	}
}

// Offline: the widget takes a message, which becomes an email ticket.
func TestChatLeaveMessage(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	ctx := context.Background()
	// Closed today (a holiday, whatever the hour).
	now := time.Now().UTC()
	var days []string
	for _, d := range []int{-1, 0, 1} {
		days = append(days, now.AddDate(0, 0, d).Format(time.DateOnly))
	}
	wantStatus(t, "hours", ct.clients["admin"].do(t, "PUT", fmt.Sprintf("/api/v1/queues/%d/business-hours", ct.queueID),
		map[string]any{"timezone": "UTC", "holidays": days}), http.StatusOK)
	v := ct.visitor(t, "")
	if v.session.Online {
		t.Fatalf("online outside hours: %+v", v.session)
	}
	wantStatus(t, "chat while offline", v.post("/chat", map[string]any{"name": "Ann", "email": "ann@example.org", "body": "Hello"}), http.StatusServiceUnavailable)
	res := v.post("/messages", map[string]any{"name": "Ann", "email": "ann@example.org", "body": "Please call me back."})
	wantStatus(t, "leave a message", res, http.StatusCreated)
	var left messageLeft
	res.json(t, &left)
	var channel, kind string
	if err := ct.store.DB().QueryRow(ctx, `SELECT t.channel, m.kind FROM tickets t JOIN messages m ON m.ticket_id = t.id WHERE t.account_id = $1 AND t.id = $2`,
		ct.account, left.TicketID).Scan(&channel, &kind); err != nil {
		t.Fatal(err)
	}
	if channel != "email" || kind != "email" {
		t.Errorf("left message: channel %s kind %s", channel, kind)
	}
}

// The widget runs only on the sites it allows: REST, preflight and websocket.
func TestChatOriginRefused(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	anon := ct.clients["anon"]
	res := anon.do(t, "POST", "/api/v1/widget/acme/session", map[string]any{}, "Origin", "https://evil.example")
	if k, _ := res.errorKind(t); res.status != http.StatusForbidden || k != agentdesk.Forbidden || res.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("session from another site: %d %s", res.status, res.body)
	}
	res = anon.do(t, "OPTIONS", "/api/v1/widget/acme/chat", nil, "Origin", shopOrigin, "Access-Control-Request-Method", "POST")
	if res.status != http.StatusNoContent || res.header.Get("Access-Control-Allow-Origin") != shopOrigin || !strings.Contains(res.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", res.status, res.header)
	}
	res = anon.do(t, "OPTIONS", "/api/v1/widget/acme/chat", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if res.status != http.StatusForbidden {
		t.Errorf("preflight from another site: %d", res.status)
	}
	v := ct.visitor(t, "")
	_, resp, err := websocket.DefaultDialer.Dial(ct.wsURL("/ws/customer?token="+url.QueryEscape(v.token)), http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("websocket from another site: %v %v", resp, err)
	}
	// After the admin allows the site, it works.
	var w widgetView
	ct.clients["admin"].do(t, "GET", "/api/v1/widgets", nil).json(t, &struct{ Items []widgetView }{})
	res = ct.clients["admin"].do(t, "GET", "/api/v1/widgets", nil)
	var list List[widgetView]
	res.json(t, &list)
	if len(list.Items) != 1 {
		t.Fatalf("widgets %s", res.body)
	}
	res = ct.clients["admin"].do(t, "PATCH", fmt.Sprintf("/api/v1/widgets/%d", list.Items[0].ID), map[string]any{"allowed_origins": []string{shopOrigin, "https://evil.example"}})
	wantStatus(t, "patch", res, http.StatusOK)
	res.json(t, &w)
	if len(w.AllowedOrigins) != 2 || len(w.Topics) != 1 {
		t.Errorf("patched %+v", w)
	}
	wantStatus(t, "allowed now", anon.do(t, "POST", "/api/v1/widget/acme/session", map[string]any{}, "Origin", "https://evil.example"), http.StatusOK)
}

// Bad input to every new endpoint: refused with the right status, the
// database unchanged.
func TestChatBadInput(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	ctx := context.Background()
	v := ct.visitor(t, "")
	// One open chat exists, so "duplicate" can be tried.
	wantStatus(t, "start", v.post("/chat", map[string]any{"name": "Ann", "email": "ann@example.org", "body": "Hello"}), http.StatusCreated)
	other := ct.visitor(t, "")
	wantStatus(t, "rate", v.post("/chat/rating", map[string]any{"rating": 4}), http.StatusNoContent)

	counts := func() string {
		var out []string
		for _, tbl := range []string{"tickets", "messages", "chats", "chat_widgets", "chat_widget_topics", "identities", "customers", "tasks"} {
			var n int
			if err := ct.store.DB().QueryRow(ctx, `SELECT count(*) FROM `+tbl).Scan(&n); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s=%d", tbl, n))
		}
		var csat string
		ct.store.DB().QueryRow(ctx, `SELECT coalesce(string_agg(csat_rating::text || csat_comment, ','), '') FROM tickets`).Scan(&csat) //nolint:errcheck
		return strings.Join(out, " ") + " csat=" + csat
	}
	before := counts()
	big := strings.Repeat("x", 70<<10)
	long := strings.Repeat("é", MaxChatBody+1)
	admin, agent := ct.clients["admin"], ct.clients["agent"]
	widgetPath := fmt.Sprintf("/api/v1/widgets/%d", func() int64 {
		var id int64
		ct.store.DB().QueryRow(ctx, `SELECT id FROM chat_widgets LIMIT 1`).Scan(&id) //nolint:errcheck
		return id
	}())
	withToken := func(tok string) []string {
		return []string{"Origin", shopOrigin, "Authorization", "Bearer " + tok}
	}
	forged := hub.SignWidgetToken([]byte("another secret, 32 bytes long!!!"), hub.WidgetToken{AccountID: ct.account, WidgetID: "acme", VisitorID: v.id, Expires: time.Now().Add(time.Hour)})
	expired := hub.SignWidgetToken([]byte("0123456789abcdef0123456789abcdef"), hub.WidgetToken{AccountID: ct.account, WidgetID: "acme", VisitorID: v.id, Expires: time.Now().Add(-time.Minute)})
	for _, tc := range []struct {
		name         string
		c            *client
		method, path string
		body         any
		hdrs         []string
		status       int
		kind         agentdesk.Kind
		field        string
	}{
		{"widgets as agent", agent, "GET", "/api/v1/widgets", nil, nil, 403, agentdesk.Forbidden, ""},
		{"create widget as agent", agent, "POST", "/api/v1/widgets", map[string]any{"public_id": "x", "name": "X"}, nil, 403, agentdesk.Forbidden, ""},
		{"create widget anonymously", ct.clients["anon"], "POST", "/api/v1/widgets", map[string]any{"public_id": "x", "name": "X"}, nil, 401, agentdesk.Unauthenticated, ""},
		{"create widget malformed", admin, "POST", "/api/v1/widgets", `{"public_id":`, nil, 400, agentdesk.Invalid, ""},
		{"create widget unknown field", admin, "POST", "/api/v1/widgets", map[string]any{"public_id": "x", "name": "X", "colour": "red"}, nil, 400, agentdesk.Invalid, "colour"},
		{"create widget oversize", admin, "POST", "/api/v1/widgets", map[string]any{"public_id": "x", "name": big}, nil, 413, agentdesk.TooLarge, ""},
		{"create widget duplicate", admin, "POST", "/api/v1/widgets", map[string]any{"public_id": "acme", "name": "Again"}, nil, 409, agentdesk.Conflict, "public_id"},
		{"create widget bad id", admin, "POST", "/api/v1/widgets", map[string]any{"public_id": "a b", "name": "X"}, nil, 422, agentdesk.Invalid, "public_id"},
		{"create widget bad origin", admin, "POST", "/api/v1/widgets", map[string]any{"public_id": "x", "name": "X", "allowed_origins": []string{"shop.example/path"}}, nil, 422, agentdesk.Invalid, "allowed_origins"},
		{"create widget unknown queue", admin, "POST", "/api/v1/widgets", map[string]any{"public_id": "x", "name": "X", "topics": []any{map[string]any{"name": "A", "queue_id": 999999}}}, nil, 422, agentdesk.Invalid, "topics.queue_id"},
		{"create widget bad offline", admin, "POST", "/api/v1/widgets", map[string]any{"public_id": "x", "name": "X", "offline_behaviour": "sleep"}, nil, 422, agentdesk.Invalid, "offline_behaviour"},
		{"patch widget as agent", agent, "PATCH", widgetPath, map[string]any{"name": "Y"}, nil, 403, agentdesk.Forbidden, ""},
		{"patch widget unknown field", admin, "PATCH", widgetPath, map[string]any{"colour": "red"}, nil, 400, agentdesk.Invalid, "colour"},
		{"patch widget empty name", admin, "PATCH", widgetPath, map[string]any{"name": ""}, nil, 422, agentdesk.Invalid, "name"},
		{"patch missing widget", admin, "PATCH", "/api/v1/widgets/999999", map[string]any{"name": "Y"}, nil, 404, agentdesk.NotFound, ""},
		{"session unknown widget", ct.clients["anon"], "POST", "/api/v1/widget/nope/session", map[string]any{}, nil, 404, agentdesk.NotFound, ""},
		{"session malformed", ct.clients["anon"], "POST", "/api/v1/widget/acme/session", `{"visitor_id"`, nil, 400, agentdesk.Invalid, ""},
		{"session unknown field", ct.clients["anon"], "POST", "/api/v1/widget/acme/session", map[string]any{"visitor": "x"}, nil, 400, agentdesk.Invalid, "visitor"},
		{"session oversize", ct.clients["anon"], "POST", "/api/v1/widget/acme/session", map[string]any{"visitor_id": big}, nil, 413, agentdesk.TooLarge, ""},
		{"session bad visitor id", ct.clients["anon"], "POST", "/api/v1/widget/acme/session", map[string]any{"visitor_id": "../../x"}, nil, 422, agentdesk.Invalid, "visitor_id"},
		{"chat without token", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat", map[string]any{"name": "A", "email": "a@example.org", "body": "Hi"}, nil, 401, agentdesk.Unauthenticated, ""},
		{"chat forged token", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat", map[string]any{"name": "A", "email": "a@example.org", "body": "Hi"}, withToken(forged), 401, agentdesk.Unauthenticated, ""},
		{"chat expired token", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat", map[string]any{"name": "A", "email": "a@example.org", "body": "Hi"}, withToken(expired), 401, agentdesk.Unauthenticated, ""},
		{"chat malformed", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat", `{"name":`, withToken(other.token), 400, agentdesk.Invalid, ""},
		{"chat unknown field", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat", map[string]any{"name": "A", "email": "a@example.org", "body": "Hi", "topic": "x"}, withToken(other.token), 400, agentdesk.Invalid, "topic"},
		{"chat oversize body", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat", map[string]any{"name": "A", "email": "a@example.org", "body": big}, withToken(other.token), 413, agentdesk.TooLarge, ""},
		{"chat message too long", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat", map[string]any{"name": "A", "email": "a@example.org", "body": long}, withToken(other.token), 413, agentdesk.TooLarge, "body"},
		{"chat empty body", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat", map[string]any{"name": "A", "email": "a@example.org", "body": "  "}, withToken(other.token), 422, agentdesk.Invalid, "body"},
		{"chat bad email", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat", map[string]any{"name": "A", "email": "nope", "body": "Hi"}, withToken(other.token), 422, agentdesk.Invalid, "email"},
		{"chat foreign queue", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat", map[string]any{"name": "A", "email": "a@example.org", "body": "Hi", "queue_id": 999999}, withToken(other.token), 422, agentdesk.Invalid, "queue_id"},
		{"chat duplicate", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat", map[string]any{"name": "Ann", "email": "ann@example.org", "body": "Hi again"}, withToken(v.token), 409, agentdesk.Conflict, ""},
		{"end without chat", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat/end", map[string]any{}, withToken(other.token), 404, agentdesk.NotFound, ""},
		{"end unknown field", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat/end", map[string]any{"why": "x"}, withToken(v.token), 400, agentdesk.Invalid, "why"},
		{"end without token", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat/end", map[string]any{}, nil, 401, agentdesk.Unauthenticated, ""},
		{"rating out of range", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat/rating", map[string]any{"rating": 6}, withToken(v.token), 422, agentdesk.Invalid, "rating"},
		{"rating malformed", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat/rating", `{"rating": "five"}`, withToken(v.token), 400, agentdesk.Invalid, "rating"},
		{"rating oversize", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat/rating", map[string]any{"rating": 3, "comment": big}, withToken(v.token), 413, agentdesk.TooLarge, ""},
		{"rating duplicate", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat/rating", map[string]any{"rating": 3}, withToken(v.token), 409, agentdesk.Conflict, ""},
		{"rating without chat", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat/rating", map[string]any{"rating": 3}, withToken(other.token), 404, agentdesk.NotFound, ""},
		{"transcript to a stranger", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat/transcript", map[string]any{"email": "someone@else.example"}, withToken(v.token), 422, agentdesk.Invalid, "email"},
		{"transcript unknown field", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat/transcript", map[string]any{"to": "x"}, withToken(v.token), 400, agentdesk.Invalid, "to"},
		{"message without token", ct.clients["anon"], "POST", "/api/v1/widget/acme/messages", map[string]any{"name": "A", "email": "a@example.org", "body": "Hi"}, nil, 401, agentdesk.Unauthenticated, ""},
		{"message too long", ct.clients["anon"], "POST", "/api/v1/widget/acme/messages", map[string]any{"name": "A", "email": "a@example.org", "body": long}, withToken(other.token), 413, agentdesk.TooLarge, "body"},
		{"message no email", ct.clients["anon"], "POST", "/api/v1/widget/acme/messages", map[string]any{"name": "A", "body": "Hi"}, withToken(other.token), 422, agentdesk.Invalid, "email"},
		{"token of another widget's page", ct.clients["anon"], "POST", "/api/v1/widget/acme/chat/end", map[string]any{}, []string{"Origin", "https://evil.example", "Authorization", "Bearer " + v.token}, 403, agentdesk.Forbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.c.do(t, tc.method, tc.path, tc.body, tc.hdrs...)
			if res.status != tc.status {
				t.Fatalf("%d, want %d: %s", res.status, tc.status, res.body)
			}
			kind, field := res.errorKind(t)
			if kind != tc.kind || (tc.field != "" && field != tc.field) {
				t.Errorf("error %s %q, want %s %q: %s", kind, field, tc.kind, tc.field, res.body)
			}
		})
	}
	if after := counts(); after != before {
		t.Errorf("database changed:\nbefore %s\nafter  %s", before, after)
	}
}

// The demo page embeds the widget like a customer's site: a script tag, no
// inline script, under the server's strict CSP.
func TestChatDemoPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithChatDemo("demo"))
	res := e.clients["anon"].do(t, "GET", "/demo/widget", nil)
	wantStatus(t, "demo page", res, http.StatusOK)
	body := string(res.body)
	if !strings.Contains(body, `<script src="/widget.js" data-widget="demo" async></script>`) || strings.Count(body, "<script") != 1 ||
		!strings.Contains(res.header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("demo page %s %v", body, res.header)
	}
}

// Token issues are rate limited per client address, with a clear error.
func TestChatSessionRateLimit(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	var last response
	for range 31 {
		last = ct.clients["anon"].do(t, "POST", "/api/v1/widget/acme/session", map[string]any{}, "Origin", shopOrigin)
	}
	if k, _ := last.errorKind(t); last.status != http.StatusTooManyRequests || k != agentdesk.RateLimited || last.header.Get("Retry-After") == "" ||
		last.header.Get("Access-Control-Allow-Origin") != shopOrigin {
		t.Errorf("31st session: %d %v %s", last.status, last.header, last.body)
	}
}

// A visitor is linked to a customer by the email it types, unverified: a
// second visitor naming the same address must not receive the first one's
// chat.
func TestChatEmailLinkDoesNotLeak(t *testing.T) {
	t.Parallel()
	ct := newChatEnv(t)
	ctx := context.Background()
	carla := ct.visitor(t, "")
	carla.connect(ct)
	started := carla.startChat(map[string]any{"name": "Carla", "email": "carla@example.org", "body": "Hello"})
	taskID := ct.chatTask(t, started.TicketID)
	wantStatus(t, "available", ct.clients["agent"].do(t, "PUT", "/api/v1/presence", map[string]string{"state": "available"}), http.StatusOK)
	if _, err := ct.eng.Dispatch(ctx); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "accept", ct.clients["agent"].do(t, "POST", fmt.Sprintf("/api/v1/tasks/%d/accept", taskID), nil), http.StatusOK)

	// Someone else types Carla's address into the widget.
	mallory := ct.visitor(t, "")
	mallory.connect(ct)
	wantStatus(t, "mallory starts", mallory.post("/chat", map[string]any{"name": "M", "email": "carla@example.org", "body": "Hi"}), http.StatusCreated)
	wantStatus(t, "reply", ct.clients["agent"].do(t, "POST", fmt.Sprintf("/api/v1/tickets/%d/messages", started.TicketID),
		map[string]any{"direction": "out", "body": "Your order ships today."}), http.StatusCreated)
	readMessage(t, carla.ws, "Your order ships today.")
	var leaked int
	ct.store.DB().QueryRow(ctx, `SELECT count(*) FROM stream_events WHERE stream = $1 AND data->>'body' = 'Your order ships today.'`, hub.VisitorStream(mallory.id)).Scan(&leaked) //nolint:errcheck
	if leaked != 0 {
		t.Errorf("the reply to Carla's chat reached the other visitor (%d events)", leaked)
	}
	// Nor Carla's name from her customer record.
	if back := ct.visitor(t, mallory.id); back.session.Name != "M" || back.session.Email != "carla@example.org" {
		t.Errorf("returning visitor's form: %q %q, want what it typed", back.session.Name, back.session.Email)
	}
}
