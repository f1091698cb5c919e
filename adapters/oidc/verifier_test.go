package oidc_test

import (
	"context"
	"crypto"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func newVerifier(t *testing.T, iss *tokens.Issuer, mutate ...func(*oidc.VerifierConfig)) *oidc.Verifier {
	t.Helper()
	cfg := oidc.VerifierConfig{Issuer: iss.URL(), Audience: iss.Audience()}
	for _, m := range mutate {
		m(&cfg)
	}
	v, err := oidc.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// wantFault fails unless err is a fault of kind k with code c.
func wantFault(t *testing.T, err error, k fault.Kind, c fault.Code) {
	t.Helper()
	var fe *fault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v (%T), want fault %s/%s", err, err, k, c)
	}
	if fe.Kind != k || fe.Code != c {
		t.Fatalf("fault = %s/%s (%v), want %s/%s", fe.Kind, fe.Code, err, k, c)
	}
}

func TestVerifierRefusesBadTokens(t *testing.T) {
	t.Parallel()
	iss := tokens.NewIssuer(t)
	v := newVerifier(t, iss)

	cases := []struct {
		name  string
		token string
		code  fault.Code
	}{
		{"empty", "", fault.CodeTokenMissing},
		{"blank", "   ", fault.CodeTokenMissing},
		{"garbage", "not-a-jwt", fault.CodeTokenInvalid},
		{"three garbage parts", "a.b.c", fault.CodeTokenInvalid},
	}
	for _, f := range tokens.Forgeries {
		code := fault.CodeTokenInvalid
		if f == tokens.ForgeExpired {
			code = fault.CodeTokenExpired
		}
		cases = append(cases, struct {
			name  string
			token string
			code  fault.Code
		}{string(f), iss.Forge(t, f), code})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(context.Background(), tc.token)
			wantFault(t, err, fault.KindUnauthenticated, tc.code)
		})
	}
}

