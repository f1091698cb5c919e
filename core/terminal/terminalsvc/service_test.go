package terminalsvc_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/redis"
	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/terminal"
	"github.com/gpuaas/gpuaas/core/terminal/terminalsvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// allocations is an in-memory ports.AllocationStore serving Get only (the
// only method the terminal reads). Unused methods panic through the nil
// embedded interface, so a use case that starts writing would show up here.
type allocations struct {
	ports.AllocationStore
	mu   sync.Mutex
	byID map[string]allocation.Allocation
}

func (s *allocations) put(a allocation.Allocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[a.ID] = a
}

func (s *allocations) Get(_ context.Context, tenantID, id string) (allocation.Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byID[id]
	if !ok || (tenantID != "" && a.TenantID != tenantID) {
		return allocation.Allocation{}, fault.NotFound("allocation", id)
	}
	return a, nil
}

type fixture struct {
	svc    *terminalsvc.Service
	clock  *fakes.Clock
	allocs *allocations
	tokens ports.TokenStore
	audit  ports.AuditLog
	// owner and their active allocation; a colleague in the same tenant;
	// a stranger in another tenant.
	owner, colleague, stranger identity.Principal
	active                     allocation.Allocation
}

func newFixture(t *testing.T, tokens func(ports.Clock) ports.TokenStore) *fixture {
	t.Helper()
	db := services.Postgres(t)
	f := &fixture{clock: fakes.NewClock(time.Time{}), allocs: &allocations{byID: map[string]allocation.Allocation{}},
		audit: postgres.NewAuditLog(db)}
	f.tokens = tokens(f.clock)
	svc, err := terminalsvc.New(terminalsvc.Deps{Allocations: f.allocs, Tokens: f.tokens, Audit: f.audit,
		Clock: f.clock, IDs: &fakes.IDs{}})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	tenant, other := uuid.NewString(), uuid.NewString()
	f.owner = identity.Principal{User: identity.User{ID: uuid.NewString()}, TenantID: tenant}
	f.colleague = identity.Principal{User: identity.User{ID: uuid.NewString()}, TenantID: tenant}
	f.stranger = identity.Principal{User: identity.User{ID: uuid.NewString()}, TenantID: other}
	f.active = f.allocation(allocation.Active)
	return f
}

func (f *fixture) allocation(state allocation.State) allocation.Allocation {
	a := allocation.Allocation{ID: uuid.NewString(), TenantID: f.owner.TenantID, ProjectID: uuid.NewString(),
		UserID: f.owner.User.ID, NodeID: uuid.NewString(), State: state}
	f.allocs.put(a)
	return a
}

func inprocTokens(c ports.Clock) ports.TokenStore { return inproc.NewTokenStore(c) }

func codeOf(err error) fault.Code {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}

