package netprobe

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// Config bounds a probe.
type Config struct {
	// Timeout caps one probe (dial plus banner); 0 means DefaultTimeout.
	Timeout time.Duration
	// Now measures latency; nil means time.Now.
	Now func() time.Time
}

// DefaultTimeout is the probe budget the admin API promises.
const DefaultTimeout = 10 * time.Second

// maxBannerLines bounds the lines a server may send before its
// identification string (RFC 4253 allows some; a slow-drip server must not
// hold a probe beyond that).
const maxBannerLines = 20

// CheckAndSetDefaults validates the config.
func (c *Config) CheckAndSetDefaults() error {
	if c.Timeout < 0 {
		return errors.New("netprobe: Timeout must not be negative")
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Prober implements [ports.NodeProber] over plain TCP. It never
// authenticates: reading the banner is enough to show sshd answers.
type Prober struct {
	cfg    Config
	dialer net.Dialer
}

var _ ports.NodeProber = (*Prober)(nil)

// New returns a Prober.
func New(cfg Config) (*Prober, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	return &Prober{cfg: cfg}, nil
}

// Probe implements [ports.NodeProber]. An unreachable or non-SSH endpoint
// is a result with Reachable false and Error saying why, not an error: the
// error return is for invalid input only.
func (p *Prober) Probe(ctx context.Context, host string, port int) (ports.ProbeResult, error) {
	if host == "" || strings.ContainsAny(host, " /\t\r\n") {
		return ports.ProbeResult{}, fault.Invalid("ssh_host", "a host name or address is required")
	}
	if port < 1 || port > 65535 {
		return ports.ProbeResult{}, fault.Invalid("ssh_port", "port must be between 1 and 65535")
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	start := p.cfg.Now()
	conn, err := p.dialer.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return ports.ProbeResult{Error: "connect: " + errText(err)}, nil
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	r := bufio.NewReaderSize(conn, 512)
	for i := 0; i < maxBannerLines; i++ {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return ports.ProbeResult{Error: "read banner: " + errText(err)}, nil
		}
		s := strings.TrimRight(string(line), "\r\n")
		if strings.HasPrefix(s, "SSH-") {
			if !strings.HasPrefix(s, "SSH-2.0-") && !strings.HasPrefix(s, "SSH-1.99-") {
				return ports.ProbeResult{Banner: s, Error: "server does not speak SSH 2"}, nil
			}
			return ports.ProbeResult{Reachable: true, Banner: s, Latency: p.cfg.Now().Sub(start)}, nil
		}
	}
	return ports.ProbeResult{Error: "no SSH identification string"}, nil
}

// errText keeps probe errors short and free of local addresses.
func errText(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, bufio.ErrBufferFull):
		return "banner line too long"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}
