package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/ports"
)

func recorder() (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	rec := tracetest.NewSpanRecorder()
	return rec, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
}

// A log line written inside a span names the trace and the span; one
// written outside names neither.
func TestLogHandlerAddsTraceIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "x")
	_, tp := recorder()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	log.InfoContext(ctx, "inside")
	span.End()
	log.InfoContext(context.Background(), "outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var in, out map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &in)
	_ = json.Unmarshal([]byte(lines[1]), &out)
	sc := span.SpanContext()
	if in["trace_id"] != sc.TraceID().String() || in["span_id"] != sc.SpanID().String() || in["component"] != "x" {
		t.Errorf("inside: %v", in)
	}
	if _, ok := out["trace_id"]; ok {
		t.Errorf("outside: %v", out)
	}
}

func TestTraceParentRoundTrip(t *testing.T) {
	t.Parallel()
	if TraceParent(context.Background()) != "" {
		t.Fatal("a traceparent without a span")
	}
	_, tp := recorder()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	defer span.End()
	p := TraceParent(ctx)
	got := trace.SpanContextFromContext(WithTraceParent(context.Background(), p))
	if !got.IsRemote() || got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("%q → %v", p, got)
	}
	if sc := trace.SpanContextFromContext(WithTraceParent(context.Background(), "garbage")); sc.IsValid() {
		t.Fatal("garbage parsed")
	}
}

type outboxRec struct{ got []event.Envelope }

func (o *outboxRec) Append(_ context.Context, evs ...event.Envelope) error {
	o.got = append(o.got, evs...)
	return nil
}

// The outbox decorator stores the change's trace context with its events,
// under its own span, and never overwrites one an event already carries.
func TestOutboxStoresTraceContext(t *testing.T) {
	t.Parallel()
	rec, tp := recorder()
	inner := &outboxRec{}
	o := Outbox(inner, tp)
	ctx, span := tp.Tracer("t").Start(context.Background(), "request")
	in := []event.Envelope{{ID: "1", Type: event.AllocationRequested}, {ID: "2", Type: event.AllocationActive, TraceParent: "kept"}}
	if err := o.Append(ctx, in...); err != nil {
		t.Fatal(err)
	}
	span.End()
	if in[0].TraceParent != "" {
		t.Error("the caller's envelopes were changed")
	}
	ended := rec.Ended()
	var appendSpan sdktrace.ReadOnlySpan
	for _, s := range ended {
		if s.Name() == "outbox append" {
			appendSpan = s
		}
	}
	if appendSpan == nil || appendSpan.Parent().SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("no outbox append span under the request: %v", ended)
	}
	sc := trace.SpanContextFromContext(WithTraceParent(context.Background(), inner.got[0].TraceParent))
	if sc.SpanID() != appendSpan.SpanContext().SpanID() {
		t.Errorf("event 1 carries %q, want the append span", inner.got[0].TraceParent)
	}
	if inner.got[1].TraceParent != "kept" {
		t.Errorf("event 2's trace context replaced: %q", inner.got[1].TraceParent)
	}
	if Outbox(inner, nil) != ports.Outbox(inner) {
		t.Error("without tracing the outbox is not decorated")
	}
}

type pubStub struct{ fail map[string]bool }

func (p pubStub) PublishBatch(_ context.Context, evs []event.Encoded) []error {
	errs := make([]error, len(evs))
	for i, e := range evs {
		if p.fail[e.ID] {
			errs[i] = context.DeadlineExceeded
		}
	}
	return errs
}

// Transitions are counted by the state their published event records; a
// failed publish counts as a failure, not a transition.
func TestPublisherCountsTransitions(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	p := Publisher(pubStub{fail: map[string]bool{"3": true}}, reg)
	p.PublishBatch(context.Background(), []event.Encoded{
		{ID: "1", Type: event.AllocationRequested}, {ID: "2", Type: event.AllocationActive},
		{ID: "3", Type: event.AllocationReleased}, {ID: "4", Type: event.UsageDebited}})
	pp := p.(*publisher)
	for to, want := range map[string]float64{"requested": 1, "active": 1, "released": 0, "failed": 0} {
		if got := testutil.ToFloat64(pp.transitions.WithLabelValues(to)); got != want {
			t.Errorf("transitions{to=%s} = %v, want %v", to, got, want)
		}
	}
	if got := testutil.ToFloat64(pp.failed.WithLabelValues("PROVISIONING")); got != 1 {
		t.Errorf("failures = %v", got)
	}
	if got := testutil.ToFloat64(pp.published.WithLabelValues("BILLING")); got != 1 {
		t.Errorf("billing published = %v", got)
	}
	// A second process-wide decorator shares the families.
	if Publisher(pubStub{}, reg).(*publisher).transitions != pp.transitions {
		t.Error("families registered twice")
	}
}

