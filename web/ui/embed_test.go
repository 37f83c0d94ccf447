package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	built := fstest.MapFS{
		"index.html":          {Data: []byte("<!doctype html><title>desk</title>")},
		"widget.js":           {Data: []byte("(function(){})()")},
		"assets/app-abc12.js": {Data: []byte("console.log(1)")},
		".keep":               {Data: []byte("x")},
	}
	tests := []struct {
		name, path  string
		fs          fstest.MapFS
		code        int
		cache, body string
	}{
		{"index", "/", built, 200, "no-cache", "<title>desk</title>"},
		{"client route", "/tickets/42", built, 200, "no-cache", "<title>desk</title>"},
		{"hashed asset", "/assets/app-abc12.js", built, 200, "public, max-age=31536000, immutable", "console.log"},
		{"widget", "/widget.js", built, 200, "no-cache", "(function"},
		{"missing asset", "/assets/old-123.js", built, 404, "", ""},
		{"api is not the app", "/api/v1/nope", built, 404, "", ""},
		{"placeholder hidden", "/.keep", built, 404, "", ""},
		{"not built", "/", fstest.MapFS{".keep": {Data: []byte("x")}}, 503, "no-cache", "UI not built"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			handler(tc.fs).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.code {
				t.Fatalf("GET %s: status %d, want %d", tc.path, rec.Code, tc.code)
			}
			if got := rec.Header().Get("Cache-Control"); tc.cache != "" && got != tc.cache {
				t.Errorf("GET %s: Cache-Control %q, want %q", tc.path, got, tc.cache)
			}
			if !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("GET %s: body %q does not contain %q", tc.path, rec.Body.String(), tc.body)
			}
		})
	}
}
