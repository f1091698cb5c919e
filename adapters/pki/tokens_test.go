package pki_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gpuaas/gpuaas/adapters/pki"
	"github.com/gpuaas/gpuaas/ports"
)

// TestTokenIssuer: the key is sealed in the secret store and shared by a
// second process; tokens are ES256 with the kid the JWKS publishes and the
// claims the verifier reads; no private material reaches the JWKS.
func TestTokenIssuer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	cfg := pki.TokenConfig{Issuer: "https://gpuaas.test", Audience: "https://gpuaas.test"}
	a, err := pki.NewTokenIssuer(cfg, f.kms, f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pki.NewTokenIssuer(cfg, f.kms, f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	tok, err := a.IssueServiceToken(ctx, ports.ServiceTokenClaims{ID: "j1", ServiceAccountID: "sa1", TenantID: "t1",
		ProjectID: "p1", CredentialID: "c1", Scopes: []string{"read", "allocations"}, IssuedAt: now, ExpiresAt: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.JWKS(ctx) // the second process: the same key
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `"d"`) {
		t.Fatalf("the JWKS holds private material: %s", raw)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) != 1 || set.Keys[0].Algorithm != "ES256" || set.Keys[0].Use != "sig" {
		t.Fatalf("jwks %s: %v", raw, err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Headers[0].KeyID != set.Keys[0].KeyID {
		t.Fatalf("kid %q, jwks %q", parsed.Headers[0].KeyID, set.Keys[0].KeyID)
	}
	var claims map[string]any
	if err := parsed.Claims(set.Keys[0].Key.(*ecdsa.PublicKey), &claims); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"iss": "https://gpuaas.test", "sub": "sa1", "aud": "https://gpuaas.test", "jti": "j1",
		"actor_type": "service_account", "tenant_id": "t1", "project_id": "p1", "cred": "c1", "scope": "read allocations"} {
		if claims[k] != want {
			t.Errorf("%s = %v, want %v", k, claims[k], want)
		}
	}
	// The stored secret is an envelope, not a PEM key.
	var stored []byte
	if err := f.db.Pool.QueryRow(ctx, `SELECT envelope FROM platform_secrets WHERE name = $1`, pki.DefaultTokenSecretName).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored), "PRIVATE KEY") {
		t.Fatal("the signing key is stored in the clear")
	}
}
