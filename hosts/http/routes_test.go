package httphost

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/ports"
)

// wantAuthz pins every operation's decision. It repeats the contract on
// purpose: a change of who may call a route shows up in review here, and
// the test below fails until both agree.
var wantAuthz = map[string]Authz{
	"GET /api/v1/healthz":                                    AuthzPublic,
	"GET /metrics":                                           AuthzPublic,
	"GET /api/v1/auth/oidc/authorize":                        AuthzPublic,
	"POST /api/v1/auth/oidc/exchange":                        AuthzPublic,
	"POST /api/v1/auth/token/refresh":                        AuthzPublic,
	"POST /api/v1/auth/logout":                               AuthzPublic,
	"POST /api/v1/auth/personal/login":                       AuthzPublic,
	"GET /api/v1/users/me":                                   AuthzAuthenticated,
	"GET /api/v1/projects":                                   AuthzAuthenticated,
	"POST /api/v1/projects":                                  AuthzTenantAdmin,
	"GET /api/v1/projects/{project_id}/members":              AuthzProjectMember,
	"POST /api/v1/projects/{project_id}/members":             AuthzTenantAdmin,
	"DELETE /api/v1/projects/{project_id}/members/{user_id}": AuthzTenantAdmin,
	"POST /api/v1/tenant/invitations":                        AuthzTenantAdmin,
	"GET /api/v1/admin/audit-log":                            AuthzPlatformAdmin,
	"GET /api/v1/admin/policies":                             AuthzPlatformAdmin,
	"PUT /api/v1/admin/policies":                             AuthzPlatformAdmin,
	// Compute (doc/inventory-and-allocations.md).
	"GET /api/v1/skus":                                             AuthzAuthenticated,
	"GET /api/v1/nodes":                                            AuthzAuthenticated,
	"GET /api/v1/admin/nodes":                                      AuthzPlatformAdmin,
	"POST /api/v1/admin/nodes":                                     AuthzPlatformAdmin,
	"DELETE /api/v1/admin/nodes/{node_id}":                         AuthzPlatformAdmin,
	"POST /api/v1/admin/nodes/{node_id}/probe":                     AuthzPlatformAdmin,
	"PUT /api/v1/admin/nodes/{node_id}/maintenance":                AuthzPlatformAdmin,
	"DELETE /api/v1/admin/nodes/{node_id}/maintenance":             AuthzPlatformAdmin,
	"GET /api/v1/allocations":                                      AuthzProjectMember,
	"POST /api/v1/allocations":                                     AuthzProjectMember,
	"POST /api/v1/allocations/quote":                               AuthzProjectMember,
	"GET /api/v1/allocations/{allocation_id}":                      AuthzAuthenticated,
	"POST /api/v1/allocations/{allocation_id}/release":             AuthzAuthenticated,
	"POST /api/v1/allocations/{allocation_id}/terminal-token":      AuthzProjectMember,
	"GET /api/v1/admin/allocations":                                AuthzPlatformAdmin,
	"POST /api/v1/admin/allocations/{allocation_id}/force-release": AuthzPlatformAdmin,
	// Payments (doc/payments.md).
	"POST /api/v1/payments/checkout-session":        AuthzAuthenticated,
	"POST /api/v1/payments/customer-portal-session": AuthzTenantAdmin,
	"POST /api/v1/payments/webhook":                 AuthzPublic,
	"GET /api/v1/admin/payments/sessions":           AuthzPlatformAdmin,
	// Billing (doc/billing.md): every member reads their own tenant's
	// money; only operators move it.
	"GET /api/v1/billing/balance":                    AuthzAuthenticated,
	"GET /api/v1/billing/ledger":                     AuthzAuthenticated,
	"GET /api/v1/billing/usage":                      AuthzAuthenticated,
	"GET /api/v1/billing/usage/csv":                  AuthzAuthenticated,
	"POST /api/v1/admin/tenants/{tenant_id}/credits": AuthzPlatformAdmin,
	"POST /api/v1/admin/tenants/{tenant_id}/refunds": AuthzPlatformAdmin,
	"GET /api/v1/ssh-keys":                           AuthzAuthenticated,
	"POST /api/v1/ssh-keys":                          AuthzAuthenticated,
	"DELETE /api/v1/ssh-keys/{key_id}":               AuthzAuthenticated,
	// Notifications (doc/notifications.md): everyone reads their own; webhook
	// endpoints are their project's (the use case requires its admins).
	"GET /api/v1/notifications":                                               AuthzAuthenticated,
	"POST /api/v1/notifications/read":                                         AuthzAuthenticated,
	"GET /api/v1/notifications/stream":                                        AuthzAuthenticated,
	"GET /api/v1/notifications/preferences":                                   AuthzAuthenticated,
	"PUT /api/v1/notifications/preferences":                                   AuthzAuthenticated,
	"GET /api/v1/projects/{project_id}/webhooks":                              AuthzProjectMember,
	"POST /api/v1/projects/{project_id}/webhooks":                             AuthzProjectMember,
	"GET /api/v1/projects/{project_id}/webhooks/{endpoint_id}":                AuthzProjectMember,
	"PATCH /api/v1/projects/{project_id}/webhooks/{endpoint_id}":              AuthzProjectMember,
	"DELETE /api/v1/projects/{project_id}/webhooks/{endpoint_id}":             AuthzProjectMember,
	"POST /api/v1/projects/{project_id}/webhooks/{endpoint_id}/rotate-secret": AuthzProjectMember,
	"GET /api/v1/projects/{project_id}/webhooks/{endpoint_id}/deliveries":     AuthzProjectMember,
	// Operators (doc/admin.md).
	"GET /api/v1/admin/users":                                 AuthzPlatformAdmin,
	"POST /api/v1/admin/users":                                AuthzPlatformAdmin,
	"GET /api/v1/admin/users/{user_id}":                       AuthzPlatformAdmin,
	"POST /api/v1/admin/users/{user_id}/suspend":              AuthzPlatformAdmin,
	"POST /api/v1/admin/users/{user_id}/unsuspend":            AuthzPlatformAdmin,
	"GET /api/v1/admin/tenants":                               AuthzPlatformAdmin,
	"GET /api/v1/admin/tenants/{tenant_id}":                   AuthzPlatformAdmin,
	"GET /api/v1/admin/tenants/{tenant_id}/ledger":            AuthzPlatformAdmin,
	"GET /api/v1/admin/tenants/{tenant_id}/policies":          AuthzPlatformAdmin,
	"PUT /api/v1/admin/tenants/{tenant_id}/policies":          AuthzPlatformAdmin,
	"DELETE /api/v1/admin/tenants/{tenant_id}/policies/{key}": AuthzPlatformAdmin,
	"GET /api/v1/admin/audit-log/export":                      AuthzPlatformAdmin,
	"GET /api/v1/admin/ops":                                   AuthzPlatformAdmin,
	"GET /api/v1/admin/runbooks":                              AuthzPlatformAdmin,
	"POST /api/v1/admin/tenants/{tenant_id}/refund-requests":  AuthzPlatformAdmin,
	"GET /api/v1/admin/refund-requests":                       AuthzPlatformAdmin,
	"POST /api/v1/admin/events/{event_id}/retry":              AuthzPlatformAdmin,
	// Project storage (doc/storage.md): members of the active project.
	"GET /api/v1/storage/list":              AuthzProjectMember,
	"GET /api/v1/storage/stat":              AuthzProjectMember,
	"GET /api/v1/storage/download":          AuthzProjectMember,
	"PUT /api/v1/storage/upload":            AuthzProjectMember,
	"POST /api/v1/storage/mkdir":            AuthzProjectMember,
	"POST /api/v1/storage/rename":           AuthzProjectMember,
	"DELETE /api/v1/storage/delete":         AuthzProjectMember,
	"GET /api/v1/storage/usage":             AuthzProjectMember,
	"POST /api/v1/storage/presign":          AuthzProjectMember,
	"POST /api/v1/storage/presign/complete": AuthzProjectMember,
	// Machine access (doc/service-accounts.md).
	"POST /api/v1/auth/service-token":                                                                        AuthzPublic,
	"GET /api/v1/auth/jwks":                                                                                  AuthzPublic,
	"GET /api/v1/projects/{project_id}/service-accounts":                                                     AuthzTenantAdmin,
	"POST /api/v1/projects/{project_id}/service-accounts":                                                    AuthzTenantAdmin,
	"DELETE /api/v1/projects/{project_id}/service-accounts/{service_account_id}":                             AuthzTenantAdmin,
	"POST /api/v1/projects/{project_id}/service-accounts/{service_account_id}/credentials":                   AuthzTenantAdmin,
	"DELETE /api/v1/projects/{project_id}/service-accounts/{service_account_id}/credentials/{credential_id}": AuthzTenantAdmin,
	"GET /api/v1/api-keys":                                                                                   AuthzAuthenticated,
	"POST /api/v1/api-keys":                                                                                  AuthzAuthenticated,
	"DELETE /api/v1/api-keys/{key_id}":                                                                       AuthzAuthenticated,
}

