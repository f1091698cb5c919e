package nats_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	natsbus "github.com/gpuaas/gpuaas/adapters/nats"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/contract"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// startEmbedded runs a private JetStream server for one test.
func startEmbedded(tb testing.TB) *natsbus.EmbeddedServer {
	tb.Helper()
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Shutdown)
	return srv
}

// testConfig reconnects fast and redelivers unacked messages after 2s, so
// broker restarts cost the tests little time.
func testConfig(url string) natsbus.Config {
	return natsbus.Config{
		URL:            url,
		ReconnectWait:  50 * time.Millisecond,
		PublishTimeout: 3 * time.Second,
		BackOff:        []time.Duration{2 * time.Second},
	}
}

func connect(tb testing.TB, cfg natsbus.Config) *natsbus.Bus {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := natsbus.Connect(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	if err := b.EnsureStreams(ctx); err != nil {
		tb.Fatal(err)
	}
	return b
}

// restartable lets the contract suite restart the embedded broker.
type restartable struct {
	*natsbus.Bus
	srv *natsbus.EmbeddedServer
}

func (r restartable) RestartBroker(tb testing.TB) {
	tb.Helper()
	if err := r.srv.Restart(); err != nil {
		tb.Fatalf("restart: %v", err)
	}
}

func TestBusContract(t *testing.T) {
	t.Parallel()
	contract.RunBusSuite(t, func(t *testing.T) (ports.Publisher, ports.Subscriber) {
		srv := startEmbedded(t)
		b := connect(t, testConfig(srv.ClientURL()))
		return b, restartable{b, srv}
	})
}

func TestEnsureStreamsCreatesTopology(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := startEmbedded(t)
	b := connect(t, testConfig(srv.ClientURL()))
	// Idempotent: a second replica starting runs it again.
	if err := b.EnsureStreams(ctx); err != nil {
		t.Fatalf("second EnsureStreams: %v", err)
	}
	js := b.JetStream()
	for _, s := range event.Streams {
		st, err := js.Stream(ctx, s.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", s.Name, err)
		}
		cfg := st.CachedInfo().Config
		if cfg.Storage != jetstream.FileStorage || cfg.Duplicates != 2*time.Minute ||
			strings.Join(cfg.Subjects, ",") != strings.Join(s.Subjects, ",") {
			t.Errorf("stream %s config = storage %v dup %v subjects %v", s.Name, cfg.Storage, cfg.Duplicates, cfg.Subjects)
		}
		for _, c := range s.Consumers {
			ci, err := js.Consumer(ctx, s.Name, c.Durable)
			if err != nil {
				t.Fatalf("consumer %s/%s: %v", s.Name, c.Durable, err)
			}
			cc := ci.CachedInfo().Config
			if cc.Durable != c.Durable || cc.FilterSubject != c.FilterSubject ||
				cc.AckPolicy != jetstream.AckExplicitPolicy || cc.MaxDeliver != 20 || len(cc.BackOff) != 1 {
				t.Errorf("consumer %s/%s config = %+v", s.Name, c.Durable, cc)
			}
		}
	}
}

// The Debian server is NATS 2.9: no multi-filter consumers, no 2.10
// stream options. Run the same topology code there under unique names so
// parallel runs and other suites on the shared server do not collide.
func TestEnsureTopologyOnSystemServer(t *testing.T) {
	t.Parallel()
	url := services.NATS(t)
	ctx := context.Background()
	b := func() *natsbus.Bus {
		b, err := natsbus.Connect(ctx, testConfig(url))
		if err != nil {
			services.Unavailable(t, "nats", err)
		}
		t.Cleanup(func() { _ = b.Close(ctx) })
		return b
	}()
	tag := "t" + services.RandomSuffix(4)
	var topo []event.Stream
	for _, s := range event.Streams {
		ps := event.Stream{Name: strings.ToUpper(tag) + "_" + s.Name}
		for _, sub := range s.Subjects {
			ps.Subjects = append(ps.Subjects, tag+"."+sub)
		}
		for _, c := range s.Consumers {
			ps.Consumers = append(ps.Consumers, event.Consumer{Durable: tag + "-" + c.Durable, FilterSubject: tag + "." + c.FilterSubject})
		}
		topo = append(topo, ps)
	}
	t.Cleanup(func() {
		for _, s := range topo {
			_ = b.JetStream().DeleteStream(context.Background(), s.Name)
		}
	})
	if err := b.EnsureTopology(ctx, topo); err != nil {
		t.Fatalf("EnsureTopology on the system server: %v", err)
	}
	if err := b.EnsureTopology(ctx, topo); err != nil {
		t.Fatalf("second EnsureTopology: %v", err)
	}
	ev := event.Envelope{ID: uuid.NewString(), Type: tag + "." + event.AllocationRequested, Payload: []byte(`{}`)}
	for i, err := range b.PublishBatch(ctx, fakes.Encode(t, ev, ev)) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var got []string
	err := b.Consume(cctx, topo[0].Name, topo[0].Consumers[0].Durable, func(_ context.Context, m ports.Message) {
		got = append(got, m.Envelope.ID)
		if err := m.Ack(); err != nil {
			t.Error(err)
		}
		cancel()
	})
	if err != nil || len(got) != 1 || got[0] != ev.ID {
		t.Fatalf("consume on 2.9 = %v, %v", got, err)
	}
	if err := b.Check(ctx); err != nil {
		t.Fatalf("health on 2.9: %v", err)
	}
}

func TestPublishBatchErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := startEmbedded(t)
	cfg := testConfig(srv.ClientURL())
	cfg.PublishTimeout = 500 * time.Millisecond
	b := connect(t, cfg)
	good := event.Envelope{ID: uuid.NewString(), Type: event.UserSignedUp, Payload: []byte(`{}`)}
	nostream := event.Envelope{ID: uuid.NewString(), Type: "nostream.anywhere", Payload: []byte(`{}`)}
	errs := b.PublishBatch(ctx, []event.Encoded{
		fakes.Encode(t, good)[0],
		{ID: "", Type: event.UserSignedUp, Body: []byte(`{}`)}, // no id
		fakes.Encode(t, nostream)[0],                           // no stream listens
		{ID: uuid.NewString(), Type: event.UserSignedUp},       // no body
	})
	for i, want := range []fault.Kind{0, fault.KindInvalid, fault.KindUnavailable, fault.KindInvalid} {
		if i == 0 {
			if errs[0] != nil {
				t.Errorf("good event: %v", errs[0])
			}
			continue
		}
		if !fault.IsKind(errs[i], want) {
			t.Errorf("event %d: err %v; want kind %v", i, errs[i], want)
		}
	}

	// With the server gone, every slot reports a retryable error.
	srv.Shutdown()
	errs = b.PublishBatch(ctx, fakes.Encode(t, event.Envelope{ID: uuid.NewString(), Type: event.UserSignedUp, Payload: []byte(`{}`)}))
	if !fault.IsKind(errs[0], fault.KindUnavailable) {
		t.Fatalf("publish with the server down: %v", errs[0])
	}
	if err := b.Check(ctx); !fault.IsKind(err, fault.KindUnavailable) {
		t.Fatalf("health with the server down: %v", err)
	}
}

