package httphost

import (
	"bytes"
	"io"
	"net/http"
	"net/url"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/go-chi/chi/v5"
)

// ContractChecked is the host's handler with every response it writes
// validated against the contract (status declared, headers and body
// matching their schemas): a response that drifts from the document fails
// the test that saw it. Every host test serves through it.
func (s *Server) ContractChecked(t errorReporter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &captured{ResponseWriter: w}
		// The request as the router sees it, before the chain reads the body.
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		rctx := chi.NewRouteContext()
		var rt *route
		if p := s.mux.Find(rctx, r.Method, path); p != "" {
			rt = s.routes[routeKey(r.Method, p)]
		}
		s.handler.ServeHTTP(rec, r)
		if rt == nil || rec.status == http.StatusRequestHeaderFieldsTooLarge || rec.status == StatusClientClosedRequest {
			// Unknown routes (404/405), oversized headers (431, answered
			// before the route matters) and 499 (recorded for a client that
			// left; nobody receives it) are outside the operations; the
			// document's description and doc/api/README.md state them.
			return
		}
		params := map[string]string{}
		for i, k := range rctx.URLParams.Keys {
			v := rctx.URLParams.Values[i]
			if r.URL.RawPath != "" {
				if u, err := url.PathUnescape(v); err == nil {
					v = u
				}
			}
			params[k] = v
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params,
				Route: &routers.Route{Spec: s.contract.spec, Path: rt.Pattern, PathItem: rt.item, Method: rt.Method, Operation: rt.op}},
			Status: status, Header: rec.Header(), Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		}
		if err := openapi3filter.ValidateResponse(r.Context(), in); err != nil {
			t.Errorf("%s %s → %d does not match the contract: %v\nbody: %.500s", r.Method, rt.Pattern, status, err, rec.body.Bytes())
		}
	})
}

// errorReporter is the part of testing.TB ContractChecked uses.
type errorReporter interface {
	Errorf(format string, args ...any)
}

// captured copies what the handler writes.
type captured struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *captured) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *captured) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

func (c *captured) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (c *captured) Unwrap() http.ResponseWriter { return c.ResponseWriter }
