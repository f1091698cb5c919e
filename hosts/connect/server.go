package connecthost

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"

	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/freshstack"
	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1/agentv1connect"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
	"github.com/gpuaas/gpuaas/ports"
)

// Config configures the agent gateway.
type Config struct {
	// Addr is the listen address. Default 127.0.0.1:8444.
	Addr string
	// Certificate is the server's certificate chain and key (from the
	// platform CA's IssueServerCert). GetCertificate, when set, is used
	// instead: a long-running gateway renews its certificate through it
	// (pki.CA.ServerTLSConfig re-issues at two thirds of the lifetime).
	Certificate    tls.Certificate
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ClientCAs verify agent client certificates (the CA's Roots).
	ClientCAs *x509.CertPool
	// TrustDomain is the SPIFFE trust domain of node URIs
	// (spiffe://<TrustDomain>/node/<id>). Default "gpuaas".
	TrustDomain string
	// Clock re-checks certificate validity in the handler. Default: wall.
	Clock ports.Clock
	// Logger receives server errors. Default: discard.
	Logger *slog.Logger
	// Telemetry: spans and metrics of the agents' RPCs (observe.go). Optional.
	Telemetry Telemetry
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8444"
	}
	if c.GetCertificate == nil && (len(c.Certificate.Certificate) == 0 || c.Certificate.PrivateKey == nil) {
		return errors.New("connecthost: a server certificate with its key (or GetCertificate) is required")
	}
	if c.ClientCAs == nil {
		return errors.New("connecthost: ClientCAs (the CA roots) are required")
	}
	if c.TrustDomain == "" {
		c.TrustDomain = "gpuaas"
	}
	if strings.ContainsAny(c.TrustDomain, "/:@ ") {
		return errors.New("connecthost: TrustDomain must be a host name")
	}
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Logger = slog.New(redact.NewHandler(c.Logger.Handler()))
	return nil
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Server serves AgentService over HTTPS (HTTP/2 and HTTP/1.1, TLS 1.3).
type Server struct {
	cfg Config
	svc *agentsvc.Service
	h   http.Handler
	srv *http.Server
	ln  net.Listener

	// HTTP/2 connections are served by the gateway itself (serveH2), not
	// by srv: these are they, for Stop.
	h2mu      sync.Mutex
	h2conns   map[net.Conn]struct{}
	h2stopped bool
	h2wg      sync.WaitGroup
}

// New builds the gateway over the agent use cases; Start listens.
func New(cfg Config, svc *agentsvc.Service) (*Server, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if svc == nil {
		return nil, errors.New("connecthost: the agent service is required")
	}
	s := &Server{cfg: cfg, svc: svc}
	tel := cfg.Telemetry
	tel.Untraced = append(tel.Untraced, agentv1connect.AgentServiceHeartbeatProcedure, agentv1connect.AgentServicePollTasksProcedure)
	obs, err := newObserver("agent", tel)
	if err != nil {
		return nil, err
	}
	// Answers under 1 KiB go uncompressed (Connect's default compresses
	// every answer a client accepts gzip for, and its agents all do): a
	// heartbeat's answer is 2 bytes and an empty poll's none, yet each cost
	// a gzip writer's reset — 640 KB of tables cleared — and the pool's
	// writers, a megabyte each, are made again after every collection.
	// Clients take uncompressed answers whatever they accept.
	path, handler := agentv1connect.NewAgentServiceHandler(&handler{svc: svc, log: cfg.Logger},
		connect.WithReadMaxBytes(1<<20), connect.WithCompressMinBytes(1<<10), connect.WithInterceptors(interceptors(obs)...))
	mux := http.NewServeMux()
	mux.Handle(path, s.authenticate(handler))
	s.h = mux
	return s, nil
}

// TLSConfig is the gateway's TLS configuration: TLS 1.3 only, and client
// certificates verified against the CA roots when presented. Enroll is
// the one call made without one, so the handshake cannot demand it; the
// handler refuses every other call that lacks one.
func (s *Server) TLSConfig() *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientCAs:  s.cfg.ClientCAs,
		ClientAuth: tls.VerifyClientCertIfGiven,
		NextProtos: []string{"h2", "http/1.1"},
	}
	if s.cfg.GetCertificate != nil {
		c.GetCertificate = s.cfg.GetCertificate
	} else {
		c.Certificates = []tls.Certificate{s.cfg.Certificate}
	}
	return c
}

// Handler is the HTTP handler (for tests that bring their own listener).
func (s *Server) Handler() http.Handler { return s.h }

