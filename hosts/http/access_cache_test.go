package httphost

import (
	"context"
	"crypto"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/poll"
	"github.com/gpuaas/gpuaas/testkit/services"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// accessCluster is replicas of the host over one database with every cache
// of authentication and authorisation on, as `gpuaas serve api` runs them:
// each replica its own verifier, identity service, change feed (LISTEN
// access_changed) and machine-access wiring; the deny-list is shared, as
// Redis shares it between replicas. Reads of users are counted so a test
// can tell a cached answer from a fresh one.
type accessCluster struct {
	t     *testing.T
	db    *postgres.DB
	iss   *tokens.Issuer
	ts    []*httptest.Server
	feeds []ports.AccessChanges
	reads atomic.Int64 // user reads of every replica
}

// countingUsers counts the reads that resolve a signed-in caller.
type countingUsers struct {
	*postgres.UserStore
	n *atomic.Int64
}

func (c countingUsers) UserAndTenantByIdentity(ctx context.Context, iss, sub string) (identity.User, identity.TenantMembership, bool, error) {
	c.n.Add(1)
	return c.UserStore.UserAndTenantByIdentity(ctx, iss, sub)
}

func (c countingUsers) GetByIdentity(ctx context.Context, iss, sub string) (identity.User, error) {
	c.n.Add(1)
	return c.UserStore.GetByIdentity(ctx, iss, sub)
}

// newAccessCluster starts n replicas; feed, when set, makes replica i's
// change feed (else the Postgres one).
func newAccessCluster(t *testing.T, n int, feed func(i int, db *postgres.DB) ports.AccessChanges) *accessCluster {
	t.Helper()
	c := &accessCluster{t: t, db: services.Postgres(t), iss: tokens.NewIssuer(t)}
	db := c.db
	tokenStore := inproc.NewTokenStore(system.Clock{}) // shared: Redis in production
	mach := newMachineAccess(t, db)
	for i := range n {
		var changes ports.AccessChanges
		if feed != nil {
			changes = feed(i, db)
		} else {
			pf := postgres.NewAccessChanges(db)
			t.Cleanup(pf.Close)
			changes = pf
		}
		c.feeds = append(c.feeds, changes)
		verifier, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: c.iss.URL(), Audience: c.iss.Audience(),
			StaticKeys: append([]crypto.PublicKey(nil), c.iss.PublicKeys()...), Trusted: []oidc.TrustedIssuer{mach.trusted()}})
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
		clock, auditLog := system.Clock{}, postgres.NewAuditLog(db)
		idsvc, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: countingUsers{postgres.NewUserStore(db), &c.reads},
			Tenants: postgres.NewTenantStore(db), Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db),
			Audit: auditLog, Outbox: outbox, Clock: clock, IDs: system.UUIDs{}, Changes: changes})
		if err != nil {
			t.Fatal(err)
		}
		m := &machineAccess{issuer: mach.issuer, accounts: mach.accounts, keys: mach.keys}
		if err := m.wire(db, idsvc, auditLog); err != nil {
			t.Fatal(err)
		}
		srv, err := New(Config{Addr: "127.0.0.1:0", PublicBaseURL: testOrigin, AllowedRedirectURIs: []string{testRedirect}},
			Deps{Identity: idsvc, Verifier: verifier, IdP: &stubIdP{iss: c.iss}, Tokens: tokenStore, RateLimiter: allowAll{},
				Policies: policies, Audit: auditLog, Idempotency: postgres.NewIdempotencyStore(db, clock),
				Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), AccessChanges: changes,
				Machine: m.svc, ServiceAccounts: m.accounts, APIKeys: m.keys, TokenIssuer: m.issuer})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.ContractChecked(t))
		t.Cleanup(ts.Close)
		c.ts = append(c.ts, ts)
		if feed == nil { // caches are on from here: the tests' warm requests fill them
			poll.Until(t, 10*time.Second, "the change feed to connect", func() bool { return changes.Generation() != 0 })
		}
	}
	return c
}

// person signs a new subject in on replica 0: their token, default project
// and user id.
func (c *accessCluster) person(name string) (tok, project, userID string) {
	c.t.Helper()
	tok = c.iss.Mint(c.t, tokens.Subject(name+"-"+uuid.NewString()), tokens.Email(name+"-"+uuid.NewString()[:8]+"@example.com"),
		tokens.Name(name), tokens.Expiry(time.Now().Add(time.Hour)))
	project = signInDefaultProject(c.t, c.ts[0], tok)
	return tok, project, c.userID(tok)
}

func (c *accessCluster) userID(tok string) string {
	c.t.Helper()
	var me struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	mustCall(c.t, c.ts[0], "GET", "/api/v1/users/me", tok, "", nil, 200, &me)
	return me.User.ID
}

