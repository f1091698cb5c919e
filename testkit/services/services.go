// Package services finds the real Postgres, Redis and NATS that tests run
// against: from GPUAAS_TEST_* variables, else the default localhost ports.
// A service that does not answer there is started with testcontainers when
// a Docker engine exists; otherwise the test skips loudly, or fails when
// GPUAAS_REQUIRE_SERVICES=1 (CI).
package services

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/adapters/postgres"
)

// Required reports whether missing services must fail tests.
func Required() bool { return os.Getenv("GPUAAS_REQUIRE_SERVICES") == "1" }

// Unavailable skips (or, when required, fails) the test for a missing service.
func Unavailable(tb testing.TB, service string, err error) {
	tb.Helper()
	hint := map[string]string{"postgres": "GPUAAS_TEST_POSTGRES_URL", "redis": "GPUAAS_TEST_REDIS_ADDR",
		"nats": "GPUAAS_TEST_NATS_URL"}[service]
	if hint == "" {
		hint = "GPUAAS_TEST_" + strings.ToUpper(service)
	}
	msg := fmt.Sprintf("\n*** %s is not reachable (%v).\n*** Start it or set %s; skipping.\n", service, err, hint)
	if Required() {
		tb.Fatalf("GPUAAS_REQUIRE_SERVICES=1 and %s", msg)
	}
	tb.Skip(msg)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// PostgresURL is the admin URL tests create their databases from.
func PostgresURL() string {
	return env("GPUAAS_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
}

// RedisAddr is host:port of the test Redis.
func RedisAddr() string { return env("GPUAAS_TEST_REDIS_ADDR", "127.0.0.1:6379") }

// NATSURL is the test NATS server (Debian's 2.9 by default).
func NATSURL() string { return env("GPUAAS_TEST_NATS_URL", "nats://127.0.0.1:4222") }

// Reachable dials addr briefly.
func Reachable(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// RandomSuffix returns n random hex bytes, for unique names per test.
func RandomSuffix(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FreshDatabaseURL creates an empty database for this test (dropped at
// cleanup) and returns its URL.
func FreshDatabaseURL(tb testing.TB) string {
	tb.Helper()
	admin := PostgresURL()
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("bad GPUAAS_TEST_POSTGRES_URL: %v", err)
	}
	if err := Reachable(u.Host); err != nil {
		ep, cerr := containerEndpoint("postgres")
		if cerr != nil {
			Unavailable(tb, "postgres", fmt.Errorf("%v; %v", err, cerr))
		}
		u.Host, u.User = ep, url.User("postgres")
		admin = u.String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		Unavailable(tb, "postgres", err)
	}
	defer conn.Close(context.Background())
	name := "gpuaas_t_" + RandomSuffix(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u.Path = "/" + name
	return u.String()
}

// Postgres opens a migrated database private to the calling test and
// closes it at cleanup.
func Postgres(tb testing.TB) *postgres.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, postgres.Config{URL: FreshDatabaseURL(tb), Migrate: true, MaxConns: 40})
	if err != nil {
		tb.Fatalf("open test database: %v", err)
	}
	tb.Cleanup(db.Close)
	return db
}
