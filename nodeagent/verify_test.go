package nodeagent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/proto"

	"github.com/gpuaas/gpuaas/core/nodetask"
	agentv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1"
)

// recordingExecutor records what ran; the forgery table asserts nothing did.
type recordingExecutor struct {
	mu  sync.Mutex
	ran []string
}

func (r *recordingExecutor) ProvisionUser(_ context.Context, p nodetask.ProvisionUserParams) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, "provision:"+p.Username)
	return nil
}

func (r *recordingExecutor) RevokeUser(_ context.Context, p nodetask.RevokeUserParams) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, "revoke:"+p.Username)
	return nil
}

func (r *recordingExecutor) StopUser(_ context.Context, p nodetask.StopUserParams) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, "stop:"+p.Username)
	return nil
}

func (r *recordingExecutor) Health(context.Context) map[string]string {
	return map[string]string{"x": "ok"}
}

func (r *recordingExecutor) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ran...)
}

const (
	testNode  = "0190aaaa-0000-7000-8000-000000000001"
	otherNode = "0190aaaa-0000-7000-8000-000000000002"
)

type taskSigner struct {
	key   ed25519.PrivateKey
	keyID string
}

func (s taskSigner) sign(e nodetask.Envelope) nodetask.Envelope {
	e.KeyID = s.keyID
	e.Signature = ed25519.Sign(s.key, e.SigningBytes())
	return e
}

func pubKeyLine(t *testing.T) string {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

// testAgent is an agent wired for HandleEnvelope without a gateway.
func testAgent(t *testing.T, now time.Time, exe Executor) (*Agent, taskSigner) {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	replay, err := OpenReplayWindow(filepath.Join(t.TempDir(), "replay.json"))
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{cfg: Config{Executor: exe, GPUs: func(context.Context) ([]inventoryGPU, error) { return nil, nil }},
		replay: replay, log: discard()}
	a.verifier = &Verifier{NodeID: testNode, Key: pub, KeyID: "k1", Now: func() time.Time { return now }, Replay: replay}
	return a, taskSigner{key: priv, keyID: "k1"}
}

// TestForgedTasksRunNothing is the task forgery table: each forged or
// invalid task is reported failed with its stable code and nothing runs.
func TestForgedTasksRunNothing(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	user := nodetask.UsernameFor("0190aaaa-bbbb-7ccc-8ddd-000000000001")
	goodParams, _ := json.Marshal(nodetask.ProvisionUserParams{AllocationID: "a1", Username: user,
		AuthorizedKeys: []string{pubKeyLine(t)}})
	base := func() nodetask.Envelope {
		return nodetask.Envelope{TaskID: "t-" + randHex(), NodeID: testNode, Type: nodetask.ProvisionUser,
			Params: goodParams, IssuedAt: now.Add(-time.Second), ExpiresAt: now.Add(time.Minute), Seq: 10}
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	cases := []struct {
		name  string
		build func(s taskSigner) nodetask.Envelope
		code  string
	}{
		{"signature by another key", func(s taskSigner) nodetask.Envelope {
			return taskSigner{key: otherKey, keyID: "k1"}.sign(base())
		}, CodeBadSignature},
		{"unknown key id", func(s taskSigner) nodetask.Envelope {
			e := base()
			e.KeyID = "k2"
			e.Signature = ed25519.Sign(s.key, e.SigningBytes())
			return e
		}, CodeBadSignature},
		{"params changed after signing", func(s taskSigner) nodetask.Envelope {
			e := s.sign(base())
			e.Params = json.RawMessage(strings.Replace(string(e.Params), `"a1"`, `"a2"`, 1))
			return e
		}, CodeBadSignature},
		{"seq changed after signing", func(s taskSigner) nodetask.Envelope {
			e := s.sign(base())
			e.Seq++
			return e
		}, CodeBadSignature},
		{"no signature", func(s taskSigner) nodetask.Envelope {
			e := base()
			e.KeyID = "k1"
			return e
		}, CodeBadSignature},
		{"replayed sequence number", func(s taskSigner) nodetask.Envelope {
			e := base()
			e.Seq = 5 // the window has seen 7
			return s.sign(e)
		}, CodeReplayed},
		{"expired", func(s taskSigner) nodetask.Envelope {
			e := base()
			e.IssuedAt, e.ExpiresAt = now.Add(-time.Hour), now.Add(-time.Second)
			return s.sign(e)
		}, CodeExpired},
		{"issued in the future", func(s taskSigner) nodetask.Envelope {
			e := base()
			e.IssuedAt, e.ExpiresAt = now.Add(time.Hour), now.Add(2*time.Hour)
			return s.sign(e)
		}, CodeExpired},
		{"other node", func(s taskSigner) nodetask.Envelope {
			e := base()
			e.NodeID = otherNode
			return s.sign(e)
		}, CodeWrongNode},
		{"unknown type", func(s taskSigner) nodetask.Envelope {
			e := base()
			e.Type = "node.reboot"
			e.Params = json.RawMessage(`{}`)
			return s.sign(e)
		}, CodeUnknownType},
		{"bad params", func(s taskSigner) nodetask.Envelope {
			e := base()
			e.Params = json.RawMessage(`{"allocation_id":"a1","username":"root","authorized_keys":["x"]}`)
			return s.sign(e)
		}, CodeBadParams},
		{"unknown params field", func(s taskSigner) nodetask.Envelope {
			e := base()
			e.Type, e.Params = nodetask.HealthCheck, json.RawMessage(`{"command":"rm -rf /"}`)
			return s.sign(e)
		}, CodeBadParams},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			exe := &recordingExecutor{}
			a, s := testAgent(t, now, exe)
			if err := a.replay.Mark("earlier", 7); err != nil {
				t.Fatal(err)
			}
			e := tc.build(s)
			r := a.HandleEnvelope(context.Background(), toProto(e))
			if r.Succeeded || r.ErrorCode != tc.code || r.TaskID != e.TaskID {
				t.Fatalf("result = %+v, want failed with %q", r, tc.code)
			}
			if got := exe.calls(); len(got) != 0 {
				t.Fatalf("executor ran %v", got)
			}
		})
	}
}

