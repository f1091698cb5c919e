package httphost

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/terminal"
	"github.com/gpuaas/gpuaas/core/terminal/terminalsvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
)

// termAllocations serves AllocationStore.Get from memory (the only read
// Mint makes); other methods panic through the nil embedded interface.
type termAllocations struct {
	ports.AllocationStore
	mu   sync.Mutex
	byID map[string]allocation.Allocation
}

func (s *termAllocations) Get(_ context.Context, tenantID, id string) (allocation.Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byID[id]
	if !ok || (tenantID != "" && a.TenantID != tenantID) {
		return allocation.Allocation{}, fault.NotFound("allocation", id)
	}
	return a, nil
}

func TestCreateTerminalToken(t *testing.T) {
	allocs := &termAllocations{byID: map[string]allocation.Allocation{}}
	var svc *terminalsvc.Service
	h := newHarness(t, func(_ *Config, d *Deps) {
		var err error
		svc, err = terminalsvc.New(terminalsvc.Deps{Allocations: allocs, Tokens: inproc.NewTokenStore(d.Clock),
			Audit: d.Audit, Clock: d.Clock, IDs: &fakes.IDs{}})
		if err != nil {
			t.Fatal(err)
		}
		d.Terminal = svc
	})
	alice, bob := h.token("alice"), h.token("bob")
	am, bm := h.me(alice), h.me(bob)
	project := am.defaultProject(t)
	put := func(state allocation.State) allocation.Allocation {
		a := allocation.Allocation{ID: uuid.NewString(), TenantID: am.Tenant.ID, ProjectID: project, UserID: am.User.ID,
			NodeID: uuid.NewString(), State: state}
		allocs.mu.Lock()
		allocs.byID[a.ID] = a
		allocs.mu.Unlock()
		return a
	}
	active, provisioning := put(allocation.Active), put(allocation.Provisioning)
	path := func(id string) string { return "/api/v1/allocations/" + id + "/terminal-token" }
	scoped := func(p string) map[string]string { return map[string]string{"X-Project-ID": p} }

	r := h.do(req{method: "POST", path: path(active.ID), bearer: alice, header: scoped(project)})
	if r.status != http.StatusCreated {
		t.Fatalf("mint: %d %s", r.status, r.body)
	}
	var tok struct {
		Token         string    `json:"token"`
		ExpiresAt     time.Time `json:"expires_at"`
		WebsocketPath string    `json:"websocket_path"`
		Subprotocol   string    `json:"subprotocol"`
	}
	r.json(t, &tok)
	if !terminal.WellFormed(tok.Token) || !tok.ExpiresAt.Equal(h.clock.Now().Add(300*time.Second)) ||
		tok.WebsocketPath != "/ws/terminal/"+active.ID || tok.Subprotocol != "gpuaas.terminal.v1" {
		t.Fatalf("token response %+v", tok)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}
	if _, err := svc.Consume(context.Background(), tok.Token, active.ID); err != nil {
		t.Fatalf("the minted token does not open the terminal: %v", err)
	}

	for _, tc := range []struct {
		name   string
		bearer string
		header map[string]string
		id     string
		status int
		code   string
	}{
		{"another tenant's allocation", bob, scoped(bm.defaultProject(t)), active.ID, 404, "not_found"},
		{"another tenant's project header", bob, scoped(project), active.ID, 404, "not_found"},
		{"no project", alice, nil, active.ID, 400, "project_required"},
		{"unknown allocation", alice, scoped(project), uuid.NewString(), 404, "not_found"},
		{"not active", alice, scoped(project), provisioning.ID, 409, "allocation_not_active"},
		{"no access token", "", scoped(project), active.ID, 401, "token_missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(req{method: "POST", path: path(tc.id), bearer: tc.bearer, header: tc.header})
			if r.status != tc.status || r.errBody(t).Code != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
		})
	}
}

func TestCreateTerminalTokenDisabled(t *testing.T) {
	h := newHarness(t)
	alice := h.token("alice")
	project := h.me(alice).defaultProject(t)
	r := h.do(req{method: "POST", path: "/api/v1/allocations/" + uuid.NewString() + "/terminal-token", bearer: alice,
		header: map[string]string{"X-Project-ID": project}})
	if r.status != http.StatusServiceUnavailable || r.errBody(t).Code != "feature_disabled" {
		t.Fatalf("got %d %s, want 503 feature_disabled", r.status, r.body)
	}
}
