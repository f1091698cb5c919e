package httphost

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/netprobe"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/audit/auditsvc"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/payment/paymentsvc"
	"github.com/gpuaas/gpuaas/core/policy/policysvc"
	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
	"github.com/gpuaas/gpuaas/core/terminal/terminalsvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// allowAll is a rate limiter that never refuses: the walk sends hundreds of
// requests as one user and is about validation, not budgets.
type allowAll struct{}

var _ ports.RateLimiter = allowAll{}

func (allowAll) Allow(_ context.Context, _ string, limit int, w time.Duration) (ports.RateDecision, error) {
	return ports.RateDecision{Allowed: true, Limit: limit, Remaining: limit, ResetAt: time.Now().Add(w)}, nil
}

func (a allowAll) Peek(ctx context.Context, key string, limit int, w time.Duration) (ports.RateDecision, error) {
	return a.Allow(ctx, key, limit, w)
}

// fullStack is the HTTP host with every use case wired over real Postgres
// stores, as `gpuaas serve api` runs it.
func fullStack(t *testing.T) (*httptest.Server, *postgres.DB, *tokens.Issuer) {
	t.Helper()
	return fullStackWith(t, io.Discard, nil)
}

// fullStackWith is fullStack logging to logs and tracing to tp (nil: the
// global provider).
func fullStackWith(t *testing.T, logs io.Writer, tp trace.TracerProvider) (*httptest.Server, *postgres.DB, *tokens.Issuer) {
	t.Helper()
	db := services.Postgres(t)
	iss := tokens.NewIssuer(t)
	mach := newMachineAccess(t, db)
	verifier, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: iss.URL(), Audience: iss.Audience(),
		StaticKeys: append([]crypto.PublicKey(nil), iss.PublicKeys()...), Trusted: []oidc.TrustedIssuer{mach.trusted()}})
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	policies, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	clock, ids, auditLog := system.Clock{}, system.UUIDs{}, auditsvc.StampActor(postgres.NewAuditLog(db))
	tokenStore := inproc.NewTokenStore(clock)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	idsvc, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Audit: auditLog,
		Outbox: outbox, Clock: clock, IDs: ids})
	must(err)
	must(mach.wire(db, idsvc, auditLog))
	prober, err := netprobe.New(netprobe.Config{Timeout: 2 * time.Second})
	must(err)
	inv, err := inventorysvc.New(inventorysvc.Config{}, inventorysvc.Deps{Tx: db, SKUs: postgres.NewSKUStore(db),
		Nodes: postgres.NewNodeStore(db), Allocations: postgres.NewAllocationStore(db),
		Bootstrap: postgres.NewBootstrapTokenStore(db), Certs: postgres.NewNodeCertificateStore(db), Prober: prober,
		Audit: auditLog, Clock: clock, IDs: ids})
	must(err)
	allocs, err := allocationsvc.New(allocationsvc.Deps{Tx: db, Allocations: postgres.NewAllocationStore(db), Spend: postgres.NewAllocationStore(db),
		SKUs: postgres.NewSKUStore(db), Nodes: postgres.NewNodeStore(db), SSHKeys: postgres.NewSSHKeyStore(db),
		Ledger: postgres.NewLedgerStore(db), Policies: policies, Audit: auditLog, Outbox: outbox, Clock: clock, IDs: ids})
	must(err)
	lsvc, err := ledgersvc.New(ledgersvc.Deps{Tx: db, Ledger: postgres.NewLedgerStore(db), Entries: postgres.NewLedgerStore(db),
		Usage: postgres.NewUsageStore(db), Policies: policies, Audit: auditLog, Clock: clock, IDs: ids})
	must(err)
	pay, err := paymentsvc.New(paymentsvc.Config{SuccessURL: testOrigin + "/billing?paid=1", CancelURL: testOrigin + "/billing",
		PortalReturnURL: testOrigin + "/billing"}, paymentsvc.Deps{Tx: db, Store: postgres.NewPaymentStore(db),
		Ledger: postgres.NewLedgerStore(db), Provider: newStripeProvider(t), Policies: policies, Audit: auditLog, Outbox: outbox,
		Clock: clock, IDs: ids})
	must(err)
	term, err := terminalsvc.New(terminalsvc.Deps{Allocations: postgres.NewAllocationStore(db), Tokens: tokenStore,
		Audit: auditLog, Clock: clock, IDs: ids})
	must(err)
	padmin, err := policysvc.New(policysvc.Deps{Tx: db, Policies: policies, Audit: auditLog, Clock: clock, IDs: ids})
	must(err)
	// Project storage over the in-memory object store, which serves the
	// URLs it presigns.
	objects := fakes.NewObjectStore()
	objSrv := httptest.NewServer(objects)
	t.Cleanup(objSrv.Close)
	objects.BaseURL = objSrv.URL
	storageIndex := postgres.NewStorageStore(db)
	stor, err := storagesvc.New(storagesvc.Config{}, storagesvc.Deps{Tx: db, Index: storageIndex, Reservations: storageIndex,
		Objects: objects, Presigner: objects, Multipart: objects, Projects: postgres.NewProjectStore(db), Policies: policies,
		Audit: auditLog, Outbox: outbox, Clock: clock, IDs: ids})
	must(err)
	srv, err := New(Config{Addr: "127.0.0.1:0", PublicBaseURL: testOrigin, AllowedRedirectURIs: []string{testRedirect}},
		Deps{Identity: idsvc, Verifier: verifier, IdP: newStubIdP(t, iss), Tokens: tokenStore, RateLimiter: allowAll{},
			Policies: policies, Audit: auditLog, Idempotency: postgres.NewIdempotencyStore(db, clock),
			Logger: slog.New(slog.NewJSONHandler(logs, nil)), TracerProvider: tp, Inventory: inv, Allocations: allocs, Ledger: lsvc,
			Payments: pay, Terminal: term, PolicyAdmin: padmin, Storage: stor, Machine: mach.svc,
			ServiceAccounts: mach.accounts, APIKeys: mach.keys, TokenIssuer: mach.issuer})
	must(err)
	ts := httptest.NewServer(srv.ContractChecked(t))
	t.Cleanup(ts.Close)
	return ts, db, iss
}

