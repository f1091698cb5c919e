package main

import (
	"context"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/testkit/e2e"
)

// TestWholePath runs the compute golden path through the real platform in
// one process: real Postgres, embedded NATS, the Temporal dev server, the
// agent gateway over mTLS and two sandbox nodes running the real agent. A
// user signs in (PKCE), buys credit through the dev checkout, adds an SSH
// key, gets an allocation active, runs a command over SSH and `echo hi-$((6*7))` in
// the browser terminal, releases it, and is refused by SSH afterwards.
func TestWholePath(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole platform")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	_, o, _ := startTestPlatform(ctx, t)
	c := e2e.New("http://" + o.httpAddr)
	if err := c.Login(ctx, "alice", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.TopUp(ctx, 5000, "usd"); err != nil {
		t.Fatal(err)
	}
	if _, err := waitForCapacity(ctx, c, o.nodeSKU); err != nil {
		t.Fatal(err)
	}
	if err := e2e.GoldenPath(ctx, c, o.nodeSKU, t.Logf); err != nil {
		t.Fatal(err)
	}
}
