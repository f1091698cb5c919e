package devoidc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Server is a Provider running on its own loopback listener.
type Server struct {
	Provider *Provider
	srv      *http.Server
	ln       net.Listener
	done     chan error
}

// Serve starts the provider on addr (default "127.0.0.1:0"). addr must be a
// loopback address: the demo users' passwords are public. If cfg.Issuer is
// empty it becomes http://<listen address>.
func Serve(cfg Config, addr string) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("devoidc: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("devoidc: refusing to listen on non-loopback address %q", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devoidc: listen: %w", err)
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "http://" + ln.Addr().String()
	}
	p, err := New(cfg)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	s := &Server{
		Provider: p,
		srv:      &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second},
		ln:       ln,
		done:     make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Issuer is the provider's issuer URL.
func (s *Server) Issuer() string { return s.Provider.Issuer() }

// Addr is the listen address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the server, waiting for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return err
	}
	return <-s.done
}
