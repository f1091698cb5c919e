package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natsbus "github.com/gpuaas/gpuaas/adapters/nats"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/event/relay"
	"github.com/gpuaas/gpuaas/ports"
)

// Benchmark settings. The relays run with the production defaults (batch
// size from relay.Config); GPUAAS_BENCH_RELAYS and GPUAAS_BENCH_BATCH
// override the shape for experiments.
const (
	benchEvents         = 20_000
	benchSamples        = 5 // drains and raw publishes per op, interleaved
	benchLatencySamples = 300
)

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkOutboxRelay measures, in one run against the same embedded
// JetStream server and real Postgres:
//   - relay throughput: events/s with which running relays drain a backlog
//     of benchEvents rows committed at once, timed from the commit until
//     the last row has left the outbox;
//   - raw JetStream async publish/s of as many messages of the same size,
//     with the bus's own publish settings (the same cap on pending acks and
//     the same stall wait as the relay's publisher: the default 200 ms
//     stall wait made the baseline fail under load), and the ratio
//     relay/raw of the medians (goal ≥ 0.8), with min and median of each
//     side from benchSamples interleaved samples;
//   - p50/p99 latency from an outbox insert's commit to consumer receipt
//     with an idle relay, which the LISTEN wake-up keeps far below the
//     2s poll interval.
//
// Both sides are measured warm: the relays are started, connected and run
// through one untimed drain (and the raw publisher through one untimed
// round) before samples are taken.
func BenchmarkOutboxRelay(b *testing.B) {
	relays := benchEnvInt("GPUAAS_BENCH_RELAYS", 2)
	batch := benchEnvInt("GPUAAS_BENCH_BATCH", 0) // 0: relay.Config's default
	env := newRelayEnv(b)
	cfg := testConfig(env.srv.ClientURL())
	cfg.PublishTimeout = 10 * time.Second
	if err := cfg.CheckAndSetDefaults(); err != nil {
		b.Fatal(err)
	}
	bus := connect(b, cfg)
	writer := env.outbox(b, postgres.OutboxConfig{})
	running := startBenchRelays(b, env, bus, relays, batch)
	running.drain(b, env, writer, benchEvents)
	rawPublish(b, cfg, benchEvents)

	evs := testEvents(1)
	body, _ := json.Marshal(evs[0])
	msgBytes := len(body)
	var relayRates, rawRates []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range benchSamples {
			relayRates = append(relayRates, benchEvents/running.drain(b, env, writer, benchEvents).Seconds())
			rawRates = append(rawRates, benchEvents/rawPublish(b, cfg, benchEvents).Seconds())
		}
	}
	b.StopTimer()
	running.stop()

	slices.Sort(relayRates)
	slices.Sort(rawRates)
	relayMed, rawMed := relayRates[len(relayRates)/2], rawRates[len(rawRates)/2]
	p50, p99 := commitToReceiveLatency(b, env, bus)

	b.ReportMetric(relayMed, "relay_events/s")
	b.ReportMetric(rawMed, "raw_publish/s")
	b.ReportMetric(relayMed/rawMed, "relay/raw")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
	if batch == 0 {
		def := relay.Config{}
		_ = def.CheckAndSetDefaults()
		batch = def.BatchSize
	}
	fmt.Printf("outbox relay (%d relays, batch %d, %d-byte events, %d interleaved samples of %d): relay min %.0f median %.0f events/s; raw JetStream async publish min %.0f median %.0f msg/s; ratio of medians %.2f (goal >= 0.8); commit->receive latency p50 %v p99 %v (%d samples)\n",
		relays, batch, msgBytes, len(relayRates), benchEvents, relayRates[0], relayMed, rawRates[0], rawMed, relayMed/rawMed,
		p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), benchLatencySamples)
}

// benchRelays are relays running against the bench database, counting
// what they publish.
type benchRelays struct {
	published atomic.Int64
	progress  chan struct{} // signalled after each published batch
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

func startBenchRelays(b *testing.B, env *relayEnv, bus ports.Publisher, relays, batch int) *benchRelays {
	b.Helper()
	br := &benchRelays{progress: make(chan struct{}, 1)}
	pub := publisherFunc(func(ctx context.Context, evs []event.Encoded) []error {
		errs := bus.PublishBatch(ctx, evs)
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			}
		}
		br.published.Add(int64(ok))
		select {
		case br.progress <- struct{}{}:
		default:
		}
		return errs
	})
	ctx, cancel := context.WithCancel(context.Background())
	br.cancel = cancel
	for range relays {
		ob, err := postgres.NewOutbox(env.db, postgres.OutboxConfig{})
		if err != nil {
			b.Fatal(err)
		}
		r, err := relay.New(relay.Config{BatchSize: batch}, ob, pub, nil)
		if err != nil {
			b.Fatal(err)
		}
		br.wg.Add(1)
		go func() {
			defer br.wg.Done()
			defer ob.Close()
			_ = r.Run(ctx)
		}()
	}
	return br
}