// rowCounts counts the rows of every table.
func rowCounts(t *testing.T, db *postgres.DB) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Pool.Query(ctx, `SELECT quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(tables) < 10 {
		t.Fatalf("found only %d tables: %v", len(tables), tables)
	}
	out := map[string]int64{}
	for _, tb := range tables {
		var n int64
		if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+tb).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[tb] = n
	}
	return out
}

// member is one JSON object member, kept in order so a duplicate can be
// written.
type member struct {
	key string
	val any
}

// object is a JSON object written member by member.
type object []member

func (o object) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		v, err := json.Marshal(m.val)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// sample builds a value the schema accepts: every property, the first enum
// value, lengths and bounds respected.
func sample(sc *openapi3.Schema) any {
	switch {
	case sc.Example != nil:
		return sc.Example
	case len(sc.Examples) > 0:
		return sc.Examples[0]
	case len(sc.Enum) > 0:
		return sc.Enum[0]
	case sc.Type.Is("object"):
		keys := make([]string, 0, len(sc.Properties))
		for k := range sc.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := object{}
		for _, k := range keys {
			o = append(o, member{k, sample(sc.Properties[k].Value)})
		}
		return o
	case sc.Type.Is("array"):
		return []any{sample(sc.Items.Value)}
	case sc.Type.Is("integer"):
		if sc.Min != nil {
			return int64(*sc.Min)
		}
		return 1
	case sc.Type.Is("boolean"):
		return true
	case sc.Type.Is("string"):
		switch sc.Format {
		case "uri":
			return testRedirect
		case "date-time":
			return "2026-01-02T03:04:05Z"
		}
		n := max(1, int(sc.MinLength))
		return strings.Repeat("x", n)
	}
	return nil
}

// walkReq is one request of the walk and what it must get back.
type walkReq struct {
	name   string
	path   string
	query  url.Values
	header http.Header
	body   any // nil: no body
	field  string
}

// stringSite is one place a string goes: a mutation sets it.
type stringSite struct {
	field  string
	schema *openapi3.Schema
	set    func(v string) (body any)
}

// bodySites lists the string leaves of a sample body (names as the error's
// field names them) with a setter that returns a modified copy.
func bodySites(sc *openapi3.Schema, v any, field string, rebuild func(any) any) []stringSite {
	var out []stringSite
	switch vv := v.(type) {
	case object:
		for i, m := range vv {
			i, m := i, m
			f := joinField(field, []string{m.key})
			out = append(out, bodySites(sc.Properties[m.key].Value, m.val, f, func(nv any) any {
				c := append(object(nil), vv...)
				c[i] = member{m.key, nv}
				return rebuild(c)
			})...)
		}
	case []any:
		out = append(out, bodySites(sc.Items.Value, vv[0], joinField(field, []string{"0"}), func(nv any) any {
			return rebuild([]any{nv})
		})...)
	case string:
		out = append(out, stringSite{field: field, schema: sc, set: func(s string) any { return rebuild(s) }})
	}
	return out
}

// TestEveryOperationRefusesBadInput is the route walk: to every operation of
// the contract it sends, wherever the operation takes them, a NUL byte, a
// control character, a bidirectional override, an over-long string, a
// wrong-case field, an unknown field, a duplicate member and a value
// outside an enum. Each must be 400 validation_failed naming the field
// (never 5xx), and no row may be written anywhere.
func TestEveryOperationRefusesBadInput(t *testing.T) {
	t.Parallel()
	ts, db, iss := fullStack(t)
	admin := iss.Mint(t, tokens.Subject("walker"), tokens.Email("walker@example.com"), tokens.Name("Walker"), tokens.Roles("admin"))
	project := signInDefaultProject(t, ts, admin)
	spec, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	routes, err := loadRoutes(spec)
	if err != nil {
		t.Fatal(err)
	}
	before := rowCounts(t, db)

	keys := make([]string, 0, len(routes))
	for k := range routes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sent := 0
	for _, k := range keys {
		rt := routes[k]
		for _, wr := range walkRequests(t, rt, project) {
			sent++
			status, body := sendWalk(t, ts, rt, admin, project, wr)
			var e struct {
				Error errorJSON `json:"error"`
			}
			_ = json.Unmarshal(body, &e)
			if status != http.StatusBadRequest || e.Error.Code != "validation_failed" || e.Error.Field != wr.field {
				t.Errorf("%s %s: got %d %s/%q, want 400 validation_failed/%q\n%s", k, wr.name, status, e.Error.Code,
					e.Error.Field, wr.field, body)
			}
		}
	}
	if sent < 300 {
		t.Fatalf("the walk sent only %d requests; the generator lost operations", sent)
	}
	after := rowCounts(t, db)
	for tb, n := range after {
		if n != before[tb] {
			t.Errorf("table %s went from %d to %d rows during the walk", tb, before[tb], n)
		}
	}
	t.Logf("%d operations, %d refused requests", len(routes), sent)
}

// signInDefaultProject signs the walker in (its tenant and default project
// are created then, before the row count) and returns the project's id.
func signInDefaultProject(t *testing.T, ts *httptest.Server, tok string) string {
	t.Helper()
	r, _ := http.NewRequestWithContext(context.Background(), "GET", ts.URL+"/api/v1/users/me", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct {
		Projects []struct {
			ID        string `json:"id"`
			IsDefault bool   `json:"is_default"`
		} `json:"projects"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sign in: %d %v", resp.StatusCode, err)
	}
	for _, p := range me.Projects {
		if p.IsDefault {
			return p.ID
		}
	}
	t.Fatal("no default project")
	return ""
}

