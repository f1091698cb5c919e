package nodeagent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/nodetask"
	agentv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1/agentv1connect"
)

// Version is the agent's version, reported in every heartbeat.
var Version = "dev"

// Config configures the agent.
type Config struct {
	// ServerURL is the agent gateway, e.g. https://gateway.example:8444.
	ServerURL string
	// BootstrapToken enrols the agent when the state directory holds no
	// identity yet; it is used once and never written to disk.
	BootstrapToken string
	// StateDir holds the key, certificate, roots, identity and replay
	// window (0700; files 0600).
	StateDir string
	// ServerRootsPEM are the roots trusted for the gateway before
	// enrolment (the platform CA). Empty: the system roots.
	ServerRootsPEM []byte
	// Executor runs the catalogue's handlers.
	Executor Executor
	// GPUs reports the GPU inventory for heartbeats.
	GPUs GPUSource
	// HeartbeatInterval between heartbeats. Default 15s (the gateway may
	// ask for another).
	HeartbeatInterval time.Duration
	// PollWait is how long one long-poll may be held. Default 25s.
	PollWait time.Duration
	// ClockSkew tolerated for a task's issued-at. Default DefaultClockSkew.
	ClockSkew time.Duration
	// Now tells the time. Default time.Now.
	Now func() time.Time
	// Logger. Default: discard.
	Logger *slog.Logger
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if !strings.HasPrefix(c.ServerURL, "https://") {
		return errors.New("nodeagent: ServerURL must be an https:// URL")
	}
	c.ServerURL = strings.TrimRight(c.ServerURL, "/")
	if c.StateDir == "" {
		return errors.New("nodeagent: StateDir is required")
	}
	if c.Executor == nil {
		return errors.New("nodeagent: an Executor is required")
	}
	if c.GPUs == nil {
		c.GPUs = func(context.Context) ([]inventory.GPU, error) { return nil, nil }
	}
	if c.HeartbeatInterval < 0 || c.PollWait < 0 || c.ClockSkew < 0 {
		return errors.New("nodeagent: durations must not be negative")
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 15 * time.Second
	}
	if c.PollWait == 0 {
		c.PollWait = 25 * time.Second
	}
	if c.PollWait > 25*time.Second || c.PollWait < time.Second {
		// Under a second the gateway would answer at once and the poll
		// loop would spin.
		return errors.New("nodeagent: PollWait must be between 1s and 25s")
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = DefaultClockSkew
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if len(c.ServerRootsPEM) > 0 {
		if !x509.NewCertPool().AppendCertsFromPEM(c.ServerRootsPEM) {
			return errors.New("nodeagent: ServerRootsPEM holds no certificate")
		}
	}
	return nil
}

// Agent is one running agent.
type Agent struct {
	cfg   Config
	state stateDir
	log   *slog.Logger

	id       Identity
	cert     atomic.Pointer[tls.Certificate]
	obtained atomic.Int64 // UnixNano when cert was obtained
	roots    *x509.CertPool
	client   agentv1connect.AgentServiceClient
	verifier *Verifier
	replay   *ReplayWindow
	hbEvery  atomic.Int64 // nanoseconds
	runMu    sync.Mutex   // tasks run one at a time, in sequence order
}

// New checks the config; Start enrols (if needed) and connects.
func New(cfg Config) (*Agent, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, state: stateDir(cfg.StateDir), log: cfg.Logger}
	a.hbEvery.Store(int64(cfg.HeartbeatInterval))
	return a, nil
}

// NodeID is the enrolled node id ("" before Start).
func (a *Agent) NodeID() string { return a.id.NodeID }

// Certificate is the client certificate in use.
func (a *Agent) Certificate() *x509.Certificate {
	if c := a.cert.Load(); c != nil {
		return c.Leaf
	}
	return nil
}