// Start listens on cfg.Addr and serves until Stop.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("connecthost: listen: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.h,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		// Long polls hold a call for up to 25 s.
		WriteTimeout: agentsvc.MaxPollWait + 30*time.Second,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
		ConnContext:  func(ctx context.Context, _ net.Conn) context.Context { return connContext(ctx) },
	}
	// Every agent holds one connection open for good; what each connection
	// keeps is what a fleet costs (doc/performance.md, fleet scale). Agent
	// calls carry a handful of small headers, so the table decoding them
	// need not be 4 KiB: 1 KiB. Not less: x/net applies the limit at once,
	// while a client encodes its first requests for the default 4 KiB table
	// until our SETTINGS arrive — entries it then refers to that a smaller
	// table dropped are a COMPRESSION_ERROR that closes the connection.
	// Answers are encoded without a table (1 byte, the least x/net accepts:
	// 0 means its default), which is ours alone to decide: a few dozen bytes
	// more per answer on the wire. Frames are at most 16 KiB (HTTP/2's
	// default and least), which bounds the frame buffer a connection keeps
	// after a large task report.
	h2s := &http2.Server{
		MaxDecoderHeaderTableSize: 1 << 10,
		MaxEncoderHeaderTableSize: 1,
		MaxReadFrameSize:          16 << 10,
		MaxConcurrentStreams:      16,
	}
	if err := http2.ConfigureServer(s.srv, h2s); err != nil {
		return err
	}
	hl := newHandshakeListener(ln, s.srv.TLSConfig, s.handshakeRefused)
	hl.serveH2 = func(c net.Conn) { s.serveH2(h2s, c) }
	go func() {
		if err := s.srv.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("agent gateway stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on (after Start).
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.cfg.Addr
	}
	return s.ln.Addr().String()
}

// serveH2 serves an HTTP/2 connection on the goroutine it is called on —
// a fresh one (handshakeListener) — instead of handing it to srv, whose
// per-connection goroutine would keep net/http's frames (about 1.3 KB)
// under x/net's serve loop for the connection's life. The depth of that
// parked loop, like that of the long polls' handlers, sets the stack size
// the runtime starts every goroutine with (the average in use); one
// connection per agent, for good (doc/performance.md, agent gateway at
// fleet scale). srv's timeouts and error log apply (BaseConfig), and its
// Shutdown asks these connections to finish too (ConfigureServer).
func (s *Server) serveH2(h2s *http2.Server, c net.Conn) {
	s.h2mu.Lock()
	if s.h2stopped {
		s.h2mu.Unlock()
		_ = c.Close()
		return
	}
	if s.h2conns == nil {
		s.h2conns = map[net.Conn]struct{}{}
	}
	s.h2conns[c] = struct{}{}
	s.h2wg.Add(1)
	s.h2mu.Unlock()
	defer func() {
		s.h2mu.Lock()
		delete(s.h2conns, c)
		s.h2mu.Unlock()
		s.h2wg.Done()
	}()
	h2s.ServeConn(c, &http2.ServeConnOpts{Context: connContext(context.Background()), BaseConfig: s.srv, Handler: s.h})
}

// Stop shuts the server down gracefully, cutting long polls at ctx's end.
func (s *Server) Stop(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx) // also sends the HTTP/2 connections GOAWAY
	s.h2mu.Lock()
	s.h2stopped = true
	s.h2mu.Unlock()
	done := make(chan struct{})
	go func() { s.h2wg.Wait(); close(done) }()
	select {
	case <-done:
		return err
	case <-ctx.Done():
	}
	s.h2mu.Lock()
	for c := range s.h2conns {
		_ = c.Close()
	}
	s.h2mu.Unlock()
	<-done
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// handshakeRefused audits a client certificate the TLS handshake refused.
// The certificate did not verify, so the node it names is only a claim.
func (s *Server) handshakeRefused(remoteAddr string, err *tls.CertificateVerificationError) {
	ctx := context.Background()
	if host, _, splitErr := net.SplitHostPort(remoteAddr); splitErr == nil {
		ctx = callctx.WithSourceIP(ctx, host)
	}
	claimed := ""
	if len(err.UnverifiedCertificates) > 0 {
		claimed, _ = NodeIDFromCertificate(err.UnverifiedCertificates[0], s.cfg.TrustDomain)
	}
	logUnaudited(ctx, s.cfg.Logger, "tls handshake", s.svc.DenyCertificate(ctx, claimed, err.Err.Error()))
}

type nodeKey struct{}

// nodeFrom returns the authenticated node id put in ctx by authenticate.
func nodeFrom(ctx context.Context) string {
	id, _ := ctx.Value(nodeKey{}).(string)
	return id
}

