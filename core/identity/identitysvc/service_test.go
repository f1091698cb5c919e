package identitysvc_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

const issuer = "https://idp.test"

// env is the service wired to real stores on a database of its own.
type env struct {
	t     *testing.T
	db    *postgres.DB
	svc   *identitysvc.Service
	clock *fakes.Clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := services.Postgres(t)
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(outbox.Close)
	clock := fakes.NewClock(time.Time{})
	svc, err := identitysvc.New(identitysvc.Deps{
		Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db),
		Audit: postgres.NewAuditLog(db), Outbox: outbox, Clock: clock, IDs: system.UUIDs{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, svc: svc, clock: clock}
}

// claims are those of a person no other test uses.
func claims(name string) identity.Claims {
	sub := name + "-" + services.RandomSuffix(6)
	return identity.Claims{Issuer: issuer, Subject: sub, Email: sub + "@example.com", Name: name, Roles: []string{"user"}}
}

func (e *env) signIn(c identity.Claims) identity.Principal {
	e.t.Helper()
	p, err := e.svc.SignIn(context.Background(), c)
	if err != nil {
		e.t.Fatalf("SignIn(%s): %v", c.Subject, err)
	}
	return p
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// outboxPayloads returns the payloads of the outbox events of a type about
// an aggregate.
func (e *env) outboxPayloads(typ, aggregateID string) []map[string]any {
	e.t.Helper()
	rows, err := e.db.Pool.Query(context.Background(), `SELECT envelope->'payload' FROM platform_outbox_events
		WHERE subject = $1 AND envelope->>'aggregate_id' = $2`, typ, aggregateID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			e.t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (e *env) audits(action, tenantID string) int {
	return e.count(`SELECT count(*) FROM audit_log WHERE action = $1 AND tenant_id = $2`, action, tenantID)
}

func wantKind(t *testing.T, err error, k fault.Kind, code fault.Code) {
	t.Helper()
	fe := fault.From(err)
	if err == nil || fe.Kind != k || (code != "" && fe.Code != code) {
		t.Fatalf("err = %v; want %v %s", err, k, code)
	}
}

func TestFirstSignInProvisionsTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := claims("Ada Lovelace")
	c.Email = "  Ada.Lovelace+" + services.RandomSuffix(3) + "@Example.com "
	p := e.signIn(c)

	if p.TenantRole != identity.TenantOwner || p.User.Subject != c.Subject || p.User.Issuer != issuer {
		t.Fatalf("principal = %+v", p)
	}
	if p.User.Email != strings.ToLower(strings.TrimSpace(c.Email)) {
		t.Fatalf("email stored as %q; want it trimmed and lower-case", p.User.Email)
	}
	if n := e.count(`SELECT count(*) FROM users`); n != 1 {
		t.Fatalf("%d users", n)
	}
	profile, err := e.svc.Me(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if profile.Tenant.ID != p.TenantID || !strings.HasPrefix(profile.Tenant.Slug, "ada-lovelace-") || profile.Tenant.Name != "Ada Lovelace's organisation" {
		t.Fatalf("tenant = %+v", profile.Tenant)
	}
	if len(profile.Projects) != 1 {
		t.Fatalf("projects = %+v; want the default one", profile.Projects)
	}
	def := profile.Projects[0]
	if def.Project.Name != identitysvc.DefaultProjectName || !def.Project.IsDefault || def.Project.TenantID != p.TenantID || def.Role != identity.ProjectAdmin {
		t.Fatalf("default project = %+v", def)
	}
	// The owner is a real member of the default project, not only an admin by tenant role.
	if n := e.count(`SELECT count(*) FROM project_memberships WHERE project_id = $1 AND user_id = $2 AND role = 'admin'`, def.Project.ID, p.User.ID); n != 1 {
		t.Fatalf("owner's default-project memberships: %d", n)
	}
	if n := e.audits("auth.first_sign_in", p.TenantID); n != 1 {
		t.Fatalf("%d first-sign-in audit rows; want 1", n)
	}
	evs := e.outboxPayloads(event.UserSignedUp, p.User.ID)
	if len(evs) != 1 || evs[0]["tenant_id"] != p.TenantID || evs[0]["default_project_id"] != def.Project.ID || evs[0]["invited"] != false {
		t.Fatalf("user_signed_up events = %v", evs)
	}
}

func TestSecondSignInChangesOnlyProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := claims("grace")
	first := e.signIn(c)
	e.clock.Advance(time.Hour)
	c.Email, c.Name, c.Roles = "grace.new@example.com", "Grace Hopper", []string{"gpuaas-admin"}
	second := e.signIn(c)

	if second.User.ID != first.User.ID || second.TenantID != first.TenantID || second.TenantRole != identity.TenantOwner {
		t.Fatalf("second sign-in = %+v; first %+v", second, first)
	}
	if second.User.Email != "grace.new@example.com" || second.User.DisplayName != "Grace Hopper" || second.User.Role != identity.RoleAdmin {
		t.Fatalf("profile not updated: %+v", second.User)
	}
	if !second.User.CreatedAt.Equal(first.User.CreatedAt) || !second.User.UpdatedAt.Equal(e.clock.Now()) {
		t.Fatalf("created %v updated %v; want created kept and updated now", second.User.CreatedAt, second.User.UpdatedAt)
	}
	for what, n := range map[string]int{
		"users":           e.count(`SELECT count(*) FROM users`),
		"tenants":         e.count(`SELECT count(*) FROM tenants`),
		"projects":        e.count(`SELECT count(*) FROM projects`),
		"memberships":     e.count(`SELECT count(*) FROM project_memberships`),
		"first-sign-ins":  e.audits("auth.first_sign_in", first.TenantID),
		"sign-up events":  len(e.outboxPayloads(event.UserSignedUp, first.User.ID)),
		"tenant members":  e.count(`SELECT count(*) FROM tenant_memberships`),
		"all audit rows":  e.count(`SELECT count(*) FROM audit_log`),
		"all outbox rows": e.count(`SELECT count(*) FROM platform_outbox_events`),
	} {
		if n != 1 {
			t.Errorf("%s: %d after two sign-ins; want 1", what, n)
		}
	}
}

func TestConcurrentFirstSignInsMakeOneOfEach(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := claims("racer")
	const n = 20
	ps := make([]identity.Principal, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Half come in through Resolve, as a fresh CLI token would.
			if i%2 == 0 {
				ps[i], errs[i] = e.svc.SignIn(context.Background(), c)
			} else {
				ps[i], errs[i] = e.svc.Resolve(context.Background(), c)
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range ps {
		if errs[i] != nil {
			t.Fatalf("sign-in %d: %v", i, errs[i])
		}
		if ps[i].User.ID != ps[0].User.ID || ps[i].TenantID != ps[0].TenantID || ps[i].TenantRole != identity.TenantOwner {
			t.Fatalf("sign-in %d = %+v; sign-in 0 = %+v", i, ps[i], ps[0])
		}
	}
	for what, got := range map[string]int{
		"users":          e.count(`SELECT count(*) FROM users`),
		"tenants":        e.count(`SELECT count(*) FROM tenants`),
		"projects":       e.count(`SELECT count(*) FROM projects WHERE is_default`),
		"tenant members": e.count(`SELECT count(*) FROM tenant_memberships`),
		"first-sign-ins": e.audits("auth.first_sign_in", ps[0].TenantID),
		"sign-up events": len(e.outboxPayloads(event.UserSignedUp, ps[0].User.ID)),
	} {
		if got != 1 {
			t.Errorf("%s: %d after %d concurrent first sign-ins; want 1", what, got, n)
		}
	}
}

func TestInvitedEmailJoinsInvitingTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	owner := e.signIn(claims("owner"))
	c := claims("invitee")
	if err := e.svc.Invite(ctx, owner, strings.ToUpper(c.Email), identity.TenantMember); err != nil {
		t.Fatalf("Invite: %v", err)
	}
	wantKind(t, e.svc.Invite(ctx, owner, c.Email, identity.TenantAdmin), fault.KindConflict, "already_invited")

	p := e.signIn(c)
	if p.TenantID != owner.TenantID || p.TenantRole != identity.TenantMember {
		t.Fatalf("invitee principal = %+v; want a member of %s", p, owner.TenantID)
	}
	if n := e.count(`SELECT count(*) FROM tenants`); n != 1 {
		t.Fatalf("%d tenants; the invitee must not get one of their own", n)
	}
	views, err := e.svc.ListProjects(ctx, p)
	if err != nil || len(views) != 1 || !views[0].Project.IsDefault || views[0].Role != identity.ProjectMember {
		t.Fatalf("invitee projects = %+v, %v; want the default project as member", views, err)
	}
	if n := e.count(`SELECT count(*) FROM tenant_invitations`); n != 0 {
		t.Fatalf("%d invitations left; it must be used up", n)
	}
	evs := e.outboxPayloads(event.UserSignedUp, p.User.ID)
	if len(evs) != 1 || evs[0]["invited"] != true || evs[0]["tenant_id"] != owner.TenantID {
		t.Fatalf("invitee sign-up events = %v", evs)
	}
	// Members may not invite.
	wantKind(t, e.svc.Invite(ctx, p, "x-"+services.RandomSuffix(4)+"@example.com", identity.TenantMember), fault.KindForbidden, "")
}

// team is an owner and a member of one tenant, and an outsider with a
// tenant of their own.
type team struct {
	owner, member, outsider identity.Principal
}

func newTeam(t *testing.T, e *env) team {
	t.Helper()
	owner := e.signIn(claims("owner"))
	c := claims("member")
	if err := e.svc.Invite(context.Background(), owner, c.Email, identity.TenantMember); err != nil {
		t.Fatal(err)
	}
	return team{owner: owner, member: e.signIn(c), outsider: e.signIn(claims("outsider"))}
}

func TestCreateProject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tm := newTeam(t, e)
	pr, err := e.svc.CreateProject(ctx, tm.owner, "training")
	if err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	if _, role, err := e.svc.ProjectAccess(ctx, tm.owner, pr.ID); err != nil || role != identity.ProjectAdmin {
		t.Fatalf("creator's access = %v, %v", role, err)
	}
	if n := e.audits("project.create", tm.owner.TenantID); n != 1 {
		t.Fatalf("%d project.create audit rows", n)
	}
	if evs := e.outboxPayloads(event.ProjectCreated, pr.ID); len(evs) != 1 || evs[0]["name"] != "training" {
		t.Fatalf("project_created events = %v", evs)
	}
	for _, tc := range []struct {
		name    string
		p       identity.Principal
		project string
		kind    fault.Kind
		code    fault.Code
	}{
		{"member may not create", tm.member, "mine", fault.KindForbidden, ""},
		{"duplicate name", tm.owner, "training", fault.KindConflict, "project_name_taken"},
		{"duplicate of the default", tm.owner, identitysvc.DefaultProjectName, fault.KindConflict, "project_name_taken"},
		{"empty name", tm.owner, "", fault.KindInvalid, ""},
		{"padded name", tm.owner, " training ", fault.KindInvalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.svc.CreateProject(ctx, tc.p, tc.project)
			wantKind(t, err, tc.kind, tc.code)
			if tc.code == "project_name_taken" && fault.From(err).Field != "name" {
				t.Fatalf("field %q; want name (a form shows it at the input)", fault.From(err).Field)
			}
		})
	}
	// The same name is free in another tenant.
	if _, err := e.svc.CreateProject(ctx, tm.outsider, "training"); err != nil {
		t.Fatalf("same name in another tenant: %v", err)
	}
}

func TestProjectAccessHidesWhatIsNotYours(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tm := newTeam(t, e)
	private, err := e.svc.CreateProject(ctx, tm.owner, "private")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := e.svc.CreateProject(ctx, tm.outsider, "foreign")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		p       identity.Principal
		project string
	}{
		{"another tenant's project", tm.owner, foreign.ID},
		{"a project the member is not in", tm.member, private.ID},
		{"an unknown id", tm.owner, "0190b5d6-0000-7000-8000-000000000000"},
		{"a malformed id", tm.owner, "not-a-uuid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := e.svc.ProjectAccess(ctx, tc.p, tc.project)
			wantKind(t, err, fault.KindNotFound, "")
		})
	}
	// A tenant admin sees every project of the tenant.
	if _, role, err := e.svc.ProjectAccess(ctx, tm.owner, private.ID); err != nil || role != identity.ProjectAdmin {
		t.Fatalf("owner's access = %v, %v", role, err)
	}
}

