package httphost_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	httphost "github.com/gpuaas/gpuaas/hosts/http"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// billingStack is one API host over real Postgres stores with the ledger
// use cases, on a settable clock.
type billingStack struct {
	t     *testing.T
	db    *postgres.DB
	iss   *tokens.Issuer
	srv   *httphost.Server
	url   string
	clock *fakes.Clock
}

func newBillingStack(t *testing.T) *billingStack {
	t.Helper()
	db := services.Postgres(t)
	iss := tokens.NewIssuer(t)
	dev := tokens.NewDevOIDC(t)
	client, err := oidc.NewClient(oidc.ClientConfig{Issuer: dev.Issuer(), ClientID: dev.ClientID(), HTTPClient: dev.Server.Client()})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: iss.URL(), Audience: iss.Audience(),
		StaticKeys: append([]crypto.PublicKey{}, iss.PublicKeys()...)})
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
	// The clock is the wall clock's now, settable: usage of open records
	// and the refund window are judged by it.
	clock := fakes.NewClock(time.Now().UTC().Truncate(time.Second))
	ids, auditLog := system.UUIDs{}, postgres.NewAuditLog(db)
	idsvc, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Audit: auditLog,
		Outbox: outbox, Clock: clock, IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	lsvc, err := ledgersvc.New(ledgersvc.Deps{Tx: db, Ledger: postgres.NewLedgerStore(db), Entries: postgres.NewLedgerStore(db),
		Usage: postgres.NewUsageStore(db), Policies: policies, Audit: auditLog, Clock: clock, IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httphost.New(httphost.Config{Addr: "127.0.0.1:0", AllowedRedirectURIs: []string{dev.RedirectURI}},
		httphost.Deps{Identity: idsvc, Verifier: verifier, IdP: client, Tokens: inproc.NewTokenStore(clock),
			RateLimiter: inproc.NewRateLimiter(clock), Policies: policies, Audit: auditLog,
			Idempotency: postgres.NewIdempotencyStore(db, clock), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
			Clock: clock, Ledger: lsvc})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.ContractChecked(t))
	t.Cleanup(ts.Close)
	return &billingStack{t: t, db: db, iss: iss, srv: srv, url: ts.URL, clock: clock}
}

func (b *billingStack) token(sub string, admin bool) string {
	claims := []tokens.Claim{tokens.Subject(sub), tokens.Email(sub + "@example.com"), tokens.Name(sub)}
	if admin {
		claims = append(claims, tokens.Roles("admin"))
	}
	return b.iss.Mint(b.t, claims...)
}

type billingResp struct {
	status int
	header http.Header
	body   []byte
}

func (r billingResp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode (status %d): %v: %s", r.status, err, r.body)
	}
}

// errCode returns error.code and error.field of an error body.
func (r billingResp) errCode(t *testing.T) (string, string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Field string }
	}
	r.decode(t, &e)
	return e.Error.Code, e.Error.Field
}

