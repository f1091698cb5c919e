package terminalhost

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config is the gateway's typed configuration. Hosts read it from the
// environment; everything here is validated once by CheckAndSetDefaults.
type Config struct {
	// Addr is the listen address of the standalone gateway
	// (`gpuaas serve terminal-gateway`). Unused when the handler is mounted
	// on another server.
	Addr string
	// AllowedOrigins are the exact origins (scheme://host[:port]) of the
	// pages allowed to open a terminal, i.e. the web console. A WebSocket
	// from any other page, or without an Origin, is refused before the
	// upgrade: browsers send cookies and client certificates cross-site, so
	// the Origin is the only defence against cross-site WebSocket hijacking.
	AllowedOrigins []string
	// HostKeys decides which node host keys the gateway trusts. Required.
	HostKeys HostKeyPolicy

	// DialTimeout bounds the TCP connect and SSH handshake to the node.
	DialTimeout time.Duration
	// CertTTL is the lifetime of the SSH user certificate the gateway asks
	// the CA for. It only has to outlive the handshake; the session goes on
	// after the certificate expires.
	CertTTL time.Duration
	// PingInterval is how often the gateway pings the browser; a browser
	// that does not answer within 2×PingInterval is considered gone.
	PingInterval time.Duration
	// MaxFrameBytes caps a frame from the browser (keystrokes, paste,
	// control). A larger frame closes the session with 1009.
	MaxFrameBytes int64
	// MaxSessions caps concurrent sessions of this replica (503 above it).
	MaxSessions int
	// ReadHeaderTimeout bounds reading the upgrade request.
	ReadHeaderTimeout time.Duration
	// Term is the TERM the pty is requested with.
	Term string
}

// Defaults used by CheckAndSetDefaults.
const (
	DefaultAddr              = "127.0.0.1:8082"
	DefaultDialTimeout       = 10 * time.Second
	DefaultCertTTL           = 2 * time.Minute
	DefaultPingInterval      = 25 * time.Second
	DefaultMaxFrameBytes     = 64 << 10
	DefaultMaxSessions       = 1000
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultTerm              = "xterm-256color"
)

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if len(c.AllowedOrigins) == 0 {
		return errors.New("terminalhost: AllowedOrigins is required (the web console's origin)")
	}
	for i, o := range c.AllowedOrigins {
		norm, err := normaliseOrigin(o)
		if err != nil {
			return fmt.Errorf("terminalhost: AllowedOrigins[%d]: %w", i, err)
		}
		c.AllowedOrigins[i] = norm
	}
	if c.HostKeys == nil {
		return errors.New("terminalhost: HostKeys is required (InventoryHostKeys, HostCertificateAuthority or InsecureAcceptAnyHostKey)")
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.DialTimeout, DefaultDialTimeout)
	setDur(&c.CertTTL, DefaultCertTTL)
	setDur(&c.PingInterval, DefaultPingInterval)
	setDur(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	if c.DialTimeout < 0 || c.CertTTL < 0 || c.PingInterval < 0 || c.ReadHeaderTimeout < 0 {
		return errors.New("terminalhost: durations must be positive")
	}
	if c.CertTTL < 30*time.Second || c.CertTTL > 10*time.Minute {
		return errors.New("terminalhost: CertTTL must be between 30s and 10m")
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.MaxFrameBytes < 1024 || c.MaxFrameBytes > 16<<20 {
		return errors.New("terminalhost: MaxFrameBytes must be between 1 KiB and 16 MiB")
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.MaxSessions < 0 {
		return errors.New("terminalhost: MaxSessions must be positive")
	}
	if c.Term == "" {
		c.Term = DefaultTerm
	}
	return nil
}

// normaliseOrigin lower-cases scheme and host and refuses anything that is
// not a bare http(s) origin, so a typo cannot turn into a wildcard.
func normaliseOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimRight(o, "/"))
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" ||
		u.Fragment != "" || u.User != nil || strings.Contains(u.Host, "*") {
		return "", fmt.Errorf("%q is not an origin (scheme://host[:port])", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}
