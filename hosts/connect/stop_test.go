package connecthost_test

import (
	"bytes"
	"context"
	"errors"
	"runtime/pprof"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	agentv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

// TestStopCutsLongPolls: the gateway serves HTTP/2 connections itself, so
// Stop must end them too — a long poll still waiting when Stop's context
// ends is cut then, not 25 s later — and afterwards no call gets through.
func TestStopCutsLongPolls(t *testing.T) {
	e := newEnv(t, agentsvc.Config{})
	ctx := context.Background()
	_, token := e.newNode(t)
	key, csr := keyAndCSR(t)
	res, err := e.client(nil).Enroll(ctx, connect.NewRequest(&agentv1.EnrollRequest{BootstrapToken: token, CsrDer: csr.Raw}))
	if err != nil {
		t.Fatal(err)
	}
	c := e.client(pair(t, res.Msg.GetCertChainPem(), key))
	polled := make(chan error, 1)
	go func() {
		_, err := c.PollTasks(ctx, connect.NewRequest(&agentv1.PollTasksRequest{Max: 1, WaitSeconds: 25}))
		polled <- err
	}()
	poll.Until(t, 10*time.Second, "the long poll to wait in the gateway", func() bool {
		var b bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		return bytes.Contains(b.Bytes(), []byte("postgres.(*TaskStore).WaitForTasks"))
	})

	sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := e.srv.Stop(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop with a long poll open: %v, want the context's deadline", err)
	}
	select {
	case err := <-polled:
		if err == nil {
			t.Fatal("the cut long poll answered as if it had waited")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the long poll was not cut when Stop's context ended")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Stop and the cut took %v", d)
	}
	if _, err := c.Heartbeat(ctx, connect.NewRequest(&agentv1.HeartbeatRequest{AgentVersion: "test"})); err == nil {
		t.Fatal("a call got through after Stop")
	}
}
