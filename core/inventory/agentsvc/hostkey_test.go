package agentsvc_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// Heartbeat needs none of these; calling one panics through the nil
// embedded interface.
type (
	unusedTokens struct{ ports.BootstrapTokenStore }
	unusedCA     struct{ ports.CertificateAuthority }
	unusedCerts  struct{ ports.NodeCertificateStore }
	unusedTasks  struct{ ports.TaskQueue }
)

func newHostKey(t *testing.T) (authorized string, pub ssh.PublicKey, signer ssh.Signer) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))), s.PublicKey(), s
}

// The host key an agent reports is validated and stored; a bad one is
// audited and ignored (the heartbeat still counts, the stored key stays);
// the first key is recorded and a change is audited as
// node.ssh_host_key_changed.
func TestHeartbeatSSHHostKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := services.Postgres(t)
	signer, err := keyfile.NewSigner(keyfile.SignerConfig{Path: filepath.Join(t.TempDir(), "task.key")})
	if err != nil {
		t.Fatal(err)
	}
	nodes := postgres.NewNodeStore(db)
	auditLog := postgres.NewAuditLog(db)
	svc, err := agentsvc.New(agentsvc.Config{RootsPEM: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")},
		agentsvc.Deps{Tx: db, Tokens: unusedTokens{}, CA: unusedCA{}, Certs: unusedCerts{}, Nodes: nodes,
			Tasks: unusedTasks{}, Signer: signer, Audit: auditLog, Clock: system.Clock{}, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	id := system.UUIDs{}.NewID()
	if err := nodes.CreateNode(ctx, inventory.Node{ID: id, Name: "node-" + id, SKUID: "h100-80g-x1",
		State: inventory.NodeEnrolling, SSHHost: "10.0.0.9", SSHPort: 22}); err != nil {
		t.Fatal(err)
	}
	events := func(action string, outcome audit.Outcome) []audit.Event {
		t.Helper()
		evs, _, err := auditLog.List(ctx, audit.Filter{ActorID: id, Action: action, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var out []audit.Event
		for _, ev := range evs {
			if ev.Outcome == outcome {
				out = append(out, ev)
			}
		}
		return out
	}
	beat := func(key string) inventory.Node {
		t.Helper()
		if _, err := svc.Heartbeat(ctx, id, inventory.Heartbeat{AgentVersion: "1", SSHHostKey: key}); err != nil {
			t.Fatalf("heartbeat with key %q: %v", key, err)
		}
		n, err := nodes.GetNode(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The first key: stored canonically (comment dropped), recorded once.
	k1, pub1, _ := newHostKey(t)
	if n := beat(k1 + " root@node\n"); n.SSHHostKey != k1 || n.State != inventory.NodeActive {
		t.Fatalf("after first key: %q %s", n.SSHHostKey, n.State)
	}
	if got := events("node.ssh_host_key_recorded", audit.Success); len(got) != 1 ||
		got[0].Metadata["fingerprint"] != ssh.FingerprintSHA256(pub1) {
		t.Fatalf("recorded events %+v", got)
	}
	// The same key again, or none: nothing changes, nothing is audited.
	beat(k1)
	if n := beat(""); n.SSHHostKey != k1 {
		t.Fatalf("an empty report replaced the key: %q", n.SSHHostKey)
	}
	if got := events("node.ssh_host_key_changed", audit.Success); len(got) != 0 {
		t.Fatalf("changes audited for an unchanged key: %+v", got)
	}

	// Bad keys are refused with an audit record; the heartbeat counts.
	_, _, hostCA := newHostKey(t)
	_, pubX, _ := newHostKey(t)
	cert := &ssh.Certificate{Key: pubX, CertType: ssh.HostCert, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, hostCA); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"garbage":     "not a key",
		"certificate": string(ssh.MarshalAuthorizedKey(cert)),
		"too large":   "ssh-ed25519 " + strings.Repeat("A", agentsvc.MaxSSHHostKeyLen),
		"two keys":    k1 + "\n" + k1,
	} {
		before := time.Now().Add(-time.Second)
		n := beat(bad)
		if n.SSHHostKey != k1 {
			t.Fatalf("%s: stored key became %q", name, n.SSHHostKey)
		}
		if n.LastHeartbeatAt == nil || n.LastHeartbeatAt.Before(before) {
			t.Fatalf("%s: the heartbeat did not count: %v", name, n.LastHeartbeatAt)
		}
	}
	if got := events("node.ssh_host_key", audit.Denied); len(got) != 4 || got[0].Metadata["code"] != "ssh_host_key_invalid" {
		t.Fatalf("invalid-key audit records: %+v", got)
	}

	// A changed key replaces the old one and is audited with both fingerprints.
	k2, pub2, _ := newHostKey(t)
	if n := beat(k2); n.SSHHostKey != k2 {
		t.Fatalf("after change: %q", n.SSHHostKey)
	}
	got := events("node.ssh_host_key_changed", audit.Success)
	if len(got) != 1 || got[0].Metadata["previous_fingerprint"] != ssh.FingerprintSHA256(pub1) ||
		got[0].Metadata["fingerprint"] != ssh.FingerprintSHA256(pub2) || got[0].ResourceID != id {
		t.Fatalf("change events %+v", got)
	}
}

func TestCheckSSHHostKey(t *testing.T) {
	t.Parallel()
	k, _, _ := newHostKey(t)
	got, err := agentsvc.CheckSSHHostKey("  " + k + " comment\n")
	if err != nil || got != k {
		t.Fatalf("got %q %v, want %q", got, err, k)
	}
	for _, bad := range []string{"", "ssh-ed25519", "ssh-ed25519 !!!!"} {
		if _, err := agentsvc.CheckSSHHostKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
