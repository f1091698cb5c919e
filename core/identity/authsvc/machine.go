package authsvc

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/ports"
)

// Machine access: the client-credentials token endpoint for service
// accounts, and authentication of their tokens and of personal API keys.
//
// Revocation within a second: what a credential or key authorises is
// cached per process for at most Config.MachineCacheTTL (default 500 ms),
// then read again; every request still compares the presented key's hash
// with the stored one in constant time. The cache is what keeps an API-key
// request as cheap as verifying a JWT (make bench).

// Defaults and bounds of the machine-access configuration.
const (
	DefaultServiceTokenTTL = 15 * time.Minute
	MaxServiceTokenTTL     = 15 * time.Minute
	DefaultMachineCacheTTL = 500 * time.Millisecond
	MaxMachineCacheTTL     = time.Second
	// touchEvery is how often an API key's last use is written (per
	// process): last_used_at is precise to about a minute.
	touchEvery = time.Minute
	// machineCacheMax bounds each cache; when full it is emptied (entries
	// are a second old at most, so the cost is a burst of reads).
	machineCacheMax = 10000
)

// CodeInvalidClient is the token endpoint's refusal: unknown client,
// wrong, revoked or expired secret, or a disabled account — one code and
// one message for all, so probing learns nothing.
const CodeInvalidClient fault.Code = "invalid_client"

func errInvalidClient() *fault.Error {
	return fault.Unauthenticated(CodeInvalidClient, "the client id or secret is invalid, revoked or expired")
}

func errInvalidKey() *fault.Error {
	return fault.Unauthenticated(fault.CodeTokenInvalid, "the API key is invalid, revoked or expired")
}

func errMachineOff() *fault.Error {
	return &fault.Error{Kind: fault.KindUnavailable, Code: fault.CodeFeatureDisabled,
		Message: "machine access (service accounts, API keys) is not configured on this platform"}
}

// machineOn reports whether the machine-access dependencies are wired.
func (s *Service) machineOn() bool {
	return s.d.Accounts != nil && s.d.Keys != nil && s.d.Issuer != nil && s.d.Audit != nil && s.d.Clock != nil && s.d.IDs != nil
}

// ServiceToken is what the token endpoint returns.
type ServiceToken struct {
	AccessToken string
	ExpiresIn   int // seconds
	Scopes      []identity.Scope
}

// IssueServiceToken is the client-credentials grant: a service account's
// id and one of its active secrets buy a short-lived access token signed by
// the platform (actor_type service_account, project_id, scope from the
// account's role, cred naming the credential). Every outcome is audited;
// secrets never are.
func (s *Service) IssueServiceToken(ctx context.Context, clientID, secret string) (ServiceToken, error) {
	if !s.machineOn() {
		return ServiceToken{}, errMachineOff()
	}
	now := s.d.Clock.Now()
	sa, cred, reason, err := s.checkClient(ctx, clientID, secret, now)
	if err != nil {
		return ServiceToken{}, err
	}
	if reason != "" {
		// A failed audit write must not turn a refusal into a 500.
		_ = s.auditToken(ctx, sa, "", audit.Denied, reason)
		return ServiceToken{}, errInvalidClient()
	}
	scopes := identity.ScopesForRole(sa.Role)
	names := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		names = append(names, string(sc))
	}
	tok, err := s.d.Issuer.IssueServiceToken(ctx, ports.ServiceTokenClaims{ID: s.d.IDs.NewID(),
		ServiceAccountID: sa.ID, TenantID: sa.TenantID, ProjectID: sa.ProjectID, CredentialID: cred.ID,
		Scopes: names, IssuedAt: now, ExpiresAt: now.Add(s.cfg.ServiceTokenTTL)})
	if err != nil {
		return ServiceToken{}, err
	}
	if err := s.auditToken(ctx, sa, cred.ID, audit.Success, ""); err != nil {
		return ServiceToken{}, err // no token the log does not show
	}
	// Its admins see when each secret was last used (one write per token:
	// a client exchanges once per token lifetime, not per request).
	if err := s.d.Accounts.TouchCredential(ctx, cred.ID, now); err != nil {
		return ServiceToken{}, err
	}
	return ServiceToken{AccessToken: tok, ExpiresIn: int(s.cfg.ServiceTokenTTL / time.Second), Scopes: scopes}, nil
}

