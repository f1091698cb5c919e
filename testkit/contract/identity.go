package contract

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/ports"
)

// IdentityStores are the identity ports under test and the transaction
// runner they join.
type IdentityStores struct {
	Tx       ports.TxRunner
	Users    ports.UserStore
	Tenants  ports.TenantStore
	Projects ports.ProjectStore
	Members  ports.MembershipStore
}

// RunIdentityStoresSuite runs the contract of the identity stores. Stores
// made by newStores may be shared: every case uses ids of its own.
func RunIdentityStoresSuite(t *testing.T, newStores func(t *testing.T) IdentityStores) {
	t.Helper()
	ctx := context.Background()
	// Times carry microseconds only: what Postgres keeps.
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

	t.Run("UserUpsertCreatesThenUpdatesProfileOnly", func(t *testing.T) {
		t.Parallel()
		s := newStores(t)
		in := newUser(t0)
		u, created, err := s.Users.UpsertByIdentity(ctx, in)
		if err != nil || !created {
			t.Fatalf("first upsert: created=%v err=%v; want created", created, err)
		}
		if u.ID != in.ID || u.Email != in.Email || u.Role != identity.RoleUser || u.Status != identity.UserActive || !u.CreatedAt.Equal(t0) {
			t.Fatalf("first upsert returned %+v; want %+v", u, in)
		}
		again := in
		again.ID = newID() // a fresh id is minted per sign-in; the stored one must win
		again.Email, again.DisplayName, again.Role = "new@example.com", "New Name", identity.RoleAdmin
		again.Status = identity.UserSuspended // status is not the token's to change
		again.CreatedAt, again.UpdatedAt = t0.Add(time.Hour), t0.Add(time.Hour)
		u2, created, err := s.Users.UpsertByIdentity(ctx, again)
		if err != nil || created {
			t.Fatalf("second upsert: created=%v err=%v; want an update", created, err)
		}
		if u2.ID != in.ID || u2.Email != "new@example.com" || u2.DisplayName != "New Name" || u2.Role != identity.RoleAdmin {
			t.Fatalf("second upsert returned %+v", u2)
		}
		if u2.Status != identity.UserActive || !u2.CreatedAt.Equal(t0) || !u2.UpdatedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("second upsert: status %q created %v updated %v; want active, %v, %v",
				u2.Status, u2.CreatedAt, u2.UpdatedAt, t0, t0.Add(time.Hour))
		}
		// An unchanged profile leaves updated_at alone.
		again.UpdatedAt = t0.Add(2 * time.Hour)
		u3, _, err := s.Users.UpsertByIdentity(ctx, again)
		if err != nil || !u3.UpdatedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("no-op upsert moved updated_at to %v (err %v)", u3.UpdatedAt, err)
		}
		got, err := s.Users.GetByIdentity(ctx, in.Issuer, in.Subject)
		if err != nil || got.ID != in.ID || got.Email != "new@example.com" {
			t.Fatalf("GetByIdentity = %+v, %v", got, err)
		}
		got, err = s.Users.Get(ctx, in.ID)
		if err != nil || got.Subject != in.Subject {
			t.Fatalf("Get = %+v, %v", got, err)
		}
	})

	t.Run("UserUpsertRaceOf20MakesOneRow", func(t *testing.T) {
		t.Parallel()
		s := newStores(t)
		base := newUser(t0)
		const n = 20
		ids := make([]string, n)
		created := make([]bool, n)
		errs := make([]error, n)
		race(n, func(i int) {
			u := base
			u.ID = newID()
			var out identity.User
			out, created[i], errs[i] = s.Users.UpsertByIdentity(ctx, u)
			ids[i] = out.ID
		})
		winners := 0
		for i := 0; i < n; i++ {
			if errs[i] != nil {
				t.Fatalf("racer %d: %v", i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("racers got different users: %s and %s", ids[0], ids[i])
			}
			if created[i] {
				winners++
			}
		}
		if winners != 1 {
			t.Fatalf("%d racers report creating the user; want exactly 1", winners)
		}
	})

	t.Run("NotFoundForUnknownAndMalformedIDs", func(t *testing.T) {
		t.Parallel()
		s := newStores(t)
		for _, id := range []string{newID(), "not-a-uuid", "", "'; DROP TABLE users; --", strings.Repeat("a", 36)} {
			checks := map[string]error{}
			_, checks["Users.Get"] = s.Users.Get(ctx, id)
			_, checks["Tenants.GetTenant"] = s.Tenants.GetTenant(ctx, id)
			_, checks["Projects.GetProject"] = s.Projects.GetProject(ctx, id)
			_, checks["Members.TenantMembershipOf"] = s.Members.TenantMembershipOf(ctx, id)
			_, checks["Members.TenantMemberByEmail"] = s.Members.TenantMemberByEmail(ctx, id, "nobody@nowhere.invalid")
			_, checks["Members.ProjectMembership"] = s.Members.ProjectMembership(ctx, id, id)
			checks["Members.RemoveProjectMember"] = s.Members.RemoveProjectMember(ctx, id, id)
			_, checks["Users.GetByIdentity"] = s.Users.GetByIdentity(ctx, "https://issuer.invalid", id)
			_, checks["Members.TakeInvitation"] = s.Members.TakeInvitation(ctx, id+"@nowhere.invalid")
			for name, err := range checks {
				if !fault.IsKind(err, fault.KindNotFound) {
					t.Errorf("%s(%q) = %v; want NotFound", name, id, err)
				}
			}
			if ps, err := s.Projects.ListProjectsForUser(ctx, id); err != nil || len(ps) != 0 {
				t.Errorf("ListProjectsForUser(%q) = %v, %v; want empty", id, ps, err)
			}
			if ps, err := s.Projects.ListProjectsByTenant(ctx, id); err != nil || len(ps) != 0 {
				t.Errorf("ListProjectsByTenant(%q) = %v, %v; want empty", id, ps, err)
			}
			if ms, err := s.Members.ListProjectMembers(ctx, id); err != nil || len(ms) != 0 {
				t.Errorf("ListProjectMembers(%q) = %v, %v; want empty", id, ms, err)
			}
		}
	})

	t.Run("TenantsAndSlugs", func(t *testing.T) {
		t.Parallel()
		s := newStores(t)
		tn := newTenant(t, s, t0)
		got, err := s.Tenants.GetTenant(ctx, tn.ID)
		if err != nil || got.Name != tn.Name || got.Slug != tn.Slug || !got.CreatedAt.Equal(t0) {
			t.Fatalf("GetTenant = %+v, %v; want %+v", got, err, tn)
		}
		dup := identity.Tenant{ID: newID(), Name: "other", Slug: tn.Slug, CreatedAt: t0}
		assertConflict(t, s.Tenants.CreateTenant(ctx, dup), "tenant_slug_taken")
	})

	t.Run("Projects", func(t *testing.T) {
		t.Parallel()
		s := newStores(t)
		tn, other := newTenant(t, s, t0), newTenant(t, s, t0)
		// Created out of order: lists are by created_at, not by insertion.
		late := identity.Project{ID: newID(), TenantID: tn.ID, Name: "late", CreatedAt: t0.Add(2 * time.Minute)}
		early := identity.Project{ID: newID(), TenantID: tn.ID, Name: "early", IsDefault: true, CreatedAt: t0.Add(time.Minute)}
		for _, p := range []identity.Project{late, early} {
			if err := s.Projects.CreateProject(ctx, p); err != nil {
				t.Fatalf("CreateProject(%s): %v", p.Name, err)
			}
		}
		got, err := s.Projects.GetProject(ctx, early.ID)
		if err != nil || got.TenantID != tn.ID || got.Name != "early" || !got.IsDefault || !got.CreatedAt.Equal(early.CreatedAt) {
			t.Fatalf("GetProject = %+v, %v", got, err)
		}
		assertConflict(t, s.Projects.CreateProject(ctx, identity.Project{ID: newID(), TenantID: tn.ID, Name: "late", CreatedAt: t0}), "project_name_taken")
		// Names are unique per tenant only.
		if err := s.Projects.CreateProject(ctx, identity.Project{ID: newID(), TenantID: other.ID, Name: "late", CreatedAt: t0}); err != nil {
			t.Fatalf("same name in another tenant: %v", err)
		}
		if err := s.Projects.CreateProject(ctx, identity.Project{ID: newID(), TenantID: newID(), Name: "x", CreatedAt: t0}); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("project of an unknown tenant: %v; want NotFound", err)
		}
		list, err := s.Projects.ListProjectsByTenant(ctx, tn.ID)
		if err != nil || projectNames(list) != "early,late" {
			t.Fatalf("ListProjectsByTenant = %s, %v; want early,late", projectNames(list), err)
		}
		u := newStoredUser(t, s, t0)
		for _, p := range []identity.Project{late, early} {
			if err := s.Members.AddProjectMember(ctx, identity.ProjectMembership{ProjectID: p.ID, UserID: u.ID, Role: identity.ProjectMember, CreatedAt: t0}); err != nil {
				t.Fatal(err)
			}
		}
		mine, err := s.Projects.ListProjectsForUser(ctx, u.ID)
		if err != nil || projectNames(mine) != "early,late" {
			t.Fatalf("ListProjectsForUser = %s, %v; want early,late", projectNames(mine), err)
		}
	})

	t.Run("Memberships", func(t *testing.T) {
		t.Parallel()
		s := newStores(t)
		tn, other := newTenant(t, s, t0), newTenant(t, s, t0)
		u, v := newStoredUser(t, s, t0), newStoredUser(t, s, t0)
		if err := s.Members.AddTenantMember(ctx, identity.TenantMembership{TenantID: tn.ID, UserID: u.ID, Role: identity.TenantOwner, CreatedAt: t0}); err != nil {
			t.Fatalf("AddTenantMember: %v", err)
		}
		m, err := s.Members.TenantMembershipOf(ctx, u.ID)
		if err != nil || m.TenantID != tn.ID || m.Role != identity.TenantOwner {
			t.Fatalf("TenantMembershipOf = %+v, %v", m, err)
		}
		// One tenant per user (MVP), whichever tenant the second one is.
		for _, tid := range []string{tn.ID, other.ID} {
			err := s.Members.AddTenantMember(ctx, identity.TenantMembership{TenantID: tid, UserID: u.ID, Role: identity.TenantMember, CreatedAt: t0})
			assertConflict(t, err, "already_in_tenant")
		}
		if err := s.Members.AddTenantMember(ctx, identity.TenantMembership{TenantID: tn.ID, UserID: newID(), Role: identity.TenantMember, CreatedAt: t0}); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("membership of an unknown user: %v; want NotFound", err)
		}
		if _, err := s.Members.TenantMembershipOf(ctx, v.ID); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("TenantMembershipOf a user without one: %v; want NotFound", err)
		}
		// By email: case-insensitive, within the tenant only; two of the
		// tenant's users with one email are ambiguous.
		if m, err := s.Members.TenantMemberByEmail(ctx, tn.ID, " "+strings.ToUpper(u.Email)+" "); err != nil || m.UserID != u.ID || m.Role != identity.TenantOwner {
			t.Fatalf("TenantMemberByEmail(%q) = %+v, %v; want u's owner membership", u.Email, m, err)
		}
		for _, c := range []struct{ tenant, email string }{{other.ID, u.Email}, {tn.ID, v.Email}, {tn.ID, "nobody@example.invalid"}} {
			if _, err := s.Members.TenantMemberByEmail(ctx, c.tenant, c.email); !fault.IsKind(err, fault.KindNotFound) {
				t.Fatalf("TenantMemberByEmail(%s, %s) = %v; want NotFound (not in that tenant)", c.tenant, c.email, err)
			}
		}
		twin := newUser(t0)
		twin.Email = u.Email
		twin, _, err = s.Users.UpsertByIdentity(ctx, twin)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Members.AddTenantMember(ctx, identity.TenantMembership{TenantID: tn.ID, UserID: twin.ID, Role: identity.TenantMember, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		_, err = s.Members.TenantMemberByEmail(ctx, tn.ID, u.Email)
		assertConflict(t, err, "ambiguous_email")

		p := identity.Project{ID: newID(), TenantID: tn.ID, Name: "p", CreatedAt: t0}
		if err := s.Projects.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
		add := func(userID string, role identity.ProjectRole, at time.Time) error {
			return s.Members.AddProjectMember(ctx, identity.ProjectMembership{ProjectID: p.ID, UserID: userID, Role: role, CreatedAt: at})
		}
		if err := add(v.ID, identity.ProjectViewer, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := add(u.ID, identity.ProjectAdmin, t0); err != nil {
			t.Fatal(err)
		}
		assertConflict(t, add(u.ID, identity.ProjectMember, t0), "already_member")
		if err := add(u.ID, "owner", t0); !fault.IsKind(err, fault.KindInvalid) {
			t.Fatalf("invalid project role: %v; want Invalid", err)
		}
		if err := s.Members.AddProjectMember(ctx, identity.ProjectMembership{ProjectID: newID(), UserID: u.ID, Role: identity.ProjectMember, CreatedAt: t0}); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("membership of an unknown project: %v; want NotFound", err)
		}
		pm, err := s.Members.ProjectMembership(ctx, p.ID, v.ID)
		if err != nil || pm.Role != identity.ProjectViewer || pm.UserID != v.ID {
			t.Fatalf("ProjectMembership = %+v, %v", pm, err)
		}
		ms, err := s.Members.ListProjectMembers(ctx, p.ID)
		if err != nil || len(ms) != 2 || ms[0].UserID != u.ID || ms[1].UserID != v.ID {
			t.Fatalf("ListProjectMembers = %+v, %v; want u then v (joining order)", ms, err)
		}
		if err := s.Members.RemoveProjectMember(ctx, p.ID, v.ID); err != nil {
			t.Fatalf("RemoveProjectMember: %v", err)
		}
		if err := s.Members.RemoveProjectMember(ctx, p.ID, v.ID); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("removing a non-member: %v; want NotFound", err)
		}
		if _, err := s.Members.ProjectMembership(ctx, p.ID, v.ID); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("membership after removal: %v; want NotFound", err)
		}
		assertConflict(t, s.Members.RemoveProjectMember(ctx, p.ID, u.ID), identity.CodeLastProjectMember)
		if _, err := s.Members.ProjectMembership(ctx, p.ID, u.ID); err != nil {
			t.Fatalf("the last member after a refused removal: %v", err)
		}
	})

	t.Run("RemovingTheLastTwoMembersAtOnceKeepsOne", func(t *testing.T) {
		t.Parallel()
		s := newStores(t)
		tn := newTenant(t, s, t0)
		for round := 0; round < 5; round++ {
			p := identity.Project{ID: newID(), TenantID: tn.ID, Name: uniqueKey("race"), CreatedAt: t0}
			if err := s.Projects.CreateProject(ctx, p); err != nil {
				t.Fatal(err)
			}
			users := []identity.User{newStoredUser(t, s, t0), newStoredUser(t, s, t0)}
			for _, u := range users {
				if err := s.Members.AddProjectMember(ctx, identity.ProjectMembership{ProjectID: p.ID, UserID: u.ID,
					Role: identity.ProjectMember, CreatedAt: t0}); err != nil {
					t.Fatal(err)
				}
			}
			errs := make([]error, 2)
			race(2, func(i int) { errs[i] = s.Members.RemoveProjectMember(ctx, p.ID, users[i].ID) })
			won, refused := 0, 0
			for i, err := range errs {
				switch fe := fault.From(err); {
				case err == nil:
					won++
				case fe.Code == identity.CodeLastProjectMember:
					refused++
				default:
					t.Fatalf("racer %d: %v", i, err)
				}
			}
			ms, err := s.Members.ListProjectMembers(ctx, p.ID)
			if won != 1 || refused != 1 || err != nil || len(ms) != 1 {
				t.Fatalf("round %d: %d removed, %d refused, %d members left (%v); want 1, 1, 1", round, won, refused, len(ms), err)
			}
		}
	})

	t.Run("Invitations", func(t *testing.T) {
		t.Parallel()
		s := newStores(t)
		tn := newTenant(t, s, t0)
		inviter := newStoredUser(t, s, t0)
		email := strings.ToLower(uniqueKey("invitee")) + "@example.com"
		inv := identity.Invitation{TenantID: tn.ID, Email: email, Role: identity.TenantAdmin, InvitedBy: inviter.ID, CreatedAt: t0}
		if err := s.Members.CreateInvitation(ctx, inv); err != nil {
			t.Fatalf("CreateInvitation: %v", err)
		}
		// Emails compare case-insensitively.
		dup := inv
		dup.Email = strings.ToUpper(email)
		assertConflict(t, s.Members.CreateInvitation(ctx, dup), "already_invited")
		got, err := s.Members.TakeInvitation(ctx, strings.ToUpper(email))
		if err != nil || got.TenantID != tn.ID || got.Email != email || got.Role != identity.TenantAdmin || got.InvitedBy != inviter.ID || !got.CreatedAt.Equal(t0) {
			t.Fatalf("TakeInvitation = %+v, %v; want %+v", got, err, inv)
		}
		if _, err := s.Members.TakeInvitation(ctx, email); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("second TakeInvitation: %v; want NotFound", err)
		}
		// Taken means gone: the email may be invited again.
		if err := s.Members.CreateInvitation(ctx, inv); err != nil {
			t.Fatalf("re-invite after take: %v", err)
		}
	})

	t.Run("TakeInvitationRaceOf20OneWinner", func(t *testing.T) {
		t.Parallel()
		s := newStores(t)
		tn := newTenant(t, s, t0)
		email := strings.ToLower(uniqueKey("race")) + "@example.com"
		if err := s.Members.CreateInvitation(ctx, identity.Invitation{TenantID: tn.ID, Email: email, Role: identity.TenantMember, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		const n = 20
		errs := make([]error, n)
		race(n, func(i int) { _, errs[i] = s.Members.TakeInvitation(ctx, email) })
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !fault.IsKind(err, fault.KindNotFound):
				t.Fatalf("racer %d: %v", i, err)
			}
		}
		if won != 1 {
			t.Fatalf("%d racers took the invitation; want exactly 1", won)
		}
	})

	t.Run("RollbackLeavesNothing", func(t *testing.T) {
		t.Parallel()
		s := newStores(t)
		boom := errors.New("boom")
		tn := identity.Tenant{ID: newID(), Name: "rolled back", Slug: uniqueKey("rb"), CreatedAt: t0}
		u := newUser(t0)
		err := s.Tx.InTx(ctx, func(ctx context.Context) error {
			if _, _, err := s.Users.UpsertByIdentity(ctx, u); err != nil {
				return err
			}
			if err := s.Tenants.CreateTenant(ctx, tn); err != nil {
				return err
			}
			if err := s.Members.AddTenantMember(ctx, identity.TenantMembership{TenantID: tn.ID, UserID: u.ID, Role: identity.TenantOwner, CreatedAt: t0}); err != nil {
				return err
			}
			// Visible inside the transaction...
			if _, err := s.Members.TenantMembershipOf(ctx, u.ID); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v; want the fn's error", err)
		}
		// ...and gone after it.
		if _, err := s.Users.Get(ctx, u.ID); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("user after rollback: %v; want NotFound", err)
		}
		if _, err := s.Tenants.GetTenant(ctx, tn.ID); !fault.IsKind(err, fault.KindNotFound) {
			t.Fatalf("tenant after rollback: %v; want NotFound", err)
		}
	})
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func newUser(at time.Time) identity.User {
	sub := uniqueKey("sub")
	return identity.User{ID: newID(), Issuer: "https://issuer.example.com", Subject: sub,
		Email: sub + "@example.com", DisplayName: "User " + sub, Role: identity.RoleUser,
		Status: identity.UserActive, CreatedAt: at, UpdatedAt: at}
}

func newStoredUser(t *testing.T, s IdentityStores, at time.Time) identity.User {
	t.Helper()
	u, _, err := s.Users.UpsertByIdentity(context.Background(), newUser(at))
	if err != nil {
		t.Fatalf("UpsertByIdentity: %v", err)
	}
	return u
}

func newTenant(t *testing.T, s IdentityStores, at time.Time) identity.Tenant {
	t.Helper()
	tn := identity.Tenant{ID: newID(), Name: "Tenant", Slug: uniqueKey("tenant"), CreatedAt: at}
	if err := s.Tenants.CreateTenant(context.Background(), tn); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	return tn
}

func projectNames(ps []identity.Project) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return strings.Join(names, ",")
}

func assertConflict(t *testing.T, err error, code fault.Code) {
	t.Helper()
	if fe := fault.From(err); err == nil || fe.Kind != fault.KindConflict || fe.Code != code {
		t.Fatalf("err = %v; want Conflict %s", err, code)
	}
}

// race runs fn(0..n-1) concurrently, released together.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}
