package httphost

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/ports"
)

// memStore is an in-test stand-in for the identity, audit, outbox, policy
// and idempotency stores, so the host's unit tests run without Postgres.
// The integration test runs the same flows against the real stores.
type memStore struct {
	mu          sync.Mutex
	users       map[string]identity.User
	tenants     map[string]identity.Tenant
	projects    map[string]identity.Project
	tenantMem   map[string]identity.TenantMembership  // by user id
	projectMem  map[string]identity.ProjectMembership // by project|user
	invitations map[string]identity.Invitation        // by email
	auditEvents []audit.Event
	policies    map[string]string
	policyErr   error
	idem        map[string]*idemEntry // by scope|key
	failCreate  error                 // CreateProject returns it when set
	// holdCreate, when set, makes CreateProject signal it and then wait for
	// the request's context to end, as a query does when its client goes away.
	holdCreate chan struct{}
	commitErr  error // InTx answers it after running everything (see InTx)
}

type idemEntry struct {
	fp        string
	done      bool
	committed bool
	resp      ports.StoredResponse
	begins    int
	complete  int
}

var (
	_ ports.UserStore        = (*memStore)(nil)
	_ ports.TenantStore      = (*memStore)(nil)
	_ ports.ProjectStore     = (*memStore)(nil)
	_ ports.MembershipStore  = (*memStore)(nil)
	_ ports.AuditLog         = (*memStore)(nil)
	_ ports.Outbox           = (*memStore)(nil)
	_ ports.TxRunner         = (*memStore)(nil)
	_ ports.PolicyStore      = (*memStore)(nil)
	_ ports.IdempotencyStore = (*memStore)(nil)
)

func newMemStore() *memStore {
	return &memStore{users: map[string]identity.User{}, tenants: map[string]identity.Tenant{},
		projects: map[string]identity.Project{}, tenantMem: map[string]identity.TenantMembership{},
		projectMem: map[string]identity.ProjectMembership{}, invitations: map[string]identity.Invitation{},
		policies: map[string]string{}, idem: map[string]*idemEntry{}}
}

// InTx runs fn directly: the stand-in has no rollback, which the host's
// tests do not need; the work ctx carries runs after fn succeeds (what it
// writes is kept only with fn's writes). commitErr, when set, is what the
// commit then answers although everything was kept — a connection lost
// while the COMMIT was under way.
func (m *memStore) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := fn(ctx); err != nil {
		return err
	}
	if work := ports.TxWork(ctx); work != nil {
		if err := work(ctx); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.commitErr
}

func (m *memStore) UpsertByIdentity(_ context.Context, u identity.User) (identity.User, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, ex := range m.users {
		if ex.Issuer == u.Issuer && ex.Subject == u.Subject {
			ex.Email, ex.DisplayName, ex.Role, ex.UpdatedAt = u.Email, u.DisplayName, u.Role, u.UpdatedAt
			m.users[id] = ex
			return ex, false, nil
		}
	}
	m.users[u.ID] = u
	return u, true, nil
}

func (m *memStore) Get(_ context.Context, id string) (identity.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.users[id]; ok {
		return u, nil
	}
	return identity.User{}, fault.NotFound("user", "")
}

func (m *memStore) GetByIdentity(_ context.Context, iss, sub string) (identity.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.users {
		if u.Issuer == iss && u.Subject == sub {
			return u, nil
		}
	}
	return identity.User{}, fault.NotFound("user", "")
}

func (m *memStore) CreateTenant(_ context.Context, t identity.Tenant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tenants[t.ID] = t
	return nil
}

func (m *memStore) GetTenant(_ context.Context, id string) (identity.Tenant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tenants[id]; ok {
		return t, nil
	}
	return identity.Tenant{}, fault.NotFound("tenant", "")
}

func (m *memStore) CreateProject(ctx context.Context, p identity.Project) error {
	m.mu.Lock()
	if hold := m.holdCreate; hold != nil {
		m.mu.Unlock()
		close(hold)
		<-ctx.Done()
		return fmt.Errorf("insert project: %w", ctx.Err())
	}
	defer m.mu.Unlock()
	if m.failCreate != nil {
		return m.failCreate
	}
	for _, ex := range m.projects {
		if ex.TenantID == p.TenantID && ex.Name == p.Name {
			return fault.Conflict("", "duplicate project")
		}
	}
	m.projects[p.ID] = p
	return nil
}

func (m *memStore) GetProject(_ context.Context, id string) (identity.Project, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.projects[id]; ok {
		return p, nil
	}
	return identity.Project{}, fault.NotFound("project", "")
}

