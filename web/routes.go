package web

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// routes builds the router. Every /api/v1 endpoint is declared through api,
// which wires the role check and records it in the OpenAPI document.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.recoverer, s.metrics.middleware, securityHeaders)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", s.metrics.handler())

	r.Group(func(r chi.Router) {
		r.Use(s.cop.Handler, s.authenticate)
		for _, mount := range s.public {
			mount(r)
		}
		r.Route("/api/v1", func(r chi.Router) {
			r.Use(middleware.Timeout(30 * time.Second))
			r.NotFound(s.handle(func(w http.ResponseWriter, r *http.Request) error {
				return agentdesk.Errorf(agentdesk.NotFound, "no API endpoint %s %s", r.Method, r.URL.Path)
			}))
			r.MethodNotAllowed(s.handle(func(w http.ResponseWriter, r *http.Request) error {
				return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "method " + r.Method + " not allowed here", Err: errMethod}
			}))
			a := &apiRouter{s: s, r: r}
			s.api = a
			a.route("GET", "/openapi.json", "", "This document", s.openAPI, doc{})
			s.mountAuth(a)
			for _, mount := range apiMounts {
				mount(s, a)
			}
		})
		for _, mount := range s.mounts {
			mount(r)
		}
	})
	return r
}

// apiMounts lists the parts of the REST API. Each resource file adds itself
// with an init() so the routes of a resource stay next to its handlers.
var apiMounts []func(s *Server, a *apiRouter)

func registerAPI(mount func(s *Server, a *apiRouter)) { apiMounts = append(apiMounts, mount) }

func (s *Server) mountAuth(a *apiRouter) {
	a.route("POST", "/auth/login", "", "Sign in with email and password; sets the session cookie", s.login, doc{Body: loginRequest{}, Response: agentdesk.Agent{}})
	a.route("POST", "/auth/logout", "", "Sign out: ends the session", s.logout, doc{})
	a.route("GET", "/me", agentdesk.RoleAgent, "Who is calling", s.me, doc{Response: agentdesk.Agent{}})
	a.route("GET", "/tokens", agentdesk.RoleAdmin, "List API tokens", s.listTokens, doc{Response: List[apiTokenDoc]{}})
	a.route("POST", "/tokens", agentdesk.RoleAdmin, "Create an API token; the secret is shown once", s.createToken, doc{Body: tokenRequest{}, Response: tokenCreated{}, Status: 201})
	a.route("DELETE", "/tokens/{id}", agentdesk.RoleAdmin, "Revoke an API token", s.revokeToken, doc{Status: 204})
	a.route("GET", "/audit", agentdesk.RoleAdmin, "The audit log of admin actions and merges, newest first", s.auditLog, doc{Response: List[auditDoc]{}})
}

func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	items, next, err := s.store.AuditLog(r.Context(), actor.AccountID, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(items, next))
	return nil
}

type (
	apiTokenDoc = postgres.APIToken
	auditDoc    = postgres.AuditEntry
)
