package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/ports"
)

// Config is the sign-in configuration.
type Config struct {
	// RedirectURIs are the exact redirect_uri values a sign-in may use. An
	// open list would let anyone send sign-in codes to their own site.
	RedirectURIs []string
	// AllowLoopbackRedirects also admits native applications' loopback
	// redirects (identity.IsLoopbackRedirect: http://127.0.0.1:<any
	// port>/callback), which the CLI's `gpuaas login` uses. The identity
	// provider must allow them too.
	AllowLoopbackRedirects bool
	// StateTTL bounds how long a started sign-in may take. Default 10 min.
	StateTTL time.Duration
	// DenyTTL is how long a signed-out access token stays refused. It must
	// outlive the issuer's access tokens (minutes, usually); default 24 h.
	DenyTTL time.Duration
	// ServiceTokenTTL is the lifetime of service-account tokens; default
	// and maximum 15 min.
	ServiceTokenTTL time.Duration
	// MachineCacheTTL bounds how long this process trusts what it read
	// about a service-account credential or an API key: revocations take
	// effect within it. Default 500 ms, at most 1 s.
	MachineCacheTTL time.Duration
}

// Defaults of Config.
const (
	DefaultStateTTL = 10 * time.Minute
	DefaultDenyTTL  = 24 * time.Hour
)

// Deps are the ports the service needs; all are required but Rand.
type Deps struct {
	Identity *identitysvc.Service
	Verifier ports.TokenVerifier
	IdP      ports.IdentityProvider
	// Tokens keeps the pending sign-ins (state → verifier) and the
	// access-token deny-list.
	Tokens   ports.TokenStore
	Policies ports.PolicyStore
	// Rand is the entropy source of states and verifiers (crypto/rand when nil).
	Rand io.Reader

	// Machine access (machine.go): service-account tokens and API keys.
	// Optional, all together: without them the token endpoint answers 503
	// feature_disabled and API keys are refused.
	Accounts ports.ServiceAccountStore
	Keys     ports.APIKeyStore
	Issuer   ports.TokenIssuer
	Audit    ports.AuditLog
	Clock    ports.Clock
	IDs      ports.IDs
}

// Service implements the sign-in use cases.
type Service struct {
	cfg       Config
	d         Deps
	redirects map[string]bool

	saCache  ttlCache[saEntry]
	keyCache ttlCache[keyEntry]
}

// New checks the configuration and dependencies.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Identity == nil || d.Verifier == nil || d.IdP == nil || d.Tokens == nil || d.Policies == nil {
		return nil, errors.New("authsvc: Identity, Verifier, IdP, Tokens and Policies are required")
	}
	if cfg.StateTTL == 0 {
		cfg.StateTTL = DefaultStateTTL
	}
	if cfg.DenyTTL == 0 {
		cfg.DenyTTL = DefaultDenyTTL
	}
	if cfg.StateTTL < 0 || cfg.DenyTTL < 0 {
		return nil, errors.New("authsvc: StateTTL and DenyTTL must not be negative")
	}
	if cfg.ServiceTokenTTL == 0 {
		cfg.ServiceTokenTTL = DefaultServiceTokenTTL
	}
	if cfg.MachineCacheTTL == 0 {
		cfg.MachineCacheTTL = DefaultMachineCacheTTL
	}
	if cfg.ServiceTokenTTL < time.Minute || cfg.ServiceTokenTTL > MaxServiceTokenTTL {
		return nil, errors.New("authsvc: ServiceTokenTTL must be between 1 min and 15 min")
	}
	if cfg.MachineCacheTTL < 0 || cfg.MachineCacheTTL > MaxMachineCacheTTL {
		return nil, errors.New("authsvc: MachineCacheTTL must be between 0 and 1 s")
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	s := &Service{cfg: cfg, d: d, redirects: map[string]bool{}}
	for _, u := range cfg.RedirectURIs {
		s.redirects[u] = true
	}
	return s, nil
}

// Session is a signed-in caller: the issuer's tokens and who they are.
type Session struct {
	Tokens    ports.Tokens
	Principal identity.Principal
}

// Key prefixes in the token store.
const (
	statePrefix = "oidc-state:"
	denyPrefix  = "denied-access-token:"
)

// pendingSignIn is what StartSignIn remembers under the state.
type pendingSignIn struct {
	Verifier    string `json:"verifier"`
	RedirectURI string `json:"redirect_uri"`
}

// StartSignIn begins an authorization-code sign-in: a fresh state and PKCE
// verifier (256 bits each) are remembered for StateTTL, and the issuer's
// authorization URL with the S256 challenge is returned.
func (s *Service) StartSignIn(ctx context.Context, redirectURI string) (string, error) {
	if !s.redirects[redirectURI] && !(s.cfg.AllowLoopbackRedirects && identity.IsLoopbackRedirect(redirectURI)) {
		return "", fault.Invalid("redirect_uri", "redirect_uri is not one of this platform's sign-in redirect URIs")
	}
	state, err := s.random()
	if err != nil {
		return "", fault.Internal(err)
	}
	verifier, err := s.random() // 43 characters, the RFC 7636 minimum
	if err != nil {
		return "", fault.Internal(err)
	}
	val, err := json.Marshal(pendingSignIn{Verifier: verifier, RedirectURI: redirectURI})
	if err != nil {
		return "", fault.Internal(err)
	}
	if err := s.d.Tokens.Put(ctx, statePrefix+state, val, s.cfg.StateTTL); err != nil {
		return "", err
	}
	target := s.d.IdP.AuthCodeURL(state, S256(verifier), redirectURI)
	if target == "" { // the port has no error; "" means the issuer could not be reached
		return "", fault.Unavailable("the identity provider is unreachable", nil)
	}
	return target, nil
}

