package httphost

import (
	"bufio"
	"context"
	"crypto"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/admin/adminsvc"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/notification/notificationsvc"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/poll"
	"github.com/gpuaas/gpuaas/testkit/services"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

func init() {
	// The response checker reads the live stream's body as text.
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
}

// operatorStack is a host over real Postgres with the notification and
// operator use cases (and identity, ledger) wired.
type operatorStack struct {
	*harness
	db     *postgres.DB
	notify *notificationsvc.Service
}

func newOperatorStack(t *testing.T) *operatorStack {
	t.Helper()
	db := services.Postgres(t)
	iss := tokens.NewIssuer(t)
	verifier, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: iss.URL(), Audience: iss.Audience(),
		StaticKeys: append([]crypto.PublicKey(nil), iss.PublicKeys()...)})
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(outbox.Close)
	policies, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	clock, ids, auditLog := system.Clock{}, system.UUIDs{}, postgres.NewAuditLog(db)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	adminStore := postgres.NewAdminStore(db)
	idsvc, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Audit: auditLog,
		Outbox: outbox, Clock: clock, IDs: ids, Pending: adminStore})
	must(err)
	lsvc, err := ledgersvc.New(ledgersvc.Deps{Tx: db, Ledger: postgres.NewLedgerStore(db), Entries: postgres.NewLedgerStore(db),
		Usage: postgres.NewUsageStore(db), Policies: policies, Audit: auditLog, Clock: clock, IDs: ids})
	must(err)
	kms, err := keyfile.NewKMS(keyfile.KMSConfig{Path: filepath.Join(t.TempDir(), "kms.key")})
	must(err)
	store := postgres.NewNotificationStore(db, nil)
	t.Cleanup(store.Close)
	nsvc, err := notificationsvc.New(notificationsvc.Config{}, notificationsvc.Deps{Tx: db,
		Inbox: store, Feed: store, Recipients: store, Preferences: store, Mail: store, Webhooks: store, Policies: policies,
		Outbox: outbox, Audit: auditLog, KMS: kms, Projects: idsvc, Clock: clock, IDs: ids})
	must(err)
	asvc, err := adminsvc.New(adminsvc.Deps{Tx: db, Directory: adminStore, Ops: adminStore, Balances: lsvc,
		Refunds: postgres.NewLedgerStore(db), Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Tenants: postgres.NewTenantStore(db),
		Allocations: postgres.NewAllocationStore(db), Policies: policies, Overrides: policies, Audit: auditLog, Outbox: outbox,
		Clock: clock, IDs: ids})
	must(err)
	srv, err := New(Config{Addr: "127.0.0.1:0", PublicBaseURL: testOrigin, AllowedRedirectURIs: []string{testRedirect}},
		Deps{Identity: idsvc, Verifier: verifier, IdP: newStubIdP(t, iss), Tokens: inproc.NewTokenStore(clock),
			RateLimiter: allowAll{}, Policies: policies, Audit: auditLog, Idempotency: postgres.NewIdempotencyStore(db, clock),
			Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Ledger: lsvc, Notifications: nsvc, Admin: asvc})
	must(err)
	ts := httptest.NewServer(srv.ContractChecked(t))
	t.Cleanup(ts.Close)
	return &operatorStack{harness: &harness{t: t, srv: srv, ts: ts, iss: iss}, db: db, notify: nsvc}
}

// team is one tenant with an owner, a tenant admin, a member and a
// project viewer, and an operator of the platform.
type team struct {
	owner, admin, member, viewer, operator string
	project, tenant                        string
	ids                                    map[string]string // role → user id
}

