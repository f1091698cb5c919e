// Package policy defines the typed policy keys the platform reads at run
// time, with their defaults and validation. Values are stored as text.
package policy

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/text"
)

// ValueMaxLength bounds a string policy value, in characters; the API
// contract's maxLength equals it (hosts/http checks).
const ValueMaxLength = 1024

// Type is the value type of a key.
type Type string

const (
	Int    Type = "int"
	Bool   Type = "bool"
	String Type = "string"
)

// Key is a typed policy key with its default and bounds.
type Key struct {
	Name        string
	Type        Type
	Default     string
	Min, Max    int64 // for Int; Max 0 means unbounded
	Description string
	// Tenant says operators may override the key for one tenant
	// (PUT /admin/tenants/{id}/policies); the others are platform-wide.
	Tenant bool
}

// The known keys. Scope: global, with tenant overrides where the store has them.
var (
	AllocationMaxPerUser    = Key{Name: "allocation.max_concurrent_per_user", Type: Int, Default: "4", Min: 0, Max: 1000, Description: "live allocations one user may hold", Tenant: true}
	AllocationMaxPerProject = Key{Name: "allocation.max_concurrent_per_project", Type: Int, Default: "16", Min: 0, Max: 10000, Description: "live allocations one project may hold", Tenant: true}
	AllocationMaxPerTenant  = Key{Name: "allocation.max_concurrent_per_tenant", Type: Int, Default: "32", Min: 0, Max: 100000, Description: "live allocations one tenant may hold", Tenant: true}
	AllocationReleaseGrace  = Key{Name: "allocation.release_grace_seconds", Type: Int, Default: "10", Min: 0, Max: 300, Description: "seconds a released allocation's processes get between SIGTERM and SIGKILL"}
	TerminalReconnectWindow = Key{Name: "terminal.reconnect_window_seconds", Type: Int, Default: "300", Min: 0, Max: 86400, Description: "how long a browser terminal whose browser went away keeps its shell for a reconnect"}
	TerminalMaxSessions     = Key{Name: "terminal.max_sessions_per_allocation", Type: Int, Default: "8", Min: 1, Max: 64, Description: "browser terminal sessions one allocation may hold at once, attached or waiting for a reconnect"}
	RateLimitDefaultRPM     = Key{Name: "ratelimit.default_per_minute", Type: Int, Default: "600", Min: 1, Max: 1000000, Description: "requests per minute per user for ordinary routes"}
	RateLimitMutateRPM      = Key{Name: "ratelimit.mutate_per_minute", Type: Int, Default: "120", Min: 1, Max: 1000000, Description: "requests per minute per user for mutating routes"}
	RateLimitAuthRPM        = Key{Name: "ratelimit.auth_per_minute", Type: Int, Default: "30", Min: 1, Max: 1000000, Description: "requests per minute per client for auth routes"}
	RateLimitUnauthRPM      = Key{Name: "ratelimit.unauthenticated_per_minute", Type: Int, Default: "60", Min: 1, Max: 1000000, Description: "requests per minute per client address without a valid access token, refused before the token's signature is checked"}
	BillingWindowSeconds    = Key{Name: "billing.window_seconds", Type: Int, Default: "60", Min: 1, Max: 86400, Description: "length of one accrual window"}
	BillingLowBalanceMinor  = Key{Name: "billing.low_balance_threshold_minor", Type: Int, Default: "1000", Min: 0, Description: "balance (minor units) below which users are warned", Tenant: true}
	BillingCurrency         = Key{Name: "billing.currency", Type: String, Default: "usd", Description: "ISO currency of the ledger"}
	PaymentsMinTopUpMinor   = Key{Name: "payments.min_topup_minor", Type: Int, Default: "500", Min: 1, Description: "smallest top-up", Tenant: true}
	PaymentsMaxTopUpMinor   = Key{Name: "payments.max_topup_minor", Type: Int, Default: "1000000", Min: 1, Description: "largest top-up", Tenant: true}
	RefundWindowDays        = Key{Name: "billing.refund_window_days", Type: Int, Default: "30", Min: 0, Max: 3650, Description: "days after a credit during which it may be refunded", Tenant: true}
	PersonalLoginEnabled    = Key{Name: "auth.personal_login_enabled", Type: Bool, Default: "false", Description: "allow the personal (password) login endpoint"}
	IdempotencyTTLHours     = Key{Name: "idempotency.ttl_hours", Type: Int, Default: "24", Min: 1, Max: 720, Description: "how long idempotency keys are remembered"}
	StorageQuotaBytes       = Key{Name: "storage.quota_bytes", Type: Int, Default: "107374182400", Min: 0, Max: 1 << 50, Description: "bytes one project may keep in project storage (the sum of its files and its uploads in flight)", Tenant: true}
	AutoReleaseWarnMinutes  = Key{Name: "billing.auto_release_warning_minutes", Type: Int, Default: "60", Min: 0, Max: 10080, Description: "warn a tenant whose balance will run out within this many minutes at the current burn rate (its nodes are then released); 0 turns the warning off", Tenant: true}
	StorageMaxUploadBytes   = Key{Name: "storage.max_upload_bytes", Type: Int, Default: "5497558138880", Min: 1, Max: 5497558138880, Description: "largest file one upload may carry (S3's limit is 5 TiB; the streamed API upload has its own lower ceiling, larger files go through presigned multipart URLs)", Tenant: true}
)

