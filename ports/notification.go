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

// NotificationDelivery is everything one event writes for its
// notifications.
type NotificationDelivery struct {
	// Rows are the inbox rows, one per recipient.
	Rows []notification.Notification
	// Emails are the rows' emails, each keyed by its row (Email.ID is the
	// row's ID); a row without one is not mailed.
	Emails []notification.Email
	// Webhooks are the deliveries to the subscribed endpoints.
	Webhooks []notification.Delivery
}

// NotificationInbox keeps each user's notifications. Calls join the
// transaction in ctx.
type NotificationInbox interface {
	// Deliver writes what one event raises, in one transaction (the one in
	// ctx, or else its own): the rows whose (EventID, UserID) is new, the
	// email of each row it inserts, and the webhook deliveries whose
	// (EndpointID, EventID) is new. It returns the rows it inserted (with
	// Seq): a redelivered event writes nothing. The users' live streams
	// are woken when the transaction commits, and a user's rows commit in
	// Seq order.
	Deliver(ctx context.Context, d NotificationDelivery) ([]notification.Notification, error)
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

// AudienceQuery names the people an event's notification goes to.
type AudienceQuery struct {
	Audience  notification.Audience
	TenantID  string
	ProjectID string // of ToProjectAdmins
	UserID    string // of ToUser; with ToTenantAdmins, a member of the tenant added to them
}

// EndpointQuery names the webhook endpoints an event goes to: the
// tenant's enabled endpoints (of ProjectID only, when it is not "")
// subscribed to EventType.
type EndpointQuery struct {
	TenantID  string
	ProjectID string
	EventType string
}

// TargetQuery asks for an event's recipients, its endpoints, or both
// (a nil part is not read).
type TargetQuery struct {
	Audience  *AudienceQuery
	Endpoints *EndpointQuery
}

// Targets are who and what an event's notifications reach.
type Targets struct {
	// Recipients are active users, ordered by user id; one person may
	// appear more than once.
	Recipients []Recipient
	Endpoints  []notification.Endpoint
}

// NotificationRecipients resolves an event's audience to active users
// (suspended ones get nothing) and its webhook subscription to endpoints.
type NotificationRecipients interface {
	// Targets reads both in one round trip: ToUser is the user (a member
	// of some tenant); ToTenant the tenant's members; ToTenantAdmins its
	// owners and admins, and UserID when a member of it; ToProjectAdmins
	// the project's admins and its tenant's owners and admins. Ids that
	// name nothing give nobody.
	Targets(ctx context.Context, q TargetQuery) (Targets, error)
}

// NotificationPreferences keeps each user's channel choices.
type NotificationPreferences interface {
	Preferences(ctx context.Context, userID string) (notification.Preferences, error)
	SetPreferences(ctx context.Context, userID string, p notification.Preferences) error
}

// MailQueue is the email channel's durable queue (one row per inbox row,
// queued by NotificationInbox.Deliver).
type MailQueue interface {
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

// WebhookStore keeps projects' webhook endpoints and their deliveries
// (made by NotificationInbox.Deliver). Secrets arrive sealed (core/envelope); the store never sees them in
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
