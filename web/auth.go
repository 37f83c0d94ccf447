package web

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web/hub"
)

// SessionCookie is the name of the cookie that carries a signed-in session.
const SessionCookie = "agentdesk_session"

// TokenPrefix starts every API token, so leaked tokens are easy to scan for.
const TokenPrefix = "adk_"

type ctxKey int

const (
	actorKey ctxKey = iota
	scopesKey
	sessionExpiresKey // when the session that authenticated the request expires
)

// actorOf returns who is calling; ok is false for anonymous requests.
func actorOf(ctx context.Context) (agentdesk.Actor, bool) {
	a, ok := ctx.Value(actorKey).(agentdesk.Actor)
	return a, ok
}

// ActorOf is actorOf for the other parts mounted on the server (hub).
func ActorOf(ctx context.Context) (agentdesk.Actor, bool) { return actorOf(ctx) }

// NewSecret returns a random URL-safe secret with the given prefix.
func NewSecret(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// authenticate identifies the caller by bearer token or session cookie. It
// rejects a presented but invalid credential; a request with none goes on
// anonymous, and requireRole decides.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		// Widget tokens (wt1.…) are the chat widget endpoints' own business.
		if h := r.Header.Get("Authorization"); h != "" && !strings.HasPrefix(h, "Bearer wt1.") {
			secret, ok := strings.CutPrefix(h, "Bearer ")
			if !ok || !strings.HasPrefix(secret, TokenPrefix) {
				writeError(w, r, s.log, agentdesk.Errorf(agentdesk.Unauthenticated, "Authorization must be \"Bearer adk_…\""))
				return
			}
			actor, scopes, err := s.store.TokenActor(ctx, secret)
			if err != nil {
				writeError(w, r, s.log, err)
				return
			}
			ctx = context.WithValue(context.WithValue(ctx, actorKey, actor), scopesKey, scopes)
		} else if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			actor, expires, err := s.store.Session(ctx, c.Value, time.Now())
			if err == nil {
				ctx = context.WithValue(context.WithValue(ctx, actorKey, actor), sessionExpiresKey, expires)
			} else if !agentdesk.IsKind(err, agentdesk.Unauthenticated) {
				writeError(w, r, s.log, err)
				return
			}
			// An expired cookie is as good as none: public pages still work.
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requireRole lets through callers with at least role min. API tokens with
// only the "read" scope may not change anything.
func requireRole(min agentdesk.Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			actor, ok := actorOf(r.Context())
			if !ok {
				writeAuthError(w, agentdesk.Errorf(agentdesk.Unauthenticated, "sign in or send an API token"))
				return
			}
			if !actor.Role.AtLeast(min) {
				writeAuthError(w, agentdesk.Errorf(agentdesk.Forbidden, "this needs the %s role", min))
				return
			}
			if scopes, isToken := r.Context().Value(scopesKey).([]string); isToken && !safeMethod(r.Method) && !slices.Contains(scopes, "write") {
				writeAuthError(w, agentdesk.Errorf(agentdesk.Forbidden, "this API token may only read"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func writeAuthError(w http.ResponseWriter, e *agentdesk.Error) {
	if e.Kind == agentdesk.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentdesk"`)
	}
	writeJSON(w, statusOf(e.Kind), errorBody{errorDetail{Kind: e.Kind, Message: e.Message}})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// clientIP is the remote address without port. Behind a proxy, chi's RealIP
// middleware is not used on purpose: X-Forwarded-For is client-controlled
// unless a trusted proxy sets it, and rate limits must not be bypassable.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// login checks a password and starts a session (cookie).
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decode(w, r, &req, 4<<10); err != nil {
		return err
	}
	email := strings.ToLower(strings.TrimSpace(req.Email))
	if email == "" {
		return agentdesk.FieldError("email", "is required")
	}
	if req.Password == "" {
		return agentdesk.FieldError("password", "is required")
	}
	if !s.logins.Allow("ip:"+clientIP(r)) || !s.logins.Allow("email:"+email) {
		w.Header().Set("Retry-After", "60")
		return agentdesk.Errorf(agentdesk.RateLimited, "too many login attempts; wait a minute")
	}
	creds, err := s.store.CredentialsByEmail(r.Context(), email)
	if err != nil && !agentdesk.IsKind(err, agentdesk.NotFound) {
		return err
	}
	if creds == nil {
		CheckPassword(dummyHash, req.Password)
		return agentdesk.Errorf(agentdesk.Unauthenticated, "wrong email or password")
	}
	if !CheckPassword(creds.PasswordHash, req.Password) || !creds.Active {
		return agentdesk.Errorf(agentdesk.Unauthenticated, "wrong email or password")
	}
	token := NewSecret("")
	expires := time.Now().Add(s.cfg.SessionTTL)
	if err := s.store.CreateSession(r.Context(), creds.AccountID, creds.AgentID, token, expires); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/", Expires: expires,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
	agent, err := s.store.Agent(r.Context(), creds.AccountID, creds.AgentID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, agent)
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(SessionCookie); err == nil {
		ctx := r.Context()
		err := postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
			if err := postgres.DeleteSessionTx(ctx, tx, c.Value); err != nil {
				return err
			}
			// The websockets this session opened are closed.
			if actor, ok := actorOf(ctx); ok && actor.IsAgent() {
				return publishAccessChanged(ctx, tx, actor.AccountID, actor.AgentID)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// me returns the signed-in agent (or a description of the API token).
func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	actor, _ := actorOf(r.Context())
	if !actor.IsAgent() {
		writeJSON(w, http.StatusOK, map[string]any{"token_id": actor.TokenID, "role": actor.Role})
		return nil
	}
	a, err := s.store.Agent(r.Context(), actor.AccountID, actor.AgentID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

type tokenRequest struct {
	Name   string         `json:"name"`
	Role   agentdesk.Role `json:"role"`
	Scopes []string       `json:"scopes"`
}

// tokenCreated is the only answer that ever shows a token's secret.
type tokenCreated struct {
	postgres.APIToken
	Token string `json:"token"`
}

// ValidateToken checks a token request; shared by the API and the CLI.
func (t *tokenRequest) validate() error {
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" || len(t.Name) > 100 {
		return agentdesk.FieldError("name", "must be 1-100 characters")
	}
	if t.Role == "" {
		t.Role = agentdesk.RoleAgent
	}
	if !t.Role.Valid() {
		return agentdesk.FieldError("role", "must be one of agent, supervisor, admin")
	}
	if len(t.Scopes) == 0 {
		t.Scopes = []string{"read", "write"}
	}
	for _, sc := range t.Scopes {
		if sc != "read" && sc != "write" {
			return agentdesk.FieldError("scopes", "scopes are read and write, not %q", sc)
		}
	}
	return nil
}

// CreateAPIToken validates and stores a new token and returns its secret,
// for the API and for `agentdesk token create`.
func CreateAPIToken(ctx context.Context, store *postgres.Store, actor agentdesk.Actor, name string, role agentdesk.Role, scopes []string) (*postgres.APIToken, string, error) {
	req := tokenRequest{Name: name, Role: role, Scopes: scopes}
	if err := req.validate(); err != nil {
		return nil, "", err
	}
	if !actor.Role.AtLeast(req.Role) {
		return nil, "", agentdesk.Errorf(agentdesk.Forbidden, "cannot create a token with more rights than your own")
	}
	t := &postgres.APIToken{Name: req.Name, Role: req.Role, Scopes: req.Scopes}
	secret := NewSecret(TokenPrefix)
	if err := store.CreateAPIToken(ctx, actor.AccountID, t, secret); err != nil {
		return nil, "", err
	}
	if err := postgres.Audit(ctx, store.DB(), actor, "token.create", "api_token:"+itoa(t.ID), map[string]any{"name": t.Name, "role": t.Role}); err != nil {
		return nil, "", err
	}
	return t, secret, nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req tokenRequest
	if err := decode(w, r, &req, 0); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	t, secret, err := CreateAPIToken(r.Context(), s.store, actor, req.Name, req.Role, req.Scopes)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tokenCreated{APIToken: *t, Token: secret})
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	actor, _ := actorOf(r.Context())
	ts, err := s.store.APITokens(r.Context(), actor.AccountID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(ts, ""))
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	ctx := r.Context()
	err = postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
		if err := postgres.RevokeAPITokenTx(ctx, tx, actor.AccountID, id); err != nil {
			return err
		}
		if err := postgres.Audit(ctx, tx, actor, "token.revoke", "api_token:"+itoa(id), nil); err != nil {
			return err
		}
		// The websockets the token opened are closed.
		return hub.PublishTokenRevoked(ctx, tx, actor.AccountID, id)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