// badStrings are the values every string input must refuse, by name.
func badStrings(sc *openapi3.Schema) map[string]string {
	out := map[string]string{"NUL": "a\x00b"}
	if sc == nil || sc.Extensions[extText] != "opaque" {
		out["ESC"] = "a\x1b[2Jb"
		out["bidi override"] = "a\u202eb"
	}
	if sc != nil && sc.MaxLength != nil {
		out["over-long"] = strings.Repeat("y", int(*sc.MaxLength)+1)
	}
	if sc != nil && len(sc.Enum) > 0 {
		out["bad enum"] = "bogus"
	}
	return out
}

// walkRequests lists the bad requests for one operation.
func walkRequests(t *testing.T, rt *route, project string) []walkReq {
	t.Helper()
	var out []walkReq
	var baseBody any
	bsc := bodySchema(rt.op)
	if bsc != nil && !rt.rawBody {
		baseBody = sample(bsc)
	}
	// Required query parameters get valid values, so a request fails on
	// the one input it spoils and not on a missing one.
	required := url.Values{}
	for _, p := range rt.params {
		if p.In == openapi3.ParameterInQuery && p.Required {
			required.Set(p.Name, fmt.Sprint(sample(p.Schema.Value)))
		}
	}
	base := func() walkReq {
		q := url.Values{}
		for k, v := range required {
			q[k] = append([]string(nil), v...)
		}
		return walkReq{path: rt.Pattern, query: q, header: http.Header{}, body: baseBody}
	}
	// Parameters: each string parameter gets every bad value.
	for _, p := range rt.params {
		sc := p.Schema.Value
		if !sc.Type.Is("string") {
			continue
		}
		for name, bad := range badStrings(sc) {
			wr := base()
			wr.name, wr.field = p.In+" "+p.Name+": "+name, p.Name
			switch p.In {
			case openapi3.ParameterInPath:
				wr.path = strings.Replace(rt.Pattern, "{"+p.Name+"}", url.PathEscape(bad), 1)
			case openapi3.ParameterInQuery:
				wr.query.Set(p.Name, bad)
			case openapi3.ParameterInHeader:
				if strings.ContainsAny(bad, "\x00\x1b") {
					continue // no HTTP client can send these in a header
				}
				wr.header.Set(p.Name, bad)
			case openapi3.ParameterInCookie:
				if name != "over-long" {
					continue // cookie values with controls are dropped by the parser before anyone reads them
				}
				wr.header.Set("Cookie", p.Name+"="+bad)
			}
			out = append(out, wr)
		}
	}
	if baseBody == nil {
		return out
	}
	// Body strings.
	for _, site := range bodySites(bsc, baseBody, "", func(v any) any { return v }) {
		for name, bad := range badStrings(site.schema) {
			wr := base()
			wr.name, wr.field, wr.body = "body "+site.field+": "+name, site.field, site.set(bad)
			out = append(out, wr)
		}
	}
	// Member names: wrong case, unknown, duplicate.
	obj, ok := baseBody.(object)
	if !ok {
		t.Fatalf("%s: the body is not an object", rt.OperationID)
	}
	wr := base()
	wr.name, wr.field, wr.body = "body: unknown field", "zz_unknown", append(append(object(nil), obj...), member{"zz_unknown", 1})
	out = append(out, wr)
	for i, m := range obj {
		upper := strings.ToUpper(m.key)
		c := append(object(nil), obj...)
		c[i] = member{upper, m.val}
		wr := base()
		wr.name, wr.field, wr.body = "body: wrong-case "+m.key, upper, c
		out = append(out, wr)
		wr = base()
		wr.name, wr.field, wr.body = "body: duplicate "+m.key, m.key, append(append(object(nil), obj...), m)
		out = append(out, wr)
	}
	return out
}

