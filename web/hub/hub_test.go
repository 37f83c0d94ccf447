package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// pgx pools of pgtest close in t.Cleanup after the check's snapshot.
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).triggerHealthCheck.func1"),
	)
}

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// testActions is the web layer's part, played by the test: tickets in a
// map, chat messages published like the store will publish them.
type testActions struct {
	db *pgxpool.Pool

	mu          sync.Mutex
	tickets     map[int64]TicketInfo
	calls       []string
	deactivated map[int64]bool // agents whose re-check finds them deactivated
}

func (a *testActions) record(s string) {
	a.mu.Lock()
	a.calls = append(a.calls, s)
	a.mu.Unlock()
}

func (a *testActions) Ticket(ctx context.Context, accountID, ticketID int64) (TicketInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.tickets[ticketID]
	if !ok {
		return TicketInfo{}, agentdesk.Errorf(agentdesk.NotFound, "ticket not found")
	}
	return t, nil
}

func (a *testActions) Task(ctx context.Context, accountID, taskID int64) (TicketInfo, error) {
	if taskID == 7 { // visitor v1's wait for ticket 1
		return a.Ticket(ctx, accountID, 1)
	}
	return TicketInfo{}, agentdesk.Errorf(agentdesk.NotFound, "task not found")
}

func (a *testActions) SendChat(ctx context.Context, p Principal, ticketID int64, m ChatMessage) (int64, int64, error) {
	if ticketID == 0 {
		ticketID = 1 // the visitor's open chat
	}
	a.record(fmt.Sprintf("chat.send %d %s", ticketID, m.Body))
	t, _ := a.Ticket(ctx, p.AccountID(), ticketID)
	err := pgx.BeginFunc(ctx, a.db, func(tx pgx.Tx) error {
		data := map[string]any{"ticket_id": ticketID, "body": m.Body}
		if err := Publish(ctx, tx, Event{AccountID: p.AccountID(), Stream: TicketStream(ticketID), Type: "message.created", Data: data}); err != nil {
			return err
		}
		if t.VisitorID == "" {
			return nil
		}
		return Publish(ctx, tx, Event{AccountID: p.AccountID(), Stream: VisitorStream(t.VisitorID), Type: "message.created", Data: data})
	})
	return 77, ticketID, err
}

func (a *testActions) SetPresence(ctx context.Context, actor agentdesk.Actor, state, reason string) error {
	a.record("presence.set " + state)
	return nil
}

func (a *testActions) AcceptOffer(ctx context.Context, actor agentdesk.Actor, offerID int64) error {
	a.record(fmt.Sprintf("offer.accept %d", offerID))
	return nil
}

func (a *testActions) RejectOffer(ctx context.Context, actor agentdesk.Actor, offerID int64, reason string) error {
	a.record(fmt.Sprintf("offer.reject %d", offerID))
	return nil
}

func (a *testActions) Agent(ctx context.Context, accountID, agentID int64, session string) (agentdesk.Actor, time.Time, error) {
	a.mu.Lock()
	gone := a.deactivated[agentID]
	a.mu.Unlock()
	if gone {
		return agentdesk.Actor{}, time.Time{}, agentdesk.Errorf(agentdesk.Unauthenticated, "agent deactivated")
	}
	return agentdesk.Actor{AccountID: accountID, AgentID: agentID, Role: agentdesk.RoleAgent}, time.Time{}, nil
}

func (a *testActions) Token(ctx context.Context, accountID, tokenID int64) (agentdesk.Actor, error) {
	return agentdesk.Actor{AccountID: accountID, TokenID: tokenID, Role: agentdesk.RoleSupervisor}, nil
}

func (a *testActions) WidgetOrigins(ctx context.Context, accountID int64, widgetID string) ([]string, error) {
	if widgetID == "w1" {
		return []string{"https://shop.example"}, nil
	}
	return nil, agentdesk.Errorf(agentdesk.NotFound, "no such widget")
}

// env is one database with one or more hubs, each behind its own server.
type env struct {
	t       *testing.T
	db      *pgxpool.Pool
	url     string
	account int64
	actions *testActions
}

func newEnv(t *testing.T) *env {
	t.Helper()
	url := pgtest.NewURL(t)
	db, err := postgres.Open(context.Background(), url, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	var acct int64
	if err := db.QueryRow(context.Background(), "INSERT INTO accounts (name) VALUES ('Acme') RETURNING id").Scan(&acct); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, url: url, account: acct, actions: &testActions{db: db, tickets: map[int64]TicketInfo{
		1: {ID: 1, AssigneeID: 10, VisitorID: "v1"}, // agent 10's chat with visitor v1
		2: {ID: 2, AssigneeID: 11, Private: true},   // agent 11's, private team 5
		3: {ID: 3, AssigneeID: 11, TeamID: 5, Private: true},
	}}}
}

type server struct {
	hub *Hub
	url string // ws://host
}