// Start loads the identity from the state directory, or enrols with the
// bootstrap token when there is none, and prepares the mTLS client.
func (a *Agent) Start(ctx context.Context) error {
	if err := a.state.ensure(); err != nil {
		return err
	}
	if !a.state.enrolled() {
		if err := a.enroll(ctx); err != nil {
			return err
		}
	}
	id, cert, roots, _, err := a.state.load()
	if err != nil {
		return fmt.Errorf("nodeagent: state directory: %w", err)
	}
	a.id, a.roots = id, roots
	a.cert.Store(cert)
	// The certificate file was written when the certificate was obtained.
	if fi, err := os.Stat(a.state.path(fileCert)); err == nil {
		a.obtained.Store(fi.ModTime().UnixNano())
	}
	if a.replay, err = OpenReplayWindow(a.state.path(fileReplay)); err != nil {
		return err
	}
	a.verifier = &Verifier{NodeID: id.NodeID, Key: ed25519.PublicKey(id.TaskKey), KeyID: id.TaskKeyID,
		Now: a.cfg.Now, Skew: a.cfg.ClockSkew, Replay: a.replay}
	a.client = agentv1connect.NewAgentServiceClient(a.httpClient(roots, true), a.cfg.ServerURL)
	return nil
}

func (a *Agent) httpClient(roots *x509.CertPool, withCert bool) *http.Client {
	tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}
	if withCert {
		// Read at every handshake, so a renewed certificate is used by the
		// next connection without rebuilding the client.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return a.cert.Load(), nil
		}
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: tc, ForceAttemptHTTP2: true,
		TLSHandshakeTimeout: 10 * time.Second, IdleConnTimeout: 90 * time.Second,
	}}
}

func (a *Agent) enroll(ctx context.Context) error {
	if a.cfg.BootstrapToken == "" {
		return errors.New("nodeagent: not enrolled and no bootstrap token given")
	}
	var roots *x509.CertPool
	if len(a.cfg.ServerRootsPEM) > 0 {
		roots = x509.NewCertPool()
		roots.AppendCertsFromPEM(a.cfg.ServerRootsPEM)
	}
	key, csr, err := newKeyAndCSR()
	if err != nil {
		return err
	}
	c := agentv1connect.NewAgentServiceClient(a.httpClient(roots, false), a.cfg.ServerURL)
	res, err := c.Enroll(ctx, connect.NewRequest(&agentv1.EnrollRequest{
		BootstrapToken: a.cfg.BootstrapToken, CsrDer: csr, AgentVersion: Version,
	}))
	if err != nil {
		return fmt.Errorf("nodeagent: enrol: %w", err)
	}
	m := res.Msg
	if _, err := certificate(m.GetCertChainPem(), key); err != nil {
		return fmt.Errorf("nodeagent: enrol: %w", err)
	}
	if len(m.GetTaskSigningPublicKey()) != ed25519.PublicKeySize || m.GetTaskSigningKeyId() == "" || m.GetNodeId() == "" {
		return errors.New("nodeagent: enrol: the gateway sent no task signing key or node id")
	}
	if !x509.NewCertPool().AppendCertsFromPEM(m.GetCaRootsPem()) {
		return errors.New("nodeagent: enrol: the gateway sent no CA roots")
	}
	a.log.Info("enrolled", "node_id", m.GetNodeId())
	return a.state.save(Identity{NodeID: m.GetNodeId(), TaskKey: m.GetTaskSigningPublicKey(),
		TaskKeyID: m.GetTaskSigningKeyId()}, key, m.GetCertChainPem(), m.GetCaRootsPem())
}

// Renew replaces the client certificate with a fresh one for a new key.
func (a *Agent) Renew(ctx context.Context) error {
	key, csr, err := newKeyAndCSR()
	if err != nil {
		return err
	}
	res, err := a.client.Renew(ctx, connect.NewRequest(&agentv1.RenewRequest{CsrDer: csr}))
	if err != nil {
		return fmt.Errorf("nodeagent: renew: %w", err)
	}
	cert, err := certificate(res.Msg.GetCertChainPem(), key)
	if err != nil {
		return fmt.Errorf("nodeagent: renew: %w", err)
	}
	rootsPEM := res.Msg.GetCaRootsPem()
	if !x509.NewCertPool().AppendCertsFromPEM(rootsPEM) {
		return errors.New("nodeagent: renew: the gateway sent no CA roots")
	}
	// A rotated task signing key arrives with the certificate. Tasks run
	// under runMu, so none is verified halfway through the switch.
	a.runMu.Lock()
	id := a.id
	if k, kid := res.Msg.GetTaskSigningPublicKey(), res.Msg.GetTaskSigningKeyId(); len(k) == ed25519.PublicKeySize && kid != "" &&
		(kid != id.TaskKeyID || !bytes.Equal(k, id.TaskKey)) {
		id.TaskKey, id.TaskKeyID = k, kid
		a.log.Info("task signing key changed", "key_id", kid)
	}
	if err := a.state.save(id, key, res.Msg.GetCertChainPem(), rootsPEM); err != nil {
		a.runMu.Unlock()
		return err
	}
	a.id = id
	a.verifier.Key, a.verifier.KeyID = ed25519.PublicKey(id.TaskKey), id.TaskKeyID
	a.runMu.Unlock()
	a.cert.Store(cert)
	a.obtained.Store(a.cfg.Now().UnixNano())
	a.log.Info("certificate renewed", "not_after", cert.Leaf.NotAfter)
	return nil
}

