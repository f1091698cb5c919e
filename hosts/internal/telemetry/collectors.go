package telemetry

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gpuaas/gpuaas/core/admin"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/ports"
)

// scrapeTimeout bounds the queries a collector runs for one scrape.
const scrapeTimeout = 5 * time.Second

// ---- pgx pool -------------------------------------------------------------

type poolCollector struct {
	pool                                            *pgxpool.Pool
	acquired, idle, total, max, constructing        *prometheus.Desc
	acquires, acquireSeconds, emptyAcquires, cancel *prometheus.Desc
}

// PoolCollector exports the pgx pool's statistics (gpuaas_db_pool_*).
func PoolCollector(pool *pgxpool.Pool) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("gpuaas_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{pool: pool,
		acquired:       d("acquired_connections", "Connections in use."),
		idle:           d("idle_connections", "Idle connections."),
		total:          d("connections", "Open connections (acquired, idle and being opened)."),
		max:            d("max_connections", "The pool's size limit."),
		constructing:   d("constructing_connections", "Connections being opened."),
		acquires:       d("acquires_total", "Connections acquired from the pool."),
		acquireSeconds: d("acquire_seconds_total", "Time spent waiting for connections, seconds."),
		emptyAcquires:  d("empty_acquires_total", "Acquires that had to wait for a connection (none was idle)."),
		cancel:         d("canceled_acquires_total", "Acquires abandoned because their context ended."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.total, c.max, c.constructing, c.acquires,
		c.acquireSeconds, c.emptyAcquires, c.cancel} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	n := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.acquired, float64(s.AcquiredConns()))
	g(c.idle, float64(s.IdleConns()))
	g(c.total, float64(s.TotalConns()))
	g(c.max, float64(s.MaxConns()))
	g(c.constructing, float64(s.ConstructingConns()))
	n(c.acquires, float64(s.AcquireCount()))
	n(c.acquireSeconds, s.AcquireDuration().Seconds())
	n(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	n(c.cancel, float64(s.CanceledAcquireCount()))
}

// ---- platform state (outbox, nodes, allocations, queues) -------------------

type opsCollector struct {
	ops    ports.OpsReader
	log    *slog.Logger
	errors prometheus.Counter

	outboxPending, outboxAge, outboxFailed, nodes, nodesUnhealthy, allocations, stuck,
	toReconcile, emails, webhooks *prometheus.Desc
}

// OpsCollector exports the platform's state from the operators' ops view
// (ports.OpsReader), read at scrape time: the outbox backlog and its oldest
// event's age, failed events, nodes by state and unhealthy nodes, live
// allocations by state and those stuck, payments to reconcile, queued
// emails and webhook deliveries. A read that fails exports none of them
// and counts gpuaas_ops_scrape_errors_total (the scrape itself succeeds).
func OpsCollector(ops ports.OpsReader, reg prometheus.Registerer, log *slog.Logger) prometheus.Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("gpuaas_"+name, help, labels, nil)
	}
	return &opsCollector{ops: ops, log: log.With("component", "metrics"),
		errors: register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "gpuaas_ops_scrape_errors_total",
			Help: "Scrapes whose read of the platform state (outbox, nodes, allocations, queues) failed."})),
		outboxPending:  d("outbox_pending_events", "Outbox events waiting to be published."),
		outboxAge:      d("outbox_oldest_pending_age_seconds", "Age of the oldest event waiting in the outbox, seconds (0 when none)."),
		outboxFailed:   d("outbox_failed_events", "Outbox events that failed every retry and wait for an operator."),
		nodes:          d("nodes", "Nodes by state.", "state"),
		nodesUnhealthy: d("nodes_unhealthy", "Active or maintenance nodes whose last health report is not ok."),
		allocations:    d("allocations", "Live allocations by state.", "state"),
		stuck:          d("allocations_stuck", "Allocations in requested, provisioning or releasing for more than 15 minutes."),
		toReconcile:    d("payments_to_reconcile", "Payment sessions in failed_reconcile."),
		emails:         d("notification_emails_pending", "Notification emails waiting to be sent."),
		webhooks:       d("webhook_deliveries_pending", "Outbound webhook deliveries waiting to be attempted."),
	}
}

