package agentsvc

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/ports"
)

// Stable codes the agent RPCs refuse with.
const (
	CodeBootstrapTokenInvalid fault.Code = "bootstrap_token_invalid"
	CodeCertificateRequired   fault.Code = "client_certificate_required"
	CodeCertificateUnknown    fault.Code = "certificate_unknown"
	CodeCertificateInvalid    fault.Code = "certificate_invalid"
	CodeCertificateRevoked    fault.Code = "certificate_revoked"
	CodeNodeRetired           fault.Code = "node_retired"
)

// Limits on what an agent may send.
const (
	MaxTasksPerPoll = 32
	MaxPollWait     = 25 * time.Second
	maxGPUs         = 64
	maxVersionLen   = 64
)

// Config tunes the agent use cases.
type Config struct {
	// CertTTL is the lifetime of node client certificates. Default 24h;
	// at most 7 days (they are short-lived by design: renewal is cheap).
	CertTTL time.Duration
	// RootsPEM are the CA roots the agent is told to trust for the gateway
	// (ports.CertificateAuthority offers a pool, which cannot be encoded).
	RootsPEM []byte
	// LeaseDuration is how long a polled task stays with the agent before
	// it is offered again. Default 2m.
	LeaseDuration time.Duration
	// HeartbeatInterval is what agents are asked to keep. Default 15s.
	HeartbeatInterval time.Duration
	// AllowSimulatedGPUs lets nodes whose GPUs are simulated (configured,
	// not found) be placed. Off, such a node is held out of placement
	// (maintenance, health not ok) at every heartbeat: a production agent
	// started with --simulated-gpus must not be rented as real hardware.
	// `gpuaas dev` turns it on for its sandbox nodes; operators elsewhere
	// with GPUAAS_ALLOW_SIMULATED_GPUS=1.
	AllowSimulatedGPUs bool
	// AuthCacheTTL bounds how long a certificate found good is trusted
	// without asking the store again, while no revocation is announced
	// (ports.NodeCertificateStore.RevocationGeneration). Default 60s;
	// negative turns the cache off.
	AuthCacheTTL time.Duration
	// HeartbeatWriteEvery: a heartbeat that changes nothing the node row
	// holds but the time is written at most this often (liveness needs
	// far less than every heartbeat: inventory.OfflineAfter). Default
	// 30s; it must stay under OfflineAfter minus two heartbeats. Negative
	// writes every heartbeat.
	HeartbeatWriteEvery time.Duration
}

// maxAuthCache bounds the cache of certificates found good (one per
// connected node and certificate).
const maxAuthCache = 1 << 18

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if c.CertTTL < 0 || c.LeaseDuration < 0 || c.HeartbeatInterval < 0 {
		return errors.New("agentsvc: durations must not be negative")
	}
	if c.CertTTL == 0 {
		c.CertTTL = 24 * time.Hour
	}
	if c.CertTTL > 7*24*time.Hour {
		return errors.New("agentsvc: CertTTL must be at most 7 days")
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = 2 * time.Minute
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 15 * time.Second
	}
	if c.AuthCacheTTL == 0 {
		c.AuthCacheTTL = 60 * time.Second
	}
	if c.HeartbeatWriteEvery == 0 {
		c.HeartbeatWriteEvery = 30 * time.Second
	}
	if c.HeartbeatWriteEvery > inventory.OfflineAfter-2*c.HeartbeatInterval {
		return errors.New("agentsvc: HeartbeatWriteEvery must stay under OfflineAfter minus two heartbeat intervals")
	}
	if !strings.Contains(string(c.RootsPEM), "BEGIN CERTIFICATE") {
		return errors.New("agentsvc: RootsPEM must hold the CA root certificates")
	}
	return nil
}

// Deps are the ports the service needs.
type Deps struct {
	Tx     ports.TxRunner
	Tokens ports.BootstrapTokenStore
	CA     ports.CertificateAuthority
	Certs  ports.NodeCertificateStore
	Nodes  ports.NodeStore
	Tasks  ports.TaskQueue
	Signer ports.Signer
	Audit  ports.AuditLog
	Clock  ports.Clock
	IDs    ports.IDs
}

