package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"agentdesk/agentdesk/email"
	"agentdesk/agentdesk/postgres"
	"agentdesk/routing"
)

// Config is what the server needs to know about its deployment.
type Config struct {
	Addr string // listen address, e.g. "localhost:8080"
	// PublicURL is how browsers reach us (e.g. "https://desk.example.com"); it
	// decides whether cookies are Secure and which Origin is same-site.
	PublicURL string
	// SecureCookies marks the session cookie Secure (on behind TLS).
	SecureCookies bool
	// TrustedOrigins may make cookie-authenticated writes besides our own
	// origin (e.g. a separate UI dev server).
	TrustedOrigins []string
	SessionTTL     time.Duration
	// LoginRate is the number of login attempts allowed per minute per client
	// address and per email.
	LoginRate int
	// ShutdownTimeout bounds how long Stop waits for in-flight requests.
	ShutdownTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Addr == "" {
		c.Addr = "localhost:8080"
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.LoginRate == 0 {
		c.LoginRate = 10
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 20 * time.Second
	}
}

// Server serves the API, the websockets and the UI.
type Server struct {
	cfg     Config
	store   *postgres.Store
	log     *slog.Logger
	metrics *metrics
	logins  *keyedLimiter
	cop     *http.CrossOriginProtection
	mounts  []func(r chi.Router) // routes added by options (routing, hub, email, ui)
	public  []func(r chi.Router) // unauthenticated routes added by options
	ready   []func(ctx context.Context) error
	inbound inboundConfig // channel adapters' settings (inbound.go)
	replies replySenders  // outbound reply senders by message kind (messages.go)
	chat    chatConfig    // chat widgets' public side and live events (widget_chat.go, live.go)
	uploads uploadConfig  // attachments' limits (attachments.go)
	api     *apiRouter
	handler http.Handler
	srv     *http.Server
	done    chan error

	routing    *routing.Engine // set by WithRouting (routing_api.go)
	emailAdmin *email.Admin    // set by WithEmailAdmin (email_admin.go)
}

// Option adds an optional part (routing engine, websocket hub, email, UI) to
// the server.
type Option func(*Server)

// New builds the server. It does not listen until Start.
func New(cfg Config, store *postgres.Store, log *slog.Logger, opts ...Option) *Server {
	cfg.defaults()
	s := &Server{
		cfg:     cfg,
		store:   store,
		log:     log,
		metrics: newMetrics(store.DB()),
		logins:  newKeyedLimiter(cfg.LoginRate, time.Minute),
		cop:     http.NewCrossOriginProtection(),
	}
	for _, o := range cfg.TrustedOrigins {
		if err := s.cop.AddTrustedOrigin(o); err != nil {
			log.Warn("ignoring trusted origin", "origin", o, "err", err)
		}
	}
	// Shop, form and social webhooks are called by other servers, which
	// authenticate with signatures or are public by design.
	s.cop.AddInsecureBypassPattern("/api/v1/inbound/")
	for _, opt := range opts {
		opt(s)
	}
	s.handler = s.routes()
	return s
}

// Handler returns the complete HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on cfg.Addr and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln in the background.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.done = make(chan error, 1)
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	s.log.Info("listening", "addr", ln.Addr().String())
	return nil
}

// Stop stops accepting connections and waits for in-flight requests to
// finish (bounded by cfg.ShutdownTimeout or ctx).
func (s *Server) Stop(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serveErr := <-s.done; err == nil {
		err = serveErr
	}
	return err
}

// HandlerFunc is a handler that returns its error instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a HandlerFunc: its error is written as the one error body.
func (s *Server) handle(h HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	}
}

func chiURLParam(r *http.Request, name string) string { return chi.URLParam(r, name) }

// securityHeaders sets the headers every response carries. The CSP allows no
// inline script or style: the UI is built to need none.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged internal error.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic", "request_id", middleware.GetReqID(r.Context()), "path", r.URL.Path, "panic", v)
				writeError(w, r, s.log, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
