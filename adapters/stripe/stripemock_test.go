package stripe_test

import (
	"bufio"
	"context"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/testkit/services"
)

var (
	mockOnce sync.Once
	mockURL  string
	mockErr  string
	mockCmd  *exec.Cmd
)

// TestMain stops the shared stripe-mock after the package's tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if mockCmd != nil && mockCmd.Process != nil {
		_ = mockCmd.Process.Kill()
		_ = mockCmd.Wait()
	}
	os.Exit(code)
}

// stripeMock returns the base URL of a stripe-mock: $GPUAAS_TEST_STRIPE_MOCK_URL
// when set, else one started from $(go env GOPATH)/bin/stripe-mock (or PATH)
// on 127.0.0.1 with system-chosen ports for both HTTP and HTTPS. Absent, the
// test skips loudly, or fails when GPUAAS_REQUIRE_SERVICES=1.
func stripeMock(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("GPUAAS_TEST_STRIPE_MOCK_URL"); u != "" {
		return strings.TrimRight(u, "/")
	}
	mockOnce.Do(startMock)
	if mockURL == "" {
		msg := "stripe-mock unavailable (" + mockErr + "); install it with `go install github.com/stripe/stripe-mock@v0.203.0` or set GPUAAS_TEST_STRIPE_MOCK_URL"
		if services.Required() {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	return mockURL
}

func startMock() {
	bin := filepath.Join(build.Default.GOPATH, "bin", "stripe-mock")
	if _, err := os.Stat(bin); err != nil {
		p, err := exec.LookPath("stripe-mock")
		if err != nil {
			mockErr = "binary not found in GOPATH/bin or PATH"
			return
		}
		bin = p
	}
	// Both listeners on loopback: stripe-mock would otherwise bind HTTPS on
	// every interface.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	out, err := cmd.StdoutPipe()
	if err != nil {
		mockErr = err.Error()
		return
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		mockErr = err.Error()
		return
	}
	mockCmd = cmd
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			// "Listening for HTTP at address: 127.0.0.1:45283"
			if line := sc.Text(); !sent && strings.HasPrefix(line, "Listening for HTTP at address: ") {
				found <- "http://" + strings.TrimSpace(strings.TrimPrefix(line, "Listening for HTTP at address: "))
				sent = true
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case u := <-found:
		mockURL = u
	case <-ctx.Done():
		mockErr = "did not report its address within 30s"
	}
}