// Service implements the agent use cases. Every method except Enroll takes
// the node id that Authenticate derived from the client certificate.
type Service struct {
	cfg Config
	d   Deps
	pub ed25519.PublicKey

	// auth caches certificates found good: serial → node, the revocation
	// generation they were checked at and until when. Every call of every
	// agent authenticates; a connected fleet would otherwise cost the
	// database two queries per call.
	authMu sync.Mutex
	auth   map[string]authEntry
	// beats remembers what each node's row last got from a heartbeat and
	// when, so an unchanged heartbeat skips the write.
	beatMu sync.Mutex
	beats  map[string]beatEntry
}

type authEntry struct {
	nodeID string
	gen    uint64
	until  time.Time
}

type beatEntry struct {
	digest  [32]byte
	written time.Time
}

// New checks the config and that every dependency is present.
func New(cfg Config, d Deps) (*Service, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if d.Tx == nil || d.Tokens == nil || d.CA == nil || d.Certs == nil || d.Nodes == nil ||
		d.Tasks == nil || d.Signer == nil || d.Audit == nil || d.Clock == nil || d.IDs == nil {
		return nil, errors.New("agentsvc: every dependency is required")
	}
	pub, ok := d.Signer.Public().(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("agentsvc: the task signer must hold an Ed25519 key")
	}
	return &Service{cfg: cfg, d: d, pub: pub, auth: map[string]authEntry{}, beats: map[string]beatEntry{}}, nil
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// EnrollRequest is what an agent presents to enrol.
type EnrollRequest struct {
	BootstrapToken string
	CSRDER         []byte
	AgentVersion   string
}

// Enrollment is what an enrolled agent receives.
type Enrollment struct {
	NodeID        string
	CertChainPEM  []byte
	RootsPEM      []byte
	TaskKey       ed25519.PublicKey
	TaskKeyID     string
	CertNotAfter  time.Time
	HeartbeatEach time.Duration
}

// HashBootstrapToken is how bootstrap tokens are stored: SHA-256 of the
// token as the operator received it. The token has 256 bits of entropy,
// so an unsalted fast hash is enough and lets the store look it up.
func HashBootstrapToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Enroll consumes the bootstrap token and certifies the agent's key for
// the token's node. The CSR is checked before the token is touched, so a
// malformed request does not burn it; consuming the token and signing the
// certificate share one transaction, so a CA failure does not burn it
// either. Of concurrent enrolments with one token exactly one succeeds. A
// refused token is audited and answers Unauthenticated
// bootstrap_token_invalid whatever the reason (unknown, used, expired).
func (s *Service) Enroll(ctx context.Context, r EnrollRequest) (Enrollment, error) {
	csr, err := parseCSR(r.CSRDER)
	if err != nil {
		return Enrollment{}, err
	}
	if err := checkVersion(r.AgentVersion); err != nil {
		return Enrollment{}, err
	}
	if r.BootstrapToken == "" || len(r.BootstrapToken) > 512 {
		return Enrollment{}, s.denied(ctx, "", "node.enroll", errBootstrapTokenInvalid(), nil)
	}
	var out Enrollment
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		now := s.d.Clock.Now()
		nodeID, err := s.d.Tokens.ConsumeBootstrapToken(ctx, HashBootstrapToken(r.BootstrapToken), now)
		if err != nil {
			return err
		}
		n, err := s.d.Nodes.GetNode(ctx, nodeID)
		if err != nil {
			return err
		}
		if n.State == inventory.NodeRetired {
			return fault.New(fault.KindForbidden, CodeNodeRetired, "the node is retired")
		}
		chain, err := s.d.CA.SignCSR(ctx, csr, nodeID, s.cfg.CertTTL)
		if err != nil {
			return err
		}
		out = Enrollment{
			NodeID: nodeID, CertChainPEM: chain, RootsPEM: s.cfg.RootsPEM,
			TaskKey: s.pub, TaskKeyID: s.d.Signer.KeyID(), CertNotAfter: now.Add(s.cfg.CertTTL),
			HeartbeatEach: s.cfg.HeartbeatInterval,
		}
		return s.d.Audit.Record(ctx, s.event(ctx, nodeID, "node.enroll", audit.Success,
			map[string]any{"agent_version": r.AgentVersion}))
	})
	if err != nil {
		fe := fault.From(err)
		if fe.Kind == fault.KindUnauthenticated {
			return Enrollment{}, s.denied(ctx, "", "node.enroll", errBootstrapTokenInvalid(), nil)
		}
		if fe.Kind == fault.KindForbidden {
			return Enrollment{}, s.denied(ctx, "", "node.enroll", fe, nil)
		}
		return Enrollment{}, err
	}
	return out, nil
}

