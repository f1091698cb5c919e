package telemetry

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/ledger/billing"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/ports"
)

// fail marks a span failed. The error's text is not recorded: it may carry
// what a caller sent (the spans' redaction test pins this); the kind of
// failure is in the status description only as "error".
func fail(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "error")
	}
}

// ---- outbox ----------------------------------------------------------------

type outbox struct {
	next   ports.Outbox
	tracer trace.Tracer
}

// Outbox stores the trace context of the change with each event it
// appends (Envelope.TraceParent, inside the change's transaction), under an
// "outbox append" span, so the relay and the consumers continue the trace.
// Without a tracer provider it returns next.
func Outbox(next ports.Outbox, tp trace.TracerProvider) ports.Outbox {
	if tp == nil {
		return next
	}
	return &outbox{next: next, tracer: tp.Tracer(Scope)}
}

func (o *outbox) Append(ctx context.Context, events ...event.Envelope) error {
	if len(events) == 0 {
		return o.next.Append(ctx, events...)
	}
	ctx, span := o.tracer.Start(ctx, "outbox append", trace.WithAttributes(
		attribute.String("messaging.destination.name", events[0].Type), attribute.Int("gpuaas.events", len(events))))
	defer span.End()
	tp := TraceParent(ctx)
	evs := make([]event.Envelope, len(events))
	for i, e := range events {
		if e.TraceParent == "" {
			e.TraceParent = tp
		}
		evs[i] = e
	}
	err := o.next.Append(ctx, evs...)
	fail(span, err)
	return err
}

// ---- publisher (relay side) ------------------------------------------------

// transitionOf names the allocation state an event's subject records
// (every state change but provisioning writes one).
var transitionOf = map[string]string{
	event.AllocationRequested:     string(allocation.Requested),
	event.AllocationActive:        string(allocation.Active),
	event.AllocationFailed:        string(allocation.Failed),
	event.AllocationReleaseReq:    string(allocation.Releasing),
	event.AllocationReleased:      string(allocation.Released),
	event.AllocationReleaseFailed: string(allocation.ReleaseFailed),
}

type publisher struct {
	next        ports.Publisher
	published   *prometheus.CounterVec
	failed      *prometheus.CounterVec
	transitions *prometheus.CounterVec
}

// Publisher counts what the relay publishes: events by stream, failed
// publishes, and allocation state transitions by the state their event
// records (counted when the event reaches the bus: at least once, so a relay
// that dies mid-batch may count that batch twice).
func Publisher(next ports.Publisher, reg prometheus.Registerer) ports.Publisher {
	p := &publisher{next: next,
		published: counterVec(reg, "gpuaas_events_published_total", "Events the outbox relay published, by stream.", "stream"),
		failed:    counterVec(reg, "gpuaas_event_publish_failures_total", "Event publishes the bus refused or did not acknowledge, by stream.", "stream"),
		transitions: counterVec(reg, "gpuaas_allocation_transitions_total",
			"Allocation state transitions by the state entered, counted when their event is published.", "to"),
	}
	for _, s := range event.Streams {
		p.published.WithLabelValues(s.Name)
		p.failed.WithLabelValues(s.Name)
	}
	for _, to := range transitionOf {
		p.transitions.WithLabelValues(to)
	}
	return p
}

func (p *publisher) PublishBatch(ctx context.Context, events []event.Encoded) []error {
	errs := p.next.PublishBatch(ctx, events)
	for i, e := range events {
		stream := "unknown"
		if s, ok := event.StreamFor(e.Type); ok {
			stream = s.Name
		}
		if i < len(errs) && errs[i] != nil {
			p.failed.WithLabelValues(stream).Inc()
			continue
		}
		p.published.WithLabelValues(stream).Inc()
		if to, ok := transitionOf[e.Type]; ok {
			p.transitions.WithLabelValues(to).Inc()
		}
	}
	return errs
}

// ---- node tasks (queue side: the agent gateway and the enqueuers) ---------

