package allocationsvc_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/identity"
)

// TestForceReleaseForTenant: every live allocation of a depleted tenant
// that is not already releasing goes to releasing with a forced release
// request and an audit row; releasing, terminal and other tenants'
// allocations are untouched; a second call changes nothing.
func TestForceReleaseForTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	const sku = "l40s-48g-x4"
	e.addNodes(sku, 8)
	if err := e.pol.Set(ctx, "", "allocation.max_concurrent_per_user", "10", "test"); err != nil {
		t.Fatal(err)
	}
	admin := identity.Principal{User: identity.User{ID: "00000000-0000-7000-8000-0000000000ad", Role: identity.RoleAdmin}}
	m := e.newMember(100_000)
	e.addKey(m)
	other := e.newMember(100_000)
	e.addKey(other)

	create := func(mm member) allocation.Allocation {
		t.Helper()
		a, err := e.svc.Create(ctx, mm.p, mm.projectID, allocationsvc.CreateRequest{SKUID: sku})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	must := func(a allocation.Allocation, err error) allocation.Allocation {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// One allocation of the tenant in every state.
	requested := create(m)
	provisioning := must(e.svc.MarkProvisioning(ctx, create(m).ID))
	active := create(m)
	must(e.svc.MarkProvisioning(ctx, active.ID))
	must(e.svc.MarkActive(ctx, active.ID))
	releasing := create(m)
	must(e.svc.MarkProvisioning(ctx, releasing.ID))
	must(e.svc.MarkActive(ctx, releasing.ID))
	must(e.svc.Release(ctx, m.p, releasing.ID))
	relFailed := create(m)
	must(e.svc.MarkProvisioning(ctx, relFailed.ID))
	must(e.svc.MarkActive(ctx, relFailed.ID))
	must(e.svc.Release(ctx, m.p, relFailed.ID))
	must(e.svc.MarkReleaseFailed(ctx, relFailed.ID, "agent_unreachable"))
	released := create(m)
	must(e.svc.MarkProvisioning(ctx, released.ID))
	must(e.svc.MarkActive(ctx, released.ID))
	must(e.svc.ForceRelease(ctx, admin, released.ID))
	must(e.svc.MarkReleased(ctx, released.ID))
	failed := create(m)
	must(e.svc.MarkFailed(ctx, failed.ID, "provisioning_timeout"))
	// Another tenant's live allocation.
	theirs := create(other)
	must(e.svc.MarkProvisioning(ctx, theirs.ID))
	must(e.svc.MarkActive(ctx, theirs.ID))

	releaseRequests := func(id string) []allocationsvc.StatePayload {
		t.Helper()
		var out []allocationsvc.StatePayload
		for _, ev := range e.events(id) {
			if ev.Type != event.AllocationReleaseReq {
				continue
			}
			var p allocationsvc.StatePayload
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	before := map[string]int{}
	for _, a := range []allocation.Allocation{requested, provisioning, active, releasing, relFailed, released, failed, theirs} {
		before[a.ID] = len(releaseRequests(a.ID))
	}

	n, err := e.svc.ForceReleaseForTenant(ctx, m.p.TenantID, "balance_depleted")
	if err != nil || n != 4 {
		t.Fatalf("released %d (%v); want 4 (requested, provisioning, active, release_failed)", n, err)
	}
	cases := []struct {
		name    string
		id      string
		state   allocation.State
		emitted int // new release requests
	}{
		{"requested", requested.ID, allocation.Releasing, 1},
		{"provisioning", provisioning.ID, allocation.Releasing, 1},
		{"active", active.ID, allocation.Releasing, 1},
		{"release_failed", relFailed.ID, allocation.Releasing, 1},
		{"already releasing", releasing.ID, allocation.Releasing, 0},
		{"released", released.ID, allocation.Released, 0},
		{"failed", failed.ID, allocation.Failed, 0},
		{"another tenant's", theirs.ID, allocation.Active, 0},
	}
	for _, c := range cases {
		tenant := m.p.TenantID
		if c.id == theirs.ID {
			tenant = other.p.TenantID
		}
		d, err := e.svc.Get(ctx, identity.Principal{TenantID: tenant}, c.id)
		if err != nil || d.State != c.state {
			t.Errorf("%s: state %s (%v); want %s", c.name, d.State, err, c.state)
		}
		if c.name == "active" && d.ReleaseReason != allocation.ReleaseBalanceOut {
			t.Errorf("active: release reason %q; want %s", d.ReleaseReason, allocation.ReleaseBalanceOut)
		}
		reqs := releaseRequests(c.id)
		if got := len(reqs) - before[c.id]; got != c.emitted {
			t.Errorf("%s: %d new release requests; want %d", c.name, got, c.emitted)
		}
		if c.emitted == 1 && (!reqs[len(reqs)-1].Forced || reqs[len(reqs)-1].AllocationID != c.id ||
			reqs[len(reqs)-1].State != string(allocation.Releasing)) {
			t.Errorf("%s: release request %+v; want forced, releasing", c.name, reqs[len(reqs)-1])
		}
	}
	var audited int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'allocation.force_release'
		AND actor_type = 'system' AND actor_id = 'billing' AND metadata->>'reason' = 'balance_depleted'`, m.p.TenantID).Scan(&audited); err != nil ||
		audited != 4 {
		t.Fatalf("%d depletion audit rows (%v); want 4", audited, err)
	}

	// Again: nothing left to move, nothing emitted.
	if n, err := e.svc.ForceReleaseForTenant(ctx, m.p.TenantID, "balance_depleted"); err != nil || n != 0 {
		t.Fatalf("second call released %d (%v)", n, err)
	}
	for _, c := range cases {
		if got := len(releaseRequests(c.id)) - before[c.id]; got != c.emitted {
			t.Errorf("%s after the second call: %d new release requests; want still %d", c.name, got, c.emitted)
		}
	}
	if n, err := e.svc.ForceReleaseForTenant(ctx, "", "balance_depleted"); err != nil || n != 0 {
		t.Fatalf("no tenant: %d %v", n, err)
	}
}
