// Package seed creates tenancy fixtures directly in a real database for
// tests of the contexts that build on tenants: a tenant with one project
// and an owner, optionally funded.
package seed

import (
	"context"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// Member is a tenant owner and the tenant's project.
type Member struct {
	Principal identity.Principal
	ProjectID string
}

// NewMember creates a tenant, a project in it and a user who owns it (the
// principal carries TenantOwner; no membership rows are written). A positive
// credit posts that many minor units of usd to the tenant's ledger.
func NewMember(tb testing.TB, db *postgres.DB, credit int64) Member {
	tb.Helper()
	ctx := context.Background()
	ids := system.UUIDs{}
	tid, pid, uid := ids.NewID(), ids.NewID(), ids.NewID()
	sfx := services.RandomSuffix(6)
	if err := postgres.NewTenantStore(db).CreateTenant(ctx, identity.Tenant{ID: tid, Name: "t", Slug: "t-" + sfx}); err != nil {
		tb.Fatal(err)
	}
	if err := postgres.NewProjectStore(db).CreateProject(ctx, identity.Project{ID: pid, TenantID: tid, Name: "p"}); err != nil {
		tb.Fatal(err)
	}
	u, _, err := postgres.NewUserStore(db).UpsertByIdentity(ctx, identity.User{ID: uid, Issuer: "https://iss", Subject: sfx,
		Email: sfx + "@example.com"})
	if err != nil {
		tb.Fatal(err)
	}
	if credit > 0 {
		if _, err := postgres.NewLedgerStore(db).Post(ctx, ledger.Entry{TenantID: tid, Type: ledger.Credit, AmountMinor: credit,
			Currency: "usd", IdempotencyKey: "seed-" + tid}); err != nil {
			tb.Fatal(err)
		}
	}
	return Member{Principal: identity.Principal{User: u, TenantID: tid, TenantRole: identity.TenantOwner}, ProjectID: pid}
}
