package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"agentdesk/agentdesk"
)

// maxBody is the default limit of a JSON request body.
const maxBody = 1 << 20

// decode reads one JSON object from the body into dst: unknown fields, wrong
// types, trailing data and bodies over limit bytes are rejected with an error
// that names the problem and the field.
func decode(w http.ResponseWriter, r *http.Request, dst any, limit int64) error {
	if limit <= 0 {
		limit = maxBody
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "Content-Type must be application/json", Err: errBadRequest}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, limit)
	}
	if dec.More() {
		return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "body must hold exactly one JSON object", Err: errBadRequest}
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return decodeError(err, limit)
		}
		return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "unexpected data after the JSON object", Err: errBadRequest}
	}
	return nil
}

func decodeError(err error, limit int64) error {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooBig    *http.MaxBytesError
		domainErr *agentdesk.Error
	)
	switch {
	case errors.As(err, &tooBig):
		return &agentdesk.Error{Kind: agentdesk.TooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", limit)}
	case errors.As(err, &syntax):
		return &agentdesk.Error{Kind: agentdesk.Invalid, Message: fmt.Sprintf("malformed JSON at byte %d", syntax.Offset), Err: errBadRequest}
	case errors.As(err, &typeErr):
		return &agentdesk.Error{Kind: agentdesk.Invalid, Field: typeErr.Field, Message: fmt.Sprintf("must be a %s, not a JSON %s", typeErr.Type, typeErr.Value), Err: errBadRequest}
	case errors.As(err, &domainErr):
		return domainErr
	case errors.Is(err, io.EOF):
		return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "request body is empty", Err: errBadRequest}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "malformed JSON: unexpected end", Err: errBadRequest}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &agentdesk.Error{Kind: agentdesk.Invalid, Field: field, Message: "unknown field " + strconv.Quote(field), Err: errBadRequest}
	}
	return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "malformed JSON: " + err.Error(), Err: errBadRequest}
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v) //nolint:errcheck // the client went away; nothing to do
}

// List is the body of every list endpoint.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func listOf[T any](items []T, next string) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Items: items, NextCursor: next}
}

// page reads ?limit= and ?cursor=.
func page(r *http.Request) (agentdesk.Page, error) {
	p := agentdesk.Page{Cursor: r.URL.Query().Get("cursor")}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > agentdesk.MaxPageSize {
			return p, agentdesk.FieldError("limit", "must be a number from 1 to %d", agentdesk.MaxPageSize)
		}
		p.Limit = n
	}
	return p.Normalize(), nil
}

// pathID reads a positive integer URL parameter.
func pathID(r *http.Request, name string) (int64, error) {
	v := chiURLParam(r, name)
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, agentdesk.Errorf(agentdesk.NotFound, "no %s %q", name, v)
	}
	return id, nil
}

// getByID is a whole "one X" endpoint: it answers 200 with what get reads for
// the caller's account and the path's {id}.
func getByID[T any](w http.ResponseWriter, r *http.Request, get func(ctx context.Context, accountID, id int64) (T, error)) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	v, err := get(r.Context(), actor.AccountID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// queryID reads an optional positive integer query parameter.
func queryID(r *http.Request, name string) (*int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return nil, agentdesk.FieldError(name, "must be a positive integer")
	}
	return &id, nil
}
