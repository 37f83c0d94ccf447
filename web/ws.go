package web

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"agentdesk/agentdesk"
	"agentdesk/web/hub"
)

// WithHub mounts the websocket endpoints of h: /ws/agent and /ws/supervisor
// for signed-in users (session cookie or API token, identified by
// authenticate), /ws/customer for chat visitors with a widget token signed
// with widgetSecret. actions, when not nil, is the hub's Actions and is bound
// to this server here. The protocol is web/PROTOCOL.md. The caller starts
// and stops h (before and after the server).
func WithHub(h *hub.Hub, actions *HubActions, widgetSecret []byte) Option {
	return func(s *Server) {
		if actions != nil {
			actions.s = s
		}
		s.chat.secret, s.chat.live = widgetSecret, true
		if s.replies[agentdesk.KindChat] == nil {
			WithReplySender(agentdesk.KindChat, chatReplies{s})(s)
		}
		if err := s.Registry().Register(h.Collector()); err != nil {
			s.log.Warn("websocket metrics not registered", "err", err)
		}
		s.mounts = append(s.mounts, func(r chi.Router) {
			r.Get("/ws/agent", s.handle(func(w http.ResponseWriter, r *http.Request) error {
				actor, ok := actorOf(r.Context())
				if !ok {
					return agentdesk.Errorf(agentdesk.Unauthenticated, "sign in first")
				}
				return h.ServeAgent(w, r.WithContext(withSession(r)), actor)
			}))
			r.Get("/ws/supervisor", s.handle(func(w http.ResponseWriter, r *http.Request) error {
				actor, ok := actorOf(r.Context())
				if !ok {
					return agentdesk.Errorf(agentdesk.Unauthenticated, "sign in first")
				}
				return h.ServeSupervisor(w, r.WithContext(withSession(r)), actor)
			}))
			r.Get("/ws/customer", s.handle(func(w http.ResponseWriter, r *http.Request) error {
				return h.ServeCustomer(w, r, widgetSecret)
			}))
		})
	}
}

// withSession hands the hub the session cookie that authenticated r (not
// an API token) and its expiry, so the connection is closed when that
// session ends or expires.
func withSession(r *http.Request) context.Context {
	if r.Header.Get("Authorization") != "" {
		return r.Context()
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		expires, _ := r.Context().Value(sessionExpiresKey).(time.Time)
		return hub.WithSession(r.Context(), c.Value, expires)
	}
	return r.Context()
}
