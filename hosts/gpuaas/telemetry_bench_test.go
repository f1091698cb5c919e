package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/fx"

	httphost "github.com/gpuaas/gpuaas/hosts/http"
	"github.com/gpuaas/gpuaas/testkit/e2e"
)

// Shape of the telemetry overhead benchmark.
const (
	telemetrySamples   = 9     // interleaved pairs (off, on)
	telemetryRequests  = 10000 // GET /allocations per sample
	telemetryClients   = 8     // concurrent keep-alive connections
	telemetryGoalRatio = 0.9
)

// BenchmarkTelemetryOverhead measures what tracing costs the API: GET
// /api/v1/allocations (authentication, rate limit, project check, one
// query) against two `serve api` processes of one platform, on the same
// database, in the same run — "off" as every process runs without
// OTEL_EXPORTER_OTLP_ENDPOINT (no tracing layer; the Prometheus counters a
// process always keeps are on both sides), and "on" with it, exporting over
// OTLP/HTTP (the SDK's batching processor, defaults) to a receiver on
// loopback: HTTP and SQL spans for every request, the admin registry with
// every family. Nine interleaved samples of 10,000 requests from 8 clients
// each; it prints req/s min and median of both and the ratio on ÷ off of
// the medians and of the minimums (goal ≥ 0.9), and the process's CPU per
// request on each side (steadier than req/s on a shared machine). The
// process collects at the API's target, as both processes would.
func BenchmarkTelemetryOverhead(b *testing.B) {
	b.StopTimer()
	// Both sides stand for API processes, which collect at the API's target
	// (`gpuaas serve api` and `gpuaas dev` apply it); the test binary would
	// otherwise run them at Go's default.
	defer debug.SetGCPercent(httphost.TuneGC(os.Getenv))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	run, o, _ := startTestPlatform(ctx, b)

	var spans atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		spans.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(receiver.Close)

	// "on": a second API process of the same platform with tracing.
	on := run.settings
	on.HTTPAddr = freeAddr(b)
	on.OTLPEndpoint = receiver.URL
	on.MetricsAddr = ""
	app := fx.New(apiOptions(on, slog.New(slog.DiscardHandler), false, false), fx.NopLogger)
	if err := app.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = app.Stop(stopCtx)
	})

	c := e2e.New("http://" + o.httpAddr)
	if err := c.Login(ctx, "alice", "alice"); err != nil {
		b.Fatal(err)
	}
	if err := c.TopUp(ctx, 5000, "usd"); err != nil {
		b.Fatal(err)
	}
	if _, _, err := c.AddSSHKey(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	skuID, err := waitForCapacity(ctx, c, o.nodeSKU)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 2; i++ { // a list with something in it
		var a e2e.Allocation
		if err := c.Call(ctx, "POST", "/api/v1/allocations", map[string]any{"sku_id": skuID}, &a); err != nil {
			b.Fatal(err)
		}
	}

	// load returns requests/s and this process's CPU per request (the
	// serving side's work and the clients', which both sides share).
	load := func(base string) (float64, time.Duration, error) {
		client := &http.Client{Timeout: 30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: telemetryClients, MaxConnsPerHost: telemetryClients}}
		defer client.CloseIdleConnections()
		var next atomic.Int64
		var firstErr error
		var mu sync.Mutex
		var wg sync.WaitGroup
		began, cpu0 := time.Now(), processCPU()
		for w := 0; w < telemetryClients; w++ {
			wg.Go(func() {
				for next.Add(1) <= telemetryRequests {
					req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/allocations", nil)
					req.Header.Set("Authorization", "Bearer "+c.Token)
					req.Header.Set("X-Project-ID", c.Project)
					resp, err := client.Do(req)
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("GET /api/v1/allocations: %s", resp.Status)
						}
					}
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						return
					}
				}
			})
		}
		wg.Wait()
		return telemetryRequests / time.Since(began).Seconds(), (processCPU() - cpu0) / telemetryRequests, firstErr
	}
	offURL, onURL := "http://"+o.httpAddr, "http://"+on.HTTPAddr
	for _, u := range []string{offURL, onURL} { // warm both: connections, caches, the JIT of the pool
		if _, _, err := load(u); err != nil {
			b.Fatal(err)
		}
	}
	b.StartTimer()
	var off, onRates, offCPU, onCPU []float64
	for i := 0; i < telemetrySamples; i++ {
		first, second := offURL, onURL
		if i%2 == 1 { // alternate which goes first
			first, second = onURL, offURL
		}
		for _, u := range []string{first, second} {
			r, cpu, err := load(u)
			if err != nil {
				b.Fatal(err)
			}
			if u == offURL {
				off, offCPU = append(off, r), append(offCPU, float64(cpu.Nanoseconds())/1e3)
			} else {
				onRates, onCPU = append(onRates, r), append(onCPU, float64(cpu.Nanoseconds())/1e3)
			}
		}
	}
	b.StopTimer()
	med := func(v []float64) float64 {
		s := slices.Clone(v)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	ratio := med(onRates) / med(off)
	line := fmt.Sprintf("telemetry overhead, GET /api/v1/allocations: off min %.0f median %.0f req/s; on min %.0f median %.0f req/s; "+
		"on/off median %.2f, min %.2f (goal ≥ %.1f); %d samples × %d requests, %d clients; %d KiB of spans exported",
		slices.Min(off), med(off), slices.Min(onRates), med(onRates), ratio, slices.Min(onRates)/slices.Min(off),
		telemetryGoalRatio, telemetrySamples, telemetryRequests, telemetryClients, spans.Load()/1024)
	fmt.Println(line)
	b.Log(line)
	fmt.Printf("telemetry overhead: CPU of this process per request (servers and clients), median off %.1f µs, on %.1f µs (+%.1f)\n",
		med(offCPU), med(onCPU), med(onCPU)-med(offCPU))
	b.ReportMetric(ratio, "on/off")
}

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