// stuckAfter is the ops view's threshold for a stuck allocation.
const stuckAfter = admin.DefaultStuckAfter

func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.outboxPending, c.outboxAge, c.outboxFailed, c.nodes, c.nodesUnhealthy,
		c.allocations, c.stuck, c.toReconcile, c.emails, c.webhooks} {
		ch <- d
	}
}

func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := time.Now()
	snap, err := c.ops.Snapshot(ctx, now, stuckAfter)
	if err != nil {
		c.errors.Inc()
		c.log.Warn("metrics: reading the platform state failed", "error", err)
		return
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(c.outboxPending, float64(snap.OutboxPending))
	age := 0.0
	if snap.OutboxOldest != nil {
		age = max(0, now.Sub(*snap.OutboxOldest).Seconds())
	}
	g(c.outboxAge, age)
	g(c.outboxFailed, float64(snap.OutboxFailed))
	nodes := map[string]float64{}
	for _, s := range []inventory.NodeState{inventory.NodeEnrolling, inventory.NodeActive, inventory.NodeMaintenance,
		inventory.NodeOffline, inventory.NodeRetired} {
		nodes[string(s)] = 0
	}
	for _, n := range snap.NodesByState {
		nodes[n.Name] = float64(n.Count)
	}
	for k, v := range nodes {
		g(c.nodes, v, k)
	}
	unhealthy := 0.0
	for _, n := range snap.NodesByHealth {
		if n.Name == "unhealthy" {
			unhealthy = float64(n.Count)
		}
	}
	g(c.nodesUnhealthy, unhealthy)
	allocs := map[string]float64{}
	for _, s := range []allocation.State{allocation.Requested, allocation.Provisioning, allocation.Active,
		allocation.Releasing, allocation.ReleaseFailed} {
		allocs[string(s)] = 0
	}
	for _, a := range snap.AllocationsByState {
		allocs[a.Name] = float64(a.Count)
	}
	for k, v := range allocs {
		g(c.allocations, v, k)
	}
	g(c.stuck, float64(snap.Stuck))
	g(c.toReconcile, float64(snap.PaymentsToReconcile))
	g(c.emails, float64(snap.EmailsPending))
	g(c.webhooks, float64(snap.WebhooksPending))
}

// ---- consumer lag ----------------------------------------------------------

type lagCollector struct {
	mon                            ports.ConsumerMonitor
	log                            *slog.Logger
	errors                         prometheus.Counter
	pending, ackPending, redeliver *prometheus.Desc
}

// ConsumerLagCollector exports each durable consumer's backlog on the bus,
// read at scrape time: messages not yet delivered, delivered but not acked,
// and redelivered.
func ConsumerLagCollector(mon ports.ConsumerMonitor, reg prometheus.Registerer, log *slog.Logger) prometheus.Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	labels := []string{"stream", "durable"}
	return &lagCollector{mon: mon, log: log.With("component", "metrics"),
		errors: register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "gpuaas_consumer_lag_scrape_errors_total",
			Help: "Scrapes whose read of the consumers' backlogs failed."})),
		pending:    prometheus.NewDesc("gpuaas_consumer_pending_messages", "Messages a durable consumer has not been delivered yet.", labels, nil),
		ackPending: prometheus.NewDesc("gpuaas_consumer_ack_pending_messages", "Messages delivered to a durable consumer and not acked yet.", labels, nil),
		redeliver:  prometheus.NewDesc("gpuaas_consumer_redelivered_messages", "Messages a durable consumer was delivered more than once (now pending).", labels, nil),
	}
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redeliver
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	lags, err := c.mon.ConsumerLag(ctx)
	if err != nil {
		c.errors.Inc()
		c.log.Warn("metrics: reading the consumers' backlogs failed", "error", err)
		return
	}
	for _, l := range lags {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(l.Pending), l.Stream, l.Durable)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(l.AckPending), l.Stream, l.Durable)
		ch <- prometheus.MustNewConstMetric(c.redeliver, prometheus.GaugeValue, float64(l.Redelivered), l.Stream, l.Durable)
	}
}
