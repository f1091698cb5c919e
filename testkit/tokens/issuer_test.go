package tokens_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/gpuaas/gpuaas/testkit/tokens"
)

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestIssuerServesDiscoveryAndJWKS(t *testing.T) {
	t.Parallel()
	iss := tokens.NewIssuer(t)
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, iss.URL()+"/.well-known/openid-configuration", &doc)
	if doc.Issuer != iss.URL() || doc.JWKSURI != iss.JWKSURL() {
		t.Fatalf("discovery = %+v", doc)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	getJSON(t, iss.JWKSURL(), &set)
	if len(set.Keys) != 1 || set.Keys[0].Alg != "ES256" || set.Keys[0].Kid == "" {
		t.Fatalf("jwks = %+v", set)
	}
	iss.RotateKey(t)
	getJSON(t, iss.JWKSURL(), &set)
	if len(set.Keys) != 2 || len(iss.PublicKeys()) != 2 || iss.JWKSFetches() != 2 {
		t.Fatalf("after rotation: %d keys, %d fetches", len(set.Keys), iss.JWKSFetches())
	}
}

func TestForgeriesAreDistinct(t *testing.T) {
	t.Parallel()
	iss := tokens.NewIssuer(t)
	seen := map[string]tokens.Forgery{iss.Mint(t): "valid"}
	for _, f := range tokens.Forgeries {
		tok := iss.Forge(t, f)
		if prev, dup := seen[tok]; dup {
			t.Fatalf("forgery %s equals %s", f, prev)
		}
		seen[tok] = f
	}
}