func TestConsumeUnknownConsumer(t *testing.T) {
	t.Parallel()
	srv := startEmbedded(t)
	b := connect(t, testConfig(srv.ClientURL()))
	err := b.Consume(context.Background(), "NOTIFICATION", "nobody", func(context.Context, ports.Message) {})
	if !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("Consume unknown durable = %v; want NotFound", err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  natsbus.Config
		ok   bool
	}{
		{"defaults", natsbus.Config{URL: "nats://127.0.0.1:4222"}, true},
		{"missing url", natsbus.Config{}, false},
		{"negative", natsbus.Config{URL: "nats://x", PublishTimeout: -1}, false},
		{"backoff too long for max deliver", natsbus.Config{URL: "nats://x", MaxDeliver: 2, BackOff: []time.Duration{1, 2}}, false},
		{"zero backoff step", natsbus.Config{URL: "nats://x", BackOff: []time.Duration{0}}, false},
		{"dup window over max age", natsbus.Config{URL: "nats://x", DuplicateWindow: time.Hour, MaxAge: time.Minute}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.CheckAndSetDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("CheckAndSetDefaults = %v; ok want %v", err, tc.ok)
			}
			if tc.ok && (tc.cfg.DuplicateWindow != 2*time.Minute || tc.cfg.MaxDeliver != 20 || tc.cfg.Logger == nil) {
				t.Fatalf("defaults not set: %+v", tc.cfg)
			}
		})
	}
}

// Credentials in the URL never reach errors or the config's String.
func TestNoCredentialsInErrors(t *testing.T) {
	t.Parallel()
	const canary = "s3cr3t-canary"
	cfg := natsbus.Config{URL: "nats://relay:" + canary + "@127.0.0.1:1", ConnectTimeout: 200 * time.Millisecond}
	_, err := natsbus.Connect(context.Background(), cfg)
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if !fault.IsKind(err, fault.KindUnavailable) {
		t.Fatalf("Connect = %v; want Unavailable", err)
	}
	for _, s := range []string{err.Error(), cfg.String()} {
		if strings.Contains(s, canary) {
			t.Fatalf("password leaked: %q", s)
		}
	}
	var fe *fault.Error
	if errors.As(err, &fe) && strings.Contains(fe.Message, canary) {
		t.Fatal("password in the public message")
	}
}

func TestEmbeddedRestartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	if !strings.HasPrefix(srv.ClientURL(), "nats://127.0.0.1:") || srv.Port() == 0 {
		t.Fatalf("ClientURL %s, port %d", srv.ClientURL(), srv.Port())
	}
	b := connect(t, testConfig(srv.ClientURL()))
	ev := event.Envelope{ID: uuid.NewString(), Type: event.UserSignedUp, Payload: []byte(`{}`)}
	if errs := b.PublishBatch(ctx, fakes.Encode(t, ev)); errs[0] != nil {
		t.Fatal(errs[0])
	}
	// Stop, then start a new server on the same port and directory, as a
	// fresh process would.
	port := srv.Port()
	srv.Shutdown()
	srv2, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{StoreDir: dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv2.Shutdown)
	// The old client reconnects and the message is still there; the dedupe
	// window survived too.
	if errs := b.PublishBatch(ctx, fakes.Encode(t, ev)); errs[0] != nil {
		t.Fatal(errs[0])
	}
	st, err := b.JetStream().Stream(ctx, "IDENTITY")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("IDENTITY holds %d messages after restart and republish; want 1", info.State.Msgs)
	}
}
