package notification

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/allocation"
	"github.com/gpuaas/gpuaas/core/event"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/policy"
)

// Kind is what a notification is about. Its policy flag
// (notification.<kind>.enabled) switches it on or off.
type Kind string

const (
	LowBalance              Kind = "low_balance"
	AutoReleasePending      Kind = "auto_release_pending"
	BalanceDepleted         Kind = "balance_depleted"
	AllocationActive        Kind = "allocation_active"
	AllocationFailed        Kind = "allocation_failed"
	AllocationReleased      Kind = "allocation_released"
	AllocationReleaseFailed Kind = "allocation_release_failed"
	PaymentCredited         Kind = "payment_credited"
	WebhookEndpointDisabled Kind = "webhook_endpoint_disabled"
)

// kinds maps each kind to its policy flag and the event subject it comes
// from ("" for kinds the notification use cases raise themselves).
var kinds = []struct {
	kind    Kind
	flag    policy.Key
	subject string
}{
	{LowBalance, policy.NotifyLowBalance, event.LowBalanceWarning},
	{AutoReleasePending, policy.NotifyAutoReleasePending, event.AutoReleasePending},
	{BalanceDepleted, policy.NotifyBalanceDepleted, event.BalanceDepleted},
	{AllocationActive, policy.NotifyAllocationActive, event.AllocationActive},
	{AllocationFailed, policy.NotifyAllocationFailed, event.AllocationFailed},
	{AllocationReleased, policy.NotifyAllocationReleased, event.AllocationReleased},
	{AllocationReleaseFailed, policy.NotifyAllocationReleaseFailed, event.AllocationReleaseFailed},
	{PaymentCredited, policy.NotifyPaymentCredited, event.BalanceCredited},
	{WebhookEndpointDisabled, policy.NotifyWebhookDisabled, event.WebhookEndpointDisabled},
}

// Kinds lists every kind.
func Kinds() []Kind {
	out := make([]Kind, len(kinds))
	for i, k := range kinds {
		out[i] = k.kind
	}
	return out
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, x := range kinds {
		if x.kind == k {
			return true
		}
	}
	return false
}

// Flag is the policy key that enables the kind.
func (k Kind) Flag() policy.Key {
	for _, x := range kinds {
		if x.kind == k {
			return x.flag
		}
	}
	return policy.Key{}
}

// KindFor returns the kind an event subject raises, if any.
func KindFor(subject string) (Kind, bool) {
	for _, x := range kinds {
		if x.subject != "" && x.subject == subject {
			return x.kind, true
		}
	}
	return "", false
}

// Audience is who a notification goes to.
type Audience int

const (
	// ToUser: the one user the event names (the allocation's owner).
	ToUser Audience = iota + 1
	// ToTenant: every active member of the tenant (its money concerns all).
	ToTenant
	// ToTenantAdmins: the tenant's owners and admins (and UserID, when set).
	ToTenantAdmins
	// ToProjectAdmins: the project's admins and the tenant's owners and
	// admins.
	ToProjectAdmins
)

// Message is a notification before it has recipients: rendered once from
// the event, then copied into each recipient's inbox.
type Message struct {
	Kind      Kind
	EventID   string
	EventType string
	TenantID  string
	ProjectID string
	UserID    string // the user of ToUser (and the payer of a credit)
	Audience  Audience
	Title     string
	Body      string
	// Data holds the facts a client may act on (allocation_id, amounts);
	// never a secret.
	Data       map[string]any
	OccurredAt time.Time
}

// Notification is one row of a user's inbox.
type Notification struct {
	ID        string
	Seq       int64 // per-platform order; the live stream's event id
	UserID    string
	TenantID  string
	EventID   string
	Kind      Kind
	Title     string
	Body      string
	Data      map[string]any
	CreatedAt time.Time
	ReadAt    *time.Time
}

// Link is where a notification leads in the console, as a path and what to
// call it: its allocation, the billing page for money, a webhook endpoint's
// page; "" when nowhere in particular. The console's inbox and
// the email's link say the same.
func (n Notification) Link() (path, label string) {
	if a, _ := n.Data["allocation_id"].(string); a != "" {
		return "/allocations/" + url.PathEscape(a), "Open the allocation"
	}
	switch n.Kind {
	case LowBalance, AutoReleasePending, BalanceDepleted, PaymentCredited:
		return "/billing", "Open billing"
	case WebhookEndpointDisabled:
		// The console finds endpoints in its active project; the query
		// names the endpoint's, which may be another one of the user's.
		e, _ := n.Data["endpoint_id"].(string)
		p, _ := n.Data["project_id"].(string)
		if e != "" && p != "" {
			return "/settings/webhooks/" + url.PathEscape(e) + "?project=" + url.QueryEscape(p), "Open the endpoint"
		}
		return "/settings/webhooks", "Open webhooks"
	}
	return "", ""
}

