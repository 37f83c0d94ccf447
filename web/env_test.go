package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
)

// testPassword is every test user's password; hashed with cheap argon2id
// parameters so tests stay fast (the stored parameters travel with the hash).
const testPassword = "correct horse battery staple"

var cheapParams = PasswordParams{Memory: 1024, Time: 1, Threads: 1}

// testEnv is a real server on a real, fresh database with one account and a
// user of each role, each with its own signed-in HTTP client.
type testEnv struct {
	t       *testing.T
	srv     *httptest.Server
	server  *Server
	store   *postgres.Store
	account int64
	// signed-in clients by role name: "admin", "supervisor", "agent", "agent2";
	// "token" is an admin API token, "anon" has no credentials.
	clients map[string]*client
	ids     map[string]int64 // agent ids by the same names
}

type client struct {
	http   *http.Client
	base   string
	bearer string
}

func newEnv(t *testing.T, opts ...Option) *testEnv {
	t.Helper()
	ctx := context.Background()
	store := postgres.NewStore(pgtest.New(t))
	acct, err := store.CreateAccount(ctx, "Test Co")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("AGENTDESK_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	server := New(Config{LoginRate: 1000}, store, log, opts...)
	srv := httptest.NewServer(server.Handler())
	t.Cleanup(srv.Close)
	e := &testEnv{t: t, srv: srv, server: server, store: store, account: acct.ID, clients: map[string]*client{}, ids: map[string]int64{}}
	for _, u := range []struct {
		name string
		role agentdesk.Role
	}{{"admin", agentdesk.RoleAdmin}, {"supervisor", agentdesk.RoleSupervisor}, {"agent", agentdesk.RoleAgent}, {"agent2", agentdesk.RoleAgent}} {
		e.ids[u.name] = e.createUser(u.name+"@example.com", u.name, u.role)
		e.clients[u.name] = e.login(u.name+"@example.com", testPassword)
	}
	e.clients["anon"] = e.newClient()
	admin := agentdesk.Actor{AccountID: acct.ID, AgentID: e.ids["admin"], Role: agentdesk.RoleAdmin}
	_, secret, err := CreateAPIToken(ctx, store, admin, "test token", agentdesk.RoleAdmin, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := e.newClient()
	tc.bearer = secret
	e.clients["token"] = tc
	return e
}

func (e *testEnv) createUser(email, name string, role agentdesk.Role) int64 {
	e.t.Helper()
	hash, err := HashPassword(testPassword, cheapParams)
	if err != nil {
		e.t.Fatal(err)
	}
	a := &agentdesk.Agent{Email: email, Name: name, Role: role}
	if err := e.store.CreateAgent(context.Background(), e.account, a, hash); err != nil {
		e.t.Fatal(err)
	}
	return a.ID
}

func (e *testEnv) newClient() *client {
	jar, _ := cookiejar.New(nil)
	return &client{http: &http.Client{Jar: jar}, base: e.srv.URL}
}

func (e *testEnv) login(email, password string) *client {
	e.t.Helper()
	c := e.newClient()
	res := c.do(e.t, "POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password})
	if res.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", email, res.status, res.body)
	}
	return c
}

// response is what a test reads back.
type response struct {
	status int
	body   []byte
	header http.Header
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errorKind returns the error body's kind and field.
func (r response) errorKind(t *testing.T) (agentdesk.Kind, string) {
	t.Helper()
	var b errorBody
	r.json(t, &b)
	return b.Error.Kind, b.Error.Field
}

// do sends body (a value to encode as JSON, a string sent raw, or nil).
func (c *client) do(t *testing.T, method, path string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, body: raw, header: res.Header}
}
