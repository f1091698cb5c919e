package connecthost_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	"github.com/gpuaas/gpuaas/core/nodetask"
	connecthost "github.com/gpuaas/gpuaas/hosts/connect"
	agentv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1"
	"github.com/gpuaas/gpuaas/nodeagent"
	"github.com/gpuaas/gpuaas/nodeagent/gpu"
	"github.com/gpuaas/gpuaas/nodeagent/sandbox"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

// runningAgent is a real agent with the sandbox executor, enrolled with the
// gateway and running its loops until the test ends.
type runningAgent struct {
	*nodeagent.Agent
	sb *sandbox.Server
}

func startAgent(t *testing.T, e *env, token string) *runningAgent {
	t.Helper()
	sb, err := sandbox.New(sandbox.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	a, err := nodeagent.New(nodeagent.Config{
		ServerURL: e.url, BootstrapToken: token, StateDir: t.TempDir(), ServerRootsPEM: e.rootsPEM,
		Executor: sb, PollWait: 5 * time.Second,
		GPUs: func(context.Context) ([]inventory.GPU, error) {
			return gpu.Simulated(1, "NVIDIA H100 80GB HBM3", 81559), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &runningAgent{Agent: a, sb: sb}
}

func userKey(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

func dialSSH(addr, user string, s ssh.Signer, host ssh.PublicKey) (*ssh.Client, error) {
	return ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(s)},
		HostKeyCallback: ssh.FixedHostKey(host), Timeout: 5 * time.Second,
	})
}

// TestGoldenPath: enrol with a token, heartbeat, provision an account
// through a signed task, SSH in with the user's key and run a command,
// revoke, and SSH is refused and the running session is gone.
func TestGoldenPath(t *testing.T) {
	// The sandbox agent's GPUs are simulated: allowed here, as in gpuaas dev.
	e := newEnv(t, agentsvc.Config{AllowSimulatedGPUs: true})
	nodeID, token := e.newNode(t)
	a := startAgent(t, e, token)
	if a.NodeID() != nodeID {
		t.Fatalf("enrolled as %s, want %s", a.NodeID(), nodeID)
	}
	ctx := context.Background()

	poll.Until(t, 10*time.Second, "first heartbeat", func() bool {
		n, err := e.nodes.GetNode(ctx, nodeID)
		return err == nil && n.State == inventory.NodeActive && len(n.GPUs) == 1 && n.LastHeartbeatAt != nil
	})
	if got := e.audits(t, "node.enroll", audit.Success); len(got) != 1 || got[0].ActorID != nodeID {
		t.Fatalf("enrol audit = %+v", got)
	}

	signer, pub := userKey(t)
	allocID := "0190aaaa-bbbb-7ccc-8ddd-000000000001"
	user := nodetask.UsernameFor(allocID)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := e.tasks.RunTask(rctx, nodeID, nodetask.ProvisionUser, nodetask.ProvisionUserParams{
		AllocationID: allocID, Username: user, AuthorizedKeys: []string{pub},
	}, "")
	if err != nil || !res.Succeeded {
		t.Fatalf("provision: %+v, %v", res, err)
	}

	c, err := dialSSH(a.sb.Addr(), user, signer, a.sb.HostPublicKey())
	if err != nil {
		t.Fatalf("ssh with the user's key: %v", err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output("echo hi")
	if err != nil || string(out) != "hi\n" {
		t.Fatalf("echo hi = %q, %v", out, err)
	}
	// A long-running session that revoke must end.
	long, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := long.Start("sleep 600"); err != nil {
		t.Fatal(err)
	}
	longDone := make(chan error, 1)
	go func() { longDone <- long.Wait() }()

	// Another key is refused while the account exists.
	other, _ := userKey(t)
	if _, err := dialSSH(a.sb.Addr(), user, other, a.sb.HostPublicKey()); err == nil {
		t.Fatal("a key that was not provisioned logged in")
	}

	res, err = e.tasks.RunTask(rctx, nodeID, nodetask.RevokeUser, nodetask.RevokeUserParams{
		AllocationID: allocID, Username: user}, "")
	if err != nil || !res.Succeeded {
		t.Fatalf("revoke: %+v, %v", res, err)
	}
	select {
	case <-longDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the running session survived revoke")
	}
	if _, err := dialSSH(a.sb.Addr(), user, signer, a.sb.HostPublicKey()); err == nil {
		t.Fatal("ssh still accepted after revoke")
	}

	// A health check task returns the node's report.
	res, err = e.tasks.RunTask(rctx, nodeID, nodetask.HealthCheck, nodetask.HealthCheckParams{}, "")
	if err != nil || !res.Succeeded {
		t.Fatalf("health check: %+v, %v", res, err)
	}
	var report struct {
		GPUs []inventory.GPU `json:"gpus"`
	}
	if err := json.Unmarshal(res.Output, &report); err != nil || len(report.GPUs) != 1 {
		t.Fatalf("health output %s: %v", res.Output, err)
	}
}

// TestForgedTaskThroughTheGateway: a task whose signature does not verify
// reaches the agent through the normal queue; it runs nothing, is reported
// failed with bad_signature, and the refusal is audited.
func TestForgedTaskThroughTheGateway(t *testing.T) {
	e := newEnv(t, agentsvc.Config{})
	nodeID, token := e.newNode(t)
	a := startAgent(t, e, token)
	_, pub := userKey(t)
	user := nodetask.UsernameFor("0190aaaa-bbbb-7ccc-8ddd-000000000002")
	params, _ := json.Marshal(nodetask.ProvisionUserParams{AllocationID: "a1", Username: user, AuthorizedKeys: []string{pub}})
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	task, err := e.taskStore.Enqueue(context.Background(), nodetask.Task{Envelope: nodetask.Envelope{
		TaskID: "0190aaaa-bbbb-7ccc-8ddd-0000000000f1", NodeID: nodeID, Type: nodetask.ProvisionUser,
		Params: params, IssuedAt: now, ExpiresAt: now.Add(time.Minute),
	}}, func(env nodetask.Envelope) (nodetask.Envelope, error) {
		env.KeyID = e.signer.KeyID() // the right key id, the wrong key
		env.Signature = ed25519.Sign(forger, env.SigningBytes())
		return env, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := e.tasks.Wait(ctx, task.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Succeeded || res.ErrorCode != nodeagent.CodeBadSignature {
		t.Fatalf("forged task result = %+v", res)
	}
	if len(a.sb.Accounts()) != 0 {
		t.Fatalf("forged task created accounts %v", a.sb.Accounts())
	}
	// The refusal is audited right after the result is stored.
	poll.Until(t, 5*time.Second, "the refusal audit", func() bool {
		got := e.audits(t, "node.task.refused", audit.Denied)
		return len(got) == 1 && got[0].ActorID == nodeID && got[0].Metadata["code"] == nodeagent.CodeBadSignature
	})
}

// TestCertificateRenewal: with short-lived certificates the agent renews at
// two thirds of the lifetime and keeps working with the new certificate.
func TestCertificateRenewal(t *testing.T) {
	e := newEnv(t, agentsvc.Config{CertTTL: 3 * time.Second})
	_, token := e.newNode(t)
	a := startAgent(t, e, token)
	first := a.Certificate().SerialNumber.String()
	poll.Until(t, 15*time.Second, "a renewed certificate", func() bool {
		return a.Certificate().SerialNumber.String() != first
	})
	if err := a.Heartbeat(context.Background()); err != nil {
		t.Fatalf("heartbeat with the renewed certificate: %v", err)
	}
	if got := e.audits(t, "node.renew", audit.Success); len(got) == 0 {
		t.Fatal("renewal was not audited")
	}
}

// TestBootstrapTokenRefusals: reused, expired and unknown tokens are
// refused with one code and audited; of 32 concurrent enrolments with one
// token exactly one succeeds.
func TestBootstrapTokenRefusals(t *testing.T) {
	e := newEnv(t, agentsvc.Config{})
	enrol := func(token string) error {
		a, err := nodeagent.New(nodeagent.Config{ServerURL: e.url, BootstrapToken: token, StateDir: t.TempDir(),
			ServerRootsPEM: e.rootsPEM, Executor: nopExecutor{}})
		if err != nil {
			t.Fatal(err)
		}
		return a.Start(context.Background())
	}
	wantRefused := func(t *testing.T, err error) {
		t.Helper()
		if connect.CodeOf(err) != connect.CodeUnauthenticated || connecthost.FaultCode(err) != "bootstrap_token_invalid" {
			t.Fatalf("err = %v (code %v, fault %q), want unauthenticated bootstrap_token_invalid",
				err, connect.CodeOf(err), connecthost.FaultCode(err))
		}
	}

	t.Run("reused", func(t *testing.T) {
		_, token := e.newNode(t)
		if err := enrol(token); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, errors.Unwrap(enrol(token)))
	})
	t.Run("malformed CSR does not burn the token", func(t *testing.T) {
		_, token := e.newNode(t)
		_, err := e.client(nil).Enroll(context.Background(), connect.NewRequest(&agentv1.EnrollRequest{
			BootstrapToken: token, CsrDer: []byte("not a CSR")}))
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("malformed CSR: %v", err)
		}
		if err := enrol(token); err != nil {
			t.Fatalf("the token did not survive a refused request: %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		nodeID, _ := e.newNode(t)
		wantRefused(t, errors.Unwrap(enrol(e.newToken(t, nodeID, -time.Second))))
	})
	t.Run("unknown", func(t *testing.T) {
		wantRefused(t, errors.Unwrap(enrol("no-such-token")))
	})
	t.Run("32 concurrent racers", func(t *testing.T) {
		nodeID, token := e.newNode(t)
		var wg sync.WaitGroup
		errs := make([]error, 32)
		for i := range errs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = enrol(token) }()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
				continue
			}
			wantRefused(t, errors.Unwrap(err))
		}
		if ok != 1 {
			t.Fatalf("%d enrolments succeeded, want exactly 1", ok)
		}
		var certs int
		if err := e.db.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM node_certificates WHERE node_id = $1`, nodeID).Scan(&certs); err != nil {
			t.Fatal(err)
		}
		if certs != 1 {
			t.Fatalf("%d certificates issued, want 1", certs)
		}
	})
	if got := e.audits(t, "node.enroll", audit.Denied); len(got) < 3+31 {
		t.Fatalf("%d refused enrolments audited, want at least 34", len(got))
	}
}

type nopExecutor struct{}

func (nopExecutor) ProvisionUser(context.Context, nodetask.ProvisionUserParams) error { return nil }
func (nopExecutor) RevokeUser(context.Context, nodetask.RevokeUserParams) error       { return nil }
func (nopExecutor) StopUser(context.Context, nodetask.StopUserParams) error           { return nil }
func (nopExecutor) Health(context.Context) map[string]string                          { return nil }

// TestSimulatedGPUsAreHeldOutOfPlacement: an agent whose GPUs are simulated
// reports so; outside dev (AllowSimulatedGPUs off) its node is held in
// maintenance with a health check saying why, audited once, so placement
// never rents it as real hardware; allowed, the same agent's node is active.
func TestSimulatedGPUsAreHeldOutOfPlacement(t *testing.T) {
	ctx := context.Background()
	for _, allow := range []bool{false, true} {
		e := newEnv(t, agentsvc.Config{AllowSimulatedGPUs: allow, HeartbeatInterval: time.Second})
		nodeID, token := e.newNode(t)
		startAgent(t, e, token)
		want := inventory.NodeMaintenance
		if allow {
			want = inventory.NodeActive
		}
		var n inventory.Node
		poll.Until(t, 15*time.Second, "two heartbeats", func() bool {
			var err error
			n, err = e.nodes.GetNode(ctx, nodeID)
			return err == nil && n.State == want && n.LastHeartbeatAt != nil && len(n.GPUs) == 1 &&
				time.Since(*n.LastHeartbeatAt) < 2*time.Second && len(e.audits(t, "node.enroll", audit.Success)) == 1
		})
		if n.GPUs[0].Source != inventory.GPUSourceSimulated {
			t.Fatalf("allow=%v: GPU source %q, want simulated", allow, n.GPUs[0].Source)
		}
		held := e.audits(t, "node.held_simulated_gpus", audit.Success)
		if allow {
			if len(held) != 0 || !n.Health.OK {
				t.Fatalf("allowed: held %d times, health %+v", len(held), n.Health)
			}
			continue
		}
		if n.Health.OK || n.Health.Checks["gpu_source"] == "" {
			t.Fatalf("held node's health %+v: want not ok with a gpu_source check", n.Health)
		}
		// Later heartbeats keep it held without auditing again.
		last := *n.LastHeartbeatAt
		poll.Until(t, 10*time.Second, "a later heartbeat", func() bool {
			n, _ = e.nodes.GetNode(ctx, nodeID)
			return n.LastHeartbeatAt != nil && n.LastHeartbeatAt.After(last)
		})
		if n.State != inventory.NodeMaintenance || len(e.audits(t, "node.held_simulated_gpus", audit.Success)) != 1 {
			t.Fatalf("after another heartbeat: %s, %d hold audits; want maintenance and 1", n.State, len(held))
		}
	}
}
