// Package event defines the envelope every domain event travels in and the
// registry of subjects. Events are written to the outbox inside the
// transaction that changes state, then relayed to the bus.
package event

import (
	"encoding/json"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
)

// Envelope wraps a payload with what consumers need to route, dedupe and trace.
type Envelope struct {
	ID            string    `json:"id"`      // unique; the bus's dedupe id
	Type          string    `json:"type"`    // the subject, e.g. provisioning.allocation_requested
	Version       int       `json:"version"` // payload schema version
	OccurredAt    time.Time `json:"occurred_at"`
	TenantID      string    `json:"tenant_id,omitempty"`
	ProjectID     string    `json:"project_id,omitempty"`
	AggregateType string    `json:"aggregate_type,omitempty"`
	AggregateID   string    `json:"aggregate_id,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	// TraceParent is the W3C trace context (traceparent) of the change that
	// wrote the event, so the relay and the consumers continue its trace.
	// Set by the hosts' tracing, never by use cases; "" when tracing is off.
	TraceParent string          `json:"traceparent,omitempty"`
	Payload     json.RawMessage `json:"payload"`
}

// Encoded is an envelope in its wire form, encoded once: the outbox stores
// Body and the relay hands it to the bus byte for byte.
type Encoded struct {
	ID   string // Envelope.ID: the bus's dedupe id
	Type string // Envelope.Type: the subject
	Body []byte // the envelope as JSON
	// TraceParent is Envelope.TraceParent, read beside Body so the bus can
	// put it in the message headers without decoding the envelope.
	TraceParent string
}

// Encode returns the wire forms of evs: the one place an envelope becomes
// JSON (the outbox stores it, the relay forwards it). Every event needs an
// id and a type, and its payload must be JSON; otherwise the error is
// fault.Invalid naming the field.
func Encode(evs ...Envelope) ([]Encoded, error) {
	out := make([]Encoded, len(evs))
	for i, e := range evs {
		if e.ID == "" {
			return nil, fault.Invalid("id", "event id is required")
		}
		if e.Type == "" {
			return nil, fault.Invalid("type", "event type is required")
		}
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fault.Invalid("payload", "event is not valid JSON").Wrap(err)
		}
		out[i] = Encoded{ID: e.ID, Type: e.Type, Body: b, TraceParent: e.TraceParent}
	}
	return out, nil
}

// Subjects. Streams group them by their first token.
const (
	AllocationRequested     = "provisioning.allocation_requested"
	AllocationActive        = "provisioning.allocation_active"
	AllocationFailed        = "provisioning.allocation_failed"
	AllocationReleaseReq    = "provisioning.allocation_release_requested"
	AllocationReleased      = "provisioning.allocation_released"
	AllocationReleaseFailed = "provisioning.allocation_release_failed"
	UsageDebited            = "billing.usage_debited"
	LowBalanceWarning       = "billing.low_balance_warning"
	BalanceDepleted         = "billing.balance_depleted"
	AutoReleasePending      = "billing.auto_release_pending"
	BalanceCredited         = "payments.balance_credited"
	PaymentReconcileFailed  = "payments.reconcile_failed"
	RefundSucceeded         = "payments.refund_succeeded"
	RefundFailed            = "payments.refund_failed"
	NotificationRequested   = "notification.requested"
	WebhookEndpointDisabled = "notification.webhook_endpoint_disabled"
	UserSignedUp            = "identity.user_signed_up"
	ProjectCreated          = "identity.project_created"
	ProjectMemberAdded      = "identity.project_member_added"
	ProjectMemberRemoved    = "identity.project_member_removed"
	UserSuspended           = "identity.user_suspended"
	UserReinstated          = "identity.user_reinstated"
	StorageObjectCreated    = "storage.object_created"
	StorageObjectDeleted    = "storage.object_deleted"
	StorageObjectMoved      = "storage.object_moved"
)

// Stream is a JetStream stream definition owned by the platform.
type Stream struct {
	Name     string
	Subjects []string
	// Consumers are the durable consumers the platform creates on it.
	Consumers []Consumer
}

// Consumer is a durable consumer on a stream.
type Consumer struct {
	Durable       string
	FilterSubject string
}

// Streams is the platform's stream topology; the bus adapter creates it and
// doc/events.md describes it.
var Streams = []Stream{
	{Name: "PROVISIONING", Subjects: []string{"provisioning.>"}, Consumers: []Consumer{
		{Durable: "provisioning-worker-requested", FilterSubject: AllocationRequested},
		{Durable: "provisioning-worker-release", FilterSubject: AllocationReleaseReq},
		// Billing opens usage on active and closes it at the release request
		// (released / release_failed close records from before that rule).
		{Durable: "billing-usage", FilterSubject: "provisioning.>"},
		// Notifications tell the allocation's owner it is ready, failed or gone.
		{Durable: "notification-provisioning", FilterSubject: "provisioning.>"},
	}},
	{Name: "BILLING", Subjects: []string{"billing.>"}, Consumers: []Consumer{
		{Durable: "notification-billing", FilterSubject: "billing.>"},
	}},
	{Name: "PAYMENTS", Subjects: []string{"payments.>"}, Consumers: []Consumer{
		{Durable: "notification-payments", FilterSubject: "payments.>"},
	}},
	{Name: "NOTIFICATION", Subjects: []string{"notification.>"}, Consumers: []Consumer{
		{Durable: "notification-worker", FilterSubject: "notification.>"},
	}},
	{Name: "IDENTITY", Subjects: []string{"identity.>"}},
	{Name: "STORAGE", Subjects: []string{"storage.>"}},
}

// StreamFor returns the stream a subject belongs to.
func StreamFor(subject string) (Stream, bool) {
	for _, s := range Streams {
		for _, p := range s.Subjects {
			if matches(p, subject) {
				return s, true
			}
		}
	}
	return Stream{}, false
}

// matches implements NATS wildcard matching for the patterns used above.
func matches(pattern, subject string) bool {
	pi, si := 0, 0
	for {
		pe := next(pattern, pi)
		se := next(subject, si)
		pt, st := pattern[pi:pe], subject[si:se]
		if pt == ">" {
			return si < len(subject)
		}
		if pt != "*" && pt != st {
			return false
		}
		if pe == len(pattern) || se == len(subject) {
			return pe == len(pattern) && se == len(subject)
		}
		pi, si = pe+1, se+1
	}
}

func next(s string, i int) int {
	for j := i; j < len(s); j++ {
		if s[j] == '.' {
			return j
		}
	}
	return len(s)
}
