package terminalhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/terminal"
	"github.com/gpuaas/gpuaas/core/terminal/terminalsvc"
	"github.com/gpuaas/gpuaas/hosts/internal/httpserve"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
	"github.com/gpuaas/gpuaas/ports"
)

// Subprotocol and BearerSubprotocolPrefix are the terminal's WebSocket
// subprotocols (see core/terminal).
const (
	Subprotocol             = terminal.Subprotocol
	BearerSubprotocolPrefix = terminal.BearerSubprotocolPrefix
)

// Path is the gateway's route; {allocation_id} names the allocation.
const Path = "/ws/terminal/{allocation_id}"

// CodeNodeUnreachable is the refusal when the node's SSH endpoint cannot be
// reached or refuses the gateway. The token is spent: mint another to retry.
const CodeNodeUnreachable fault.Code = "node_unreachable"

// TokenConsumer redeems terminal tokens and records how the connections
// they opened ended; *terminalsvc.Service implements it.
type TokenConsumer interface {
	Consume(ctx context.Context, token, allocationID string) (terminal.Grant, error)
	RefuseAtGate(ctx context.Context, allocationID string, reason fault.Code) error
	Closed(ctx context.Context, g terminal.Grant, c terminal.ConnectionEnd) error
}

var _ TokenConsumer = (*terminalsvc.Service)(nil)

// Deps are the ports the gateway calls. All are required.
type Deps struct {
	Terminal TokenConsumer
	Nodes    ports.NodeStore
	CA       ports.SSHCertificateAuthority
	Logger   *slog.Logger
	// Users, when set, is asked every StandingInterval whether the people
	// with live sessions are still active: a suspended user's sessions end
	// (standing.go). Optional.
	Users ports.UserStore
	// Metrics is the registry the gateway's families go to (sessions,
	// outcomes, bytes; doc/observability.md). Optional.
	Metrics prometheus.Registerer
}

// Server is the WebSocket gateway.
type Server struct {
	cfg      Config
	d        Deps
	log      *slog.Logger
	origins  map[string]bool
	upgrader websocket.Upgrader
	handler  http.Handler
	metrics  *metrics

	mu       sync.Mutex
	srv      *http.Server
	ln       net.Listener
	sessions map[*session]struct{}
	inFlight int // requests past the gate, with or without a session yet
	closing  bool
	wg       sync.WaitGroup
	watching sync.Once // the standing check starts with the first session
}

// New builds the gateway from validated config and its dependencies.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if d.Terminal == nil || d.Nodes == nil || d.CA == nil || d.Logger == nil {
		return nil, errors.New("terminalhost: Terminal, Nodes, CA and Logger are required")
	}
	s := &Server{cfg: cfg, d: d, log: slog.New(redact.NewHandler(d.Logger.Handler())).With("component", "terminal-gateway"),
		origins: map[string]bool{}, sessions: map[*session]struct{}{}}
	for _, o := range cfg.AllowedOrigins {
		s.origins[o] = true
	}
	var err error
	if s.metrics, err = newMetrics(d.Metrics); err != nil {
		return nil, err
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.ReadHeaderTimeout,
		ReadBufferSize:   32 << 10,
		WriteBufferSize:  64 << 10,
		Subprotocols:     []string{Subprotocol},
		// The Origin was checked against the allowlist before the token was
		// consumed; checking again here keeps the upgrader fail-closed.
		CheckOrigin: func(r *http.Request) bool { return s.originAllowed(r.Header.Get("Origin")) },
		// Terminal output is mostly incompressible escape sequences, and
		// compression would cost CPU on the hot path.
		EnableCompression: false,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path, s.serveTerminal)
	s.handler = mux
	return s, nil
}

// Handler is the gateway's HTTP handler, for mounting on another server
// (the API server in development).
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Config.Addr and serves in the background; a taken port
// fails here, not later.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("terminalhost: already started")
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	ln, _, err := httpserve.Start(ctx, "terminal gateway", s.cfg.Addr, srv, s.log)
	if err != nil {
		return fmt.Errorf("terminalhost: %w", err)
	}
	s.ln, s.srv = ln, srv
	return nil
}

// Addr is the address the gateway listens on (after Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting connections and ends every live session with
// close code 1001 (going away), waiting for them until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.closing = true
	for sess := range s.sessions {
		sess.goAway()
	}
	s.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// serveTerminal refuses everything it can before the token is consumed, and
