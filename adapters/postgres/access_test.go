package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

// accessFixture is a tenant with a project, its owner (admin of the
// project) and a tenant member who is in no project.
type accessFixture struct {
	tenant, project, owner, member string
	ownerSub                       string
}

func newAccessFixture(t *testing.T, db *postgres.DB) accessFixture {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	users, members, projects := postgres.NewUserStore(db), postgres.NewMembershipStore(db), postgres.NewProjectStore(db)
	f := accessFixture{tenant: uuid.NewString(), project: uuid.NewString(), ownerSub: "owner-" + uuid.NewString()}
	if err := postgres.NewTenantStore(db).CreateTenant(ctx, identity.Tenant{ID: f.tenant, Name: "t", Slug: "t-" + f.tenant[:8], CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, who := range []*string{&f.owner, &f.member} {
		sub := f.ownerSub
		if who == &f.member {
			sub = "member-" + uuid.NewString()
		}
		u, _, err := users.UpsertByIdentity(ctx, identity.User{ID: uuid.NewString(), Issuer: "https://iss", Subject: sub,
			Email: sub + "@example.com", CreatedAt: now, UpdatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		*who = u.ID
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(members.AddTenantMember(ctx, identity.TenantMembership{TenantID: f.tenant, UserID: f.owner, Role: identity.TenantOwner, CreatedAt: now}))
	must(members.AddTenantMember(ctx, identity.TenantMembership{TenantID: f.tenant, UserID: f.member, Role: identity.TenantMember, CreatedAt: now}))
	must(projects.CreateProject(ctx, identity.Project{ID: f.project, TenantID: f.tenant, Name: "p", CreatedAt: now}))
	must(members.AddProjectMember(ctx, identity.ProjectMembership{ProjectID: f.project, UserID: f.owner, Role: identity.ProjectAdmin, CreatedAt: now}))
	return f
}

// TestAccessReads: the one-query reads say what the two-query reads say.
func TestAccessReads(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	f := newAccessFixture(t, db)
	users, projects := postgres.NewUserStore(db), postgres.NewProjectStore(db)

	u, m, ok, err := users.UserAndTenantByIdentity(ctx, "https://iss", f.ownerSub)
	if err != nil || !ok || u.ID != f.owner || m.TenantID != f.tenant || m.Role != identity.TenantOwner || m.UserID != f.owner {
		t.Fatalf("owner: %+v %+v %v %v", u, m, ok, err)
	}
	want, _ := users.GetByIdentity(ctx, "https://iss", f.ownerSub)
	if u != want {
		t.Fatalf("user %+v, GetByIdentity %+v", u, want)
	}
	if _, _, _, err := users.UserAndTenantByIdentity(ctx, "https://iss", "nobody"); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("unknown identity: %v", err)
	}
	// A user without a tenant.
	lone, _, err := users.UpsertByIdentity(ctx, identity.User{ID: uuid.NewString(), Issuer: "https://iss", Subject: "lone",
		CreatedAt: time.Now(), UpdatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if u, _, ok, err := users.UserAndTenantByIdentity(ctx, "https://iss", "lone"); err != nil || ok || u.ID != lone.ID {
		t.Fatalf("tenantless: %+v %v %v", u, ok, err)
	}

	p, role, err := projects.ProjectAndRole(ctx, f.project, f.owner)
	if err != nil || p.ID != f.project || p.TenantID != f.tenant || role != identity.ProjectAdmin {
		t.Fatalf("owner's project: %+v %q %v", p, role, err)
	}
	if p2, _ := projects.GetProject(ctx, f.project); p != p2 {
		t.Fatalf("project %+v, GetProject %+v", p, p2)
	}
	if p, role, err := projects.ProjectAndRole(ctx, f.project, f.member); err != nil || p.ID != f.project || role != "" {
		t.Fatalf("non-member: %+v %q %v", p, role, err)
	}
	if _, role, err := projects.ProjectAndRole(ctx, f.project, "not-a-uuid"); err != nil || role != "" {
		t.Fatalf("odd user id: %q %v", role, err)
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		if _, _, err := projects.ProjectAndRole(ctx, id, f.owner); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("project %q: %v", id, err)
		}
	}
}

// TestAccessChangesFeed: every change of a watched row, made by any
// connection, moves the generation once its notification arrives; writes
// that change nothing an answer rests on (a sign-in that changed nothing,
// an API key's last use) do not; the stores' own writes move it at once.
func TestAccessChangesFeed(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	ctx := context.Background()
	f := newAccessFixture(t, db)
	feed := postgres.NewAccessChanges(db)
	t.Cleanup(feed.Close)
	poll.Until(t, 10*time.Second, "the feed to connect", func() bool { return feed.Generation() != 0 })

	if _, err := db.Pool.Exec(ctx, `INSERT INTO api_keys (id, user_id, tenant_id, project_id, name, lookup, key_hash, scopes)
		VALUES ($1, $2, $3, $4, 'k', 'abcdefghijkl', decode(repeat('ab', 32), 'hex'), '{read}')`,
		uuid.NewString(), f.member, f.tenant, f.project); err != nil {
		t.Fatal(err)
	}
	// A listener of the test's own counts the notifications each change
	// sends: everything before a sentinel notification has arrived once
	// the sentinel has.
	conn, err := pgx.Connect(ctx, db.Pool.Config().ConnConfig.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `LISTEN access_changed`); err != nil {
		t.Fatal(err)
	}
	notes := func() int {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, `SELECT pg_notify('access_changed', 'sentinel')`); err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			note, err := conn.WaitForNotification(wctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if note.Payload == "sentinel" {
				return n
			}
			n++
		}
	}
	for _, c := range []struct {
		sql   string
		moves bool
	}{
		{`UPDATE users SET status = 'suspended' WHERE id = $1`, true},
		{`UPDATE users SET status = 'suspended', updated_at = now() WHERE id = $1`, false},
		{`UPDATE users SET display_name = 'New name' WHERE id = $1`, true},
		{`UPDATE tenant_memberships SET role = 'admin' WHERE user_id = $1`, true},
		{`INSERT INTO project_memberships (project_id, user_id, role, created_at)
			SELECT id, $1, 'viewer', now() FROM projects WHERE tenant_id = (SELECT tenant_id FROM tenant_memberships WHERE user_id = $1)`, true},
		{`DELETE FROM project_memberships WHERE user_id = $1`, true},
		{`UPDATE projects SET name = 'renamed' WHERE tenant_id = (SELECT tenant_id FROM tenant_memberships WHERE user_id = $1)`, true},
		{`UPDATE api_keys SET last_used_at = now() WHERE user_id = $1`, false},
		{`UPDATE api_keys SET revoked_at = now() WHERE user_id = $1`, true},
		{`DELETE FROM api_keys WHERE user_id = $1`, true},
	} {
		if _, err := db.Pool.Exec(ctx, c.sql, f.member); err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		if got := notes(); (got > 0) != c.moves {
			t.Errorf("%s: %d notifications, want any: %v", c.sql, got, c.moves)
		}
	}
	// The feed moves when a notification arrives from elsewhere.
	g := feed.Generation()
	if _, err := db.Pool.Exec(ctx, `UPDATE users SET status = 'active' WHERE id = $1`, f.member); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the feed to see the change", func() bool { return feed.Generation() > g })

	// The stores' writes move this process's generation before their
	// notification arrives.
	g = feed.Generation()
	if _, err := postgres.NewAdminStore(db).SetUserStatus(ctx, f.owner, identity.UserSuspended, time.Now()); err != nil {
		t.Fatal(err)
	}
	if feed.Generation() == g {
		t.Fatal("a store's write did not move the generation at once")
	}
	g = feed.Generation()
	if err := feed.Announce(ctx); err != nil || feed.Generation() == g {
		t.Fatalf("announce: %v, generation %d → %d", err, g, feed.Generation())
	}

	// Closed, it reports 0: nothing may be cached.
	feed.Close()
	if feed.Generation() != 0 {
		t.Fatal("a closed feed still reports a generation")
	}
}
