package httphost

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/hosts/http/api"
)

// Authz is an operation's authorisation decision, written in the contract
// as the operation's x-authz extension.
type Authz string

// The decisions, from least to most demanding. Each includes the checks of
// "authenticated" except public.
const (
	// AuthzPublic: anyone; the Authorization header is not even read.
	AuthzPublic Authz = "public"
	// AuthzAuthenticated: a valid access token of an active user.
	AuthzAuthenticated Authz = "authenticated"
	// AuthzProjectMember: authenticated, and a member of the project named
	// by the path's {project_id} or, failing that, by X-Project-ID.
	AuthzProjectMember Authz = "project_member"
	// AuthzTenantAdmin: authenticated as an owner or admin of the tenant.
	AuthzTenantAdmin Authz = "tenant_admin"
	// AuthzPlatformAdmin: authenticated as a platform operator.
	AuthzPlatformAdmin Authz = "platform_admin"
)

func (a Authz) valid() bool {
	switch a {
	case AuthzPublic, AuthzAuthenticated, AuthzProjectMember, AuthzTenantAdmin, AuthzPlatformAdmin:
		return true
	}
	return false
}

// extScope on an operation (x-scope): the scope a machine credential needs,
// or "interactive" (people only). Required on every operation that is not
// public; tenant-admin and platform-admin operations must say interactive.
const extScope = "x-scope"

// rateClass groups routes that share a rate-limit budget.
type rateClass string

const (
	classNone   rateClass = ""       // not limited: health and metrics are polled by infrastructure
	classRead   rateClass = "read"   // GET: ratelimit.default_per_minute
	classMutate rateClass = "mutate" // everything else: ratelimit.mutate_per_minute
	classAuth   rateClass = "auth"   // sign-in routes, keyed by client address: ratelimit.auth_per_minute
	// classUnauth is not a route's class: it is the per-address budget of
	// requests to authenticated routes without a valid token
	// (ratelimit.unauthenticated_per_minute), checked before verification.
	classUnauth rateClass = "unauthenticated"
)

// route is one operation of the contract as the host serves it.
type route struct {
	Method      string
	Pattern     string // chi pattern, identical to the contract's path
	key         string // routeKey(Method, Pattern), also the name of its spans
	OperationID string
	Authz       Authz
	// Scope (x-scope) is what a machine credential (service-account
	// token, API key) needs to call the route; identity.ScopeInteractive:
	// only people signed in interactively. Empty on public routes.
	Scope identity.Scope
	Class rateClass

	// The contract's view of the operation, for the request validator.
	item    *openapi3.PathItem
	op      *openapi3.Operation
	params  []*openapi3.Parameter // the path item's and the operation's, the operation's winning
	rawBody bool                  // x-raw-body: the handler verifies the raw body itself
	// streamBody (x-stream-body): the body is a file the handler streams
	// on; the host neither reads, validates nor bounds it by BodyLimit
	// (rawBody is set too).
	streamBody bool
	// noIdempotency (x-idempotency: false): X-Idempotency-Key is not taken
	// (the response holds credentials, or the body cannot be fingerprinted).
	noIdempotency bool
	// idempotencyByUseCase (x-idempotency: use-case): the use case dedupes
	// on the key and resumes a retried request, so a retry after a failure
	// runs again even when the first attempt committed.
	idempotencyByUseCase bool
}

// mutating reports whether the route changes state (and so may carry an
// idempotency key).
func (rt *route) mutating() bool {
	return rt.Method != http.MethodGet && rt.Method != http.MethodHead && rt.Method != http.MethodOptions
}

func routeKey(method, pattern string) string { return method + " " + pattern }

// classify derives the rate-limit class from the route. It is a rule rather
// than a per-operation setting because it follows from the method and the
// path prefix for every route the platform has.
func classify(method, pattern string) rateClass {
	switch {
	case pattern == "/api/v1/healthz" || pattern == "/metrics":
		return classNone
	case pattern == "/api/v1/payments/webhook":
		// The provider delivers from a few addresses in bursts and retries
		// on its own schedule; a per-address budget would drop payments.
		// The signature, checked before any write, is the gate.
		return classNone
	case strings.HasPrefix(pattern, "/api/v1/auth/"):
		return classAuth
	case method == http.MethodGet || method == http.MethodHead:
		return classRead
	default:
		return classMutate
	}
}

// loadSpec loads the embedded contract and checks it is a valid OpenAPI
// document (a host never serves a contract it cannot enforce).
func loadSpec() (*openapi3.T, error) {
	spec, err := api.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("httphost: load embedded contract: %w", err)
	}
	if err := spec.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("httphost: the embedded contract is not a valid OpenAPI document: %w", err)
	}
	return spec, nil
}

// loadRoutes reads every operation of the contract with its x-authz
// decision. A missing or unknown decision is an error, so a route without
// one cannot be served.
func loadRoutes(spec *openapi3.T) (map[string]*route, error) {
	out := map[string]*route{}
	var problems []string
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			raw, ok := op.Extensions["x-authz"]
			s, _ := raw.(string)
			a := Authz(s)
			if !ok || !a.valid() {
				problems = append(problems, fmt.Sprintf("%s %s: x-authz %v", method, path, raw))
				continue
			}
			scRaw, _ := op.Extensions[extScope].(string)
			sc := identity.Scope(scRaw)
			switch {
			case a == AuthzPublic && scRaw != "":
				problems = append(problems, fmt.Sprintf("%s %s: a public operation has x-scope %q", method, path, scRaw))
				continue
			case a != AuthzPublic && !sc.Valid() && sc != identity.ScopeInteractive:
				problems = append(problems, fmt.Sprintf("%s %s: x-scope %q (want read, allocations, storage, billing or interactive)", method, path, scRaw))
				continue
			case (a == AuthzTenantAdmin || a == AuthzPlatformAdmin) && sc != identity.ScopeInteractive:
				problems = append(problems, fmt.Sprintf("%s %s: a %s operation must have x-scope interactive", method, path, a))
				continue
			}
			rawBody, _ := op.Extensions[extRawBody].(bool)
			stream, _ := op.Extensions[extStreamBody].(bool)
			idemRaw, hasIdem := op.Extensions[extIdempotency]
			idem, isBool := idemRaw.(bool)
			byUseCase := idemRaw == "use-case"
			if hasIdem && ((isBool && idem) || (!isBool && !byUseCase)) {
				problems = append(problems, fmt.Sprintf("%s %s: x-idempotency %v (want false or use-case)", method, path, idemRaw))
				continue
			}
			key := routeKey(method, path)
			out[key] = &route{Method: method, Pattern: path, key: key, OperationID: op.OperationID,
				Authz: a, Scope: sc, Class: classify(method, path), item: item, op: op, params: paramsOf(item, op),
				rawBody: rawBody || stream, streamBody: stream, noIdempotency: stream || (isBool && !idem),
				idempotencyByUseCase: byUseCase}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("httphost: operations without a valid authorisation decision (x-authz, x-scope): %s", strings.Join(problems, "; "))
	}
	return out, nil
}

// paramsOf merges the path item's parameters with the operation's; an
// operation parameter of the same name and location overrides.
func paramsOf(item *openapi3.PathItem, op *openapi3.Operation) []*openapi3.Parameter {
	var out []*openapi3.Parameter
	for _, p := range item.Parameters {
		if p.Value != nil && op.Parameters.GetByInAndName(p.Value.In, p.Value.Name) == nil {
			out = append(out, p.Value)
		}
	}
	for _, p := range op.Parameters {
		if p.Value != nil {
			out = append(out, p.Value)
		}
	}
	return out
}