type taskQueue struct {
	ports.TaskQueue
	tracer  trace.Tracer
	reports *prometheus.CounterVec
	run     prometheus.Histogram

	mu     sync.Mutex
	leased map[string]time.Time // task id → when an agent took it (this replica)
}

// maxLeased bounds the lease times remembered for agent-task spans: tasks
// whose agent never reports are forgotten when it fills.
const maxLeased = 10000

// TaskQueue stores the enqueuer's trace context with each task, and when
// the agent's result arrives traces the agent's work as an "agent task"
// span in that trace (from when an agent took the task to its report: the
// agent itself carries no tracing). It counts reports by outcome and times
// lease → report. tp may be nil (metrics only).
func TaskQueue(next ports.TaskQueue, tp trace.TracerProvider, reg prometheus.Registerer) ports.TaskQueue {
	q := &taskQueue{TaskQueue: next, leased: map[string]time.Time{},
		reports: counterVec(reg, "gpuaas_node_task_reports_total", "Node task results agents reported, by outcome.", "outcome"),
		run: histogram(reg, "gpuaas_node_task_agent_seconds",
			"Time from an agent taking a node task to its report, seconds.", slowBuckets),
	}
	for _, o := range []string{"succeeded", "failed", "refused"} {
		q.reports.WithLabelValues(o)
	}
	if tp != nil {
		q.tracer = tp.Tracer(Scope)
	}
	return q
}

func (q *taskQueue) Enqueue(ctx context.Context, t nodetask.Task, sign func(nodetask.Envelope) (nodetask.Envelope, error)) (nodetask.Task, error) {
	if q.tracer != nil && t.TraceParent == "" {
		t.TraceParent = TraceParent(ctx)
	}
	return q.TaskQueue.Enqueue(ctx, t, sign)
}

func (q *taskQueue) Lease(ctx context.Context, nodeID string, max int, leaseUntil time.Time) ([]nodetask.Task, error) {
	tasks, err := q.TaskQueue.Lease(ctx, nodeID, max, leaseUntil)
	if len(tasks) > 0 {
		now := time.Now()
		q.mu.Lock()
		if len(q.leased)+len(tasks) > maxLeased {
			clear(q.leased)
		}
		for _, t := range tasks {
			q.leased[t.TaskID] = now
		}
		q.mu.Unlock()
	}
	return tasks, err
}

func (q *taskQueue) Complete(ctx context.Context, nodeID string, r nodetask.Result) error {
	q.mu.Lock()
	leasedAt, known := q.leased[r.TaskID]
	delete(q.leased, r.TaskID)
	q.mu.Unlock()
	var span trace.Span
	if q.tracer != nil {
		if t, err := q.TaskQueue.GetTask(ctx, r.TaskID); err == nil && t.TraceParent != "" && t.NodeID == nodeID {
			start := leasedAt
			if !known {
				start = time.Now()
			}
			// The report's own span (the RPC) is linked; the agent task
			// belongs to the trace that enqueued it.
			link := trace.LinkFromContext(ctx)
			var sctx context.Context
			sctx, span = q.tracer.Start(WithTraceParent(context.WithoutCancel(ctx), t.TraceParent), "agent task "+string(t.Type),
				trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(link),
				trace.WithAttributes(attribute.String("gpuaas.node_id", nodeID), attribute.String("gpuaas.task_id", r.TaskID),
					attribute.String("gpuaas.task_type", string(t.Type)), attribute.Bool("gpuaas.succeeded", r.Succeeded),
					attribute.String("gpuaas.error_code", r.ErrorCode)))
			ctx = trace.ContextWithSpan(ctx, trace.SpanFromContext(sctx))
		}
	}
	err := q.TaskQueue.Complete(ctx, nodeID, r)
	if span != nil {
		fail(span, err)
		if !r.Succeeded {
			span.SetStatus(codes.Error, "task failed")
		}
		span.End()
	}
	if err == nil {
		outcome := "failed"
		switch {
		case r.Succeeded:
			outcome = "succeeded"
		case isRefusal(r.ErrorCode):
			outcome = "refused"
		}
		q.reports.WithLabelValues(outcome).Inc()
		if known {
			q.run.Observe(time.Since(leasedAt).Seconds())
		}
	}
	return err
}

