package workers_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/nats"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/notification/notificationsvc"
	"github.com/gpuaas/gpuaas/hosts/workers"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/poll"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// notificationGraph is everything NotificationsModule takes from a
// deployment's graph.
func notificationGraph(pg postgres.Config, bus nats.Config, kmsPath string, extra ...fx.Option) fx.Option {
	return fx.Options(
		fx.Supply(pg, bus, keyfile.KMSConfig{Path: kmsPath}),
		fx.Provide(
			func() ports.Clock { return system.Clock{} },
			func() ports.IDs { return system.UUIDs{} },
			func() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) },
			func(p struct {
				fx.In
				Tx       ports.TxRunner
				Users    ports.UserStore
				Tenants  ports.TenantStore
				Projects ports.ProjectStore
				Members  ports.MembershipStore
				Audit    ports.AuditLog
				Outbox   ports.Outbox
			}) (*identitysvc.Service, error) {
				return identitysvc.New(identitysvc.Deps{Tx: p.Tx, Users: p.Users, Tenants: p.Tenants, Projects: p.Projects,
					Members: p.Members, Audit: p.Audit, Outbox: p.Outbox, Clock: system.Clock{}, IDs: system.UUIDs{}})
			},
			func(p struct {
				fx.In
				Tx          ports.TxRunner
				Inbox       ports.NotificationInbox
				Feed        ports.NotificationFeed
				Recipients  ports.NotificationRecipients
				Preferences ports.NotificationPreferences
				Mail        ports.MailQueue
				Webhooks    ports.WebhookStore
				Policies    ports.PolicyStore
				Outbox      ports.Outbox
				Audit       ports.AuditLog
				KMS         ports.KMS
				Identity    *identitysvc.Service
			}) (*notificationsvc.Service, error) {
				return notificationsvc.New(notificationsvc.Config{}, notificationsvc.Deps{Tx: p.Tx, Inbox: p.Inbox, Feed: p.Feed,
					Recipients: p.Recipients, Preferences: p.Preferences, Mail: p.Mail, Webhooks: p.Webhooks, Policies: p.Policies,
					Outbox: p.Outbox, Audit: p.Audit, KMS: p.KMS, Projects: p.Identity, Clock: system.Clock{}, IDs: system.UUIDs{},
					Mailer: &fakes.Mailer{}, Sender: nil})
			},
		),
		postgres.Module, postgres.OutboxModule, postgres.NotificationsModule, keyfile.KMSModule,
		nats.Module,
		fx.Options(extra...),
		workers.NotificationsModule,
	)
}

func TestNotificationsModuleValidates(t *testing.T) {
	t.Parallel()
	if err := fx.ValidateApp(fx.NopLogger, notificationGraph(postgres.Config{URL: "postgres://127.0.0.1:1/none"},
		nats.Config{URL: "nats://127.0.0.1:1"}, filepath.Join(t.TempDir(), "kms.key"))); err != nil {
		t.Fatal(err)
	}
}

// TestNotificationsWorkerStoppedMidStream: 300 events are published; the
// worker is stopped while it works through them (messages it held are
// neither acked nor lost) and a new one takes over: every event ends as
// exactly one inbox row per tenant member, none twice, none missing.
func TestNotificationsWorkerStoppedMidStream(t *testing.T) {
	t.Parallel()
	srv, err := nats.StartEmbedded(nats.EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	url := services.FreshDatabaseURL(t)
	kms := filepath.Join(t.TempDir(), "kms.key")
	busCfg := nats.Config{URL: srv.ClientURL(), BackOff: []time.Duration{300 * time.Millisecond}}
	start := func() (*fx.App, *postgres.DB, ports.Publisher) {
		var db *postgres.DB
		var pub ports.Publisher
		app := fx.New(notificationGraph(postgres.Config{URL: url, Migrate: true}, busCfg, kms,
			fx.Supply(workers.NotificationsConfig{DisableDispatch: true, NakDelay: 50 * time.Millisecond})),
			fx.Populate(&db, &pub), fx.NopLogger)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := app.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return app, db, pub
	}
	app, db, pub := start()
	ctx := context.Background()
	// A tenant with two active members.
	tenant := system.UUIDs{}.NewID()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO tenants (id, name, slug) VALUES ($1, 't', $2)`, tenant, "t-"+services.RandomSuffix(8)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		u, _, err := postgres.NewUserStore(db).UpsertByIdentity(ctx, identity.User{ID: system.UUIDs{}.NewID(), Issuer: "https://iss",
			Subject: services.RandomSuffix(8), Email: services.RandomSuffix(6) + "@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if err := postgres.NewMembershipStore(db).AddTenantMember(ctx, identity.TenantMembership{TenantID: tenant, UserID: u.ID,
			Role: identity.TenantMember}); err != nil {
			t.Fatal(err)
		}
	}
	const events = 300
	evs := make([]event.Envelope, events)
	for i := range evs {
		body, _ := json.Marshal(map[string]any{"tenant_id": tenant, "balance_minor": 100 + i, "currency": "usd", "threshold_minor": 1000})
		evs[i] = event.Envelope{ID: system.UUIDs{}.NewID(), Type: event.LowBalanceWarning, Version: 1, OccurredAt: time.Now(),
			TenantID: tenant, Payload: body}
	}
	for i, err := range pub.PublishBatch(ctx, fakes.Encode(t, evs...)) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	count := func() int {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE tenant_id = $1`, tenant).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	poll.Until(t, 30*time.Second, "the first worker to be part-way through", func() bool { return count() >= 40 })
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := app.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	app2, db2, _ := start()
	db = db2
	if n := count(); n >= 2*events {
		t.Logf("the first worker finished before it was stopped (%d rows); the takeover below is then trivial", n)
	}
	defer func() { _ = app2.Stop(stopCtx) }()
	poll.Until(t, 60*time.Second, "every event to reach both members", func() bool { return count() >= 2*events })
	var distinct int
	if err := db.Pool.QueryRow(ctx, `SELECT count(DISTINCT event_id) FROM notifications WHERE tenant_id = $1`, tenant).Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2*events || distinct != events {
		t.Fatalf("%d rows for %d distinct events; want %d for %d", n, distinct, 2*events, events)
	}
}
