package workers

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/notification/notificationsvc"
	"github.com/gpuaas/gpuaas/ports"
)

// NotificationConsumers are the durable consumers the notifications worker
// reads, by stream (core/event.Streams).
var NotificationConsumers = [][2]string{
	{"PROVISIONING", "notification-provisioning"},
	{"BILLING", "notification-billing"},
	{"PAYMENTS", "notification-payments"},
	{"NOTIFICATION", "notification-worker"},
}

// NotificationsConfig tunes the notifications worker. The zero value is
// the production default.
type NotificationsConfig struct {
	// NakDelay is how long an event whose handling failed (database down)
	// waits for redelivery. Default 5s.
	NakDelay time.Duration
	// Poll is how often the email and webhook dispatchers look for due
	// work when idle. Default 1s.
	Poll time.Duration
	// DisableDispatch runs only the consumers (tests drive the
	// dispatchers themselves).
	DisableDispatch bool
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *NotificationsConfig) CheckAndSetDefaults() error {
	if c.NakDelay < 0 || c.Poll < 0 {
		return errors.New("workers: NakDelay and Poll must not be negative")
	}
	if c.NakDelay == 0 {
		c.NakDelay = 5 * time.Second
	}
	if c.Poll == 0 {
		c.Poll = time.Second
	}
	return nil
}

// NotificationsParams is what the notifications worker takes from the graph.
type NotificationsParams struct {
	fx.In

	Config        NotificationsConfig `optional:"true"`
	Notifications *notificationsvc.Service
	Subscriber    ports.Subscriber
	Logger        *slog.Logger
}

// NotificationHandler hands one delivered event to the notification use
// cases and acks, naks or drops it (settle).
func NotificationHandler(svc *notificationsvc.Service, nakDelay time.Duration, log *slog.Logger) func(context.Context, ports.Message) {
	return func(ctx context.Context, m ports.Message) {
		settle(m, svc.HandleEvent(ctx, m.Envelope), nakDelay, log)
	}
}

// NotificationsModule runs `gpuaas worker notifications` for the app's
// lifetime: the durable consumers that turn events into inbox rows, queued
// emails and webhook deliveries (idempotent by event id, so replicas and
// redeliveries are safe), and the dispatchers that send the emails and
// deliveries (leases, so replicas share the work without doubling it).
var NotificationsModule = fx.Module("notifications-worker",
	fx.Invoke(func(lc fx.Lifecycle, p NotificationsParams) error {
		cfg := p.Config
		if err := cfg.CheckAndSetDefaults(); err != nil {
			return err
		}
		log := p.Logger.With("component", "notifications-worker")
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				for _, c := range NotificationConsumers {
					stream, durable := c[0], c[1]
					wg.Go(func() {
						consumeForever(ctx, p.Subscriber, stream, durable, NotificationHandler(p.Notifications, cfg.NakDelay, log),
							log.With("durable", durable))
					})
				}
				if !cfg.DisableDispatch {
					wg.Go(func() { p.Notifications.Run(ctx, "email", cfg.Poll, p.Notifications.SendEmails, waitFor) })
					wg.Go(func() { p.Notifications.Run(ctx, "webhooks", cfg.Poll, p.Notifications.DeliverWebhooks, waitFor) })
				}
				return nil
			},
			OnStop: func(stopCtx context.Context) error {
				cancel()
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
				select {
				case <-done:
					return nil
				case <-stopCtx.Done():
					return stopCtx.Err()
				}
			},
		})
		return nil
	}),
)
