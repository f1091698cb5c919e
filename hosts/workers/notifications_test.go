package workers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
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

// The child process of TestNotificationsWorkerKilledMidStream runs the
// worker until it is killed; these carry what it connects to.
const (
	envKillChild = "GPUAAS_TEST_NOTIFICATIONS_CHILD"
	envKillDB    = "GPUAAS_TEST_NOTIFICATIONS_DB"
	envKillNATS  = "GPUAAS_TEST_NOTIFICATIONS_NATS"
	envKillKMS   = "GPUAAS_TEST_NOTIFICATIONS_KMS"
)

// TestNotificationsWorkerKilledMidStream: 300 events are published; the
// worker, a process of its own, is killed with SIGKILL while it works
// through them (its open transaction dies with its connections, the
// messages it held are neither acked nor lost) and a new one takes over:
// every event ends as exactly one inbox row per tenant member, none twice,
// none missing.
func TestNotificationsWorkerKilledMidStream(t *testing.T) {
	busCfg := func(url string) nats.Config {
		return nats.Config{URL: url, BackOff: []time.Duration{300 * time.Millisecond}}
	}
	start := func(t testing.TB, dbURL, natsURL, kms string) (*fx.App, *postgres.DB, ports.Publisher) {
		var db *postgres.DB
		var pub ports.Publisher
		app := fx.New(notificationGraph(postgres.Config{URL: dbURL, Migrate: true}, busCfg(natsURL), kms,
			fx.Supply(workers.NotificationsConfig{DisableDispatch: true, NakDelay: 50 * time.Millisecond})),
			fx.Populate(&db, &pub), fx.NopLogger)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := app.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return app, db, pub
	}
	if os.Getenv(envKillChild) != "" {
		// The child: work until killed.
		start(t, os.Getenv(envKillDB), os.Getenv(envKillNATS), os.Getenv(envKillKMS))
		fmt.Println("worker started")
		select {}
	}
	t.Parallel()
	srv, err := nats.StartEmbedded(nats.EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	url := services.FreshDatabaseURL(t)
	kms := filepath.Join(t.TempDir(), "kms.key")
	ctx := context.Background()
	// The database migrated and the tenant seeded here; the worker process
	// makes the stream and its durable, then the events are published.
	db, err := postgres.Open(ctx, postgres.Config{URL: url, Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	bus, err := nats.Connect(ctx, busCfg(srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close(context.Background()) })
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
	count := func() int {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE tenant_id = $1`, tenant).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestNotificationsWorkerKilledMidStream$", "-test.count=1")
	cmd.Env = append(os.Environ(), envKillChild+"=1", envKillDB+"="+url, envKillNATS+"="+srv.ClientURL(), envKillKMS+"="+kms)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the test
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	started := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == "worker started" {
				ok = true
				started <- true
			}
		}
		if !ok {
			started <- false
		}
	}()
	if !<-started {
		t.Fatal("the worker process exited before it started")
	}
	// The worker consumes the durable the module made; the events go in
	// once it is listening.
	for i, err := range bus.PublishBatch(ctx, fakes.Encode(t, evs...)) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	poll.Until(t, 30*time.Second, "the worker process to be part-way through", func() bool { return count() >= 40 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the worker process ended with %v, want killed by SIGKILL", err)
	}
	atKill := count()
	if atKill >= 2*events {
		t.Logf("the worker finished before it was killed (%d rows); the takeover below is then trivial", atKill)
	}
	app2, _, _ := start(t, url, srv.ClientURL(), kms)
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	defer func() { _ = app2.Stop(stopCtx) }()
	poll.Until(t, 60*time.Second, "every event to reach both members", func() bool { return count() >= 2*events })
	var distinct int
	if err := db.Pool.QueryRow(ctx, `SELECT count(DISTINCT event_id) FROM notifications WHERE tenant_id = $1`, tenant).Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2*events || distinct != events {
		t.Fatalf("%d rows for %d distinct events (%d when the worker was killed); want %d for %d", n, distinct, atKill, 2*events, events)
	}
	t.Logf("killed at %d of %d rows", atKill, 2*events)
}