// consumes the token before any connection to the node is made.
func (s *Server) serveTerminal(w http.ResponseWriter, r *http.Request) {
	allocationID := r.PathValue("allocation_id")
	ctx := callctx.WithCorrelationID(r.Context(), correlationID(r))
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ctx = callctx.WithSourceIP(ctx, host)
	}
	r = r.WithContext(ctx)

	if !s.originAllowed(r.Header.Get("Origin")) {
		s.refuseAtGate(w, r, allocationID, &fault.Error{Kind: fault.KindForbidden, Code: terminal.CodeOriginNotAllowed,
			Message: "this origin may not open a terminal"})
		return
	}
	if tokenInQuery(r.URL) {
		s.refuseAtGate(w, r, allocationID, &fault.Error{Kind: fault.KindInvalid, Code: terminal.CodeTokenInQuery,
			Message: "send the terminal token in Sec-WebSocket-Protocol or Authorization, never in the URL"})
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		s.refuseAtGate(w, r, allocationID, fault.Invalid("Upgrade", "this endpoint only accepts WebSocket upgrades"))
		return
	}
	token, ferr := tokenFrom(r)
	if ferr != nil {
		s.refuseAtGate(w, r, allocationID, ferr)
		return
	}
	if !s.reserve() {
		s.metrics.attempt(outcomeFailed)
		s.writeFault(w, r, fault.New(fault.KindUnavailable, fault.CodeUnavailable, "too many terminal sessions; try again"))
		return
	}
	defer s.release()

	grant, err := s.d.Terminal.Consume(ctx, token, allocationID)
	if err != nil {
		if fault.IsKind(err, fault.KindInternal) || fault.IsKind(err, fault.KindUnavailable) {
			s.metrics.attempt(outcomeFailed)
		} else {
			s.metrics.attempt(outcomeRefused)
		}
		s.writeFault(w, r, err)
		return
	}
	log := s.log.With("allocation_id", grant.AllocationID, "node_id", grant.NodeID,
		"correlation_id", callctx.CorrelationID(ctx))
	up, err := s.dialNode(ctx, grant)
	var we *terminal.WireError
	switch {
	case errors.As(err, &we):
		log.Info("terminal: the node refused the session", "session_id", grant.SessionID, "code", we.Code)
		s.metrics.attempt(outcomeRefused)
		s.writeFault(w, r, sessionRefusal(we))
		return
	case err != nil:
		log.Warn("terminal: node unreachable", "error", err)
		s.metrics.attempt(outcomeUnreachable)
		s.writeFault(w, r, fault.New(fault.KindUnavailable, CodeNodeUnreachable, "the node could not be reached").Wrap(err))
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the browser already.
		up.close()
		log.Warn("terminal: websocket upgrade failed", "error", err)
		s.metrics.attempt(outcomeFailed)
		return
	}
	s.metrics.attempt(outcomeOpened)
	s.metrics.active.Inc()
	defer s.metrics.active.Dec()
	sess := newSession(s.cfg, ws, up, log)
	sess.metrics = s.metrics
	sess.userID = grant.UserID
	if s.d.Users != nil {
		s.watching.Do(func() { go s.watchStanding() })
	}
	if !s.track(sess) {
		sess.goAway()
	}
	defer s.untrack(sess)
	end := sess.run()
	s.metrics.connectionEnded(end)
	// Audited after the fact, whatever happened to the request's context
	// (the browser is gone by now in most endings).
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if err := s.d.Terminal.Closed(actx, grant, end); err != nil {
		log.Error("terminal: audit of the connection's end failed", "session_id", grant.SessionID, "end", end.End, "error", err)
	}
}

// auditTimeout bounds the write of a connection's close row.
const auditTimeout = 5 * time.Second

// sessionRefusal turns the node's refusal of a hello into the answer the
// browser gets before the upgrade.
func sessionRefusal(we *terminal.WireError) *fault.Error {
	switch we.Code {
	case terminal.CodeSessionEnded:
		return fault.Conflict(fault.Code(we.Code), "the terminal session has ended; open a new one")
	case terminal.CodeSessionExists:
		return fault.Conflict(fault.Code(we.Code), "a terminal session with this id is open already")
	case terminal.CodeSessionLimit:
		return fault.New(fault.KindRateLimited, fault.Code(we.Code), we.Message)
	default:
		return fault.New(fault.KindUnavailable, fault.Code(terminal.CodeSessionUnavailable),
			"the node could not start a terminal session")
	}
}

// reserve counts a session in flight, refusing above MaxSessions and after
// Shutdown began.
func (s *Server) reserve() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.inFlight >= s.cfg.MaxSessions {
		return false
	}
	s.inFlight++
	s.wg.Add(1)
	return true
}

func (s *Server) release() {
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) track(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[sess] = struct{}{}
	return !s.closing
}

func (s *Server) untrack(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
}

func (s *Server) originAllowed(origin string) bool {
	if origin == "" {
		return false
	}
	norm, err := normaliseOrigin(origin)
	return err == nil && s.origins[norm]
}

