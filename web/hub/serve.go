package hub

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"agentdesk/agentdesk"
)

// Principal is who is on the other end of a connection: a signed-in agent,
// supervisor or API token (Actor), or a chat visitor (Visitor).
type Principal struct {
	Actor   agentdesk.Actor
	Visitor *WidgetToken
	IP      string
	// Session is the session token that authenticated an agent ("" for API
	// tokens), and Expires when it expires; the connection is closed when
	// it ends or expires (access.go).
	Session string
	Expires time.Time
}

// AccountID is the account every stream of this connection belongs to.
func (p Principal) AccountID() int64 {
	if p.Visitor != nil {
		return p.Visitor.AccountID
	}
	return p.Actor.AccountID
}

// IsCustomer reports whether the connection is a chat visitor's.
func (p Principal) IsCustomer() bool { return p.Visitor != nil }

// defaultStreams are followed when a client resumes without naming streams.
func (p Principal) defaultStreams() []string {
	switch {
	case p.Visitor != nil:
		return []string{VisitorStream(p.Visitor.VisitorID)}
	case p.Actor.Role.AtLeast(agentdesk.RoleSupervisor) && !p.Actor.IsAgent():
		return []string{SupervisorStream(p.Actor.AccountID)}
	case p.Actor.Role.AtLeast(agentdesk.RoleSupervisor):
		return []string{AgentStream(p.Actor.AgentID), SupervisorStream(p.Actor.AccountID)}
	}
	// An agent's own tickets only. The lists of new tickets ("all open" on
	// account:<id>, the team queue on team:<id>) are followed by the desk
	// while such a list is on screen: every new ticket is a frame to every
	// follower, and most agents look at their own tickets.
	return []string{AgentStream(p.Actor.AgentID)}
}

// ServeAgent upgrades r to the agent desk's websocket. actor comes from the
// web layer's session or token authentication. Errors are returned before
// the upgrade, for the caller to write as HTTP responses.
func (h *Hub) ServeAgent(w http.ResponseWriter, r *http.Request, actor agentdesk.Actor) error {
	if !actor.IsAgent() {
		return agentdesk.Errorf(agentdesk.Forbidden, "the agent desk needs a signed-in agent")
	}
	return h.serveActor(w, r, actor)
}

// ServeSupervisor upgrades r to the supervisors' websocket (queues and agents live).
func (h *Hub) ServeSupervisor(w http.ResponseWriter, r *http.Request, actor agentdesk.Actor) error {
	if !actor.Role.AtLeast(agentdesk.RoleSupervisor) {
		return agentdesk.Errorf(agentdesk.Forbidden, "supervisors only")
	}
	return h.serveActor(w, r, actor)
}

func (h *Hub) serveActor(w http.ResponseWriter, r *http.Request, actor agentdesk.Actor) error {
	if actor.AccountID <= 0 {
		return agentdesk.Errorf(agentdesk.Unauthenticated, "sign in first")
	}
	if origin := r.Header.Get("Origin"); origin != "" && !sameHost(origin, r.Host) && !originAllowed(origin, h.cfg.AllowedOrigins) {
		return agentdesk.Errorf(agentdesk.Forbidden, "origin %s is not allowed", origin)
	}
	session, expires := sessionOf(r.Context())
	return h.upgrade(w, r, Principal{Actor: actor, IP: clientIP(r), Session: session, Expires: expires})
}

// ServeCustomer upgrades r to a chat visitor's websocket. The visitor is
// identified by the signed widget token in the "token" query parameter
// (browsers cannot set headers on websockets), and the page's Origin must be
// one the widget allows.
func (h *Hub) ServeCustomer(w http.ResponseWriter, r *http.Request, secret []byte) error {
	tok, err := ParseWidgetToken(secret, r.URL.Query().Get("token"), time.Now())
	if err != nil {
		return err
	}
	if h.actions == nil {
		return agentdesk.Errorf(agentdesk.Unavailable, "chat is not available")
	}
	origins, err := h.actions.WidgetOrigins(r.Context(), tok.AccountID, tok.WidgetID)
	if err != nil {
		return err
	}
	if origin := r.Header.Get("Origin"); origin != "" && !originAllowed(origin, origins) {
		return agentdesk.Errorf(agentdesk.Forbidden, "this chat widget is not allowed on %s", origin)
	}
	return h.upgrade(w, r, Principal{Visitor: &tok, IP: clientIP(r)})
}

func (h *Hub) upgrade(w http.ResponseWriter, r *http.Request, p Principal) error {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return agentdesk.Errorf(agentdesk.Unavailable, "server shutting down")
	}
	ws, err := h.upgrader().Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has answered the request already.
		h.log.Debug("hub: upgrade", append(logAttrs(p), "err", err)...)
		return nil
	}
	return h.start(ws, p)
}

func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, host)
}

func originAllowed(origin string, allowed []string) bool {
	origin = strings.TrimSuffix(strings.ToLower(origin), "/")
	return slices.ContainsFunc(allowed, func(a string) bool {
		return a == "*" || strings.TrimSuffix(strings.ToLower(a), "/") == origin
	})
}

// clientIP is the peer address. A proxy's X-Forwarded-For is the web
// layer's to trust or not (it rewrites RemoteAddr when it does).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