// Notification flags: each kind of notification can be switched off (for
// the platform, or for one tenant).
var (
	NotifyLowBalance              = notifyFlag("low_balance", "low-balance warnings")
	NotifyAutoReleasePending      = notifyFlag("auto_release_pending", "warnings that nodes will be released when the balance runs out")
	NotifyBalanceDepleted         = notifyFlag("balance_depleted", "balance-depleted notices")
	NotifyAllocationActive        = notifyFlag("allocation_active", "node-ready notices")
	NotifyAllocationFailed        = notifyFlag("allocation_failed", "provisioning-failed notices")
	NotifyAllocationReleased      = notifyFlag("allocation_released", "node-released notices")
	NotifyAllocationReleaseFailed = notifyFlag("allocation_release_failed", "release-failed notices")
	NotifyPaymentCredited         = notifyFlag("payment_credited", "payment-received notices")
	NotifyWebhookDisabled         = notifyFlag("webhook_endpoint_disabled", "notices that a webhook endpoint was disabled after failing")
)

func notifyFlag(kind, what string) Key {
	return Key{Name: "notification." + kind + ".enabled", Type: Bool, Default: "true", Tenant: true,
		Description: "send " + what + " (inbox, live stream, email)"}
}

var registry = map[string]Key{}

func init() {
	for _, k := range []Key{AllocationMaxPerUser, AllocationMaxPerProject, AllocationMaxPerTenant,
		AllocationReleaseGrace, TerminalReconnectWindow, TerminalMaxSessions,
		RateLimitDefaultRPM, RateLimitMutateRPM, RateLimitAuthRPM, RateLimitUnauthRPM, BillingWindowSeconds,
		BillingLowBalanceMinor, BillingCurrency, PaymentsMinTopUpMinor, PaymentsMaxTopUpMinor,
		RefundWindowDays, PersonalLoginEnabled, IdempotencyTTLHours, StorageQuotaBytes, StorageMaxUploadBytes,
		AutoReleaseWarnMinutes, NotifyLowBalance, NotifyAutoReleasePending, NotifyBalanceDepleted,
		NotifyAllocationActive, NotifyAllocationFailed, NotifyAllocationReleased, NotifyAllocationReleaseFailed,
		NotifyPaymentCredited, NotifyWebhookDisabled} {
		registry[k.Name] = k
	}
}

// Lookup returns the key registered under name.
func Lookup(name string) (Key, bool) { k, ok := registry[name]; return k, ok }

// Keys returns every registered key, sorted by name.
func Keys() []Key {
	out := make([]Key, 0, len(registry))
	for _, k := range registry {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Validate checks a raw value against the key's type and bounds.
func (k Key) Validate(raw string) error {
	switch k.Type {
	case Int:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
		if err != nil {
			return fault.Invalid("value", k.Name+" must be an integer")
		}
		if n < k.Min || (k.Max > 0 && n > k.Max) {
			return fault.Invalid("value", k.Name+" is out of range")
		}
	case Bool:
		if _, err := strconv.ParseBool(strings.TrimSpace(raw)); err != nil {
			return fault.Invalid("value", k.Name+" must be true or false")
		}
	case String:
		if err := text.Line("value", raw, 0, ValueMaxLength); err != nil {
			return err
		}
	}
	return nil
}

// Values is a resolved set of policy values (stored overrides over defaults).
type Values map[string]string

// Int returns the key's value as an integer, falling back to the default when
// the stored value is missing or invalid.
func (v Values) Int(k Key) int64 {
	raw, ok := v[k.Name]
	if !ok || k.Validate(raw) != nil {
		raw = k.Default
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	return n
}

// Bool returns the key's value as a bool with the same fallback as Int.
func (v Values) Bool(k Key) bool {
	raw, ok := v[k.Name]
	if !ok || k.Validate(raw) != nil {
		raw = k.Default
	}
	b, _ := strconv.ParseBool(strings.TrimSpace(raw))
	return b
}

// RefundWindowStart is the oldest creation time a credit may have and still
// be refunded at now: billing.refund_window_days before now. The payments
// and ledger refunds and the operators' ledger view all ask it.
func (v Values) RefundWindowStart(now time.Time) time.Time {
	return now.Add(-time.Duration(v.Int(RefundWindowDays)) * 24 * time.Hour)
}

// String returns the key's value as a string.
func (v Values) String(k Key) string {
	if raw, ok := v[k.Name]; ok && k.Validate(raw) == nil {
		return raw
	}
	return k.Default
}