// Renew certifies a fresh key for an authenticated node. A retired node
// cannot renew (Authenticate already refuses revoked certificates).
func (s *Service) Renew(ctx context.Context, nodeID string, csrDER []byte) (Enrollment, error) {
	csr, err := parseCSR(csrDER)
	if err != nil {
		return Enrollment{}, err
	}
	n, err := s.d.Nodes.GetNode(ctx, nodeID)
	if err != nil {
		return Enrollment{}, err
	}
	if n.State == inventory.NodeRetired {
		return Enrollment{}, s.denied(ctx, nodeID, "node.renew", fault.New(fault.KindForbidden, CodeNodeRetired, "the node is retired"), nil)
	}
	var out Enrollment
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		chain, err := s.d.CA.SignCSR(ctx, csr, nodeID, s.cfg.CertTTL)
		if err != nil {
			return err
		}
		out = Enrollment{NodeID: nodeID, CertChainPEM: chain, RootsPEM: s.cfg.RootsPEM,
			TaskKey: s.pub, TaskKeyID: s.d.Signer.KeyID(), CertNotAfter: s.d.Clock.Now().Add(s.cfg.CertTTL),
			HeartbeatEach: s.cfg.HeartbeatInterval}
		return s.d.Audit.Record(ctx, s.event(ctx, nodeID, "node.renew", audit.Success, nil))
	})
	return out, err
}

// Authenticate decides whether a verified client certificate may call:
// its serial must be one the CA issued to the node the certificate names,
// not revoked, and the node must not be retired. It returns the node id the
// caller acts as. Every refusal is audited.
func (s *Service) Authenticate(ctx context.Context, serial, certNodeID, procedure string) (string, error) {
	meta := map[string]any{"procedure": procedure, "serial": serial}
	if serial == "" || certNodeID == "" {
		return "", s.denied(ctx, certNodeID, "node.authenticate", fault.Unauthenticated(CodeCertificateRequired, "a client certificate is required"), meta)
	}
	// The generation is read before the store is asked: a revocation that
	// commits after the answer changes it, and the entry is not used again.
	gen := s.d.Certs.RevocationGeneration()
	if id, ok := s.cachedAuth(serial, certNodeID, gen); ok {
		return id, nil
	}
	nodeID, revoked, err := s.d.Certs.UseCertificate(ctx, serial, s.d.Clock.Now())
	switch {
	case fault.IsKind(err, fault.KindNotFound):
		return "", s.denied(ctx, certNodeID, "node.authenticate", fault.Unauthenticated(CodeCertificateUnknown, "the client certificate is unknown"), meta)
	case err != nil:
		return "", err
	}
	if !strings.EqualFold(nodeID, certNodeID) {
		return "", s.denied(ctx, certNodeID, "node.authenticate", fault.Unauthenticated(CodeCertificateUnknown, "the client certificate is unknown"), meta)
	}
	if revoked {
		return "", s.denied(ctx, nodeID, "node.authenticate", fault.Unauthenticated(CodeCertificateRevoked, "the client certificate is revoked"), meta)
	}
	n, err := s.d.Nodes.GetNode(ctx, nodeID)
	if err != nil {
		if fault.IsKind(err, fault.KindNotFound) {
			return "", s.denied(ctx, nodeID, "node.authenticate", fault.Unauthenticated(CodeCertificateUnknown, "the client certificate is unknown"), meta)
		}
		return "", err
	}
	if n.State == inventory.NodeRetired {
		return "", s.denied(ctx, nodeID, "node.authenticate", fault.New(fault.KindForbidden, CodeNodeRetired, "the node is retired"), meta)
	}
	s.cacheAuth(serial, nodeID, gen)
	return nodeID, nil
}

