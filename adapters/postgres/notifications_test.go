package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/notification"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/poll"
	"github.com/gpuaas/gpuaas/testkit/seed"
	"github.com/gpuaas/gpuaas/testkit/services"
)

func inboxRow(userID, tenantID, eventID string) notification.Notification {
	return notification.Notification{ID: system.UUIDs{}.NewID(), UserID: userID, TenantID: tenantID, EventID: eventID,
		Kind: notification.LowBalance, Title: "t", Body: "b", CreatedAt: time.Now()}
}

// Deliver outside a transaction is one implicit transaction: a statement
// that fails after the rows and emails leaves neither behind.
func TestDeliverIsOneTransaction(t *testing.T) {
	t.Parallel()
	db := services.Postgres(t)
	store := postgres.NewNotificationStore(db, nil)
	t.Cleanup(store.Close)
	ctx := context.Background()
	m := seed.NewMember(t, db, 0)
	ev := system.UUIDs{}.NewID()
	row := inboxRow(m.Principal.User.ID, m.Principal.TenantID, ev)
	d := ports.NotificationDelivery{Rows: []notification.Notification{row},
		Emails: []notification.Email{{ID: row.ID, To: "a@example.com", Subject: "t", Body: "b", MessageID: "<m>", CreatedAt: row.CreatedAt}},
		// An endpoint that does not exist: its delivery fails last.
		Webhooks: []notification.Delivery{{ID: system.UUIDs{}.NewID(), EndpointID: system.UUIDs{}.NewID(), TenantID: m.Principal.TenantID,
			ProjectID: m.ProjectID, EventID: ev, EventType: "billing.low_balance_warning", Payload: []byte("{}"),
			NextAttemptAt: row.CreatedAt, CreatedAt: row.CreatedAt}}}
	if _, err := store.Deliver(ctx, d); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("deliver to a missing endpoint: %v; want NotFound", err)
	}
	var rows, mails int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM notifications WHERE event_id = $1),
		(SELECT count(*) FROM notification_emails WHERE id = $2)`, ev, row.ID).Scan(&rows, &mails); err != nil {
		t.Fatal(err)
	}
	if rows != 0 || mails != 0 {
		t.Fatalf("%d rows and %d emails left by a failed delivery; want none", rows, mails)
	}

	d.Webhooks = nil
	got, err := store.Deliver(ctx, d)
	if err != nil || len(got) != 1 || got[0].ID != row.ID || got[0].Seq == 0 {
		t.Fatalf("deliver: %+v, %v", got, err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM notification_emails WHERE id = $1`, row.ID).Scan(&mails); err != nil || mails != 1 {
		t.Fatalf("%d emails (%v); want 1", mails, err)
	}
	// Again (a redelivery, with new ids): nothing new.
	again := inboxRow(row.UserID, row.TenantID, ev)
	d.Rows, d.Emails[0].ID = []notification.Notification{again}, again.ID
	if got, err := store.Deliver(ctx, d); err != nil || len(got) != 0 {
		t.Fatalf("redelivery inserted %+v, %v; want nothing", got, err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM notification_emails WHERE id = $1`, again.ID).Scan(&mails); err != nil || mails != 0 {
		t.Fatalf("a redelivery queued %d emails (%v); want none", mails, err)
	}
}

// A user's rows commit in seq order: a delivery waits for the user's lock
// before it draws its seq, so a row whose transaction holds the lock and
// inserts later still gets the smaller seq and commits first.
func TestDeliverDrawsSeqUnderTheUsersLock(t *testing.T) {
	t.Parallel()
	db := services.Postgres(t)
	store := postgres.NewNotificationStore(db, nil)
	t.Cleanup(store.Close)
	ctx := context.Background()
	m := seed.NewMember(t, db, 0)
	user, tenant := m.Principal.User.ID, m.Principal.TenantID
	first, second := inboxRow(user, tenant, system.UUIDs{}.NewID()), inboxRow(user, tenant, system.UUIDs{}.NewID())

	locked, release := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- db.InTx(ctx, func(ctx context.Context) error {
			// What a delivery of another event takes first.
			if _, err := db.Q(ctx).Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('notifications:' || $1, 0))`, user); err != nil {
				return err
			}
			close(locked)
			<-release
			got, err := store.Deliver(ctx, ports.NotificationDelivery{Rows: []notification.Notification{first}})
			if err == nil && len(got) != 1 {
				t.Errorf("first delivery inserted %d rows", len(got))
			}
			return err
		})
	}()
	<-locked
	secondDone := make(chan error, 1)
	go func() {
		_, err := store.Deliver(ctx, ports.NotificationDelivery{Rows: []notification.Notification{second}})
		secondDone <- err
	}()
	poll.Until(t, 10*time.Second, "the second delivery waits for the user's lock", func() bool {
		var n int
		_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
		return n == 1
	})
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	if err := <-secondDone; err != nil {
		t.Fatal(err)
	}
	var s1, s2 int64
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT seq FROM notifications WHERE id = $1), (SELECT seq FROM notifications WHERE id = $2)`,
		first.ID, second.ID).Scan(&s1, &s2); err != nil {
		t.Fatal(err)
	}
	if s1 >= s2 {
		t.Fatalf("the row committed first has seq %d, the one committed after it %d: a stream resumed after %d would miss it", s1, s2, s1)
	}
}
