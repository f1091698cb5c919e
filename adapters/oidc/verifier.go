package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/ports"
)

// Verifier checks bearer access tokens issued by one OIDC issuer.
//
// Signature, algorithm allowlist and issuer are checked by go-oidc; audience,
// exp and nbf are checked here because access tokens differ from the ID
// tokens go-oidc was written for:
//
//   - Audience: an ID token's aud is the client; an access token's aud is
//     whatever the issuer was told the resource server is. Keycloak, unless a
//     mapper is configured, sets aud to "account" (or omits it) and names the
//     client that requested the token in azp. So a token is accepted when aud
//     contains the configured audience OR azp equals it. azp is only ever set
//     by the issuer to the requesting client, so this still refuses tokens
//     minted for other clients of the same realm.
//   - Time: go-oidc's nbf leeway is a fixed 5 minutes and exp has none; we
//     want one small, configurable leeway for both and an injected clock.
//
// Tokens whose typ claim is "ID" or "Refresh" (Keycloak's markers) are
// refused: an ID token carries aud = client id and would otherwise pass as an
// access token.
//
// Tokens of the trusted issuers (VerifierConfig.Trusted: the platform's own
// service-account tokens) take the same path with their own key set,
// algorithm allowlist and audience; the iss claim, read before the
// signature is checked, only picks which key set may verify the token.
// Their actor_type, project_id, scope and cred claims are read; the OIDC
// issuer's tokens never set them, whatever they carry.
type Verifier struct {
	cfg  VerifierConfig
	disc *discoverer

	mu    sync.Mutex // serialises building inner
	inner atomic.Pointer[oidc.IDTokenVerifier]

	trusted []trustedVerifier
}

// trustedVerifier is one trusted issuer's go-oidc verifier, built at its
// first token.
type trustedVerifier struct {
	cfg   TrustedIssuer
	mu    sync.Mutex
	inner atomic.Pointer[oidc.IDTokenVerifier]
}

var _ ports.TokenVerifier = (*Verifier)(nil)

// NewVerifier builds a Verifier. It makes no network call; discovery happens
// on the first Verify (unless StaticKeys or JWKSURL are set).
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, disc: &discoverer{issuer: cfg.Issuer, hc: cfg.HTTPClient}}
	v.trusted = make([]trustedVerifier, len(cfg.Trusted))
	for i, t := range cfg.Trusted {
		v.trusted[i].cfg = t
	}
	return v, nil
}

// Verify implements [ports.TokenVerifier].
func (v *Verifier) Verify(ctx context.Context, raw string) (identity.Claims, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return identity.Claims{}, fault.Unauthenticated(fault.CodeTokenMissing, "an access token is required")
	}
	if iss := peekIssuer(raw); iss != "" && iss != v.cfg.Issuer {
		for i := range v.trusted {
			if t := &v.trusted[i]; t.cfg.Issuer == iss {
				return v.verifyTrusted(ctx, t, raw)
			}
		}
	}
	inner, err := v.verifier(ctx)
	if err != nil {
		return identity.Claims{}, fault.Unavailable("the identity provider is unreachable", err)
	}
	var fetch keyFetchResult
	tok, err := inner.Verify(context.WithValue(ctx, keyFetchKey{}, &fetch), raw)
	if err != nil {
		if fetch.err != nil {
			return identity.Claims{}, fault.Unavailable("the identity provider's keys are unreachable", fetch.err)
		}
		return identity.Claims{}, invalid(err)
	}
	var c tokenClaims
	if err := tok.Claims(&c); err != nil {
		return identity.Claims{}, invalid(fmt.Errorf("decode claims: %w", err))
	}
	if err := v.check(c, v.cfg.Audience, true); err != nil {
		return identity.Claims{}, err
	}
	return c.identity(), nil
}

// verifyTrusted verifies a token of a trusted issuer: its own key set and
// allowlist, the same time, audience and subject rules.
func (v *Verifier) verifyTrusted(ctx context.Context, t *trustedVerifier, raw string) (identity.Claims, error) {
	inner, err := t.verifier(ctx)
	if err != nil {
		return identity.Claims{}, fault.Unavailable("the platform's token keys are unavailable", err)
	}
	tok, err := inner.Verify(ctx, raw)
	if err != nil {
		return identity.Claims{}, invalid(err)
	}
	var c tokenClaims
	if err := tok.Claims(&c); err != nil {
		return identity.Claims{}, invalid(fmt.Errorf("decode claims: %w", err))
	}
	if err := v.check(c, t.cfg.Audience, false); err != nil {
		return identity.Claims{}, err
	}
	out := c.identity()
	out.ActorType, out.ProjectID, out.CredentialID = c.ActorType, c.ProjectID, c.Cred
	out.Scopes = strings.Fields(c.Scope)
	return out, nil
}

func (t *trustedVerifier) verifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	if in := t.inner.Load(); in != nil {
		return in, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if in := t.inner.Load(); in != nil {
		return in, nil
	}
	keys, err := t.cfg.Keys(ctx)
	if err != nil {
		return nil, err
	}
	in := oidc.NewVerifier(t.cfg.Issuer, &oidc.StaticKeySet{PublicKeys: keys}, &oidc.Config{
		SupportedSigningAlgs: t.cfg.Algorithms, SkipClientIDCheck: true, SkipExpiryCheck: true,
	})
	t.inner.Store(in)
	return in, nil
}

