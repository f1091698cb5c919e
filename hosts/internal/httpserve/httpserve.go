// Package httpserve starts the hosts' HTTP servers one way: listen first
// (so a taken port fails at start, not later), serve in the background, log
// an unexpected stop once, and tell when serving ended.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/gpuaas/gpuaas/hosts/internal/redact"
)

// Start listens on addr and serves srv on it in the background. name
// prefixes errors and log lines ("http server", "terminal gateway"). The
// returned channel closes when Serve returns (after Shutdown, or a failure,
// which is logged once, its text scrubbed of credentials).
func Start(ctx context.Context, name, addr string, srv *http.Server, log *slog.Logger) (net.Listener, <-chan struct{}, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(name+" stopped", "error", redact.Text(err.Error()))
		}
	}()
	log.Info(name+" listening", "addr", ln.Addr().String())
	return ln, done, nil
}
