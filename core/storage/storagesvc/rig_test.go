package storagesvc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/core/storage"
	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/contract"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/seed"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// rig is the service on a real database and an object store (the fake,
// or versitygw), with one member of one project.
type rig struct {
	svc      *storagesvc.Service
	db       *postgres.DB
	index    *postgres.StorageStore
	objs     contract.Objects
	clock    *fakes.Clock
	m        seed.Member
	policies *postgres.PolicyStore
	// projects counts the service's project reads.
	projects *countingProjects
}

// countingProjects counts GetProject calls.
type countingProjects struct {
	ports.ProjectStore
	gets atomic.Int64
}

func (c *countingProjects) GetProject(ctx context.Context, id string) (identity.Project, error) {
	c.gets.Add(1)
	return c.ProjectStore.GetProject(ctx, id)
}

func newRig(t *testing.T, objs contract.Objects, clock *fakes.Clock, cfg storagesvc.Config) *rig {
	t.Helper()
	db := services.Postgres(t)
	return newRigOn(t, db, objs, clock, cfg)
}

func newRigOn(t *testing.T, db *postgres.DB, objs contract.Objects, clock *fakes.Clock, cfg storagesvc.Config) *rig {
	t.Helper()
	if clock == nil {
		clock = fakes.NewClock(time.Now())
	}
	if objs == nil {
		f := fakes.NewObjectStore()
		f.Clock = clock
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		f.BaseURL = srv.URL
		objs = f
	}
	policies, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(outbox.Close)
	index := postgres.NewStorageStore(db)
	projects := &countingProjects{ProjectStore: postgres.NewProjectStore(db)}
	svc, err := storagesvc.New(cfg, storagesvc.Deps{Tx: db, Index: index, Reservations: index, Objects: objs, Presigner: objs,
		Multipart: objs, Projects: projects, Policies: policies, Audit: postgres.NewAuditLog(db),
		Outbox: outbox, Clock: clock, IDs: system.UUIDs{}, Syncs: index})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{svc: svc, db: db, index: index, objs: objs, clock: clock, m: seed.NewMember(t, db, 0), policies: policies,
		projects: projects}
}

func (r *rig) setQuota(t *testing.T, bytes int64) {
	t.Helper()
	if err := r.policies.Set(context.Background(), r.m.Principal.TenantID, policy.StorageQuotaBytes.Name,
		strconv.FormatInt(bytes, 10), r.m.Principal.User.ID); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) upload(t *testing.T, path string, body []byte) storagesvc.Uploaded {
	t.Helper()
	u, err := r.svc.Upload(context.Background(), r.m.Principal, r.m.ProjectID, path, bytes.NewReader(body), int64(len(body)), "text/plain")
	if err != nil {
		t.Fatalf("upload %s: %v", path, err)
	}
	return u
}

func (r *rig) read(t *testing.T, path string, off, n int64) []byte {
	t.Helper()
	d, err := r.svc.Open(context.Background(), r.m.Principal, r.m.ProjectID, path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	rc, err := d.Open(context.Background(), off, n)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r *rig) names(t *testing.T, dir string) string {
	t.Helper()
	page, err := r.svc.List(context.Background(), r.m.Principal, r.m.ProjectID, dir, "", 1000)
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	s := ""
	for _, e := range page.Entries {
		s += fmt.Sprintf("%s:%s(%d) ", e.Kind, e.Path.Name(), e.Size)
	}
	return s
}

func (r *rig) key(t *testing.T, path string) string {
	t.Helper()
	k, err := storage.Scope{TenantID: r.m.Principal.TenantID, ProjectID: r.m.ProjectID}.ObjectKey(storage.MustParsePath(path))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (r *rig) subjects(t *testing.T) map[string]int {
	t.Helper()
	rows, err := r.db.Pool.Query(context.Background(), `SELECT subject, count(*) FROM platform_outbox_events
		WHERE envelope->>'project_id' = $1 GROUP BY subject`, r.m.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		_ = rows.Scan(&s, &n)
		out[s] = n
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func codeOf(err error) fault.Code {
	if err == nil {
		return ""
	}
	return fault.From(err).Code
}
