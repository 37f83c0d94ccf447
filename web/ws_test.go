package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/web/hub"
)

// The websockets as the server mounts them: session cookies and roles from
// the web layer's authentication, events from the database.
func TestWebsocketEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	actions := &HubActions{}
	h := hub.New(e.store.DB(), actions, hub.Config{}, nil)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	server := New(Config{LoginRate: 1000}, e.store, slog.New(slog.NewTextHandler(io.Discard, nil)), WithHub(h, actions, []byte("0123456789abcdef0123456789abcdef")))
	srv := httptest.NewServer(server.Handler())
	t.Cleanup(func() {
		h.Stop(context.Background()) //nolint:errcheck
		srv.Close()
	})
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http")
	cookieOf := func(who string) string {
		u, _ := url.Parse(e.srv.URL)
		var parts []string
		for _, c := range e.clients[who].http.Jar.Cookies(u) {
			parts = append(parts, c.Name+"="+c.Value)
		}
		return strings.Join(parts, "; ")
	}
	dial := func(path, who string) (*websocket.Conn, int) {
		hdr := http.Header{"Origin": {srv.URL}}
		if who != "" {
			hdr.Set("Cookie", cookieOf(who))
		}
		c, resp, err := websocket.DefaultDialer.Dial(wsURL+path, hdr)
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return nil, resp.StatusCode
		}
		t.Cleanup(func() { c.Close() })
		return c, http.StatusSwitchingProtocols
	}
	for _, tc := range []struct {
		path, who string
		want      int
	}{
		{"/ws/agent", "", http.StatusUnauthorized},
		{"/ws/supervisor", "agent", http.StatusForbidden},
		{"/ws/supervisor", "supervisor", http.StatusSwitchingProtocols},
		{"/ws/customer", "", http.StatusUnauthorized}, // no widget token
	} {
		if _, got := dial(tc.path, tc.who); got != tc.want {
			t.Errorf("%s as %q: HTTP %d, want %d", tc.path, tc.who, got, tc.want)
		}
	}

	c, _ := dial("/ws/agent", "agent")
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	read := func(typ string) map[string]any {
		for {
			var f map[string]any
			if err := c.ReadJSON(&f); err != nil {
				t.Fatalf("read: %v", err)
			}
			if f["type"] == typ {
				return f
			}
		}
	}
	c.WriteJSON(map[string]any{"type": "resume", "id": "r1"}) //nolint:errcheck
	if f := read("subscribed"); f["stream"] != hub.AgentStream(e.ids["agent"]) {
		t.Errorf("subscribed %v", f)
	}
	err := pgx.BeginFunc(ctx, e.store.DB(), func(tx pgx.Tx) error {
		return hub.Publish(ctx, tx, hub.Event{AccountID: e.account, Stream: hub.AgentStream(e.ids["agent"]), Type: "offer", Data: map[string]int{"task_id": 5}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if f := read("offer"); f["seq"] != float64(1) {
		t.Errorf("offer %v", f)
	}
	// A chat reply from the assigned agent: stored, on the ticket's stream for
	// the desks and on the visitor's stream for the widget, in one commit.
	cust := &agentdesk.Customer{Name: "Vera Visitor", Identities: []agentdesk.Identity{{Kind: agentdesk.IdentityVisitor, Value: "v_abc"}}}
	if err := e.store.CreateCustomer(ctx, e.account, cust); err != nil {
		t.Fatal(err)
	}
	agentID := e.ids["agent"]
	agentActor := agentdesk.Actor{AccountID: e.account, AgentID: agentID, Role: agentdesk.RoleAgent}
	ticket := &agentdesk.Ticket{Subject: "Chat", CustomerID: cust.ID, Channel: agentdesk.ChannelChat, AssigneeID: &agentID}
	if err := e.store.CreateTicket(ctx, agentActor, ticket, &agentdesk.Message{Kind: agentdesk.KindChat, Direction: agentdesk.DirIn, Body: "Hello?"}); err != nil {
		t.Fatal(err)
	}
	startedChat(t, e.store.DB(), e.account, ticket.ID, "v_abc")
	c.WriteJSON(map[string]any{"type": "resume", "id": "r2", "data": map[string]any{"streams": []any{map[string]any{"stream": hub.TicketStream(ticket.ID)}}}}) //nolint:errcheck
	read("subscribed")
	c.WriteJSON(map[string]any{"type": "chat.send", "id": "c1", "data": map[string]any{"ticket_id": ticket.ID, "body": "Hi Vera, how can I help?"}}) //nolint:errcheck
	if f := read("message.created"); f["stream"] != hub.TicketStream(ticket.ID) || f["data"].(map[string]any)["body"] != "Hi Vera, how can I help?" {
		t.Errorf("message event %v", f)
	}
	// The agent's first reply opened the ticket: open desks hear it.
	if f := read("ticket.updated"); f["data"].(map[string]any)["status"] != string(agentdesk.StatusOpen) {
		t.Errorf("ticket event after the first reply %v", f)
	}
	var onVisitor int
	e.store.DB().QueryRow(ctx, "SELECT count(*) FROM stream_events WHERE account_id = $1 AND stream = 'visitor:v_abc' AND type = 'message.created'", e.account).Scan(&onVisitor)
	var stored int
	e.store.DB().QueryRow(ctx, "SELECT count(*) FROM messages WHERE account_id = $1 AND ticket_id = $2 AND body = 'Hi Vera, how can I help?'", e.account, ticket.ID).Scan(&stored)
	if onVisitor != 1 || stored != 1 {
		t.Errorf("visitor stream events %d, stored messages %d; want 1 and 1", onVisitor, stored)
	}

	// No routing engine on this server: refused with a reason, connection kept.
	c.WriteJSON(map[string]any{"type": "offer.accept", "id": "a1", "data": map[string]any{"offer_id": 5}}) //nolint:errcheck
	if f := read("error"); f["id"] != "a1" || f["data"].(map[string]any)["code"] != string(agentdesk.Unavailable) {
		t.Errorf("offer.accept: %v", f)
	}
}

// A visitor's chat message: stored on the open chat it started, published
// to the ticket's and the visitor's streams, and stored once when the widget
// retries it. Another visitor of the same customer (linked by a typed,
// unverified email) may not write to it.
func TestVisitorChatMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	actions := &HubActions{}
	h := hub.New(e.store.DB(), actions, hub.Config{}, nil)
	New(Config{}, e.store, slog.New(slog.NewTextHandler(io.Discard, nil)), WithHub(h, actions, []byte("0123456789abcdef0123456789abcdef")))
	cust := &agentdesk.Customer{Name: "Vera", Identities: []agentdesk.Identity{{Kind: agentdesk.IdentityVisitor, Value: "v_old"}}}
	if err := e.store.CreateCustomer(ctx, e.account, cust); err != nil {
		t.Fatal(err)
	}
	if err := e.store.AddIdentity(ctx, e.account, cust.ID, &agentdesk.Identity{Kind: agentdesk.IdentityVisitor, Value: "v_new"}); err != nil {
		t.Fatal(err)
	}
	admin := agentdesk.Actor{AccountID: e.account, AgentID: e.ids["admin"], Role: agentdesk.RoleAdmin}
	ticket := &agentdesk.Ticket{Subject: "Chat", CustomerID: cust.ID, Channel: agentdesk.ChannelChat}
	if err := e.store.CreateTicket(ctx, admin, ticket, &agentdesk.Message{Kind: agentdesk.KindChat, Direction: agentdesk.DirIn, Body: "Hi"}); err != nil {
		t.Fatal(err)
	}
	startedChat(t, e.store.DB(), e.account, ticket.ID, "v_old")
	info, err := actions.Ticket(ctx, e.account, ticket.ID)
	if err != nil || info.VisitorID != "v_old" || !info.HasVisitor("v_old") || info.HasVisitor("v_new") || info.HasVisitor("v_other") {
		t.Fatalf("ticket info %+v %v", info, err)
	}
	sameCustomer := hub.Principal{Visitor: &hub.WidgetToken{AccountID: e.account, VisitorID: "v_new"}}
	if _, _, err := actions.SendChat(ctx, sameCustomer, 0, hub.ChatMessage{Body: "let me in"}); !agentdesk.IsKind(err, agentdesk.NotFound) {
		t.Errorf("another visitor of the customer without its own chat: %v, want not found", err)
	}
	p := hub.Principal{Visitor: &hub.WidgetToken{AccountID: e.account, VisitorID: "v_old"}}
	for range 2 { // the second is the widget retrying
		msgID, tid, err := actions.SendChat(ctx, p, 0, hub.ChatMessage{Body: "Where is my order?", ClientMsgID: "m-1"})
		if err != nil || tid != ticket.ID || msgID == 0 {
			t.Fatalf("SendChat: %d %d %v", msgID, tid, err)
		}
	}
	var stored, onTicket, onVisitor int
	db := e.store.DB()
	db.QueryRow(ctx, "SELECT count(*) FROM messages WHERE account_id = $1 AND ticket_id = $2 AND body = 'Where is my order?' AND direction = 'in'", e.account, ticket.ID).Scan(&stored)
	db.QueryRow(ctx, "SELECT count(*) FROM stream_events WHERE account_id = $1 AND stream = $2", e.account, hub.TicketStream(ticket.ID)).Scan(&onTicket)
	db.QueryRow(ctx, "SELECT count(*) FROM stream_events WHERE account_id = $1 AND stream = 'visitor:v_old'", e.account).Scan(&onVisitor)
	if stored != 1 || onTicket != 1 || onVisitor != 1 {
		t.Errorf("stored %d, ticket stream %d, visitor stream %d; want 1 each", stored, onTicket, onVisitor)
	}
	other := hub.Principal{Visitor: &hub.WidgetToken{AccountID: e.account, VisitorID: "v_stranger"}}
	if _, _, err := actions.SendChat(ctx, other, 0, hub.ChatMessage{Body: "hello"}); !agentdesk.IsKind(err, agentdesk.NotFound) {
		t.Errorf("stranger without a chat: %v, want not found", err)
	}
}

// startedChat records that visitorID started ticketID's chat from a widget,
// as POST /widget/{id}/chat does.
func startedChat(t *testing.T, db *pgxpool.Pool, accountID, ticketID int64, visitorID string) {
	t.Helper()
	ctx := context.Background()
	var widget int64
	err := db.QueryRow(ctx, `INSERT INTO chat_widgets (account_id, public_id, name) VALUES ($1, $2, 'Test') RETURNING id`,
		accountID, fmt.Sprintf("w%d_%d", accountID, ticketID)).Scan(&widget)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO chats (account_id, ticket_id, widget_id, visitor_id) VALUES ($1, $2, $3, $4)`, accountID, ticketID, widget, visitorID); err != nil {
		t.Fatal(err)
	}
}
