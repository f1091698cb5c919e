package fault

import (
	"errors"
	"fmt"
)

// Kind classifies an error for transport mapping. The set is small and fixed.
type Kind uint8

const (
	KindInternal        Kind = iota // anything unexpected; detail is logged, never shown
	KindInvalid                     // the request is malformed or fails validation
	KindUnauthenticated             // no, expired or forged credentials
	KindForbidden                   // authenticated but not allowed
	KindNotFound                    // does not exist, or the caller may not know it exists
	KindConflict                    // state conflict: duplicate, in flight, invalid transition
	KindRateLimited                 // too many requests or a cap is reached
	KindPaymentRequired             // balance is not sufficient
	KindUnprocessable               // well-formed but semantically refused
	KindTooLarge                    // request body over the limit
	KindUnavailable                 // a dependency is down; retry later
)

var kindNames = [...]string{"internal", "invalid", "unauthenticated", "forbidden", "not_found",
	"conflict", "rate_limited", "payment_required", "unprocessable", "too_large", "unavailable"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Code is a stable machine-readable error code; clients switch on it.
type Code string

// The stable codes. Adding one is fine; renaming one breaks clients.
const (
	CodeInternal             Code = "internal_error"
	CodeValidationFailed     Code = "validation_failed"
	CodeTokenMissing         Code = "token_missing"
	CodeTokenExpired         Code = "token_expired"
	CodeTokenInvalid         Code = "token_invalid"
	CodeForbidden            Code = "forbidden"
	CodeNotFound             Code = "not_found"
	CodeConflict             Code = "conflict"
	CodeRateLimited          Code = "rate_limited"
	CodeIdempotencyKeyReused Code = "idempotency_key_reused"
	CodeIdempotencyInFlight  Code = "idempotency_request_in_flight"
	// CodeIdempotencyResponseLost: the request that holds the key committed
	// its changes but failed before its response was stored.
	CodeIdempotencyResponseLost Code = "idempotency_response_lost"
	CodePayloadTooLarge         Code = "payload_too_large"
	CodeUnavailable             Code = "service_unavailable"
	CodeFeatureDisabled         Code = "feature_disabled"
	CodeInsufficientBalance     Code = "insufficient_balance"
	CodeProjectRequired         Code = "project_required"
	CodeUnsupportedMedia        Code = "unsupported_media_type"
	CodeMethodNotAllowed        Code = "method_not_allowed"
)

// Error is the platform error. Message is safe to show to the caller; Cause
// is for logs only and never leaves the process.
type Error struct {
	Kind    Kind
	Code    Code
	Message string
	// Field names the offending input field for validation errors.
	Field   string
	Details map[string]any
	Cause   error
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Message
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

// Is lets errors.Is match on kind and code: errors.Is(err, fault.NotFound("", "")).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Kind == e.Kind && (t.Code == "" || t.Code == e.Code)
}

// New builds an error of a kind with a code and message.
func New(k Kind, c Code, msg string) *Error { return &Error{Kind: k, Code: c, Message: msg} }

// Wrap attaches a cause (logged, never shown).
func (e *Error) Wrap(cause error) *Error { c := *e; c.Cause = cause; return &c }

// With adds a detail shown to the caller.
func (e *Error) With(key string, v any) *Error {
	c := *e
	c.Details = make(map[string]any, len(e.Details)+1)
	for k, v := range e.Details {
		c.Details[k] = v
	}
	c.Details[key] = v
	return &c
}

// Invalid is a validation failure naming the field.
func Invalid(field, msg string) *Error {
	return &Error{Kind: KindInvalid, Code: CodeValidationFailed, Message: msg, Field: field}
}

// NotFound says a resource does not exist (or is not the caller's to see).
func NotFound(resource, id string) *Error {
	msg := "not found"
	if resource != "" {
		msg = resource + " not found"
	}
	e := &Error{Kind: KindNotFound, Code: CodeNotFound, Message: msg}
	if id != "" {
		e.Details = map[string]any{"id": id}
	}
	return e
}

// Conflict reports a state conflict.
func Conflict(code Code, msg string) *Error {
	if code == "" {
		code = CodeConflict
	}
	return &Error{Kind: KindConflict, Code: code, Message: msg}
}

// Forbidden reports an authenticated caller lacking permission.
func Forbidden(msg string) *Error {
	return &Error{Kind: KindForbidden, Code: CodeForbidden, Message: msg}
}

// Unauthenticated reports missing or bad credentials with a distinct code.
func Unauthenticated(code Code, msg string) *Error {
	return &Error{Kind: KindUnauthenticated, Code: code, Message: msg}
}

// Unavailable reports a dependency outage.
func Unavailable(msg string, cause error) *Error {
	return &Error{Kind: KindUnavailable, Code: CodeUnavailable, Message: msg, Cause: cause}
}

// Internal wraps an unexpected error. The message shown is generic.
func Internal(cause error) *Error {
	return &Error{Kind: KindInternal, Code: CodeInternal, Message: "internal error", Cause: cause}
}

// From returns the *Error in err's chain, or an Internal wrapping err.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err)
}

// KindOf returns the kind of err (Internal for foreign errors).
func KindOf(err error) Kind { return From(err).Kind }

// IsKind reports whether err is a platform error of kind k.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}
