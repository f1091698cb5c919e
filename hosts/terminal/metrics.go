package terminalhost

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gpuaas/gpuaas/core/terminal"
)

// metrics are the gateway's Prometheus families (doc/observability.md):
// live sessions, session attempts by outcome, the bytes relayed each way,
// and how long connections lasted by how they ended. Without a registry they are kept but not exported.
type metrics struct {
	active   prometheus.Gauge
	attempts *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	toNode   prometheus.Counter
	toWeb    prometheus.Counter
	// duration of relayed connections, by how they ended (terminal.Ends).
	duration *prometheus.HistogramVec
}

// Session attempt outcomes: opened; refused (the browser's fault: origin,
// token, the node's refusal of the session); unreachable (the node could
// not be reached); failed (the gateway's own fault: the upgrade failed, or
// it was full or shutting down).
const (
	outcomeOpened      = "opened"
	outcomeRefused     = "refused"
	outcomeUnreachable = "node_unreachable"
	outcomeFailed      = "failed"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{}
	var err error
	if m.active, err = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "gpuaas_terminal_sessions_active",
		Help: "Browser terminal sessions relayed now."})); err != nil {
		return nil, err
	}
	if m.attempts, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gpuaas_terminal_sessions_total",
		Help: "Browser terminal session attempts by outcome (opened, refused, node_unreachable, failed)."}, []string{"outcome"})); err != nil {
		return nil, err
	}
	if m.bytes, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gpuaas_terminal_bytes_total",
		Help: "Terminal bytes relayed, by direction (to_node: keystrokes; to_browser: output)."}, []string{"direction"})); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gpuaas_terminal_connection_seconds",
		Help:    "How long relayed browser terminal connections lasted, by how they ended (exited, ended_by_node, taken_over, node_lost, browser_left, suspended, gateway_shutdown).",
		Buckets: prometheus.ExponentialBuckets(1, 4, 10)}, []string{"end"})); err != nil { // 1 s … 3 days
		return nil, err
	}
	for _, e := range terminal.Ends {
		m.duration.WithLabelValues(e)
	}
	for _, o := range []string{outcomeOpened, outcomeRefused, outcomeUnreachable, outcomeFailed} {
		m.attempts.WithLabelValues(o)
	}
	m.toNode, m.toWeb = m.bytes.WithLabelValues("to_node"), m.bytes.WithLabelValues("to_browser")
	return m, nil
}

// register adds c to reg (when there is one), or returns the collector
// registered before under the same name (two gateways on one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *metrics) attempt(outcome string) { m.attempts.WithLabelValues(outcome).Inc() }

func (m *metrics) connectionEnded(e terminal.ConnectionEnd) {
	m.duration.WithLabelValues(e.End).Observe(e.Duration.Seconds())
}
