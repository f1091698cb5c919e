package postgres_test

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
)

func newTestID() string { return uuid.Must(uuid.NewV7()).String() }

func newTestTenant() identity.Tenant {
	id := newTestID()
	return identity.Tenant{ID: id, Name: "Tenant " + id[:8], Slug: "t-" + id, CreatedAt: time.Now().Truncate(time.Microsecond)}
}

func newTestUser() identity.User {
	sub := newTestID()
	now := time.Now().Truncate(time.Microsecond)
	return identity.User{ID: newTestID(), Issuer: "https://issuer.test", Subject: sub, Email: sub + "@example.com",
		Role: identity.RoleUser, Status: identity.UserActive, CreatedAt: now, UpdatedAt: now}
}

// auditFixture records events for two tenants at known times (in a zone of
// its own, to prove the round trip is zone-independent) and returns the
// first tenant's ids newest first.
func auditFixture(t *testing.T, log *postgres.AuditLog, db *postgres.DB) (tenantA, tenantB string, t0 time.Time, newestFirst, inserted []string) {
	t.Helper()
	ctx := context.Background()
	tenants := postgres.NewTenantStore(db)
	a, b := newTestTenant(), newTestTenant()
	for _, tn := range []identity.Tenant{a, b} {
		if err := tenants.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	zone := time.FixedZone("UTC-7", -7*3600)
	t0 = time.Date(2026, 1, 1, 23, 30, 0, 0, zone) // a different calendar day in UTC and in Kolkata
	// Six events for A; the 3rd and 4th share a timestamp so the id decides.
	offsets := []time.Duration{0, time.Minute, 2 * time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute}
	ids := make([]string, len(offsets))
	for i, off := range offsets {
		ids[i] = newTestID()
		action := "project.create"
		if i%2 == 1 {
			action = "project.member_add"
		}
		e := audit.Event{ID: ids[i], OccurredAt: t0.Add(off), ActorType: audit.ActorUser, ActorID: "actor-" + string(rune('a'+i%3)),
			TenantID: a.ID, Action: action, ResourceType: "project", ResourceID: "core42:aicloud::" + a.ID + "::project:" + ids[i],
			Outcome: audit.Success, CorrelationID: "corr-" + ids[i], SourceIP: "192.0.2.1",
			Metadata: map[string]any{"i": i, "note": "n"}}
		if err := log.Record(ctx, e); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	if err := log.Record(ctx, audit.Event{ID: newTestID(), OccurredAt: t0, ActorType: audit.ActorSystem,
		TenantID: b.ID, Action: "project.create", Outcome: audit.Denied}); err != nil {
		t.Fatal(err)
	}
	// Newest first; at equal times the larger id first (UUIDv7 ids grow).
	newestFirst = []string{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}
	if ids[3] < ids[2] {
		newestFirst[2], newestFirst[3] = ids[2], ids[3]
	}
	return a.ID, b.ID, t0, newestFirst, ids
}

func eventIDs(es []audit.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func equalIDs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAuditListFiltersAndOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	log := postgres.NewAuditLog(db)
	a, b, t0, all, ids := auditFixture(t, log, db)
	for _, tc := range []struct {
		name string
		f    audit.Filter
		want []string
	}{
		{"tenant", audit.Filter{TenantID: a}, all},
		{"action", audit.Filter{TenantID: a, Action: "project.member_add"}, filterIDs(all, ids[1], ids[3], ids[5])},
		{"actor", audit.Filter{TenantID: a, ActorID: "actor-a"}, filterIDs(all, ids[0], ids[3])},
		{"since inclusive", audit.Filter{TenantID: a, Since: t0.Add(3 * time.Minute)}, all[:2]},
		{"until exclusive", audit.Filter{TenantID: a, Until: t0.Add(time.Minute)}, all[5:]},
		{"window in UTC", audit.Filter{TenantID: a, Since: t0.Add(time.Minute).UTC(), Until: t0.Add(3 * time.Minute).UTC()}, all[2:5]},
		{"malformed tenant", audit.Filter{TenantID: "nope"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, next, err := log.List(ctx, tc.f)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if next != "" {
				t.Fatalf("next cursor %q on a single page", next)
			}
			if !equalIDs(eventIDs(got), tc.want) {
				t.Fatalf("List = %v; want %v", eventIDs(got), tc.want)
			}
		})
	}
	got, _, _ := log.List(ctx, audit.Filter{TenantID: b})
	if len(got) != 1 || got[0].Outcome != audit.Denied || got[0].ActorType != audit.ActorSystem || got[0].ProjectID != "" {
		t.Fatalf("tenant B events = %+v", got)
	}
}

// filterIDs keeps the ids of all that are in keep, in all's order.
func filterIDs(all []string, keep ...string) []string {
	k := map[string]bool{}
	for _, id := range keep {
		k[id] = true
	}
	out := []string{}
	for _, id := range all {
		if k[id] {
			out = append(out, id)
		}
	}
	return out
}

func TestAuditRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	log := postgres.NewAuditLog(db)
	a, _, t0, all, _ := auditFixture(t, log, db)
	got, _, err := log.List(ctx, audit.Filter{TenantID: a, Limit: 6})
	if err != nil {
		t.Fatal(err)
	}
	oldest := got[len(got)-1]
	if oldest.ID != all[5] || !oldest.OccurredAt.Equal(t0) || oldest.TenantID != a || oldest.Action != "project.create" ||
		oldest.CorrelationID != "corr-"+oldest.ID || oldest.SourceIP != "192.0.2.1" || oldest.Outcome != audit.Success ||
		oldest.ResourceType != "project" || oldest.ActorID != "actor-a" {
		t.Fatalf("round trip = %+v", oldest)
	}
	if oldest.Metadata["i"] != float64(0) || oldest.Metadata["note"] != "n" {
		t.Fatalf("metadata = %#v", oldest.Metadata)
	}
}

func TestAuditPagination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	log := postgres.NewAuditLog(db)
	a, _, _, all, _ := auditFixture(t, log, db)
	for _, limit := range []int{1, 2, 4, 5} {
		var seen []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > len(all) {
				t.Fatalf("limit %d: pagination does not end", limit)
			}
			page, next, err := log.List(ctx, audit.Filter{TenantID: a, Limit: limit, Cursor: cursor})
			if err != nil {
				t.Fatalf("limit %d: %v", limit, err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			seen = append(seen, eventIDs(page)...)
			if next == "" {
				break
			}
			cursor = next
		}
		if !equalIDs(seen, all) {
			t.Fatalf("limit %d: pages gave %v; want %v", limit, seen, all)
		}
	}
	// A page that ends exactly at the last row says so.
	page, next, err := log.List(ctx, audit.Filter{TenantID: a, Limit: len(all)})
	if err != nil || len(page) != len(all) || next != "" {
		t.Fatalf("full page: %d events, next %q, err %v; want all and no cursor", len(page), next, err)
	}
}

func TestAuditBadCursor(t *testing.T) {
	t.Parallel()
	db := openDB(t, "")
	log := postgres.NewAuditLog(db)
	enc := base64.RawURLEncoding.EncodeToString
	for _, c := range []string{"%%%", enc([]byte("not json")), enc([]byte(`{"t":1,"id":"nope"}`)), enc([]byte(`[]`))} {
		_, _, err := log.List(context.Background(), audit.Filter{Cursor: c})
		if fe := fault.From(err); err == nil || fe.Kind != fault.KindInvalid || fe.Field != "cursor" {
			t.Errorf("cursor %q: %v; want Invalid cursor", c, err)
		}
	}
}

func TestAuditIsAppendOnlyAndTransactional(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, "")
	log := postgres.NewAuditLog(db)
	kept := audit.Event{ID: newTestID(), ActorType: audit.ActorSystem, Action: "x.kept", Outcome: audit.Success}
	if err := log.Record(ctx, kept); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`UPDATE audit_log SET action = 'tampered'`, `DELETE FROM audit_log`} {
		if _, err := db.Pool.Exec(ctx, stmt); err == nil {
			t.Fatalf("%s succeeded on the append-only log", stmt)
		}
	}
	boom := errors.New("boom")
	err := db.InTx(ctx, func(ctx context.Context) error {
		if err := log.Record(ctx, audit.Event{ID: newTestID(), ActorType: audit.ActorSystem, Action: "x.rolled_back", Outcome: audit.Success}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	got, _, err := log.List(ctx, audit.Filter{})
	if err != nil || len(got) != 1 || got[0].ID != kept.ID || got[0].OccurredAt.IsZero() {
		t.Fatalf("log = %+v, %v; want only the kept event, stamped by now()", got, err)
	}
}

func TestAuditFilterByTargetAndExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	log := postgres.NewAuditLog(db)
	tn := newTestTenant()
	if err := postgres.NewTenantStore(db).CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	target := newTestID()
	canonical := "core42:aicloud::" + tn.ID + "::allocation:" + target
	for i, e := range []audit.Event{
		{ResourceType: "allocation", ResourceID: canonical},
		{ResourceType: "allocation", ResourceID: "core42:aicloud::" + tn.ID + "::allocation:" + newTestID()},
		{ResourceType: "node", ResourceID: target + "x"},
		{ResourceType: "policy", ResourceID: "billing.window_seconds"},
	} {
		e.ID, e.ActorType, e.Action, e.Outcome, e.TenantID = newTestID(), audit.ActorUser, "a.b", audit.Success, tn.ID
		e.OccurredAt = time.Date(2026, 3, 1, 10, i, 0, 0, time.UTC)
		if err := log.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		f    audit.Filter
		want int
	}{
		{audit.Filter{TenantID: tn.ID, ResourceType: "allocation"}, 2},
		{audit.Filter{TenantID: tn.ID, ResourceID: canonical}, 1},
		{audit.Filter{TenantID: tn.ID, ResourceID: target}, 1}, // the bare id: not the node whose id merely starts with it
		{audit.Filter{TenantID: tn.ID, ResourceID: "%"}, 0},    // no wildcards
		{audit.Filter{TenantID: tn.ID, ResourceID: "billing.window_seconds"}, 1},
	} {
		got, _, err := log.List(ctx, c.f)
		if err != nil || len(got) != c.want {
			t.Errorf("List(%+v) = %d, %v; want %d", c.f, len(got), err, c.want)
		}
		n := 0
		if err := log.Each(ctx, c.f, func(audit.Event) error { n++; return nil }); err != nil || n != c.want {
			t.Errorf("Each(%+v) = %d, %v; want %d", c.f, n, err, c.want)
		}
	}
	// Each streams newest first and stops at fn's error.
	var order []time.Time
	stop := errors.New("stop")
	err := log.Each(ctx, audit.Filter{TenantID: tn.ID}, func(e audit.Event) error {
		order = append(order, e.OccurredAt)
		if len(order) == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || len(order) != 2 || !order[0].After(order[1]) {
		t.Fatalf("Each: %v, %v", order, err)
	}
}