// isRefusal reports the agent verifier's codes (doc/node-agent.md): the
// task never ran.
func isRefusal(code string) bool {
	switch code {
	case "bad_signature", "wrong_node", "expired", "replayed", "unknown_type", "bad_params":
		return true
	}
	return false
}

// ---- allocation transitions (provisioning worker) --------------------------

type transitions struct {
	next          temporal.AllocationTransitions
	tracer        trace.Tracer
	requestActive prometheus.Histogram
	release       prometheus.Histogram
}

// Transitions traces the provisioning workflows' state changes
// ("allocation activate" is the activation) and observes request → active
// for each allocation that becomes active and release request → released
// for each that is released. tp may be nil.
func Transitions(next temporal.AllocationTransitions, tp trace.TracerProvider, reg prometheus.Registerer) temporal.AllocationTransitions {
	t := &transitions{next: next,
		requestActive: histogram(reg, "gpuaas_allocation_request_to_active_seconds",
			"Time from an allocation's request to its activation, seconds.", slowBuckets),
		release: histogram(reg, "gpuaas_allocation_release_seconds",
			"Time from an allocation's release request to released, seconds.", slowBuckets),
	}
	if tp != nil {
		t.tracer = tp.Tracer(Scope)
	}
	return t
}

func (t *transitions) span(ctx context.Context, name, id string) (context.Context, trace.Span) {
	if t.tracer == nil {
		return ctx, nil
	}
	return t.tracer.Start(ctx, name, trace.WithAttributes(attribute.String("gpuaas.allocation_id", id)))
}

func done(span trace.Span, a allocation.Allocation, err error) {
	if span == nil {
		return
	}
	fail(span, err)
	if err == nil {
		span.SetAttributes(attribute.String("gpuaas.allocation_state", string(a.State)))
	}
	span.End()
}

func (t *transitions) MarkProvisioning(ctx context.Context, id string) (allocation.Allocation, error) {
	ctx, span := t.span(ctx, "allocation provisioning", id)
	a, err := t.next.MarkProvisioning(ctx, id)
	done(span, a, err)
	return a, err
}

func (t *transitions) MarkActive(ctx context.Context, id string) (allocation.Allocation, error) {
	began := time.Now()
	ctx, span := t.span(ctx, "allocation activate", id)
	a, err := t.next.MarkActive(ctx, id)
	done(span, a, err)
	// Once per activation: a repeated MarkActive (an activity retried after
	// it had activated) returns the first activation's time.
	if err == nil && a.State == allocation.Active && a.ActiveAt != nil && !a.ActiveAt.Before(began.Add(-time.Second)) {
		t.requestActive.Observe(a.ActiveAt.Sub(a.CreatedAt).Seconds())
	}
	return a, err
}

func (t *transitions) MarkFailed(ctx context.Context, id, code string) (allocation.Allocation, error) {
	ctx, span := t.span(ctx, "allocation fail", id)
	a, err := t.next.MarkFailed(ctx, id, code)
	done(span, a, err)
	return a, err
}

func (t *transitions) MarkReleased(ctx context.Context, id string) (allocation.Allocation, error) {
	began := time.Now()
	ctx, span := t.span(ctx, "allocation released", id)
	a, err := t.next.MarkReleased(ctx, id)
	done(span, a, err)
	if err == nil && a.State == allocation.Released && a.ReleasedAt != nil && a.ReleaseRequestedAt != nil &&
		!a.ReleasedAt.Before(began.Add(-time.Second)) {
		t.release.Observe(a.ReleasedAt.Sub(*a.ReleaseRequestedAt).Seconds())
	}
	return a, err
}

func (t *transitions) MarkReleaseFailed(ctx context.Context, id, code string) (allocation.Allocation, error) {
	ctx, span := t.span(ctx, "allocation release failed", id)
	a, err := t.next.MarkReleaseFailed(ctx, id, code)
	done(span, a, err)
	return a, err
}

// ---- node tasks (workflow side) --------------------------------------------

