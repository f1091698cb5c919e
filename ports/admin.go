package ports

import (
	"context"
	"time"

	"github.com/gpuaas/gpuaas/core/admin"
	"github.com/gpuaas/gpuaas/core/identity"
)

// AdminDirectory is the operators' view of people and tenants.
type AdminDirectory interface {
	ListUsers(ctx context.Context, f admin.UserFilter) (rows []admin.UserRow, nextCursor string, err error)
	// User returns one user with their tenant (NotFound when absent).
	User(ctx context.Context, id string) (admin.UserRow, error)
	ListTenants(ctx context.Context, f admin.TenantFilter) (rows []admin.TenantRow, nextCursor string, err error)
	Tenant(ctx context.Context, id string) (admin.TenantRow, error)
	TenantMembers(ctx context.Context, tenantID string) ([]admin.Member, error)
	// CreatePendingUser inserts a user who has not signed in yet, found
	// by email at their first sign-in (Conflict when the email is taken).
	CreatePendingUser(ctx context.Context, u identity.User) error
	// SetUserStatus changes a user's status; false when it already was.
	SetUserStatus(ctx context.Context, id string, status identity.UserStatus, at time.Time) (bool, error)
	// ActiveAdmins counts active platform admins, locking them (FOR
	// UPDATE inside a transaction) so two suspensions cannot both leave
	// one.
	ActiveAdmins(ctx context.Context) (int, error)
}

// PendingUsers binds an operator-created user to their identity at the
// first sign-in.
type PendingUsers interface {
	// ClaimPending gives the pending user with this email the issuer and
	// subject, and returns them; NotFound when there is none.
	ClaimPending(ctx context.Context, email, issuer, subject string) (identity.User, error)
}

// OpsReader reads the platform's health for the ops view and retries
// failed outbox events.
type OpsReader interface {
	Snapshot(ctx context.Context, now time.Time, stuckAfter time.Duration) (admin.OpsSnapshot, error)
	// RetryEvent puts a failed outbox event back to pending, due now;
	// NotFound when there is no failed event with this id.
	RetryEvent(ctx context.Context, id string) (admin.FailedEvent, error)
}

// ConsumerMonitor reports the bus's durable consumers' backlogs.
type ConsumerMonitor interface {
	ConsumerLag(ctx context.Context) ([]admin.ConsumerLag, error)
}