// Run enrols if needed and then heartbeats, renews and polls until ctx
// ends. Transient failures are retried with capped backoff.
func (a *Agent) Run(ctx context.Context) error {
	if a.client == nil {
		if err := a.Start(ctx); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){a.heartbeatLoop, a.renewLoop, a.pollLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	wg.Wait()
	return ctx.Err()
}

// wait blocks for d or until ctx ends; false when ctx ended.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func backoff(n int) time.Duration {
	d := time.Second << min(n, 5)
	return min(d, 30*time.Second)
}

func (a *Agent) heartbeatLoop(ctx context.Context) {
	for fails := 0; ; {
		if err := a.Heartbeat(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("heartbeat failed", "err", err)
			fails++
			if !wait(ctx, backoff(fails)) {
				return
			}
			continue
		}
		fails = 0
		if !wait(ctx, time.Duration(a.hbEvery.Load())) {
			return
		}
	}
}

// Heartbeat sends one heartbeat with the GPU inventory and health.
func (a *Agent) Heartbeat(ctx context.Context) error {
	gpus, gerr := a.cfg.GPUs(ctx)
	health := &agentv1.Health{Ok: gerr == nil, Checks: map[string]string{}}
	if gerr != nil {
		health.Checks["gpu_discovery"] = gerr.Error()
		health.Message = "GPU discovery failed"
	} else {
		health.Checks["gpu_discovery"] = "ok"
	}
	for k, v := range a.cfg.Executor.Health(ctx) {
		health.Checks[k] = v
		if v != "ok" {
			health.Ok = false
		}
	}
	req := &agentv1.HeartbeatRequest{AgentVersion: Version, Health: health}
	if r, ok := a.cfg.Executor.(HostKeyReporter); ok {
		req.SshHostKey = r.SSHHostKey()
	}
	for _, g := range gpus {
		req.Gpus = append(req.Gpus, &agentv1.Gpu{Index: int32(g.Index), Uuid: g.UUID, Model: g.Model,
			MemoryMib: int32(g.MemoryMiB), Healthy: g.Healthy, Source: g.Source})
	}
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := a.client.Heartbeat(hctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	if s := res.Msg.GetNextHeartbeatSeconds(); s >= 1 && s <= 300 {
		a.hbEvery.Store(int64(time.Duration(s) * time.Second))
	}
	return nil
}

func (a *Agent) renewLoop(ctx context.Context) {
	for fails := 0; ; {
		leaf := a.Certificate()
		d := RenewAt(leaf, time.Unix(0, a.obtained.Load())).Sub(a.cfg.Now())
		if fails > 0 {
			d = backoff(fails)
		}
		if !wait(ctx, max(d, 0)) {
			return
		}
		if err := a.Renew(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("certificate renewal failed", "err", err)
			fails++
			continue
		}
		fails = 0
	}
}

func (a *Agent) pollLoop(ctx context.Context) {
	for fails := 0; ; {
		n, err := a.PollOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("task poll failed", "err", err)
			fails++
			if !wait(ctx, backoff(fails)) {
				return
			}
			continue
		}
		fails = 0
		_ = n
	}
}

// PollOnce long-polls once and handles every task it got; it returns how
// many it handled.
func (a *Agent) PollOnce(ctx context.Context) (int, error) {
	pctx, cancel := context.WithTimeout(ctx, a.cfg.PollWait+15*time.Second)
	defer cancel()
	res, err := a.client.PollTasks(pctx, connect.NewRequest(&agentv1.PollTasksRequest{
		Max: 8, WaitSeconds: int32(a.cfg.PollWait / time.Second),
	}))
	if err != nil {
		return 0, err
	}
	for _, p := range res.Msg.GetTasks() {
		r := a.HandleEnvelope(ctx, p)
		if err := a.report(ctx, r); err != nil {
			return 0, err
		}
	}
	return len(res.Msg.GetTasks()), nil
}

