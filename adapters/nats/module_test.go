package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"

	natsbus "github.com/gpuaas/gpuaas/adapters/nats"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
)

type moduleUser struct {
	fx.In
	Pub    ports.Publisher
	Sub    ports.Subscriber
	Health []ports.HealthCheck `group:"health"`
}

func TestModuleValidates(t *testing.T) {
	t.Parallel()
	err := fx.ValidateApp(natsbus.Module,
		fx.Supply(natsbus.Config{URL: "nats://127.0.0.1:1"}),
		fx.Invoke(func(moduleUser) {}))
	if err != nil {
		t.Fatal(err)
	}
}

func TestModuleStartsPublishesAndDrains(t *testing.T) {
	t.Parallel()
	srv := startEmbedded(t)
	var u moduleUser
	app := fx.New(natsbus.Module,
		fx.NopLogger,
		fx.Supply(testConfig(srv.ClientURL())),
		fx.Populate(&u))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(u.Health) != 1 || u.Health[0].Name() != "nats" {
		t.Fatalf("health checks %v", u.Health)
	}
	// Before start the ports answer with an error instead of panicking.
	if err := u.Health[0].Check(ctx); err == nil {
		t.Fatal("health ok before start")
	}
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := u.Health[0].Check(ctx); err != nil {
		t.Fatalf("health after start: %v", err)
	}
	// Start ensured the topology: publishing to it works.
	ev := event.Envelope{ID: uuid.NewString(), Type: event.BalanceCredited, Payload: []byte(`{}`)}
	if errs := u.Pub.PublishBatch(ctx, fakes.Encode(t, ev)); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if err := app.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if errs := u.Pub.PublishBatch(ctx, fakes.Encode(t, ev)); errs[0] == nil {
		t.Fatal("publish after stop succeeded")
	}
}
