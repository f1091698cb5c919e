package devoidc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/ports"
)

// DefaultClientID is the public client the platform's console and API use.
const DefaultClientID = "gpuaas"

// DemoUser is a user the dev provider can sign in.
type DemoUser struct {
	Username string
	Password string
	Email    string
	Name     string
	Roles    []string // realm_access.roles in the access token
	// Subject is the sub claim; default a UUID derived from Username, so it
	// is stable across restarts and equal for everyone running `gpuaas dev`.
	Subject string
	// TenantID, when set, is put in the tenant_id claim.
	TenantID string
}

// DefaultUsers are the demo users of `gpuaas dev`. Each password equals the
// username. Development only.
func DefaultUsers() []DemoUser {
	return []DemoUser{
		{Username: "alice", Password: "alice", Email: "alice@example.com", Name: "Alice Example", Roles: []string{"user"}},
		{Username: "bob", Password: "bob", Email: "bob@example.com", Name: "Bob Example", Roles: []string{"user"}},
		{Username: "admin", Password: "admin", Email: "admin@example.com", Name: "Platform Admin", Roles: []string{"admin"}},
	}
}

// Config configures a [Provider].
type Config struct {
	// Issuer is the provider's external URL, e.g.
	// http://127.0.0.1:8080/dev-oidc when mounted on the API server. Its path
	// is the prefix the provider serves under. Required ([Serve] fills it).
	Issuer string
	// ClientID of the single public client; default [DefaultClientID].
	ClientID string
	// ClientSecret, when set, makes the client confidential: the token and
	// revocation endpoints then require it (Basic or form).
	ClientSecret string
	// RedirectURIs the client may use, matched exactly. Required.
	RedirectURIs []string
	// AllowLoopbackRedirects also admits native applications' loopback
	// redirects, any port (identity.IsLoopbackRedirect; the CLI's login).
	AllowLoopbackRedirects bool
	// PostLogoutRedirectURIs allowed at end_session; default RedirectURIs.
	PostLogoutRedirectURIs []string
	// Users; default [DefaultUsers].
	Users []DemoUser
	// AccessTTL is the lifetime of access and ID tokens; default 5 minutes.
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of each refresh token; default 8 hours.
	RefreshTTL time.Duration
	// SigningKey signs tokens: *rsa.PrivateKey (RS256, ≥ 2048 bits),
	// *ecdsa.PrivateKey on P-256 (ES256) or ed25519.PrivateKey (EdDSA).
	// Default: a fresh P-256 key, so tokens do not survive a restart;
	// [LoadOrCreateKey] keeps one in a file.
	SigningKey crypto.Signer
	// StateFile, when set, is where the provider keeps its sign-in sessions
	// (each refresh token's SHA-256, its session and expiry; never a token
	// itself), written (mode 0600) after every change and read by [New]. With
	// the same SigningKey and Issuer, a restarted provider then honours the
	// access and refresh tokens it issued before: nobody is signed out.
	StateFile string
	// Directory, when set, lets people the platform expects (an operator
	// created them, a tenant invited them) sign in with their email; the
	// password they give the first time becomes theirs.
	Directory Directory
	// PeopleFile keeps those people's bcrypt-hashed passwords (mode 0600)
	// across restarts; empty: in memory only.
	PeopleFile string
	// RequirePassword turns off one-click sign-in from the login page.
	RequirePassword bool
	// DisablePasswordGrant refuses the resource-owner password grant.
	DisablePasswordGrant bool
	// Clock tells the time; default the system clock.
	Clock ports.Clock
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	u, err := url.Parse(c.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("devoidc: issuer %q must be an absolute http(s) URL without query", c.Issuer)
	}
	if strings.HasSuffix(c.Issuer, "/") {
		return fmt.Errorf("devoidc: issuer %q must not end with a slash", c.Issuer)
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if len(c.RedirectURIs) == 0 {
		return errors.New("devoidc: at least one redirect URI is required")
	}
	for _, r := range append(slices.Clone(c.RedirectURIs), c.PostLogoutRedirectURIs...) {
		ru, err := url.Parse(r)
		if err != nil || !ru.IsAbs() || ru.Fragment != "" {
			return fmt.Errorf("devoidc: redirect URI %q must be absolute without fragment", r)
		}
	}
	if len(c.PostLogoutRedirectURIs) == 0 {
		c.PostLogoutRedirectURIs = slices.Clone(c.RedirectURIs)
	}
	if len(c.Users) == 0 {
		c.Users = DefaultUsers()
	}
	seen := map[string]bool{}
	for _, du := range c.Users {
		if du.Username == "" || du.Password == "" {
			return errors.New("devoidc: demo users need a username and a password")
		}
		if seen[du.Username] {
			return fmt.Errorf("devoidc: duplicate demo user %q", du.Username)
		}
		seen[du.Username] = true
	}
	if c.AccessTTL == 0 {
		c.AccessTTL = 5 * time.Minute
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = 8 * time.Hour
	}
	if c.AccessTTL < 0 || c.RefreshTTL < 0 {
		return errors.New("devoidc: token lifetimes must be positive")
	}
	if c.SigningKey == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), cryptoRand)
		if err != nil {
			return fmt.Errorf("devoidc: generate signing key: %w", err)
		}
		c.SigningKey = k
	}
	if _, err := algorithmFor(c.SigningKey); err != nil {
		return err
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	return nil
}

func algorithmFor(k crypto.Signer) (string, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return "", errors.New("devoidc: RSA signing keys must have at least 2048 bits")
		}
		return "RS256", nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return "", errors.New("devoidc: ECDSA signing keys must be on P-256")
		}
		return "ES256", nil
	case ed25519.PrivateKey:
		return "EdDSA", nil
	default:
		return "", fmt.Errorf("devoidc: unsupported signing key type %T", k)
	}
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
