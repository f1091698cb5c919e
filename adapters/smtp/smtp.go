package smtp

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// TLS is how the connection to the relay is secured.
type TLS string

const (
	// TLSStartTLS requires STARTTLS (the default: a relay that does not
	// offer it is refused rather than sent mail in clear).
	TLSStartTLS TLS = "starttls"
	// TLSImplicit connects with TLS from the start (port 465).
	TLSImplicit TLS = "tls"
	// TLSOpportunistic uses STARTTLS when offered.
	TLSOpportunistic TLS = "opportunistic"
	// TLSNone never encrypts (a local sink such as mailpit).
	TLSNone TLS = "none"
)

// Config configures the SMTP Mailer.
type Config struct {
	Host string // required
	Port int    // default 587 (465 for TLSImplicit)
	// Username and Password authenticate (SMTP AUTH, the best mechanism
	// the server offers) when Username is set.
	Username, Password string
	// From is the sender address, e.g. "GPUaaS <noreply@example.com>". Required.
	From string
	TLS  TLS // default TLSStartTLS
	// Timeout bounds connecting and each command; default 15 s.
	Timeout time.Duration
}

// String never shows the password.
func (c Config) String() string {
	return fmt.Sprintf("smtp.Config{Host:%s Port:%d Username:%s From:%s TLS:%s}", c.Host, c.Port, c.Username, c.From, c.TLS)
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if c.Host == "" {
		return errors.New("smtp: Host is required")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("smtp: From %q is not an address", c.From)
	}
	if c.TLS == "" {
		c.TLS = TLSStartTLS
	}
	switch c.TLS {
	case TLSStartTLS, TLSOpportunistic, TLSNone:
		if c.Port == 0 {
			c.Port = 587
		}
	case TLSImplicit:
		if c.Port == 0 {
			c.Port = 465
		}
	default:
		return fmt.Errorf("smtp: TLS must be starttls, tls, opportunistic or none, not %q", c.TLS)
	}
	if c.Port < 1 || c.Port > 65535 {
		return errors.New("smtp: Port out of range")
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.Timeout < 0 {
		return errors.New("smtp: Timeout must be positive")
	}
	return nil
}

// Mailer implements [ports.Mailer] over SMTP.
type Mailer struct{ cfg Config }

var _ ports.Mailer = (*Mailer)(nil)

// New checks the config.
func New(cfg Config) (*Mailer, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	return &Mailer{cfg: cfg}, nil
}

// Name implements [ports.HealthCheck].
func (m *Mailer) Name() string { return "smtp" }

func (m *Mailer) client() (*gomail.Client, error) {
	opts := []gomail.Option{gomail.WithPort(m.cfg.Port), gomail.WithTimeout(m.cfg.Timeout)}
	switch m.cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPortPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSLPort(false))
	case TLSOpportunistic:
		opts = append(opts, gomail.WithTLSPortPolicy(gomail.TLSOpportunistic))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPortPolicy(gomail.NoTLS))
	}
	// WithTLSPortPolicy and WithSSLPort pick a port; the configured one wins.
	opts = append(opts, gomail.WithPort(m.cfg.Port))
	if m.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(m.cfg.Username), gomail.WithPassword(m.cfg.Password))
	}
	return gomail.NewClient(m.cfg.Host, opts...)
}

// Send implements [ports.Mailer]: one connection per message (the
// notification volume is low; a connection cannot go stale between
// sends). The Message-ID is the caller's, so a retry carries the same one.
func (m *Mailer) Send(ctx context.Context, msg ports.Mail) error {
	if _, err := mail.ParseAddress(msg.To); err != nil {
		return fault.Invalid("to", "not an email address")
	}
	em := gomail.NewMsg()
	if err := em.From(m.cfg.From); err != nil {
		return fault.Internal(err)
	}
	if err := em.To(msg.To); err != nil {
		return fault.Invalid("to", "not an email address")
	}
	em.Subject(msg.Subject)
	if id := strings.Trim(msg.MessageID, "<>"); id != "" {
		em.SetMessageIDWithValue(id)
	} else {
		em.SetMessageID()
	}
	em.SetDate()
	em.SetBodyString(gomail.TypeTextPlain, msg.Body)
	c, err := m.client()
	if err != nil {
		return fault.Internal(err)
	}
	if err := c.DialAndSendWithContext(ctx, em); err != nil {
		// The relay's answer may quote the address; never the password
		// (go-mail does not put it in errors).
		return fault.Unavailable("the mail relay did not accept the message", err)
	}
	return nil
}

// Check implements [ports.HealthCheck]: the relay answers and (with TLS
// required) offers it.
func (m *Mailer) Check(ctx context.Context) error {
	c, err := m.client()
	if err != nil {
		return err
	}
	if err := c.DialWithContext(ctx); err != nil {
		return err
	}
	return c.Close()
}
