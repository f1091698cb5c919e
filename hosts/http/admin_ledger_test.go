package httphost

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// ledgerPageJSON is one page of GET …/ledger.
type ledgerPageJSON struct {
	Entries []struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		AmountMinor int64  `json:"amount_minor"`
		Reference   string `json:"reference"`
		// Refundable is on credits in the operators' view only.
		Refundable *int64 `json:"refundable_minor"`
	} `json:"entries"`
	NextCursor *string `json:"next_cursor"`
}

// TestAdminTenantLedger: an operator pages another tenant's ledger with the
// page, limits and cursors of the tenant's own (the same entries in the same
// order, none of another tenant's); every member of the tenant is refused;
// bad paging input names its field; an unknown tenant is 404; reads are not
// audited.
func TestAdminTenantLedger(t *testing.T) {
	t.Parallel()
	o := newOperatorStack(t)
	tm := o.team(t)
	other := o.me(o.token("other-" + services.RandomSuffix(6))).Tenant.ID
	empty := o.me(o.token("empty-" + services.RandomSuffix(6))).Tenant.ID

	store := postgres.NewLedgerStore(o.db)
	post := func(tenantID string, typ ledger.EntryType, amount int64, at time.Time, ref string) string {
		t.Helper()
		id := system.UUIDs{}.NewID()
		if _, err := store.Post(context.Background(), ledger.Entry{ID: id, TenantID: tenantID, Type: typ, AmountMinor: amount,
			Currency: "usd", IdempotencyKey: "test-" + id, Reference: ref, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	now := time.Now().UTC().Truncate(time.Second)
	credit := post(tm.tenant, ledger.Credit, 5000, now.Add(-10*time.Minute), "cs_test")
	for i := 0; i < 5; i++ {
		post(tm.tenant, ledger.UsageDebit, -100, now.Add(-time.Duration(9-i)*time.Minute), "")
	}
	refund := post(tm.tenant, ledger.Refund, -700, now.Add(-time.Minute), credit)
	post(other, ledger.Credit, 42, now, "")

	// walk pages path with limit and returns the ids in order.
	walk := func(path, tok string, limit int) []string {
		t.Helper()
		var ids []string
		cursor := ""
		for pages := 0; ; pages++ {
			q := path + "?limit=" + strconv.Itoa(limit)
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			r := o.do(req{method: "GET", path: q, bearer: tok})
			if r.status != 200 {
				t.Fatalf("%s: %d %s", q, r.status, r.body)
			}
			var pg ledgerPageJSON
			r.json(t, &pg)
			if len(pg.Entries) > limit || pages > 10 {
				t.Fatalf("%s: %d entries on page %d (limit %d)", q, len(pg.Entries), pages, limit)
			}
			for _, e := range pg.Entries {
				ids = append(ids, e.ID)
			}
			if pg.NextCursor == nil {
				return ids
			}
			cursor = *pg.NextCursor
		}
	}
	path := "/api/v1/admin/tenants/" + tm.tenant + "/ledger"
	got := walk(path, tm.operator, 3)
	own := walk("/api/v1/billing/ledger", tm.owner, 3)
	if len(got) != 7 || strings.Join(got, ",") != strings.Join(own, ",") {
		t.Fatalf("the operator's walk %v; the owner's %v; want the tenant's 7 entries, in the same order", got, own)
	}
	if got[0] != refund || got[6] != credit {
		t.Fatalf("order %v; want newest (the refund) first, the credit last", got)
	}
	// One page holds what a refund needs: the credit's id and type, and the
	// refund's reference to it.
	var pg ledgerPageJSON
	r := o.do(req{method: "GET", path: path, bearer: tm.operator})
	r.json(t, &pg)
	if r.status != 200 || len(pg.Entries) != 7 || pg.NextCursor != nil || pg.Entries[0].Type != "refund" ||
		pg.Entries[0].Reference != credit || pg.Entries[6].Type != "credit" || pg.Entries[6].AmountMinor != 5000 {
		t.Fatalf("default page: %d %s", r.status, r.body)
	}
	// On the credit (and only there) what is left to refund of it; the
	// tenant's own ledger does not say.
	for i, e := range pg.Entries {
		if want := i == 6; (e.Refundable != nil) != want || (want && *e.Refundable != 5000-700) {
			t.Fatalf("entry %d (%s): refundable_minor %v; want 4300 on the credit only", i, e.Type, e.Refundable)
		}
	}
	r = o.do(req{method: "GET", path: "/api/v1/billing/ledger", bearer: tm.owner})
	if r.status != 200 || strings.Contains(string(r.body), "refundable_minor") {
		t.Fatalf("the tenant's own ledger: %d %s", r.status, r.body)
	}
	// A tenant without entries: an empty page, no cursor.
	r = o.do(req{method: "GET", path: "/api/v1/admin/tenants/" + empty + "/ledger", bearer: tm.operator})
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"entries":[]}` {
		t.Fatalf("empty tenant: %d %s", r.status, r.body)
	}

	// Refusals: everyone in the tenant, its owner included, is 403; no token is 401.
	for who, tok := range map[string]string{"owner": tm.owner, "tenant admin": tm.admin, "member": tm.member, "viewer": tm.viewer} {
		r := o.do(req{method: "GET", path: path, bearer: tok})
		if r.status != 403 || r.errBody(t).Code != "forbidden" {
			t.Errorf("as the %s: %d %s; want 403 forbidden", who, r.status, r.body)
		}
	}
	if r := o.do(req{method: "GET", path: path}); r.status != 401 {
		t.Errorf("without a token: %d %s", r.status, r.body)
	}

	// Bad input, as the operator.
	for _, c := range []struct {
		path        string
		status      int
		code, field string
	}{
		{path + "?limit=0", 400, "validation_failed", "limit"},
		{path + "?limit=201", 400, "validation_failed", "limit"},
		{path + "?limit=abc", 400, "validation_failed", "limit"},
		{path + "?cursor=not-a-cursor", 400, "validation_failed", "cursor"},
		{path + "?cursor=bm9wZQ", 400, "validation_failed", "cursor"},
		{"/api/v1/admin/tenants/" + system.UUIDs{}.NewID() + "/ledger", 404, "not_found", ""},
		{"/api/v1/admin/tenants/not-a-tenant/ledger", 404, "not_found", ""},
	} {
		r := o.do(req{method: "GET", path: c.path, bearer: tm.operator})
		if r.status != c.status || r.errBody(t).Code != c.code || r.errBody(t).Field != c.field {
			t.Errorf("%s: %d %s; want %d %s/%s", c.path, r.status, r.body, c.status, c.code, c.field)
		}
	}

	// Reads leave no audit trail, like the other operator reads.
	var audited int
	if err := o.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE tenant_id = $1
		AND actor_id = $2`, tm.tenant, tm.ids["operator"]).Scan(&audited); err != nil || audited != 0 {
		t.Fatalf("%d audit rows for the operator's reads (%v); want 0", audited, err)
	}
}