func (br *benchRelays) stop() {
	br.cancel()
	br.wg.Wait()
}

// drain commits n events in one transaction and returns the time from
// the commit until the relays have published all of them and the last
// row has left the outbox.
func (br *benchRelays) drain(b *testing.B, env *relayEnv, writer *postgres.Outbox, n int) time.Duration {
	b.Helper()
	ctx := context.Background()
	evs := testEvents(n)
	base := br.published.Load()
	if err := env.db.InTx(ctx, func(ctx context.Context) error {
		for c := range slices.Chunk(evs, 1000) {
			if err := writer.Append(ctx, c...); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	timeout := time.After(5 * time.Minute)
	for br.published.Load()-base < int64(n) {
		select {
		case <-br.progress:
		case <-timeout:
			b.Fatalf("relays published %d of %d in 5 minutes", br.published.Load()-base, n)
		}
	}
	// Published means acked by JetStream; a row leaves the outbox when its
	// batch commits, right after.
	for outboxLeft(b, env.db) != 0 {
		select {
		case <-time.After(time.Millisecond):
		case <-timeout:
			b.Fatalf("outbox after drain: %v", outboxCounts(b, env.db))
		}
	}
	return time.Since(start)
}

// rawPublish async-publishes n envelopes of the relay's size straight to
// JetStream (dedupe ids included) with the bus's publish settings, and
// waits for every ack.
func rawPublish(b *testing.B, cfg natsbus.Config, n int) time.Duration {
	b.Helper()
	nc, err := nats.Connect(cfg.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.MaxPendingPublishes),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
	if err != nil {
		b.Fatal(err)
	}
	evs := testEvents(n)
	bodies := make([][]byte, n)
	for i, e := range evs {
		bodies[i], _ = json.Marshal(e)
	}
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, n)
	for i, e := range evs {
		f, err := js.PublishMsgAsync(&nats.Msg{Subject: e.Type, Data: bodies[i], Header: nats.Header{}}, jetstream.WithMsgID(e.ID),
			jetstream.WithStallWait(cfg.PublishTimeout))
		if err != nil {
			b.Fatal(err)
		}
		futures[i] = f
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("raw publish acks did not arrive")
	}
	elapsed := time.Since(start)
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.Fatalf("raw publish: %v", err)
		}
	}
	return elapsed
}

// commitToReceiveLatency commits one outbox event at a time with a relay
// running and measures until a consumer receives it.
func commitToReceiveLatency(b *testing.B, env *relayEnv, bus interface {
	ports.Publisher
	ports.Subscriber
	JetStream() jetstream.JetStream
}) (p50, p99 time.Duration) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A consumer of its own that starts at new messages, so the backlog
	// of the throughput runs does not delay it.
	if _, err := bus.JetStream().CreateOrUpdateConsumer(ctx, "IDENTITY", jetstream.ConsumerConfig{
		Durable: "bench-latency", FilterSubject: event.UserSignedUp,
		AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
	}); err != nil {
		b.Fatal(err)
	}
	received := make(chan string, 16)
	consumed := make(chan error, 1)
	go func() {
		consumed <- bus.Consume(ctx, "IDENTITY", "bench-latency", func(_ context.Context, m ports.Message) {
			received <- m.Envelope.ID
			_ = m.Ack()
		})
	}()
	ob, err := postgres.NewOutbox(env.db, postgres.OutboxConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer ob.Close()
	r, err := relay.New(relay.Config{}, ob, bus, nil) // default 2s poll: latency comes from the wake-up
	if err != nil {
		b.Fatal(err)
	}
	relayDone := make(chan struct{})
	go func() { defer close(relayDone); _ = r.Run(ctx) }()
	defer func() { cancel(); <-relayDone; <-consumed }()

	writer := env.outbox(b, postgres.OutboxConfig{})
	lat := make([]time.Duration, 0, benchLatencySamples)
	for i := range benchLatencySamples {
		ev := event.Envelope{ID: uuid.NewString(), Type: event.UserSignedUp, Version: 1, OccurredAt: time.Now().UTC(),
			Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
		if err := env.db.InTx(ctx, func(ctx context.Context) error { return writer.Append(ctx, ev) }); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		for {
			select {
			case id := <-received:
				if id != ev.ID {
					continue
				}
				lat = append(lat, time.Since(committed))
			case <-time.After(30 * time.Second):
				b.Fatalf("event %d not received within 30s", i)
			}
			break
		}
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}