// startHub runs a hub on its own pool (as another process would) behind an
// httptest server. Test auth: X-Agent: "id,role" or a widget token.
func (e *env) startHub(cfg Config) *server {
	e.t.Helper()
	db, err := postgres.Open(context.Background(), e.url, 8)
	if err != nil {
		e.t.Fatal(err)
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	h := New(db, e.actions, cfg, slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := h.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	mux := http.NewServeMux()
	actor := func(r *http.Request) agentdesk.Actor {
		id, role, _ := strings.Cut(r.Header.Get("X-Agent"), ",")
		n, _ := strconv.ParseInt(id, 10, 64)
		a := agentdesk.Actor{AccountID: e.account, AgentID: n, Role: agentdesk.Role(role)}
		if n == 11 {
			a.TeamIDs = []int64{5}
		}
		return a
	}
	serve := func(f func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := f(w, r); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
			}
		}
	}
	mux.HandleFunc("/ws/agent", serve(func(w http.ResponseWriter, r *http.Request) error { return h.ServeAgent(w, r, actor(r)) }))
	mux.HandleFunc("/ws/supervisor", serve(func(w http.ResponseWriter, r *http.Request) error { return h.ServeSupervisor(w, r, actor(r)) }))
	mux.HandleFunc("/ws/customer", serve(func(w http.ResponseWriter, r *http.Request) error { return h.ServeCustomer(w, r, testSecret) }))
	srv := httptest.NewServer(mux)
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Stop(ctx); err != nil {
			e.t.Errorf("hub stop: %v", err)
		}
		srv.Close()
		db.Close()
	})
	return &server{hub: h, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
}

func (e *env) publish(stream, typ string, data any) {
	e.t.Helper()
	err := pgx.BeginFunc(context.Background(), e.db, func(tx pgx.Tx) error {
		return Publish(context.Background(), tx, Event{AccountID: e.account, Stream: stream, Type: typ, Data: data})
	})
	if err != nil {
		e.t.Error(err)
	}
}

func (e *env) token(visitor string) string {
	return SignWidgetToken(testSecret, WidgetToken{AccountID: e.account, WidgetID: "w1", VisitorID: visitor, Expires: time.Now().Add(time.Hour)})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// client is a real websocket client.
type client struct {
	t       *testing.T
	ws      *websocket.Conn
	pending []frame // read while waiting for a reply, not yet consumed
	seen    []string
}

type frame struct {
	Type   string          `json:"type"`
	Stream string          `json:"stream"`
	Seq    int64           `json:"seq"`
	ID     string          `json:"id"`
	Data   json.RawMessage `json:"data"`
}

// readToEnd reads c until its connection ends, 20 s at most, and returns
// the error that ended it.
func (c *client) readToEnd() error {
	c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		if _, _, err := c.ws.ReadMessage(); err != nil {
			return err
		}
	}
}

// wantClosedWith reads c to its end, which must be a close frame with code.
func (c *client) wantClosedWith(t *testing.T, code int) {
	t.Helper()
	err := c.readToEnd()
	if got, _ := isClose(err); got != code {
		t.Errorf("close: %v, want %d", err, code)
	}
}

func (s *server) dialAgent(t *testing.T, agentID int64, role agentdesk.Role) *client {
	t.Helper()
	return s.dial(t, "/ws/agent", http.Header{"X-Agent": {fmt.Sprintf("%d,%s", agentID, role)}})
}

func (s *server) dial(t *testing.T, path string, hdr http.Header) *client {
	t.Helper()
	c, err := s.tryDial(path, hdr)
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{t: t, ws: c}
	t.Cleanup(func() { c.Close() })
	return cl
}

func (s *server) tryDial(path string, hdr http.Header) (*websocket.Conn, error) {
	c, resp, err := websocket.DefaultDialer.Dial(s.url+path, hdr)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", path, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", path, err)
	}
	return c, nil
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) read() frame {
	c.t.Helper()
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		return f
	}
	return c.readWire()
}

func (c *client) readWire() frame {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	var f frame
	if err := c.ws.ReadJSON(&f); err != nil {
		c.t.Fatalf("read: %v; frames so far: %s", err, strings.Join(c.seen, " "))
	}
	c.seen = append(c.seen, fmt.Sprintf("%s/%s/%d/%s", f.Type, f.Stream, f.Seq, f.ID))
	return f
}

// readUntil reads frames until one of type typ (and id, if given) arrives,
// skipping pings' pongs and events.
func (c *client) readUntil(typ, id string) frame {
	c.t.Helper()
	for {
		f := c.read()
		if f.Type == typ && (id == "" || f.ID == id) {
			return f
		}
	}
}

// request sends {type,id,data} and returns the ack or error for it.
func (c *client) request(typ string, data any) frame {
	c.t.Helper()
	id := typ + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.send(map[string]any{"type": typ, "id": id, "data": data})
	for {
		f := c.readWire()
		if (f.Type == "ack" || f.Type == "error") && f.ID == id {
			return f
		}
		c.pending = append(c.pending, f) // events may overtake the reply
	}
}

func errCode(f frame) string {
	if f.Type != "error" {
		return ""
	}
	var b errorBody
	json.Unmarshal(f.Data, &b)
	return b.Code
}

func resumeFrom(stream string, last int64) map[string]any {
	s := map[string]any{"stream": stream}
	if last >= 0 {
		s["last_seq"] = last
	}
	return map[string]any{"streams": []any{s}}
}

func isClose(err error) (int, bool) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, true
	}
	return 0, false
}