// waitForChange waits until replica i's feed has moved past gen: the
// notification of a change made elsewhere has arrived.
func (c *accessCluster) waitForChange(i int, gen uint64) {
	c.t.Helper()
	poll.Until(c.t, 10*time.Second, "replica's access generation to move", func() bool {
		g := c.feeds[i].Generation()
		return g != 0 && g != gen
	})
}

// TestAccessCachesServeRepeatRequests: with the caches on, repeated
// requests with one token resolve the caller once per replica; without a
// connected feed every request resolves again.
func TestAccessCachesServeRepeatRequests(t *testing.T) {
	t.Parallel()
	c := newAccessCluster(t, 2, nil)
	tok, project, _ := c.person("repeat")
	for i := range 2 {
		mustCall(t, c.ts[i], "GET", "/api/v1/projects/"+project+"/members", tok, "", nil, 200, nil)
	}
	// The setup's own changes (the user, tenant and project it created) may
	// reach a replica's feed late, on a loaded machine after the warm-up: a
	// round during which a feed's generation moved is run again.
	generations := func() []uint64 {
		var g []uint64
		for _, f := range c.feeds {
			g = append(g, f.Generation())
		}
		return g
	}
	for round := 1; ; round++ {
		gen, before := generations(), c.reads.Load()
		for range 20 {
			for i := range 2 {
				mustCall(t, c.ts[i], "GET", "/api/v1/projects/"+project+"/members", tok, project, nil, 200, nil)
			}
		}
		got := c.reads.Load() - before
		if slices.Equal(gen, generations()) {
			if got != 0 {
				t.Fatalf("40 repeated requests read the user %d times; the cache should have answered", got)
			}
			break
		}
		if round == 5 {
			t.Fatalf("the access feed's generation moved during each of %d rounds of requests", round)
		}
	}

	// A feed that is not connected (generation 0) caches nothing.
	down := fakes.NewAccessChanges()
	down.Disconnect()
	c2 := newAccessCluster(t, 1, func(int, *postgres.DB) ports.AccessChanges { return down })
	tok2, project2, _ := c2.person("nofeed")
	before := c2.reads.Load()
	for range 5 {
		mustCall(t, c2.ts[0], "GET", "/api/v1/projects/"+project2+"/members", tok2, "", nil, 200, nil)
	}
	if got := c2.reads.Load() - before; got != 5 {
		t.Fatalf("with the feed down 5 requests read the user %d times, want 5", got)
	}
}

// TestAccessCachesTakeChangesOnTheNextRequest: with every cache warm on
// two replicas, what the platform's own use cases change — a sign-out, a
// removal from a project, a suspension, a revoked API key, a disabled
// service account — is refused on the very next request, on both replicas.
func TestAccessCachesTakeChangesOnTheNextRequest(t *testing.T) {
	t.Parallel()
	c := newAccessCluster(t, 2, nil)
	owner, project, _ := c.person("owner")
	memberEmail := "member-" + uuid.NewString()[:8] + "@example.com"
	mustCall(t, c.ts[0], "POST", "/api/v1/tenant/invitations", owner, "", map[string]any{"email": memberEmail, "role": "member"}, 201, nil)
	member := c.iss.Mint(t, tokens.Subject("member-"+uuid.NewString()), tokens.Email(memberEmail), tokens.Name("Member"),
		tokens.Expiry(time.Now().Add(time.Hour)))
	memberID := c.userID(member)
	members := "/api/v1/projects/" + project + "/members"
	warm := func(tok string) {
		t.Helper()
		for i := range 2 {
			mustCall(t, c.ts[i], "GET", members, tok, project, nil, 200, nil)
		}
	}
	refused := func(tok string, want int, code string) {
		t.Helper()
		for i := range 2 {
			st, b := mcall(t, c.ts[i], "GET", members, tok, project, nil)
			if st != want || errCode(b) != code {
				t.Fatalf("replica %d after the change: %d %s, want %d %s", i, st, b, want, code)
			}
		}
	}

	// Removed from the project: 404, as for a stranger.
	warm(member)
	mustCall(t, c.ts[0], "DELETE", members+"/"+memberID, owner, "", nil, 204, nil)
	refused(member, 404, "not_found")
	// Back by their email — what a tenant admin knows of a colleague — through the other
	// replica: the answer names them by id, and both replicas let them in again.
	var added struct {
		UserID string `json:"user_id"`
	}
	mustCall(t, c.ts[1], "POST", members, owner, "", map[string]any{"email": strings.ToUpper(memberEmail), "role": "member"}, 201, &added)
	if added.UserID != memberID {
		t.Fatalf("added by email: user_id %q, want %q", added.UserID, memberID)
	}
	warm(member)
	mustCall(t, c.ts[0], "DELETE", members+"/"+memberID, owner, "", nil, 204, nil)
	refused(member, 404, "not_found")

	// A sign-out through one replica ends the token on both.
	second := c.iss.Mint(t, tokens.Subject("owner2-"+uuid.NewString()), tokens.Email("o2-"+uuid.NewString()[:8]+"@example.com"),
		tokens.Expiry(time.Now().Add(time.Hour)))
	project2 := signInDefaultProject(t, c.ts[0], second)
	for i := range 2 {
		mustCall(t, c.ts[i], "GET", "/api/v1/projects/"+project2+"/members", second, "", nil, 200, nil)
	}
	mustCall(t, c.ts[1], "POST", "/api/v1/auth/logout", second, "", map[string]any{}, 204, nil)
	for i := range 2 {
		st, b := mcall(t, c.ts[i], "GET", "/api/v1/projects/"+project2+"/members", second, "", nil)
		if st != 401 || errCode(b) != "token_invalid" {
			t.Fatalf("replica %d after sign-out: %d %s", i, st, b)
		}
	}

	// An API key revoked, then its holder suspended.
	var key struct {
		APIKey struct {
			ID string `json:"id"`
		} `json:"api_key"`
		Secret string `json:"secret"`
	}
	mustCall(t, c.ts[0], "POST", "/api/v1/api-keys", owner, "", map[string]any{"name": "k", "project_id": project,
		"scopes": []string{"read"}}, 201, &key)
	warm(key.Secret)
	mustCall(t, c.ts[1], "DELETE", "/api/v1/api-keys/"+key.APIKey.ID, owner, "", nil, 204, nil)
	refused(key.Secret, 401, "token_invalid")

	warm(owner)
	if _, err := postgres.NewAdminStore(c.db).SetUserStatus(context.Background(), c.userID(owner), identity.UserSuspended, time.Now()); err != nil {
		t.Fatal(err)
	}
	refused(owner, 403, "forbidden")
}