// tokenInQuery reports a URL that carries (or pretends to carry) a token:
// any parameter whose name mentions a token, or any value shaped like one.
// URLs end up in proxy logs and browser history, so such a request is
// refused and the token is NOT consumed (it may still be valid; the refusal
// tells the client to fix itself, and the token expires within minutes).
func tokenInQuery(u *url.URL) bool {
	if u.RawQuery == "" {
		return false
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return true
	}
	for k, vs := range q {
		lk := strings.ToLower(k)
		if strings.Contains(lk, "token") || lk == "auth" || lk == "authorization" || lk == "bearer" {
			return true
		}
		for _, v := range vs {
			if terminal.WellFormed(v) || strings.HasPrefix(v, BearerSubprotocolPrefix) {
				return true
			}
		}
	}
	return false
}

// tokenFrom takes the token from the subprotocol list (which must also offer
// Subprotocol) or from Authorization: Bearer. Two different tokens are
// refused rather than guessed between.
func tokenFrom(r *http.Request) (string, *fault.Error) {
	var fromProto string
	offered := false
	for _, p := range websocket.Subprotocols(r) {
		switch {
		case p == Subprotocol:
			offered = true
		case strings.HasPrefix(p, BearerSubprotocolPrefix):
			if fromProto != "" {
				return "", fault.Invalid("Sec-WebSocket-Protocol", "more than one token offered")
			}
			fromProto = strings.TrimPrefix(p, BearerSubprotocolPrefix)
		}
	}
	if fromProto != "" && !offered {
		return "", fault.Invalid("Sec-WebSocket-Protocol", "offer the "+Subprotocol+" subprotocol with the token")
	}
	var fromHeader string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) == "" {
			return "", fault.Unauthenticated(terminal.CodeTokenInvalid, "Authorization must be Bearer <terminal token>")
		}
		fromHeader = strings.TrimSpace(rest)
	}
	switch {
	case fromProto != "" && fromHeader != "" && fromProto != fromHeader:
		return "", fault.Invalid("Authorization", "two different tokens offered")
	case fromProto != "":
		return fromProto, nil
	case fromHeader != "":
		return fromHeader, nil
	}
	return "", fault.Unauthenticated(fault.CodeTokenMissing, "a terminal token is required")
}

// refuseAtGate audits and answers a refusal that happened before any token
// was consumed.
func (s *Server) refuseAtGate(w http.ResponseWriter, r *http.Request, allocationID string, fe *fault.Error) {
	if err := s.d.Terminal.RefuseAtGate(r.Context(), allocationID, fe.Code); err != nil {
		fe = fe.Wrap(err) // the refusal stands; the audit failure is logged below
		s.log.Error("terminal: audit of refusal failed", "code", string(fe.Code),
			"correlation_id", callctx.CorrelationID(r.Context()), "error", err)
	}
	s.writeFault(w, r, fe)
}

// kindStatus maps fault kinds to HTTP statuses for answers before the
// upgrade: every kind, with the statuses of the REST host's table
// (doc/api/README.md), so a refusal means the same on both hosts.
// TestKindStatusTable pins it.
var kindStatus = map[fault.Kind]int{
	fault.KindInvalid:         http.StatusBadRequest,
	fault.KindUnauthenticated: http.StatusUnauthorized,
	fault.KindPaymentRequired: http.StatusPaymentRequired,
	fault.KindForbidden:       http.StatusForbidden,
	fault.KindNotFound:        http.StatusNotFound,
	fault.KindConflict:        http.StatusConflict,
	fault.KindTooLarge:        http.StatusRequestEntityTooLarge,
	fault.KindUnprocessable:   http.StatusUnprocessableEntity,
	fault.KindRateLimited:     http.StatusTooManyRequests,
	fault.KindUnavailable:     http.StatusServiceUnavailable,
	fault.KindInternal:        http.StatusInternalServerError,
}

// StatusOf returns the HTTP status for a fault kind (500 when unknown).
func StatusOf(k fault.Kind) int {
	if st, ok := kindStatus[k]; ok {
		return st
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error struct {
		Code          string `json:"code"`
		Message       string `json:"message"`
		CorrelationID string `json:"correlation_id"`
	} `json:"error"`
}

// writeFault answers with the platform's error body. Internal errors get a
// generic message; their detail is logged once here.
func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, err error) {
	fe := fault.From(err)
	status := StatusOf(fe.Kind)
	var body errorBody
	body.Error.Code, body.Error.Message = string(fe.Code), fe.Message
	body.Error.CorrelationID = callctx.CorrelationID(r.Context())
	if fe.Kind == fault.KindInternal {
		body.Error.Code, body.Error.Message = string(fault.CodeInternal), "internal error; quote the correlation id when reporting it"
		s.log.Error("terminal request failed", "correlation_id", body.Error.CorrelationID, "error", redact.Text(err.Error()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Correlation-ID", body.Error.CorrelationID)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// correlationID keeps a caller's valid X-Correlation-ID, else mints one.
func correlationID(r *http.Request) string {
	if id := r.Header.Get("X-Correlation-ID"); callctx.ValidCorrelationID(id) {
		return id
	}
	return uuid.NewString()
}