// Email is one queued message of the email channel.
type Email struct {
	ID        string // the notification's id: one email per inbox row
	To        string
	Subject   string
	Body      string
	MessageID string // "<event id.user id@domain>": stable across retries
	Attempts  int
	CreatedAt time.Time // queued at (and first due at)
}

// MessageID is the Message-ID header of a notification's email: derived
// from the event id (and the recipient, since one event mails several
// people), so a resend after a crash carries the same id and mail systems
// can drop the copy.
func MessageID(eventID, userID, domain string) string {
	if domain == "" {
		domain = "gpuaas.invalid"
	}
	return "<" + eventID + "." + userID + "@" + domain + ">"
}

// FromEvent renders the notification an event raises. ok is false for
// events that raise none. A payload that cannot be read is fault.Invalid
// (redelivery cannot fix it).
func FromEvent(env event.Envelope) (m Message, ok bool, err error) {
	kind, ok := KindFor(env.Type)
	if !ok {
		return Message{}, false, nil
	}
	m = Message{Kind: kind, EventID: env.ID, EventType: env.Type, TenantID: env.TenantID, ProjectID: env.ProjectID,
		OccurredAt: env.OccurredAt, Data: map[string]any{}}
	var p payload
	if err := json.Unmarshal(env.Payload, &p); err != nil {
		return Message{}, false, fault.Invalid("payload", "the event payload is not JSON").Wrap(err)
	}
	if m.TenantID == "" {
		m.TenantID = p.TenantID
	}
	if m.TenantID == "" {
		return Message{}, false, fault.Invalid("tenant_id", "the event names no tenant")
	}
	switch kind {
	case LowBalance:
		m.Audience = ToTenant
		m.Title = "Your balance is low"
		m.Body = fmt.Sprintf("Your balance is %s, below the %s warning threshold. Top up to keep your nodes running.",
			Money(p.BalanceMinor, p.Currency), Money(p.ThresholdMinor, p.Currency))
		m.Data["balance_minor"], m.Data["currency"] = p.BalanceMinor, p.Currency
	case AutoReleasePending:
		m.Audience = ToTenant
		minutes := max(1, (p.RunwaySeconds+59)/60)
		m.Title = "Your nodes will be released soon"
		m.Body = fmt.Sprintf("At the current rate of %s per hour your balance of %s runs out and your nodes will be released in about %d minutes. Top up to keep them.",
			Money(p.BurnRateMinorPerHour, p.Currency), Money(p.BalanceMinor, p.Currency), minutes)
		m.Data["balance_minor"], m.Data["currency"], m.Data["runway_seconds"] = p.BalanceMinor, p.Currency, p.RunwaySeconds
	case BalanceDepleted:
		m.Audience = ToTenant
		m.Title = "Your balance is used up: nodes released"
		m.Body = fmt.Sprintf("Your balance reached %s. Your running nodes are being released; top up to request new ones.",
			Money(p.BalanceMinor, p.Currency))
		m.Data["balance_minor"], m.Data["currency"] = p.BalanceMinor, p.Currency
	case PaymentCredited:
		m.Audience = ToTenantAdmins
		m.UserID = p.UserID
		m.Title = "Payment received"
		m.Body = fmt.Sprintf("%s was added to your balance, which is now %s.",
			Money(p.AmountMinor, p.Currency), Money(p.BalanceMinor, p.Currency))
		m.Data["amount_minor"], m.Data["currency"], m.Data["balance_minor"] = p.AmountMinor, p.Currency, p.BalanceMinor
	case WebhookEndpointDisabled:
		if m.ProjectID == "" {
			return Message{}, false, fault.Invalid("project_id", "the webhook event names no project")
		}
		m.Audience = ToProjectAdmins
		m.Title = "A webhook endpoint was disabled"
		m.Body = fmt.Sprintf("Deliveries to %s failed for %s, so the endpoint was disabled. Fix it, then enable it again; its delivery log says what went wrong.",
			p.URL, orUnknown(p.FailingFor))
		m.Data["endpoint_id"], m.Data["url"], m.Data["project_id"] = p.EndpointID, p.URL, m.ProjectID
	case AllocationActive, AllocationFailed, AllocationReleased, AllocationReleaseFailed:
		if p.UserID == "" || p.AllocationID == "" {
			return Message{}, false, fault.Invalid("user_id", "the allocation event names no user or allocation")
		}
		m.Audience, m.UserID = ToUser, p.UserID
		m.Data["allocation_id"], m.Data["node_id"] = p.AllocationID, p.NodeID
		short := shortID(p.AllocationID)
		switch kind {
		case AllocationActive:
			m.Title = "Your node is ready"
			m.Body = fmt.Sprintf("Allocation %s (%s) is active: connect with gpuaas ssh %s, the SSH command on its page, or its browser terminal.",
				short, p.SKUID, short)
		case AllocationFailed:
			m.Title = "Your node could not be provisioned"
			m.Body = fmt.Sprintf("Allocation %s (%s) failed (%s). Nothing was billed for it.", short, p.SKUID, orUnknown(p.FailureCode))
			m.Data["failure_code"] = p.FailureCode
		case AllocationReleased:
			m.Title = "Your node was released"
			m.Body = fmt.Sprintf("Allocation %s (%s) was released%s%s.", short, p.SKUID, releasedBecause(p), p.Usage.sentence())
			if p.ReleaseReason != "" {
				m.Data["release_reason"] = p.ReleaseReason
			}
		case AllocationReleaseFailed:
			m.Title = "Releasing your node failed"
			m.Body = fmt.Sprintf("Allocation %s (%s) could not be released (%s); billing stopped at your release request%s and an operator has been told.",
				short, p.SKUID, orUnknown(p.FailureCode), p.Usage.sentence())
			m.Data["failure_code"] = p.FailureCode
		}
		if u := p.Usage; u != nil {
			m.Data["billed_seconds"], m.Data["cost_minor"], m.Data["currency"] = u.BilledSeconds, u.CostMinor, u.Currency
		}
	}
	return m, true, nil
}

