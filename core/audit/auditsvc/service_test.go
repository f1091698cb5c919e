package auditsvc_test

import (
	"context"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/audit/auditsvc"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/ports"
)

// filterLog records the filter it was asked for.
type filterLog struct {
	ports.AuditLog
	got *audit.Filter
}

func (l filterLog) List(_ context.Context, f audit.Filter) ([]audit.Event, string, error) {
	*l.got = f
	return []audit.Event{{ID: "e1"}}, "next", nil
}

func TestList(t *testing.T) {
	t.Parallel()
	var got audit.Filter
	svc, err := auditsvc.New(filterLog{got: &got})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := identity.Principal{User: identity.User{ID: "a", Role: identity.RoleAdmin}}
	user := identity.Principal{User: identity.User{ID: "u", Role: identity.RoleUser}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	evs, next, err := svc.List(ctx, admin, audit.Filter{Action: "project.create"})
	if err != nil || len(evs) != 1 || next != "next" || got.Limit != auditsvc.DefaultLimit || got.Action != "project.create" {
		t.Fatalf("List = %v %q %v, filter %+v", evs, next, err, got)
	}
	for _, c := range []struct {
		name  string
		p     identity.Principal
		f     audit.Filter
		kind  fault.Kind
		field string
	}{
		{"not an operator", user, audit.Filter{}, fault.KindForbidden, ""},
		{"limit over the maximum", admin, audit.Filter{Limit: auditsvc.MaxLimit + 1}, fault.KindInvalid, "limit"},
		{"negative limit", admin, audit.Filter{Limit: -1}, fault.KindInvalid, "limit"},
		{"until not after since", admin, audit.Filter{Since: t0, Until: t0}, fault.KindInvalid, "until"},
		{"control characters in a filter", admin, audit.Filter{Action: "x\x1by"}, fault.KindInvalid, "action"},
	} {
		got = audit.Filter{}
		_, _, err := svc.List(ctx, c.p, c.f)
		if fe := fault.From(err); err == nil || fe.Kind != c.kind || fe.Field != c.field {
			t.Errorf("%s: %v; want %s on %q", c.name, err, c.kind, c.field)
		}
		if got != (audit.Filter{}) {
			t.Errorf("%s: the log was read (%+v)", c.name, got)
		}
	}
}