// TestEveryRouteHasAnAuthorisationDecision walks the router and the
// contract: every routed operation must have a decision, every operation
// must be routed, and both must match the pinned table.
func TestEveryRouteHasAnAuthorisationDecision(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	routed := map[string]bool{}
	err := chi.Walk(h.srv.mux, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		k := routeKey(method, pattern)
		routed[k] = true
		rt := h.srv.routes[k]
		switch {
		case rt == nil:
			t.Errorf("routed %s has no decision", k)
		case wantAuthz[k] == "":
			t.Errorf("routed %s (%s) is not in wantAuthz", k, rt.Authz)
		case rt.Authz != wantAuthz[k]:
			t.Errorf("%s: contract says %s, wantAuthz says %s", k, rt.Authz, wantAuthz[k])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			k := routeKey(method, path)
			ops = append(ops, k)
			if !routed[k] {
				t.Errorf("contract operation %s is not routed", k)
			}
			a, _ := op.Extensions["x-authz"].(string)
			if Authz(a) != wantAuthz[k] {
				t.Errorf("%s: x-authz %q, want %q", k, a, wantAuthz[k])
			}
			// The security requirement must say the same thing as x-authz.
			public := op.Security != nil && len(*op.Security) == 0
			if public != (Authz(a) == AuthzPublic) {
				t.Errorf("%s: x-authz %q but security %v", k, a, op.Security)
			}
		}
	}
	for k := range wantAuthz {
		if !routed[k] {
			t.Errorf("wantAuthz lists %s, which is not routed", k)
		}
	}
	sort.Strings(ops)
	if len(ops) != len(wantAuthz) || len(routed) != len(wantAuthz) {
		t.Errorf("%d operations, %d routes, %d pinned: %v", len(ops), len(routed), len(wantAuthz), ops)
	}
}