// checkClient finds the account and the credential the secret belongs to.
// A refusal comes back as a reason for the audit log, never to the caller.
// The secret is compared with every active credential's hash in constant
// time, and with a dummy hash when the account is unknown, so timing says
// as little as the answer.
func (s *Service) checkClient(ctx context.Context, clientID, secret string, now time.Time) (identity.ServiceAccount, identity.Credential, string, error) {
	if _, ok := identity.ParseSecret(secret, identity.ServiceAccountSecretPrefix); !ok || clientID == "" || len(clientID) > identity.IDMaxLength {
		return identity.ServiceAccount{}, identity.Credential{}, "malformed", nil
	}
	sa, err := s.d.Accounts.GetServiceAccount(ctx, clientID)
	if fault.IsKind(err, fault.KindNotFound) {
		identity.SecretMatches(secret, dummyHash[:])
		return identity.ServiceAccount{}, identity.Credential{}, "unknown_client", nil
	}
	if err != nil {
		return sa, identity.Credential{}, "", err
	}
	creds, err := s.d.Accounts.Credentials(ctx, sa.ID)
	if err != nil {
		return sa, identity.Credential{}, "", err
	}
	var match identity.Credential
	found := false
	for _, c := range creds {
		if c.Active(now) && identity.SecretMatches(secret, c.SecretHash) {
			match, found = c, true
		}
	}
	switch {
	case !found:
		return sa, match, "secret_mismatch", nil
	case sa.DisabledAt != nil:
		return sa, match, "disabled", nil
	}
	return sa, match, "", nil
}

var dummyHash = [32]byte{}

func (s *Service) auditToken(ctx context.Context, sa identity.ServiceAccount, credID string, outcome audit.Outcome, reason string) error {
	ev := audit.Event{ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: audit.ActorServiceAccount,
		ActorID: sa.ID, TenantID: sa.TenantID, ProjectID: sa.ProjectID, Action: "auth.service_token",
		ResourceType: resource.TypeUser, Outcome: outcome, CorrelationID: callctx.CorrelationID(ctx),
		SourceIP: callctx.SourceIP(ctx)}
	if sa.ID != "" {
		ev.ResourceID = resource.New("", sa.TenantID, sa.ProjectID, resource.TypeUser, sa.ID).String()
	}
	ev.Metadata = map[string]any{}
	if credID != "" {
		ev.Metadata["credential_id"] = credID
	}
	if reason != "" {
		ev.Metadata["reason"] = reason
	}
	return s.d.Audit.Record(ctx, ev)
}

// authenticateServiceToken turns verified platform claims into the
// service account's principal, after checking (cached for at most
// MachineCacheTTL) that its credential is active and the account enabled.
func (s *Service) authenticateServiceToken(ctx context.Context, c identity.Claims) (identity.Principal, error) {
	if c.ActorType != string(identity.CallerServiceAccount) || c.CredentialID == "" || c.ProjectID == "" {
		return identity.Principal{}, fault.Unauthenticated(fault.CodeTokenInvalid, "the access token is invalid")
	}
	now, gen := s.d.Clock.Now(), s.generation()
	e, ok := s.saCache.get(c.CredentialID, now, s.cfg.MachineCacheTTL, gen)
	if !ok {
		cred, err := s.d.Accounts.GetCredential(ctx, c.CredentialID)
		if fault.IsKind(err, fault.KindNotFound) {
			return identity.Principal{}, fault.Unauthenticated(fault.CodeTokenInvalid, "the access token was revoked")
		}
		if err != nil {
			return identity.Principal{}, err
		}
		sa, err := s.d.Accounts.GetServiceAccount(ctx, cred.ServiceAccountID)
		if err != nil && !fault.IsKind(err, fault.KindNotFound) {
			return identity.Principal{}, err
		}
		e = saEntry{cred: cred, sa: sa, at: now, gen: gen}
		s.saCache.put(c.CredentialID, e)
	}
	sa := e.sa
	if !e.cred.Active(now) || sa.ID == "" || sa.DisabledAt != nil || sa.ID != c.Subject || sa.TenantID != c.TenantID ||
		sa.ProjectID != c.ProjectID {
		return identity.Principal{}, fault.Unauthenticated(fault.CodeTokenInvalid, "the access token was revoked")
	}
	// The token's scopes, never more than the account's role allows now.
	var scopes []identity.Scope
	for _, sc := range identity.ScopesForRole(sa.Role) {
		if slices.Contains(c.Scopes, string(sc)) {
			scopes = append(scopes, sc)
		}
	}
	return identity.Principal{
		User: identity.User{ID: sa.ID, Issuer: identity.ServiceAccountIssuer, Subject: sa.ID, DisplayName: sa.Name,
			Role: identity.RoleUser, Status: identity.UserActive, CreatedAt: sa.CreatedAt},
		TenantID: sa.TenantID, TenantRole: identity.TenantMember,
		Machine: &identity.Machine{Kind: identity.CallerServiceAccount, ID: sa.ID, CredentialID: e.cred.ID,
			ProjectID: sa.ProjectID, ProjectRole: sa.Role, Scopes: scopes},
	}, nil
}

