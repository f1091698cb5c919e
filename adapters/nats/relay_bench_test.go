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

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/event/relay"
	"github.com/gpuaas/gpuaas/ports"
)

// Benchmark settings; GPUAAS_BENCH_RELAYS and GPUAAS_BENCH_BATCH override
// the relay shape for experiments.
const (
	benchEvents         = 20_000
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
//   - relay throughput: events/s draining benchEvents pending outbox rows
//     (ns/op is one full drain);
//   - raw JetStream async publish/s of as many messages of the same size,
//     and the ratio relay/raw (goal ≥ 0.5);
//   - p50/p99 latency from an outbox insert's commit to consumer receipt
//     with an idle relay, which the LISTEN wake-up keeps far below the
//     2s poll interval.
func BenchmarkOutboxRelay(b *testing.B) {
	relays := benchEnvInt("GPUAAS_BENCH_RELAYS", 2)
	batch := benchEnvInt("GPUAAS_BENCH_BATCH", 1000)
	env := newRelayEnv(b)
	ctx := context.Background()
	cfg := testConfig(env.srv.ClientURL())
	cfg.PublishTimeout = 10 * time.Second
	bus := connect(b, cfg)
	writer := env.outbox(b, postgres.OutboxConfig{})

	var relayTime, rawTime time.Duration
	var msgBytes int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		evs := testEvents(benchEvents)
		for c := range slices.Chunk(evs, 1000) {
			if err := writer.Append(ctx, c...); err != nil {
				b.Fatal(err)
			}
		}
		body, _ := json.Marshal(evs[0])
		msgBytes = len(body)
		b.StartTimer()
		relayTime += drainWithRelays(b, env, bus, relays, batch, benchEvents)
		b.StopTimer()
		rawTime += rawPublish(b, env.srv.ClientURL(), benchEvents)
	}
	b.StopTimer()

	relayRate := float64(benchEvents*b.N) / relayTime.Seconds()
	rawRate := float64(benchEvents*b.N) / rawTime.Seconds()
	p50, p99 := commitToReceiveLatency(b, env, bus)

	b.ReportMetric(relayRate, "relay_events/s")
	b.ReportMetric(rawRate, "raw_publish/s")
	b.ReportMetric(relayRate/rawRate, "relay/raw")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
	fmt.Printf("outbox relay (%d relays, batch %d, %d-byte events): %.0f events/s; raw JetStream async publish: %.0f msg/s; ratio %.2f (goal >= 0.5); commit->receive latency p50 %v p99 %v (%d samples)\n",
		relays, batch, msgBytes, relayRate, rawRate, relayRate/rawRate, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), benchLatencySamples)
}

// drainWithRelays runs relays until n events are published and returns
// how long that took.
func drainWithRelays(b *testing.B, env *relayEnv, bus ports.Publisher, relays, batch, n int) time.Duration {
	b.Helper()
	var published atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	pub := publisherFunc(func(ctx context.Context, evs []event.Envelope) []error {
		errs := bus.PublishBatch(ctx, evs)
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			}
		}
		if published.Add(int64(ok)) >= int64(n) {
			once.Do(func() { close(done) })
		}
		return errs
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := time.Now()
	for range relays {
		ob, err := postgres.NewOutbox(env.db, postgres.OutboxConfig{})
		if err != nil {
			b.Fatal(err)
		}
		r, err := relay.New(relay.Config{BatchSize: batch}, ob, pub, nil)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ob.Close()
			_ = r.Run(ctx)
		}()
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("relays published %d of %d in 5 minutes", published.Load(), n)
	}
	// Published means acked by JetStream; the rows are marked when the
	// last batch commits, which the relays finish before they stop.
	cancel()
	wg.Wait()
	elapsed := time.Since(start)
	if c := outboxCounts(b, env.db); c["pending"] != 0 {
		b.Fatalf("outbox after drain: %v", c)
	}
	return elapsed
}

// rawPublish async-publishes n envelopes of the relay's size straight to
// JetStream (dedupe ids included) and waits for every ack.
func rawPublish(b *testing.B, url string, n int) time.Duration {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
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
		f, err := js.PublishMsgAsync(&nats.Msg{Subject: e.Type, Data: bodies[i], Header: nats.Header{}}, jetstream.WithMsgID(e.ID))
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
