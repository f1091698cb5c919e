package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

var capKey = policy.AllocationMaxPerUser // default "4"

// startedPolicyStore returns a started store and waits until it listens
// (and so caches).
func startedPolicyStore(t *testing.T, db *postgres.DB, cfg postgres.PolicyConfig) *postgres.PolicyStore {
	t.Helper()
	s, err := postgres.NewPolicyStore(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Close)
	poll.Until(t, 10*time.Second, "the policy listener to connect", s.Listening)
	return s
}

func policyValue(t *testing.T, s *postgres.PolicyStore, tenantID string) string {
	t.Helper()
	v, err := s.Values(context.Background(), tenantID)
	if err != nil {
		t.Fatalf("Values(%q): %v", tenantID, err)
	}
	return v[capKey.Name]
}

// writeBehindTheStore changes a value without NOTIFY, as a lost
// notification would look to a cache.
func writeBehindTheStore(t *testing.T, db *postgres.DB, scope, value string) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO policies (scope, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (scope, key) DO UPDATE SET value = EXCLUDED.value`, scope, capKey.Name, value); err != nil {
		t.Fatal(err)
	}
}

func TestPolicyValuesOverlay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, nonUTC)
	s, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tenants := postgres.NewTenantStore(db)
	a, b := newTestTenant(), newTestTenant()
	for _, tn := range []identity.Tenant{a, b} {
		if err := tenants.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	v, err := s.Values(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range policy.Keys() {
		if v[k.Name] != k.Default {
			t.Fatalf("global %s = %q; want the default %q", k.Name, v[k.Name], k.Default)
		}
	}
	if err := s.Set(ctx, "", capKey.Name, "7", "admin-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, a.ID, capKey.Name, "9", "admin-1"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ tenant, want string }{{"", "7"}, {a.ID, "9"}, {b.ID, "7"}} {
		if got := policyValue(t, s, tc.tenant); got != tc.want {
			t.Errorf("Values(%q)[%s] = %q; want %q", tc.tenant, capKey.Name, got, tc.want)
		}
	}
	// Callers get copies: mutating one does not change the store's answer.
	v, _ = s.Values(ctx, a.ID)
	v[capKey.Name] = "999"
	if got := policyValue(t, s, a.ID); got != "9" {
		t.Fatalf("a caller's edit leaked into the store: %q", got)
	}
}

func TestPolicySetValidates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, "")
	s, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, tenant, key, value string
		kind                     fault.Kind
		field                    string
	}{
		{"unknown key", "", "no.such.key", "1", fault.KindInvalid, "key"},
		{"not an int", "", capKey.Name, "many", fault.KindInvalid, "value"},
		{"out of range", "", capKey.Name, "1001", fault.KindInvalid, "value"},
		{"bad bool", "", policy.PersonalLoginEnabled.Name, "maybe", fault.KindInvalid, "value"},
		{"unknown tenant", newTestTenant().ID, capKey.Name, "1", fault.KindNotFound, ""},
		{"malformed tenant", "tenant-1", capKey.Name, "1", fault.KindNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := s.Set(ctx, tc.tenant, tc.key, tc.value, "admin")
			if fe := fault.From(err); err == nil || fe.Kind != tc.kind || fe.Field != tc.field {
				t.Fatalf("Set = %v; want %v on field %q", err, tc.kind, tc.field)
			}
		})
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM policies`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d policy rows after refused writes (err %v)", n, err)
	}
	if _, err := s.Values(ctx, "tenant-1"); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("Values of a malformed tenant id: %v; want NotFound", err)
	}
}

