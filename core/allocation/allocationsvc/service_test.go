package allocationsvc_test

import (
	"context"
	"crypto/dsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/testkit/seed"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// env is the service over real Postgres stores and the real outbox.
type env struct {
	t   *testing.T
	db  *postgres.DB
	svc *allocationsvc.Service
	pol *postgres.PolicyStore
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := services.Postgres(t)
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := allocationsvc.New(allocationsvc.Deps{Tx: db, Allocations: postgres.NewAllocationStore(db),
		SKUs: postgres.NewSKUStore(db), Nodes: postgres.NewNodeStore(db), SSHKeys: postgres.NewSSHKeyStore(db),
		Ledger: postgres.NewLedgerStore(db), Policies: pol, Audit: postgres.NewAuditLog(db), Outbox: outbox,
		Clock: system.Clock{}, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, svc: svc, pol: pol}
}

type member struct {
	p         identity.Principal
	projectID string
}

// newMember makes a tenant with a project and an owner; credit > 0 funds it.
func (e *env) newMember(credit int64) member {
	e.t.Helper()
	m := seed.NewMember(e.t, e.db, credit)
	return member{p: m.Principal, projectID: m.ProjectID}
}

func (e *env) addKey(m member) sshKeyID {
	e.t.Helper()
	k, err := e.svc.AddSSHKey(context.Background(), m.p, "key-"+services.RandomSuffix(3), ed25519Key(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	return sshKeyID(k.ID)
}

type sshKeyID string

func (e *env) addNodes(sku string, n int) []string {
	e.t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		id := system.UUIDs{}.NewID()
		now := time.Now()
		if err := postgres.NewNodeStore(e.db).CreateNode(context.Background(), inventory.Node{ID: id, Name: "n-" + id, SKUID: sku,
			State: inventory.NodeActive, SSHHost: "gpu-" + id[:8] + ".example.net", SSHPort: 2222, LastHeartbeatAt: &now}); err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// events returns the outbox events of one allocation, oldest first.
func (e *env) events(allocID string) []event.Envelope {
	e.t.Helper()
	rows, err := e.db.Pool.Query(context.Background(), `SELECT envelope FROM platform_outbox_events
		WHERE envelope->>'aggregate_id' = $1 ORDER BY occurred_at, id`, allocID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []event.Envelope
	for rows.Next() {
		var b []byte
		var ev event.Envelope
		if err := rows.Scan(&b); err != nil || json.Unmarshal(b, &ev) != nil {
			e.t.Fatalf("scan event: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

func ed25519Key(t *testing.T) string {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " me@laptop"
}

func wantFault(t *testing.T, err error, kind fault.Kind, code fault.Code) {
	t.Helper()
	fe := fault.From(err)
	if err == nil || fe.Kind != kind || fe.Code != code {
		t.Fatalf("error %v; want %s/%s", err, kind, code)
	}
}

func TestCreateRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.addNodes("h100-80g-x1", 1)

	broke := e.newMember(0)
	e.addKey(broke)
	_, err := e.svc.Create(ctx, broke.p, broke.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1"})
	wantFault(t, err, fault.KindPaymentRequired, fault.CodeInsufficientBalance)

	keyless := e.newMember(10_000)
	_, err = e.svc.Create(ctx, keyless.p, keyless.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1"})
	wantFault(t, err, fault.KindUnprocessable, allocationsvc.CodeSSHKeyRequired)

	m := e.newMember(10_000)
	e.addKey(m)
	_, err = e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "nope"})
	wantFault(t, err, fault.KindInvalid, fault.CodeValidationFailed)
	_, err = e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x1", SSHKeyIDs: []string{system.UUIDs{}.NewID()}})
	wantFault(t, err, fault.KindInvalid, fault.CodeValidationFailed)
	_, err = e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "a100-80g-x8"}) // no nodes
	wantFault(t, err, fault.KindConflict, allocationsvc.CodeNoCapacity)

	// Nothing above left an allocation or an event behind.
	var n int
	if err := e.db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM allocations) + (SELECT count(*) FROM platform_outbox_events
		WHERE envelope->>'type' LIKE 'provisioning.%')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("refusals left %d rows (err %v)", n, err)
	}
}

// TestCapRace: 20 concurrent creates of one user against a cap of 3 →
// exactly 3 allocations, on 3 different nodes. With a node for every
// request the 17 others are allocation_cap_reached. With fewer nodes than
// requests (10) a request can find every node held by the others' open
// transactions — placement comes before the tenant lock
// (doc/performance.md#allocation-creates) — and, not capped when it counts
// because those have not committed yet, hears no_capacity: the caps are
// exact either way, only the refusal's reason may differ.
func TestCapRace(t *testing.T) {
	t.Parallel()
	for _, nodes := range []int{20, 10} {
		t.Run(strconv.Itoa(nodes)+" nodes", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			e.addNodes("l40s-48g-x4", nodes)
			m := e.newMember(100_000)
			e.addKey(m)
			if err := e.pol.Set(ctx, "", "allocation.max_concurrent_per_user", "3", "test"); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok, capped, noCapacity := 0, 0, 0
			placed := map[string]bool{}
			for i := 0; i < 20; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a, err := e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "l40s-48g-x4"})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok++
						placed[a.NodeID] = true
					case fault.From(err).Code == allocationsvc.CodeCapReached && fault.KindOf(err) == fault.KindRateLimited:
						capped++
					case fault.From(err).Code == allocationsvc.CodeNoCapacity && nodes < 20:
						noCapacity++
					default:
						t.Errorf("unexpected: %v", err)
					}
				}()
			}
			wg.Wait()
			if ok != 3 || len(placed) != 3 || capped+noCapacity != 17 {
				t.Fatalf("%d created on %d nodes, %d capped, %d no_capacity; want 3 on 3 nodes and 17 refused",
					ok, len(placed), capped, noCapacity)
			}
			var live int
			if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM allocations`).Scan(&live); err != nil || live != 3 {
				t.Fatalf("%d allocations stored (err %v), want 3", live, err)
			}
		})
	}
}

// TestCapRefusalUndoesThePlacement: the node is placed before the caps are
// checked (doc/performance.md#allocation-creates), so a capped create must
// leave no allocation, audit row or event behind and the node free, and a
// capped caller hears allocation_cap_reached even when no node is free.
func TestCapRefusalUndoesThePlacement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.addNodes("l40s-48g-x4", 2)
	m := e.newMember(100_000)
	e.addKey(m)
	if err := e.pol.Set(ctx, m.p.TenantID, "allocation.max_concurrent_per_user", "1", "test"); err != nil {
		t.Fatal(err)
	}
	first, err := e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "l40s-48g-x4"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "l40s-48g-x4"})
	wantFault(t, err, fault.KindRateLimited, allocationsvc.CodeCapReached)
	_, err = e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "a100-80g-x8"}) // no nodes
	wantFault(t, err, fault.KindRateLimited, allocationsvc.CodeCapReached)

	var allocs, audits, events, free int
	if err := e.db.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM allocations WHERE tenant_id = $1),
		(SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'allocation.create'),
		(SELECT count(*) FROM platform_outbox_events WHERE envelope->>'type' = 'provisioning.allocation_requested'
			AND envelope->>'tenant_id' = $1::text),
		(SELECT count(*) FROM nodes WHERE sku_id = 'l40s-48g-x4' AND live_allocation_id IS NULL)`, m.p.TenantID).
		Scan(&allocs, &audits, &events, &free); err != nil {
		t.Fatal(err)
	}
	if allocs != 1 || audits != 1 || events != 1 || free != 1 {
		t.Fatalf("after two capped creates: %d allocations, %d audit rows, %d events, %d free nodes; want 1, 1, 1, 1",
			allocs, audits, events, free)
	}
	if len(e.events(first.ID)) != 1 {
		t.Fatalf("events of the first allocation: %+v", e.events(first.ID))
	}
}

// TestReleaseReasons: a release keeps who asked for it — the user, an admin
// of the tenant, an operator — from the first request on, and every later
// event carries it (the notice says it).
func TestReleaseReasons(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.addNodes("l40s-48g-x4", 3)
	m := e.newMember(100_000)
	e.addKey(m)
	if err := e.pol.Set(ctx, m.p.TenantID, "allocation.max_concurrent_per_user", "10", "test"); err != nil {
		t.Fatal(err)
	}
	other, _, err := postgres.NewUserStore(e.db).UpsertByIdentity(ctx, identity.User{ID: system.UUIDs{}.NewID(),
		Issuer: "https://iss", Subject: "admin-" + services.RandomSuffix(6), Email: services.RandomSuffix(6) + "@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	tenantAdmin := identity.Principal{User: other, TenantID: m.p.TenantID, TenantRole: identity.TenantAdmin}
	operator := m.p
	operator.User.Role = identity.RoleAdmin
	release := map[string]func(id string) (allocation.Allocation, error){
		allocation.ReleaseByUser:        func(id string) (allocation.Allocation, error) { return e.svc.Release(ctx, m.p, id) },
		allocation.ReleaseByTenantAdmin: func(id string) (allocation.Allocation, error) { return e.svc.Release(ctx, tenantAdmin, id) },
		allocation.ReleaseByOperator:    func(id string) (allocation.Allocation, error) { return e.svc.ForceRelease(ctx, operator, id) },
	}
	for reason, rel := range release {
		a, err := e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "l40s-48g-x4"})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := rel(a.ID); err != nil || got.ReleaseReason != reason {
			t.Fatalf("%s: release reason %q (%v)", reason, got.ReleaseReason, err)
		}
		// A failed release retried by an operator keeps the first reason.
		if _, err := e.svc.MarkReleaseFailed(ctx, a.ID, "agent_unreachable"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ForceRelease(ctx, operator, a.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := e.svc.MarkReleased(ctx, a.ID); err != nil || got.ReleaseReason != reason {
			t.Fatalf("%s: released with reason %q (%v)", reason, got.ReleaseReason, err)
		}
		for _, ev := range e.events(a.ID) {
			var p allocationsvc.StatePayload
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: reason, false: ""}[ev.Type != event.AllocationRequested]; p.ReleaseReason != want {
				t.Fatalf("%s: %s carries reason %q; want %q", reason, ev.Type, p.ReleaseReason, want)
			}
		}
	}
}

func TestLifecycleAndEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	nodes := e.addNodes("h100-80g-x8", 1)
	m := e.newMember(50_000)
	key := e.addKey(m)
	e.addKey(m)
	a, err := e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x8", SSHKeyIDs: []string{string(key)}})
	if err != nil {
		t.Fatal(err)
	}
	if a.State != allocation.Requested || a.NodeID != nodes[0] || a.PriceMinor != 2392 || a.Currency != "usd" {
		t.Fatalf("created %+v", a)
	}
	evs := e.events(a.ID)
	if len(evs) != 1 || evs[0].Type != event.AllocationRequested || evs[0].TenantID != m.p.TenantID {
		t.Fatalf("events after create: %+v", evs)
	}
	var req allocationsvc.RequestedPayload
	if err := json.Unmarshal(evs[0].Payload, &req); err != nil {
		t.Fatal(err)
	}
	if req.AllocationID != a.ID || req.NodeID != nodes[0] || req.UserID != m.p.User.ID ||
		req.Username != nodetask.UsernameFor(a.ID) || req.SKUID != "h100-80g-x8" || len(req.SSHKeyIDs) != 1 || req.SSHKeyIDs[0] != string(key) {
		t.Fatalf("requested payload %+v", req)
	}

	// Other tenants cannot see or release it.
	other := e.newMember(1)
	if _, err := e.svc.Get(ctx, other.p, a.ID); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("cross-tenant get: %v", err)
	}
	if _, err := e.svc.Release(ctx, other.p, a.ID); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("cross-tenant release: %v", err)
	}
	if _, err := e.svc.AccessInfo(ctx, m.p, a.ID); fault.From(err).Code != allocationsvc.CodeNotActive {
		t.Fatalf("access before active: %v", err)
	}

	// The worker's transitions, each idempotent.
	if _, err := e.svc.MarkActive(ctx, a.ID); fault.From(err).Code != allocationsvc.CodeInvalidTransition {
		t.Fatalf("requested → active: %v", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := e.svc.MarkProvisioning(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		if got, err := e.svc.MarkActive(ctx, a.ID); err != nil || got.State != allocation.Active || got.ActiveAt == nil {
			t.Fatalf("active: %+v %v", got, err)
		}
	}
	d, err := e.svc.Get(ctx, m.p, a.ID)
	if err != nil || d.Access == nil {
		t.Fatalf("detail %+v %v", d, err)
	}
	user := nodetask.UsernameFor(a.ID)
	if d.Access.User != user || d.Access.Port != 2222 || !strings.HasSuffix(d.Access.Host, ".example.net") ||
		d.Access.Command != "ssh -p 2222 "+user+"@"+d.Access.Host {
		t.Fatalf("access %+v", d.Access)
	}

	// Two hours and 13 minutes of use, as far as the bill is concerned.
	if _, err := e.db.Pool.Exec(ctx, `UPDATE allocations SET active_at = now() - interval '2 hours 13 minutes' WHERE id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}

	// Release → releasing (twice: no second event) → release_failed → force → released.
	for i := 0; i < 2; i++ {
		if got, err := e.svc.Release(ctx, m.p, a.ID); err != nil || got.State != allocation.Releasing {
			t.Fatalf("release: %+v %v", got, err)
		}
	}
	if _, err := e.svc.MarkReleaseFailed(ctx, a.ID, "agent_unreachable"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ForceRelease(ctx, m.p, a.ID); !fault.IsKind(err, fault.KindForbidden) {
		t.Fatalf("force release by a user: %v", err)
	}
	admin := m.p
	admin.User.Role = identity.RoleAdmin
	admin.TenantID = other.p.TenantID
	if got, err := e.svc.ForceRelease(ctx, admin, a.ID); err != nil || got.State != allocation.Releasing {
		t.Fatalf("force release: %+v %v", got, err)
	}
	if got, err := e.svc.MarkReleased(ctx, a.ID); err != nil || got.State != allocation.Released || got.ReleasedAt == nil {
		t.Fatalf("released: %+v %v", got, err)
	}
	if _, err := e.svc.MarkReleased(ctx, a.ID); err != nil {
		t.Fatalf("released again: %v", err)
	}
	_, err = e.svc.Release(ctx, m.p, a.ID)
	wantFault(t, err, fault.KindConflict, allocationsvc.CodeInvalidTransition)

	var types []string
	for _, ev := range e.events(a.ID) {
		types = append(types, ev.Type)
	}
	want := []string{event.AllocationRequested, event.AllocationActive, event.AllocationReleaseReq,
		event.AllocationReleaseFailed, event.AllocationReleaseReq, event.AllocationReleased}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v; want %v", types, want)
	}
	// The ended events carry the bill: active_at to the first release
	// request, at the price snapshot (what billing debits in all).
	final, err := e.svc.Get(ctx, m.p, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	secs := int64(final.ReleaseRequestedAt.Sub(*final.ActiveAt) / time.Second)
	if secs < 7980 || secs > 7990 {
		t.Fatalf("billed %d s; want about 2 h 13 min", secs)
	}
	wantUsage := allocationsvc.UsageSummary{BilledSeconds: secs, CostMinor: ledger.CostMinor(final.PriceMinor, secs), Currency: final.Currency}
	if wantUsage.CostMinor == 0 {
		t.Fatal("the SKU's price is 0: the test proves nothing")
	}
	for _, ev := range e.events(a.ID) {
		var p allocationsvc.StatePayload
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case event.AllocationReleased, event.AllocationReleaseFailed:
			if p.Usage == nil || *p.Usage != wantUsage {
				t.Fatalf("%s usage %+v; want %+v", ev.Type, p.Usage, wantUsage)
			}
		default:
			if p.Usage != nil {
				t.Fatalf("%s carries usage %+v", ev.Type, p.Usage)
			}
		}
	}
	// The node is free again.
	if _, err := e.svc.Create(ctx, m.p, m.projectID, allocationsvc.CreateRequest{SKUID: "h100-80g-x8"}); err != nil {
		t.Fatalf("node not freed: %v", err)
	}
	if list, _, err := e.svc.AdminList(ctx, admin, []allocation.State{allocation.Released}, 0, ""); err != nil || len(list) != 1 {
		t.Fatalf("admin list released: %v %v", list, err)
	}
	if list, _, err := e.svc.List(ctx, m.p, allocationsvc.ListRequest{ProjectID: m.projectID}); err != nil || len(list) != 2 {
		t.Fatalf("list: %v %v", list, err)
	}
}

func TestSSHKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	m := e.newMember(0)

	rsaKey := func(bits int) string {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		pk, _ := ssh.NewPublicKey(&k.PublicKey)
		return string(ssh.MarshalAuthorizedKey(pk))
	}
	var dsaParams dsa.Parameters
	if err := dsa.GenerateParameters(&dsaParams, rand.Reader, dsa.L1024N160); err != nil {
		t.Fatal(err)
	}
	dk := dsa.PrivateKey{PublicKey: dsa.PublicKey{Parameters: dsaParams}}
	if err := dsa.GenerateKey(&dk, rand.Reader); err != nil {
		t.Fatal(err)
	}
	dpk, err := ssh.NewPublicKey(&dk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	good := ed25519Key(t)

	for _, c := range []struct {
		name, key string
		kind      fault.Kind
		code      fault.Code
	}{
		{"ed25519", good, 0, ""},
		{"ed25519 again", good, fault.KindConflict, "ssh_key_duplicate"},
		{"rsa-2048", rsaKey(2048), fault.KindInvalid, fault.CodeValidationFailed},
		{"dsa", string(ssh.MarshalAuthorizedKey(dpk)), fault.KindInvalid, fault.CodeValidationFailed},
		{"private key", privPEM, fault.KindInvalid, fault.CodeValidationFailed},
		{"garbage", "ssh-ed25519 notbase64!!", fault.KindInvalid, fault.CodeValidationFailed},
	} {
		k, err := e.svc.AddSSHKey(ctx, m.p, c.name, c.key)
		if c.code == "" {
			if err != nil || k.KeyType != ssh.KeyAlgoED25519 || !strings.HasPrefix(k.Fingerprint, "SHA256:") ||
				strings.Contains(k.PublicKey, "me@laptop") {
				t.Fatalf("%s: %+v %v", c.name, k, err)
			}
			continue
		}
		wantFault(t, err, c.kind, c.code)
		if c.kind == fault.KindInvalid && fault.From(err).Field != "public_key" {
			t.Fatalf("%s: field %q; want public_key", c.name, fault.From(err).Field)
		}
	}
	keys, err := e.svc.ListSSHKeys(ctx, m.p)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v %v", keys, err)
	}
	other := e.newMember(0)
	if err := e.svc.DeleteSSHKey(ctx, other.p, keys[0].ID); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("delete another user's key: %v", err)
	}
	if err := e.svc.DeleteSSHKey(ctx, m.p, keys[0].ID); err != nil {
		t.Fatal(err)
	}
}
