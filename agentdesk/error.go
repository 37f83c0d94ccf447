package agentdesk

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it. Only package web
// maps kinds to HTTP status codes.
type Kind string

const (
	Invalid         Kind = "invalid"         // the input is wrong; Field names what
	NotFound        Kind = "not_found"       // no such thing (or not visible to the caller)
	Conflict        Kind = "conflict"        // duplicate or state does not allow it
	Forbidden       Kind = "forbidden"       // authenticated, but not allowed
	Unauthenticated Kind = "unauthenticated" // who are you?
	TooLarge        Kind = "too_large"       // input over a size limit
	RateLimited     Kind = "rate_limited"    // slow down
	Unavailable     Kind = "unavailable"     // try again later
	Internal        Kind = "internal"        // our fault; details only in the log
)

// Error is the one error type of the domain. Message is safe to show to the
// caller; Err (optional) carries the cause for logs and errors.Is.
type Error struct {
	Kind    Kind
	Message string
	Field   string
	Err     error
}

func (e *Error) Error() string {
	s := string(e.Kind)
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error of kind k with a formatted, caller-safe message.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// FieldError reports that field is invalid.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorKind returns the kind of err, Internal for errors that are not ours, and
// "" for nil.
func ErrorKind(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// IsKind reports whether err is an *Error of kind k.
func IsKind(err error, k Kind) bool { return err != nil && ErrorKind(err) == k }
