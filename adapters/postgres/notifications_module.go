package postgres

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// NotificationsModule provides the notification store as every
// notification port (inbox, live feed, recipients, preferences, mail queue,
// webhook store) and closes its LISTEN connection on stop. It needs the
// *DB that Module provides and a *slog.Logger.
var NotificationsModule = fx.Module("postgres-notifications",
	fx.Provide(
		fx.Private,
		func(lc fx.Lifecycle, db *DB, log *slog.Logger) *NotificationStore {
			s := NewNotificationStore(db, log.With("component", "notification-listener"))
			lc.Append(fx.StopHook(s.Close))
			return s
		},
	),
	fx.Provide(
		fx.Annotate(func(s *NotificationStore) *NotificationStore { return s },
			fx.As(new(ports.NotificationInbox)), fx.As(new(ports.NotificationFeed)),
			fx.As(new(ports.NotificationRecipients)), fx.As(new(ports.NotificationPreferences)),
			fx.As(new(ports.MailQueue)), fx.As(new(ports.WebhookStore))),
	),
)
