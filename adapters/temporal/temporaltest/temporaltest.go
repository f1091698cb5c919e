// Package temporaltest starts a real Temporal dev server for tests: the
// temporal CLI from $GPUAAS_TEST_TEMPORAL_CLI, PATH or $GOPATH/bin. A
// missing CLI skips the test loudly, or fails it when
// GPUAAS_REQUIRE_SERVICES=1.
package temporaltest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// CLIPath finds the temporal CLI for tests.
func CLIPath() (string, error) {
	if p := os.Getenv("GPUAAS_TEST_TEMPORAL_CLI"); p != "" {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return "", errors.New("GPUAAS_TEST_TEMPORAL_CLI=" + p + " is not a file")
		}
		return p, nil
	}
	return temporal.LocateCLI()
}

// DevServer starts a headless dev server on 127.0.0.1 with its state in a
// temporary directory, stopped at cleanup.
func DevServer(tb testing.TB) *temporal.DevServer {
	tb.Helper()
	cli, err := CLIPath()
	if err != nil {
		// The name maps to the variable the message names: GPUAAS_TEST_TEMPORAL_CLI.
		services.Unavailable(tb, "temporal_cli", fmt.Errorf("%w; install it with `make tools`", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := temporal.StartDevServerWith(ctx, temporal.DevServerConfig{Dir: tb.TempDir(), CLIPath: cli})
	if err != nil {
		tb.Fatalf("starting the temporal dev server: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			tb.Errorf("stopping the temporal dev server: %v", err)
		}
	})
	return srv
}
