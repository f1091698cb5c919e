package httphost_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/netprobe"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/core/ledger"
	httphost "github.com/gpuaas/gpuaas/hosts/http"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/services"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// computeCluster is n API replicas (each with its own stores, services and
// in-process limiter, as separate processes would have) over one database.
type computeCluster struct {
	t      *testing.T
	db     *postgres.DB
	iss    *tokens.Issuer
	urls   []string
	allocs *allocationsvc.Service
}

func newComputeCluster(t *testing.T, replicas int) *computeCluster {
	t.Helper()
	db := services.Postgres(t)
	iss := tokens.NewIssuer(t)
	dev := tokens.NewDevOIDC(t)
	c := &computeCluster{t: t, db: db, iss: iss}
	for i := 0; i < replicas; i++ {
		client, err := oidc.NewClient(oidc.ClientConfig{Issuer: dev.Issuer(), ClientID: dev.ClientID(), HTTPClient: dev.Server.Client()})
		if err != nil {
			t.Fatal(err)
		}
		verifier, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: iss.URL(), Audience: iss.Audience(),
			StaticKeys: append([]crypto.PublicKey{}, iss.PublicKeys()...)})
		if err != nil {
			t.Fatal(err)
		}
		outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
		if err != nil {
			t.Fatal(err)
		}
		policies, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
		if err != nil {
			t.Fatal(err)
		}
		clock, ids, auditLog := system.Clock{}, system.UUIDs{}, postgres.NewAuditLog(db)
		idsvc, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
			Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Audit: auditLog,
			Outbox: outbox, Clock: clock, IDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		prober, _ := netprobe.New(netprobe.Config{Timeout: 2 * time.Second})
		inv, err := inventorysvc.New(inventorysvc.Config{}, inventorysvc.Deps{Tx: db, SKUs: postgres.NewSKUStore(db),
			Nodes: postgres.NewNodeStore(db), Allocations: postgres.NewAllocationStore(db),
			Bootstrap: postgres.NewBootstrapTokenStore(db), Certs: postgres.NewNodeCertificateStore(db), Prober: prober,
			Audit: auditLog, Clock: clock, IDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		allocs, err := allocationsvc.New(allocationsvc.Deps{Tx: db, Allocations: postgres.NewAllocationStore(db),
			SKUs: postgres.NewSKUStore(db), Nodes: postgres.NewNodeStore(db), SSHKeys: postgres.NewSSHKeyStore(db),
			Ledger: postgres.NewLedgerStore(db), Policies: policies, Audit: auditLog, Outbox: outbox, Clock: clock, IDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		c.allocs = allocs
		srv, err := httphost.New(httphost.Config{Addr: "127.0.0.1:0", AllowedRedirectURIs: []string{dev.RedirectURI}},
			httphost.Deps{Identity: idsvc, Verifier: verifier, IdP: client, Tokens: inproc.NewTokenStore(clock),
				RateLimiter: inproc.NewRateLimiter(clock), Policies: policies, Audit: auditLog,
				Idempotency: postgres.NewIdempotencyStore(db, clock), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
				Inventory: inv, Allocations: allocs})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.ContractChecked(t))
		t.Cleanup(ts.Close)
		c.urls = append(c.urls, ts.URL)
	}
	return c
}

func (c *computeCluster) token(sub string, admin bool) string {
	claims := []tokens.Claim{tokens.Subject(sub), tokens.Email(sub + "@example.com"), tokens.Name(sub)}
	if admin {
		claims = append(claims, tokens.Roles("admin"))
	}
	return c.iss.Mint(c.t, claims...)
}

// do calls replica i; hdr are name/value pairs.
func (c *computeCluster) do(i int, method, path, bearer, body string, hdr ...string) (int, []byte) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequestWithContext(context.Background(), method, c.urls[i%len(c.urls)]+path, rd)
	if err != nil {
		c.t.Error(err)
		return 0, nil
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Authorization", "Bearer "+bearer)
	for j := 0; j+1 < len(hdr); j += 2 {
		r.Header.Set(hdr[j], hdr[j+1])
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		c.t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type computeUser struct {
	token, tenantID, projectID string
}

// user signs a subject in (first call creates its tenant and default
// project), registers an SSH key when withKey, and credits the tenant.
func (c *computeCluster) user(sub string, credit int64, withKey bool) computeUser {
	c.t.Helper()
	u := computeUser{token: c.token(sub, false)}
	status, body := c.do(0, "GET", "/api/v1/users/me", u.token, "")
	var me struct {
		Tenant   struct{ ID string }
		Projects []struct{ ID string }
	}
	if status != 200 || json.Unmarshal(body, &me) != nil || len(me.Projects) != 1 {
		c.t.Fatalf("users/me: %d %s", status, body)
	}
	u.tenantID, u.projectID = me.Tenant.ID, me.Projects[0].ID
	if withKey {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		pk, _ := ssh.NewPublicKey(pub)
		req, _ := json.Marshal(map[string]string{"name": "laptop", "public_key": string(ssh.MarshalAuthorizedKey(pk))})
		if status, body := c.do(1, "POST", "/api/v1/ssh-keys", u.token, string(req)); status != 201 {
			c.t.Fatalf("add ssh key: %d %s", status, body)
		}
	}
	if credit > 0 {
		if _, err := postgres.NewLedgerStore(c.db).Post(context.Background(), ledger.Entry{TenantID: u.tenantID, Type: ledger.Credit,
			AmountMinor: credit, Currency: "usd", IdempotencyKey: "seed-" + u.tenantID}); err != nil {
			c.t.Fatal(err)
		}
	}
	return u
}

func (c *computeCluster) addNodes(sku string, n int) []string {
	c.t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		id := system.UUIDs{}.NewID()
		now := time.Now()
		if err := postgres.NewNodeStore(c.db).CreateNode(context.Background(), inventory.Node{ID: id, Name: "gpu-" + id,
			SKUID: sku, State: inventory.NodeActive, SSHHost: "10.1.0." + fmt.Sprint(i+1), SSHPort: 22, LastHeartbeatAt: &now}); err != nil {
			c.t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// TestNoDoubleBooking is the "Done when": 64 concurrent POST /allocations
// for 8 free nodes through 3 API replicas on one database → exactly 8
// allocations hold nodes, the other 56 are 409 no_capacity, and no node is
// held by two live allocations.
func TestNoDoubleBooking(t *testing.T) {
	t.Parallel()
	c := newComputeCluster(t, 3)
	c.addNodes("h100-80g-x8", 8)
	const users, perUser = 16, 4
	us := make([]computeUser, users)
	for i := range us {
		us[i] = c.user(fmt.Sprintf("booker-%02d-%s", i, services.RandomSuffix(3)), 1_000_000, true)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	codes := map[string]int{}
	start := make(chan struct{})
	for i := 0; i < users*perUser; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			u := us[i%users]
			<-start
			status, body := c.do(i, "POST", "/api/v1/allocations", u.token, `{"sku_id":"h100-80g-x8"}`,
				"X-Project-ID", u.projectID, "X-Idempotency-Key", fmt.Sprintf("create-%d", i))
			var e struct{ Error struct{ Code string } }
			_ = json.Unmarshal(body, &e)
			mu.Lock()
			statuses[status]++
			codes[e.Error.Code]++
			mu.Unlock()
		}(i)
	}
	close(start)
	wg.Wait()
	if statuses[201] != 8 || statuses[409] != 56 || codes["no_capacity"] != 56 {
		t.Fatalf("statuses %v codes %v; want 8×201 and 56×409 no_capacity", statuses, codes)
	}
	var held, doubled int
	ctx := context.Background()
	if err := c.db.Pool.QueryRow(ctx, `SELECT count(DISTINCT node_id) FROM allocations
		WHERE state IN ('requested','provisioning','active','releasing','release_failed')`).Scan(&held); err != nil || held != 8 {
		t.Fatalf("nodes held: %d (%v); want 8", held, err)
	}
	if err := c.db.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT node_id FROM allocations
		WHERE state IN ('requested','provisioning','active','releasing','release_failed')
		GROUP BY node_id HAVING count(*) > 1) d`).Scan(&doubled); err != nil || doubled != 0 {
		t.Fatalf("double-booked nodes: %d (%v)", doubled, err)
	}
	if status, body := c.do(0, "GET", "/api/v1/skus", us[0].token, ""); status != 200 ||
		!strings.Contains(string(body), `"id":"h100-80g-x8"`) || strings.Count(string(body), `"available":0`) != 4 {
		t.Fatalf("skus after the rush: %d %s", status, body)
	}
}

// TestComputeRoutes walks the refusals and the lifecycle over HTTP.
func TestComputeRoutes(t *testing.T) {
	t.Parallel()
	c := newComputeCluster(t, 1)
	nodes := c.addNodes("l40s-48g-x4", 1)
	alice := c.user("alice-"+services.RandomSuffix(3), 10_000, true)
	broke := c.user("broke-"+services.RandomSuffix(3), 0, true)
	keyless := c.user("keyless-"+services.RandomSuffix(3), 10_000, false)
	mallory := c.user("mallory-"+services.RandomSuffix(3), 10_000, true)
	admin := c.token("ops-"+services.RandomSuffix(3), true)
	create := func(u computeUser) (int, []byte) {
		return c.do(0, "POST", "/api/v1/allocations", u.token, `{"sku_id":"l40s-48g-x4"}`, "X-Project-ID", u.projectID)
	}
	for _, tc := range []struct {
		name   string
		status int
		code   string
		call   func() (int, []byte)
	}{
		{"no balance", 402, "insufficient_balance", func() (int, []byte) { return create(broke) }},
		{"no ssh key", 422, "ssh_key_required", func() (int, []byte) { return create(keyless) }},
		{"no project", 400, "project_required", func() (int, []byte) {
			return c.do(0, "POST", "/api/v1/allocations", alice.token, `{"sku_id":"l40s-48g-x4"}`)
		}},
		{"private key", 400, "validation_failed", func() (int, []byte) {
			return c.do(0, "POST", "/api/v1/ssh-keys", alice.token, `{"name":"old","public_key":"-----BEGIN OPENSSH PRIVATE KEY-----"}`)
		}},
		{"user on admin nodes", 403, "forbidden", func() (int, []byte) { return c.do(0, "GET", "/api/v1/admin/nodes", alice.token, "") }},
	} {
		if status, body := tc.call(); status != tc.status || !strings.Contains(string(body), `"code":"`+tc.code+`"`) {
			t.Fatalf("%s: %d %s; want %d %s", tc.name, status, body, tc.status, tc.code)
		}
	}
	status, body := create(alice)
	var a struct {
		ID     string
		NodeID string `json:"node_id"`
		State  string
		Access *struct{ Command string }
	}
	if status != 201 || json.Unmarshal(body, &a) != nil || a.NodeID != nodes[0] || a.State != "requested" {
		t.Fatalf("create: %d %s", status, body)
	}
	if status, body := create(mallory); status != 409 || !strings.Contains(string(body), `"no_capacity"`) {
		t.Fatalf("second create: %d %s", status, body)
	}
	for _, path := range []string{"/api/v1/allocations/" + a.ID, "/api/v1/allocations/" + a.ID + "/release"} {
		method := map[bool]string{true: "POST", false: "GET"}[strings.HasSuffix(path, "/release")]
		if status, body := c.do(0, method, path, mallory.token, ""); status != 404 {
			t.Fatalf("mallory %s %s: %d %s", method, path, status, body)
		}
	}
	// The user-facing node list hides addresses; the admin's does not.
	if status, body := c.do(0, "GET", "/api/v1/nodes", alice.token, ""); status != 200 || strings.Contains(string(body), "10.1.0.") ||
		!strings.Contains(string(body), nodes[0]) {
		t.Fatalf("user nodes: %d %s", status, body)
	}
	if status, body := c.do(0, "GET", "/api/v1/admin/nodes", admin, ""); status != 200 || !strings.Contains(string(body), `"ssh_host":"10.1.0.1"`) {
		t.Fatalf("admin nodes: %d %s", status, body)
	}
	if status, body := c.do(0, "DELETE", "/api/v1/admin/nodes/"+nodes[0], admin, ""); status != 409 || !strings.Contains(string(body), "node_in_use") {
		t.Fatalf("retire in use: %d %s", status, body)
	}
	// Active → the detail shows how to connect.
	ctx := context.Background()
	if _, err := c.allocs.MarkProvisioning(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.allocs.MarkActive(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	status, body = c.do(0, "GET", "/api/v1/allocations/"+a.ID, alice.token, "")
	if status != 200 || json.Unmarshal(body, &a) != nil || a.Access == nil || !strings.HasPrefix(a.Access.Command, "ssh -p 22 ga_") {
		t.Fatalf("detail: %d %s", status, body)
	}
	if status, body := c.do(0, "POST", "/api/v1/allocations/"+a.ID+"/release", alice.token, ""); status != 200 || !strings.Contains(string(body), `"state":"releasing"`) {
		t.Fatalf("release: %d %s", status, body)
	}
	if _, err := c.allocs.MarkReleased(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if status, body := c.do(0, "POST", "/api/v1/allocations/"+a.ID+"/release", alice.token, ""); status != 409 || !strings.Contains(string(body), "invalid_state_transition") {
		t.Fatalf("release a released one: %d %s", status, body)
	}
	if status, body := c.do(0, "GET", "/api/v1/admin/allocations?status=released", admin, ""); status != 200 || !strings.Contains(string(body), a.ID) {
		t.Fatalf("admin list: %d %s", status, body)
	}
	if status, body := c.do(0, "GET", "/api/v1/allocations", alice.token, "", "X-Project-ID", alice.projectID); status != 200 || !strings.Contains(string(body), a.ID) {
		t.Fatalf("list: %d %s", status, body)
	}
	// Maintenance: out of placement and back, each idempotent and audited once.
	maint := "/api/v1/admin/nodes/" + nodes[0] + "/maintenance"
	if status, body := c.do(0, "PUT", maint, alice.token, ""); status != 403 {
		t.Fatalf("user starts maintenance: %d %s", status, body)
	}
	for range 2 {
		if status, body := c.do(0, "PUT", maint, admin, ""); status != 200 || !strings.Contains(string(body), `"state":"maintenance"`) {
			t.Fatalf("start maintenance: %d %s", status, body)
		}
	}
	if status, body := create(mallory); status != 409 || !strings.Contains(string(body), `"no_capacity"`) {
		t.Fatalf("create on the only node, in maintenance: %d %s", status, body)
	}
	for range 2 {
		if status, body := c.do(0, "DELETE", maint, admin, ""); status != 200 || !strings.Contains(string(body), `"state":"active"`) {
			t.Fatalf("end maintenance: %d %s", status, body)
		}
	}
	var starts, ends int
	if err := c.db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE action = 'node.maintenance_start'),
		count(*) FILTER (WHERE action = 'node.maintenance_end') FROM audit_log WHERE resource_id LIKE '%' || $1`, nodes[0]).Scan(&starts, &ends); err != nil {
		t.Fatal(err)
	}
	if starts != 1 || ends != 1 {
		t.Fatalf("audit: %d starts, %d ends; want 1 and 1", starts, ends)
	}
	if status, body := c.do(0, "PUT", "/api/v1/admin/nodes/"+uuid.NewString()+"/maintenance", admin, ""); status != 404 {
		t.Fatalf("maintenance of an unknown node: %d %s", status, body)
	}
	// Register → the token is in the response once; retire a free node.
	status, body = c.do(0, "POST", "/api/v1/admin/nodes", admin, `{"name":"gpu-new","sku_id":"h100-80g-x1","ssh_host":"127.0.0.1","ssh_port":1}`)
	var reg struct {
		Node  struct{ ID, State string }
		Token string `json:"bootstrap_token"`
	}
	if status != 201 || json.Unmarshal(body, &reg) != nil || len(reg.Token) != 43 || reg.Node.State != "enrolling" {
		t.Fatalf("register: %d %s", status, body)
	}
	if status, body := c.do(0, "POST", "/api/v1/admin/nodes/"+reg.Node.ID+"/probe", admin, ""); status != 200 || !strings.Contains(string(body), `"reachable":false`) {
		t.Fatalf("probe: %d %s", status, body)
	}
	if status, body := c.do(0, "DELETE", "/api/v1/admin/nodes/"+nodes[0], admin, ""); status != 204 {
		t.Fatalf("retire: %d %s", status, body)
	}
	if status, body := c.do(0, "PUT", maint, admin, ""); status != 409 || !strings.Contains(string(body), "invalid_state_transition") {
		t.Fatalf("maintenance of a retired node: %d %s", status, body)
	}
}

var _ ports.LedgerStore = (*postgres.LedgerStore)(nil)
