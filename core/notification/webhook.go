package notification

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
)

// EndpointStatus is whether a webhook endpoint receives deliveries.
type EndpointStatus string

const (
	EndpointEnabled  EndpointStatus = "enabled"
	EndpointDisabled EndpointStatus = "disabled" // by its owner, or after sustained failure
)

// Endpoint is a project's outbound webhook: an HTTPS URL that receives the
// event types it chose, signed per the Standard Webhooks spec.
type Endpoint struct {
	ID          string
	TenantID    string
	ProjectID   string
	URL         string
	Description string
	EventTypes  []string
	Status      EndpointStatus
	// DisabledReason is "manual" or "failing" when disabled.
	DisabledReason string
	// FailingSince is the first failed attempt since the last success.
	FailingSince *time.Time
	Secrets      []Secret // newest first; at most two are live at once
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Secret is one signing secret of an endpoint ("whsec_" + base64 of 32
// random bytes). ExpiresAt is set on the old secret by a rotation.
type Secret struct {
	Value     string
	CreatedAt time.Time
	ExpiresAt *time.Time
}

// Live returns the secrets that sign at t: each delivery carries one
// signature per live secret, so a receiver that still knows only the old
// secret keeps verifying during a rotation.
func (e Endpoint) Live(t time.Time) []Secret {
	var out []Secret
	for _, s := range e.Secrets {
		if s.ExpiresAt == nil || t.Before(*s.ExpiresAt) {
			out = append(out, s)
		}
	}
	return out
}

// Wants reports whether the endpoint receives an event of this type.
func (e Endpoint) Wants(eventType string) bool {
	if e.Status != EndpointEnabled {
		return false
	}
	for _, t := range e.EventTypes {
		if t == eventType {
			return true
		}
	}
	return false
}

// WebhookEventTypes are the event types an endpoint may subscribe to.
var WebhookEventTypes = []string{
	event.AllocationActive, event.AllocationFailed, event.AllocationReleased, event.AllocationReleaseFailed,
	event.LowBalanceWarning, event.AutoReleasePending, event.BalanceDepleted, event.BalanceCredited,
}

// ValidEventType reports whether t is one of WebhookEventTypes.
func ValidEventType(t string) bool {
	for _, x := range WebhookEventTypes {
		if x == t {
			return true
		}
	}
	return false
}

// DeliveryStatus is where one delivery of one event to one endpoint stands.
type DeliveryStatus string

const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliverySucceeded DeliveryStatus = "succeeded"
	DeliveryFailed    DeliveryStatus = "failed" // retries exhausted, or the endpoint was disabled
)

// Delivery is one event bound for one endpoint, with its attempts.
type Delivery struct {
	ID             string
	EndpointID     string
	TenantID       string
	ProjectID      string
	EventID        string // the webhook-id header: the same on every retry
	EventType      string
	Payload        []byte // the JSON body, fixed when the delivery is made
	Status         DeliveryStatus
	Attempts       int
	NextAttemptAt  time.Time
	LastAttemptAt  *time.Time
	LastStatusCode int
	LastError      string
	CreatedAt      time.Time
}

// RetryDelays is the wait before each retry of a webhook delivery: about
// 24 hours of exponential back-off in all (the Standard Webhooks
// recommendation's shape). The first attempt is immediate.
var RetryDelays = []time.Duration{
	5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 8 * time.Hour,
}

// NextRetry is the delay after the given number of failed attempts, and
// false once the schedule is spent (the delivery has failed for good).
func NextRetry(failedAttempts int) (time.Duration, bool) {
	if failedAttempts < 1 || failedAttempts > len(RetryDelays) {
		return 0, false
	}
	return RetryDelays[failedAttempts-1], true
}

// DisableAfter is how long an endpoint may fail every attempt before it is
// disabled (and the project's admins told).
const DisableAfter = 24 * time.Hour

// RotationOverlap is how long the previous secret keeps signing after a
// rotation.
const RotationOverlap = 24 * time.Hour

// WebhookBody is the Standard Webhooks payload: type, timestamp, data.
type WebhookBody struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// NewSecret makes a signing secret from 32 bytes of r (crypto/rand).
func NewSecret(r io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fault.Internal(err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// Sign returns the webhook-signature header value for a message: one
// "v1,<base64 HMAC-SHA256>" per secret, space separated, over
// "<id>.<unix seconds>.<body>" with the secret's decoded bytes as the key
// (Standard Webhooks, symmetric signatures).
func Sign(secrets []Secret, id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s.Value, SecretPrefix))
		if err != nil {
			return "", fault.Internal(err)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}

// URLMaxLength bounds an endpoint URL (the contract's maxLength).
const URLMaxLength = 2048

// CodeWebhookURLRefused refuses an endpoint URL that is not HTTPS or names
// a private, loopback or link-local address.
const CodeWebhookURLRefused fault.Code = "webhook_url_refused"

// CheckURL refuses what a webhook endpoint must not be: anything but an
// absolute https URL without credentials (http too when allowPrivate), and
// — unless allowPrivate (development, tests) — a host that is an IP literal
// in a private, loopback, link-local, unspecified or multicast range, or
// "localhost". Host names are checked again when the delivery dials (the
// name may resolve to a private address later).
func CheckURL(raw string, allowPrivate bool) error {
	refuse := func(msg string) error {
		return &fault.Error{Kind: fault.KindInvalid, Code: CodeWebhookURLRefused, Message: msg, Field: "url"}
	}
	if len(raw) > URLMaxLength {
		return refuse("the URL is too long")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return refuse("the URL must be absolute, like https://hooks.example.com/gpuaas")
	}
	if u.User != nil {
		return refuse("the URL must not carry credentials")
	}
	if u.Fragment != "" {
		return refuse("the URL must not have a fragment")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowPrivate:
	default:
		return refuse("the URL must use https")
	}
	if allowPrivate {
		return nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return refuse("the URL must not name this machine")
	}
	if ip, err := netip.ParseAddr(host); err == nil && !PublicAddr(ip) {
		return refuse("the URL must not name a private, loopback or link-local address")
	}
	return nil
}

// PublicAddr reports whether ip may be the target of an outbound webhook:
// not loopback, private (RFC 1918, ULA), link-local, unspecified,
// multicast, CGNAT (100.64/10) or an IPv4-mapped form of those.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	if ip.Is4() && netip.MustParsePrefix("100.64.0.0/10").Contains(ip) {
		return false
	}
	return true
}