// peekIssuer reads the iss claim of a JWS without verifying it: it only
// picks the key set that must then verify the token ("" when unreadable,
// which falls to the OIDC issuer's path and fails there).
func peekIssuer(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(parts[1]) > 16<<10 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.Iss
}

// check applies the rules go-oidc is told to skip (see [Verifier]); azp
// stands for aud only where allowAzp (the OIDC issuer's access tokens).
func (v *Verifier) check(c tokenClaims, aud string, allowAzp bool) error {
	now := v.cfg.Clock.Now()
	if c.Exp == nil {
		return invalid(errors.New("token has no exp claim"))
	}
	if now.After(c.Exp.Time().Add(v.cfg.Leeway)) {
		return fault.Unauthenticated(fault.CodeTokenExpired, "the access token has expired")
	}
	if c.Nbf != nil && now.Add(v.cfg.Leeway).Before(c.Nbf.Time()) {
		return invalid(errors.New("token is not valid yet (nbf)"))
	}
	if !slices.Contains(c.Aud, aud) && (!allowAzp || c.Azp != aud) {
		return invalid(fmt.Errorf("token audience %q / azp %q does not match %q", []string(c.Aud), c.Azp, aud))
	}
	if strings.EqualFold(c.Typ, "ID") || strings.EqualFold(c.Typ, "Refresh") {
		return invalid(fmt.Errorf("token of type %q is not an access token", c.Typ))
	}
	if c.Sub == "" {
		return invalid(errors.New("token has no sub claim"))
	}
	return nil
}

// verifier builds the go-oidc verifier once its key source is known.
func (v *Verifier) verifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	if in := v.inner.Load(); in != nil {
		return in, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if in := v.inner.Load(); in != nil {
		return in, nil
	}
	var keys oidc.KeySet
	switch {
	case len(v.cfg.StaticKeys) > 0:
		keys = &oidc.StaticKeySet{PublicKeys: v.cfg.StaticKeys}
	default:
		jwksURL := v.cfg.JWKSURL
		if jwksURL == "" {
			m, err := v.disc.get(ctx)
			if err != nil {
				return nil, err
			}
			if m.jwksURL == "" {
				return nil, errors.New("discovery document has no jwks_uri")
			}
			jwksURL = m.jwksURL
		}
		// RemoteKeySet caches the keys and refetches when it meets a kid it
		// does not know, which is how issuers roll keys.
		remote := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), v.cfg.HTTPClient), jwksURL)
		keys = classifyingKeySet{remote}
	}
	in := oidc.NewVerifier(v.cfg.Issuer, keys, &oidc.Config{
		SupportedSigningAlgs: v.cfg.Algorithms,
		SkipClientIDCheck:    true, // aud/azp checked in check
		SkipExpiryCheck:      true, // exp/nbf checked in check with our leeway and clock
	})
	v.inner.Store(in)
	return in, nil
}

func invalid(cause error) error {
	return fault.Unauthenticated(fault.CodeTokenInvalid, "the access token is invalid").Wrap(cause)
}

// keyFetchKey carries a *keyFetchResult through go-oidc, which flattens the
// key set's error into a string; the result tells a network failure fetching
// the JWKS (retry later) from a bad token (sign in again).
type keyFetchKey struct{}

type keyFetchResult struct{ err error }

type classifyingKeySet struct{ inner oidc.KeySet }

func (k classifyingKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.inner.VerifySignature(ctx, jwt)
	if err != nil {
		var ue *url.Error
		var ne net.Error
		if errors.As(err, &ue) || errors.As(err, &ne) {
			if r, ok := ctx.Value(keyFetchKey{}).(*keyFetchResult); ok {
				r.err = err
			}
		}
	}
	return payload, err
}

// tokenClaims is the JSON shape of the claims we read.
type tokenClaims struct {
	Iss               string       `json:"iss"`
	Sub               string       `json:"sub"`
	Aud               audience     `json:"aud"`
	Azp               string       `json:"azp"`
	Typ               string       `json:"typ"`
	Exp               *numericDate `json:"exp"`
	Nbf               *numericDate `json:"nbf"`
	Email             string       `json:"email"`
	Name              string       `json:"name"`
	PreferredUsername string       `json:"preferred_username"`
	RealmAccess       struct {
		Roles []string `json:"roles"`
	} `json:"realm_access"`
	Roles    []string `json:"roles"`
	TenantID string   `json:"tenant_id"`

	// The platform's own tokens only (verifyTrusted reads them).
	ActorType string `json:"actor_type"`
	ProjectID string `json:"project_id"`
	Scope     string `json:"scope"`
	Cred      string `json:"cred"`
}

func (c tokenClaims) identity() identity.Claims {
	name := c.Name
	if name == "" {
		name = c.PreferredUsername
	}
	var roles []string
	for _, r := range append(slices.Clone(c.RealmAccess.Roles), c.Roles...) {
		if r != "" && !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	out := identity.Claims{
		Issuer:   c.Iss,
		Subject:  c.Sub,
		Email:    c.Email,
		Name:     name,
		Roles:    roles,
		TenantID: c.TenantID,
	}
	if c.Exp != nil {
		out.ExpiresAt = c.Exp.Time()
	}
	return out
}

// audience is the aud claim: a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return fmt.Errorf("aud: %w", err)
	}
	*a = ss
	return nil
}

// numericDate is a JWT NumericDate: seconds since the epoch, possibly
// fractional.
type numericDate float64

func (d numericDate) Time() time.Time {
	sec := float64(d)
	whole := int64(sec)
	return time.Unix(whole, int64((sec-float64(whole))*1e9))
}
