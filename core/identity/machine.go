package identity

import (
	"crypto/sha256"
	"crypto/subtle"
	"hash/crc32"
	"io"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
)

// Machine access: service accounts (project-scoped identities for
// integrations, doc/service-accounts.md) and personal API keys (a person's
// key for the CLI, notebooks and scripts). Both act inside one project,
// carry scopes, and never reach tenant-admin or platform-admin routes.

// CallerKind says how a principal authenticated.
type CallerKind string

const (
	// CallerServiceAccount: a service-account token from POST /auth/service-token.
	CallerServiceAccount CallerKind = "service_account"
	// CallerAPIKey: a person's API key (gpa_…).
	CallerAPIKey CallerKind = "api_key"
)

// Scope is what a machine credential may do. People signed in
// interactively hold every scope.
type Scope string

const (
	// ScopeRead: every read (GET) the caller could otherwise make, except money.
	ScopeRead Scope = "read"
	// ScopeAllocations: request, quote and release allocations, SSH keys,
	// terminal tokens.
	ScopeAllocations Scope = "allocations"
	// ScopeStorage: change project storage.
	ScopeStorage Scope = "storage"
	// ScopeBilling: read the balance, ledger and usage, and top up.
	ScopeBilling Scope = "billing"
	// ScopeInteractive is not a scope a credential can hold: routes that
	// name it are for people signed in interactively only (API key
	// management, tenant and platform administration).
	ScopeInteractive Scope = "interactive"
)

// GrantableScopes are the scopes a credential may hold, in display order.
var GrantableScopes = []Scope{ScopeRead, ScopeAllocations, ScopeStorage, ScopeBilling}

// Valid reports whether s is a scope a credential may hold.
func (s Scope) Valid() bool { return slices.Contains(GrantableScopes, s) }

// ParseScopes checks a requested scope list: known scopes, no duplicates,
// at least one. The result is in GrantableScopes order.
func ParseScopes(field string, in []string) ([]Scope, error) {
	if len(in) == 0 {
		return nil, fault.Invalid(field, "at least one scope is required")
	}
	seen := map[Scope]bool{}
	for _, s := range in {
		sc := Scope(s)
		if !sc.Valid() {
			return nil, fault.Invalid(field, "unknown scope; use read, allocations, storage or billing")
		}
		if seen[sc] {
			return nil, fault.Invalid(field, "a scope is listed twice")
		}
		seen[sc] = true
	}
	out := make([]Scope, 0, len(seen))
	for _, s := range GrantableScopes {
		if seen[s] {
			out = append(out, s)
		}
	}
	return out, nil
}

// ScopesForRole are the scopes a service account of a project role holds:
// viewers read; members and admins also request allocations and change
// storage; only admins touch money.
func ScopesForRole(r ProjectRole) []Scope {
	switch r {
	case ProjectAdmin:
		return []Scope{ScopeRead, ScopeAllocations, ScopeStorage, ScopeBilling}
	case ProjectMember:
		return []Scope{ScopeRead, ScopeAllocations, ScopeStorage}
	default:
		return []Scope{ScopeRead}
	}
}

// Machine is what a principal authenticated by a machine credential is
// limited to.
type Machine struct {
	Kind CallerKind
	// ID is the service account's id or the API key's id.
	ID string
	// CredentialID is the service-account credential a token was issued
	// from ("" for API keys): revoking it ends the token.
	CredentialID string
	// ProjectID is the one project the credential acts in.
	ProjectID string
	// ProjectRole is a service account's role in its project ("" for API
	// keys: their holder's own role applies).
	ProjectRole ProjectRole
	Scopes      []Scope
	// SpendCapMinor bounds what an API key may spend per UTC day (0: none).
	SpendCapMinor int64
}

// Has reports whether the machine holds scope s. ScopeInteractive is never
// held.
func (m *Machine) Has(s Scope) bool { return s != ScopeInteractive && slices.Contains(m.Scopes, s) }

// Allows reports whether the principal may use a route that needs scope s:
// people signed in interactively may use every route; machines need the
// scope (and never pass an interactive-only route).
func (p Principal) Allows(s Scope) bool { return p.Machine == nil || p.Machine.Has(s) }

// Interactive reports whether the principal is a person signed in through
// the identity provider (not a service account or an API key).
func (p Principal) Interactive() bool { return p.Machine == nil }

// ServiceAccount is a project-scoped machine identity. Its id is also the
// id of the users row that acts for it (allocations, SSH keys and the
// like name a user), which no identity provider can sign in as.
type ServiceAccount struct {
	ID         string
	TenantID   string
	ProjectID  string
	Name       string
	Role       ProjectRole
	CreatedBy  string
	CreatedAt  time.Time
	DisabledAt *time.Time
}

// ServiceAccountIssuer is the issuer recorded on the users row of every
// service account: no OIDC issuer has this name, so no sign-in reaches it.
const ServiceAccountIssuer = "urn:gpuaas:service-account"

// Credential is one client secret of a service account, stored hashed.
type Credential struct {
	ID               string
	ServiceAccountID string
	SecretHash       []byte // SHA-256 of the secret
	// Hint is the secret's first characters, shown in listings so people
	// can tell credentials apart; it cannot be used to guess the rest.
	Hint      string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt *time.Time
	RevokedAt *time.Time
	// LastUsedAt is when it last bought a token; nil if never.
	LastUsedAt *time.Time
}

// Active reports whether the credential may be used at now.
func (c Credential) Active(now time.Time) bool {
	return c.RevokedAt == nil && (c.ExpiresAt == nil || now.Before(*c.ExpiresAt))
}