// FinishSignIn consumes the state (once: a replayed callback fails),
// exchanges the code with its verifier and signs the user in.
func (s *Service) FinishSignIn(ctx context.Context, code, state, redirectURI string) (Session, error) {
	for _, f := range []struct{ name, v string }{{"code", code}, {"state", state}, {"redirect_uri", redirectURI}} {
		if f.v == "" {
			return Session{}, fault.Invalid(f.name, f.name+" is required")
		}
	}
	raw, err := s.d.Tokens.Consume(ctx, statePrefix+state)
	if fault.IsKind(err, fault.KindNotFound) {
		return Session{}, fault.Invalid("state", "unknown, used or expired sign-in state; start the sign-in again")
	}
	if err != nil {
		return Session{}, err
	}
	var pending pendingSignIn
	if err := json.Unmarshal(raw, &pending); err != nil {
		return Session{}, fault.Internal(err)
	}
	if pending.RedirectURI != redirectURI {
		return Session{}, fault.Invalid("redirect_uri", "redirect_uri does not match the one the sign-in started with")
	}
	tokens, err := s.d.IdP.Exchange(ctx, code, pending.Verifier, redirectURI)
	if err != nil {
		return Session{}, err
	}
	return s.session(ctx, tokens, true)
}

// Refresh exchanges a refresh token for new tokens.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Session, error) {
	if refreshToken == "" {
		return Session{}, fault.Unauthenticated(fault.CodeTokenMissing, "a refresh token is required (body or cookie)")
	}
	tokens, err := s.d.IdP.Refresh(ctx, refreshToken)
	if err != nil {
		return Session{}, err
	}
	return s.session(ctx, tokens, false)
}

// PersonalLogin signs in with a username and password, when the policy
// auth.personal_login_enabled allows it (403 feature_disabled otherwise:
// the route is published; whether it is on is an operator setting).
func (s *Service) PersonalLogin(ctx context.Context, username, password string) (Session, error) {
	vals, err := s.d.Policies.Values(ctx, "")
	if err != nil {
		return Session{}, err
	}
	if !vals.Bool(policy.PersonalLoginEnabled) {
		return Session{}, &fault.Error{Kind: fault.KindForbidden, Code: fault.CodeFeatureDisabled,
			Message: "personal login is disabled on this platform"}
	}
	if username == "" {
		return Session{}, fault.Invalid("username", "username is required")
	}
	if password == "" {
		return Session{}, fault.Invalid("password", "password is required")
	}
	tokens, err := s.d.IdP.PasswordLogin(ctx, username, password)
	if err != nil {
		return Session{}, err
	}
	return s.session(ctx, tokens, true)
}

// Logout revokes the refresh token at the issuer (an unknown or dead one is
// success, RFC 7009: the caller's goal, a token that no longer works,
// holds) and, when the caller presents its access token, refuses that token
// from now on (the deny-list): an access token is a bearer credential the
// issuer cannot recall, and signing out must end it, not leave it working
// until it expires. An access token that does not verify is ignored.
func (s *Service) Logout(ctx context.Context, refreshToken, accessToken string) error {
	if refreshToken != "" {
		if err := s.d.IdP.Revoke(ctx, refreshToken); err != nil &&
			!fault.IsKind(err, fault.KindUnauthenticated) && !fault.IsKind(err, fault.KindNotFound) &&
			!fault.IsKind(err, fault.KindInvalid) {
			return err
		}
	}
	if accessToken == "" {
		return nil
	}
	if _, err := s.d.Verifier.Verify(ctx, accessToken); err != nil {
		if fault.IsKind(err, fault.KindUnauthenticated) {
			return nil // nothing to end
		}
		return err
	}
	return s.d.Tokens.Put(ctx, denyKey(accessToken), []byte{1}, s.cfg.DenyTTL)
}

// Authenticate verifies a bearer credential and resolves the caller: an
// API key (gpa_…; machine.go), or a token — signature, issuer, audience and
// time by the one verifier, which also holds the platform's own
// service-account tokens (machine.go) — refused when signed out.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (identity.Principal, error) {
	if looksLikeKey(accessToken) {
		return s.authenticateKey(ctx, accessToken)
	}
	claims, err := s.d.Verifier.Verify(ctx, accessToken)
	if err != nil {
		return identity.Principal{}, err
	}
	if s.isPlatformToken(claims) {
		return s.authenticateServiceToken(ctx, claims)
	}
	denied, err := s.d.Tokens.Has(ctx, denyKey(accessToken))
	if err != nil {
		return identity.Principal{}, err
	}
	if denied {
		return identity.Principal{}, fault.Unauthenticated(fault.CodeTokenInvalid, "the access token was signed out")
	}
	return s.d.Identity.Resolve(ctx, claims)
}

// session verifies the issued access token like any other (a provider
// misconfiguration shows here, not on the next call) and signs the user in
// (first sign-in provisions) or resolves them.
func (s *Service) session(ctx context.Context, tokens ports.Tokens, signIn bool) (Session, error) {
	claims, err := s.d.Verifier.Verify(ctx, tokens.AccessToken)
	if err != nil {
		return Session{}, err
	}
	var p identity.Principal
	if signIn {
		p, err = s.d.Identity.SignIn(ctx, claims)
	} else {
		p, err = s.d.Identity.Resolve(ctx, claims)
	}
	if err != nil {
		return Session{}, err
	}
	return Session{Tokens: tokens, Principal: p}, nil
}

// random returns 32 random bytes, base64url without padding.
func (s *Service) random() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.d.Rand, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// S256 is the PKCE S256 code challenge of a verifier (RFC 7636).
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// denyKey names a signed-out access token by its hash: the store never
// holds the token itself.
func denyKey(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return denyPrefix + hex.EncodeToString(sum[:])
}
