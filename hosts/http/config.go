package httphost

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Config is the HTTP host's typed configuration. Hosts read it from flags or
// the environment; nothing below reads configuration itself.
type Config struct {
	// Addr is the listen address. Default 127.0.0.1:8080: a fresh checkout
	// does not expose the API beyond the machine until told to.
	Addr string
	// PublicBaseURL is how browsers reach this host (scheme://host[:port]).
	// Default http://<Addr>. It is the default redirect URI base and the
	// default allowed CORS origin.
	PublicBaseURL string
	// AllowedRedirectURIs are the exact redirect_uri values the OIDC
	// authorize and exchange routes accept. Default:
	// PublicBaseURL + "/auth/callback". An open list would let anyone use
	// this host to send sign-in codes to their own site.
	AllowedRedirectURIs []string
	// AllowLoopbackRedirects also admits native applications' loopback
	// redirects (http://127.0.0.1:<any port>/callback, RFC 8252): the CLI's
	// `gpuaas login`. The identity provider must allow them too.
	AllowLoopbackRedirects bool
	// AllowedOrigins are the browser origins allowed to call the API
	// cross-origin, with credentials. Explicit only: "*" is refused because
	// credentials must never be granted to every origin. Default:
	// PublicBaseURL's origin.
	AllowedOrigins []string
	// TrustedProxies are the peers (CIDR prefixes or addresses) whose
	// Forwarded / X-Forwarded-For headers name the client: rate limits of
	// anonymous callers and audit records then use the real client address.
	// Empty: the peer's address, headers ignored.
	TrustedProxies []netip.Prefix
	// CookieInsecure drops the Secure flag from the refresh cookie. Only for
	// development over plain http; production cookies are always Secure.
	CookieInsecure bool
	// RefreshCookieTTL is the refresh cookie's Max-Age. Default 7 days; the
	// identity provider's own refresh-token lifetime still applies.
	RefreshCookieTTL time.Duration
	// BodyLimit caps request bodies in bytes. Default 1 MiB.
	BodyLimit int64
	// HeaderLimit caps the request line and headers in bytes: more is 431
	// headers_too_large in the error body. Default 64 KiB. The listener
	// reads up to MaxHeaderBytes (1 MiB) before any handler can answer.
	HeaderLimit int
	// MetricsDisabled turns GET /metrics into a 404 (for deployments that
	// must not expose it on the API listener).
	MetricsDisabled bool
	// HealthTimeout bounds each health check. Default 2s: load balancers
	// poll /healthz and must get an answer quickly even when a dependency
	// hangs.
	HealthTimeout time.Duration
	// ReadHeaderTimeout bounds how long a client may take to send headers
	// (slowloris). Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout time.Duration
}

// Defaults applied by CheckAndSetDefaults.
const (
	DefaultAddr        = "127.0.0.1:8080"
	DefaultBodyLimit   = 1 << 20
	DefaultHeaderLimit = 64 << 10
	// MaxHeaderBytes is the listener's hard cap on headers (answered by
	// net/http in text/plain); HeaderLimit must stay below it.
	MaxHeaderBytes           = 1 << 20
	DefaultHealthTimeout     = 2 * time.Second
	DefaultRefreshCookieTTL  = 7 * 24 * time.Hour
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

// CheckAndSetDefaults fills unset fields and validates the rest.
func (c *Config) CheckAndSetDefaults() error {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("httphost: Addr %q: %w", c.Addr, err)
	}
	if c.PublicBaseURL == "" {
		c.PublicBaseURL = "http://" + c.Addr
	}
	c.PublicBaseURL = strings.TrimRight(c.PublicBaseURL, "/")
	base, err := url.Parse(c.PublicBaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("httphost: PublicBaseURL %q must be an absolute http(s) URL", c.PublicBaseURL)
	}
	if len(c.AllowedRedirectURIs) == 0 {
		c.AllowedRedirectURIs = []string{c.PublicBaseURL + "/auth/callback"}
	}
	for _, r := range c.AllowedRedirectURIs {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			return fmt.Errorf("httphost: redirect URI %q must be an absolute http(s) URL without a fragment", r)
		}
	}
	if len(c.AllowedOrigins) == 0 {
		c.AllowedOrigins = []string{base.Scheme + "://" + base.Host}
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			return errors.New("httphost: AllowedOrigins must list origins explicitly; \"*\" is refused")
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("httphost: origin %q must be scheme://host[:port]", o)
		}
	}
	if c.RefreshCookieTTL == 0 {
		c.RefreshCookieTTL = DefaultRefreshCookieTTL
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.HeaderLimit == 0 {
		c.HeaderLimit = DefaultHeaderLimit
	}
	if c.HeaderLimit > MaxHeaderBytes/2 {
		return fmt.Errorf("httphost: HeaderLimit must be at most %d bytes", MaxHeaderBytes/2)
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = DefaultHealthTimeout
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.BodyLimit < 0 || c.HeaderLimit < 0 || c.RefreshCookieTTL < 0 || c.HealthTimeout < 0 || c.ReadHeaderTimeout < 0 || c.IdleTimeout < 0 {
		return errors.New("httphost: limits and timeouts must not be negative")
	}
	return nil
}