// cachedAuth answers from the cache when the serial was found good at the
// same revocation generation and not too long ago. Retiring a node revokes
// its certificates, so the generation covers that too.
func (s *Service) cachedAuth(serial, certNodeID string, gen uint64) (string, bool) {
	if gen == 0 || s.cfg.AuthCacheTTL < 0 {
		return "", false
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	e, ok := s.auth[serial]
	if !ok || e.gen != gen || !s.d.Clock.Now().Before(e.until) || !strings.EqualFold(e.nodeID, certNodeID) {
		return "", false
	}
	return e.nodeID, true
}

func (s *Service) cacheAuth(serial, nodeID string, gen uint64) {
	if gen == 0 || s.cfg.AuthCacheTTL < 0 {
		return
	}
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if len(s.auth) >= maxAuthCache {
		// Full: drop stale entries (those of an older generation or past
		// their time first, then any), as an LRU would, without its cost.
		now := s.d.Clock.Now()
		for k, e := range s.auth {
			if e.gen != gen || !now.Before(e.until) || len(s.auth) >= maxAuthCache {
				delete(s.auth, k)
			}
			if len(s.auth) < maxAuthCache/2 {
				break
			}
		}
	}
	s.auth[serial] = authEntry{nodeID: nodeID, gen: gen, until: s.d.Clock.Now().Add(s.cfg.AuthCacheTTL)}
}

// DenyUnauthenticated audits a call refused before any certificate could
// be checked (for example, none was presented) and returns the refusal.
func (s *Service) DenyUnauthenticated(ctx context.Context, procedure string) error {
	return s.denied(ctx, "", "node.authenticate", fault.Unauthenticated(CodeCertificateRequired, "a client certificate is required"),
		map[string]any{"procedure": procedure})
}

// DenyCertificate audits a client certificate refused during the TLS
// handshake (another CA, expired). claimedNodeID is what the unverified
// certificate names — a claim, recorded as such, never as the actor.
func (s *Service) DenyCertificate(ctx context.Context, claimedNodeID, reason string) error {
	if len(reason) > 256 {
		reason = reason[:256]
	}
	return s.denied(ctx, "", "node.authenticate", fault.Unauthenticated(CodeCertificateInvalid, "the client certificate is not valid"),
		map[string]any{"claimed_node_id": claimedNodeID, "reason": reason})
}

// Heartbeat records the agent's report; an enrolling or offline node
// becomes active.
func (s *Service) Heartbeat(ctx context.Context, nodeID string, hb inventory.Heartbeat) (time.Duration, error) {
	if err := checkVersion(hb.AgentVersion); err != nil {
		return 0, err
	}
	if len(hb.GPUs) > maxGPUs {
		return 0, fault.Invalid("gpus", "too many GPUs")
	}
	for _, g := range hb.GPUs {
		if g.Index < 0 || g.Index >= maxGPUs || len(g.UUID) > 128 || len(g.Model) > 128 || g.MemoryMiB < 0 ||
			!inventory.ValidGPUSource(g.Source) {
			return 0, fault.Invalid("gpus", "a GPU entry is out of range")
		}
	}
	hold := inventory.Simulated(hb.GPUs) && !s.cfg.AllowSimulatedGPUs
	if hold {
		checks := make(map[string]string, len(hb.Health.Checks)+1)
		for k, v := range hb.Health.Checks {
			checks[k] = v
		}
		checks["gpu_source"] = heldSimulated
		hb.Health = inventory.Health{OK: false, Checks: checks, Message: heldSimulated}
	}
	if len(hb.Health.Checks) > 64 || len(hb.Health.Message) > 1024 {
		return 0, fault.Invalid("health", "health report is too large")
	}
	if hb.SSHHostKey != "" {
		key, err := CheckSSHHostKey(hb.SSHHostKey)
		if err != nil {
			// A bad key must not cost the node its liveness: the heartbeat
			// counts and the key stored before stays.
			// The refused key is a security event: one that cannot be
			// recorded fails the heartbeat (retried) rather than vanish.
			if err := s.deny(ctx, nodeID, "node.ssh_host_key", "ssh_host_key_invalid", map[string]any{"reason": err.Error()}); err != nil {
				return 0, err
			}
			hb.SSHHostKey = ""
		} else {
			hb.SSHHostKey = key
		}
	}
	hb.At = s.d.Clock.Now()
	digest, err := heartbeatDigest(hb)
	if err != nil {
		return 0, err
	}
	if !hold && s.beatUnchanged(nodeID, digest, hb.At) {
		return s.cfg.HeartbeatInterval, nil
	}
	record := func(ctx context.Context) error {
		prev, err := s.d.Nodes.RecordHeartbeat(ctx, nodeID, hb)
		if err != nil {
			return err
		}
		if hold {
			if err := s.holdOutOfPlacement(ctx, nodeID); err != nil {
				return err
			}
		}
		if hb.SSHHostKey == "" || prev == hb.SSHHostKey {
			return nil
		}
		if prev == "" {
			return s.d.Audit.Record(ctx, s.event(ctx, nodeID, "node.ssh_host_key_recorded", audit.Success,
				map[string]any{"fingerprint": sshFingerprint(hb.SSHHostKey)}))
		}
		// A live node whose host key changes was re-imaged, or someone
		// else answers for it: operators must see it.
		return s.d.Audit.Record(ctx, s.event(ctx, nodeID, "node.ssh_host_key_changed", audit.Success,
			map[string]any{"previous_fingerprint": sshFingerprint(prev), "fingerprint": sshFingerprint(hb.SSHHostKey)}))
	}
	if hb.SSHHostKey == "" && !hold {
		err = record(ctx)
	} else {
		// The key and its audit record commit together, so a change is
		// never stored unrecorded; a held node never shows as active
		// outside the transaction that would have made it so.
		err = s.d.Tx.InTx(ctx, record)
	}
	if err != nil {
		s.forgetBeat(nodeID)
		return 0, err
	}
	s.rememberBeat(nodeID, digest, hb.At)
	return s.cfg.HeartbeatInterval, nil
}

// heartbeatDigest identifies what a heartbeat writes to the node row,
// its time aside (json.Marshal orders map keys, so equal reports hash
// equal).
func heartbeatDigest(hb inventory.Heartbeat) ([32]byte, error) {
	b, err := json.Marshal(struct {
		V string
		G []inventory.GPU
		H inventory.Health
		K string
	}{hb.AgentVersion, hb.GPUs, hb.Health, hb.SSHHostKey})
	if err != nil {
		return [32]byte{}, fault.Internal(err)
	}
	return sha256.Sum256(b), nil
}

// beatUnchanged reports whether the node's row already holds this report,
// written less than HeartbeatWriteEvery ago: then only liveness would
// change, and it does not need refreshing yet (the row says the node is
// alive well within inventory.OfflineAfter).
func (s *Service) beatUnchanged(nodeID string, digest [32]byte, now time.Time) bool {
	if s.cfg.HeartbeatWriteEvery < 0 {
		return false
	}
	s.beatMu.Lock()
	defer s.beatMu.Unlock()
	e, ok := s.beats[nodeID]
	return ok && e.digest == digest && now.Sub(e.written) < s.cfg.HeartbeatWriteEvery
}

func (s *Service) rememberBeat(nodeID string, digest [32]byte, at time.Time) {
	s.beatMu.Lock()
	defer s.beatMu.Unlock()
	if len(s.beats) >= maxAuthCache {
		for k, e := range s.beats {
			if at.Sub(e.written) >= s.cfg.HeartbeatWriteEvery {
				delete(s.beats, k)
			}
		}
		if len(s.beats) >= maxAuthCache {
			clear(s.beats)
		}
	}
	s.beats[nodeID] = beatEntry{digest: digest, written: at}
}

func (s *Service) forgetBeat(nodeID string) {
	s.beatMu.Lock()
	delete(s.beats, nodeID)
	s.beatMu.Unlock()
}

// heldSimulated is the health check and message of a node held out of
// placement for its simulated GPUs.
const heldSimulated = "simulated GPUs: held out of placement (allow with GPUAAS_ALLOW_SIMULATED_GPUS=1)"

// holdOutOfPlacement moves an active node to maintenance, audited as a
// system action the first time.
func (s *Service) holdOutOfPlacement(ctx context.Context, nodeID string) error {
	held := false
	_, err := s.d.Nodes.UpdateNode(ctx, nodeID, func(n *inventory.Node) error {
		if n.State != inventory.NodeActive {
			return nil
		}
		n.State, held = inventory.NodeMaintenance, true
		return nil
	})
	if err != nil || !held {
		return err
	}
	ev := s.event(ctx, nodeID, "node.held_simulated_gpus", audit.Success, map[string]any{"to": string(inventory.NodeMaintenance)})
	ev.ActorType, ev.ActorID = audit.ActorSystem, ""
	return s.d.Audit.Record(ctx, ev)
}

// MaxSSHHostKeyLen bounds the host key an agent may report.
const MaxSSHHostKeyLen = 16 << 10

// CheckSSHHostKey parses an agent-reported host key: one public key (not a
// certificate) in authorized_keys format, at most MaxSSHHostKeyLen bytes.
// It returns the key in canonical form ("type base64", no comment), so an
// unchanged key compares equal whatever its comment or spacing.
func CheckSSHHostKey(s string) (string, error) {
	if len(s) > MaxSSHHostKeyLen {
		return "", errors.New("the host key is longer than 16 KiB")
	}
	key, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return "", errors.New("the host key is not an SSH public key in authorized_keys format")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return "", errors.New("more than one host key")
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return "", errors.New("the host key is a certificate, not a public key")
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), nil
}

