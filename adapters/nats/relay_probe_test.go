//go:build probe

package nats_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/ports"
)

func procCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pgCPU sums CPU of this database's backends and Postgres' background
// writers, from /proc/<pid>/schedstat (nanoseconds; /proc/<pid>/stat
// counts 10 ms ticks, too coarse for a claim of 20,000 rows).
func pgCPU(b testing.TB, env *relayEnv) time.Duration {
	rows, err := env.db.Pool.Query(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR backend_type IN ('walwriter','background writer','checkpointer','autovacuum launcher')`)
	if err != nil {
		b.Fatal(err)
	}
	var pids []int
	for rows.Next() {
		var p int
		_ = rows.Scan(&p)
		pids = append(pids, p)
	}
	rows.Close()
	var t int64
	for _, p := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", p))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(data)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			t += ns
		}
	}
	return time.Duration(t)
}

// BenchmarkRelayProbe splits BenchmarkOutboxRelay's cost: for each relay
// drain and raw publish it prints wall time, this process's CPU (the
// embedded nats-server, the clients, the relays) and the CPU of this
// database's Postgres backends and WAL/background writers, both taken
// after the backlog's commit; then the claim alone (ProcessBatch with a
// publisher that does nothing) on the same backlog. A diagnostic, not part
// of make bench:
//
//	go test -tags probe -run '^$' -bench RelayProbe -benchtime 1x ./adapters/nats/
func BenchmarkRelayProbe(b *testing.B) {
	relays := benchEnvInt("GPUAAS_BENCH_RELAYS", 2)
	batch := benchEnvInt("GPUAAS_BENCH_BATCH", 0)
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

	var rl, rw []m
	for range 5 {
		var base int64
		rl = append(rl, measure(b, env, func() { base = running.published.Load(); insertBacklog(b, env, writer) }, func() time.Duration { return running.drainInserted(b, env, base, benchEvents) }))
		rw = append(rw, measure(b, env, nil, func() time.Duration { return rawPublish(b, cfg, benchEvents) }))
	}
	running.stop()
	// Claim alone: the same backlog drained by ProcessBatch with a
	// publisher that does nothing.
	var cl []m
	for range 3 {
		cl = append(cl, measure(b, env, func() { insertBacklog(b, env, writer) }, func() time.Duration { return claimOnly(b, env, relays, batch) }))
	}
	pr := func(name string, ms []m) {
		slices.SortFunc(ms, func(a, b m) int { return int(a.wall - b.wall) })
		for _, x := range ms {
			fmt.Printf("%-6s wall %6.1fms rate %6.0f/s  self cpu %6.1fms  pg cpu %6.1fms\n", name,
				float64(x.wall.Microseconds())/1000, benchEvents/x.wall.Seconds(),
				float64(x.self.Microseconds())/1000, float64(x.pg.Microseconds())/1000)
		}
	}
	pr("relay", rl)
	pr("raw", rw)
	pr("claim", cl)
	med := func(ms []m, f func(m) time.Duration) float64 {
		v := make([]float64, len(ms))
		for i, x := range ms {
			v[i] = float64(f(x).Microseconds()) / 1000
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	self := func(x m) time.Duration { return x.self }
	pg := func(x m) time.Duration { return x.pg }
	fmt.Printf("medians (ms of CPU per %d events): relay self %.1f pg %.1f; raw self %.1f pg %.1f; claim alone self %.1f pg %.1f\n",
		benchEvents, med(rl, self), med(rl, pg), med(rw, self), med(rw, pg), med(cl, self), med(cl, pg))
}

type m struct{ wall, self, pg time.Duration }

func measure(b *testing.B, env *relayEnv, setup func(), f func() time.Duration) m {
	if setup != nil {
		setup()
	}
	c0, p0 := procCPU(), pgCPU(b, env)
	w := f()
	return m{w, procCPU() - c0, pgCPU(b, env) - p0}
}

func insertBacklog(b *testing.B, env *relayEnv, writer *postgres.Outbox) {
	ctx := context.Background()
	evs := testEvents(benchEvents)
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
}

// drainInserted waits for the relays to publish n more events after a
// backlog was committed.
func (br *benchRelays) drainInserted(b *testing.B, env *relayEnv, base int64, n int) time.Duration {
	start := time.Now()
	for br.published.Load()-base < int64(n) {
		<-br.progress
	}
	for outboxLeft(b, env.db) != 0 {
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func claimOnly(b *testing.B, env *relayEnv, relays, batch int) time.Duration {
	if batch == 0 {
		batch = 1000
	}
	ctx := context.Background()
	start := time.Now()
	done := make(chan struct{}, relays)
	for range relays {
		go func() {
			defer func() { done <- struct{}{} }()
			ob, _ := postgres.NewOutbox(env.db, postgres.OutboxConfig{})
			defer ob.Close()
			for {
				n, err := ob.ProcessBatch(ctx, batch, func(_ context.Context, recs []ports.OutboxRecord) []error {
					return make([]error, len(recs))
				})
				if err != nil {
					b.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		}()
	}
	for range relays {
		<-done
	}
	return time.Since(start)
}