// do calls the host; hdr are name/value pairs.
func (b *billingStack) do(method, path, bearer, body string, hdr ...string) billingResp {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequestWithContext(context.Background(), method, b.url+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return billingResp{status: resp.StatusCode, header: resp.Header, body: out}
}

type billingUser struct {
	token, tenantID, projectID, userID string
}

// user signs a subject in: the first call creates its tenant and project.
func (b *billingStack) user(sub string) billingUser {
	b.t.Helper()
	u := billingUser{token: b.token(sub, false)}
	r := b.do("GET", "/api/v1/users/me", u.token, "")
	var me struct {
		User     struct{ ID string }
		Tenant   struct{ ID string }
		Projects []struct{ ID string }
	}
	r.decode(b.t, &me)
	if r.status != 200 || len(me.Projects) != 1 {
		b.t.Fatalf("users/me: %d %s", r.status, r.body)
	}
	u.tenantID, u.projectID, u.userID = me.Tenant.ID, me.Projects[0].ID, me.User.ID
	return u
}

// post puts an entry straight in the ledger (what payments and the
// billing worker do).
func (b *billingStack) post(tenantID string, typ ledger.EntryType, amount int64, at time.Time) ledger.Entry {
	b.t.Helper()
	e := ledger.Entry{ID: system.UUIDs{}.NewID(), TenantID: tenantID, Type: typ, AmountMinor: amount, Currency: "usd",
		IdempotencyKey: "test-" + system.UUIDs{}.NewID(), CreatedAt: at}
	if _, err := postgres.NewLedgerStore(b.db).Post(context.Background(), e); err != nil {
		b.t.Fatal(err)
	}
	return e
}

// usage seeds n usage records for u's allocations in one statement: the
// first `open` are open at price 300/h (from the clock's now minus an
// hour), the rest closed after exactly 30 minutes at 1200/h (600 minor).
func (b *billingStack) usage(u billingUser, n, open int) {
	b.t.Helper()
	start := b.clock.Now().Add(-time.Hour)
	if _, err := b.db.Pool.Exec(context.Background(), `
		WITH a AS (
			INSERT INTO allocations (id, tenant_id, project_id, user_id, sku_id, state, price_minor, currency, active_at,
				released_at, updated_at)
			SELECT gen_random_uuid(), $1, $2, $3, 'h100-80g-x1',
				CASE WHEN i <= $5 THEN 'active' ELSE 'released' END,
				CASE WHEN i <= $5 THEN 300 ELSE 1200 END, 'usd', $4::timestamptz - i * interval '1 second',
				CASE WHEN i <= $5 THEN NULL ELSE $4::timestamptz - i * interval '1 second' + interval '30 minutes' END, now()
			FROM generate_series(1, $6) AS i
			RETURNING id, state, price_minor, active_at, released_at
		)
		INSERT INTO usage_records (id, tenant_id, project_id, user_id, allocation_id, hourly_price_minor, currency,
			started_at, ended_at, billed_through, state)
		SELECT gen_random_uuid(), $1, $2, $3, a.id, a.price_minor, 'usd', a.active_at, a.released_at, a.active_at,
			CASE WHEN a.state = 'active' THEN 'open' ELSE 'closed' END
		FROM a`, u.tenantID, u.projectID, u.userID, start, open, n); err != nil {
		b.t.Fatal(err)
	}
}

// TestBillingReadRoutes: balance, ledger and usage pages of the caller's
// tenant only, with cursors that walk every row once.
func TestBillingReadRoutes(t *testing.T) {
	t.Parallel()
	b := newBillingStack(t)
	alice, bob := b.user("alice-"+services.RandomSuffix(4)), b.user("bob-"+services.RandomSuffix(4))

	// Nothing yet: zero in the platform currency, nothing burning.
	r := b.do("GET", "/api/v1/billing/balance", alice.token, "")
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"runway_hours":null`)) ||
		!bytes.Contains(r.body, []byte(`"runway_seconds":null`)) {
		t.Fatalf("empty balance: %d %s", r.status, r.body)
	}
	var bal struct {
		BalanceMinor         int64    `json:"balance_minor"`
		Currency             string   `json:"currency"`
		BurnRateMinorPerHour int64    `json:"burn_rate_minor_per_hour"`
		RunwaySeconds        *int64   `json:"runway_seconds"`
		RunwayHours          *float64 `json:"runway_hours"`
		RunwayText           string   `json:"runway_text"`
	}
	r.decode(t, &bal)
	if bal.BalanceMinor != 0 || bal.Currency != "usd" || bal.BurnRateMinorPerHour != 0 || bal.RunwayText != "" {
		t.Fatalf("empty balance: %+v", bal)
	}

	// 10,000 minor over 7 credits, two open records burning 300/h each and
	// three closed ones.
	for i := 0; i < 7; i++ {
		b.post(alice.tenantID, ledger.Credit, 1000, b.clock.Now().Add(-time.Duration(7-i)*time.Minute))
	}
	b.post(alice.tenantID, ledger.Credit, 3000, b.clock.Now())
	b.post(bob.tenantID, ledger.Credit, 42, b.clock.Now())
	b.usage(alice, 5, 2)
	b.usage(bob, 1, 1)

	r = b.do("GET", "/api/v1/billing/balance", alice.token, "")
	r.decode(t, &bal)
	// 10,000 at 600/h lasts 16 h 40 min = 60,000 s.
	if r.status != 200 || bal.BalanceMinor != 10_000 || bal.BurnRateMinorPerHour != 600 || bal.RunwaySeconds == nil ||
		*bal.RunwaySeconds != 60_000 || bal.RunwayHours == nil || *bal.RunwayHours != 16.66 ||
		bal.RunwayText != "lasts about 16 hours at the current rate" {
		t.Fatalf("balance: %d %s", r.status, r.body)
	}
	r = b.do("GET", "/api/v1/billing/balance", bob.token, "")
	r.decode(t, &bal)
	if bal.BalanceMinor != 42 || bal.BurnRateMinorPerHour != 300 || *bal.RunwaySeconds != 504 ||
		bal.RunwayText != "lasts less than an hour at the current rate" {
		t.Fatalf("bob's balance: %s", r.body)
	}

	type entry struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		AmountMinor int64  `json:"amount_minor"`
	}
	walk := func(path, token, field string, limit int) []string {
		t.Helper()
		var ids []string
		cursor := ""
		for pages := 0; ; pages++ {
			q := path + "?limit=" + strconv.Itoa(limit)
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			r := b.do("GET", q, token, "")
			if r.status != 200 {
				t.Fatalf("%s: %d %s", q, r.status, r.body)
			}
			var page map[string]json.RawMessage
			r.decode(t, &page)
			var items []entry
			if err := json.Unmarshal(page[field], &items); err != nil || len(items) > limit {
				t.Fatalf("%s: %d items (limit %d) %v", q, len(items), limit, err)
			}
			for _, it := range items {
				ids = append(ids, it.ID)
			}
			next, ok := page["next_cursor"]
			if !ok {
				return ids
			}
			if err := json.Unmarshal(next, &cursor); err != nil || pages > 10 {
				t.Fatalf("next_cursor %s %v", next, err)
			}
		}
	}
	distinct := func(ids []string) int {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return len(m)
	}
	ledgerIDs := walk("/api/v1/billing/ledger", alice.token, "entries", 3)
	if len(ledgerIDs) != 8 || distinct(ledgerIDs) != 8 {
		t.Fatalf("alice's ledger: %v; want her 8 entries once each", ledgerIDs)
	}
	if got := walk("/api/v1/billing/ledger", bob.token, "entries", 50); len(got) != 1 {
		t.Fatalf("bob's ledger: %v; want his one entry", got)
	}
	usageIDs := walk("/api/v1/billing/usage", alice.token, "usage", 2)
	if len(usageIDs) != 5 || distinct(usageIDs) != 5 {
		t.Fatalf("alice's usage: %v", usageIDs)
	}
	for _, id := range walk("/api/v1/billing/usage", bob.token, "usage", 50) {
		for _, mine := range usageIDs {
			if id == mine {
				t.Fatalf("bob sees alice's usage record %s", id)
			}
		}
	}
	// A page of usage carries the record's cost so far.
	r = b.do("GET", "/api/v1/billing/usage?limit=50", alice.token, "")
	var up struct {
		Usage []struct {
			State      string `json:"state"`
			CostMinor  int64  `json:"cost_minor"`
			Seconds    int64  `json:"seconds"`
			ProjectID  string `json:"project_id"`
			ProjectNam string `json:"project_name"`
		} `json:"usage"`
	}
	r.decode(t, &up)
	for _, u := range up.Usage {
		if u.ProjectID != alice.projectID || u.ProjectNam == "" ||
			u.State == "closed" && (u.Seconds != 1800 || u.CostMinor != 600) ||
			u.State == "open" && (u.Seconds < 3600 || u.CostMinor != u.Seconds*300/3600) {
			t.Fatalf("usage line %+v", u)
		}
	}

	// Bad paging input names its field.
	for _, c := range []struct{ path, field string }{
		{"/api/v1/billing/ledger?limit=0", "limit"},
		{"/api/v1/billing/ledger?limit=201", "limit"},
		{"/api/v1/billing/usage?limit=abc", "limit"},
		{"/api/v1/billing/ledger?cursor=not-a-cursor", "cursor"},
		{"/api/v1/billing/usage?cursor=bm9wZQ", "cursor"},
	} {
		r := b.do("GET", c.path, alice.token, "")
		code, field := r.errCode(t)
		if r.status != 400 || code != "validation_failed" || field != c.field {
			t.Errorf("%s: %d %s/%s; want 400 validation_failed/%s", c.path, r.status, code, field, c.field)
		}
	}
	// Without a token, nothing.
	for _, p := range []string{"/api/v1/billing/balance", "/api/v1/billing/ledger", "/api/v1/billing/usage", "/api/v1/billing/usage/csv"} {
		if r := b.do("GET", p, "", ""); r.status != 401 {
			t.Errorf("%s without a token: %d", p, r.status)
		}
	}
}

// TestUsageCSV: header, escaping of user text, formula guard, the
// filename, and the caller's tenant only.
func TestUsageCSV(t *testing.T) {
	t.Parallel()
	b := newBillingStack(t)
	alice, bob := b.user("alice-"+services.RandomSuffix(4)), b.user("bob-"+services.RandomSuffix(4))
	const tricky = "Team \"A\", ML\nresearch"
	if _, err := b.db.Pool.Exec(context.Background(), `UPDATE projects SET name = $2 WHERE id = $1`, alice.projectID, tricky); err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.Pool.Exec(context.Background(), `UPDATE projects SET name = '=HYPERLINK("http://evil")' WHERE id = $1`,
		bob.projectID); err != nil {
		t.Fatal(err)
	}
	b.usage(alice, 3, 1)
	b.usage(bob, 2, 0)

	r := b.do("GET", "/api/v1/billing/usage/csv", alice.token, "")
	if r.status != 200 || r.header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	wantName := `attachment; filename="usage-` + alice.tenantID + "-" + b.clock.Now().UTC().Format("2006-01-02") + `.csv"`
	if got := r.header.Get("Content-Disposition"); got != wantName {
		t.Fatalf("Content-Disposition %q; want %q", got, wantName)
	}
	// The quoted field is RFC 4180: quotes doubled, the comma and line
	// break inside quotes.
	if !bytes.Contains(r.body, []byte(`,"Team ""A"", ML`+"\n"+`research",`)) {
		t.Fatalf("project name not escaped per RFC 4180:\n%s", r.body)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") !=
		"record_id,allocation_id,project_id,project_name,user_id,state,started_at,ended_at,seconds,hourly_price_minor,cost_minor,billed_minor,currency" {
		t.Fatalf("rows %q", rows)
	}
	states := map[string]int{}
	for _, row := range rows[1:] {
		states[row[5]]++
		if row[2] != alice.projectID || row[3] != tricky || row[4] != alice.userID || row[12] != "usd" {
			t.Fatalf("row %q", row)
		}
		if row[5] == "closed" && (row[8] != "1800" || row[10] != "600" || row[7] == "") {
			t.Fatalf("closed row %q", row)
		}
		if _, err := time.Parse(time.RFC3339, row[6]); err != nil {
			t.Fatalf("started_at %q: %v", row[6], err)
		}
	}
	if states["open"] != 1 || states["closed"] != 2 {
		t.Fatalf("states %v", states)
	}
	// Bob's file holds his rows only, and his formula-like project name is
	// defused.
	r = b.do("GET", "/api/v1/billing/usage/csv", bob.token, "")
	rows, err = csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("bob's csv: %v %q", err, rows)
	}
	for _, row := range rows[1:] {
		if row[3] != `'=HYPERLINK("http://evil")` || row[2] != bob.projectID {
			t.Fatalf("bob's row %q", row)
		}
	}
	// A tenant without usage gets the header alone.
	carol := b.user("carol-" + services.RandomSuffix(4))
	r = b.do("GET", "/api/v1/billing/usage/csv", carol.token, "")
	if r.status != 200 || strings.Count(string(r.body), "\n") != 1 || !strings.HasPrefix(string(r.body), "record_id,") {
		t.Fatalf("empty export: %d %q", r.status, r.body)
	}
}

