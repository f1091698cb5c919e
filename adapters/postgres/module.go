package postgres

import (
	"context"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/ports"
)

// HealthGroup is the fx value group the hosts collect []ports.HealthCheck
// from.
const HealthGroup = "health"

// Module provides the database and every store as its port. The host
// supplies a Config (fx.Supply(postgres.Config{…})); a ports.Clock is used
// when the graph has one, else the wall clock.
//
// Provided: *DB, ports.TxRunner, ports.UserStore, ports.TenantStore,
// ports.ProjectStore, ports.MembershipStore, ports.PolicyStore,
// ports.AuditLog, ports.IdempotencyStore, ports.AccessChanges (the change
// feed of authentication caches), and the DB as a ports.HealthCheck in the
// group "health".
var Module = fx.Module("postgres",
	fx.Provide(
		provideDB,
		fx.Annotate(func(db *DB) *DB { return db }, fx.As(new(ports.TxRunner))),
		fx.Annotate(func(db *DB) ports.HealthCheck { return db }, fx.ResultTags(`group:"`+HealthGroup+`"`)),
		fx.Annotate(NewUserStore, fx.As(new(ports.UserStore))),
		fx.Annotate(NewTenantStore, fx.As(new(ports.TenantStore))),
		fx.Annotate(NewProjectStore, fx.As(new(ports.ProjectStore))),
		fx.Annotate(NewMembershipStore, fx.As(new(ports.MembershipStore))),
		fx.Annotate(NewAuditLog, fx.As(new(ports.AuditLog))),
		fx.Annotate(NewIdempotencyStore, fx.ParamTags(``, `optional:"true"`), fx.As(new(ports.IdempotencyStore))),
		fx.Annotate(providePolicyStore, fx.ParamTags(``, ``, ``, `optional:"true"`), fx.As(new(ports.PolicyStore))),
		fx.Annotate(provideAccessChanges, fx.As(new(ports.AccessChanges))),
	),
)

// provideDB builds the pool without I/O; it connects (and migrates, if
// configured) on start and closes on stop.
func provideDB(lc fx.Lifecycle, cfg Config) (*DB, error) {
	db, err := New(cfg)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{
		OnStart: db.Connect,
		OnStop:  func(context.Context) error { db.Close(); return nil },
	})
	return db, nil
}

// providePolicyStore ties the store's listener to the app's lifecycle. It
// starts after the DB connects and stops before the DB closes, because fx
// runs start hooks in dependency order and stop hooks in reverse.
func providePolicyStore(lc fx.Lifecycle, db *DB, cfg Config, clock ports.Clock) (*PolicyStore, error) {
	ttl := cfg.PolicyCacheTTL
	if ttl == 0 {
		ttl = DefaultPolicyCacheTTL
	}
	s, err := NewPolicyStore(db, PolicyConfig{CacheTTL: ttl, Clock: clock})
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StartStopHook(s.Start, s.Close))
	return s, nil
}

// provideAccessChanges stops the change feed's listener (started by its
// first use) before the DB closes.
func provideAccessChanges(lc fx.Lifecycle, db *DB) *AccessChanges {
	a := NewAccessChanges(db)
	lc.Append(fx.StopHook(a.Close))
	return a
}
