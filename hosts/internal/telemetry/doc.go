// Package telemetry is how every gpuaas process is observed
// (doc/observability.md): the OpenTelemetry trace pipeline and the trace
// context carried across the outbox, node tasks and logs; decorators of
// ports that add spans and Prometheus metrics around the adapters (the
// use cases never see either); and collectors that read platform gauges
// (outbox backlog, consumer lag, nodes, pool statistics) at scrape time.
// Hosts wire it; core imports nothing of it.
package telemetry
