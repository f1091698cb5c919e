package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/gpuaas/gpuaas/testkit/e2e"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

// otlpCollector is an OTLP/HTTP trace receiver on loopback: what an
// OpenTelemetry collector would get from the platform's exporter.
type otlpCollector struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func startOTLPCollector(t *testing.T) *otlpCollector {
	t.Helper()
	c := &otlpCollector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		raw, err := io.ReadAll(body)
		var req collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(raw, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				c.spans = append(c.spans, ss.GetSpans()...)
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// trace returns the spans of one trace.
func (c *otlpCollector) trace(id []byte) []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range c.spans {
		if bytes.Equal(s.GetTraceId(), id) {
			out = append(out, s)
		}
	}
	return out
}

// find returns the first span whose name matches, with its trace id.
func (c *otlpCollector) find(match func(*tracepb.Span) bool) *tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if match(s) {
			return s
		}
	}
	return nil
}

func attr(s *tracepb.Span, key string) string {
	for _, a := range s.GetAttributes() {
		if a.GetKey() == key {
			return a.GetValue().GetStringValue()
		}
	}
	return ""
}

// TestObservability runs one allocation through `gpuaas dev` with
// OTEL_EXPORTER_OTLP_ENDPOINT pointing at an in-test OTLP receiver and the
// admin listener on: the allocation is one trace, from the API request
// through SQL, the outbox, NATS, the Temporal workflow and its activities,
// the agent's task to the activation; and the admin listener's /metrics
// shows every family doc/observability.md lists, with the allocation,
// terminal, payment and heartbeat counts it caused.
func TestObservability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole platform")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	collector := startOTLPCollector(t)
	admin := freeAddr(t)
	_, o, _ := startTestPlatformEnv(ctx, t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL, "GPUAAS_METRICS_ADDR": admin})
	c := e2e.New("http://" + o.httpAddr)
	if err := c.Login(ctx, "alice", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.TopUp(ctx, 5000, "usd"); err != nil {
		t.Fatal(err)
	}
	if _, err := waitForCapacity(ctx, c, o.nodeSKU); err != nil {
		t.Fatal(err)
	}
	var allocID string
	err := e2e.GoldenPath(ctx, c, o.nodeSKU, func(format string, a ...any) {
		if strings.HasPrefix(format, "requested allocation") && len(a) > 0 {
			allocID = fmt.Sprint(a[0])
		}
		t.Logf(format, a...)
	})
	if err != nil {
		t.Fatal(err)
	}

	// The trace: the POST that requested the allocation is its root.
	// The batching exporter sends every 5 s.
	var root *tracepb.Span
	poll.Until(t, time.Minute, "the span of the allocation's request", func() bool {
		root = collector.find(func(s *tracepb.Span) bool {
			return s.GetName() == "POST /api/v1/allocations" && len(s.GetParentSpanId()) == 0
		})
		return root != nil
	})
	want := map[string]func(*tracepb.Span) bool{
		"HTTP":     func(s *tracepb.Span) bool { return s.GetName() == "POST /api/v1/allocations" },
		"SQL":      func(s *tracepb.Span) bool { return attr(s, "db.system.name") == "postgresql" },
		"outbox":   func(s *tracepb.Span) bool { return s.GetName() == "outbox append" },
		"NATS":     func(s *tracepb.Span) bool { return s.GetName() == "publish provisioning.allocation_requested" },
		"consumer": func(s *tracepb.Span) bool { return s.GetName() == "process provisioning.allocation_requested" },
		"Temporal": func(s *tracepb.Span) bool { return strings.HasPrefix(s.GetName(), "RunWorkflow:ProvisionAllocation") },
		// The node task's activity: the one-step local activity, or the
		// durable one it hands a slow node to.
		"activity": func(s *tracepb.Span) bool {
			return strings.HasPrefix(s.GetName(), "RunActivity:ProvisionInOneStep") ||
				strings.HasPrefix(s.GetName(), "RunActivity:ProvisionAndActivate")
		},
		"agent task": func(s *tracepb.Span) bool { return s.GetName() == "agent task allocation.provision_user" },
		"activation": func(s *tracepb.Span) bool {
			return s.GetName() == "allocation activate" && attr(s, "gpuaas.allocation_id") == allocID
		},
	}
	var missing []string
	if !eventually(time.Minute, func() bool {
		spans := collector.trace(root.GetTraceId())
		missing = missing[:0]
		for name, match := range want {
			found := false
			for _, s := range spans {
				if match(s) {
					found = true
					break
				}
			}
			if !found {
				missing = append(missing, name)
			}
		}
		return len(missing) == 0
	}) {
		var names []string
		for _, s := range collector.trace(root.GetTraceId()) {
			names = append(names, s.GetName())
		}
		t.Fatalf("the allocation's trace lacks %v; it has %v", missing, names)
	}
	// Every span of the trace hangs off another one of it: one tree (a
	// parent may still be in the exporter's next batch).
	var orphans []string
	if !eventually(time.Minute, func() bool {
		spans := collector.trace(root.GetTraceId())
		ids := map[string]bool{}
		for _, s := range spans {
			ids[string(s.GetSpanId())] = true
		}
		orphans = orphans[:0]
		for _, s := range spans {
			if p := s.GetParentSpanId(); len(p) > 0 && !ids[string(p)] {
				orphans = append(orphans, s.GetName())
			}
		}
		return len(orphans) == 0
	}) {
		t.Errorf("spans of the trace whose parent is not in it: %v", orphans)
	}
	t.Logf("allocation %s: one trace of %d spans", allocID, len(collector.trace(root.GetTraceId())))

	// The metrics, on the admin listener.
	families := []string{
		"gpuaas_http_requests_total", "gpuaas_http_request_duration_seconds",
		"gpuaas_db_pool_acquired_connections", "gpuaas_db_pool_acquires_total",
		"gpuaas_outbox_pending_events", "gpuaas_outbox_oldest_pending_age_seconds", "gpuaas_outbox_failed_events",
		"gpuaas_events_published_total", "gpuaas_consumer_pending_messages", "gpuaas_consumer_ack_pending_messages",
		"gpuaas_allocation_transitions_total", "gpuaas_allocation_request_to_active_seconds",
		"gpuaas_allocation_release_seconds", "gpuaas_allocations", "gpuaas_nodes",
		"gpuaas_node_heartbeats_total", "gpuaas_node_task_duration_seconds", "gpuaas_node_task_reports_total",
		"gpuaas_node_task_agent_seconds", "gpuaas_rpc_requests_total",
		"gpuaas_terminal_sessions_active", "gpuaas_terminal_sessions_total", "gpuaas_terminal_bytes_total",
		"gpuaas_terminal_connection_seconds",
		"gpuaas_billing_window_duration_seconds", "gpuaas_billing_debited_records_total",
		"gpuaas_billing_last_window_end_timestamp_seconds",
		"gpuaas_webhook_deliveries_total", "gpuaas_payment_webhooks_total",
	}
	var got map[string]*dto.MetricFamily
	var scrapeErr error
	poll.Until(t, time.Minute, "a released transition and a billing window in /metrics", func() bool {
		got, scrapeErr = scrape("http://" + admin + "/metrics")
		return scrapeErr == nil && value(got, "gpuaas_allocation_transitions_total", "to", "released") >= 1 &&
			count(got, "gpuaas_billing_window_duration_seconds") >= 1
	})
	for _, f := range families {
		if got[f] == nil {
			t.Errorf("/metrics lacks %s", f)
		}
	}
	for _, c := range []struct {
		family, label, value string
		atLeast              float64
	}{
		{"gpuaas_allocation_transitions_total", "to", "requested", 1},
		{"gpuaas_allocation_transitions_total", "to", "active", 1},
		{"gpuaas_terminal_sessions_total", "outcome", "opened", 1},
		{"gpuaas_terminal_bytes_total", "direction", "to_browser", 1},
		{"gpuaas_terminal_bytes_total", "direction", "to_node", 1},
		{"gpuaas_payment_webhooks_total", "outcome", "credited", 1},
		{"gpuaas_node_heartbeats_total", "outcome", "ok", 1},
		{"gpuaas_node_task_reports_total", "outcome", "succeeded", 2}, // provision, then revoke
	} {
		if v := value(got, c.family, c.label, c.value); v < c.atLeast {
			t.Errorf("%s{%s=%q} = %v, want ≥ %v", c.family, c.label, c.value, v, c.atLeast)
		}
	}
	if n := count(got, "gpuaas_allocation_request_to_active_seconds"); n < 1 {
		t.Errorf("request → active observed %d times, want ≥ 1", n)
	}
	if v := value(got, "gpuaas_consumer_pending_messages", "durable", "provisioning-worker-requested"); v < 0 {
		t.Errorf("consumer lag of provisioning-worker-requested missing")
	}
}

func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// value is the sum of a family's counters or gauges whose label has the
// value; -1 when the family has no such series.
func value(fams map[string]*dto.MetricFamily, family, label, val string) float64 {
	f := fams[family]
	if f == nil {
		return -1
	}
	sum, found := 0.0, false
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == val {
				found = true
				if m.GetCounter() != nil {
					sum += m.GetCounter().GetValue()
				} else if m.GetGauge() != nil {
					sum += m.GetGauge().GetValue()
				}
			}
		}
	}
	if !found {
		return -1
	}
	return sum
}

// count is how many observations a histogram family holds.
func count(fams map[string]*dto.MetricFamily, family string) uint64 {
	f := fams[family]
	if f == nil {
		return 0
	}
	var n uint64
	for _, m := range f.GetMetric() {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

// eventually checks cond every 100 ms until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}
