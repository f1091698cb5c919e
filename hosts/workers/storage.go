package workers

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
)

// StorageReconcilerConfig tunes the storage reconciler.
type StorageReconcilerConfig struct {
	// Interval between runs; 0 means DefaultStorageReconcileInterval.
	Interval time.Duration
	// Options of each run (grace for orphans, abandoned multipart age).
	Options storagesvc.ReconcileOptions
}

// DefaultStorageReconcileInterval is how often the reconciler runs.
const DefaultStorageReconcileInterval = 10 * time.Minute

// CheckAndSetDefaults validates the config.
func (c *StorageReconcilerConfig) CheckAndSetDefaults() error {
	if c.Interval < 0 || c.Options.Grace < 0 || c.Options.AbandonMultipartAfter < 0 {
		return errors.New("workers: storage reconciler durations must not be negative")
	}
	if c.Interval == 0 {
		c.Interval = DefaultStorageReconcileInterval
	}
	return nil
}

// StorageReconciler runs storagesvc.Reconcile periodically: it repairs
// what a crash between an object write and its index write left
// (doc/storage.md, "Consistency"). Several replicas may run it: each
// repair re-reads what it changes, and deletes are idempotent.
type StorageReconciler struct {
	cfg StorageReconcilerConfig
	svc *storagesvc.Service
	log *slog.Logger
}

// NewStorageReconciler builds a reconciler.
func NewStorageReconciler(cfg StorageReconcilerConfig, svc *storagesvc.Service, log *slog.Logger) (*StorageReconciler, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if svc == nil || log == nil {
		return nil, errors.New("workers: storage reconciler needs the storage service and a logger")
	}
	return &StorageReconciler{cfg: cfg, svc: svc, log: log}, nil
}

// Run reconciles every Interval until ctx ends (the first run at once). A
// failed run is logged and the next one covers it.
func (r *StorageReconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		rep, err := r.svc.Reconcile(ctx, r.cfg.Options)
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Warn("storage reconcile failed", "error", err)
		case rep.OrphansDeleted+rep.RowsDeleted+rep.RowsRepaired+rep.ReservationsExpired+rep.UploadsAborted > 0:
			r.log.Info("storage reconciled", "projects", rep.Scopes, "objects", rep.Objects, "rows", rep.Rows,
				"orphans_deleted", rep.OrphansDeleted, "rows_deleted", rep.RowsDeleted, "rows_repaired", rep.RowsRepaired,
				"reservations_expired", rep.ReservationsExpired, "uploads_aborted", rep.UploadsAborted, "foreign_keys", rep.Foreign)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// StorageReconcilerParams is what the module takes from the graph.
type StorageReconcilerParams struct {
	fx.In

	Config  StorageReconcilerConfig `optional:"true"`
	Storage *storagesvc.Service
	Logger  *slog.Logger
}

// StorageReconcilerModule runs the storage reconciler for the app's lifetime.
var StorageReconcilerModule = fx.Module("storage-reconciler",
	fx.Invoke(func(lc fx.Lifecycle, p StorageReconcilerParams) error {
		r, err := NewStorageReconciler(p.Config, p.Storage, p.Logger.With("component", "storage-reconciler"))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				go func() { defer close(done); r.Run(ctx) }()
				return nil
			},
			OnStop: func(stopCtx context.Context) error {
				cancel()
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
