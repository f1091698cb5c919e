package connecthost_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	agentv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

// TestUnchangedHeartbeatsAreNotAllWritten: a heartbeat that reports what
// the node's row already holds is not written again until
// HeartbeatWriteEvery has passed; a changed report is written at once.
func TestUnchangedHeartbeatsAreNotAllWritten(t *testing.T) {
	e := newEnv(t, agentsvc.Config{HeartbeatWriteEvery: 2 * time.Second})
	ctx := context.Background()
	nodeID, token := e.newNode(t)
	key, csr := keyAndCSR(t)
	res, err := e.client(nil).Enroll(ctx, connect.NewRequest(&agentv1.EnrollRequest{BootstrapToken: token, CsrDer: csr.Raw}))
	if err != nil {
		t.Fatal(err)
	}
	c := e.client(pair(t, res.Msg.GetCertChainPem(), key))
	beat := func(msg string) {
		t.Helper()
		if _, err := c.Heartbeat(ctx, connect.NewRequest(&agentv1.HeartbeatRequest{AgentVersion: "test",
			Health: &agentv1.Health{Ok: true, Message: msg}})); err != nil {
			t.Fatal(err)
		}
	}
	seen := func() time.Time {
		t.Helper()
		n, err := e.nodes.GetNode(ctx, nodeID)
		if err != nil || n.LastHeartbeatAt == nil {
			t.Fatalf("node %+v, %v", n, err)
		}
		return *n.LastHeartbeatAt
	}
	beat("ok")
	first := seen()
	beat("ok")
	if got := seen(); !got.Equal(first) {
		t.Fatalf("an unchanged heartbeat was written at once: %v after %v", got, first)
	}
	beat("a disk is slow")
	changed := seen()
	if !changed.After(first) {
		t.Fatal("a changed heartbeat was not written")
	}
	if n, _ := e.nodes.GetNode(ctx, nodeID); n.Health.Message != "a disk is slow" {
		t.Fatalf("health %+v", n.Health)
	}
	// Liveness is refreshed once the interval has passed.
	poll.Until(t, 5*time.Second, "the unchanged heartbeat to be written after HeartbeatWriteEvery", func() bool {
		beat("a disk is slow")
		return seen().After(changed)
	})
	if d := seen().Sub(changed); d < 2*time.Second {
		t.Fatalf("written again after %v, before HeartbeatWriteEvery", d)
	}
}
