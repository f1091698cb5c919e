package workers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/nats"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/event/relay"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/hosts/workers"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// stamps records when the notifications consumer received each event.
type stamps struct {
	ports.Subscriber
	mu sync.Mutex
	at map[string]time.Time
}

func (s *stamps) Consume(ctx context.Context, stream, durable string, handle func(context.Context, ports.Message)) error {
	return s.Subscriber.Consume(ctx, stream, durable, func(ctx context.Context, m ports.Message) {
		s.mu.Lock()
		if _, seen := s.at[m.Envelope.ID]; !seen {
			s.at[m.Envelope.ID] = time.Now()
		}
		s.mu.Unlock()
		handle(ctx, m)
	})
}

// BenchmarkNotificationStream measures an event's way to a user's live
// stream: committed to the outbox with its state change → the relay (woken
// by NOTIFY) publishes it to JetStream → the notifications worker's durable
// consumer receives it → the inbox row commits (NOTIFY on the user's key) →
// the stream's feed wakes and reads the row (what GET /notifications/stream
// writes next). The same events give the relay's own commit→receive time,
// so the two p50s come from one run. Samples are serial (one event in
// flight), warm, on real Postgres and an embedded nats-server.
func BenchmarkNotificationStream(b *testing.B) {
	const samples = 200
	srv, err := nats.StartEmbedded(nats.EmbeddedConfig{StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	st := &stamps{at: map[string]time.Time{}}
	var db *postgres.DB
	var outbox ports.Outbox
	var inbox ports.NotificationInbox
	var feed ports.NotificationFeed
	app := fx.New(notificationGraph(postgres.Config{URL: services.FreshDatabaseURL(b), Migrate: true},
		nats.Config{URL: srv.ClientURL()}, filepath.Join(b.TempDir(), "kms.key"),
		fx.Supply(workers.NotificationsConfig{DisableDispatch: true}, relay.Config{}),
		workers.OutboxRelayModule,
		fx.Decorate(func(s ports.Subscriber) ports.Subscriber { st.Subscriber = s; return st })),
		fx.Populate(&db, &outbox, &inbox, &feed), fx.NopLogger)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = app.Stop(context.Background()) }()
	tenant, userID := system.UUIDs{}.NewID(), system.UUIDs{}.NewID()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO tenants (id, name, slug) VALUES ($1, 't', $2)`, tenant, "t-"+services.RandomSuffix(8)); err != nil {
		b.Fatal(err)
	}
	if _, _, err := postgres.NewUserStore(db).UpsertByIdentity(ctx, identity.User{ID: userID, Issuer: "https://iss",
		Subject: services.RandomSuffix(8), Email: "bench@example.com"}); err != nil {
		b.Fatal(err)
	}
	if err := postgres.NewMembershipStore(db).AddTenantMember(ctx, identity.TenantMembership{TenantID: tenant, UserID: userID,
		Role: identity.TenantOwner}); err != nil {
		b.Fatal(err)
	}
	var after int64
	one := func() (toConsumer, toStream time.Duration) {
		b.Helper()
		wake, stop := feed.Subscribe(userID)
		defer stop()
		body, _ := json.Marshal(map[string]any{"tenant_id": tenant, "balance_minor": 500, "currency": "usd", "threshold_minor": 1000})
		ev := event.Envelope{ID: system.UUIDs{}.NewID(), Type: event.LowBalanceWarning, Version: 1, OccurredAt: time.Now(),
			TenantID: tenant, Payload: body}
		if err := db.InTx(ctx, func(ctx context.Context) error { return outbox.Append(ctx, ev) }); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		for {
			select {
			case <-wake:
			case <-ctx.Done():
				b.Fatal("no notification arrived")
			}
			rows, err := inbox.Since(ctx, userID, after, 10)
			if err != nil {
				b.Fatal(err)
			}
			if len(rows) > 0 {
				arrived := time.Now()
				after = rows[len(rows)-1].Seq
				st.mu.Lock()
				got := st.at[ev.ID]
				st.mu.Unlock()
				return got.Sub(committed), arrived.Sub(committed)
			}
			stop()
			wake, stop = feed.Subscribe(userID)
		}
	}
	for range 20 { // warm: connections, prepared statements, the consumer's pull
		one()
	}
	b.ResetTimer()
	var relayLat, streamLat []time.Duration
	for range samples {
		r, s := one()
		relayLat, streamLat = append(relayLat, r), append(streamLat, s)
	}
	b.StopTimer()
	pct := func(xs []time.Duration, p float64) time.Duration {
		ys := slices.Clone(xs)
		slices.Sort(ys)
		return ys[int(float64(len(ys)-1)*p)]
	}
	rp50, sp50, sp99 := pct(relayLat, 0.5), pct(streamLat, 0.5), pct(streamLat, 0.99)
	ratio := float64(sp50) / float64(rp50)
	b.ReportMetric(float64(sp50.Microseconds())/1000, "stream_p50_ms")
	b.ReportMetric(float64(sp99.Microseconds())/1000, "stream_p99_ms")
	b.ReportMetric(float64(rp50.Microseconds())/1000, "relay_p50_ms")
	b.ReportMetric(ratio, "stream/relay")
	fmt.Printf("notification stream (%d serial samples): event commit -> live stream p50 %v p99 %v; outbox relay commit -> receive p50 %v (same events, same run); ratio %.2f (goal <= 2)\n",
		samples, sp50.Round(10*time.Microsecond), sp99.Round(10*time.Microsecond), rp50.Round(10*time.Microsecond), ratio)
}
