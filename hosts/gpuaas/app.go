package main

import (
	"context"
	"log/slog"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/nats"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/redis"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/event/relay"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/policy/policysvc"
	httphost "github.com/gpuaas/gpuaas/hosts/http"
	terminalhost "github.com/gpuaas/gpuaas/hosts/terminal"
	"github.com/gpuaas/gpuaas/hosts/workers"
	"github.com/gpuaas/gpuaas/ports"
)

// baseOptions wire what every process needs: logging, clock, ids, Postgres
// with the outbox, and the bus.
func baseOptions(s Settings, logger *slog.Logger) fx.Option {
	return fx.Options(
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: logger.With("component", "fx")}
			l.UseLogLevel(slog.LevelDebug) // wiring chatter only at debug; errors stay errors
			return l
		}),
		fx.Supply(logger),
		tracingOptions(s),
		metricsOptions(s),
		fx.Provide(
			fx.Annotate(func() system.Clock { return system.Clock{} }, fx.As(new(ports.Clock))),
			fx.Annotate(func() system.UUIDs { return system.UUIDs{} }, fx.As(new(ports.IDs))),
		),
		baseTelemetryOptions(s), // the Postgres and NATS configs, traced when tracing is on
		postgres.Module,
		postgres.OutboxModule,
		nats.Module,
		fx.StopTimeout(30*time.Second),
	)
}

// ephemeralOptions choose the token store and rate limiter: Redis when
// REDIS_URL is set (any number of replicas), else in-process (one replica).
func ephemeralOptions(s Settings) fx.Option {
	if s.RedisURL == "" {
		return fx.Module("inproc",
			fx.Provide(
				fx.Annotate(inproc.NewTokenStore, fx.As(new(ports.TokenStore))),
				fx.Annotate(inproc.NewRateLimiter, fx.As(new(ports.RateLimiter))),
			),
		)
	}
	return fx.Module("redis",
		fx.Provide(
			fx.Private,
			func(lc fx.Lifecycle) (*redis.Client, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := redis.Open(ctx, redis.Config{URL: s.RedisURL})
				if err != nil {
					return nil, err
				}
				lc.Append(fx.StopHook(c.Close))
				return c, nil
			},
		),
		fx.Provide(
			fx.Annotate(func(c *redis.Client) *redis.Client { return c }, fx.As(new(ports.TokenStore)), fx.As(new(ports.RateLimiter))),
			fx.Annotate(func(c *redis.Client) ports.HealthCheck { return c }, fx.ResultTags(`group:"health"`)),
		),
	)
}

// identityParams are the ports the identity use cases take from the graph.
type identityParams struct {
	fx.In
	Tx       ports.TxRunner
	Users    ports.UserStore
	Tenants  ports.TenantStore
	Projects ports.ProjectStore
	Members  ports.MembershipStore
	Audit    ports.AuditLog
	Outbox   ports.Outbox
	Clock    ports.Clock
	IDs      ports.IDs
	// Pending lets operator-created users take their account at first
	// sign-in (operatorOptions provides it; the API has it).
	Pending ports.PendingUsers `optional:"true"`
	// Changes lets project-access checks be cached (postgres.Module
	// provides it; doc/performance.md).
	Changes ports.AccessChanges `optional:"true"`
}

func newIdentityService(p identityParams) (*identitysvc.Service, error) {
	return identitysvc.New(identitysvc.Deps{
		Tx: p.Tx, Users: p.Users, Tenants: p.Tenants, Projects: p.Projects, Members: p.Members,
		Audit: p.Audit, Outbox: p.Outbox, Clock: p.Clock, IDs: p.IDs, Pending: p.Pending, Changes: p.Changes,
	})
}

func newPolicyService(tx ports.TxRunner, policies ports.PolicyStore, audit ports.AuditLog, clock ports.Clock, ids ports.IDs) (*policysvc.Service, error) {
	return policysvc.New(policysvc.Deps{Tx: tx, Policies: policies, Audit: audit, Clock: clock, IDs: ids})
}