func TestVerifierAcceptsAndMapsClaims(t *testing.T) {
	t.Parallel()
	now := time.Now()
	iss := tokens.NewIssuer(t, tokens.WithClock(func() time.Time { return now }))
	v := newVerifier(t, iss, func(c *oidc.VerifierConfig) { c.Clock = fixedClock{now} })

	cases := []struct {
		name string
		opts []tokens.Claim
		want identity.Claims
	}{
		{
			name: "keycloak shape",
			opts: []tokens.Claim{tokens.Subject("u1"), tokens.Email("a@example.com"), tokens.Name("Alice"), tokens.Roles("admin", "user")},
			want: identity.Claims{Subject: "u1", Email: "a@example.com", Name: "Alice", Roles: []string{"admin", "user"}},
		},
		{
			name: "keycloak access token: aud account, client in azp",
			opts: []tokens.Claim{tokens.Audience("account"), tokens.AZP(tokens.DefaultAudience)},
			want: identity.Claims{Subject: tokens.DefaultSubject, Email: "test-user@example.com", Name: "Test User", Roles: []string{"user"}},
		},
		{
			name: "aud array containing the audience, azp another client",
			opts: []tokens.Claim{tokens.Audience("account", tokens.DefaultAudience), tokens.AZP("cli")},
			want: identity.Claims{Subject: tokens.DefaultSubject, Email: "test-user@example.com", Name: "Test User", Roles: []string{"user"}},
		},
		{
			name: "no aud, azp only",
			opts: []tokens.Claim{tokens.Delete("aud")},
			want: identity.Claims{Subject: tokens.DefaultSubject, Email: "test-user@example.com", Name: "Test User", Roles: []string{"user"}},
		},
		{
			name: "top-level roles merged, name falls back to preferred_username, tenant",
			opts: []tokens.Claim{tokens.Delete("name"), tokens.TopLevelRoles("user", "gpuaas-admin"), tokens.Tenant("t-1")},
			want: identity.Claims{Subject: tokens.DefaultSubject, Email: "test-user@example.com", Name: "test-user", Roles: []string{"user", "gpuaas-admin"}, TenantID: "t-1"},
		},
		{
			name: "no roles at all",
			opts: []tokens.Claim{tokens.Delete("realm_access")},
			want: identity.Claims{Subject: tokens.DefaultSubject, Email: "test-user@example.com", Name: "Test User"},
		},
		{
			name: "expired within leeway",
			opts: []tokens.Claim{tokens.Expiry(now.Add(-20 * time.Second))},
			want: identity.Claims{Subject: tokens.DefaultSubject, Email: "test-user@example.com", Name: "Test User", Roles: []string{"user"}},
		},
		{
			name: "nbf within leeway",
			opts: []tokens.Claim{tokens.NotBefore(now.Add(20 * time.Second))},
			want: identity.Claims{Subject: tokens.DefaultSubject, Email: "test-user@example.com", Name: "Test User", Roles: []string{"user"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := v.Verify(context.Background(), iss.Mint(t, tc.opts...))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			tc.want.Issuer = iss.URL()
			if got.Issuer != tc.want.Issuer || got.Subject != tc.want.Subject || got.Email != tc.want.Email ||
				got.Name != tc.want.Name || got.TenantID != tc.want.TenantID || !slices.Equal(got.Roles, tc.want.Roles) {
				t.Fatalf("claims = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestVerifierTimeBoundaries(t *testing.T) {
	t.Parallel()
	now := time.Now()
	iss := tokens.NewIssuer(t, tokens.WithClock(func() time.Time { return now }))
	v := newVerifier(t, iss, func(c *oidc.VerifierConfig) { c.Clock = fixedClock{now}; c.Leeway = 30 * time.Second })
	cases := []struct {
		name string
		opt  tokens.Claim
		code fault.Code // "" = accepted
	}{
		{"exp just inside leeway", tokens.Expiry(now.Add(-29 * time.Second)), ""},
		{"exp just past leeway", tokens.Expiry(now.Add(-31 * time.Second)), fault.CodeTokenExpired},
		{"nbf just inside leeway", tokens.NotBefore(now.Add(29 * time.Second)), ""},
		{"nbf just past leeway", tokens.NotBefore(now.Add(31 * time.Second)), fault.CodeTokenInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(context.Background(), iss.Mint(t, tc.opt))
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantFault(t, err, fault.KindUnauthenticated, tc.code)
		})
	}
}

func TestVerifierKeySources(t *testing.T) {
	t.Parallel()
	for _, kt := range []struct {
		name string
		kt   tokens.KeyType
	}{{"ES256", tokens.KeyES256}, {"RS256", tokens.KeyRS256}, {"EdDSA", tokens.KeyEdDSA}} {
		t.Run(kt.name, func(t *testing.T) {
			t.Parallel()
			iss := tokens.NewIssuer(t, tokens.WithKeyType(kt.kt))
			for name, v := range map[string]*oidc.Verifier{
				"discovery": newVerifier(t, iss),
				"jwks url":  newVerifier(t, iss, func(c *oidc.VerifierConfig) { c.JWKSURL = iss.JWKSURL() }),
				"static":    newVerifier(t, iss, func(c *oidc.VerifierConfig) { c.StaticKeys = iss.PublicKeys() }),
			} {
				if _, err := v.Verify(context.Background(), iss.Mint(t)); err != nil {
					t.Errorf("%s: Verify: %v", name, err)
				}
				_, err := v.Verify(context.Background(), iss.Forge(t, tokens.ForgeWrongKey))
				wantFault(t, err, fault.KindUnauthenticated, fault.CodeTokenInvalid)
			}
		})
	}
}

func TestVerifierAlgorithmAllowlist(t *testing.T) {
	t.Parallel()
	iss := tokens.NewIssuer(t, tokens.WithKeyType(tokens.KeyEdDSA))
	v := newVerifier(t, iss, func(c *oidc.VerifierConfig) { c.Algorithms = []string{"ES256"} })
	_, err := v.Verify(context.Background(), iss.Mint(t))
	wantFault(t, err, fault.KindUnauthenticated, fault.CodeTokenInvalid)
}

func TestVerifierCachesKeysAndRefetchesOnUnknownKID(t *testing.T) {
	t.Parallel()
	iss := tokens.NewIssuer(t)
	v := newVerifier(t, iss)
	ctx := context.Background()
	for range 3 {
		if _, err := v.Verify(ctx, iss.Mint(t)); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if n := iss.JWKSFetches(); n != 1 {
		t.Fatalf("JWKS fetched %d times for one key, want 1 (cached)", n)
	}
	iss.RotateKey(t)
	for range 3 {
		if _, err := v.Verify(ctx, iss.Mint(t)); err != nil {
			t.Fatalf("Verify after rotation: %v", err)
		}
	}
	if n := iss.JWKSFetches(); n != 2 {
		t.Fatalf("JWKS fetched %d times after rotation, want 2 (one refresh for the new kid)", n)
	}
	_, err := v.Verify(ctx, iss.Forge(t, tokens.ForgeUnknownKID))
	wantFault(t, err, fault.KindUnauthenticated, fault.CodeTokenInvalid)
}

func TestVerifierUnreachableIssuerIsUnavailable(t *testing.T) {
	t.Parallel()
	iss := tokens.NewIssuer(t)
	dead := httptest.NewServer(nil)
	dead.Close()

	cases := map[string]func(*oidc.VerifierConfig){
		"discovery": func(c *oidc.VerifierConfig) { c.Issuer = dead.URL },
		"jwks":      func(c *oidc.VerifierConfig) { c.JWKSURL = dead.URL + "/jwks" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, iss, mutate)
			_, err := v.Verify(context.Background(), iss.Mint(t))
			wantFault(t, err, fault.KindUnavailable, fault.CodeUnavailable)
			// An empty token is still token_missing, outage or not.
			_, err = v.Verify(context.Background(), "")
			wantFault(t, err, fault.KindUnauthenticated, fault.CodeTokenMissing)
		})
	}
}

func TestVerifierConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  oidc.VerifierConfig
		ok   bool
	}{
		{"ok", oidc.VerifierConfig{Issuer: "https://sso.example.com/realms/x", Audience: "gpuaas"}, true},
		{"no issuer", oidc.VerifierConfig{Audience: "gpuaas"}, false},
		{"relative issuer", oidc.VerifierConfig{Issuer: "/realms/x", Audience: "gpuaas"}, false},
		{"no audience", oidc.VerifierConfig{Issuer: "https://sso.example.com"}, false},
		{"alg none", oidc.VerifierConfig{Issuer: "https://sso.example.com", Audience: "a", Algorithms: []string{"none"}}, false},
		{"alg HS256", oidc.VerifierConfig{Issuer: "https://sso.example.com", Audience: "a", Algorithms: []string{"RS256", "HS256"}}, false},
		{"negative leeway", oidc.VerifierConfig{Issuer: "https://sso.example.com", Audience: "a", Leeway: -time.Second}, false},
		{"bad jwks url", oidc.VerifierConfig{Issuer: "https://sso.example.com", Audience: "a", JWKSURL: "ftp://x"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			err := cfg.CheckAndSetDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("CheckAndSetDefaults() = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (cfg.Leeway != oidc.DefaultLeeway || !slices.Equal(cfg.Algorithms, oidc.DefaultAlgorithms) || cfg.HTTPClient == nil || cfg.Clock == nil) {
				t.Fatalf("defaults not set: %+v", cfg)
			}
		})
	}
}

// TestTrustedIssuer: the platform's own tokens are verified next to the
// OIDC issuer's through the same checks, with their own key set and
// allowlist; their machine claims are read, the OIDC issuer's never are.
func TestTrustedIssuer(t *testing.T) {
	t.Parallel()
	idp := tokens.NewIssuer(t)
	plat := tokens.NewIssuer(t, tokens.WithAudience("https://api.test"))
	rsaPlat := tokens.NewIssuer(t, tokens.WithKeyType(tokens.KeyRS256), tokens.WithAudience("https://api.test"))
	trusted := func(iss *tokens.Issuer) oidc.TrustedIssuer {
		return oidc.TrustedIssuer{Issuer: iss.URL(), Audience: "https://api.test",
			Keys: func(context.Context) ([]crypto.PublicKey, error) { return iss.PublicKeys(), nil }}
	}
	v := newVerifier(t, idp, func(c *oidc.VerifierConfig) {
		c.StaticKeys = idp.PublicKeys()
		c.Trusted = []oidc.TrustedIssuer{trusted(plat), trusted(rsaPlat)}
	})
	ctx := context.Background()
	machine := []tokens.Claim{tokens.Set("actor_type", "service_account"), tokens.Set("project_id", "p1"),
		tokens.Set("scope", "read allocations"), tokens.Set("cred", "c1"), tokens.Tenant("t1")}
	c, err := v.Verify(ctx, plat.Mint(t, machine...))
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != plat.URL() || c.ActorType != "service_account" || c.ProjectID != "p1" || c.CredentialID != "c1" ||
		!slices.Equal(c.Scopes, []string{"read", "allocations"}) || c.TenantID != "t1" {
		t.Fatalf("claims %+v", c)
	}
	// The OIDC issuer's token says the same things: they are not read.
	c, err = v.Verify(ctx, idp.Mint(t, machine...))
	if err != nil {
		t.Fatal(err)
	}
	if c.ActorType != "" || c.ProjectID != "" || c.CredentialID != "" || len(c.Scopes) != 0 {
		t.Fatalf("OIDC claims leaked machine fields: %+v", c)
	}
	// RS256 is outside the platform issuer's allowlist (ES256 only).
	_, err = v.Verify(ctx, rsaPlat.Mint(t, machine...))
	wantFault(t, err, fault.KindUnauthenticated, fault.CodeTokenInvalid)
	for _, f := range []tokens.Forgery{tokens.ForgeWrongKey, tokens.ForgeUnknownKID, tokens.ForgeTampered, tokens.ForgeAlgNone,
		tokens.ForgeHS256PublicKey, tokens.ForgeNoExpiry, tokens.ForgeWrongAudience, tokens.ForgeNotYetValid} {
		_, err := v.Verify(ctx, plat.Forge(t, f, machine...))
		wantFault(t, err, fault.KindUnauthenticated, fault.CodeTokenInvalid)
	}
	_, err = v.Verify(ctx, plat.Forge(t, tokens.ForgeExpired, machine...))
	wantFault(t, err, fault.KindUnauthenticated, fault.CodeTokenExpired)
	// A platform token naming the OIDC issuer's audience via azp is refused:
	// azp stands for aud only on the OIDC issuer's tokens.
	_, err = v.Verify(ctx, plat.Mint(t, append(machine, tokens.Audience("other"), tokens.AZP("https://api.test"))...))
	wantFault(t, err, fault.KindUnauthenticated, fault.CodeTokenInvalid)
	// Configuration: a trusted issuer equal to the OIDC issuer is refused.
	if _, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: idp.URL(), Audience: "a", Trusted: []oidc.TrustedIssuer{trusted(idp)}}); err == nil {
		t.Fatal("a trusted issuer equal to the OIDC issuer was accepted")
	}
}
