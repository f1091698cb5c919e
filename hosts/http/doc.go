// Package httphost is the REST host of the control plane: it serves the
// contract in doc/api/openapi.yaml over HTTP. Handlers only decode, authorise,
// call a use case and encode; everything a request crosses on the way in is a
// middleware, applied outermost first:
//
//	recover + access log/metrics → tracing (OTel) → correlation id → CORS →
//	body limit → authentication → authorisation/project context →
//	rate limit → idempotency → router → handler
//
// Recovery and the access log share the outermost layer so that a request
// whose handler panicked is still logged, once, with status 500; the log line
// is written when the request ends, so it carries the correlation id, the
// route pattern and the user id that the inner layers found.
//
// Who may call an operation is written once, as the x-authz extension of the
// operation in the contract; the host reads it from the embedded spec at
// start (see routes.go) and refuses to start if a routed operation has none.
package httphost
