package web

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"agentdesk/agentdesk"
)

var routeParam = regexp.MustCompile(`\{[^}]+\}`)

// TestAuthorizationMatrix sends every declared API route — walked from the
// router's own list, so a route added later is covered without touching this
// test — as each kind of caller, and checks the answer against the route's
// declared minimum role: 401 without credentials, 403 below the role, and
// neither at or above it. Path parameters name things that do not exist, so
// a caller who gets through sees 404 or a validation error, never a change.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	callers := []struct {
		name string
		role agentdesk.Role // "" for anonymous
	}{
		{"anon", ""}, {"agent", agentdesk.RoleAgent}, {"supervisor", agentdesk.RoleSupervisor},
		{"admin", agentdesk.RoleAdmin}, {"token", agentdesk.RoleAdmin},
	}
	checked := 0
	for _, ep := range e.server.api.endpoints {
		if ep.Role == "" {
			continue // public: authenticated some other way (doc.Auth), or not at all
		}
		path := "/api/v1" + routeParam.ReplaceAllString(ep.Path, "987654321")
		var body any
		if ep.Method == http.MethodPost || ep.Method == http.MethodPatch || ep.Method == http.MethodPut {
			body = "{}"
		}
		for _, c := range callers {
			res := e.clients[c.name].do(t, ep.Method, path, body)
			var want string
			ok := false
			switch {
			case c.role == "":
				want, ok = "401", res.status == http.StatusUnauthorized
			case !c.role.AtLeast(ep.Role):
				want, ok = "403", res.status == http.StatusForbidden
			default:
				want, ok = "neither 401 nor 403", res.status != http.StatusUnauthorized && res.status != http.StatusForbidden
			}
			if !ok {
				t.Errorf("%s %s (%s+) as %s: %d, want %s: %s", ep.Method, ep.Path, ep.Role, c.name, res.status, want, res.body)
			}
			if res.status >= 500 {
				t.Errorf("%s %s as %s: %d %s", ep.Method, ep.Path, c.name, res.status, res.body)
			}
			checked++
		}
	}
	if checked < 5*20 {
		t.Fatalf("only %d route × caller checks; is the route list empty?", checked)
	}
}

// TestAgentCannotReachAdminEndpoints spells out the admin-only routes an
// agent and a supervisor meet with 403, and that nothing changed.
func TestAgentCannotReachAdminEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, who := range []string{"agent", "supervisor"} {
		c := e.clients[who]
		for _, r := range []struct{ method, path, body string }{
			{"GET", "/api/v1/tokens", ""},
			{"GET", "/api/v1/audit", ""},
			{"POST", "/api/v1/tokens", `{"name":"mine","role":"admin"}`},
			{"POST", "/api/v1/agents", `{"email":"x@example.com","name":"X","role":"admin","password":"0123456789ab"}`},
			{"PATCH", fmt.Sprintf("/api/v1/agents/%d", e.ids[who]), `{"role":"admin"}`},
			{"POST", "/api/v1/teams", `{"name":"Mine"}`},
			{"POST", "/api/v1/reasons", `{"kind":"contact","name":"Mine"}`},
			{"POST", "/api/v1/statuses", `{"name":"mine","maps_to":"open"}`},
		} {
			var body any
			if r.body != "" {
				body = r.body
			}
			if res := c.do(t, r.method, r.path, body); res.status != http.StatusForbidden {
				t.Errorf("%s %s %s: %d %s", who, r.method, r.path, res.status, res.body)
			}
		}
	}
	var me agentdesk.Agent
	e.clients["agent"].do(t, "GET", "/api/v1/me", nil).json(t, &me)
	if me.Role != agentdesk.RoleAgent {
		t.Fatalf("the agent became %s", me.Role)
	}
	for table, want := range map[string]int{"api_tokens": 1, "agents": 4, "teams": 0, "reasons": 0, "custom_statuses": 0} {
		if n := e.deskCount(`SELECT count(*) FROM ` + table); n != want {
			t.Errorf("%s: %d rows, want %d", table, n, want)
		}
	}
}

// TestReadOnlyTokenCannotWrite: an API token with only the read scope reads
// tickets but cannot open one.
func TestReadOnlyTokenCannotWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.clients["admin"].do(t, "POST", "/api/v1/tokens", map[string]any{"name": "reports", "role": "agent", "scopes": []string{"read"}})
	var tok tokenCreated
	res.json(t, &tok)
	c := e.newClient()
	c.bearer = tok.Token
	if res := c.do(t, "GET", "/api/v1/tickets", nil); res.status != 200 {
		t.Fatalf("read: %d %s", res.status, res.body)
	}
	if res := c.do(t, "POST", "/api/v1/tickets", map[string]any{"subject": "x", "customer_id": e.deskCustomer("R")}); res.status != 403 {
		t.Fatalf("write with a read-only token: %d %s", res.status, res.body)
	}
	if n := e.deskCount(`SELECT count(*) FROM tickets`); n != 0 {
		t.Fatalf("%d tickets", n)
	}
}