type taskRunner struct {
	next     temporal.TaskRunner
	tracer   trace.Tracer
	duration *prometheus.HistogramVec
}

// TaskRunner times each node task a workflow runs, from enqueue to the
// agent's result, by type and outcome, under a "node task" span. tp may be
// nil.
func TaskRunner(next temporal.TaskRunner, tp trace.TracerProvider, reg prometheus.Registerer) temporal.TaskRunner {
	r := &taskRunner{next: next,
		duration: histogramVec(reg, "gpuaas_node_task_duration_seconds",
			"Node tasks from enqueue to the agent's result, seconds, by type and outcome (succeeded, failed, error).",
			slowBuckets, "type", "outcome"),
	}
	for _, typ := range nodetask.Catalogue {
		for _, o := range []string{"succeeded", "failed", "error"} {
			r.duration.WithLabelValues(string(typ), o)
		}
	}
	if tp != nil {
		r.tracer = tp.Tracer(Scope)
	}
	if q, ok := next.(temporal.TaskQueue); ok {
		return &runnerQueue{taskRunner: r, q: q}
	}
	return r
}

// runnerQueue is taskRunner over a runner that also queues and awaits tasks
// separately (temporal.TaskQueue, used by ProvisionInOneStep): the same
// span and histogram, from Enqueue to Wait's result.
type runnerQueue struct {
	*taskRunner
	q       temporal.TaskQueue
	pending sync.Map // task id → queuedTask
}

type queuedTask struct {
	typ   nodetask.Type
	began time.Time
	span  trace.Span
}

var _ temporal.TaskQueue = (*runnerQueue)(nil)

func (r *runnerQueue) Enqueue(ctx context.Context, nodeID string, typ nodetask.Type, params any, allocationID string) (nodetask.Task, error) {
	began := time.Now()
	var span trace.Span
	if r.tracer != nil {
		ctx, span = r.tracer.Start(ctx, "node task "+string(typ), trace.WithAttributes(
			attribute.String("gpuaas.node_id", nodeID), attribute.String("gpuaas.allocation_id", allocationID)))
	}
	t, err := r.q.Enqueue(ctx, nodeID, typ, params, allocationID)
	if err != nil {
		r.finish(queuedTask{typ: typ, began: began, span: span}, nodetask.Result{}, err)
		return t, err
	}
	// A task queued in a transaction that then failed to commit is never
	// awaited: entries older than any task's life (at most an hour) go.
	r.pending.Range(func(k, v any) bool {
		if q := v.(queuedTask); began.Sub(q.began) > time.Hour {
			r.pending.Delete(k)
			if q.span != nil {
				q.span.End()
			}
		}
		return true
	})
	r.pending.Store(t.TaskID, queuedTask{typ: typ, began: began, span: span})
	return t, nil
}

func (r *runnerQueue) Wait(ctx context.Context, taskID string) (nodetask.Result, error) {
	res, err := r.q.Wait(ctx, taskID)
	if v, ok := r.pending.LoadAndDelete(taskID); ok {
		r.finish(v.(queuedTask), res, err)
	}
	return res, err
}

func (r *runnerQueue) finish(t queuedTask, res nodetask.Result, err error) {
	outcome := "error"
	switch {
	case err != nil:
	case res.Succeeded:
		outcome = "succeeded"
	default:
		outcome = "failed"
	}
	if t.span != nil {
		fail(t.span, err)
		t.span.SetAttributes(attribute.String("gpuaas.outcome", outcome), attribute.String("gpuaas.error_code", res.ErrorCode))
		t.span.End()
	}
	if nodetask.Known(t.typ) {
		r.duration.WithLabelValues(string(t.typ), outcome).Observe(time.Since(t.began).Seconds())
	}
}