// A Set on one instance reaches another instance's cache through NOTIFY.
func TestPolicyCacheInvalidatedAcrossInstances(t *testing.T) {
	t.Parallel()
	db := openDB(t, nonUTC)
	// An hour of TTL: only the notification can explain a fresh value.
	writer := startedPolicyStore(t, db, postgres.PolicyConfig{CacheTTL: time.Hour})
	reader := startedPolicyStore(t, db, postgres.PolicyConfig{CacheTTL: time.Hour})

	if got := policyValue(t, reader, ""); got != capKey.Default {
		t.Fatalf("initial value %q; want the default", got)
	}
	// The reader caches: a write that sends no notification goes unseen.
	writeBehindTheStore(t, db, "", "5")
	if got := policyValue(t, reader, ""); got != capKey.Default {
		t.Fatalf("reader saw %q without a notification; it is not caching", got)
	}
	if err := writer.Set(context.Background(), "", capKey.Name, "6", "admin"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the reader to see the new value", func() bool { return policyValue(t, reader, "") == "6" })
	// The writer dropped its own cache at once.
	if got := policyValue(t, writer, ""); got != "6" {
		t.Fatalf("writer reads %q after its own Set; want 6", got)
	}
}

// After its connection is killed the listener reconnects, and invalidation
// works again.
func TestPolicyListenerReconnects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, "")
	writer := startedPolicyStore(t, db, postgres.PolicyConfig{CacheTTL: time.Hour})
	reader := startedPolicyStore(t, db, postgres.PolicyConfig{CacheTTL: time.Hour})
	listeners := func() map[int32]bool {
		rows, err := db.Pool.Query(ctx, `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN policy_changed'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		pids := map[int32]bool{}
		for rows.Next() {
			var pid int32
			if err := rows.Scan(&pid); err != nil {
				t.Fatal(err)
			}
			pids[pid] = true
		}
		return pids
	}
	poll.Until(t, 10*time.Second, "two listening sessions", func() bool { return len(listeners()) == 2 })
	old := listeners()
	if _, err := db.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN policy_changed'`); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "both listeners to reconnect", func() bool {
		now := listeners()
		for pid := range now {
			if old[pid] {
				return false
			}
		}
		return len(now) == 2 && reader.Listening() && writer.Listening()
	})
	if got := policyValue(t, reader, ""); got != capKey.Default {
		t.Fatalf("value %q; want the default", got)
	}
	if err := writer.Set(ctx, "", capKey.Name, "3", "admin"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the reconnected reader to see the new value", func() bool { return policyValue(t, reader, "") == "3" })
}

// The TTL bounds staleness when a notification is lost.
func TestPolicyCacheTTL(t *testing.T) {
	t.Parallel()
	db := openDB(t, "")
	clock := fakes.NewClock(time.Time{})
	s := startedPolicyStore(t, db, postgres.PolicyConfig{CacheTTL: 30 * time.Second, Clock: clock})
	if got := policyValue(t, s, ""); got != capKey.Default {
		t.Fatalf("initial %q", got)
	}
	writeBehindTheStore(t, db, "", "8")
	clock.Advance(29 * time.Second)
	if got := policyValue(t, s, ""); got != capKey.Default {
		t.Fatalf("within the TTL the cache answered %q; want the cached default", got)
	}
	clock.Advance(2 * time.Second)
	if got := policyValue(t, s, ""); got != "8" {
		t.Fatalf("after the TTL the store answered %q; want 8", got)
	}
}

// Inside a transaction Values reads through it and never caches what may
// roll back.
func TestPolicySetInRolledBackTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, "")
	s := startedPolicyStore(t, db, postgres.PolicyConfig{CacheTTL: time.Hour})
	errRollback := fault.Conflict("", "roll back")
	err := db.InTx(ctx, func(ctx context.Context) error {
		if err := s.Set(ctx, "", capKey.Name, "2", "admin"); err != nil {
			return err
		}
		v, err := s.Values(ctx, "")
		if err != nil {
			return err
		}
		if v[capKey.Name] != "2" {
			t.Errorf("inside the tx Values = %q; want its own write 2", v[capKey.Name])
		}
		return errRollback
	})
	if err != errRollback {
		t.Fatalf("InTx = %v", err)
	}
	if got := policyValue(t, s, ""); got != capKey.Default {
		t.Fatalf("after rollback Values = %q; want the default", got)
	}
}
