package adminhttp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gpuaas/gpuaas/hosts/internal/adminhttp"
	"github.com/gpuaas/gpuaas/ports"
)

type check struct {
	name string
	err  error
}

func (c check) Name() string                { return c.name }
func (c check) Check(context.Context) error { return c.err }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestAdminListener(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "gpuaas_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	for _, tc := range []struct {
		name   string
		checks []ports.HealthCheck
		ready  int
		body   string
	}{
		{"healthy", []ports.HealthCheck{check{"postgres", nil}, nil}, 200, `"postgres":"ok"`},
		{"one down", []ports.HealthCheck{check{"postgres", nil}, check{"nats", errors.New("dial nats://u:secret@x")}}, 503, `"nats":"unavailable"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := adminhttp.New(adminhttp.Config{Addr: "127.0.0.1:0"}, reg, tc.checks, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Stop(context.Background()) })
			base := "http://" + s.Addr()
			if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "gpuaas_test_total 1") {
				t.Fatalf("/metrics: %d %q", code, body)
			}
			if code, _ := get(t, base+"/livez"); code != 200 {
				t.Fatalf("/livez: %d", code)
			}
			code, body := get(t, base+"/readyz")
			if code != tc.ready || !strings.Contains(body, tc.body) || strings.Contains(body, "secret") {
				t.Fatalf("/readyz: %d %q", code, body)
			}
		})
	}
	if _, err := adminhttp.New(adminhttp.Config{}, reg, nil, nil); err == nil {
		t.Fatal("no address accepted")
	}
}