type queueStub struct {
	ports.TaskQueue
	stored nodetask.Task
}

func (q *queueStub) Enqueue(_ context.Context, t nodetask.Task, _ func(nodetask.Envelope) (nodetask.Envelope, error)) (nodetask.Task, error) {
	q.stored = t
	return t, nil
}
func (q *queueStub) Lease(context.Context, string, int, time.Time) ([]nodetask.Task, error) {
	return []nodetask.Task{q.stored}, nil
}
func (q *queueStub) GetTask(context.Context, string) (nodetask.Task, error)  { return q.stored, nil }
func (q *queueStub) Complete(context.Context, string, nodetask.Result) error { return nil }

// A task enqueued inside a trace carries it; when its agent reports, the
// agent's work is an "agent task" span of that trace, from the lease to the
// report, linked to the report's own span.
func TestAgentTaskSpan(t *testing.T) {
	t.Parallel()
	rec, tp := recorder()
	reg := prometheus.NewRegistry()
	inner := &queueStub{}
	q := TaskQueue(inner, tp, reg)
	ctx, activity := tp.Tracer("t").Start(context.Background(), "activity")
	task := nodetask.Task{Envelope: nodetask.Envelope{TaskID: "t1", NodeID: "n1", Type: nodetask.ProvisionUser}}
	if _, err := q.Enqueue(ctx, task, nil); err != nil {
		t.Fatal(err)
	}
	activity.End()
	if inner.stored.TraceParent == "" {
		t.Fatal("no trace context stored with the task")
	}
	if _, err := q.Lease(context.Background(), "n1", 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	rctx, report := tp.Tracer("t").Start(context.Background(), "ReportTaskResult")
	if err := q.Complete(rctx, "n1", nodetask.Result{TaskID: "t1", Succeeded: true}); err != nil {
		t.Fatal(err)
	}
	report.End()
	var agent sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "agent task allocation.provision_user" {
			agent = s
		}
	}
	if agent == nil {
		t.Fatal("no agent task span")
	}
	if agent.SpanContext().TraceID() != activity.SpanContext().TraceID() || agent.Parent().SpanID() != activity.SpanContext().SpanID() {
		t.Errorf("agent task span is not the activity's child")
	}
	if len(agent.Links()) != 1 || agent.Links()[0].SpanContext.SpanID() != report.SpanContext().SpanID() {
		t.Errorf("agent task span not linked to the report: %v", agent.Links())
	}
	qq := q.(*taskQueue)
	if got := testutil.ToFloat64(qq.reports.WithLabelValues("succeeded")); got != 1 {
		t.Errorf("reports{succeeded} = %v", got)
	}
	if got := testutil.CollectAndCount(qq.run); got != 1 {
		t.Errorf("lease → report series = %d", got)
	}
}

type transStub struct{ a allocation.Allocation }

func (s transStub) MarkProvisioning(context.Context, string) (allocation.Allocation, error) {
	return s.a, nil
}
func (s transStub) MarkActive(context.Context, string) (allocation.Allocation, error) {
	return s.a, nil
}
func (s transStub) MarkFailed(context.Context, string, string) (allocation.Allocation, error) {
	return s.a, nil
}
func (s transStub) MarkReleased(context.Context, string) (allocation.Allocation, error) {
	return s.a, nil
}
func (s transStub) MarkReleaseFailed(context.Context, string, string) (allocation.Allocation, error) {
	return s.a, nil
}