func TestRouteClasses(t *testing.T) {
	t.Parallel()
	for k, want := range map[string]rateClass{
		"GET /api/v1/healthz": classNone, "GET /metrics": classNone, "POST /api/v1/auth/logout": classAuth,
		"GET /api/v1/auth/oidc/authorize": classAuth, "GET /api/v1/users/me": classRead,
		"POST /api/v1/projects": classMutate, "PUT /api/v1/admin/policies": classMutate,
		"POST /api/v1/payments/webhook": classNone, "POST /api/v1/payments/checkout-session": classMutate,
	} {
		m, p, _ := strings.Cut(k, " ")
		if got := classify(m, p); got != want {
			t.Errorf("classify(%s) = %q, want %q", k, got, want)
		}
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestGeneratedCodeIsCurrent runs scripts/codegen.sh --check, so `make
// test` fails when the contract changed without regenerating.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH")
	}
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), "scripts", "codegen.sh"), "--check")
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("codegen check failed: %v\n%s", err, out)
	}
}

// TestGeneratedTypesStayInTheHost: no package outside hosts/http imports the
// generated code, but the Go client (client/), which re-exports the types
// by alias for integrators instead of keeping a second copy (client/doc.go).
func TestGeneratedTypesStayInTheHost(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	host := filepath.Join(root, "hosts", "http")
	goClient := filepath.Join(root, "client")
	const imp = `"github.com/gpuaas/gpuaas/hosts/http/api"`
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == host || path == goClient || strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), imp) {
			t.Errorf("%s imports the generated API types; map to domain types inside hosts/http, or use the client package's", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestModule validates the fx wiring: the Module builds from the ports it
// documents plus health checks from the "health" group.
func TestModule(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.srv.d
	err := fx.ValidateApp(
		Module,
		fx.Supply(Config{Addr: "127.0.0.1:0"}, d.Identity, slog.New(slog.DiscardHandler)),
		fx.Provide(
			func() ports.TokenVerifier { return d.Verifier },
			func() ports.IdentityProvider { return d.IdP },
			func() ports.TokenStore { return d.Tokens },
			func() ports.RateLimiter { return d.RateLimiter },
			func() ports.PolicyStore { return d.Policies },
			func() ports.AuditLog { return d.Audit },
			func() ports.IdempotencyStore { return d.Idempotency },
			fx.Annotate(func() ports.HealthCheck { return check{"x", func(context.Context) error { return nil }} },
				fx.ResultTags(`group:"health"`)),
		),
	)
	if err != nil {
		t.Fatalf("fx.ValidateApp: %v", err)
	}
	var _ *identitysvc.Service = d.Identity
}

// TestStartShutdown serves on a real listener and drains on shutdown.
func TestStartShutdown(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv, err := New(Config{Addr: "127.0.0.1:0"}, h.srv.d)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + srv.Addr() + "/api/v1/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	if err := srv.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + srv.Addr() + "/api/v1/healthz"); err == nil {
		t.Fatal("server still answers after Shutdown")
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	var c Config
	if err := c.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.BodyLimit != 1<<20 || c.AllowedOrigins[0] != "http://127.0.0.1:8080" ||
		c.AllowedRedirectURIs[0] != "http://127.0.0.1:8080/auth/callback" {
		t.Fatalf("defaults %+v", c)
	}
	for name, bad := range map[string]Config{
		"wildcard origin":   {AllowedOrigins: []string{"*"}},
		"origin with path":  {AllowedOrigins: []string{"https://a.example.com/x"}},
		"relative redirect": {AllowedRedirectURIs: []string{"/cb"}},
		"bad addr":          {Addr: "nope"},
		"bad base":          {PublicBaseURL: "ftp://x"},
	} {
		if err := bad.CheckAndSetDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{}, Deps{}); err == nil || !strings.Contains(err.Error(), "Identity") {
		t.Fatalf("New with no deps: %v", err)
	}
}
