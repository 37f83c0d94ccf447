package web

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"

	"agentdesk/agentdesk"
)

// statusOf maps an error kind to its HTTP status.
func statusOf(k agentdesk.Kind) int {
	switch k {
	case agentdesk.Invalid:
		return http.StatusUnprocessableEntity
	case agentdesk.NotFound:
		return http.StatusNotFound
	case agentdesk.Conflict:
		return http.StatusConflict
	case agentdesk.Forbidden:
		return http.StatusForbidden
	case agentdesk.Unauthenticated:
		return http.StatusUnauthorized
	case agentdesk.TooLarge:
		return http.StatusRequestEntityTooLarge
	case agentdesk.RateLimited:
		return http.StatusTooManyRequests
	case agentdesk.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errBadRequest marks errors of the request's form (malformed JSON, unknown
// fields, wrong types): 400, where a well-formed but invalid value is 422.
var errBadRequest = errors.New("bad request")

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Kind    agentdesk.Kind `json:"kind"`
	Message string         `json:"message"`
	Field   string         `json:"field,omitempty"`
}

// writeError writes err as the one error body. Internal errors are logged
// with the request id and shown without detail.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *agentdesk.Error
	if !errors.As(err, &e) || e.Kind == agentdesk.Internal {
		id := middleware.GetReqID(r.Context())
		log.Error("request failed", "request_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{errorDetail{Kind: agentdesk.Internal, Message: "internal error (id " + id + ")"}})
		return
	}
	status := statusOf(e.Kind)
	if errors.Is(e, errBadRequest) {
		status = http.StatusBadRequest
	}
	if e.Kind == agentdesk.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentdesk"`)
	}
	writeJSON(w, status, errorBody{errorDetail{Kind: e.Kind, Message: e.Message, Field: e.Field}})
}