func TestProjectMembers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tm := newTeam(t, e)
	pr, err := e.svc.CreateProject(ctx, tm.owner, "shared")
	if err != nil {
		t.Fatal(err)
	}
	add := func(m identitysvc.NewMember) error { _, err := e.svc.AddMember(ctx, tm.owner, pr.ID, m); return err }
	byID := func(id string, role identity.ProjectRole) identitysvc.NewMember {
		return identitysvc.NewMember{UserID: id, Role: role}
	}
	wantKind(t, add(byID(tm.outsider.User.ID, identity.ProjectMember)), fault.KindNotFound, "")
	wantKind(t, add(byID("not-a-uuid", identity.ProjectMember)), fault.KindNotFound, "")
	// By email: only the tenant's own users; an outsider's email is as unknown as nobody's.
	for _, email := range []string{tm.outsider.User.Email, "nobody@example.com"} {
		wantKind(t, add(identitysvc.NewMember{Email: email, Role: identity.ProjectMember}), fault.KindNotFound, "")
	}
	wantField(t, add(identitysvc.NewMember{UserID: tm.member.User.ID, Email: tm.member.User.Email, Role: identity.ProjectMember}), "user_id")
	wantField(t, add(identitysvc.NewMember{Email: "not an email", Role: identity.ProjectMember}), "email")
	wantField(t, add(identitysvc.NewMember{Role: identity.ProjectMember}), "user_id")
	wantKind(t, e.svc.RemoveMember(ctx, tm.owner, pr.ID, tm.member.User.ID), fault.KindNotFound, "")

	// The member by their email, in another case and with spaces: the membership names them by id.
	m, err := e.svc.AddMember(ctx, tm.owner, pr.ID, identitysvc.NewMember{
		Email: " " + strings.ToUpper(tm.member.User.Email) + " ", Role: identity.ProjectViewer})
	if err != nil || m.UserID != tm.member.User.ID || m.ProjectID != pr.ID || m.Role != identity.ProjectViewer {
		t.Fatalf("AddMember by email = %+v, %v; want the member as viewer", m, err)
	}
	wantKind(t, add(byID(tm.member.User.ID, identity.ProjectMember)), fault.KindConflict, "already_member")
	// The member now sees the project, and may read but not manage its members.
	if _, role, err := e.svc.ProjectAccess(ctx, tm.member, pr.ID); err != nil || role != identity.ProjectViewer {
		t.Fatalf("member's access = %v, %v", role, err)
	}
	ms, err := e.svc.ListMembers(ctx, tm.member, pr.ID)
	if err != nil || len(ms) != 2 {
		t.Fatalf("ListMembers = %+v, %v; want owner and member", ms, err)
	}
	wantKind(t, e.svc.RemoveMember(ctx, tm.member, pr.ID, tm.owner.User.ID), fault.KindForbidden, "")
	if evs := e.outboxPayloads(event.ProjectMemberAdded, pr.ID); len(evs) != 1 || evs[0]["user_id"] != tm.member.User.ID {
		t.Fatalf("member_added events = %v", evs)
	}

	if err := e.svc.RemoveMember(ctx, tm.owner, pr.ID, tm.member.User.ID); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	if _, _, err := e.svc.ProjectAccess(ctx, tm.member, pr.ID); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("access after removal: %v; want NotFound", err)
	}
	if n := e.audits("project.member_remove", tm.owner.TenantID); n != 1 {
		t.Fatalf("%d member_remove audit rows", n)
	}
	// The creator is now the project's last member: the tenant owner may
	// not remove them (a project nobody belongs to is easy to lose).
	wantKind(t, e.svc.RemoveMember(ctx, tm.owner, pr.ID, tm.owner.User.ID), fault.KindConflict, identity.CodeLastProjectMember)
	if ms, err := e.svc.ListMembers(ctx, tm.owner, pr.ID); err != nil || len(ms) != 1 {
		t.Fatalf("members after refusing the last removal: %+v, %v", ms, err)
	}
	// Refused requests leave no trace.
	if n := e.audits("project.member_add", tm.owner.TenantID); n != 1 {
		t.Fatalf("%d member_add audit rows; want only the successful one", n)
	}
	if n := e.audits("project.member_remove", tm.owner.TenantID); n != 1 {
		t.Fatalf("%d member_remove audit rows; want only the successful one", n)
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	c := claims("cli")
	p, err := e.svc.Resolve(ctx, c)
	if err != nil {
		t.Fatalf("Resolve of an unknown subject: %v", err)
	}
	if p.TenantRole != identity.TenantOwner || e.count(`SELECT count(*) FROM users WHERE oidc_subject = $1`, c.Subject) != 1 {
		t.Fatalf("Resolve did not sign the user in: %+v", p)
	}
	// Known users resolve to the same principal, the role taken from the token.
	c.Roles = []string{"admin"}
	again, err := e.svc.Resolve(ctx, c)
	if err != nil || again.User.ID != p.User.ID || again.TenantID != p.TenantID || again.User.Role != identity.RoleAdmin {
		t.Fatalf("second Resolve = %+v, %v", again, err)
	}
	if n := e.count(`SELECT count(*) FROM tenants`); n != 1 {
		t.Fatalf("%d tenants", n)
	}
	_, err = e.svc.Resolve(ctx, identity.Claims{Issuer: issuer})
	wantKind(t, err, fault.KindUnauthenticated, fault.CodeTokenInvalid)
}

func TestSuspendedUserIsForbidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	c := claims("suspended")
	p := e.signIn(c)
	if _, err := e.db.Pool.Exec(ctx, `UPDATE users SET status = 'suspended' WHERE id = $1`, p.User.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.SignIn(ctx, c)
	wantKind(t, err, fault.KindForbidden, "")
	_, err = e.svc.Resolve(ctx, c)
	wantKind(t, err, fault.KindForbidden, "")
	// Signing in again does not lift the suspension.
	if n := e.count(`SELECT count(*) FROM users WHERE id = $1 AND status = 'suspended'`, p.User.ID); n != 1 {
		t.Fatal("the suspension was lifted by a sign-in")
	}
}

// TestInputsFollowTheTextPolicy: every text input of the identity use cases
// is held to core/text whatever host calls them, before any store sees it
// (a NUL used to reach Postgres and come back as a 500).
func TestInputsFollowTheTextPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	tm := newTeam(t, e)
	pr, err := e.svc.CreateProject(ctx, tm.owner, "text-policy")
	if err != nil {
		t.Fatal(err)
	}
	projects := e.count(`SELECT count(*) FROM projects WHERE tenant_id = $1`, tm.owner.TenantID)
	bad := map[string]string{"NUL": "a\x00b", "ESC": "a\x1b[2Jb", "BEL": "a\ab", "bidi override": "evil\u202etxt",
		"invalid UTF-8": "a\xffb", "C1 control": "a\u0085b"}
	for name, v := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := e.svc.CreateProject(ctx, tm.owner, v)
			wantField(t, err, "name")
			wantField(t, e.svc.Invite(ctx, tm.owner, "x"+v+"@example.com", identity.TenantMember), "email")
			_, err = e.svc.AddMember(ctx, tm.owner, pr.ID, identitysvc.NewMember{UserID: v, Role: identity.ProjectMember})
			wantField(t, err, "user_id")
			_, err = e.svc.AddMember(ctx, tm.owner, pr.ID, identitysvc.NewMember{Email: "x" + v + "@example.com", Role: identity.ProjectMember})
			wantField(t, err, "email")
			wantField(t, e.svc.RemoveMember(ctx, tm.owner, pr.ID, v), "user_id")
		})
	}
	_, err = e.svc.CreateProject(ctx, tm.owner, strings.Repeat("n", identity.NameMaxLength+1))
	wantField(t, err, "name")
	if n := e.count(`SELECT count(*) FROM projects WHERE tenant_id = $1`, tm.owner.TenantID); n != projects {
		t.Fatalf("%d projects after refused creations, want %d", n, projects)
	}
	if n := e.count(`SELECT count(*) FROM tenant_invitations WHERE tenant_id = $1`, tm.owner.TenantID); n != 0 {
		t.Fatalf("%d invitations after refused ones", n)
	}
}

// TestSignInCleansTheProfile: the identity provider's name and email are
// kept, cleaned to the text policy, rather than refused.
func TestSignInCleansTheProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := claims("mallory")
	c.Name = "Mal\u202Elory\x1b[31m" + strings.Repeat("y", 300)
	p := e.signIn(c)
	var name, tenant string
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT u.display_name, t.name FROM users u, tenants t
		WHERE u.id = $1 AND t.id = $2`, p.User.ID, p.TenantID).Scan(&name, &tenant); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{name, tenant, p.User.DisplayName} {
		if strings.ContainsAny(s, "\u202e\x1b") || !strings.HasPrefix(s, "Mallory[31m") {
			t.Fatalf("stored %q: the profile was not cleaned", s)
		}
	}
	if n := len([]rune(name)); n != identity.DisplayNameMaxLength {
		t.Fatalf("display name of %d characters, want it cut to %d", n, identity.DisplayNameMaxLength)
	}
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	fe := fault.From(err)
	if err == nil || fe.Kind != fault.KindInvalid || fe.Field != field {
		t.Fatalf("err = %v, want invalid on field %s", err, field)
	}
}
