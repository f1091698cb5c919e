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
)

// Start listens on addr and serves srv on it in the background. name
// prefixes errors and log lines ("http server", "terminal gateway"). The
// returned channel closes when Serve returns (after Shutdown, or a failure,
// which is logged once with scrub applied to its text).
func Start(ctx context.Context, name, addr string, srv *http.Server, log *slog.Logger, scrub func(string) string) (net.Listener, <-chan struct{}, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	if scrub == nil {
		scrub = func(s string) string { return s }
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(name+" stopped", "error", scrub(err.Error()))
		}
	}()
	log.Info(name+" listening", "addr", ln.Addr().String())
	return ln, done, nil
}
