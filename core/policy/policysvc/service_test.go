package policysvc_test

import (
	"context"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/core/policy/policysvc"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

func TestSetIsValidatedAndAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	clock := fakes.NewClock(time.Time{})
	policies, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	auditLog := postgres.NewAuditLog(db)
	svc, err := policysvc.New(policysvc.Deps{Tx: db, Policies: policies, Audit: auditLog, Clock: clock, IDs: &fakes.IDs{}})
	if err != nil {
		t.Fatal(err)
	}
	admin := identity.Principal{User: identity.User{ID: "0193aaaa-0000-7000-8000-000000000001", Role: identity.RoleAdmin}}
	user := identity.Principal{User: identity.User{ID: "0193aaaa-0000-7000-8000-000000000002", Role: identity.RoleUser}}

	cases := []struct {
		name       string
		p          identity.Principal
		key, value string
		kind       fault.Kind
	}{
		{"user refused", user, policy.BillingWindowSeconds.Name, "5", fault.KindForbidden},
		{"unknown key", admin, "billing.free_gpus", "1", fault.KindInvalid},
		{"bad value", admin, policy.BillingWindowSeconds.Name, "0", fault.KindInvalid},
	}
	for _, c := range cases {
		if _, err := svc.Set(ctx, c.p, c.key, c.value); !fault.IsKind(err, c.kind) {
			t.Errorf("%s: err %v; want %v", c.name, err, c.kind)
		}
	}
	if _, err := svc.Set(ctx, admin, policy.BillingWindowSeconds.Name, "5"); err != nil {
		t.Fatal(err)
	}
	vals, err := policies.Values(ctx, "")
	if err != nil || vals.Int(policy.BillingWindowSeconds) != 5 {
		t.Fatalf("value after set: %v, %v", vals.Int(policy.BillingWindowSeconds), err)
	}
	events, _, err := auditLog.List(ctx, audit.Filter{Action: "policy.set"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].ActorID != admin.User.ID || events[0].Metadata["old_value"] != "60" ||
		events[0].Metadata["new_value"] != "5" {
		t.Fatalf("audit: %+v", events)
	}

	// List: every key with its effective value, for operators only.
	if _, err := svc.List(ctx, user); !fault.IsKind(err, fault.KindForbidden) {
		t.Fatalf("List as a user: %v; want forbidden", err)
	}
	settings, err := svc.List(ctx, admin)
	if err != nil || len(settings) != len(policy.Keys()) {
		t.Fatalf("List = %d settings, %v; want %d", len(settings), err, len(policy.Keys()))
	}
	found := false
	for _, st := range settings {
		if st.Key.Name == policy.BillingWindowSeconds.Name {
			found = st.Value == "5"
		}
	}
	if !found {
		t.Fatalf("List does not show the value just set: %+v", settings)
	}
}