// request → active is observed once per activation: a MarkActive that finds
// the allocation active since long ago (a retried activity) adds nothing.
func TestRequestToActiveOncePerActivation(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	now := time.Now()
	created := now.Add(-3 * time.Second)
	fresh := Transitions(transStub{allocation.Allocation{State: allocation.Active, CreatedAt: created, ActiveAt: &now}}, nil, reg)
	if _, err := fresh.MarkActive(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	old := now.Add(-time.Hour)
	stale := Transitions(transStub{allocation.Allocation{State: allocation.Active, CreatedAt: created.Add(-time.Hour), ActiveAt: &old}}, nil, reg)
	if _, err := stale.MarkActive(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	h := fresh.(*transitions).requestActive
	if n := testutil.CollectAndCount(h); n != 1 {
		t.Fatalf("series %d", n)
	}
	m := &dto.Metric{}
	if err := h.(prometheus.Metric).Write(m); err != nil {
		t.Fatal(err)
	}
	if c := m.GetHistogram().GetSampleCount(); c != 1 {
		t.Errorf("observed %d times, want 1", c)
	}
	if s := m.GetHistogram().GetSampleSum(); s < 2.9 || s > 3.1 {
		t.Errorf("observed %v s, want 3", s)
	}
}

func TestSQLSpanName(t *testing.T) {
	t.Parallel()
	for stmt, want := range map[string]string{
		"SELECT id FROM allocations WHERE x = $1":                          "SELECT allocations",
		"\n\t\tSELECT a.id, b.x\n\t\tFROM allocations a JOIN nodes b ON …": "SELECT allocations",
		"select 1": "SELECT",
		"INSERT INTO node_tasks (id) VALUES ($1)":                                                         "INSERT node_tasks",
		"UPDATE nodes SET task_seq = task_seq + 1":                                                        "UPDATE nodes",
		"DELETE FROM platform_outbox_events WHERE id = ANY(ARRAY(SELECT id FROM platform_outbox_events))": "DELETE platform_outbox_events",
		"-- a comment\nSELECT * FROM ledger_entries":                                                      "SELECT ledger_entries",
		"WITH x AS (SELECT 1) SELECT * FROM x":                                                            "WITH x",
		"SELECT * FROM (SELECT 1) s":                                                                      "SELECT",
		"BEGIN":                                                                                           "BEGIN",
		"   ":                                                                                             "SQL",
		"SELECT pg_notify($1, '')":                                                                        "SELECT",
		"SELECT fromage FROM cheeses":                                                                     "SELECT cheeses",
	} {
		if got := SQLSpanName(stmt); got != want {
			t.Errorf("%q → %q, want %q", stmt, got, want)
		}
	}
}

// queueRunner is a TaskRunner that is also a temporal.TaskQueue.
type queueRunner struct{ res nodetask.Result }

func (q queueRunner) RunTask(context.Context, string, nodetask.Type, any, string) (nodetask.Result, error) {
	return q.res, nil
}

func (q queueRunner) Enqueue(_ context.Context, nodeID string, typ nodetask.Type, _ any, _ string) (nodetask.Task, error) {
	return nodetask.Task{Envelope: nodetask.Envelope{TaskID: "t-" + nodeID, NodeID: nodeID, Type: typ}}, nil
}

func (q queueRunner) Wait(context.Context, string) (nodetask.Result, error) { return q.res, nil }

// The decorator keeps a runner's TaskQueue methods (the one-step
// provisioning needs them) and times queue → result like RunTask.
func TestTaskRunnerKeepsTheQueue(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	r := TaskRunner(queueRunner{res: nodetask.Result{Succeeded: true}}, nil, reg)
	q, ok := r.(temporal.TaskQueue)
	if !ok {
		t.Fatal("the decorated runner lost Enqueue/Wait")
	}
	task, err := q.Enqueue(context.Background(), "n1", nodetask.ProvisionUser, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Wait(context.Background(), task.TaskID); err != nil {
		t.Fatal(err)
	}
	n := testutil.CollectAndCount(reg, "gpuaas_node_task_duration_seconds")
	if n == 0 {
		t.Fatal("no node task histogram")
	}
	h := r.(*runnerQueue).duration.WithLabelValues(string(nodetask.ProvisionUser), "succeeded").(prometheus.Histogram)
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetHistogram().GetSampleCount(); got != 1 {
		t.Fatalf("%d observations of provision_user succeeded, want 1", got)
	}
	if _, ok := TaskRunner(runnerOnly{}, nil, prometheus.NewRegistry()).(temporal.TaskQueue); ok {
		t.Fatal("a runner without a queue gained one")
	}
}

type runnerOnly struct{}

func (runnerOnly) RunTask(context.Context, string, nodetask.Type, any, string) (nodetask.Result, error) {
	return nodetask.Result{}, nil
}