// TestAccessCachesFollowOtherProcesses: a change made by another process —
// here straight in SQL, so only the database's notification tells the
// replicas — is refused on every replica once its notification has
// arrived (milliseconds); no replica serves a cached answer after that.
func TestAccessCachesFollowOtherProcesses(t *testing.T) {
	t.Parallel()
	c := newAccessCluster(t, 2, nil)
	ctx := context.Background()
	owner, project, ownerID := c.person("owner")
	memberEmail := "m-" + uuid.NewString()[:8] + "@example.com"
	mustCall(t, c.ts[0], "POST", "/api/v1/tenant/invitations", owner, "", map[string]any{"email": memberEmail, "role": "member"}, 201, nil)
	member := c.iss.Mint(t, tokens.Subject("m-"+uuid.NewString()), tokens.Email(memberEmail), tokens.Expiry(time.Now().Add(time.Hour)))
	memberID := c.userID(member)
	members := "/api/v1/projects/" + project + "/members"
	var key struct {
		Secret string `json:"secret"`
	}
	mustCall(t, c.ts[0], "POST", "/api/v1/api-keys", owner, "", map[string]any{"name": "k", "project_id": project,
		"scopes": []string{"read"}}, 201, &key)

	for _, step := range []struct {
		name, tok, sql string
		args           []any
		want           int
		code           string
	}{
		{"membership deleted", member, `DELETE FROM project_memberships WHERE project_id = $1 AND user_id = $2`,
			[]any{project, memberID}, 404, "not_found"},
		{"API key revoked", key.Secret, `UPDATE api_keys SET revoked_at = now() WHERE user_id = $1`, []any{ownerID}, 401, "token_invalid"},
		{"user suspended", owner, `UPDATE users SET status = 'suspended' WHERE id = $1`, []any{ownerID}, 403, "forbidden"},
	} {
		for i := range 2 {
			mustCall(t, c.ts[i], "GET", members, step.tok, project, nil, 200, nil)
		}
		gens := []uint64{c.feeds[0].Generation(), c.feeds[1].Generation()}
		if _, err := c.db.Pool.Exec(ctx, step.sql, step.args...); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			c.waitForChange(i, gens[i])
			st, b := mcall(t, c.ts[i], "GET", members, step.tok, project, nil)
			if st != step.want || errCode(b) != step.code {
				t.Fatalf("%s, replica %d: %d %s, want %d %s", step.name, i, st, b, step.want, step.code)
			}
		}
	}
	// Nobody else is affected by the above.
	other, otherProject, _ := c.person("other")
	for i := range 2 {
		mustCall(t, c.ts[i], "GET", "/api/v1/projects/"+otherProject+"/members", other, "", nil, 200, nil)
	}
}