// flushRecorder records how much body had been written at each Flush.
type flushRecorder struct {
	mu      sync.Mutex
	header  http.Header
	status  int
	body    bytes.Buffer
	flushes []int
}

func (f *flushRecorder) Header() http.Header { return f.header }
func (f *flushRecorder) WriteHeader(s int)   { f.status = s }
func (f *flushRecorder) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status == 0 {
		f.status = 200
	}
	return f.body.Write(p)
}
func (f *flushRecorder) Flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushes = append(f.flushes, f.body.Len())
}

// TestUsageCSVStreams: a long history goes out in flushed pieces while the
// rows are still being read, not as one buffer at the end.
func TestUsageCSVStreams(t *testing.T) {
	t.Parallel()
	b := newBillingStack(t)
	u := b.user("dana-" + services.RandomSuffix(4))
	const n = 1000
	b.usage(u, n, 0)
	req := httptest.NewRequest("GET", "/api/v1/billing/usage/csv", nil)
	req.Header.Set("Authorization", "Bearer "+u.token)
	rec := &flushRecorder{header: http.Header{}}
	b.srv.Handler().ServeHTTP(rec, req)
	if rec.status != 200 {
		t.Fatalf("status %d: %s", rec.status, rec.body.String())
	}
	if lines := strings.Count(rec.body.String(), "\n"); lines != n+1 {
		t.Fatalf("%d lines; want %d", lines, n+1)
	}
	// One flush per 100 rows while streaming (plus the final one), each
	// carrying more than the one before: the body was on its way long
	// before the last row was read.
	if len(rec.flushes) < n/100 {
		t.Fatalf("%d flushes for %d rows: the export was buffered", len(rec.flushes), n)
	}
	for i := 1; i < len(rec.flushes)-1; i++ {
		if rec.flushes[i] <= rec.flushes[i-1] {
			t.Fatalf("flush %d carried nothing new: %v", i, rec.flushes)
		}
	}
	if first, total := rec.flushes[0], rec.body.Len(); first*5 > total {
		t.Fatalf("first flush at %d of %d bytes: not streamed", first, total)
	}
}

