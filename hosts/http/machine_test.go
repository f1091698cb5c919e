package httphost

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/pki"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/identity/machinesvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// testPlatformIssuer is the iss of the platform's own tokens in tests.
const testPlatformIssuer = "https://gpuaas.test"

// machineAccess is the machine-access wiring of the full stack: the
// platform token issuer (key sealed in Postgres), the stores and the use
// cases.
type machineAccess struct {
	issuer   *pki.TokenIssuer
	accounts *postgres.ServiceAccountStore
	keys     *postgres.APIKeyStore
	svc      *machinesvc.Service
}

func newMachineAccess(t *testing.T, db *postgres.DB) *machineAccess {
	t.Helper()
	kms, err := keyfile.NewKMS(keyfile.KMSConfig{Path: filepath.Join(t.TempDir(), "kms.key")})
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := pki.NewTokenIssuer(pki.TokenConfig{Issuer: testPlatformIssuer, Audience: testPlatformIssuer}, kms,
		postgres.NewSecretStore(db))
	if err != nil {
		t.Fatal(err)
	}
	return &machineAccess{issuer: issuer, accounts: postgres.NewServiceAccountStore(db), keys: postgres.NewAPIKeyStore(db)}
}

// trusted is the verifier's entry for the platform's tokens.
func (m *machineAccess) trusted() oidc.TrustedIssuer {
	return oidc.TrustedIssuer{Issuer: testPlatformIssuer, Audience: testPlatformIssuer,
		Keys: func(ctx context.Context) ([]crypto.PublicKey, error) { return m.issuer.PublicKeys(ctx) }}
}

func (m *machineAccess) wire(db *postgres.DB, ids *identitysvc.Service, audit ports.AuditLog) error {
	svc, err := machinesvc.New(machinesvc.Deps{Tx: db, Accounts: m.accounts, Keys: m.keys, Identity: ids, Audit: audit,
		Clock: system.Clock{}, IDs: system.UUIDs{}})
	m.svc = svc
	return err
}

