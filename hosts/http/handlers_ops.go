package httphost

import (
	"context"
	"net/http"
	"sync"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
)

// GetHealth implements [api.ServerInterface]. Checks run in parallel, each
// bounded by Config.HealthTimeout, so one hung dependency cannot hold the
// answer past the load balancer's patience.
func (h *handlers) GetHealth(w http.ResponseWriter, r *http.Request) {
	s := h.s
	results := make([]string, len(s.d.Health))
	var wg sync.WaitGroup
	for i, c := range s.d.Health {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.HealthTimeout)
			defer cancel()
			results[i] = "ok"
			if err := runCheck(ctx, c.Check); err != nil {
				results[i] = "down: " + redact.Text(err.Error())
			}
		}()
	}
	wg.Wait()
	body := api.Health{Status: api.Ok, Checks: map[string]string{}}
	status := http.StatusOK
	for i, c := range s.d.Health {
		body.Checks[c.Name()] = results[i]
		if results[i] != "ok" {
			body.Status, status = api.Degraded, http.StatusServiceUnavailable
			s.log.Warn("health check failed", "check", c.Name(), "result", results[i],
				"correlation_id", stateOf(r.Context()).correlationID)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, body)
}

// runCheck runs one check but returns at the deadline even if the check
// ignores its context.
func runCheck(ctx context.Context, check func(context.Context) error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- errPanicked
			}
		}()
		done <- check(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

const errPanicked = wiringError("health check panicked")

// GetMetrics implements [api.ServerInterface].
func (h *handlers) GetMetrics(w http.ResponseWriter, r *http.Request) {
	if h.s.cfg.MetricsDisabled {
		h.s.fail(w, r, &fault.Error{Kind: fault.KindNotFound, Code: fault.CodeNotFound, Message: "metrics are disabled"})
		return
	}
	h.s.metrics.handler.ServeHTTP(w, r)
}
