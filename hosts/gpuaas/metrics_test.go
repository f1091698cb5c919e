package main

import (
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	terminalhost "github.com/gpuaas/gpuaas/hosts/terminal"
)

// Each process registers the families doc/observability.md says it
// exports, in its one registry, as soon as it is built. Those read at
// scrape time (the ops view, consumer lag), the listeners' (made at start)
// and the labelled families with no series until something happens (HTTP
// requests, RPCs) are checked by TestObservability over gpuaas dev.
func TestProcessMetricFamilies(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Building runs the invokes: key files go to a temporary data dir.
	s := testSettings(t, map[string]string{"GPUAAS_DATA_DIR": t.TempDir()})
	term, err := terminalGatewayConfig(s, func(string) string { return "" }, "127.0.0.1:0", logger)
	if err != nil {
		t.Fatal(err)
	}
	every := []string{"gpuaas_db_pool_acquired_connections", "gpuaas_db_pool_acquires_total", "go_goroutines", "process_open_fds"}
	cases := []struct {
		name string
		opts fx.Option
		want []string
	}{
		{"serve api", apiOptions(s, logger, true, false), []string{"gpuaas_payment_webhooks_total",
			"gpuaas_events_published_total", "gpuaas_allocation_transitions_total"}},
		{"serve rpc", rpcOptions(s, logger), nil},
		{"serve terminal-gateway", fx.Options(baseOptions(s, logger), ephemeralOptions(s), computeOptions(s),
			terminalhost.ServiceModule, fx.Supply(term), terminalhost.Module),
			[]string{"gpuaas_terminal_sessions_active", "gpuaas_terminal_sessions_total", "gpuaas_terminal_bytes_total"}},
		{"worker provisioning", fx.Options(baseOptions(s, logger), computeOptions(s), storageOptions(s), provisioningOptions(s)),
			[]string{"gpuaas_allocation_request_to_active_seconds", "gpuaas_allocation_release_seconds", "gpuaas_node_task_duration_seconds"}},
		{"worker billing", fx.Options(baseOptions(s, logger), computeOptions(s), billingOptions()),
			[]string{"gpuaas_billing_window_duration_seconds", "gpuaas_billing_debited_records_total", "gpuaas_billing_last_window_end_timestamp_seconds"}},
		{"worker notifications", fx.Options(baseOptions(s, logger), computeOptions(s), fx.Provide(newIdentityService),
			notificationOptions(s), notificationWorkerOptions(s)),
			[]string{"gpuaas_webhook_deliveries_total", "gpuaas_webhook_delivery_duration_seconds"}},
		{"worker outbox", fx.Options(baseOptions(s, logger), relayOptions(s)),
			[]string{"gpuaas_events_published_total", "gpuaas_allocation_transitions_total"}},
	}
	for _, c := range cases {
		var reg *prometheus.Registry
		app := fx.New(c.opts, fx.Populate(&reg), fx.NopLogger)
		if err := app.Err(); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		fams, err := reg.Gather()
		if err != nil {
			t.Errorf("%s: gather: %v", c.name, err)
			continue
		}
		have := map[string]bool{}
		for _, f := range fams {
			have[f.GetName()] = true
		}
		for _, f := range append(every, c.want...) {
			if !have[f] {
				t.Errorf("%s does not export %s", c.name, f)
			}
		}
	}
}
