package web

import (
	"fmt"
	"html"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// WithChatDemo serves GET /demo/widget: a plain shop page that embeds chat
// widget widgetID exactly as a customer's site does (a script tag, no
// inline script), so the chat can be tried against this server. The widget
// must allow this server's origin.
func WithChatDemo(widgetID string) Option {
	page := fmt.Sprintf(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo shop</title></head>
<body><h1>Demo shop</h1>
<p>A customer's website with the AgentDesk chat widget. Open the chat at the bottom right;
sign in to the desk in another browser (or a private window) as an agent, set yourself available and take the chat.</p>
<script src="/widget.js" data-widget="%s" async></script>
</body></html>
`, html.EscapeString(widgetID))
	return func(s *Server) {
		s.public = append(s.public, func(r chi.Router) {
			r.Get("/demo/widget", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprint(w, page)
			})
		})
	}
}