// MaxActiveCredentials is how many credentials a service account may hold
// at once: two, so a secret rotates without downtime (add, deploy, revoke
// the old one).
const MaxActiveCredentials = 2

// APIKey is a person's key, stored hashed, found by its lookup id.
type APIKey struct {
	ID        string
	UserID    string
	TenantID  string
	ProjectID string
	Name      string
	// Lookup is the key's public part after the prefix (LookupLength
	// characters): unique, indexed, shown in listings.
	Lookup        string
	Hash          []byte // SHA-256 of the whole key
	Scopes        []Scope
	SpendCapMinor int64 // per UTC day; 0: none
	CreatedAt     time.Time
	ExpiresAt     *time.Time
	LastUsedAt    *time.Time
	RevokedAt     *time.Time
}

// Usable reports whether the key may be used at now.
func (k APIKey) Usable(now time.Time) bool {
	return k.RevokedAt == nil && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

// Display is how listings show a key: its prefix and lookup id.
func (k APIKey) Display() string { return APIKeyPrefix + k.Lookup + "…" }

// Secret formats. Both are a fixed prefix (so secret scanners find leaked
// ones: GitHub, GitGuardian and trufflehog match on such prefixes), 43
// base62 characters of 256 random bits, and a 6-character base62 CRC-32 of
// what precedes it, which tells a mistyped or truncated secret from a
// guessed one without a lookup. Base62 keeps them one word for
// double-click selection.
const (
	APIKeyPrefix               = "gpa_"
	ServiceAccountSecretPrefix = "gps_"
	secretBodyLength           = 43
	secretCheckLength          = 6
	// LookupLength is how many characters of an API key's body are its
	// public lookup id (62^12 ≈ 2^71: collisions are not a concern; the
	// store's unique index refuses one anyway).
	LookupLength = 12
	// SecretLength is the length of every secret.
	SecretLength = 4 + secretBodyLength + secretCheckLength
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewSecret draws a secret with the given prefix (APIKeyPrefix or
// ServiceAccountSecretPrefix) from rand.
func NewSecret(rand io.Reader, prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", err
	}
	body := encode62(new(big.Int).SetBytes(b), secretBodyLength)
	head := prefix + body
	return head + encode62(big.NewInt(int64(crc32.ChecksumIEEE([]byte(head)))), secretCheckLength), nil
}

// ParseSecret checks a presented secret's shape and checksum and returns
// its body (what follows the prefix, less the checksum). ok is false for
// anything malformed: such a secret names nothing, and is refused without
// a lookup.
func ParseSecret(s, prefix string) (body string, ok bool) {
	if len(s) != SecretLength || !strings.HasPrefix(s, prefix) {
		return "", false
	}
	for i := len(prefix); i < len(s); i++ {
		if strings.IndexByte(base62, s[i]) < 0 {
			return "", false
		}
	}
	head := s[:len(s)-secretCheckLength]
	want := encode62(big.NewInt(int64(crc32.ChecksumIEEE([]byte(head)))), secretCheckLength)
	if subtle.ConstantTimeCompare([]byte(want), []byte(s[len(head):])) != 1 {
		return "", false
	}
	return head[len(prefix):], true
}

// APIKeyLookup returns the lookup id of a well-formed API key.
func APIKeyLookup(key string) (string, bool) {
	body, ok := ParseSecret(key, APIKeyPrefix)
	if !ok {
		return "", false
	}
	return body[:LookupLength], true
}

// LooksLikeAPIKey reports whether a bearer credential is meant as an API
// key (it may still be malformed).
func LooksLikeAPIKey(s string) bool { return strings.HasPrefix(s, APIKeyPrefix) }

// HashSecret is the stored form of a secret: SHA-256. The secrets carry
// 256 random bits, so a slow password hash would add nothing but latency
// on every request.
func HashSecret(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// SecretMatches compares a presented secret with a stored hash in constant
// time.
func SecretMatches(presented string, stored []byte) bool {
	sum := sha256.Sum256([]byte(presented))
	return len(stored) == len(sum) && subtle.ConstantTimeCompare(sum[:], stored) == 1
}

// SecretHint is what listings show of a service-account secret: its prefix
// and first four characters.
func SecretHint(s string) string {
	if len(s) < 8 {
		return ""
	}
	return s[:8] + "…"
}

func encode62(n *big.Int, width int) string {
	out := make([]byte, width)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62[mod.Int64()]
	}
	return string(out)
}

// Lengths and bounds of machine-access inputs (the API contract's limits
// equal them).
const (
	// CredentialNameMaxLength bounds service account and API key names.
	CredentialNameMaxLength = 100
	// MaxAPIKeyLifetime bounds an API key's expiry: one year.
	MaxAPIKeyLifetime = 366 * 24 * time.Hour
	// MaxSpendCapMinor bounds a key's daily spend cap.
	MaxSpendCapMinor = 1_000_000_000
)

// LoopbackRedirectPath is the path of a native application's loopback
// redirect: the CLI's `gpuaas login` listens on 127.0.0.1 at a free port.
const LoopbackRedirectPath = "/callback"

// IsLoopbackRedirect reports whether uri is a native application's
// loopback redirect (RFC 8252 §7.3): http on 127.0.0.1 or [::1] — never
// "localhost", which a resolver may send elsewhere (§8.3) — with any port,
// path LoopbackRedirectPath, and nothing else. Such a redirect delivers the
// code to a process on the user's own machine, which is why any port may be
// allowed without registering each.
func IsLoopbackRedirect(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	host, port := u.Hostname(), u.Port()
	if (host != "127.0.0.1" && host != "::1") || port == "" || u.Path != LoopbackRedirectPath {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536 && strconv.Itoa(n) == port
}
