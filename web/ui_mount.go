package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// WithUI serves the embedded browser apps (package web/ui: the agent desk
// and widget.js) on every GET path that the API, the websockets and the
// health endpoints do not claim, so the desk's client-side routes load it.
func WithUI(h http.Handler) Option {
	return func(s *Server) {
		s.mounts = append(s.mounts, func(r chi.Router) {
			r.Get("/*", h.ServeHTTP)
			r.Head("/*", h.ServeHTTP)
		})
	}
}