// payload is the union of the fields FromEvent reads.
type payload struct {
	TenantID             string `json:"tenant_id"`
	UserID               string `json:"user_id"`
	AllocationID         string `json:"allocation_id"`
	NodeID               string `json:"node_id"`
	SKUID                string `json:"sku_id"`
	FailureCode          string `json:"failure_code"`
	Forced               bool   `json:"forced"`
	BalanceMinor         int64  `json:"balance_minor"`
	ThresholdMinor       int64  `json:"threshold_minor"`
	AmountMinor          int64  `json:"amount_minor"`
	Currency             string `json:"currency"`
	BurnRateMinorPerHour int64  `json:"burn_rate_minor_per_hour"`
	RunwaySeconds        int64  `json:"runway_seconds"`
	Usage                *usage `json:"usage"`
	ReleaseReason        string `json:"release_reason"`
	EndpointID           string `json:"endpoint_id"`
	URL                  string `json:"url"`
	FailingFor           string `json:"failing_for"`
}

// Money formats minor units as "12.34 USD" (two decimals: the platform's
// currencies have cents).
func Money(minor int64, currency string) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, minor/100, minor%100, strings.ToUpper(currency))
}

// releasedBecause says who or what asked for a release, as a clause ("" for
// the user's own release: they know).
func releasedBecause(p payload) string {
	switch p.ReleaseReason {
	case allocation.ReleaseByUser:
		return ""
	case allocation.ReleaseByTenantAdmin:
		return " by an admin of your organisation"
	case allocation.ReleaseByOperator:
		return " by a platform operator"
	case allocation.ReleaseBalanceOut:
		return " because your balance ran out"
	case allocation.ReleaseCostCap:
		return " because it reached its total-cost cap"
	}
	if p.Forced { // events from before the reason was kept
		return " by the platform (an operator, an exhausted balance or a cost cap)"
	}
	return ""
}

// usage is an ended allocation's bill (allocationsvc.UsageSummary).
type usage struct {
	BilledSeconds int64  `json:"billed_seconds"`
	CostMinor     int64  `json:"cost_minor"`
	Currency      string `json:"currency"`
}

// sentence is the bill as a clause of a sentence ("" when the event carries
// none: events from before it did).
func (u *usage) sentence() string {
	switch {
	case u == nil:
		return ""
	case u.BilledSeconds == 0 && u.CostMinor == 0:
		return "; nothing was billed for it"
	}
	return fmt.Sprintf(" after %s of use, billed %s", Duration(u.BilledSeconds), Money(u.CostMinor, u.Currency))
}

// Duration writes seconds as a person reads them: "45 s", "12 min 5 s",
// "2 h 13 min", "3 d 4 h" (the two largest units, the smaller left out
// when it is 0).
func Duration(seconds int64) string {
	if seconds < 60 {
		return fmt.Sprintf("%d s", max(seconds, 0))
	}
	units := []struct {
		name string
		secs int64
	}{{"d", 86400}, {"h", 3600}, {"min", 60}, {"s", 1}}
	for i, u := range units[:3] {
		if seconds < u.secs {
			continue
		}
		big, rest := seconds/u.secs, (seconds%u.secs)/units[i+1].secs
		if rest == 0 {
			return fmt.Sprintf("%d %s", big, u.name)
		}
		return fmt.Sprintf("%d %s %d %s", big, u.name, rest, units[i+1].name)
	}
	return ""
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

func orUnknown(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}