// authenticateKey resolves a personal API key: its shape and checksum, its
// record (cached for at most MachineCacheTTL), the hash compared in
// constant time on every request, expiry and revocation, and its holder's
// principal, limited to the key's project and scopes and never an
// operator.
func (s *Service) authenticateKey(ctx context.Context, raw string) (identity.Principal, error) {
	if !s.machineOn() {
		return identity.Principal{}, errInvalidKey()
	}
	lookup, ok := identity.APIKeyLookup(raw)
	if !ok {
		return identity.Principal{}, errInvalidKey()
	}
	now, gen := s.d.Clock.Now(), s.generation()
	e, ok := s.keyCache.get(lookup, now, s.cfg.MachineCacheTTL, gen)
	if !ok {
		k, err := s.d.Keys.APIKeyByLookup(ctx, lookup)
		if fault.IsKind(err, fault.KindNotFound) {
			identity.SecretMatches(raw, dummyHash[:])
			return identity.Principal{}, errInvalidKey()
		}
		if err != nil {
			return identity.Principal{}, err
		}
		e = keyEntry{key: k, at: now, gen: gen}
		if identity.SecretMatches(raw, k.Hash) && k.Usable(now) {
			p, err := s.d.Identity.PrincipalOf(ctx, k.UserID)
			if err != nil && !fault.IsKind(err, fault.KindNotFound) && !fault.IsKind(err, fault.KindForbidden) {
				return identity.Principal{}, err
			}
			e.holder, e.holderErr = p, err
			if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= touchEvery {
				if err := s.d.Keys.TouchAPIKey(ctx, k.ID, now); err != nil {
					return identity.Principal{}, err
				}
				e.key.LastUsedAt = &now
			}
			// Only a key that authenticated is cached: a wrong secret with a
			// real lookup id reads the store each time (and is counted by
			// the host's unauthenticated budget).
			s.keyCache.put(lookup, e)
		}
	}
	k := e.key
	if !identity.SecretMatches(raw, k.Hash) || !k.Usable(now) {
		return identity.Principal{}, errInvalidKey()
	}
	if e.holderErr != nil {
		return identity.Principal{}, e.holderErr
	}
	p := e.holder
	if p.TenantID != k.TenantID {
		return identity.Principal{}, errInvalidKey()
	}
	p.User.Role = identity.RoleUser
	p.Machine = &identity.Machine{Kind: identity.CallerAPIKey, ID: k.ID, ProjectID: k.ProjectID,
		Scopes: slices.Clone(k.Scopes), SpendCapMinor: k.SpendCapMinor}
	return p, nil
}

// isPlatformToken reports whether verified claims come from the platform's
// own issuer.
func (s *Service) isPlatformToken(c identity.Claims) bool {
	return s.machineOn() && c.Issuer == s.d.Issuer.Issuer()
}

// looksLikeKey reports whether a bearer credential is an API key.
func looksLikeKey(raw string) bool { return strings.HasPrefix(raw, identity.APIKeyPrefix) }

type saEntry struct {
	cred identity.Credential
	sa   identity.ServiceAccount
	at   time.Time
	gen  uint64
}

type keyEntry struct {
	key       identity.APIKey
	holder    identity.Principal
	holderErr error
	at        time.Time
	gen       uint64
}

// ttlCache is a small map whose entries are fresh for a TTL and, while the
// access generation is known (Deps.Changes), only at the generation they
// were read at: a revocation announced by any replica ends them at once.
type ttlCache[V interface{ stamp() (time.Time, uint64) }] struct {
	mu sync.RWMutex
	m  map[string]V
}

func (e saEntry) stamp() (time.Time, uint64)  { return e.at, e.gen }
func (e keyEntry) stamp() (time.Time, uint64) { return e.at, e.gen }

func (c *ttlCache[V]) get(k string, now time.Time, ttl time.Duration, gen uint64) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	at, vgen := v.stamp()
	if !ok || now.Sub(at) >= ttl || now.Before(at) || (gen != 0 && vgen != gen) {
		var zero V
		return zero, false
	}
	return v, true
}

func (c *ttlCache[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= machineCacheMax {
		c.m = map[string]V{}
	}
	c.m[k] = v
}

// Forget drops what the caches hold, so a revocation made by this process
// takes effect here at once (other processes within the cache lifetime).
func (s *Service) Forget() {
	s.saCache.mu.Lock()
	s.saCache.m = nil
	s.saCache.mu.Unlock()
	s.keyCache.mu.Lock()
	s.keyCache.m = nil
	s.keyCache.mu.Unlock()
}
