package oidc

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/ports"
)

// DefaultAlgorithms are the JWS algorithms accepted when VerifierConfig.
// Algorithms is empty: the asymmetric ones Keycloak and the dev provider use.
var DefaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// allowedAlgorithms is every algorithm a deployment may opt into. "none" and
// the HMAC family are absent on purpose: "none" means no signature, and HS*
// with a published key set is the classic algorithm-confusion attack (the
// attacker signs with the public key as the HMAC secret).
var allowedAlgorithms = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// DefaultLeeway absorbs clock skew between the issuer and this process when
// checking exp and nbf. It is small because access tokens live minutes.
const DefaultLeeway = 30 * time.Second

// defaultHTTPTimeout bounds every call to the issuer (discovery, JWKS, token
// and revocation endpoints) so a hung issuer cannot pin request goroutines.
const defaultHTTPTimeout = 10 * time.Second

// VerifierConfig configures a [Verifier].
type VerifierConfig struct {
	// Issuer is the issuer URL exactly as it appears in the iss claim, e.g.
	// https://sso.example.com/realms/gpuaas. Required.
	Issuer string
	// Audience is the API's audience: tokens are accepted when their aud
	// contains it or their azp equals it (see [Verifier]). Usually the
	// platform's client id. Required.
	Audience string
	// JWKSURL, when set, skips discovery and fetches keys from this URL.
	JWKSURL string
	// StaticKeys, when set, verifies against these public keys only and makes
	// no HTTP calls at all (tests, or an in-process dev provider). Supported:
	// *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey.
	StaticKeys []crypto.PublicKey
	// Algorithms is the JWS allowlist; default [DefaultAlgorithms]. "none"
	// and HS* are rejected.
	Algorithms []string
	// Leeway for exp and nbf; default [DefaultLeeway].
	Leeway time.Duration
	// HTTPClient talks to the issuer; default a client with a 10 s timeout.
	HTTPClient *http.Client
	// Clock tells the time; default the system clock.
	Clock ports.Clock
	// Trusted are further issuers whose tokens are verified beside the
	// OIDC issuer's, through the same path (signature with an algorithm
	// allowlist, exp/nbf with the leeway, audience, subject): the
	// platform's own service-account tokens.
	Trusted []TrustedIssuer
}

// TrustedIssuer is an issuer verified beside the OIDC issuer, with keys the
// process already holds (no discovery, no HTTP).
type TrustedIssuer struct {
	// Issuer is the iss claim its tokens carry; it must differ from the
	// OIDC issuer's.
	Issuer string
	// Audience its tokens must name in aud (azp is not consulted).
	Audience string
	// Keys returns the verifying keys; called once, at the first token.
	Keys func(ctx context.Context) ([]crypto.PublicKey, error)
	// Algorithms is this issuer's allowlist; default ES256 only.
	Algorithms []string
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *VerifierConfig) CheckAndSetDefaults() error {
	for i := range c.Trusted {
		t := &c.Trusted[i]
		if err := checkIssuer(t.Issuer); err != nil {
			return err
		}
		if t.Issuer == c.Issuer {
			return errors.New("oidc: a trusted issuer must differ from the OIDC issuer")
		}
		if strings.TrimSpace(t.Audience) == "" || t.Keys == nil {
			return fmt.Errorf("oidc: trusted issuer %s needs an audience and keys", t.Issuer)
		}
		if len(t.Algorithms) == 0 {
			t.Algorithms = []string{"ES256"}
		}
		for _, a := range t.Algorithms {
			if !allowedAlgorithms[a] {
				return fmt.Errorf("oidc: signing algorithm %q is not allowed", a)
			}
		}
	}
	if err := checkIssuer(c.Issuer); err != nil {
		return err
	}
	if strings.TrimSpace(c.Audience) == "" {
		return errors.New("oidc: verifier audience is required")
	}
	if c.JWKSURL != "" {
		if err := checkHTTPURL("JWKS URL", c.JWKSURL); err != nil {
			return err
		}
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = append([]string(nil), DefaultAlgorithms...)
	}
	for _, a := range c.Algorithms {
		if !allowedAlgorithms[a] {
			return fmt.Errorf("oidc: signing algorithm %q is not allowed", a)
		}
	}
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		return fmt.Errorf("oidc: leeway %s out of range [0, 5m]", c.Leeway)
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	return nil
}

// Endpoints are an issuer's OAuth endpoints. Setting them in ClientConfig
// skips discovery.
type Endpoints struct {
	AuthURL  string
	TokenURL string
	// RevocationURL is the RFC 7009 endpoint; empty makes Revoke a no-op.
	RevocationURL string
}

// DefaultScopes are requested when ClientConfig.Scopes is empty.
var DefaultScopes = []string{"openid", "profile", "email"}

// ClientConfig configures a [Client].
type ClientConfig struct {
	// Issuer is the issuer URL used for discovery. Required.
	Issuer string
	// ClientID is the platform's OAuth client. Required.
	ClientID string
	// ClientSecret is empty for a public client (PKCE only); when set it is
	// sent with HTTP Basic authentication.
	ClientSecret string
	// Scopes requested at sign-in; default [DefaultScopes].
	Scopes []string
	// Endpoints, when set, are used instead of discovery.
	Endpoints *Endpoints
	// HTTPClient talks to the issuer; default a client with a 10 s timeout.
	HTTPClient *http.Client
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *ClientConfig) CheckAndSetDefaults() error {
	if err := checkIssuer(c.Issuer); err != nil {
		return err
	}
	if strings.TrimSpace(c.ClientID) == "" {
		return errors.New("oidc: client id is required")
	}
	if len(c.Scopes) == 0 {
		c.Scopes = append([]string(nil), DefaultScopes...)
	}
	if e := c.Endpoints; e != nil {
		if err := checkHTTPURL("authorization endpoint", e.AuthURL); err != nil {
			return err
		}
		if err := checkHTTPURL("token endpoint", e.TokenURL); err != nil {
			return err
		}
		if e.RevocationURL != "" {
			if err := checkHTTPURL("revocation endpoint", e.RevocationURL); err != nil {
				return err
			}
		}
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	return nil
}

func checkIssuer(issuer string) error {
	if issuer == "" {
		return errors.New("oidc: issuer is required")
	}
	return checkHTTPURL("issuer", issuer)
}

func checkHTTPURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("oidc: %s: %w", what, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("oidc: %s %q must be an absolute http(s) URL", what, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("oidc: %s %q must not have a query or fragment", what, raw)
	}
	return nil
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
