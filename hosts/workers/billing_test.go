package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/nats"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/hosts/workers"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// billingGraph is everything BillingModule takes from a deployment's graph.
func billingGraph(pg postgres.Config, bus nats.Config, extra ...fx.Option) fx.Option {
	return fx.Options(
		fx.Supply(pg, bus),
		fx.Provide(
			func() ports.Clock { return system.Clock{} },
			func() ports.IDs { return system.UUIDs{} },
			func() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) },
		),
		postgres.Module, postgres.ComputeModule, postgres.BillingModule, postgres.OutboxModule,
		nats.Module,
		fx.Options(extra...),
		workers.BillingModule,
	)
}

func TestBillingModuleValidates(t *testing.T) {
	t.Parallel()
	err := fx.ValidateApp(fx.NopLogger, billingGraph(postgres.Config{URL: "postgres://127.0.0.1:1/none"}, nats.Config{URL: "nats://127.0.0.1:1"},
		fx.Provide(func() *allocationsvc.Service { return nil })))
	if err != nil {
		t.Fatal(err)
	}
	// An explicit releaser instead of the allocation service also wires.
	err = fx.ValidateApp(fx.NopLogger, billingGraph(postgres.Config{URL: "postgres://127.0.0.1:1/none"}, nats.Config{URL: "nats://127.0.0.1:1"},
		fx.Provide(func() billing.AllocationReleaser { return nil })))
	if err != nil {
		t.Fatal(err)
	}
}

// acks wraps the bus's subscriber so the test learns when the billing
// consumer acked or nakked an event: synchronisation by signal, not sleep.
type acks struct {
	ports.Subscriber
	done chan string // event ids, as handled
}

func (a *acks) Consume(ctx context.Context, stream, durable string, handle func(context.Context, ports.Message)) error {
	return a.Subscriber.Consume(ctx, stream, durable, func(ctx context.Context, m ports.Message) {
		ack, nak := m.Ack, m.Nak
		m.Ack = func() error { err := ack(); a.done <- "ack:" + m.Envelope.ID; return err }
		m.Nak = func(d time.Duration) error { err := nak(d); a.done <- "nak:" + m.Envelope.ID; return err }
		handle(ctx, m)
	})
}

