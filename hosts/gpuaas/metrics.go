package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/hosts/internal/adminhttp"
)

// metricsOptions give every process one Prometheus registry (Go runtime and
// process collectors included) that the hosts and adapters register their
// families in, and — when GPUAAS_METRICS_ADDR is set (":9090" unless
// "off"; gpuaas dev leaves it off) — the admin listener serving it with
// /livez and /readyz.
func metricsOptions(s Settings) fx.Option {
	reg := fx.Provide(func() *prometheus.Registry {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		return r
	})
	if s.MetricsAddr == "" {
		return reg
	}
	return fx.Options(reg, fx.Supply(adminhttp.Config{Addr: s.MetricsAddr}), adminhttp.Module)
}
