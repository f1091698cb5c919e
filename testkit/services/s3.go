package services

import (
	"context"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/s3"
)

// S3Gateway is a versitygw (posix backend in a temp dir, 127.0.0.1 only)
// private to the calling test, with an adapter on a fresh bucket.
type S3Gateway struct {
	Gateway *s3.Gateway
	Store   *s3.Store
	Bucket  string
	// Config is the adapter's configuration, for a second client (a
	// benchmark's direct SDK transfers).
	Config s3.Config
}

// S3 starts versitygw for the test (built by `make tools`; GPUAAS_TEST_VERSITYGW
// names another binary) and stops it at cleanup. A missing binary skips the
// test loudly, or fails it under GPUAAS_REQUIRE_SERVICES=1.
func S3(tb testing.TB) *S3Gateway {
	tb.Helper()
	bin := env("GPUAAS_TEST_VERSITYGW", "")
	if bin == "" {
		p, err := s3.LocateGateway()
		if err != nil {
			Unavailable(tb, "versitygw", err)
		}
		bin = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g, err := s3.StartGateway(ctx, s3.GatewayConfig{Dir: tb.TempDir(), Binary: bin})
	if err != nil {
		tb.Fatalf("start versitygw: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = g.Stop(ctx)
	})
	cfg := s3.Config{Bucket: "gpuaas-test-" + RandomSuffix(4), Endpoint: g.Endpoint(),
		Credentials: s3.StaticCredentials(g.AccessKey(), g.SecretKey())}
	st, err := s3.New(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := st.EnsureBucket(ctx); err != nil {
		tb.Fatalf("create bucket: %v", err)
	}
	_ = cfg.CheckAndSetDefaults()
	return &S3Gateway{Gateway: g, Store: st, Bucket: cfg.Bucket, Config: cfg}
}