// TestValidTaskRunsOnceAndReplayIsRefused: a valid task runs; the same
// envelope again is answered with the first result and does not run again;
// an older sequence number under a new id is refused as replayed, also
// after the agent restarts (the window is persisted).
func TestValidTaskRunsOnceAndReplayIsRefused(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	exe := &recordingExecutor{}
	a, s := testAgent(t, now, exe)
	user := nodetask.UsernameFor("0190aaaa-bbbb-7ccc-8ddd-000000000003")
	params, _ := json.Marshal(nodetask.RevokeUserParams{AllocationID: "a3", Username: user})
	e := s.sign(nodetask.Envelope{TaskID: "t1", NodeID: testNode, Type: nodetask.RevokeUser, Params: params,
		IssuedAt: now, ExpiresAt: now.Add(time.Minute), Seq: 1})
	if r := a.HandleEnvelope(context.Background(), toProto(e)); !r.Succeeded {
		t.Fatalf("valid task: %+v", r)
	}
	if r := a.HandleEnvelope(context.Background(), toProto(e)); !r.Succeeded {
		t.Fatalf("re-delivered task: %+v, want the first result", r)
	}
	if got := exe.calls(); len(got) != 1 {
		t.Fatalf("executor ran %v, want once", got)
	}
	reopened, err := OpenReplayWindow(a.replay.path)
	if err != nil {
		t.Fatal(err)
	}
	if reopened.Highest() != 1 {
		t.Fatalf("persisted highest seq = %d", reopened.Highest())
	}
	a.verifier.Replay, a.replay = reopened, reopened
	e2 := s.sign(nodetask.Envelope{TaskID: "t2", NodeID: testNode, Type: nodetask.RevokeUser, Params: params,
		IssuedAt: now, ExpiresAt: now.Add(time.Minute), Seq: 1})
	if r := a.HandleEnvelope(context.Background(), toProto(e2)); r.ErrorCode != CodeReplayed {
		t.Fatalf("replayed seq after restart: %+v", r)
	}
	if got := exe.calls(); len(got) != 1 {
		t.Fatalf("executor ran %v, want once", got)
	}
}

func toProto(e nodetask.Envelope) *agentv1.TaskEnvelope {
	return &agentv1.TaskEnvelope{TaskId: e.TaskID, NodeId: e.NodeID, Type: string(e.Type), ParamsJson: e.Params,
		IssuedAtUnixNano: e.IssuedAt.UnixNano(), ExpiresAtUnixNano: e.ExpiresAt.UnixNano(), Seq: e.Seq,
		KeyId: e.KeyID, Signature: e.Signature}
}

func TestRenewAtTwoThirds(t *testing.T) {
	t.Parallel()
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &x509Cert{NotBefore: nb.Add(-time.Minute), NotAfter: nb.Add(3 * time.Hour)}
	if got := RenewAt(c.cert(), nb); !got.Equal(nb.Add(2 * time.Hour)) {
		t.Fatalf("RenewAt = %v, want two hours after it was obtained", got)
	}
	if got := RenewAt(c.cert(), time.Time{}); !got.Equal(nb.Add(-time.Minute).Add(2 * (3*time.Hour + time.Minute) / 3)) {
		t.Fatalf("RenewAt without an obtained time = %v", got)
	}
}

// FuzzDecodeEnvelope: the decoder and the verifier never panic on any
// input, and nothing that was not signed with the key ever verifies.
func FuzzDecodeEnvelope(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	seed, _ := proto.Marshal(&agentv1.TaskEnvelope{TaskId: "t", NodeId: testNode, Type: string(nodetask.HealthCheck),
		ParamsJson: []byte(`{}`), IssuedAtUnixNano: now.UnixNano(), ExpiresAtUnixNano: now.Add(time.Minute).UnixNano(),
		Seq: 1, KeyId: "k1", Signature: make([]byte, 64)})
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		replay, _ := OpenReplayWindow("")
		v := &Verifier{NodeID: testNode, Key: pub, KeyID: "k1", Now: func() time.Time { return now }, Replay: replay}
		if _, ref := v.Verify(e); ref == nil {
			t.Fatalf("an unsigned envelope verified: %+v", e)
		}
	})
}
