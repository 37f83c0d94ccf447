package web

import (
	"net/http"
	"strings"
	"testing"

	"agentdesk/agentdesk"
)

func TestLoginLogoutAndTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	anon := e.clients["anon"]

	if r := anon.do(t, "GET", "/api/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("anonymous /me = %d, want 401", r.status)
	}
	var me agentdesk.Agent
	r := e.clients["agent"].do(t, "GET", "/api/v1/me", nil)
	r.json(t, &me)
	if r.status != 200 || me.Email != "agent@example.com" || me.Role != agentdesk.RoleAgent {
		t.Fatalf("/me = %d %s", r.status, r.body)
	}

	for _, tc := range []struct {
		name, body string
		status     int
		field      string
	}{
		{"wrong password", `{"email":"agent@example.com","password":"nope"}`, 401, ""},
		{"unknown user", `{"email":"ghost@example.com","password":"nope"}`, 401, ""},
		{"missing email", `{"password":"x"}`, 422, "email"},
		{"unknown field", `{"email":"a@b.c","password":"x","admin":true}`, 400, "admin"},
		{"malformed", `{"email":`, 400, ""},
		{"wrong type", `{"email":1,"password":"x"}`, 400, "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.newClient().do(t, "POST", "/api/v1/auth/login", tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if _, field := r.errorKind(t); field != tc.field {
				t.Errorf("field %q, want %q", field, tc.field)
			}
		})
	}

	// Logout ends the session on the server, not just in the browser.
	c := e.login("agent2@example.com", testPassword)
	if r := c.do(t, "POST", "/api/v1/auth/logout", nil); r.status != http.StatusNoContent {
		t.Fatalf("logout = %d", r.status)
	}
	if r := c.do(t, "GET", "/api/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("/me after logout = %d, want 401", r.status)
	}

	// Tokens: admins create them; the secret is shown once; revoked ones stop.
	var created tokenCreated
	r = e.clients["admin"].do(t, "POST", "/api/v1/tokens", map[string]any{"name": "shop", "role": "agent", "scopes": []string{"read"}})
	r.json(t, &created)
	if r.status != 201 || !strings.HasPrefix(created.Token, TokenPrefix) {
		t.Fatalf("create token = %d %s", r.status, r.body)
	}
	tok := e.newClient()
	tok.bearer = created.Token
	if r := tok.do(t, "GET", "/api/v1/me", nil); r.status != 200 {
		t.Fatalf("token /me = %d %s", r.status, r.body)
	}
	if r := tok.do(t, "POST", "/api/v1/tokens", map[string]any{"name": "x"}); r.status != http.StatusForbidden {
		t.Fatalf("agent token creating tokens = %d, want 403", r.status)
	}
	if r := e.clients["agent"].do(t, "GET", "/api/v1/tokens", nil); r.status != http.StatusForbidden {
		t.Fatalf("agent listing tokens = %d, want 403", r.status)
	}
	if r := e.clients["admin"].do(t, "POST", "/api/v1/tokens", map[string]any{"name": "shop"}); r.status != http.StatusConflict {
		t.Fatalf("duplicate token name = %d, want 409: %s", r.status, r.body)
	}
	if r := e.clients["admin"].do(t, "DELETE", "/api/v1/tokens/"+itoa(created.ID), nil); r.status != 204 {
		t.Fatalf("revoke = %d %s", r.status, r.body)
	}
	if r := tok.do(t, "GET", "/api/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked token /me = %d, want 401", r.status)
	}
	bad := e.newClient()
	bad.bearer = "adk_nonsense"
	if r := bad.do(t, "GET", "/api/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("bad token = %d, want 401", r.status)
	}
	// The audit log recorded the admin actions.
	var audit List[auditDoc]
	e.clients["admin"].do(t, "GET", "/api/v1/audit", nil).json(t, &audit)
	if len(audit.Items) < 2 || audit.Items[0].Action != "token.revoke" {
		t.Fatalf("audit log = %+v", audit.Items)
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.server.logins = newKeyedLimiter(3, 60_000_000_000)
	var last int
	for range 5 {
		last = e.newClient().do(t, "POST", "/api/v1/auth/login", map[string]string{"email": "agent@example.com", "password": "wrong"}).status
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("6th rapid login = %d, want 429", last)
	}
}

func TestCrossOriginCookieWriteRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.clients["admin"].do(t, "POST", "/api/v1/tokens", map[string]any{"name": "evil"}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if r.status != http.StatusForbidden {
		t.Fatalf("cross-site write = %d, want 403", r.status)
	}
}

func TestHealthReadyMetricsOpenAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"} {
		if r := e.clients["anon"].do(t, "GET", p, nil); r.status != 200 {
			t.Errorf("%s = %d %s", p, r.status, r.body)
		}
	}
	r := e.clients["anon"].do(t, "GET", "/metrics", nil)
	if !strings.Contains(string(r.body), "agentdesk_http_requests_total") || !strings.Contains(string(r.body), "agentdesk_db_pool_connections") {
		t.Errorf("metrics lack request or pool figures")
	}
	if r := e.clients["agent"].do(t, "GET", "/api/v1/nope", nil); r.status != 404 {
		t.Errorf("unknown endpoint = %d", r.status)
	}
}