func sshFingerprint(authorizedKey string) string {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return ""
	}
	return ssh.FingerprintSHA256(key)
}

// PollTasks leases up to limit of the node's tasks in sequence order. When
// none is queued it waits up to wait (capped at MaxPollWait) and answers as
// soon as one is: the queue's WaitForTasks wakes it on insert. A wait that
// runs out answers empty without leasing again — the agent polls again at
// once and that poll leases first — which spares the database a query per
// idle poll of every connected agent.
func (s *Service) PollTasks(ctx context.Context, nodeID string, limit int, wait time.Duration) ([]nodetask.Task, error) {
	if limit <= 0 || limit > MaxTasksPerPoll {
		limit = MaxTasksPerPoll
	}
	// The wait's end is a time, not a context with a timer: one long poll
	// per connected agent is parked here, and everything it holds is held
	// fleet-wide (doc/performance.md, agent gateway at fleet scale).
	deadline := time.Now().Add(min(max(wait, 0), MaxPollWait))
	for {
		tasks, err := s.d.Tasks.Lease(ctx, nodeID, limit, s.d.Clock.Now().Add(s.cfg.LeaseDuration))
		if err != nil || len(tasks) > 0 {
			return tasks, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		if err := s.d.Tasks.WaitForTasks(ctx, nodeID, left); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if !time.Now().Before(deadline) {
			return nil, nil // the wait ran out: the agent's next poll leases first
		}
	}
}

// Refusal codes an agent reports when it refused to run a task; each such
// report is audited as a refused (possibly forged or replayed) task.
var refusalCodes = map[string]bool{
	"bad_signature": true, "replayed": true, "expired": true, "wrong_node": true,
	"unknown_type": true, "bad_params": true,
}

// ReportTaskResult records the outcome of one of the node's tasks. A task
// of another node answers NotFound and is audited; a refusal by the agent's
// verifier (bad_signature, replayed, …) is audited too.
func (s *Service) ReportTaskResult(ctx context.Context, nodeID string, r nodetask.Result) error {
	if len(r.ErrorMessage) > 1024 {
		r.ErrorMessage = r.ErrorMessage[:1024]
	}
	if len(r.Output) > 64<<10 {
		return fault.Invalid("output_json", "output is too large")
	}
	// A task the agent refused (forged, replayed …) is a security event: its
	// result and its audit record commit together, so a failed audit write
	// fails the report, which the agent retries, instead of vanishing.
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.d.Tasks.Complete(ctx, nodeID, r); err != nil {
			return err
		}
		if !r.Succeeded && refusalCodes[r.ErrorCode] {
			return s.deny(ctx, nodeID, "node.task.refused", r.ErrorCode, map[string]any{"task_id": r.TaskID})
		}
		return nil
	})
	if fe := fault.From(err); err != nil && fe.Kind == fault.KindNotFound {
		return s.denied(ctx, nodeID, "node.task.report", fe, map[string]any{"task_id": r.TaskID})
	}
	return err
}