func (o *operatorStack) team(t *testing.T) team {
	t.Helper()
	sfx := services.RandomSuffix(6)
	tm := team{ids: map[string]string{}}
	tm.owner = o.token("owner-" + sfx)
	me := o.me(tm.owner)
	tm.project, tm.tenant, tm.ids["owner"] = me.defaultProject(t), me.Tenant.ID, me.User.ID
	for _, c := range []struct {
		who  string
		role string
		tok  *string
	}{{"admin", "admin", &tm.admin}, {"member", "member", &tm.member}, {"viewer", "member", &tm.viewer}} {
		sub := c.who + "-" + sfx
		if r := o.do(req{method: "POST", path: "/api/v1/tenant/invitations", bearer: tm.owner,
			body: `{"email":"` + sub + `@example.com","role":"` + c.role + `"}`}); r.status != 201 {
			t.Fatalf("invite %s: %d %s", sub, r.status, r.body)
		}
		*c.tok = o.token(sub)
		tm.ids[c.who] = o.me(*c.tok).User.ID
	}
	// The viewer joined the default project as a member; make them a viewer.
	if r := o.do(req{method: "DELETE", path: "/api/v1/projects/" + tm.project + "/members/" + tm.ids["viewer"], bearer: tm.owner}); r.status != 204 {
		t.Fatalf("remove viewer: %d %s", r.status, r.body)
	}
	if r := o.do(req{method: "POST", path: "/api/v1/projects/" + tm.project + "/members", bearer: tm.owner,
		body: `{"user_id":"` + tm.ids["viewer"] + `","role":"viewer"}`}); r.status != 201 {
		t.Fatalf("add viewer: %d %s", r.status, r.body)
	}
	tm.operator = o.token("operator-"+sfx, tokens.Roles("admin"))
	tm.ids["operator"] = o.me(tm.operator).User.ID
	return tm
}

