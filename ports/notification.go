package ports

import (
	"context"
	"time"

	"github.com/gpuaas/gpuaas/core/notification"
)

// NotificationFilter pages a user's inbox, newest first.
type NotificationFilter struct {
	UnreadOnly bool
	Limit      int
	Cursor     string
}

// NotificationInbox keeps each user's notifications. Calls join the
// transaction in ctx.
type NotificationInbox interface {
	// Deliver inserts the rows whose (EventID, UserID) is new and returns
	// those it inserted (with Seq): a redelivered event inserts nothing.
	// The users' live streams are woken when the transaction commits, and
	// a user's rows commit in Seq order.
	Deliver(ctx context.Context, rows []notification.Notification) ([]notification.Notification, error)
	List(ctx context.Context, userID string, f NotificationFilter) (rows []notification.Notification, nextCursor string, err error)
	// Since returns the user's rows with Seq > after, oldest first.
	Since(ctx context.Context, userID string, after int64, limit int) ([]notification.Notification, error)
	// MarkRead marks the user's rows read (all of them when ids is empty)
	// and returns how many changed.
	MarkRead(ctx context.Context, userID string, ids []string, at time.Time) (int, error)
	UnreadCount(ctx context.Context, userID string) (int, error)
}

// NotificationFeed wakes a user's live streams when rows arrive in their
// inbox (on any replica). The channel receives at most one wake-up; the
// caller reads Since and subscribes again. A wake-up may be spurious.
type NotificationFeed interface {
	Subscribe(userID string) (wake <-chan struct{}, cancel func())
}

// Recipient is a person a notification can reach, with their channel
// preferences (read with them, so delivering needs no query per person).
type Recipient struct {
	UserID      string
	TenantID    string
	Email       string
	Preferences notification.Preferences
}

// NotificationRecipients resolves audiences to active users.
type NotificationRecipients interface {
	// TenantMembers returns the tenant's active members (owners and admins
	// only when adminsOnly).
	TenantMembers(ctx context.Context, tenantID string, adminsOnly bool) ([]Recipient, error)
	// ProjectAdmins returns the project's active admins and its tenant's
	// active owners and admins.
	ProjectAdmins(ctx context.Context, projectID string) ([]Recipient, error)
	// User returns one active user (NotFound when absent or suspended).
	User(ctx context.Context, userID string) (Recipient, error)
}

// NotificationPreferences keeps each user's channel choices.
type NotificationPreferences interface {
	Preferences(ctx context.Context, userID string) (notification.Preferences, error)
	SetPreferences(ctx context.Context, userID string, p notification.Preferences) error
}

// MailQueue is the email channel's durable queue (one row per inbox row).
type MailQueue interface {
	// Enqueue adds emails in the caller's transaction; an id already queued
	// is skipped.
	Enqueue(ctx context.Context, emails ...notification.Email) error
	// Claim leases up to limit emails due at now: they are not handed out
	// again until lease has passed (a sender that dies mid-send loses
	// nothing). Attempts counts this claim.
	Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]notification.Email, error)
	MarkSent(ctx context.Context, id string, at time.Time) error
	// Retry records a failed attempt; next zero gives up (status failed).
	Retry(ctx context.Context, id string, next time.Time, lastError string) error
}

// WebhookAttempt is one HTTP attempt of a delivery, for the delivery log.
type WebhookAttempt struct {
	DeliveryID string
	Attempt    int
	At         time.Time
	StatusCode int // 0 when no response arrived
	Error      string
	Duration   time.Duration
}

// WebhookDeliveryFilter pages an endpoint's deliveries, newest first.
type WebhookDeliveryFilter struct {
	Status notification.DeliveryStatus // "" for all
	Limit  int
	Cursor string
}

// WebhookStore keeps projects' webhook endpoints and their deliveries.
// Secrets arrive sealed (core/envelope); the store never sees them in
// clear.
type WebhookStore interface {
	CreateEndpoint(ctx context.Context, e notification.Endpoint, sealedSecrets []byte) error
	// Endpoint returns an endpoint of the project (NotFound otherwise) with
	// its sealed secrets.
	Endpoint(ctx context.Context, projectID, id string) (notification.Endpoint, []byte, error)
	ListEndpoints(ctx context.Context, projectID string) ([]notification.Endpoint, error)
	// UpdateEndpoint writes URL, description, event types, status, reason,
	// failing-since and, when sealedSecrets is not nil, the secrets.
	UpdateEndpoint(ctx context.Context, e notification.Endpoint, sealedSecrets []byte) error
	DeleteEndpoint(ctx context.Context, projectID, id string) error
	// EndpointsFor returns the tenant's enabled endpoints subscribed to
	// eventType (of projectID only, when it is not "").
	EndpointsFor(ctx context.Context, tenantID, projectID, eventType string) ([]notification.Endpoint, error)
	// EnqueueDeliveries inserts deliveries; an (endpoint, event) pair that
	// exists is skipped. It returns how many it inserted.
	EnqueueDeliveries(ctx context.Context, ds ...notification.Delivery) (int, error)
	// ClaimDeliveries leases up to limit due pending deliveries of enabled
	// endpoints, each with its endpoint and sealed secrets.
	// Attempts counts this claim.
	ClaimDeliveries(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]ClaimedDelivery, error)
	// RecordAttempt logs an attempt and moves the delivery: succeeded,
	// pending again at next, or failed (status given).
	RecordAttempt(ctx context.Context, a WebhookAttempt, status notification.DeliveryStatus, next time.Time) error
	// MarkEndpointResult records that an attempt to the endpoint succeeded
	// (failing-since cleared) or failed (failing-since set unless set) and
	// returns the failing-since after the change.
	MarkEndpointResult(ctx context.Context, endpointID string, ok bool, at time.Time) (*time.Time, error)
	// DisableEndpoint disables an enabled endpoint; false when it was not
	// enabled (another worker, or its owner, got there first).
	DisableEndpoint(ctx context.Context, endpointID, reason string, at time.Time) (bool, error)
	// CancelPending fails every pending delivery of an endpoint (it was
	// disabled) and returns how many.
	CancelPending(ctx context.Context, endpointID, reason string) (int, error)
	ListDeliveries(ctx context.Context, endpointID string, f WebhookDeliveryFilter) ([]notification.Delivery, string, error)
	Attempts(ctx context.Context, deliveryID string) ([]WebhookAttempt, error)
}

// ClaimedDelivery is a leased delivery with what is needed to send it.
type ClaimedDelivery struct {
	Delivery      notification.Delivery
	Endpoint      notification.Endpoint
	SealedSecrets []byte
}

// WebhookRequest is one signed POST to an endpoint.
type WebhookRequest struct {
	URL     string
	Headers map[string]string
	Body    []byte
}

// WebhookSender posts a webhook. It refuses private and loopback targets
// when so configured (checked at dial time, after name resolution). status
// is 0 when no response arrived.
type WebhookSender interface {
	Send(ctx context.Context, r WebhookRequest) (status int, err error)
}
