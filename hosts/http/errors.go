package httphost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
)

// kindStatus is the one place fault kinds become HTTP statuses. A test pins
// it; change it only together with doc/api/README.md.
var kindStatus = map[fault.Kind]int{
	fault.KindInvalid:         http.StatusBadRequest,
	fault.KindUnauthenticated: http.StatusUnauthorized,
	fault.KindPaymentRequired: http.StatusPaymentRequired,
	fault.KindForbidden:       http.StatusForbidden,
	fault.KindNotFound:        http.StatusNotFound,
	fault.KindConflict:        http.StatusConflict,
	fault.KindTooLarge:        http.StatusRequestEntityTooLarge,
	fault.KindUnprocessable:   http.StatusUnprocessableEntity,
	fault.KindRateLimited:     http.StatusTooManyRequests,
	fault.KindInternal:        http.StatusInternalServerError,
	fault.KindUnavailable:     http.StatusServiceUnavailable,
}

// StatusOf returns the HTTP status for a fault kind (500 for a kind the
// table does not know, so a new kind fails safe).
func StatusOf(k fault.Kind) int {
	if s, ok := kindStatus[k]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeClientClosedRequest goes with StatusClientClosedRequest. Nobody reads
// the body; the code is what the access log's error_code shows.
const CodeClientClosedRequest fault.Code = "client_closed_request"

// genericInternal is all a caller learns about an unexpected failure; the
// detail goes to the log under the same correlation id.
const genericInternal = "internal error; quote the correlation id when reporting it"

// StatusClientClosedRequest is what the access log, the metrics and the
// idempotency store record for a request whose client went away before the
// answer (nginx's 499): the work stopped because the caller cancelled it,
// which is neither the server's fault (no 5xx, no error log, no alert) nor a
// result a retry with the same Idempotency-Key should be given.
const StatusClientClosedRequest = 499

// fail writes err as the error body and logs it when the fault is the
// server's (5xx): once, with the correlation id, never with request data.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		s.writeFault(w, r, StatusClientClosedRequest, &fault.Error{Kind: fault.KindUnavailable,
			Code: CodeClientClosedRequest, Message: "the client closed the request before the answer"})
		return
	}
	fe := fault.From(err)
	status := StatusOf(fe.Kind)
	if status >= 500 {
		st := stateOf(r.Context())
		attrs := []slog.Attr{slog.String("correlation_id", st.correlationID), slog.String("route", st.routeName()),
			slog.String("error_code", string(fe.Code)), slog.String("error", redact.Text(err.Error()))}
		if len(fe.Details) > 0 {
			attrs = append(attrs, slog.Any("details", redact.Redact(fe.Details)))
		}
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed", attrs...)
	}
	s.writeFault(w, r, status, fe)
}

// writeFault writes the error body without logging. Internal faults carry
// a generic message whatever their Message says.
func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, status int, fe *fault.Error) {
	st := stateOf(r.Context())
	body := api.ErrorBody{Code: string(fe.Code), Message: fe.Message, CorrelationId: st.correlationID}
	if fe.Kind == fault.KindInternal || body.Code == "" {
		body.Code = string(fault.CodeInternal)
		body.Message = genericInternal
	} else {
		if fe.Field != "" {
			body.Field = &fe.Field
		}
		if len(fe.Details) > 0 {
			d := map[string]any(fe.Details)
			body.Details = &d
		}
	}
	st.errCode = body.Code
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, api.ErrorResponse{Error: body})
}

// writeJSON encodes v with the status. Encoding errors after the header is
// sent cannot be reported to the client and would only repeat in the log.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// paramError maps the generated router's parameter-binding errors to 400
// validation_failed naming the parameter. The offending value is not echoed.
func (s *Server) paramError(w http.ResponseWriter, r *http.Request, err error) {
	name := ""
	var (
		e1 *api.InvalidParamFormatError
		e2 *api.RequiredParamError
		e3 *api.RequiredHeaderError
		e4 *api.TooManyValuesForParamError
		e5 *api.UnescapedCookieParamError
		e6 *api.UnmarshalingParamError
	)
	switch {
	case errors.As(err, &e1):
		name = e1.ParamName
	case errors.As(err, &e2):
		s.fail(w, r, fault.Invalid(e2.ParamName, e2.ParamName+" is required"))
		return
	case errors.As(err, &e3):
		s.fail(w, r, fault.Invalid(e3.ParamName, e3.ParamName+" is required"))
		return
	case errors.As(err, &e4):
		s.fail(w, r, fault.Invalid(e4.ParamName, e4.ParamName+" must be given once"))
		return
	case errors.As(err, &e5):
		name = e5.ParamName
	case errors.As(err, &e6):
		name = e6.ParamName
	}
	if name == "" {
		s.fail(w, r, fault.Invalid("", "invalid request parameters"))
		return
	}
	s.fail(w, r, fault.Invalid(name, "invalid value for "+name))
}

// notFound answers an unknown route with the standard error body.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, &fault.Error{Kind: fault.KindNotFound, Code: fault.CodeNotFound, Message: "no such route"})
}

// methodNotAllowed answers a known path with a method it does not serve.
// 405 has no fault kind (no use case ever returns it), so it is the one
// status written outside kindStatus.
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if s.find(m, r) != nil {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
	}
	s.writeFault(w, r, http.StatusMethodNotAllowed,
		&fault.Error{Kind: fault.KindInvalid, Code: fault.CodeMethodNotAllowed, Message: "method not allowed on this route"})
}

// codeHeadersTooLarge answers request headers over Config.HeaderLimit.
const codeHeadersTooLarge fault.Code = "headers_too_large"

// headerLimit answers a request whose headers exceed Config.HeaderLimit with
// 431 in the platform's error body. The listener's own cap
// (http.Server.MaxHeaderBytes, set well above) would answer in text/plain
// before any handler runs. Like 405, 431 has no fault kind: no use case
// gives it.
func (s *Server) headerLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len(r.Host)
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4 // ": " and CRLF
			}
		}
		if n > s.cfg.HeaderLimit {
			s.writeFault(w, r, http.StatusRequestHeaderFieldsTooLarge, &fault.Error{Kind: fault.KindTooLarge,
				Code: codeHeadersTooLarge, Message: fmt.Sprintf("request headers exceed %d bytes", s.cfg.HeaderLimit)})
			return
		}
		next.ServeHTTP(w, r)
	})
}