// sendWalk sends one request as the walker, with the headers the route
// needs to reach validation (project, a fresh idempotency key) unless the
// request sets them itself.
func sendWalk(t *testing.T, ts *httptest.Server, rt *route, tok, project string, wr walkReq) (int, []byte) {
	t.Helper()
	path := strings.ReplaceAll(wr.path, "{project_id}", project)
	for _, p := range rt.params {
		if p.In == openapi3.ParameterInPath {
			path = strings.ReplaceAll(path, "{"+p.Name+"}", uuid.NewString())
		}
	}
	u := ts.URL + path
	if len(wr.query) > 0 {
		u += "?" + wr.query.Encode()
	}
	if rt.Pattern == "/api/v1/auth/oidc/authorize" && wr.query.Get("redirect_uri") == "" {
		u += sep(u) + "redirect_uri=" + url.QueryEscape(testRedirect)
	}
	var body io.Reader
	if wr.body != nil {
		b, err := json.Marshal(wr.body)
		if err != nil {
			t.Fatal(err)
		}
		body = strings.NewReader(string(b))
	}
	r, err := http.NewRequestWithContext(context.Background(), rt.Method, u, body)
	if err != nil {
		t.Fatalf("%s: %v", wr.name, err)
	}
	if wr.body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if rt.Authz != AuthzPublic {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	for _, p := range rt.params {
		switch p.Name {
		case "X-Project-ID":
			r.Header.Set("X-Project-ID", project)
		case "X-Idempotency-Key":
			r.Header.Set("X-Idempotency-Key", "walk-"+uuid.NewString())
		}
	}
	for k, v := range wr.header {
		r.Header[k] = v
	}
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", rt.Method, wr.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}
