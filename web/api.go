package web

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"agentdesk/agentdesk"
)

var errMethod = errors.New("method not allowed")

// doc describes an endpoint for the OpenAPI document.
type doc struct {
	Body     any // request body example type (nil: none)
	Response any // response body type (nil: none)
	Status   int // success status (default 200)
	Query    []string
	// Idempotent marks create endpoints that honour Idempotency-Key.
	Idempotent bool
	// Public endpoints authenticate some other way (signatures, widget tokens).
	Auth string
	// MaxBody is the largest body an Idempotency-Key request may have
	// (default maxBody); BodyField names the field a larger one is about.
	MaxBody   int64
	BodyField string
	// BodyType is the request's media type when it is not JSON.
	BodyType string
	// Gate admits a request before its body is read (before an
	// Idempotency-Key buffers it); release is called when it is done.
	Gate func(w http.ResponseWriter, r *http.Request) (release func(), err error)
}

// endpoint is one documented route.
type endpoint struct {
	Method, Path, Summary string
	Role                  agentdesk.Role
	Doc                   doc
}

// apiRouter declares /api/v1 routes: each with its minimum role ("" for
// public), its handler and its documentation.
type apiRouter struct {
	s         *Server
	r         chi.Router
	endpoints []endpoint
}

// route declares one endpoint.
func (a *apiRouter) route(method, path string, role agentdesk.Role, summary string, h HandlerFunc, d doc) {
	a.endpoints = append(a.endpoints, endpoint{Method: method, Path: path, Summary: summary, Role: role, Doc: d})
	var handler http.Handler = a.s.handle(h)
	if d.Idempotent {
		handler = a.s.idempotent(handler, d)
	}
	if d.Gate != nil {
		handler = a.s.gated(handler, d.Gate)
	}
	if role != "" {
		handler = requireRole(role)(handler)
	}
	a.r.Method(method, path, handler)
}