func (a *Agent) report(ctx context.Context, r nodetask.Result) error {
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := a.client.ReportTaskResult(rctx, connect.NewRequest(&agentv1.ReportTaskResultRequest{
		TaskId: r.TaskID, Succeeded: r.Succeeded, ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMessage,
		OutputJson: r.Output,
	}))
	var ce *connect.Error
	if errors.As(err, &ce) && (ce.Code() == connect.CodeFailedPrecondition || ce.Code() == connect.CodeNotFound) {
		// Already recorded (a re-delivery) or not ours (a forgery): nothing
		// more to tell the gateway.
		return nil
	}
	return err
}

// HandleEnvelope verifies a wire envelope and, only if every check passes,
// runs its handler. It returns the result to report: a refusal carries its
// stable code and nothing has run.
func (a *Agent) HandleEnvelope(ctx context.Context, p *agentv1.TaskEnvelope) nodetask.Result {
	a.runMu.Lock()
	defer a.runMu.Unlock()
	e, err := envelopeFromProto(p)
	if err != nil {
		return nodetask.Result{TaskID: p.GetTaskId(), ErrorCode: CodeBadParams, ErrorMessage: err.Error()}
	}
	params, ref := a.verifier.Verify(e)
	if ref != nil {
		if ref.Code == CodeReplayed {
			// A genuine task re-delivered after its report was lost gets
			// its first result again; it does not run twice.
			if r, ok := a.replay.ResultOf(e.TaskID); ok {
				return r
			}
		}
		a.log.Warn("task refused", "task_id", e.TaskID, "code", ref.Code, "reason", ref.Message)
		return nodetask.Result{TaskID: e.TaskID, ErrorCode: ref.Code, ErrorMessage: ref.Message}
	}
	r := a.run(ctx, e, params)
	if err := a.replay.Remember(r); err != nil {
		// The result stays in memory and is still reported; only a
		// re-delivery after a restart would be refused as replayed instead
		// of answered with it. Loud, since the state directory is failing.
		a.log.Error("task result not saved in the replay window", "task_id", e.TaskID, "error", err)
	}
	return r
}

// run dispatches to the compiled handler of the type.
func (a *Agent) run(ctx context.Context, e nodetask.Envelope, params any) nodetask.Result {
	r := nodetask.Result{TaskID: e.TaskID}
	var err error
	switch p := params.(type) {
	case nodetask.ProvisionUserParams:
		err = a.cfg.Executor.ProvisionUser(ctx, p)
	case nodetask.StopUserParams:
		err = a.cfg.Executor.StopUser(ctx, p)
	case nodetask.RevokeUserParams:
		err = a.cfg.Executor.RevokeUser(ctx, p)
	case nodetask.HealthCheckParams:
		var out []byte
		out, err = a.healthReport(ctx)
		r.Output = out
	case nodetask.StorageSyncParams:
		syncer, ok := a.cfg.Executor.(StorageSyncer)
		if !ok {
			r.ErrorCode, r.ErrorMessage = CodeUnknownType, "this node's executor does not sync storage"
			return r
		}
		var rep nodetask.SyncReport
		if rep, err = syncer.SyncStorage(ctx, p); err == nil {
			r.Output, err = json.Marshal(rep)
		}
	default:
		r.ErrorCode, r.ErrorMessage = CodeUnknownType, "no handler for "+string(e.Type)
		return r
	}
	if err != nil {
		a.log.Warn("task failed", "task_id", e.TaskID, "type", e.Type, "err", err)
		r.ErrorCode, r.ErrorMessage = CodeExecutionFailed, err.Error()
		return r
	}
	r.Succeeded = true
	a.log.Info("task done", "task_id", e.TaskID, "type", e.Type, "seq", e.Seq)
	return r
}

func (a *Agent) healthReport(ctx context.Context) ([]byte, error) {
	gpus, err := a.cfg.GPUs(ctx)
	out := map[string]any{"gpus": gpus, "checks": a.cfg.Executor.Health(ctx), "agent_version": Version}
	if err != nil {
		out["gpu_error"] = err.Error()
	}
	return json.Marshal(out)
}
