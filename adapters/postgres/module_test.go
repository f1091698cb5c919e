package postgres_test

import (
	"context"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// provided is everything the module promises to provide.
type provided struct {
	fx.In
	DB          *postgres.DB
	Tx          ports.TxRunner
	Users       ports.UserStore
	Tenants     ports.TenantStore
	Projects    ports.ProjectStore
	Members     ports.MembershipStore
	Policies    ports.PolicyStore
	Audit       ports.AuditLog
	Idempotency ports.IdempotencyStore
	Health      []ports.HealthCheck `group:"health"`
}

func TestModuleValidates(t *testing.T) {
	t.Parallel()
	err := fx.ValidateApp(postgres.Module,
		fx.Supply(postgres.Config{URL: "postgres://postgres@127.0.0.1:5432/none?sslmode=disable"}),
		fx.Invoke(func(provided) {}))
	if err != nil {
		t.Fatal(err)
	}
}

func TestModuleStartsAndStops(t *testing.T) {
	t.Parallel()
	var got provided
	app := fxtest.New(t, postgres.Module,
		fx.Supply(postgres.Config{URL: services.FreshDatabaseURL(t), Migrate: true}),
		fx.Populate(&got))
	app.RequireStart()
	defer app.RequireStop()
	ctx := context.Background()
	if len(got.Health) != 1 || got.Health[0].Name() != "postgres" {
		t.Fatalf("health group = %v; want the postgres check", got.Health)
	}
	if err := got.Health[0].Check(ctx); err != nil {
		t.Fatalf("health check: %v", err)
	}
	// Connect migrated the database on start.
	v, err := got.Policies.Values(ctx, "")
	if err != nil || v[policy.BillingCurrency.Name] != "usd" {
		t.Fatalf("Values = %v, %v", v, err)
	}
}
