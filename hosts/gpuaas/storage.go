package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/s3"
	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/core/storage/storagesvc"
	"github.com/gpuaas/gpuaas/hosts/workers"
	"github.com/gpuaas/gpuaas/ports"
)

// storageParams are the ports the storage use cases take from the graph.
type storageParams struct {
	fx.In
	Tx       ports.TxRunner
	Store    *s3.Store
	Index    *postgres.StorageStore
	Projects ports.ProjectStore
	Policies ports.PolicyStore
	Audit    ports.AuditLog
	Outbox   ports.Outbox
	Clock    ports.Clock
	IDs      ports.IDs
}

func newStorageService(p storageParams) (*storagesvc.Service, error) {
	return storagesvc.New(storagesvc.Config{}, storagesvc.Deps{Tx: p.Tx, Index: p.Index, Reservations: p.Index,
		Objects: p.Store, Presigner: p.Store, Multipart: p.Store, Projects: p.Projects, Policies: p.Policies,
		Audit: p.Audit, Outbox: p.Outbox, Clock: p.Clock, IDs: p.IDs, Syncs: p.Index})
}

// s3Config is the adapter's slice of the settings: S3_BUCKET (required for
// storage), S3_ENDPOINT and S3_REGION; credentials from the SDK's default
// chain unless dev set a key pair.
func s3Config(s Settings) s3.Config {
	cfg := s3.Config{Bucket: s.S3Bucket, Region: s.S3Region, Endpoint: s.S3Endpoint, PresignEndpoint: s.S3PresignEndpoint}
	if s.S3AccessKey != "" {
		cfg.Credentials = s3.StaticCredentials(s.S3AccessKey, s.S3SecretKey)
	}
	return cfg
}

// storageOptions wire project storage when S3_BUCKET is set (gpuaas dev
// sets it for its versitygw); without it the storage routes answer 503.
func storageOptions(s Settings) fx.Option {
	if s.S3Bucket == "" {
		return fx.Options()
	}
	return fx.Module("storage",
		fx.Provide(
			func(lc fx.Lifecycle) (*s3.Store, error) {
				st, err := s3.New(context.Background(), s3Config(s))
				if err != nil {
					return nil, err
				}
				if s.S3CreateBucket {
					lc.Append(fx.StartHook(st.EnsureBucket))
				}
				return st, nil
			},
			fx.Annotate(func(st *s3.Store) ports.HealthCheck { return st }, fx.ResultTags(`group:"health"`)),
			postgres.NewStorageStore,
			newStorageService,
		),
	)
}

// storageActivityParams: the storage service when the graph has one.
type storageActivityParams struct {
	fx.In
	Storage *storagesvc.Service `optional:"true"`
	Tasks   temporal.TaskRunner
}

// provideStorageActivities gives the provisioning worker the storage sync
// activities when storage is configured (nil otherwise: no syncs).
func provideStorageActivities(p storageActivityParams) (*temporal.StorageActivities, error) {
	if p.Storage == nil {
		return nil, nil
	}
	return temporal.NewStorageActivities(p.Storage, p.Tasks)
}

// storageReconcilerOptions run the reconciler (gpuaas worker storage, and
// gpuaas dev).
func storageReconcilerOptions(s Settings) fx.Option {
	if s.S3Bucket == "" {
		return fx.Options()
	}
	return workers.StorageReconcilerModule
}

func workerStorage(ctx context.Context, s Settings) error {
	if err := s.require("DATABASE_URL", "S3_BUCKET"); err != nil {
		return err
	}
	logger := newLogger(s)
	return runApp(ctx, fx.New(storageWorkerApp(s, logger)))
}

func storageWorkerApp(s Settings, logger *slog.Logger) fx.Option {
	return fx.Options(baseOptions(s, logger), storageOptions(s), storageReconcilerOptions(s))
}

// devBucket is the bucket gpuaas dev keeps project storage in.
const devBucket = "gpuaas-dev"

// startDevObjects starts versitygw (posix backend under the data dir) for
// gpuaas dev, unless S3_ENDPOINT or S3_BUCKET point at another store. It
// returns the banner line and the stop function (nil when nothing runs).
func startDevObjects(ctx context.Context, s *Settings, dataDir string, getenv func(string) string, out io.Writer) ([2]string, func(), error) {
	if getenv("S3_ENDPOINT") != "" || getenv("S3_BUCKET") != "" {
		return [2]string{"objects", "S3_ENDPOINT / S3_BUCKET"}, nil, nil
	}
	gctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	dir := filepath.Join(dataDir, "objects")
	g, err := s3.StartGateway(gctx, s3.GatewayConfig{Dir: dir})
	if err != nil {
		return [2]string{}, nil, fmt.Errorf("%w\n(build versitygw with `make tools`, or set S3_ENDPOINT and S3_BUCKET)", err)
	}
	if pid := g.StoppedLeftover(); pid != 0 {
		fmt.Fprintf(out, "stopped the versitygw (pid %d) an earlier gpuaas dev left running\n", pid)
	}
	s.S3Endpoint, s.S3Bucket, s.S3Region = g.Endpoint(), devBucket, "us-east-1"
	s.S3AccessKey, s.S3SecretKey, s.S3CreateBucket = g.AccessKey(), g.SecretKey(), true
	stop := func() {
		c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = g.Stop(c)
	}
	return [2]string{"objects", "versitygw " + g.Endpoint() + " (S3, bucket " + devBucket + ", posix in " + g.DataDir() + ")"}, stop, nil
}