func (f *fixture) auditRows(t *testing.T, action string, outcome audit.Outcome) []audit.Event {
	t.Helper()
	evs, _, err := f.audit.List(context.Background(), audit.Filter{Action: action, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, e := range evs {
		if e.Outcome == outcome {
			out = append(out, e)
		}
	}
	return out
}

func TestMint(t *testing.T) {
	f := newFixture(t, inprocTokens)
	ctx := context.Background()
	m, err := f.svc.Mint(ctx, f.owner, f.active.ProjectID, f.active.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if !terminal.WellFormed(m.Token) {
		t.Fatalf("token %q is not 256 bits of base64url", m.Token)
	}
	if want := f.clock.Now().Add(300 * time.Second); !m.ExpiresAt.Equal(want) {
		t.Fatalf("expires %v, want %v", m.ExpiresAt, want)
	}
	// The token itself is not a key in the store; its hash is.
	if _, err := f.tokens.Consume(ctx, m.Token); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("the raw token is a store key: %v", err)
	}
	raw, err := f.tokens.Consume(ctx, terminal.StoreKey(m.Token))
	if err != nil {
		t.Fatalf("grant not stored under the token's hash: %v", err)
	}
	g, err := terminal.DecodeGrant(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := terminal.Grant{UserID: f.owner.User.ID, TenantID: f.owner.TenantID, ProjectID: f.active.ProjectID,
		AllocationID: f.active.ID, NodeID: f.active.NodeID, SSHUser: nodetask.UsernameFor(f.active.ID), ExpiresAt: m.ExpiresAt,
		SessionID: m.SessionID}
	if m.Resume || !terminal.ValidSessionID(m.SessionID) {
		t.Fatalf("a token without session_id must open a new session with a fresh id: %+v", m)
	}
	if !g.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("grant expiry %v, want %v", g.ExpiresAt, want.ExpiresAt)
	}
	g.ExpiresAt = want.ExpiresAt
	if g != want {
		t.Fatalf("grant %+v, want %+v", g, want)
	}
	rows := f.auditRows(t, terminalsvc.ActionMint, audit.Success)
	if len(rows) != 1 || rows[0].ActorID != f.owner.User.ID || rows[0].TenantID != f.owner.TenantID {
		t.Fatalf("mint audit rows: %+v", rows)
	}
	// Expired after the TTL even if nobody used it. A token can resume the
	// session of the first one; a malformed session id is refused.
	m2, err := f.svc.Mint(ctx, f.owner, "", f.active.ID, m.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if !m2.Resume || m2.SessionID != m.SessionID {
		t.Fatalf("resume token %+v; want session %s resumed", m2, m.SessionID)
	}
	for _, bad := range []string{"short", "../../etc/passwd", "sess id with spaces", strings.Repeat("a", 65)} {
		if _, err := f.svc.Mint(ctx, f.owner, "", f.active.ID, bad); fault.From(err).Field != "session_id" {
			t.Fatalf("session id %q: %v; want 400 naming session_id", bad, err)
		}
	}
	f.clock.Advance(300 * time.Second)
	if _, err := f.tokens.Consume(ctx, terminal.StoreKey(m2.Token)); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("token outlived its 300 s TTL: %v", err)
	}
}

func TestMintRefusals(t *testing.T) {
	f := newFixture(t, inprocTokens)
	ctx := context.Background()
	provisioning := f.allocation(allocation.Provisioning)
	releasing := f.allocation(allocation.Releasing)
	released := f.allocation(allocation.Released)
	for _, tc := range []struct {
		name      string
		p         identity.Principal
		project   string
		id        string
		kind      fault.Kind
		code      fault.Code
		audited   bool
		detailKey string
	}{
		{"another tenant's allocation", f.stranger, "", f.active.ID, fault.KindNotFound, fault.CodeNotFound, false, ""},
		{"unknown allocation", f.owner, "", uuid.NewString(), fault.KindNotFound, fault.CodeNotFound, false, ""},
		{"empty id", f.owner, "", "", fault.KindNotFound, fault.CodeNotFound, false, ""},
		{"another project", f.owner, uuid.NewString(), f.active.ID, fault.KindNotFound, fault.CodeNotFound, false, ""},
		{"a colleague's allocation", f.colleague, "", f.active.ID, fault.KindForbidden, terminal.CodeNotOwner, true, ""},
		{"provisioning", f.owner, "", provisioning.ID, fault.KindConflict, terminal.CodeAllocationNotActive, true, "state"},
		{"releasing", f.owner, "", releasing.ID, fault.KindConflict, terminal.CodeAllocationNotActive, true, "state"},
		{"released", f.owner, "", released.ID, fault.KindConflict, terminal.CodeAllocationNotActive, true, "state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.auditRows(t, terminalsvc.ActionMint, audit.Denied))
			m, err := f.svc.Mint(ctx, tc.p, tc.project, tc.id, "")
			if err == nil || m.Token != "" {
				t.Fatalf("minted %+v, want refusal", m)
			}
			fe := fault.From(err)
			if fe.Kind != tc.kind || fe.Code != tc.code {
				t.Fatalf("got %s/%s (%v), want %s/%s", fe.Kind, fe.Code, err, tc.kind, tc.code)
			}
			if tc.detailKey != "" && fe.Details[tc.detailKey] == nil {
				t.Fatalf("refusal lacks detail %q: %+v", tc.detailKey, fe.Details)
			}
			after := len(f.auditRows(t, terminalsvc.ActionMint, audit.Denied))
			if tc.audited && after != before+1 {
				t.Fatalf("refusal not audited (%d → %d)", before, after)
			}
			if !tc.audited && after != before {
				// Not-found refusals name nothing the caller may see; they are
				// ordinary 404s like any other route's.
				t.Fatalf("unexpected audit row for a not-found refusal")
			}
		})
	}
	if rows := f.auditRows(t, terminalsvc.ActionMint, audit.Success); len(rows) != 0 {
		t.Fatalf("refusals wrote success rows: %+v", rows)
	}
}

func TestConsume(t *testing.T) {
	f := newFixture(t, inprocTokens)
	ctx := context.Background()
	mint := func() string {
		t.Helper()
		m, err := f.svc.Mint(ctx, f.owner, "", f.active.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		return m.Token
	}

	tok := mint()
	g, err := f.svc.Consume(ctx, tok, f.active.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.AllocationID != f.active.ID || g.NodeID != f.active.NodeID || g.UserID != f.owner.User.ID ||
		g.SSHUser != nodetask.UsernameFor(f.active.ID) {
		t.Fatalf("grant %+v", g)
	}
	if rows := f.auditRows(t, terminalsvc.ActionConsume, audit.Success); len(rows) != 1 || rows[0].ActorID != f.owner.User.ID {
		t.Fatalf("consume audit rows: %+v", rows)
	}

	other := f.allocation(allocation.Active)
	expired := mint()
	mismatched := mint()
	released := f.allocation(allocation.Active)
	mRel, err := f.svc.Mint(ctx, f.owner, "", released.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	released.State = allocation.Releasing
	f.allocs.put(released)

	for _, tc := range []struct {
		name  string
		token string
		alloc string
		setup func()
		code  fault.Code
		kind  fault.Kind
	}{
		{"used twice", tok, f.active.ID, nil, terminal.CodeTokenInvalid, fault.KindUnauthenticated},
		{"unknown", "A" + tok[1:], f.active.ID, nil, terminal.CodeTokenInvalid, fault.KindUnauthenticated},
		{"malformed", "not-a-token", f.active.ID, nil, terminal.CodeTokenInvalid, fault.KindUnauthenticated},
		{"empty", "", f.active.ID, nil, terminal.CodeTokenInvalid, fault.KindUnauthenticated},
		{"another allocation", mismatched, other.ID, nil, terminal.CodeTokenMismatch, fault.KindForbidden},
		{"mismatched token is burnt", mismatched, f.active.ID, nil, terminal.CodeTokenInvalid, fault.KindUnauthenticated},
		{"allocation released since mint", mRel.Token, released.ID, nil, terminal.CodeAllocationNotActive, fault.KindConflict},
		// Last: moving the clock expires every token minted above.
		{"after TTL", expired, f.active.ID, func() {
			f.clock.Advance(300 * time.Second)
		}, terminal.CodeTokenInvalid, fault.KindUnauthenticated},
	} {
		// Sequential on purpose: the clock moves in one case.
		before := len(f.auditRows(t, terminalsvc.ActionConsume, audit.Denied))
		if tc.setup != nil {
			tc.setup()
		}
		g, err := f.svc.Consume(ctx, tc.token, tc.alloc)
		fe := fault.From(err)
		if err == nil || fe.Code != tc.code || fe.Kind != tc.kind {
			t.Errorf("%s: got %+v, %v; want %s", tc.name, g, err, tc.code)
			continue
		}
		rows := f.auditRows(t, terminalsvc.ActionConsume, audit.Denied)
		if len(rows) != before+1 {
			t.Errorf("%s: refusal not audited", tc.name)
			continue
		}
		if r := rows[0]; r.Metadata["reason"] != string(tc.code) {
			t.Errorf("%s: audit reason %v, want %s", tc.name, r.Metadata["reason"], tc.code)
		}
		for _, r := range rows {
			for k, v := range r.Metadata {
				if s, _ := v.(string); tc.token != "" && s == tc.token {
					t.Errorf("%s: audit metadata %s holds the token", tc.name, k)
				}
			}
		}
	}
}

// TestConsumeRace: of 20 concurrent redemptions of one token exactly one
// wins, on the in-process store and on Redis (GETDEL).
func TestConsumeRace(t *testing.T) {
	stores := map[string]func(t *testing.T) func(ports.Clock) ports.TokenStore{
		"inproc": func(*testing.T) func(ports.Clock) ports.TokenStore { return inprocTokens },
		"redis": func(t *testing.T) func(ports.Clock) ports.TokenStore {
			addr := services.Redis(t)
			c, err := redis.Open(context.Background(), redis.Config{URL: "redis://" + addr,
				Prefix: "gpuaas-test-" + services.RandomSuffix(4) + ":"})
			if err != nil {
				services.Unavailable(t, "redis", err)
			}
			t.Cleanup(func() { c.Close() })
			return func(ports.Clock) ports.TokenStore { return c }
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, mk(t))
			ctx := context.Background()
			m, err := f.svc.Mint(ctx, f.owner, "", f.active.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			var wins, invalid atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < 20; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := f.svc.Consume(ctx, m.Token, f.active.ID)
					switch {
					case err == nil:
						wins.Add(1)
					case codeOf(err) == terminal.CodeTokenInvalid:
						invalid.Add(1)
					default:
						t.Errorf("unexpected %v", err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if wins.Load() != 1 || invalid.Load() != 19 {
				t.Fatalf("wins %d, invalid %d; want exactly one winner", wins.Load(), invalid.Load())
			}
		})
	}
}

func TestNewRequiresDeps(t *testing.T) {
	t.Parallel()
	if _, err := terminalsvc.New(terminalsvc.Deps{}); err == nil {
		t.Fatal("New accepted missing dependencies")
	}
}