func (m *memStore) ListProjectsForUser(_ context.Context, userID string) ([]identity.Project, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []identity.Project
	for _, pm := range m.projectMem {
		if pm.UserID == userID {
			out = append(out, m.projects[pm.ProjectID])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memStore) ListProjectsByTenant(_ context.Context, tenantID string) ([]identity.Project, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []identity.Project
	for _, p := range m.projects {
		if p.TenantID == tenantID {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memStore) AddTenantMember(_ context.Context, tm identity.TenantMembership) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tenantMem[tm.UserID] = tm
	return nil
}

func (m *memStore) TenantMembershipOf(_ context.Context, userID string) (identity.TenantMembership, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if tm, ok := m.tenantMem[userID]; ok {
		return tm, nil
	}
	return identity.TenantMembership{}, fault.NotFound("tenant membership", "")
}

func (m *memStore) TenantMemberByEmail(_ context.Context, tenantID, email string) (identity.TenantMembership, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var found []identity.TenantMembership
	for _, tm := range m.tenantMem {
		if u, ok := m.users[tm.UserID]; ok && tm.TenantID == tenantID && strings.EqualFold(u.Email, strings.TrimSpace(email)) {
			found = append(found, tm)
		}
	}
	switch len(found) {
	case 0:
		return identity.TenantMembership{}, fault.NotFound("user", "")
	case 1:
		return found[0], nil
	}
	return identity.TenantMembership{}, fault.Conflict("ambiguous_email", "more than one user of the organisation has this email")
}

func (m *memStore) AddProjectMember(_ context.Context, pm identity.ProjectMembership) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := pm.ProjectID + "|" + pm.UserID
	if _, ok := m.projectMem[k]; ok {
		return fault.Conflict("", "already a member")
	}
	m.projectMem[k] = pm
	return nil
}

func (m *memStore) RemoveProjectMember(_ context.Context, projectID, userID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := projectID + "|" + userID
	if _, ok := m.projectMem[k]; !ok {
		return fault.NotFound("project member", "")
	}
	others := false
	for other := range m.projectMem {
		if other != k && strings.HasPrefix(other, projectID+"|") {
			others = true
		}
	}
	if !others {
		return identity.ErrLastProjectMember()
	}
	delete(m.projectMem, k)
	return nil
}

func (m *memStore) ProjectMembership(_ context.Context, projectID, userID string) (identity.ProjectMembership, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pm, ok := m.projectMem[projectID+"|"+userID]; ok {
		return pm, nil
	}
	return identity.ProjectMembership{}, fault.NotFound("project member", "")
}

func (m *memStore) ListProjectMembers(_ context.Context, projectID string) ([]identity.ProjectMembership, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []identity.ProjectMembership
	for _, pm := range m.projectMem {
		if pm.ProjectID == projectID {
			out = append(out, pm)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out, nil
}

func (m *memStore) CreateInvitation(_ context.Context, inv identity.Invitation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.invitations[inv.Email]; ok {
		return fault.Conflict("", "already invited")
	}
	m.invitations[inv.Email] = inv
	return nil
}

func (m *memStore) TakeInvitation(_ context.Context, email string) (identity.Invitation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inv, ok := m.invitations[email]
	if !ok {
		return identity.Invitation{}, fault.NotFound("invitation", "")
	}
	delete(m.invitations, email)
	return inv, nil
}

func (m *memStore) Record(_ context.Context, e audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.auditEvents = append(m.auditEvents, e)
	return nil
}

func (m *memStore) List(_ context.Context, f audit.Filter) ([]audit.Event, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []audit.Event
	for _, e := range m.auditEvents {
		if (f.TenantID == "" || e.TenantID == f.TenantID) && (f.Action == "" || e.Action == f.Action) &&
			(f.ActorID == "" || e.ActorID == f.ActorID) {
			out = append(out, e)
		}
	}
	return out, "", nil
}

func (m *memStore) Append(context.Context, ...event.Envelope) error { return nil }

func (m *memStore) Values(_ context.Context, _ string) (policy.Values, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.policyErr != nil {
		return nil, m.policyErr
	}
	out := policy.Values{}
	for k, v := range m.policies {
		out[k] = v
	}
	return out, nil
}

func (m *memStore) Set(_ context.Context, _, key, value, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policies[key] = value
	return nil
}

func (m *memStore) setPolicy(k policy.Key, v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policies[k.Name] = v
}

func (m *memStore) Begin(_ context.Context, scope, key, fp string, _ time.Duration) (ports.IdempotencyState, ports.StoredResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.idem[scope+"|"+key]
	if !ok {
		m.idem[scope+"|"+key] = &idemEntry{fp: fp, begins: 1}
		return ports.IdempotencyNew, ports.StoredResponse{}, nil
	}
	e.begins++
	switch {
	case e.fp != fp:
		return ports.IdempotencyMismatch, ports.StoredResponse{}, nil
	case !e.done && e.committed:
		return ports.IdempotencyCommitted, ports.StoredResponse{}, nil
	case !e.done:
		return ports.IdempotencyInFlight, ports.StoredResponse{}, nil
	}
	return ports.IdempotencyReplay, e.resp, nil
}

func (m *memStore) Complete(_ context.Context, scope, key string, resp ports.StoredResponse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.idem[scope+"|"+key]
	if !ok {
		return errors.New("complete without begin")
	}
	e.done, e.resp = true, resp
	e.complete++
	return nil
}

func (m *memStore) MarkCommitted(_ context.Context, scope, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.idem[scope+"|"+key]; ok && !e.done {
		e.committed = true
	}
	return nil
}

func (m *memStore) Abandon(_ context.Context, scope, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.idem[scope+"|"+key]; ok && !e.done && !e.committed {
		delete(m.idem, scope+"|"+key)
	}
	return nil
}