// TestOperatorRoutesAreForOperatorsOnly walks every platform_admin route of
// the contract as the owner, a tenant admin, a member and a viewer of one
// tenant: each is 403 forbidden, whatever the body or ids; the operator
// passes the authorisation step.
func TestOperatorRoutesAreForOperatorsOnly(t *testing.T) {
	t.Parallel()
	o := newOperatorStack(t)
	tm := o.team(t)
	keys := make([]string, 0, len(o.srv.routes))
	for k, rt := range o.srv.routes {
		if rt.Authz == AuthzPlatformAdmin {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) < 25 {
		t.Fatalf("only %d operator routes", len(keys))
	}
	for _, k := range keys {
		rt := o.srv.routes[k]
		path := strings.NewReplacer("{tenant_id}", tm.tenant, "{user_id}", tm.ids["member"], "{node_id}", "n",
			"{allocation_id}", "a", "{event_id}", "e", "{key}", "billing.low_balance_threshold_minor",
			"{service_account_id}", "s").Replace(rt.Pattern)
		body := ""
		if rt.op.RequestBody != nil {
			body = `{}`
		}
		for who, tok := range map[string]string{"owner": tm.owner, "tenant admin": tm.admin, "member": tm.member, "viewer": tm.viewer} {
			r := o.do(req{method: rt.Method, path: path, bearer: tok, body: body})
			if r.status != 403 || r.errBody(t).Code != "forbidden" {
				t.Errorf("%s as %s: %d %s; want 403 forbidden", k, who, r.status, r.body)
			}
		}
		if rt.op.Responses.Value("503") == nil {
			continue // a route of a service this stack does not wire (and whose contract has no 503)
		}
		if r := o.do(req{method: rt.Method, path: path, bearer: tm.operator, body: body}); r.status == 401 || r.status == 403 {
			t.Errorf("%s as the operator: %d %s", k, r.status, r.body)
		}
	}
}

// TestWebhookRoutesWithinOneTenant: project admins (the owner, a tenant
// admin) manage endpoints; a member and a viewer are 403; another tenant
// is 404 on every route.
func TestWebhookRoutesWithinOneTenant(t *testing.T) {
	t.Parallel()
	o := newOperatorStack(t)
	tm := o.team(t)
	stranger := o.token("stranger-" + services.RandomSuffix(6))
	o.me(stranger)
	base := "/api/v1/projects/" + tm.project + "/webhooks"
	create := `{"url":"https://hooks.example.com/x","event_types":["billing.low_balance_warning"],"description":"ops"}`
	r := o.do(req{method: "POST", path: base, bearer: tm.owner, body: create})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created struct {
		Endpoint struct{ ID string } `json:"endpoint"`
		Secret   string              `json:"secret"`
	}
	r.json(t, &created)
	if !strings.HasPrefix(created.Secret, "whsec_") {
		t.Fatalf("secret %q", created.Secret)
	}
	one := base + "/" + created.Endpoint.ID
	routes := []req{
		{method: "GET", path: base},
		{method: "POST", path: base, body: create},
		{method: "GET", path: one},
		{method: "PATCH", path: one, body: `{"enabled":false}`},
		{method: "POST", path: one + "/rotate-secret"},
		{method: "GET", path: one + "/deliveries"},
		{method: "DELETE", path: one},
	}
	for _, rq := range routes {
		for who, c := range map[string]struct {
			tok  string
			want int
		}{"member": {tm.member, 403}, "viewer": {tm.viewer, 403}, "another tenant": {stranger, 404}} {
			rq.bearer = c.tok
			if r := o.do(rq); r.status != c.want {
				t.Errorf("%s %s as %s: %d %s; want %d", rq.method, rq.path, who, r.status, r.body, c.want)
			}
		}
	}
	for i, rq := range routes {
		rq.bearer = tm.admin // a tenant admin administers every project
		if rq.method == "POST" && rq.path == base {
			rq.body = strings.Replace(create, "/x", "/y", 1)
		}
		if r := o.do(rq); r.status >= 300 {
			t.Errorf("%d: %s %s as tenant admin: %d %s", i, rq.method, rq.path, r.status, r.body)
		}
	}
	// Bad input.
	for _, c := range []struct{ body, code string }{
		{`{"url":"http://hooks.example.com/x","event_types":["billing.low_balance_warning"]}`, "webhook_url_refused"},
		{`{"url":"https://10.0.0.7/x","event_types":["billing.low_balance_warning"]}`, "webhook_url_refused"},
		{`{"url":"https://hooks.example.com/x","event_types":["billing.free_gpus"]}`, "validation_failed"},
		{`{"url":"https://hooks.example.com/x","event_types":[]}`, "validation_failed"},
	} {
		if r := o.do(req{method: "POST", path: base, bearer: tm.owner, body: c.body}); r.status != 400 || r.errBody(t).Code != c.code {
			t.Errorf("create %s: %d %s", c.body, r.status, r.body)
		}
	}
	if r := o.do(req{method: "GET", path: base + "/" + system.UUIDs{}.NewID(), bearer: tm.owner}); r.status != 404 {
		t.Errorf("unknown endpoint: %d", r.status)
	}
	if r := o.do(req{method: "GET", path: one + "/deliveries?cursor=nope", bearer: tm.owner}); r.status != 404 &&
		(r.status != 400 || r.errBody(t).Field != "cursor") {
		t.Errorf("bad cursor: %d %s", r.status, r.body)
	}
}

// sseEvent is one event read from a stream.
type sseEvent struct{ id, event, data string }

func readEvents(t *testing.T, body *bufio.Reader, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	for len(out) < n {
		line, err := body.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended after %d events: %v", len(out), err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if cur.event != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		}
	}
	return out
}

func (o *operatorStack) stream(t *testing.T, tok, lastEventID string) (*bufio.Reader, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := http.NewRequestWithContext(ctx, "GET", o.ts.URL+"/api/v1/notifications/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+tok)
	if lastEventID != "" {
		r.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := o.ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return bufio.NewReader(resp.Body), func() { cancel(); resp.Body.Close() }
}

func lowBalanceFor(tenant string, balance int) event.Envelope {
	body, _ := json.Marshal(map[string]any{"tenant_id": tenant, "balance_minor": balance, "currency": "usd", "threshold_minor": 1000})
	return event.Envelope{ID: system.UUIDs{}.NewID(), Type: event.LowBalanceWarning, Version: 1, OccurredAt: time.Now(),
		TenantID: tenant, Payload: body}
}

// TestNotificationsInboxAndLiveStream: an event reaches every member's
// inbox and live stream; a reconnect with Last-Event-ID gets what arrived
// meanwhile, once; marking read; a suspended user is refused.
func TestNotificationsInboxAndLiveStream(t *testing.T) {
	t.Parallel()
	o := newOperatorStack(t)
	tm := o.team(t)
	ctx := context.Background()
	body, stop := o.stream(t, tm.member, "")
	if err := o.notify.HandleEvent(ctx, lowBalanceFor(tm.tenant, 900)); err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, body, 1)
	stop()
	var n struct {
		ID    string `json:"id"`
		Kind  string `json:"kind"`
		Title string `json:"title"`
		Seq   int64  `json:"seq"`
		Link  struct{ Path, Label string }
	}
	if err := json.Unmarshal([]byte(evs[0].data), &n); err != nil || evs[0].event != "notification" || n.Kind != "low_balance" ||
		n.Link.Path != "/billing" || n.Link.Label != "Open billing" {
		t.Fatalf("event %+v (%v)", evs[0], err)
	}
	// Two more arrive while the member is away; the reconnect gets both, in order.
	for _, b := range []int{800, 700} {
		if err := o.notify.HandleEvent(ctx, lowBalanceFor(tm.tenant, b)); err != nil {
			t.Fatal(err)
		}
	}
	body, stop = o.stream(t, tm.member, evs[0].id)
	defer stop()
	more := readEvents(t, body, 2)
	if !strings.Contains(more[0].data, "8.00 USD") || !strings.Contains(more[1].data, "7.00 USD") || more[0].id <= evs[0].id {
		t.Fatalf("resumed %+v", more)
	}
	// The inbox: three unread; mark one, then all.
	r := o.do(req{method: "GET", path: "/api/v1/notifications?unread=true", bearer: tm.member})
	var page struct {
		Notifications []struct{ ID string } `json:"notifications"`
		Unread        int                   `json:"unread"`
	}
	r.json(t, &page)
	if r.status != 200 || page.Unread != 3 || len(page.Notifications) != 3 {
		t.Fatalf("inbox: %d %s", r.status, r.body)
	}
	if r := o.do(req{method: "POST", path: "/api/v1/notifications/read", bearer: tm.member,
		body: `{"ids":["` + page.Notifications[0].ID + `"]}`}); r.status != 200 || !strings.Contains(string(r.body), `"marked":1`) {
		t.Fatalf("mark one: %d %s", r.status, r.body)
	}
	// Another user's id changes nothing.
	if r := o.do(req{method: "POST", path: "/api/v1/notifications/read", bearer: tm.viewer,
		body: `{"ids":["` + page.Notifications[1].ID + `"]}`}); !strings.Contains(string(r.body), `"marked":0`) {
		t.Fatalf("mark someone else's: %d %s", r.status, r.body)
	}
	if r := o.do(req{method: "POST", path: "/api/v1/notifications/read", bearer: tm.member, body: `{"all":true}`}); !strings.Contains(string(r.body), `"marked":2`) {
		t.Fatalf("mark all: %d %s", r.status, r.body)
	}
	for _, c := range []struct{ rq req }{
		{req{method: "GET", path: "/api/v1/notifications?limit=0"}},
		{req{method: "GET", path: "/api/v1/notifications?cursor=%21%21"}},
		{req{method: "POST", path: "/api/v1/notifications/read", body: `{}`}},
		{req{method: "PUT", path: "/api/v1/notifications/preferences", body: `{"email":{"free_gpus":false}}`}},
		{req{method: "GET", path: "/api/v1/notifications/stream?last_event_id=abc"}},
	} {
		c.rq.bearer = tm.member
		if r := o.do(c.rq); r.status != 400 {
			t.Errorf("%s %s: %d %s; want 400", c.rq.method, c.rq.path, r.status, r.body)
		}
	}
	if r := o.do(req{method: "PUT", path: "/api/v1/notifications/preferences", bearer: tm.member,
		body: `{"email":{"low_balance":false}}`}); r.status != 200 {
		t.Fatalf("preferences: %d %s", r.status, r.body)
	}
	if r := o.do(req{method: "GET", path: "/api/v1/notifications/preferences", bearer: tm.member}); !strings.Contains(string(r.body), `"low_balance":false`) {
		t.Fatalf("preferences read back: %s", r.body)
	}
	// Suspension: the next request is refused.
	if r := o.do(req{method: "POST", path: "/api/v1/admin/users/" + tm.ids["member"] + "/suspend", bearer: tm.operator}); r.status != 200 {
		t.Fatalf("suspend: %d %s", r.status, r.body)
	}
	if r := o.do(req{method: "GET", path: "/api/v1/notifications", bearer: tm.member}); r.status != 403 {
		t.Fatalf("a suspended user's request: %d %s", r.status, r.body)
	}
}

// TestOperatorFlows: users and tenants found, created, suspended; policy
// overrides; the audit CSV; the ops view and an event retried.
func TestOperatorFlows(t *testing.T) {
	t.Parallel()
	o := newOperatorStack(t)
	tm := o.team(t)
	op := tm.operator
	r := o.do(req{method: "GET", path: "/api/v1/admin/users?tenant_id=" + tm.tenant, bearer: op})
	if r.status != 200 || strings.Count(string(r.body), `"tenant_id":"`+tm.tenant+`"`) != 4 {
		t.Fatalf("users of the tenant: %d %s", r.status, r.body)
	}
	email := "newcomer-" + services.RandomSuffix(6) + "@example.com"
	r = o.do(req{method: "POST", path: "/api/v1/admin/users", bearer: op,
		body: `{"email":"` + email + `","tenant_id":"` + tm.tenant + `","role":"member"}`})
	if r.status != 201 || !strings.Contains(string(r.body), `"pending":true`) {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		rq         req
		status     int
		code, fiel string
	}{
		{req{method: "POST", path: "/api/v1/admin/users", body: `{"email":"` + email + `","tenant_id":"` + tm.tenant + `","role":"member"}`}, 409, "email_taken", ""},
		{req{method: "POST", path: "/api/v1/admin/users", body: `{"email":"x@example.com"}`}, 400, "validation_failed", "tenant_id"},
		{req{method: "POST", path: "/api/v1/admin/users", body: `{"email":"x@example.com","tenant_id":"` + system.UUIDs{}.NewID() + `","role":"member"}`}, 404, "not_found", ""},
		{req{method: "GET", path: "/api/v1/admin/users?cursor=bogus"}, 400, "validation_failed", "cursor"},
		{req{method: "GET", path: "/api/v1/admin/users?status=gone"}, 400, "validation_failed", "status"},
		{req{method: "GET", path: "/api/v1/admin/tenants?limit=500"}, 400, "validation_failed", "limit"},
		{req{method: "GET", path: "/api/v1/admin/users/" + system.UUIDs{}.NewID()}, 404, "not_found", ""},
		{req{method: "GET", path: "/api/v1/admin/tenants/" + system.UUIDs{}.NewID()}, 404, "not_found", ""},
		{req{method: "POST", path: "/api/v1/admin/users/" + tm.ids["operator"] + "/suspend"}, 409, "cannot_suspend_self", ""},
		{req{method: "PUT", path: "/api/v1/admin/tenants/" + tm.tenant + "/policies", body: `{"key":"billing.window_seconds","value":"5"}`}, 400, "policy_not_tenant_scoped", "key"},
		{req{method: "GET", path: "/api/v1/admin/audit-log?cursor=bogus"}, 400, "validation_failed", "cursor"},
		{req{method: "GET", path: "/api/v1/admin/audit-log/export?since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z"}, 400, "validation_failed", "until"},
		{req{method: "GET", path: "/api/v1/admin/ops?stuck_after_minutes=0"}, 400, "validation_failed", "stuck_after_minutes"},
		{req{method: "POST", path: "/api/v1/admin/events/" + system.UUIDs{}.NewID() + "/retry"}, 404, "not_found", ""},
	} {
		c.rq.bearer = op
		r := o.do(c.rq)
		if r.status != c.status || r.errBody(t).Code != c.code || (c.fiel != "" && r.errBody(t).Field != c.fiel) {
			t.Errorf("%s %s: %d %s; want %d %s %s", c.rq.method, c.rq.path, r.status, r.body, c.status, c.code, c.fiel)
		}
	}
	r = o.do(req{method: "GET", path: "/api/v1/admin/tenants/" + tm.tenant, bearer: op})
	if r.status != 200 || strings.Count(string(r.body), `"role":"member"`) < 2 || !strings.Contains(string(r.body), `"balance":{`) {
		t.Fatalf("tenant: %d %s", r.status, r.body)
	}
	r = o.do(req{method: "PUT", path: "/api/v1/admin/tenants/" + tm.tenant + "/policies", bearer: op,
		body: `{"key":"notification.low_balance.enabled","value":"false"}`})
	if r.status != 200 || !strings.Contains(string(r.body), `"overridden":true`) {
		t.Fatalf("override: %d %s", r.status, r.body)
	}
	r = o.do(req{method: "DELETE", path: "/api/v1/admin/tenants/" + tm.tenant + "/policies/notification.low_balance.enabled", bearer: op})
	if r.status != 200 || !strings.Contains(string(r.body), `"overridden":false`) || !strings.Contains(string(r.body), `"value":"true"`) {
		t.Fatalf("reset: %d %s", r.status, r.body)
	}
	// The audit log by target, then as CSV, with a formula neutralised.
	if err := postgres.NewAuditLog(o.db).Record(context.Background(), audit.Event{ID: system.UUIDs{}.NewID(), ActorType: audit.ActorUser,
		ActorID: "=cmd|' /C calc'!A0", TenantID: tm.tenant, Action: "test.formula", ResourceType: "tenant", ResourceID: tm.tenant,
		Outcome: audit.Success}); err != nil {
		t.Fatal(err)
	}
	r = o.do(req{method: "GET", path: "/api/v1/admin/audit-log?resource_type=tenant&resource_id=" + tm.tenant, bearer: op})
	if r.status != 200 || !strings.Contains(string(r.body), "policy.tenant_set") || !strings.Contains(string(r.body), "test.formula") {
		t.Fatalf("audit by target: %d %s", r.status, r.body)
	}
	r = o.do(req{method: "GET", path: "/api/v1/admin/audit-log/export?tenant_id=" + tm.tenant, bearer: op})
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(r.header.Get("Content-Disposition"), "audit-") {
		t.Fatalf("export: %d %v", r.status, r.header)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil || len(rows) < 4 || rows[0][0] != "id" {
		t.Fatalf("csv: %v %v", rows, err)
	}
	guarded := false
	for _, row := range rows {
		if row[6] == "test.formula" {
			guarded = row[3] == "'=cmd|' /C calc'!A0"
		}
	}
	if !guarded {
		t.Fatalf("the formula was not neutralised: %v", rows)
	}
	// Ops: a failed event, degraded, retried.
	id := system.UUIDs{}.NewID()
	if _, err := o.db.Pool.Exec(context.Background(), `INSERT INTO platform_outbox_events (id, subject, envelope, status, retry_count, last_error)
		VALUES ($1::uuid, 'billing.low_balance_warning', jsonb_build_object('id', $2::text), 'failed', 10, 'nats: timeout')`, id, id); err != nil {
		t.Fatal(err)
	}
	r = o.do(req{method: "GET", path: "/api/v1/admin/ops", bearer: op})
	if r.status != 200 || !strings.Contains(string(r.body), `"runbook":"failed-events"`) || !strings.Contains(string(r.body), id) {
		t.Fatalf("ops: %d %s", r.status, r.body)
	}
	r = o.do(req{method: "GET", path: "/api/v1/admin/runbooks", bearer: op})
	if r.status != 200 || !strings.Contains(string(r.body), "doc/runbook.md#events-that-did-not-go-out") {
		t.Fatalf("runbooks: %d %s", r.status, r.body)
	}
	r = o.do(req{method: "POST", path: "/api/v1/admin/events/" + id + "/retry", bearer: op})
	if r.status != 200 || !strings.Contains(string(r.body), `"retry_count":10`) {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	poll.Until(t, 5*time.Second, "the event to be pending", func() bool {
		var st string
		_ = o.db.Pool.QueryRow(context.Background(), `SELECT status FROM platform_outbox_events WHERE id = $1`, id).Scan(&st)
		return st == "pending"
	})
	_ = fakes.NewClock
}
