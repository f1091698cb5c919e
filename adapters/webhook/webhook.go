// Package webhook posts the platform's signed outbound webhooks over HTTP,
// refusing private, loopback and link-local targets at dial time (after
// name resolution, so a name that resolves to an internal address is
// refused too) unless configured for development.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/gpuaas/gpuaas/core/notification"
	"github.com/gpuaas/gpuaas/ports"
)

// Config configures the Sender.
type Config struct {
	// Timeout bounds one delivery (connect, TLS, request, response); default 10 s.
	Timeout time.Duration
	// AllowPrivate lets deliveries reach private and loopback addresses
	// (gpuaas dev and tests only).
	AllowPrivate bool
	// UserAgent; default "gpuaas-webhooks/1".
	UserAgent string
}

// Sender implements [ports.WebhookSender].
type Sender struct {
	cfg    Config
	client *http.Client
}

var _ ports.WebhookSender = (*Sender)(nil)

// ErrPrivateTarget refuses an address the SSRF guard forbids.
var ErrPrivateTarget = errors.New("webhook: the target resolves to a private, loopback or link-local address")

// New builds the sender.
func New(cfg Config) (*Sender, error) {
	if cfg.Timeout < 0 {
		return nil, errors.New("webhook: Timeout must be positive")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "gpuaas-webhooks/1"
	}
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivate {
		// The check runs on the address actually dialled, after DNS.
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !notification.PublicAddr(ap.Addr()) {
				return ErrPrivateTarget
			}
			return nil
		}
	}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		Proxy:                 nil, // a proxy would dial for us and dodge the guard
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Sender{cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout,
		// A redirect is an answer, not a new target: following it could
		// reach what the guard refused by name.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// Send implements [ports.WebhookSender]: one POST; any 2xx is success
// (judged by the caller from status). At most 64 KiB of the answer is read.
func (s *Sender) Send(ctx context.Context, r ports.WebhookRequest) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return 0, fmt.Errorf("webhook: bad request: %w", err)
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrPrivateTarget) {
			return 0, ErrPrivateTarget
		}
		return 0, fmt.Errorf("webhook: %w", scrub(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// scrub keeps a url.Error's operation and cause but drops the URL (whose
// query may hold a receiver's token).
func scrub(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
