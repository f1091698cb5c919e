package agentsvc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"path/filepath"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/ports"
)

// failingAudit refuses every record.
type failingAudit struct{ ports.AuditLog }

func (failingAudit) Record(context.Context, audit.Event) error { return errors.New("audit store down") }

// recordingTasks completes tasks in memory.
type recordingTasks struct {
	ports.TaskQueue
	completed []string
}

func (r *recordingTasks) Complete(_ context.Context, _ string, res nodetask.Result) error {
	r.completed = append(r.completed, res.TaskID)
	return nil
}

// passTx runs fn without a transaction; a failed fn leaves what fn did, so
// the test can see the use case returned the error instead of eating it.
type passTx struct{}

func (passTx) InTx(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) }

// TestRefusalsWhoseAuditFailsStayRefusedAndSaySo: a refusal whose audit
// record cannot be written is still the same refusal, carrying
// ErrRefusalNotAudited for the host to log; a security event that is not a
// refusal of the call (a task the agent refused) fails the call instead of
// vanishing. Both audit writes used to be dropped.
func TestRefusalsWhoseAuditFailsStayRefusedAndSaySo(t *testing.T) {
	t.Parallel()
	signer, err := keyfile.NewSigner(keyfile.SignerConfig{Path: filepath.Join(t.TempDir(), "task.key")})
	if err != nil {
		t.Fatal(err)
	}
	tasks := &recordingTasks{}
	svc, err := agentsvc.New(agentsvc.Config{RootsPEM: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")},
		agentsvc.Deps{Tx: passTx{}, Tokens: unusedTokens{}, CA: unusedCA{}, Certs: unusedCerts{},
			Nodes: struct{ ports.NodeStore }{}, Tasks: tasks, Signer: signer, Audit: failingAudit{},
			Clock: system.Clock{}, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, err := range map[string]error{
		"no certificate":     svc.DenyUnauthenticated(ctx, "/agent/Heartbeat"),
		"handshake refusal":  svc.DenyCertificate(ctx, "claimed", "x509: unknown authority"),
		"no serial":          func() error { _, err := svc.Authenticate(ctx, "", "", "/agent/Heartbeat"); return err }(),
		"no bootstrap token": func() error { _, err := svc.Enroll(ctx, agentsvc.EnrollRequest{CSRDER: csrDER(t)}); return err }(),
	} {
		fe := fault.From(err)
		if fe.Kind != fault.KindUnauthenticated || fe.Code == fault.CodeInternal {
			t.Errorf("%s: %v; want the refusal itself", name, err)
		}
		if !errors.Is(err, agentsvc.ErrRefusalNotAudited) {
			t.Errorf("%s: %v does not say the refusal was not audited", name, err)
		}
	}
	err = svc.ReportTaskResult(ctx, system.UUIDs{}.NewID(), nodetask.Result{TaskID: "t1", ErrorCode: "replayed"})
	if !errors.Is(err, agentsvc.ErrRefusalNotAudited) {
		t.Fatalf("a refused task's report whose audit failed: %v; want the failure", err)
	}
}

func csrDER(t *testing.T) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "agent"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
