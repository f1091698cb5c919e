package httphost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/gpuaas/gpuaas/core/fault"
)

// errTooLarge is the fault for a body over Config.BodyLimit.
func errTooLarge(limit int64) *fault.Error {
	return &fault.Error{Kind: fault.KindTooLarge, Code: fault.CodePayloadTooLarge,
		Message: fmt.Sprintf("request body exceeds %d bytes", limit)}
}

// readBody reads the (already size-capped) body, turning the cap into 413.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge(s.cfg.BodyLimit)
		}
		return nil, fault.Invalid("body", "the request body could not be read").Wrap(err)
	}
	return data, nil
}

// decode reads a JSON body into dst strictly: unknown fields, wrong types,
// trailing data and malformed JSON are 400 validation_failed naming the
// field. When optional is true an empty body leaves dst untouched.
//
// Strictness is deliberate: a misspelt field silently ignored is a request
// that did something other than its author meant.
func (s *Server) decode(r *http.Request, dst any, optional bool) error {
	data, err := s.readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if optional {
			return nil
		}
		return fault.Invalid("body", "a JSON request body is required")
	}
	// Requiring the JSON media type also means a cross-site HTML form (which
	// cannot send it without a CORS preflight) can never drive these routes.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &fault.Error{Kind: fault.KindInvalid, Code: fault.CodeUnsupportedMedia,
			Message: "Content-Type must be application/json", Field: "Content-Type"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fault.Invalid("body", "unexpected data after the JSON value")
	}
	return nil
}

// decodeError maps encoding/json errors to validation faults that name the
// field without quoting the value (it may be a secret).
func decodeError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return fault.Invalid("body", fmt.Sprintf("malformed JSON at byte %d", syn.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fault.Invalid("body", "malformed JSON: unexpected end of input")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return fault.Invalid("body", "the request body must be a JSON "+jsonKind(typ.Type))
		}
		return fault.Invalid(field, field+" must be a JSON "+jsonKind(typ.Type))
	}
	// encoding/json reports unknown fields only as text: `json: unknown field "x"`.
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		field := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
		return fault.Invalid(field, "unknown field "+field)
	}
	return fault.Invalid("body", "invalid JSON")
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return "value"
}
