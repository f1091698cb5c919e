package connecthost_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	connecthost "github.com/gpuaas/gpuaas/hosts/connect"
	agentv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1/agentv1connect"
	"github.com/gpuaas/gpuaas/testkit/fakes"
)

// TestCertificateValidityIsCheckedOnEveryCall: the gateway verifies a
// connection's chain once and remembers it, but every call still checks
// the chain's validity period against the gateway's clock — on the same
// connection, a certificate the clock has moved past (or not yet reached)
// is refused, and one back within its period is accepted again.
func TestCertificateValidityIsCheckedOnEveryCall(t *testing.T) {
	e := newEnv(t, agentsvc.Config{})
	ctx := context.Background()
	roots, err := e.ca.Roots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := e.ca.IssueServerCert(ctx, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clock := fakes.NewClock(time.Now())
	srv, err := connecthost.New(connecthost.Config{Addr: "127.0.0.1:0", Certificate: serverCert, ClientCAs: roots, Clock: clock}, e.agents)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })

	_, token := e.newNode(t)
	key, csr := keyAndCSR(t)
	res, err := e.client(nil).Enroll(ctx, connect.NewRequest(&agentv1.EnrollRequest{BootstrapToken: token, CsrDer: csr.Raw}))
	if err != nil {
		t.Fatal(err)
	}
	cert := pair(t, res.Msg.GetCertChainPem(), key)
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.rootsPEM)
	client := agentv1connect.NewAgentServiceClient(&http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: []tls.Certificate{*cert}}}},
		"https://"+srv.Addr())
	conns := 0
	trace := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			conns++
		}
	}})
	beat := func() error {
		_, err := client.Heartbeat(trace, connect.NewRequest(&agentv1.HeartbeatRequest{AgentVersion: "test"}))
		return err
	}
	refused := func(when string) {
		t.Helper()
		if err := beat(); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("%s: heartbeat = %v, want Unauthenticated", when, err)
		}
	}
	for range 2 {
		if err := beat(); err != nil {
			t.Fatal(err)
		}
	}
	clock.Set(leaf.NotAfter.Add(time.Second))
	refused("after the leaf's NotAfter")
	clock.Set(leaf.NotAfter)
	if err := beat(); err != nil {
		t.Fatalf("at the leaf's NotAfter: %v", err)
	}
	clock.Set(leaf.NotBefore.Add(-time.Second))
	refused("before the leaf's NotBefore")
	clock.Set(time.Now())
	if err := beat(); err != nil {
		t.Fatal(err)
	}
	if conns != 1 {
		t.Fatalf("the calls used %d connections, want 1 (the test is about one connection)", conns)
	}
}
