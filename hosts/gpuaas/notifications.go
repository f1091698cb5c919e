package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/smtp"
	"github.com/gpuaas/gpuaas/adapters/webhook"
	"github.com/gpuaas/gpuaas/core/admin/adminsvc"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/ledger/ledgersvc"
	"github.com/gpuaas/gpuaas/core/notification/notificationsvc"
	"github.com/gpuaas/gpuaas/hosts/workers"
	"github.com/gpuaas/gpuaas/ports"
)

type notificationParams struct {
	fx.In
	Tx          ports.TxRunner
	Inbox       ports.NotificationInbox
	Feed        ports.NotificationFeed
	Recipients  ports.NotificationRecipients
	Preferences ports.NotificationPreferences
	Mail        ports.MailQueue
	Webhooks    ports.WebhookStore
	Policies    ports.PolicyStore
	Outbox      ports.Outbox
	Audit       ports.AuditLog
	KMS         ports.KMS
	Identity    *identitysvc.Service
	Clock       ports.Clock
	IDs         ports.IDs
	Logger      *slog.Logger
	Mailer      ports.Mailer        `optional:"true"`
	Sender      ports.WebhookSender `optional:"true"`
}

// notificationOptions wire the notification use cases (the API's inbox,
// stream, preferences and webhook routes; the worker's consumers and
// dispatchers).
func notificationOptions(s Settings) fx.Option {
	domain := "gpuaas.invalid"
	if u, err := url.Parse(s.PublicURL); err == nil && u.Hostname() != "" {
		domain = u.Hostname()
	}
	return fx.Options(
		postgres.NotificationsModule,
		fx.Provide(func(p notificationParams) (*notificationsvc.Service, error) {
			return notificationsvc.New(notificationsvc.Config{PublicURL: s.PublicURL, MailDomain: domain,
				AllowPrivateWebhooks: s.WebhooksAllowPrivate, NoEmail: s.SMTPHost == ""},
				notificationsvc.Deps{Tx: p.Tx, Inbox: p.Inbox, Feed: p.Feed, Recipients: p.Recipients,
					Preferences: p.Preferences, Mail: p.Mail, Webhooks: p.Webhooks, Policies: p.Policies, Outbox: p.Outbox,
					Audit: p.Audit, KMS: p.KMS, Projects: p.Identity, Clock: p.Clock, IDs: p.IDs, Mailer: p.Mailer,
					Sender: p.Sender, Logger: p.Logger})
		}),
	)
}

// notificationWorkerOptions add what only the worker needs: the SMTP
// mailer (when SMTP_HOST is set) and the webhook sender, then the module.
func notificationWorkerOptions(s Settings) fx.Option {
	opts := []fx.Option{
		fx.Provide(func() (ports.WebhookSender, error) {
			return webhook.New(webhook.Config{AllowPrivate: s.WebhooksAllowPrivate})
		}),
		webhookTelemetryOptions(),
		workers.NotificationsModule,
	}
	if s.SMTPHost != "" {
		opts = append(opts, fx.Provide(
			func() (*smtp.Mailer, error) {
				return smtp.New(smtp.Config{Host: s.SMTPHost, Port: s.SMTPPort, Username: s.SMTPUsername,
					Password: s.SMTPPassword, From: s.SMTPFrom, TLS: smtp.TLS(s.SMTPTLS)})
			},
			fx.Annotate(func(m *smtp.Mailer) ports.Mailer { return m }),
		))
	} else {
		opts = append(opts, fx.Invoke(func(log *slog.Logger) {
			log.Warn("SMTP_HOST is not set: notifications reach the inbox, the live stream and webhooks, but no email is sent")
		}))
	}
	return fx.Options(opts...)
}

func workerNotifications(ctx context.Context, s Settings) error {
	if err := s.require("DATABASE_URL"); err != nil {
		return err
	}
	logger := newLogger(s)
	return runApp(ctx, fx.New(notificationsWorkerApp(s, logger)))
}

func notificationsWorkerApp(s Settings, logger *slog.Logger) fx.Option {
	return fx.Options(baseOptions(s, logger), computeOptions(s), fx.Provide(newIdentityService),
		notificationOptions(s), notificationWorkerOptions(s))
}

// startDevMail starts mailpit (SMTP plus a web inbox, under the data dir)
// for gpuaas dev unless SMTP_HOST points at another server. It returns the
// banner line and the stop function (nil when nothing runs).
func startDevMail(ctx context.Context, s *Settings, dataDir string, getenv func(string) string) ([2]string, func(), error) {
	if getenv("SMTP_HOST") != "" {
		return [2]string{"mail", "SMTP_HOST " + s.SMTPHost}, nil, nil
	}
	mctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	mp, err := smtp.StartMailpit(mctx, smtp.MailpitConfig{Dir: filepath.Join(dataDir, "mailpit")})
	if err != nil {
		return [2]string{}, nil, fmt.Errorf("%w\n(build mailpit with `make tools`, or set SMTP_HOST)", err)
	}
	s.SMTPHost, s.SMTPPort, s.SMTPTLS = mp.SMTPHost(), mp.SMTPPort(), "none"
	s.SMTPFrom = "GPUaaS dev <noreply@gpuaas.localhost>"
	stop := func() {
		c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		mp.Stop(c)
	}
	return [2]string{"mail", "mailpit: web inbox " + mp.WebURL() + ", SMTP " + mp.SMTPHost() + ":" + strconv.Itoa(mp.SMTPPort())}, stop, nil
}

type adminParams struct {
	fx.In
	Tx          ports.TxRunner
	Store       *postgres.AdminStore
	Consumers   ports.ConsumerMonitor `optional:"true"`
	Ledger      *ledgersvc.Service
	Refunds     adminsvc.CreditRefunds
	Projects    ports.ProjectStore
	Members     ports.MembershipStore
	Tenants     ports.TenantStore
	Allocations ports.AllocationStore
	Policies    ports.PolicyStore
	Audit       ports.AuditLog
	Outbox      ports.Outbox
	Clock       ports.Clock
	IDs         ports.IDs
}

// operatorOptions wire the operators' use cases (users, tenants, policy
// overrides, ops view, event retry) and let an operator-created user take
// their account at first sign-in (ports.PendingUsers).
func operatorOptions() fx.Option {
	return fx.Options(
		fx.Provide(
			postgres.NewAdminStore,
			fx.Annotate(func(s *postgres.AdminStore) ports.PendingUsers { return s }),
			func(p adminParams) (*adminsvc.Service, error) {
				overrides, ok := p.Policies.(adminsvc.PolicyOverrides)
				if !ok {
					return nil, fmt.Errorf("gpuaas: the policy store %T cannot list or remove tenant overrides", p.Policies)
				}
				return adminsvc.New(adminsvc.Deps{Tx: p.Tx, Directory: p.Store, Ops: p.Store, Consumers: p.Consumers,
					Balances: p.Ledger, Refunds: p.Refunds, Projects: p.Projects, Members: p.Members, Tenants: p.Tenants,
					Allocations: p.Allocations, Policies: p.Policies, Overrides: overrides, Audit: p.Audit,
					Outbox: p.Outbox, Clock: p.Clock, IDs: p.IDs})
			},
		),
	)
}
