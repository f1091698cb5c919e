package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// startTestPlatform runs the whole platform in-process the way `gpuaas dev`
// does (startDev), on a fresh database, free loopback ports and temporary
// directories, and stops it at cleanup. A port taken between picking and
// binding is retried on fresh ports. It skips loudly (fails under
// GPUAAS_REQUIRE_SERVICES=1) without the Temporal CLI.
func startTestPlatform(ctx context.Context, tb testing.TB, opts ...func(*devOptions)) (*devRun, devOptions, *postgres.DB) {
	tb.Helper()
	return startTestPlatformEnv(ctx, tb, nil, opts...)
}

// startTestPlatformEnv is startTestPlatform with more environment variables
// (OTEL_EXPORTER_OTLP_ENDPOINT, GPUAAS_METRICS_ADDR, …) seen by the settings
// and by gpuaas dev.
func startTestPlatformEnv(ctx context.Context, tb testing.TB, env map[string]string, opts ...func(*devOptions)) (*devRun, devOptions, *postgres.DB) {
	tb.Helper()
	if _, err := temporal.LocateCLI(); err != nil {
		services.Unavailable(tb, "temporal_cli", fmt.Errorf("%w; install it with `make tools`", err))
	}
	for try := 1; ; try++ {
		run, o, db, err := startPlatformOnce(ctx, tb, env, opts...)
		if err == nil {
			// A cleanup, not a defer: it runs after clients registered later
			// are closed.
			tb.Cleanup(func() {
				stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := run.stop(stopCtx); err != nil {
					tb.Errorf("stop: %v", err)
				}
			})
			return run, o, db
		}
		if try == 3 || !strings.Contains(err.Error(), "address already in use") {
			tb.Fatalf("start the platform: %v", err)
		}
		tb.Logf("start the platform (try %d): %v; retrying on other ports", try, err)
	}
}

func startPlatformOnce(ctx context.Context, tb testing.TB, env map[string]string, opts ...func(*devOptions)) (*devRun, devOptions, *postgres.DB, error) {
	dbURL := services.FreshDatabaseURL(tb)
	// Raise the per-user rate limits before the app starts: benchmark
	// clients poll every few milliseconds, well above the default 600/min.
	db, err := postgres.Open(ctx, postgres.Config{URL: dbURL, Migrate: true})
	if err != nil {
		tb.Fatal(err)
	}
	for _, k := range []policy.Key{policy.RateLimitDefaultRPM, policy.RateLimitMutateRPM, policy.RateLimitAuthRPM} {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO policies (scope, key, value) VALUES ('', $1, '1000000')`, k.Name); err != nil {
			tb.Fatal(err)
		}
	}
	db.Close()

	o := devOptions{dataDir: tb.TempDir(), httpAddr: freeAddr(tb), oidcAddr: freeAddr(tb), agentAddr: freeAddr(tb),
		nodes: 2, nodeSKU: "h100-80g-x1", sshPort: freeConsecutivePorts(tb, 2)}
	for _, opt := range opts {
		opt(&o)
	}
	vars := map[string]string{"DATABASE_URL": dbURL, "GPUAAS_LOG_LEVEL": envOr(os.Getenv, "GPUAAS_TEST_LOG_LEVEL", "error"),
		"GPUAAS_LOG_FORMAT": "text"}
	for k, v := range env {
		vars[k] = v
	}
	s, err := readSettings(func(k string) string { return vars[k] })
	if err != nil {
		tb.Fatal(err)
	}
	var appDB *postgres.DB
	run, err := startDev(ctx, s, o, func(k string) string { return env[k] }, io.Discard, fx.Populate(&appDB))
	return run, o, appDB, err
}

// freeAddr is a free 127.0.0.1 address on a port below the kernel's
// ephemeral range. A port from ":0" is an ephemeral one, which any outgoing
// connection made before the platform under test listens on it may take
// (a CI run failed so: "bind: address already in use").
func freeAddr(tb testing.TB) string {
	tb.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freeConsecutivePorts(tb, 1)))
}

// belowEphemeral is where the kernel's ephemeral ports start (Linux's
// default when /proc does not say): ports under it are never handed to an
// outgoing connection, so one found free stays free until it is bound.
func belowEphemeral() int {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 20_001 {
				lo = n
			}
		}
	}
	return lo
}

// freeConsecutivePorts finds n consecutive ports free on 127.0.0.1 below
// the ephemeral range, as freeAddr does (the sandbox nodes take
// FirstPort+i-1).
func freeConsecutivePorts(tb testing.TB, n int) int {
	tb.Helper()
	lo := belowEphemeral()
	for range 200 {
		first := 20_000 + rand.IntN(max(lo-20_000-n, 1))
		var ls []net.Listener
		for i := range n {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(first+i)))
			if err != nil {
				break // taken
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == n {
			return first
		}
	}
	tb.Fatalf("no %d consecutive free ports below the ephemeral range", n)
	return 0
}