// mcall sends one JSON request to the full stack and returns the status and
// body.
func mcall(t *testing.T, ts *httptest.Server, method, path, bearer, project string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	r, err := http.NewRequestWithContext(context.Background(), method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	if project != "" {
		r.Header.Set("X-Project-ID", project)
	}
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// mustCall is mcall that fails the test unless the status is want, and
// decodes the body into out.
func mustCall(t *testing.T, ts *httptest.Server, method, path, bearer, project string, body any, want int, out any) {
	t.Helper()
	st, b := mcall(t, ts, method, path, bearer, project, body)
	if st != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, st, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

func errCode(b []byte) string {
	var e struct {
		Error errorJSON `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error.Code
}

// machineCreds are credentials of every kind for one person who is a
// platform operator and the owner of their tenant: a service account of
// the project with the admin role (every scope), its token, a key with
// every scope and a read-only key.
type machineCreds struct {
	project, person, saID, saSecret, saToken, fullKey, readKey string
}

func newMachineCreds(t *testing.T, ts *httptest.Server, iss *tokens.Issuer) machineCreds {
	t.Helper()
	var c machineCreds
	c.person = iss.Mint(t, tokens.Subject("op-"+uuid.NewString()), tokens.Email("op@example.com"), tokens.Name("Op"), tokens.Roles("admin"))
	c.project = signInDefaultProject(t, ts, c.person)
	var sa struct {
		ID string `json:"id"`
	}
	mustCall(t, ts, "POST", "/api/v1/projects/"+c.project+"/service-accounts", c.person, "",
		map[string]any{"name": "ci", "role": "admin"}, 201, &sa)
	var cred struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	mustCall(t, ts, "POST", "/api/v1/projects/"+c.project+"/service-accounts/"+sa.ID+"/credentials", c.person, "", nil, 201, &cred)
	c.saID, c.saSecret = sa.ID, cred.ClientSecret
	var tok struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	mustCall(t, ts, "POST", "/api/v1/auth/service-token", "", "",
		map[string]any{"grant_type": "client_credentials", "client_id": cred.ClientID, "client_secret": cred.ClientSecret}, 200, &tok)
	if tok.Scope != "read allocations storage billing" {
		t.Fatalf("scope %q", tok.Scope)
	}
	c.saToken = tok.AccessToken
	var key struct {
		Secret string `json:"secret"`
	}
	mustCall(t, ts, "POST", "/api/v1/api-keys", c.person, "", map[string]any{"name": "all", "project_id": c.project,
		"scopes": []string{"read", "allocations", "storage", "billing"}}, 201, &key)
	c.fullKey = key.Secret
	mustCall(t, ts, "POST", "/api/v1/api-keys", c.person, "", map[string]any{"name": "ro", "project_id": c.project,
		"scopes": []string{"read"}}, 201, &key)
	c.readKey = key.Secret
	return c
}

// requestFor builds a request to an operation that would pass
// authorisation's inputs: the project in the path and the header, fresh
// ids elsewhere, a sample body.
func requestFor(rt *route, project string) (path string, body any) {
	path = strings.ReplaceAll(rt.Pattern, "{project_id}", project)
	for _, p := range rt.params {
		if p.In == openapi3.ParameterInPath {
			path = strings.ReplaceAll(path, "{"+p.Name+"}", uuid.NewString())
		}
	}
	if bsc := bodySchema(rt.op); bsc != nil && !rt.rawBody {
		body = sample(bsc)
	}
	return path, body
}

// TestMachineCredentialsNeverReachAdminRoutes is the authorisation walk for
// machine credentials: a service-account token and API keys — of a person
// who is both a platform operator and the owner of the tenant, with every
// scope — get 403 interactive_required on every tenant-admin and
// platform-admin route (and on API-key management), a read-only key gets
// 403 insufficient_scope on every route that needs more, and nothing is
// written anywhere.
func TestMachineCredentialsNeverReachAdminRoutes(t *testing.T) {
	t.Parallel()
	ts, db, iss := fullStack(t)
	c := newMachineCreds(t, ts, iss)
	spec, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	routes, err := loadRoutes(spec)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(routes))
	for k := range routes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	before := rowCounts(t, db)
	admin, scoped := 0, 0
	for _, k := range keys {
		rt := routes[k]
		if rt.Authz == AuthzPublic {
			continue
		}
		path, body := requestFor(rt, c.project)
		if rt.Authz == AuthzTenantAdmin || rt.Authz == AuthzPlatformAdmin {
			admin++
			if rt.Scope != "interactive" {
				t.Errorf("%s is %s but x-scope %q", k, rt.Authz, rt.Scope)
			}
		}
		if rt.Scope == "interactive" {
			for name, cred := range map[string]string{"service account": c.saToken, "full key": c.fullKey, "read key": c.readKey} {
				st, b := mcall(t, ts, rt.Method, path, cred, c.project, body)
				if st != http.StatusForbidden || errCode(b) != "interactive_required" {
					t.Errorf("%s as %s: %d %s, want 403 interactive_required", k, name, st, b)
				}
			}
			continue
		}
		if rt.Scope != "read" {
			scoped++
			st, b := mcall(t, ts, rt.Method, path, c.readKey, c.project, body)
			if st != http.StatusForbidden || errCode(b) != "insufficient_scope" {
				t.Errorf("%s with a read-only key: %d %s, want 403 insufficient_scope", k, st, b)
			}
		}
	}
	if admin < 20 || scoped < 15 {
		t.Fatalf("only %d admin and %d scoped routes walked", admin, scoped)
	}
	after := rowCounts(t, db)
	for tb, n := range after {
		if n != before[tb] {
			t.Errorf("table %s went from %d to %d rows during the walk", tb, before[tb], n)
		}
	}
	// The person signed in interactively reaches the same admin routes.
	if st, b := mcall(t, ts, "GET", "/api/v1/admin/policies", c.person, "", nil); st != 200 {
		t.Fatalf("the operator themself: %d %s", st, b)
	}
	// What machines may do, they do in their one project: another project
	// of the tenant is 404, as a stranger's is.
	var other struct {
		ID string `json:"id"`
	}
	mustCall(t, ts, "POST", "/api/v1/projects", c.person, "", map[string]any{"name": "other"}, 201, &other)
	for name, cred := range map[string]string{"service account": c.saToken, "full key": c.fullKey} {
		if st, b := mcall(t, ts, "GET", "/api/v1/allocations", cred, other.ID, nil); st != 404 {
			t.Errorf("%s on another project: %d %s", name, st, b)
		}
		if st, b := mcall(t, ts, "GET", "/api/v1/allocations", cred, c.project, nil); st != 200 {
			t.Errorf("%s on its project: %d %s", name, st, b)
		}
		var me struct {
			Projects []struct {
				ID string `json:"id"`
			} `json:"projects"`
		}
		mustCall(t, ts, "GET", "/api/v1/users/me", cred, "", nil, 200, &me)
		if len(me.Projects) != 1 || me.Projects[0].ID != c.project {
			t.Errorf("%s sees projects %+v", name, me.Projects)
		}
	}
}

// TestMachineSecretsNeverLeak is the redaction canary of machine access:
// client secrets, API keys and service-account tokens — right, wrong,
// revoked — pass through success and refusal paths, and none of them (nor
// a decisive part of one) reaches the logs, the traces, the audit log, the
// outbox or the idempotency store.
func TestMachineSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	ts, db, iss := fullStackWith(t, logs, tp)
	c := newMachineCreds(t, ts, iss)
	badSecret := "gps_CANARYsecret0001" + strings.Repeat("A", 33)
	badKey := "gpa_CANARYkey0002" + strings.Repeat("B", 36)
	// A fresh secret and key created with an idempotency key: the answers
	// hold secrets and must not be stored for replay.
	var sa struct {
		ID string `json:"id"`
	}
	mustCall(t, ts, "POST", "/api/v1/projects/"+c.project+"/service-accounts", c.person, "",
		map[string]any{"name": "canary", "role": "member"}, 201, &sa)
	req, _ := http.NewRequestWithContext(context.Background(), "POST",
		ts.URL+"/api/v1/projects/"+c.project+"/service-accounts/"+sa.ID+"/credentials", nil)
	req.Header.Set("Authorization", "Bearer "+c.person)
	req.Header.Set("X-Idempotency-Key", "canary-idem-1")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var cred struct {
		ClientSecret string `json:"client_secret"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&cred)
	resp.Body.Close()
	if resp.StatusCode != 201 || cred.ClientSecret == "" {
		t.Fatalf("credential: %d", resp.StatusCode)
	}
	secrets := []string{c.saSecret, c.saToken, c.fullKey, c.readKey, cred.ClientSecret, badSecret, badKey}
	steps := []struct {
		method, path, bearer string
		body                 any
		want                 int
	}{
		{"POST", "/api/v1/auth/service-token", "", map[string]any{"client_id": c.saID, "client_secret": c.saSecret}, 200},
		{"POST", "/api/v1/auth/service-token", "", map[string]any{"client_id": c.saID, "client_secret": badSecret}, 401},
		{"POST", "/api/v1/auth/service-token", "", map[string]any{"client_id": c.saID, "client_secret": c.saSecret, "x": 1}, 400},
		{"GET", "/api/v1/allocations", c.saToken, nil, 200},
		{"GET", "/api/v1/allocations", c.fullKey, nil, 200},
		{"GET", "/api/v1/allocations", badKey, nil, 401},
		{"POST", "/api/v1/ssh-keys", c.readKey, map[string]any{"name": "k", "public_key": "x"}, 403},
		{"GET", "/api/v1/admin/policies", c.fullKey, nil, 403},
		{"GET", "/api/v1/api-keys", c.saToken, nil, 403},
	}
	for _, s := range steps {
		if st, b := mcall(t, ts, s.method, s.path, s.bearer, c.project, s.body); st != s.want {
			t.Fatalf("%s %s: %d %s, want %d", s.method, s.path, st, b, s.want)
		}
	}
	// Revoked credentials keep failing quietly.
	mustCall(t, ts, "DELETE", "/api/v1/projects/"+c.project+"/service-accounts/"+c.saID, c.person, "", nil, 204, nil)
	if st, _ := mcall(t, ts, "GET", "/api/v1/allocations", c.saToken, c.project, nil); st != 401 {
		t.Fatalf("a disabled account's token: %d", st)
	}
	tp.ForceFlush(context.Background())

	var haystacks []string
	haystacks = append(haystacks, logs.String())
	for _, sp := range spans.Ended() {
		var b strings.Builder
		b.WriteString(sp.Name())
		for _, a := range sp.Attributes() {
			b.WriteString(" " + string(a.Key) + "=" + a.Value.Emit())
		}
		for _, e := range sp.Events() {
			b.WriteString(" " + e.Name)
			for _, a := range e.Attributes {
				b.WriteString(" " + a.Value.Emit())
			}
		}
		haystacks = append(haystacks, b.String())
	}
	if len(spans.Ended()) == 0 {
		t.Fatal("no spans were recorded")
	}
	for _, q := range []string{
		`SELECT coalesce(string_agg(a::text, ' '), '') FROM audit_log a`,
		`SELECT coalesce(string_agg(envelope::text, ' '), '') FROM platform_outbox_events`,
		`SELECT coalesce(string_agg(coalesce(encode(response_body, 'escape'), '') || key, ' '), '') FROM idempotency_keys`,
		`SELECT coalesce(string_agg(s::text, ' '), '') FROM service_account_credentials s`,
		`SELECT coalesce(string_agg(k::text, ' '), '') FROM api_keys k`,
	} {
		var s string
		if err := db.Pool.QueryRow(context.Background(), q).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		haystacks = append(haystacks, s)
	}
	for _, sec := range secrets {
		// The whole secret, and its part past the lookup id / hint (what
		// makes it a secret).
		parts := []string{sec}
		if len(sec) > 24 {
			parts = append(parts, sec[len(sec)-24:])
		}
		for _, p := range parts {
			for i, h := range haystacks {
				if strings.Contains(h, p) {
					t.Errorf("secret %.12q… found in haystack %d", sec, i)
				}
			}
		}
	}
	if !strings.Contains(logs.String(), `"route":"/api/v1/auth/service-token"`) {
		t.Fatal("the logs do not show the requests at all")
	}
}