// authenticate resolves the caller's node from its client certificate for
// every procedure but Enroll. The TLS handshake has already refused
// certificates that do not chain to the roots or are expired; this checks
// again against the injected clock (defence in depth), then asks the use
// case whether the serial is known, unrevoked and its node not retired.
//
// The checks run on a goroutine of their own (admit): the handler's
// goroutine of a long poll then parks for up to 25 s, one per connected
// agent, on the stack it has — and chain verification, the auth cache's
// misses and refusals' audit records would grow it to 16–32 KB, which the
// GC does not give back while the poll waits (doc/performance.md, agent
// gateway at fleet scale).
func (s *Server) authenticate(next http.Handler) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, err := freshstack.Run(func() (context.Context, error) { return s.admit(r) })
		if err != nil {
			_ = ew.Write(w, r, toConnect(err))
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// admit returns the context the call is served in — with the caller's node
// for every procedure but Enroll — or the refusal.
func (s *Server) admit(r *http.Request) (context.Context, error) {
	ctx := r.Context()
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ctx = callctx.WithSourceIP(ctx, host)
	}
	if cid := r.Header.Get("X-Correlation-Id"); cid != "" && len(cid) <= 64 {
		ctx = callctx.WithCorrelationID(ctx, cid)
	}
	procedure := r.URL.Path
	if procedure == agentv1connect.AgentServiceEnrollProcedure {
		return ctx, nil
	}
	refuse := func(err error) (context.Context, error) {
		logUnaudited(ctx, s.cfg.Logger, procedure, err)
		return nil, err
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return refuse(s.svc.DenyUnauthenticated(ctx, procedure))
	}
	p := s.verifyPeer(r.Context(), r.TLS.PeerCertificates)
	if p == nil {
		return refuse(s.svc.DenyUnauthenticated(ctx, procedure))
	}
	id, err := s.svc.Authenticate(ctx, p.serial, p.nodeID, procedure)
	if err != nil {
		return refuse(err)
	}
	return context.WithValue(ctx, nodeKey{}, id), nil
}

// verifiedPeer is a client certificate chain that verified against the
// roots, with what admit needs of it.
type verifiedPeer struct {
	leaf        *x509.Certificate
	nodeID      string
	serial      string
	from, until time.Time // when every certificate of the chain is valid
}

// peerCheck holds, for one connection, the chain the first call on it
// verified (connContext puts it in every request's context).
type peerCheck struct{ p atomic.Pointer[verifiedPeer] }

type peerCheckKey struct{}

// connContext is the base context of a connection's requests: it carries
// the connection's peerCheck.
func connContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, peerCheckKey{}, new(peerCheck))
}

// verifyPeer verifies the client's chain against the roots at the clock's
// time, or returns nil. A connection's chain is its own for the
// connection's life (TLS 1.3 has no renegotiation), so the first call on a
// connection verifies it and later calls check only what can change: that
// the verified chain's certificates are all within their validity periods
// at the clock's time — Verify's only check that depends on when it runs.
// When that fails it verifies again (another chain may be valid then). Two
// ECDSA signature checks and 3.5 KB of garbage less for every heartbeat and
// long poll (doc/performance.md, agent gateway at fleet scale).
func (s *Server) verifyPeer(ctx context.Context, certs []*x509.Certificate) *verifiedPeer {
	leaf := certs[0]
	now := s.cfg.Clock.Now()
	pc, _ := ctx.Value(peerCheckKey{}).(*peerCheck)
	if pc != nil {
		if p := pc.p.Load(); p != nil && p.leaf == leaf && !now.Before(p.from) && !now.After(p.until) {
			return p
		}
	}
	nodeID, err := NodeIDFromCertificate(leaf, s.cfg.TrustDomain)
	if err != nil {
		return nil
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: s.cfg.ClientCAs, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil || len(chains) == 0 {
		return nil
	}
	p := &verifiedPeer{leaf: leaf, nodeID: nodeID, serial: SerialOf(leaf), from: leaf.NotBefore, until: leaf.NotAfter}
	for _, c := range chains[0][1:] {
		if c.NotBefore.After(p.from) {
			p.from = c.NotBefore
		}
		if c.NotAfter.Before(p.until) {
			p.until = c.NotAfter
		}
	}
	if pc != nil {
		pc.p.Store(p)
	}
	return p
}

// NodeIDFromCertificate returns the node a client certificate was issued
// to, from its single spiffe://<trustDomain>/node/<id> URI SAN.
func NodeIDFromCertificate(c *x509.Certificate, trustDomain string) (string, error) {
	prefix := "spiffe://" + trustDomain + "/node/"
	var found string
	for _, u := range c.URIs {
		if s := uriString(u); strings.HasPrefix(s, prefix) {
			if found != "" {
				return "", errors.New("connecthost: certificate names more than one node")
			}
			found = strings.TrimPrefix(s, prefix)
		}
	}
	if found == "" || strings.ContainsAny(found, "/?#") {
		return "", errors.New("connecthost: certificate names no node")
	}
	return found, nil
}

func uriString(u *url.URL) string { return u.String() }

// SerialOf renders a certificate serial as the certificate store keys it:
// lowercase hexadecimal.
func SerialOf(c *x509.Certificate) string { return c.SerialNumber.Text(16) }
