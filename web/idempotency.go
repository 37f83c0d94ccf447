package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"mime"
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
		var body []byte
		var err error
		if r.ContentLength > limit {
			// Known to be too large: refused unread.
			err = &http.MaxBytesError{Limit: limit}
		} else {
			body, err = readAllHint(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
		}
		if err != nil {
			err = decodeError(err, limit)
			if e, ok := err.(*agentdesk.Error); ok && d.BodyField != "" {
				e.Field = d.BodyField
			}
			writeError(w, r, s.log, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r = r.WithContext(context.WithValue(r.Context(), rawBodyKey{}, body))
		sum := fingerprint(r, body)
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

type rawBodyKey struct{}

// rawBody is the request's whole body when an Idempotency-Key made it be
// read into memory before the handler (r.Body reads the same bytes), so a
// handler can use it in place instead of copying it; nil otherwise.
func rawBody(r *http.Request) []byte {
	b, _ := r.Context().Value(rawBodyKey{}).([]byte)
	return b
}

// fingerprint identifies a request for its Idempotency-Key: method, path
// and body. A multipart body is taken without its boundary, which every
// client picks anew for each send (Go's mime/multipart and browsers pick a
// random one): each occurrence of "--boundary" counts as a fixed token and
// the Content-Type counts without its boundary parameter, so a retried
// upload is the same request and a different file is not.
func fingerprint(r *http.Request, body []byte) []byte {
	h := sha256.New()
	io.WriteString(h, r.Method+" "+r.URL.Path+"\n") //nolint:errcheck
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		h.Write(body)
		return h.Sum(nil)
	}
	delim := []byte("--" + params["boundary"])
	delete(params, "boundary")
	io.WriteString(h, "multipart "+mime.FormatMediaType(mt, params)+"\n") //nolint:errcheck
	// Hashed piece by piece: no copy of a body that may be 25 MB.
	for {
		i := bytes.Index(body, delim)
		if i < 0 {
			h.Write(body)
			return h.Sum(nil)
		}
		h.Write(body[:i])
		h.Write([]byte("\x00boundary\x00"))
		body = body[i+len(delim):]
	}
}

// readAllHint reads r to its end like io.ReadAll, into one buffer sized
// for the declared length (the Content-Length, when known and at most
// limit) instead of growing by doubling: a 20 MB body costs 20 MB, not
// ~2.5 times that.
func readAllHint(r io.Reader, declared, limit int64) ([]byte, error) {
	hint := int64(64 << 10)
	if declared > 0 && declared <= limit {
		hint = declared
	}
	b := bytes.NewBuffer(make([]byte, 0, hint+bytes.MinRead))
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}