// apiOptions wire `serve api`: the HTTP host over the identity use cases,
// with an in-process outbox relay when withRelay is set.
func apiOptions(s Settings, logger *slog.Logger, withRelay, dev bool) fx.Option {
	opts := []fx.Option{
		baseOptions(s, logger),
		ephemeralOptions(s),
		fx.Supply(oidc.ClientConfig{Issuer: s.OIDCIssuer, ClientID: s.OIDCClientID, ClientSecret: s.OIDCSecret}),
		oidc.Module,
		machineOptions(s), // the verifier's config (OIDC issuer and the platform's own tokens), service accounts, API keys
		fx.Provide(newIdentityService, newPolicyService),
		computeOptions(s),
		terminalhost.ServiceModule,
		paymentOptions(s, dev),
		storageOptions(s),
		notificationOptions(s),
		operatorOptions(),
		fx.Supply(httphost.Config{
			Addr:                   s.HTTPAddr,
			PublicBaseURL:          s.PublicURL,
			AllowedRedirectURIs:    s.RedirectURIs,
			AllowLoopbackRedirects: s.LoopbackRedirects,
			AllowedOrigins:         s.CORSOrigins,
			CookieInsecure:         s.InsecureCookie,
			TrustedProxies:         s.TrustedProxies,
		}),
		httphost.Module,
		consoleOptions(s),
		platformGaugeOptions(),
	}
	if withRelay {
		opts = append(opts, relayOptions(s))
	}
	return fx.Options(opts...)
}

func relayOptions(s Settings) fx.Option {
	return fx.Options(fx.Supply(relay.Config{PollInterval: s.RelayInterval}), workers.OutboxRelayModule)
}

// runApp starts app, waits for ctx (SIGINT/SIGTERM) and stops it.
func runApp(ctx context.Context, app *fx.App) error {
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err := app.Start(startCtx)
	cancel()
	if err != nil {
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return app.Stop(stopCtx)
}

func serveAPI(ctx context.Context, s Settings) error {
	if err := s.require("DATABASE_URL", "OIDC_ISSUER_URL"); err != nil {
		return err
	}
	return runApp(ctx, fx.New(apiOptions(s, newLogger(s), true, false)))
}

// The graph of each process `gpuaas serve|worker` runs, one function each,
// so the tests build exactly what the command runs (TestValidateApps,
// TestWorkersBuildEveryUseCase).
func agentGatewayApp(s Settings, logger *slog.Logger) fx.Option {
	return fx.Options(baseOptions(s, logger), computeOptions(s), agentGatewayOptions(s))
}

func provisioningWorkerApp(s Settings, logger *slog.Logger) fx.Option {
	return fx.Options(baseOptions(s, logger), computeOptions(s), storageOptions(s), provisioningOptions(s))
}

func billingWorkerApp(s Settings, logger *slog.Logger) fx.Option {
	return fx.Options(baseOptions(s, logger), computeOptions(s), billingOptions())
}

func outboxWorkerApp(s Settings, logger *slog.Logger) fx.Option {
	return fx.Options(baseOptions(s, logger), relayOptions(s))
}

func serveAgentGateway(ctx context.Context, s Settings) error {
	if err := s.require("DATABASE_URL"); err != nil {
		return err
	}
	logger := newLogger(s)
	return runApp(ctx, fx.New(agentGatewayApp(s, logger)))
}

func serveTerminalGateway(ctx context.Context, s Settings, getenv func(string) string) error {
	if err := s.require("DATABASE_URL"); err != nil {
		return err
	}
	logger := newLogger(s)
	cfg, err := terminalGatewayConfig(s, getenv, s.TerminalAddr, logger)
	if err != nil {
		return err
	}
	return runApp(ctx, fx.New(baseOptions(s, logger), ephemeralOptions(s), computeOptions(s),
		terminalhost.ServiceModule, fx.Supply(cfg), terminalhost.Module))
}

func workerProvisioning(ctx context.Context, s Settings) error {
	if err := s.require("DATABASE_URL"); err != nil {
		return err
	}
	logger := newLogger(s)
	return runApp(ctx, fx.New(provisioningWorkerApp(s, logger)))
}

func workerBilling(ctx context.Context, s Settings) error {
	if err := s.require("DATABASE_URL"); err != nil {
		return err
	}
	logger := newLogger(s)
	return runApp(ctx, fx.New(billingWorkerApp(s, logger)))
}

func workerOutbox(ctx context.Context, s Settings) error {
	if err := s.require("DATABASE_URL"); err != nil {
		return err
	}
	logger := newLogger(s)
	return runApp(ctx, fx.New(outboxWorkerApp(s, logger)))
}
