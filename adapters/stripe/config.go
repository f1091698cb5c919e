package stripe

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultTolerance is how old a webhook signature may be (Stripe's own
// default): older deliveries are refused as possible replays.
const DefaultTolerance = 300 * time.Second

// Config configures the Stripe provider. The secrets are never logged: the
// String method redacts them.
type Config struct {
	// SecretKey is the API key (sk_… or rk_…).
	SecretKey string
	// WebhookSecrets are the endpoint signing secrets (whsec_…) accepted.
	// During a rotation both the old and the new secret are listed; a
	// delivery verifies if any of them signed it.
	WebhookSecrets []string
	// Tolerance bounds a signature's age. Default DefaultTolerance.
	Tolerance time.Duration
	// BackendURL overrides the API base URL (stripe-mock in tests).
	BackendURL string
	// HTTPClient is optional (a client with a 30s timeout by default).
	HTTPClient *http.Client
	// ProductName is the line item's name on the checkout page.
	// Default "Account credit".
	ProductName string
}

// CheckAndSetDefaults validates the config.
func (c *Config) CheckAndSetDefaults() error {
	if c.SecretKey == "" {
		return errors.New("stripe: SecretKey is required")
	}
	if !strings.HasPrefix(c.SecretKey, "sk_") && !strings.HasPrefix(c.SecretKey, "rk_") {
		return errors.New("stripe: SecretKey must be a secret (sk_) or restricted (rk_) key")
	}
	if len(c.WebhookSecrets) == 0 {
		return errors.New("stripe: at least one webhook secret is required")
	}
	for _, s := range c.WebhookSecrets {
		if strings.TrimSpace(s) == "" {
			return errors.New("stripe: webhook secrets must not be empty")
		}
	}
	if c.Tolerance < 0 {
		return errors.New("stripe: Tolerance must not be negative")
	}
	if c.Tolerance == 0 {
		c.Tolerance = DefaultTolerance
	}
	if c.BackendURL != "" {
		u, err := url.Parse(c.BackendURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("stripe: BackendURL must be an absolute http(s) URL")
		}
		c.BackendURL = strings.TrimRight(c.BackendURL, "/")
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.ProductName == "" {
		c.ProductName = "Account credit"
	}
	return nil
}

// String describes the config without its secrets.
func (c Config) String() string {
	return "stripe.Config{SecretKey: [redacted], WebhookSecrets: [" + strings.Repeat("redacted ", len(c.WebhookSecrets)) +
		"], BackendURL: " + c.BackendURL + "}"
}