func (r *taskRunner) RunTask(ctx context.Context, nodeID string, typ nodetask.Type, params any, allocationID string) (nodetask.Result, error) {
	began := time.Now()
	var span trace.Span
	if r.tracer != nil {
		ctx, span = r.tracer.Start(ctx, "node task "+string(typ), trace.WithAttributes(
			attribute.String("gpuaas.node_id", nodeID), attribute.String("gpuaas.allocation_id", allocationID)))
	}
	res, err := r.next.RunTask(ctx, nodeID, typ, params, allocationID)
	outcome := "error"
	switch {
	case err != nil:
	case res.Succeeded:
		outcome = "succeeded"
	default:
		outcome = "failed"
	}
	if span != nil {
		fail(span, err)
		span.SetAttributes(attribute.String("gpuaas.outcome", outcome), attribute.String("gpuaas.error_code", res.ErrorCode))
		span.End()
	}
	if nodetask.Known(typ) {
		r.duration.WithLabelValues(string(typ), outcome).Observe(time.Since(began).Seconds())
	}
	return res, err
}

// ---- outbound webhooks -----------------------------------------------------

type webhookSender struct {
	next     ports.WebhookSender
	outcomes *prometheus.CounterVec
	duration prometheus.Histogram
}

// WebhookSender counts outbound webhook deliveries by outcome (delivered:
// 2xx; rejected: another status; unreachable: no response) and times them.
func WebhookSender(next ports.WebhookSender, reg prometheus.Registerer) ports.WebhookSender {
	w := &webhookSender{next: next,
		outcomes: counterVec(reg, "gpuaas_webhook_deliveries_total",
			"Outbound webhook delivery attempts by outcome (delivered, rejected, unreachable).", "outcome"),
		duration: histogram(reg, "gpuaas_webhook_delivery_duration_seconds", "Outbound webhook attempts, seconds.", fastBuckets),
	}
	for _, o := range []string{"delivered", "rejected", "unreachable"} {
		w.outcomes.WithLabelValues(o)
	}
	return w
}

func (w *webhookSender) Send(ctx context.Context, r ports.WebhookRequest) (int, error) {
	began := time.Now()
	status, err := w.next.Send(ctx, r)
	w.duration.Observe(time.Since(began).Seconds())
	switch {
	case status == 0:
		w.outcomes.WithLabelValues("unreachable").Inc()
	case status >= 200 && status < 300 && err == nil:
		w.outcomes.WithLabelValues("delivered").Inc()
	default:
		w.outcomes.WithLabelValues("rejected").Inc()
	}
	return status, err
}

// ---- billing ---------------------------------------------------------------

type accruer struct {
	billing.Accruer
	duration   prometheus.Histogram
	records    prometheus.Counter
	debited    *prometheus.CounterVec
	lastWindow prometheus.Gauge
}

// Accruer times each billing window's accrual statement and counts what it
// debited (usage records; amounts by currency); it keeps the end of the
// last window accrued, so billing lag is time() minus it.
func Accruer(next billing.Accruer, reg prometheus.Registerer) billing.Accruer {
	return &accruer{Accruer: next,
		duration: histogram(reg, "gpuaas_billing_window_duration_seconds",
			"Time to accrue one billing window (the set-based debit statement), seconds.", fastBuckets),
		records: register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "gpuaas_billing_debited_records_total",
			Help: "Usage records debited, summed over billing windows."})),
		debited: counterVec(reg, "gpuaas_billing_debited_minor_total",
			"Amounts debited for usage, in minor units, by currency.", "currency"),
		lastWindow: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "gpuaas_billing_last_window_end_timestamp_seconds",
			Help: "End of the last billing window accrued by this process (Unix seconds; 0 before the first)."})),
	}
}

func (a *accruer) AccrueWindow(ctx context.Context, windowEnd time.Time) ([]billing.AccrualTotal, error) {
	began := time.Now()
	totals, err := a.Accruer.AccrueWindow(ctx, windowEnd)
	a.duration.Observe(time.Since(began).Seconds())
	if err != nil {
		return totals, err
	}
	for _, t := range totals {
		a.records.Add(float64(t.Records))
		if t.AmountMinor > 0 && len(t.Currency) <= 8 {
			a.debited.WithLabelValues(t.Currency).Add(float64(t.AmountMinor))
		}
	}
	a.lastWindow.Set(float64(windowEnd.Unix()))
	return totals, err
}
