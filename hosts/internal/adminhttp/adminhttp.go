// Package adminhttp is the admin listener every gpuaas process can open
// beside its own (GPUAAS_METRICS_ADDR): Prometheus metrics on /metrics,
// liveness on /livez and readiness — every health check of the process
// passing — on /readyz. Workers have no other listener, and the agent
// gateway's is mTLS, so probes and scrapes meet every process here the same
// way.
package adminhttp

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/hosts/internal/httpserve"
	"github.com/gpuaas/gpuaas/ports"
)

// Config configures the listener.
type Config struct {
	// Addr is the listen address, e.g. ":9090". Required.
	Addr string
	// CheckTimeout bounds each health check of /readyz. Default 3 s.
	CheckTimeout time.Duration
}

// CheckAndSetDefaults validates the config.
func (c *Config) CheckAndSetDefaults() error {
	if c.Addr == "" {
		return errors.New("adminhttp: Addr is required")
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = 3 * time.Second
	}
	return nil
}

// Server is the admin listener.
type Server struct {
	cfg    Config
	srv    *http.Server
	ln     net.Listener
	done   <-chan struct{}
	log    *slog.Logger
	health []ports.HealthCheck
}

// New builds the server over the process's registry and health checks.
func New(cfg Config, reg *prometheus.Registry, health []ports.HealthCheck, log *slog.Logger) (*Server, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, errors.New("adminhttp: a registry is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log.With("component", "admin")}
	for _, h := range health {
		if h != nil {
			s.health = append(s.health, h)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	return s, nil
}

// ready runs every health check in parallel: 200 when all pass, else 503;
// the body names each check's outcome but never an error's text (it may
// carry addresses), which is logged instead.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CheckTimeout)
	defer cancel()
	results := make(map[string]string, len(s.health))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok := true
	for _, h := range s.health {
		wg.Go(func() {
			err := h.Check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ok = false
				results[h.Name()] = "unavailable"
				s.log.Warn("readiness check failed", "check", h.Name(), "error", err)
				return
			}
			results[h.Name()] = "ok"
		})
	}
	wg.Wait()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	status := "ok"
	if !ok {
		status = "unavailable"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": results})
}

// Start listens (a taken port fails the start) and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	ln, done, err := httpserve.Start(ctx, "admin listener", s.cfg.Addr, s.srv, s.log)
	if err != nil {
		return err
	}
	s.ln, s.done = ln, done
	return nil
}

// Addr is the bound address after Start.
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.cfg.Addr
	}
	return s.ln.Addr().String()
}

// Stop shuts the listener down.
func (s *Server) Stop(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// Params is what Module takes from the graph.
type Params struct {
	fx.In
	Config   Config
	Registry *prometheus.Registry
	Health   []ports.HealthCheck `group:"health"`
	Logger   *slog.Logger        `optional:"true"`
}

// Module provides *Server and runs it with the app.
var Module = fx.Module("adminhttp",
	fx.Provide(func(p Params) (*Server, error) { return New(p.Config, p.Registry, p.Health, p.Logger) }),
	fx.Invoke(func(lc fx.Lifecycle, s *Server) { lc.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop}) }),
)