// TestBillingModuleMetersFromTheBus starts the module on real Postgres and
// an embedded NATS server: an allocation_active event published on the bus
// opens the usage record; a malformed event is acked and dropped; the app
// stops cleanly.
func TestBillingModuleMetersFromTheBus(t *testing.T) {
	t.Parallel()
	srv, err := nats.StartEmbedded(nats.EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	url := services.FreshDatabaseURL(t)
	a := &acks{done: make(chan string, 16)}
	var db *postgres.DB
	var pub ports.Publisher
	app := fx.New(
		billingGraph(postgres.Config{URL: url, Migrate: true}, nats.Config{URL: srv.ClientURL()},
			fx.Provide(func() billing.AllocationReleaser { return noReleases{} }),
			fx.Supply(workers.BillingConfig{DisableCycles: true, NakDelay: 10 * time.Millisecond}),
			fx.Decorate(func(s ports.Subscriber) ports.Subscriber { a.Subscriber = s; return a }),
		),
		fx.Populate(&db, &pub),
		fx.NopLogger,
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := app.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()

	// An allocation that became active (seeded straight in SQL: placement
	// is not what this is about).
	tenant, project, user, alloc := system.UUIDs{}.NewID(), system.UUIDs{}.NewID(), system.UUIDs{}.NewID(), system.UUIDs{}.NewID()
	activeAt := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	if _, err := db.Pool.Exec(ctx, `
		WITH t AS (INSERT INTO tenants (id, name, slug) VALUES ($1::uuid, 't', $6::text) RETURNING id),
		     p AS (INSERT INTO projects (id, tenant_id, name) SELECT $2::uuid, id, 'p' FROM t RETURNING id),
		     u AS (INSERT INTO users (id, oidc_issuer, oidc_subject, email)
		           SELECT $3::uuid, 'https://iss', $7::text, $7::text || '@example.com' FROM p RETURNING id)
		INSERT INTO allocations (id, tenant_id, project_id, user_id, sku_id, state, price_minor, currency, active_at)
		SELECT $4::uuid, $1::uuid, $2::uuid, u.id, 'h100-80g-x1', 'active', 299, 'usd', $5 FROM u`,
		tenant, project, user, alloc, activeAt, "t-"+services.RandomSuffix(6), "s-"+services.RandomSuffix(6)); err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(allocationsvc.StatePayload{AllocationID: alloc, State: "active"})
	good := event.Envelope{ID: system.UUIDs{}.NewID(), Type: event.AllocationActive, Version: 1, OccurredAt: activeAt,
		TenantID: tenant, AggregateType: "allocation", AggregateID: alloc, Payload: payload}
	bad := event.Envelope{ID: system.UUIDs{}.NewID(), Type: event.AllocationReleased, Version: 1, OccurredAt: activeAt,
		TenantID: tenant, AggregateType: "allocation", Payload: json.RawMessage(`{"allocation_id": 7}`)}
	for i, err := range pub.PublishBatch(ctx, fakes.Encode(t, good, bad)) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case s := <-a.done:
			seen[s] = true
		case <-ctx.Done():
			t.Fatalf("the billing consumer handled %v; want both events acked", seen)
		}
	}
	if !seen["ack:"+good.ID] || !seen["ack:"+bad.ID] {
		t.Fatalf("handled %v; want both acked (the malformed one dropped)", seen)
	}
	r, err := postgres.NewUsageStore(db).GetByAllocation(ctx, alloc)
	if err != nil || r.State != billing.UsageOpen || !r.StartedAt.Equal(activeAt) || r.HourlyPriceMinor != 299 {
		t.Fatalf("usage record %+v %v", r, err)
	}
}

// noReleases is the releaser of a graph whose test never depletes a tenant.
type noReleases struct{}

func (noReleases) ForceReleaseForTenant(context.Context, string, string) (int, error) {
	return 0, errors.New("workers test: no tenant is depleted here")
}

// TestBillingUsageHandler: ack when handled, ack and drop what redelivery
// cannot fix, nak with the configured delay when the database failed.
func TestBillingUsageHandler(t *testing.T) {
	t.Parallel()
	db := services.Postgres(t)
	m, err := billing.NewMetering(billing.MeteringDeps{Tx: db, Allocations: postgres.NewAllocationStore(db),
		Usage: postgres.NewUsageStore(db), Ledger: postgres.NewLedgerStore(db), IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	handle := workers.BillingUsageHandler(m, 42*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	outcome := func(ctx context.Context, env event.Envelope) string {
		var got string
		handle(ctx, ports.Message{Envelope: env,
			Ack: func() error { got = "ack"; return nil },
			Nak: func(d time.Duration) error { got = "nak " + d.String(); return nil }})
		return got
	}
	unknown, _ := json.Marshal(map[string]string{"allocation_id": system.UUIDs{}.NewID()})
	cancelled, stop := context.WithCancel(context.Background())
	stop()
	cases := []struct {
		name string
		ctx  context.Context
		env  event.Envelope
		want string
	}{
		{"unknown allocation", context.Background(), event.Envelope{Type: event.AllocationActive, Payload: unknown}, "ack"},
		{"not metering's", context.Background(), event.Envelope{Type: event.AllocationRequested, Payload: json.RawMessage(`{`)}, "ack"},
		{"malformed", context.Background(), event.Envelope{Type: event.AllocationActive, Payload: json.RawMessage(`[`)}, "ack"},
		{"database unreachable", cancelled, event.Envelope{Type: event.AllocationActive, Payload: unknown}, "nak 42ms"},
	}
	for _, c := range cases {
		if got := outcome(c.ctx, c.env); got != c.want {
			t.Errorf("%s: %q; want %q", c.name, got, c.want)
		}
	}
}
