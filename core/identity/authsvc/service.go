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

	"github.com/gpuaas/gpuaas/core/cache"
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
	// DenyTTL is how long a signed-out access token without an exp claim
	// stays refused; default 24 h. A token with one is refused until its
	// exp (plus [DenyMargin]), however long the issuer made it live.
	DenyTTL time.Duration
	// ServiceTokenTTL is the lifetime of service-account tokens; default
	// and maximum 15 min.
	ServiceTokenTTL time.Duration
	// MachineCacheTTL bounds how long this process trusts what it read
	// about a service-account credential or an API key: revocations take
	// effect within it (at once when Deps.Changes announces them). Default
	// 500 ms, at most 1 s.
	MachineCacheTTL time.Duration
	// TokenCacheSize bounds the verified-token cache (entries, keyed by
	// the token's SHA-256; the oldest is evicted first). Default 10,000;
	// negative turns the cache off.
	TokenCacheSize int
	// AccessCacheTTL is the safety net behind Deps.Changes: a cached
	// verification and the principal resolved with it are used for at most
	// this long (and never past the token's exp), even when no change was
	// announced. Default 30 s, at most 5 min.
	AccessCacheTTL time.Duration
}

// Defaults of Config.
const (
	DefaultStateTTL = 10 * time.Minute
	DefaultDenyTTL  = 24 * time.Hour
	// DenyMargin keeps a signed-out token refused past its exp for as long
	// as a verifier may still accept it (the OIDC verifier's leeway for
	// clock skew is at most 5 min).
	DenyMargin            = 5*time.Minute + time.Second
	DefaultTokenCacheSize = 10000
	DefaultAccessCacheTTL = 30 * time.Second
	MaxAccessCacheTTL     = 5 * time.Minute
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

	// Changes, when set, lets a verified token's principal (and machine
	// credentials' records) be reused while its generation is current:
	// a suspension, a membership change, a revocation or a sign-out moves
	// it, and the next request resolves again. Without it every request
	// resolves the caller (the signature check is still cached).
	Changes ports.AccessChanges
}

// Service implements the sign-in use cases.
type Service struct {
	cfg       Config
	d         Deps
	redirects map[string]bool

	saCache  ttlCache[saEntry]
	keyCache ttlCache[keyEntry]
	// tokens caches verified bearer tokens (nil: off); see Authenticate.
	tokens *cache.Bounded[[sha256.Size]byte, tokenEntry]
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
	if cfg.AccessCacheTTL == 0 {
		cfg.AccessCacheTTL = DefaultAccessCacheTTL
	}
	if cfg.AccessCacheTTL < 0 || cfg.AccessCacheTTL > MaxAccessCacheTTL {
		return nil, errors.New("authsvc: AccessCacheTTL must be between 0 and 5 min")
	}
	if cfg.TokenCacheSize == 0 {
		cfg.TokenCacheSize = DefaultTokenCacheSize
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	s := &Service{cfg: cfg, d: d, redirects: map[string]bool{}}
	if cfg.TokenCacheSize > 0 {
		s.tokens = cache.NewBounded[[sha256.Size]byte, tokenEntry](cfg.TokenCacheSize)
	}
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
	c, err := s.d.Verifier.Verify(ctx, accessToken)
	if err != nil {
		if fault.IsKind(err, fault.KindUnauthenticated) {
			return nil // nothing to end
		}
		return err
	}
	ttl := s.cfg.DenyTTL
	if !c.ExpiresAt.IsZero() {
		ttl = max(c.ExpiresAt.Sub(s.now()), 0) + DenyMargin
	}
	if err := s.d.Tokens.Put(ctx, denyKey(accessToken), []byte{1}, ttl); err != nil {
		return err
	}
	// Caches of the token's principal end here at once, and on every other
	// replica when the announcement arrives: their next request with it
	// reads the deny-list.
	if s.tokens != nil {
		s.tokens.Delete(sha256.Sum256([]byte(accessToken)))
	}
	if s.d.Changes != nil {
		return s.d.Changes.Announce(ctx)
	}
	return nil
}

// Authenticate verifies a bearer credential and resolves the caller: an
// API key (gpa_…; machine.go), or a token — signature, issuer, audience and
// time by the one verifier, which also holds the platform's own
// service-account tokens (machine.go) — refused when signed out.
//
// A token that verified is cached by its SHA-256 (Config.TokenCacheSize
// entries, until its exp and for at most Config.AccessCacheTTL), so its
// signature is checked once. With Deps.Changes the principal resolved for
// it — the deny-list read, the user, their tenant membership — is cached
// with it and reused while the access generation stays where it was when
// they were read; any suspension, membership change or sign-out moves the
// generation and the next request reads them again. Refusals are never
// cached.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (identity.Principal, error) {
	if looksLikeKey(accessToken) {
		return s.authenticateKey(ctx, accessToken)
	}
	now := s.now()
	gen := s.generation() // before anything is read: a change during the reads leaves the entry stale
	var (
		key    [sha256.Size]byte
		e      tokenEntry
		cached bool
	)
	if s.tokens != nil {
		key = sha256.Sum256([]byte(accessToken))
		e, cached = s.tokens.Get(key)
		cached = cached && e.usable(now, s.cfg.AccessCacheTTL)
		if cached && gen != 0 && e.gen == gen {
			return e.principal, nil
		}
	}
	claims := e.claims
	if !cached {
		var err error
		if claims, err = s.d.Verifier.Verify(ctx, accessToken); err != nil {
			return identity.Principal{}, err
		}
		e = tokenEntry{claims: claims, at: now}
	}
	if s.isPlatformToken(claims) {
		// The credential's state is checked on every request (its record
		// is cached apart, per credential); only the signature check is
		// kept here.
		if !cached {
			s.remember(key, e, now)
		}
		return s.authenticateServiceToken(ctx, claims)
	}
	denied, err := s.d.Tokens.Has(ctx, denyKey(accessToken))
	if err != nil {
		return identity.Principal{}, err
	}
	if denied {
		return identity.Principal{}, fault.Unauthenticated(fault.CodeTokenInvalid, "the access token was signed out")
	}
	p, err := s.d.Identity.Resolve(ctx, claims)
	if err != nil {
		return identity.Principal{}, err
	}
	e.gen, e.principal = gen, p
	s.remember(key, e, now)
	return p, nil
}

// tokenEntry is a verified token: its claims, when they were verified, and
// the principal resolved at generation gen (0: none cached).
type tokenEntry struct {
	claims    identity.Claims
	at        time.Time
	gen       uint64
	principal identity.Principal
}

// usable reports whether the verification still stands: before the
// token's exp and within the safety net's age.
func (e tokenEntry) usable(now time.Time, ttl time.Duration) bool {
	return now.Before(e.claims.ExpiresAt) && !now.Before(e.at) && now.Sub(e.at) < ttl
}

// remember caches e unless the cache is off or the token carries no exp
// (a verifier that does not say when a token ends is never cached).
func (s *Service) remember(key [sha256.Size]byte, e tokenEntry, now time.Time) {
	if s.tokens == nil || !e.usable(now, s.cfg.AccessCacheTTL) {
		return
	}
	s.tokens.Put(key, e)
}

// generation is the current access generation; 0 (cache no principal)
// without a change feed or while it is disconnected.
func (s *Service) generation() uint64 {
	if s.d.Changes == nil {
		return 0
	}
	return s.d.Changes.Generation()
}

func (s *Service) now() time.Time {
	if s.d.Clock != nil {
		return s.d.Clock.Now()
	}
	return time.Now()
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
