// Package admin is the model of the operators' views: user and tenant
// directories with their filters, the ops view's health entries and the
// runbooks they point at. Its use cases live in adminsvc.
package admin

import (
	"time"

	"github.com/gpuaas/gpuaas/core/identity"
)

// UserFilter selects users; zero fields match everything.
type UserFilter struct {
	Email    string // a case-insensitive substring of the email
	TenantID string
	Status   identity.UserStatus
	Limit    int
	Cursor   string
}

// UserRow is a user with their tenant.
type UserRow struct {
	User       identity.User
	TenantID   string
	TenantName string
	TenantRole identity.TenantRole
	// Pending: created by an operator, not signed in yet.
	Pending bool
}

// TenantFilter selects tenants.
type TenantFilter struct {
	Name   string // a case-insensitive substring of the name or slug
	Limit  int
	Cursor string
}

// TenantRow is a tenant with its size and money.
type TenantRow struct {
	Tenant       identity.Tenant
	Members      int
	BalanceMinor int64
	Currency     string
	LiveAllocs   int
}

// Member is a person of a tenant with their tenant role.
type Member struct {
	User identity.User
	Role identity.TenantRole
}

// Status of an ops entry.
type Status string

const (
	OK       Status = "ok"
	Degraded Status = "degraded"
)

// Count is a number under a name (a state, a health).
type Count struct {
	Name  string
	Count int
}

// OpsSnapshot is what the ops view reads from the database.
type OpsSnapshot struct {
	NodesByState       []Count
	NodesByHealth      []Count
	AllocationsByState []Count
	// Stuck counts allocations in requested, provisioning or releasing
	// for longer than the view's threshold; ReleaseFailed those in
	// release_failed.
	Stuck, ReleaseFailed int
	OutboxPending        int
	OutboxOldest         *time.Time // the oldest pending event's time
	OutboxFailed         int
	FailedEvents         []FailedEvent // newest first, at most a page
	PaymentsToReconcile  int           // payment sessions in failed_reconcile
	EmailsPending        int
	WebhooksPending      int
}

// FailedEvent is an outbox row that gave up after its retries.
type FailedEvent struct {
	ID         string
	Subject    string
	OccurredAt time.Time
	RetryCount int
	LastError  string
}

// ConsumerLag is a durable consumer's backlog on the bus.
type ConsumerLag struct {
	Stream, Durable string
	Pending         uint64 // messages not yet delivered
	AckPending      int    // delivered, not yet acked
	Redelivered     int
}

// Runbook is a section of doc/runbook.md that tells an operator what to do.
type Runbook struct {
	ID    string
	Title string
	// Anchor is the section's anchor in doc/runbook.md.
	Anchor string
}

// Runbook ids: stable, referenced by degraded ops entries.
const (
	RunbookStuckAllocations = "stuck-allocations"
	RunbookFailedEvents     = "failed-events"
	RunbookOutboxBacklog    = "outbox-backlog"
	RunbookConsumerLag      = "consumer-lag"
	RunbookNodesOffline     = "nodes-offline"
	RunbookReconcile        = "payments-reconcile"
	RunbookNotifications    = "notifications-backlog"
)

// Runbooks lists every runbook the ops view may point at.
var Runbooks = []Runbook{
	{RunbookStuckAllocations, "Allocations that will not go away", "allocations-that-will-not-go-away"},
	{RunbookFailedEvents, "Events that did not go out", "events-that-did-not-go-out"},
	{RunbookOutboxBacklog, "Outbox backlog", "outbox-backlog"},
	{RunbookConsumerLag, "Consumer lag", "consumer-lag"},
	{RunbookNodesOffline, "Nodes offline or unhealthy", "nodes-offline-or-unhealthy"},
	{RunbookReconcile, "Payments that did not reconcile", "money"},
	{RunbookNotifications, "Notifications not going out", "notifications-not-going-out"},
}

// Entry is one line of the ops view.
type Entry struct {
	Name    string
	Status  Status
	Value   int64
	Detail  string
	Runbook string // a Runbooks id when degraded
}

// Thresholds of the ops view: past them an entry is degraded.
const (
	OutboxAgeDegraded     = time.Minute
	ConsumerLagDegraded   = 1000
	NotificationsDegraded = 1000
	DefaultStuckAfter     = 15 * time.Minute
	FailedEventsOnThePage = 20
)
