package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestEveryRouteIsDocumented walks the router and checks each /api/v1 route
// appears in the served OpenAPI document with its method.
func TestEveryRouteIsDocumented(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var d struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	r := e.clients["anon"].do(t, "GET", "/api/v1/openapi.json", nil)
	r.json(t, &d)
	n := 0
	err := chi.Walk(e.server.handler.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if !strings.HasPrefix(route, "/api/v1/") {
			return nil
		}
		route = pathParam.ReplaceAllString(strings.TrimSuffix(route, "/"), "{$1}")
		n++
		if _, ok := d.Paths[route][strings.ToLower(method)]; !ok {
			t.Errorf("%s %s is served but not in openapi.json", method, route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("walked only %d API routes", n)
	}
}
