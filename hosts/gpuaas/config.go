package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	httphost "github.com/gpuaas/gpuaas/hosts/http"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
	"github.com/gpuaas/gpuaas/hosts/internal/telemetry"
)

// env is the process environment seen through one reader, so tests can pass
// a map instead of mutating os.Environ. Configuration is read here only.
type env func(string) string

func (e env) str(name, def string) string {
	if v := strings.TrimSpace(e(name)); v != "" {
		return v
	}
	return def
}

func (e env) list(name string, def []string) []string {
	v := e.str(name, "")
	if v == "" {
		return def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (e env) duration(name string, def time.Duration) (time.Duration, error) {
	v := e.str(name, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return d, nil
}

// Settings is everything a host process reads from its environment. Each
// adapter gets its typed slice of it.
type Settings struct {
	HTTPAddr     string
	PublicURL    string
	DatabaseURL  string
	NATSURL      string
	RedisURL     string // empty: in-process token store and rate limiter (one replica)
	OIDCIssuer   string
	OIDCClientID string
	OIDCSecret   string
	OIDCAudience string
	RedirectURIs []string
	// LoopbackRedirects admits the CLI's loopback sign-in redirects
	// (GPUAAS_LOOPBACK_REDIRECTS, default on).
	LoopbackRedirects bool
	CORSOrigins       []string
	InsecureCookie    bool
	LogLevel          slog.Level
	LogFormat         string // json | text
	RelayInterval     time.Duration
	OTLPEndpoint      string         // OTEL_EXPORTER_OTLP_ENDPOINT: traces are exported when set
	MetricsAddr       string         // GPUAAS_METRICS_ADDR: admin listener (/metrics, /livez, /readyz); "" off
	RPCAddr           string         // GPUAAS_RPC_ADDR: internal Connect RPC listener (serve rpc)
	TrustedProxies    []netip.Prefix // GPUAAS_TRUSTED_PROXIES: peers whose forwarding headers name the client

	DataDir          string   // local state of this process (key files)
	KMSKeyFile       string   // local KMS key (when AWSKMSKeyID is empty)
	AWSKMSKeyID      string   // AWS KMS key for the encryption envelope
	AWSRegion        string   //
	SigningKeyFile   string   // Ed25519 key that signs node tasks
	AgentAddr        string   // agent gateway (Connect RPC, mTLS) listen address
	AgentHosts       []string // names in the agent gateway's server certificate
	TerminalAddr     string   // terminal gateway listen address (serve terminal-gateway)
	TerminalOrigins  []string // browser origins allowed to open a terminal
	TerminalAnyHost  bool     // accept any node SSH host key (dev only)
	AllowSimGPUs     bool     // place nodes whose GPUs are simulated (dev's sandbox nodes; GPUAAS_ALLOW_SIMULATED_GPUS)
	TemporalAddress  string   // Temporal frontend host:port
	TemporalNS       string   //
	StripeSecretKey  string   // STRIPE_SECRET_KEY: payments through Stripe when set
	StripeWebhookKey []string // STRIPE_WEBHOOK_SECRETS (comma list; several during rotation)
	StripeBackend    string   // STRIPE_API_BASE: e.g. stripe-mock

	S3Bucket          string // S3_BUCKET: project storage on when set
	S3Endpoint        string // S3_ENDPOINT: an S3-compatible service (path-style); empty: AWS
	S3Region          string // S3_REGION, else AWS_REGION, else us-east-1
	S3PresignEndpoint string // S3_PRESIGN_ENDPOINT: the endpoint presigned URLs name, when clients reach S3 elsewhere
	S3AccessKey       string // dev only (its versitygw); production uses the SDK's default chain
	S3SecretKey       string //
	S3CreateBucket    bool   // dev only: create the bucket at start

	SMTPHost     string // SMTP_HOST: the email channel is on when set
	SMTPPort     int    // SMTP_PORT (default by SMTP_TLS: 587, or 465 for tls)
	SMTPUsername string // SMTP_USERNAME, SMTP_PASSWORD: SMTP AUTH when set
	SMTPPassword string //
	SMTPFrom     string // SMTP_FROM, e.g. "GPUaaS <noreply@example.com>"
	SMTPTLS      string // SMTP_TLS: starttls (default), tls, opportunistic or none
	// WebhooksAllowPrivate lets webhook endpoints be http or private
	// addresses (GPUAAS_WEBHOOKS_ALLOW_PRIVATE=1; gpuaas dev sets it).
	WebhooksAllowPrivate bool
}

// readSettings reads the environment. Required values are checked by the
// command that needs them, so `gpuaas version` works with none set.
func readSettings(e env) (Settings, error) {
	s := Settings{
		HTTPAddr:     e.str("GPUAAS_HTTP_ADDR", ":8080"),
		PublicURL:    strings.TrimRight(e.str("GPUAAS_PUBLIC_URL", "http://localhost:8080"), "/"),
		DatabaseURL:  e.str("DATABASE_URL", ""),
		NATSURL:      e.str("NATS_URL", "nats://127.0.0.1:4222"),
		RedisURL:     e.str("REDIS_URL", ""),
		OIDCIssuer:   e.str("OIDC_ISSUER_URL", ""),
		OIDCClientID: e.str("OIDC_CLIENT_ID", "gpuaas"),
		OIDCSecret:   e.str("OIDC_CLIENT_SECRET", ""),
		LogFormat:    e.str("GPUAAS_LOG_FORMAT", "json"),
		CORSOrigins:  e.list("GPUAAS_CORS_ORIGINS", nil),
	}
	s.OIDCAudience = e.str("OIDC_AUDIENCE", s.OIDCClientID)
	s.OTLPEndpoint = e.str("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	s.RPCAddr = e.str("GPUAAS_RPC_ADDR", ":8445")
	tp, err := httphost.ParseTrustedProxies(e.list("GPUAAS_TRUSTED_PROXIES", nil))
	if err != nil {
		return s, fmt.Errorf("GPUAAS_TRUSTED_PROXIES: %w", err)
	}
	s.TrustedProxies = tp
	if s.MetricsAddr = e.str("GPUAAS_METRICS_ADDR", ":9090"); s.MetricsAddr == "off" {
		s.MetricsAddr = ""
	}
	s.DataDir = e.str("GPUAAS_DATA_DIR", ".gpuaas")
	s.KMSKeyFile = e.str("GPUAAS_KMS_KEY_FILE", s.DataDir+"/kms.key")
	s.AWSKMSKeyID = e.str("AWS_KMS_KEY_ID", "")
	s.AWSRegion = e.str("AWS_REGION", "")
	s.SigningKeyFile = e.str("GPUAAS_TASK_SIGNING_KEY_FILE", s.DataDir+"/task-signing-key.pem")
	s.AgentAddr = e.str("GPUAAS_AGENT_ADDR", ":8444")
	s.AgentHosts = e.list("GPUAAS_AGENT_HOSTS", []string{"localhost", "127.0.0.1"})
	s.TerminalAddr = e.str("GPUAAS_TERMINAL_ADDR", ":8082")
	s.TerminalOrigins = e.list("GPUAAS_TERMINAL_ORIGINS", []string{s.PublicURL})
	s.TerminalAnyHost = e.str("GPUAAS_TERMINAL_INSECURE_HOST_KEYS", "") == "1"
	s.AllowSimGPUs = e.str("GPUAAS_ALLOW_SIMULATED_GPUS", "") == "1"
	s.TemporalAddress = e.str("TEMPORAL_ADDRESS", "127.0.0.1:7233")
	s.TemporalNS = e.str("TEMPORAL_NAMESPACE", "default")
	s.StripeSecretKey = e.str("STRIPE_SECRET_KEY", "")
	s.StripeWebhookKey = e.list("STRIPE_WEBHOOK_SECRETS", nil)
	s.StripeBackend = e.str("STRIPE_API_BASE", "")
	s.S3Bucket = e.str("S3_BUCKET", "")
	s.S3Endpoint = e.str("S3_ENDPOINT", "")
	s.S3Region = e.str("S3_REGION", e.str("AWS_REGION", "us-east-1"))
	s.S3PresignEndpoint = e.str("S3_PRESIGN_ENDPOINT", "")
	s.SMTPHost = e.str("SMTP_HOST", "")
	s.SMTPUsername = e.str("SMTP_USERNAME", "")
	s.SMTPPassword = e.str("SMTP_PASSWORD", "")
	s.SMTPFrom = e.str("SMTP_FROM", "GPUaaS <noreply@gpuaas.invalid>")
	s.SMTPTLS = e.str("SMTP_TLS", "starttls")
	if p := e.str("SMTP_PORT", ""); p != "" {
		if _, err := fmt.Sscanf(p, "%d", &s.SMTPPort); err != nil {
			return s, fmt.Errorf("SMTP_PORT: %q is not a port", p)
		}
	}
	s.WebhooksAllowPrivate = e.str("GPUAAS_WEBHOOKS_ALLOW_PRIVATE", "") == "1"
	s.RedirectURIs = e.list("GPUAAS_REDIRECT_URIS", []string{s.PublicURL + "/auth/callback"})
	s.LoopbackRedirects = e.str("GPUAAS_LOOPBACK_REDIRECTS", "1") != "0"
	s.InsecureCookie = e.str("GPUAAS_INSECURE_COOKIES", "") == "1"
	if err := s.LogLevel.UnmarshalText([]byte(e.str("GPUAAS_LOG_LEVEL", "info"))); err != nil {
		return s, fmt.Errorf("GPUAAS_LOG_LEVEL: %w", err)
	}
	if s.LogFormat != "json" && s.LogFormat != "text" {
		return s, errors.New("GPUAAS_LOG_FORMAT must be json or text")
	}
	if s.RelayInterval, err = e.duration("GPUAAS_OUTBOX_INTERVAL", 2*time.Second); err != nil {
		return s, err
	}
	return s, nil
}

func (s Settings) require(names ...string) error {
	var missing []string
	for _, n := range names {
		var v string
		switch n {
		case "DATABASE_URL":
			v = s.DatabaseURL
		case "OIDC_ISSUER_URL":
			v = s.OIDCIssuer
		case "NATS_URL":
			v = s.NATSURL
		case "S3_BUCKET":
			v = s.S3Bucket
		}
		if v == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required environment: %s (see README.md, \"Configuration\")", strings.Join(missing, ", "))
	}
	return nil
}

func newLogger(s Settings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.LogLevel}
	var h slog.Handler = slog.NewJSONHandler(os.Stderr, opts)
	if s.LogFormat == "text" {
		h = slog.NewTextHandler(os.Stderr, opts)
	}
	// Lines logged inside a trace carry its trace_id and span_id; no
	// component's line carries a secret (hosts/internal/redact).
	return slog.New(redact.NewHandler(telemetry.LogHandler(h)))
}
