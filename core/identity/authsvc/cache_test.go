package authsvc_test

import (
	"context"
	"crypto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/authsvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// countingVerifier counts signature checks.
type countingVerifier struct {
	ports.TokenVerifier
	n atomic.Int64
}

func (v *countingVerifier) Verify(ctx context.Context, raw string) (identity.Claims, error) {
	v.n.Add(1)
	return v.TokenVerifier.Verify(ctx, raw)
}

// cachedAuth is the sign-in service with the token cache and a change feed
// the test moves by hand.
func cachedAuth(t *testing.T, e *env, cfg authsvc.Config) (*authsvc.Service, *countingVerifier, *fakes.AccessChanges) {
	t.Helper()
	inner, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: e.oidc.URL(), Audience: e.oidc.Audience(), Clock: e.clock,
		StaticKeys: append([]crypto.PublicKey(nil), e.oidc.PublicKeys()...)})
	if err != nil {
		t.Fatal(err)
	}
	v := &countingVerifier{TokenVerifier: inner}
	feed := fakes.NewAccessChanges()
	auth, err := authsvc.New(cfg, authsvc.Deps{Identity: e.ids, Verifier: v, IdP: nopIdP{}, Tokens: inproc.NewTokenStore(e.clock),
		Policies: mustPolicies(t, e.db), Clock: e.clock, Changes: feed})
	if err != nil {
		t.Fatal(err)
	}
	return auth, v, feed
}

// TestTokenCache: a token's signature is checked once while it is cached;
// a change of access re-reads the caller but not the signature; the
// token's exp, the safety net's age and the bound all end an entry; a
// sign-out is refused on the next request.
func TestTokenCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	auth, v, feed := cachedAuth(t, e, authsvc.Config{TokenCacheSize: 2})
	mint := func(sub string, ttl time.Duration) string {
		return e.oidc.Mint(t, tokens.Subject(sub), tokens.Email(sub+"@example.com"), tokens.Expiry(e.clock.Now().Add(ttl)))
	}
	must := func(tok string) identity.Principal {
		t.Helper()
		p, err := auth.Authenticate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tok := mint("cache-a", 10*time.Minute)
	first := must(tok)
	for range 3 {
		if p := must(tok); p.User.ID != first.User.ID || p.TenantID != first.TenantID {
			t.Fatalf("cached principal %+v, first %+v", p, first)
		}
	}
	if v.n.Load() != 1 {
		t.Fatalf("4 requests verified the signature %d times, want 1", v.n.Load())
	}

	// A change anywhere: the caller is read again, the signature is not.
	feed.Bump()
	must(tok)
	if v.n.Load() != 1 {
		t.Fatalf("a change of access re-verified the signature (%d)", v.n.Load())
	}

	// The safety net: after AccessCacheTTL the token is verified again.
	e.clock.Advance(authsvc.DefaultAccessCacheTTL)
	must(tok)
	if v.n.Load() != 2 {
		t.Fatalf("after the cache's age the signature was checked %d times, want 2", v.n.Load())
	}

	// Never past exp: the verifier decides again, and refuses.
	short := mint("cache-b", 20*time.Second)
	must(short)
	n := v.n.Load()
	e.clock.Advance(25 * time.Second) // past exp, within the verifier's leeway
	must(short)
	if v.n.Load() != n+1 {
		t.Fatal("a token past its exp was served from the cache")
	}
	e.clock.Advance(oidc.DefaultLeeway)
	if _, err := auth.Authenticate(ctx, short); !fault.IsKind(err, fault.KindUnauthenticated) {
		t.Fatalf("an expired token: %v", err)
	}

	// The bound: with room for two, a third token evicts the oldest.
	before := v.n.Load()
	x, y, z := mint("cache-x", time.Hour), mint("cache-y", time.Hour), mint("cache-z", time.Hour)
	for _, tk := range []string{x, y, z, z, y, x} {
		must(tk)
	}
	// x, y, z verified once each; then x was evicted by z and is verified
	// again (y and z were still cached).
	if got := v.n.Load() - before; got != 4 {
		t.Fatalf("bounded cache: %d verifications, want 4", got)
	}

	// A sign-out is refused on the next request, cached or not.
	must(y)
	if err := auth.Logout(ctx, "", y); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(ctx, y); !fault.IsKind(err, fault.KindUnauthenticated) {
		t.Fatalf("signed-out token: %v", err)
	}

	// The feed disconnected: principals are not cached (a suspension
	// would otherwise go unseen), signatures still are.
	feed.Disconnect()
	before = v.n.Load()
	must(x)
	must(x)
	if v.n.Load() != before {
		t.Fatalf("with the feed down the signature was re-checked (%d)", v.n.Load()-before)
	}
}

// TestTokenCacheOff: a negative size turns the cache off.
func TestTokenCacheOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	auth, v, _ := cachedAuth(t, e, authsvc.Config{TokenCacheSize: -1})
	tok := e.oidc.Mint(t, tokens.Subject("nocache"), tokens.Expiry(e.clock.Now().Add(time.Hour)))
	for range 3 {
		if _, err := auth.Authenticate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if v.n.Load() != 3 {
		t.Fatalf("with the cache off: %d verifications, want 3", v.n.Load())
	}
}

// TestSignOutLastsAsLongAsTheToken: a signed-out token is refused for as
// long as it would otherwise verify, however long its issuer made it live
// (a fixed 24 h deny entry let a 48 h token work again on its second day).
func TestSignOutLastsAsLongAsTheToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	auth, _, _ := cachedAuth(t, e, authsvc.Config{})
	long := e.oidc.Mint(t, tokens.Subject("deny-long"), tokens.Email("deny-long@example.com"),
		tokens.Expiry(e.clock.Now().Add(48*time.Hour)))
	if _, err := auth.Authenticate(ctx, long); err != nil {
		t.Fatal(err)
	}
	if err := auth.Logout(ctx, "", long); err != nil {
		t.Fatal(err)
	}
	refused := func(when string) {
		t.Helper()
		_, err := auth.Authenticate(ctx, long)
		if !fault.IsKind(err, fault.KindUnauthenticated) || !strings.Contains(err.Error(), "signed out") {
			t.Fatalf("%s: %v; want the sign-out's refusal", when, err)
		}
	}
	refused("at once")
	e.clock.Advance(25 * time.Hour)
	refused("25 h later (the token lives 48 h)")
	e.clock.Advance(23*time.Hour - time.Minute)
	refused("a minute before its exp")
	e.clock.Advance(time.Minute + oidc.DefaultLeeway/2)
	refused("past its exp, within the verifier's leeway")
}