// TestAdminMoneyRoutes: operators credit and refund with the use case's
// codes; nobody else can.
func TestAdminMoneyRoutes(t *testing.T) {
	t.Parallel()
	b := newBillingStack(t)
	alice := b.user("alice-" + services.RandomSuffix(4))
	admin := b.token("ops-"+services.RandomSuffix(4), true)
	credits := "/api/v1/admin/tenants/" + alice.tenantID + "/credits"
	refunds := "/api/v1/admin/tenants/" + alice.tenantID + "/refunds"
	balance := func() int64 {
		t.Helper()
		var bal struct {
			BalanceMinor int64 `json:"balance_minor"`
		}
		b.do("GET", "/api/v1/billing/balance", alice.token, "").decode(t, &bal)
		return bal.BalanceMinor
	}

	body := `{"amount_minor": 5000, "currency": "USD", "reason": "goodwill after the outage"}`
	r := b.do("POST", credits, admin, body, "X-Idempotency-Key", "credit-1")
	var e struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		AmountMinor int64  `json:"amount_minor"`
		Currency    string `json:"currency"`
		Reason      string `json:"reason"`
	}
	r.decode(t, &e)
	if r.status != 201 || e.Type != "adjustment" || e.AmountMinor != 5000 || e.Currency != "usd" ||
		e.Reason != "goodwill after the outage" || e.ID == "" {
		t.Fatalf("credit: %d %s", r.status, r.body)
	}
	// The retry replays; the ledger holds one credit.
	if r := b.do("POST", credits, admin, body, "X-Idempotency-Key", "credit-1"); r.status != 201 ||
		r.header.Get("Idempotent-Replayed") != "true" || !bytes.Contains(r.body, []byte(e.ID)) {
		t.Fatalf("retry: %d %v %s", r.status, r.header, r.body)
	}
	if got := balance(); got != 5000 {
		t.Fatalf("balance %d after a credit and its retry; want 5000", got)
	}
	var audited int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = 'billing.admin_credit'
		AND tenant_id = $1`, alice.tenantID).Scan(&audited); err != nil || audited != 1 {
		t.Fatalf("%d audit rows (%v); want 1", audited, err)
	}

	cases := []struct {
		name, path, body, key string
		status                int
		code, field           string
	}{
		{"no key", credits, body, "", 400, "idempotency_key_required", "X-Idempotency-Key"},
		{"zero", credits, `{"amount_minor": 0, "currency": "usd", "reason": "x"}`, "k1", 400, "amount_out_of_range", "amount_minor"},
		{"negative", credits, `{"amount_minor": -5, "currency": "usd", "reason": "x"}`, "k2", 400, "amount_out_of_range", "amount_minor"},
		{"too much", credits, `{"amount_minor": 10000000001, "currency": "usd", "reason": "x"}`, "k3", 400, "amount_out_of_range", "amount_minor"},
		{"no reason", credits, `{"amount_minor": 5, "currency": "usd", "reason": "  "}`, "k4", 400, "validation_failed", "reason"},
		{"wrong currency", credits, `{"amount_minor": 5, "currency": "eur", "reason": "x"}`, "k5", 400, "currency_mismatch", "currency"},
		{"bad currency", credits, `{"amount_minor": 5, "currency": "dollars", "reason": "x"}`, "k6", 400, "validation_failed", "currency"},
		{"unknown field", credits, `{"amount_minor": 5, "currency": "usd", "reason": "x", "bonus": 1}`, "k7", 400, "validation_failed", "bonus"},
		{"amount as text", credits, `{"amount_minor": "5", "currency": "usd", "reason": "x"}`, "k8", 400, "validation_failed", "amount_minor"},
		{"unknown tenant", "/api/v1/admin/tenants/" + system.UUIDs{}.NewID() + "/credits",
			`{"amount_minor": 5, "currency": "usd", "reason": "x"}`, "k9", 404, "not_found", ""},
		{"refund without key", refunds, `{"amount_minor": 5, "reason": "x"}`, "", 400, "idempotency_key_required", "X-Idempotency-Key"},
		{"refund of nothing", refunds, `{"amount_minor": 5, "reason": "x"}`, "r1", 422, "refund_window_exceeded", ""},
		{"refund of an adjustment", refunds, `{"amount_minor": 5, "reason": "x", "credit_entry_id": "` + e.ID + `"}`, "r2", 422, "not_a_credit", ""},
		{"refund without reason", refunds, `{"amount_minor": 5}`, "r3", 400, "validation_failed", "reason"},
	}
	for _, c := range cases {
		hdr := []string{}
		if c.key != "" {
			hdr = []string{"X-Idempotency-Key", c.key}
		}
		r := b.do("POST", c.path, admin, c.body, hdr...)
		code, field := r.errCode(t)
		if r.status != c.status || code != c.code || field != c.field {
			t.Errorf("%s: %d %s/%s; want %d %s/%s", c.name, r.status, code, field, c.status, c.code, c.field)
		}
	}

	// Refunds of money received (credits posted by payments).
	old := b.post(alice.tenantID, ledger.Credit, 2000, b.clock.Now().Add(-31*24*time.Hour))
	recent := b.post(alice.tenantID, ledger.Credit, 3000, b.clock.Now().Add(-time.Hour))
	refund := func(key, body string) billingResp {
		return b.do("POST", refunds, admin, body, "X-Idempotency-Key", key)
	}
	r = refund("r4", `{"amount_minor": 100, "reason": "x", "credit_entry_id": "`+old.ID+`"}`)
	if code, _ := r.errCode(t); r.status != 422 || code != "refund_window_exceeded" {
		t.Fatalf("refund of an old credit: %d %s", r.status, r.body)
	}
	r = refund("r5", `{"amount_minor": 3001, "reason": "x", "credit_entry_id": "`+recent.ID+`"}`)
	if code, _ := r.errCode(t); r.status != 422 || code != "refund_exceeds_credit" {
		t.Fatalf("refund over the credit: %d %s", r.status, r.body)
	}
	r = refund("r6", `{"amount_minor": 1200, "reason": "customer asked", "credit_entry_id": "`+recent.ID+`"}`)
	var res struct {
		AmountMinor int64 `json:"amount_minor"`
		Refunds     []struct {
			Type        string `json:"type"`
			AmountMinor int64  `json:"amount_minor"`
			Reference   string `json:"reference"`
		} `json:"refunds"`
	}
	r.decode(t, &res)
	if r.status != 201 || res.AmountMinor != 1200 || len(res.Refunds) != 1 || res.Refunds[0].Type != "refund" ||
		res.Refunds[0].AmountMinor != -1200 || res.Refunds[0].Reference != recent.ID {
		t.Fatalf("refund: %d %s", r.status, r.body)
	}
	// 1,800 of the credit is left: 1,801 is too much, even without naming it.
	r = refund("r7", `{"amount_minor": 1801, "reason": "x"}`)
	if code, _ := r.errCode(t); r.status != 422 || code != "refund_exceeds_credit" {
		t.Fatalf("second refund over what is left: %d %s", r.status, r.body)
	}
	if got := balance(); got != 5000+2000+3000-1200 {
		t.Fatalf("balance %d", got)
	}

	// Not an operator: 403 on both, and nothing changes.
	for _, p := range []string{credits, refunds} {
		r := b.do("POST", p, alice.token, `{"amount_minor": 5, "currency": "usd", "reason": "x"}`, "X-Idempotency-Key", "self")
		if code, _ := r.errCode(t); r.status != 403 || code != "forbidden" {
			t.Errorf("%s as a tenant owner: %d %s", p, r.status, r.body)
		}
	}
	if got := balance(); got != 8800 {
		t.Fatalf("balance %d after refused requests; want 8800", got)
	}
}