func parseCSR(der []byte) (*x509.CertificateRequest, error) {
	if len(der) == 0 || len(der) > 16<<10 {
		return nil, fault.Invalid("csr_der", "a DER certificate request is required")
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fault.Invalid("csr_der", "the certificate request does not parse")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fault.Invalid("csr_der", "the certificate request is not self-signed by its key")
	}
	return csr, nil
}

func checkVersion(v string) error {
	if len(v) > maxVersionLen || !utf8.ValidString(v) {
		return fault.Invalid("agent_version", "agent version is too long")
	}
	return nil
}

func (s *Service) event(ctx context.Context, nodeID, action string, outcome audit.Outcome, meta map[string]any) audit.Event {
	return audit.Event{
		ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: audit.ActorNode, ActorID: nodeID,
		Action: action, ResourceType: "node", ResourceID: nodeID, Outcome: outcome,
		CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx), Metadata: meta,
	}
}

// deny writes the audit record of a refusal (outcome denied, the code in
// its metadata) and returns the write's error. Called outside the refused
// work's transaction, which rolled back, its record still commits; the
// context is kept past the caller's cancellation for the same reason.
func (s *Service) deny(ctx context.Context, nodeID, action, code string, meta map[string]any) error {
	m := map[string]any{"code": code}
	for k, v := range meta {
		m[k] = v
	}
	if err := s.d.Audit.Record(context.WithoutCancel(ctx), s.event(ctx, nodeID, action, audit.Denied, m)); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRefusalNotAudited, action, err)
	}
	return nil
}

// ErrRefusalNotAudited is the cause a refusal carries when its audit record
// could not be written. The caller is refused all the same (an audit outage
// must not open the door); the host logs the cause.
var ErrRefusalNotAudited = errors.New("agentsvc: the refusal could not be audited")

// denied audits a refusal and returns it, carrying the audit failure, if
// any, as its cause.
func (s *Service) denied(ctx context.Context, nodeID, action string, refusal *fault.Error, meta map[string]any) error {
	if err := s.deny(ctx, nodeID, action, string(refusal.Code), meta); err != nil {
		return refusal.Wrap(err)
	}
	return refusal
}

// errBootstrapTokenInvalid is every enrolment refusal of a token: unknown,
// used and expired look alike.
func errBootstrapTokenInvalid() *fault.Error {
	return fault.Unauthenticated(CodeBootstrapTokenInvalid, "the bootstrap token is invalid, used or expired")
}
