package connecthost_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"path/filepath"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/pki"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	"github.com/gpuaas/gpuaas/core/nodetask/tasksvc"
	connecthost "github.com/gpuaas/gpuaas/hosts/connect"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// env is a gateway on real Postgres with the built-in CA and a key-file
// task signer: everything the agent talks to, nothing faked.
type env struct {
	db        *postgres.DB
	ca        *pki.CA
	signer    *keyfile.Signer
	nodes     *postgres.NodeStore
	tokens    *postgres.BootstrapTokenStore
	certs     *postgres.NodeCertificateStore
	auditLog  *postgres.AuditLog
	taskStore *postgres.TaskStore
	agents    *agentsvc.Service
	tasks     *tasksvc.Service
	srv       *connecthost.Server
	url       string
	rootsPEM  []byte
	kmsDir    string
}

func newEnv(t testing.TB, acfg agentsvc.Config) *env {
	t.Helper()
	return newEnvOn(t, services.Postgres(t), acfg)
}

// newEnvOn is newEnv on a given database (the fleet benchmark uses a
// fresh one).
func newEnvOn(t testing.TB, db *postgres.DB, acfg agentsvc.Config) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	kms, err := keyfile.NewKMS(keyfile.KMSConfig{Path: filepath.Join(dir, "kms.key")})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := keyfile.NewSigner(keyfile.SignerConfig{Path: filepath.Join(dir, "task-signing.key")})
	if err != nil {
		t.Fatal(err)
	}
	certs := postgres.NewNodeCertificateStore(db)
	t.Cleanup(certs.Close)
	ca, err := pki.New(pki.Config{}, pki.Deps{KMS: kms, Secrets: postgres.NewSecretStore(db), Certificates: certs})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Init(ctx); err != nil {
		t.Fatal(err)
	}
	rootsPEM, err := ca.RootPEM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := ca.Roots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := ca.IssueServerCert(ctx, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	taskStore, err := postgres.NewTaskStore(db, postgres.TaskStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(taskStore.Close)
	e := &env{db: db, ca: ca, signer: signer, nodes: postgres.NewNodeStore(db),
		tokens: postgres.NewBootstrapTokenStore(db), certs: certs, auditLog: postgres.NewAuditLog(db),
		taskStore: taskStore, rootsPEM: rootsPEM, kmsDir: dir}
	acfg.RootsPEM = rootsPEM
	e.agents, err = agentsvc.New(acfg, agentsvc.Deps{
		Tx: db, Tokens: e.tokens, CA: ca, Certs: certs, Nodes: e.nodes, Tasks: taskStore, Signer: signer,
		Audit: e.auditLog, Clock: system.Clock{}, IDs: system.UUIDs{},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.tasks, err = tasksvc.New(tasksvc.Config{}, tasksvc.Deps{Tasks: taskStore, Signer: signer,
		Clock: system.Clock{}, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv, err = connecthost.New(connecthost.Config{Addr: "127.0.0.1:0", Certificate: serverCert, ClientCAs: roots}, e.agents)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.srv.Stop(ctx)
	})
	e.url = "https://" + e.srv.Addr()
	return e
}

// newNode registers a node and returns its id and a fresh bootstrap token.
func (e *env) newNode(t testing.TB) (string, string) {
	t.Helper()
	ctx := context.Background()
	id := system.UUIDs{}.NewID()
	if err := e.nodes.CreateNode(ctx, inventory.Node{ID: id, Name: "node-" + id[len(id)-12:], SKUID: "h100-80g-x1",
		State: inventory.NodeEnrolling, SSHHost: "127.0.0.1", SSHPort: 22}); err != nil {
		t.Fatal(err)
	}
	return id, e.newToken(t, id, 30*time.Minute)
}

func (e *env) newToken(t testing.TB, nodeID string, ttl time.Duration) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	if err := e.tokens.CreateBootstrapToken(context.Background(), nodeID, agentsvc.HashBootstrapToken(tok),
		time.Now().Add(ttl)); err != nil {
		t.Fatal(err)
	}
	return tok
}

// audits returns the audit records of an action with an outcome.
func (e *env) audits(t *testing.T, action string, outcome audit.Outcome) []audit.Event {
	t.Helper()
	evs, _, err := e.auditLog.List(context.Background(), audit.Filter{Action: action, Limit: 500})
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
