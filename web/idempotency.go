package web

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5/middleware"

	"agentdesk/agentdesk"
)

// IdempotencyHeader names the header a client sets to make a create safe to
// retry: the same key with the same request replays the first answer; the
// same key with a different request is refused.
const IdempotencyHeader = "Idempotency-Key"

// idempotent wraps a create handler. The key is claimed in the database
// before the handler runs, so two concurrent retries cannot both create.
// The body is read up to d.MaxBody (default maxBody); a larger one is 413
// on d.BodyField.
func (s *Server) idempotent(next http.Handler, d doc) http.Handler {
	limit := d.MaxBody
	if limit <= 0 {
		limit = maxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(IdempotencyHeader)
		if key == "" {
			next.ServeHTTP(w, r)
			return
		}
		if len(key) > 200 {
			writeError(w, r, s.log, agentdesk.FieldError(IdempotencyHeader, "must be at most 200 characters"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			err = decodeError(err, limit)
			if e, ok := err.(*agentdesk.Error); ok && d.BodyField != "" {
				e.Field = d.BodyField
			}
			writeError(w, r, s.log, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.Path+"\n"), body...))
		actor, _ := actorOf(r.Context())
		principal := "agent:" + itoa(actor.AgentID)
		if actor.TokenID != 0 {
			principal = "token:" + itoa(actor.TokenID)
		}
		claim, err := s.store.ClaimIdempotencyKey(r.Context(), actor.AccountID, principal, key, sum[:])
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if claim.Replay {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(claim.Status)
			w.Write(claim.Response) //nolint:errcheck
			return
		}
		rec := &bytes.Buffer{}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		ww.Tee(rec)
		next.ServeHTTP(ww, r)
		status := ww.Status()
		if status >= 500 || status == http.StatusTooManyRequests {
			// Not an answer worth replaying: let the client retry for real.
			s.store.ReleaseIdempotencyKey(r.Context(), actor.AccountID, principal, key) //nolint:errcheck
			return
		}
		if err := s.store.CompleteIdempotencyKey(r.Context(), actor.AccountID, principal, key, status, rec.Bytes()); err != nil {
			s.log.Error("store idempotent response", "request_id", middleware.GetReqID(r.Context()), "err", err, "status", strconv.Itoa(status))
		}
	})
}
