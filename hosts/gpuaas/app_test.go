package main

import (
	"bytes"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/fx"

	httphost "github.com/gpuaas/gpuaas/hosts/http"
	"github.com/gpuaas/gpuaas/hosts/workers"

	"github.com/gpuaas/gpuaas/testkit/services"
)

func testSettings(t *testing.T, extra map[string]string) Settings {
	t.Helper()
	vars := map[string]string{
		"DATABASE_URL":    "postgres://u@127.0.0.1:1/db?sslmode=disable",
		"OIDC_ISSUER_URL": "http://127.0.0.1:1/issuer",
	}
	for k, v := range extra {
		vars[k] = v
	}
	s, err := readSettings(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every process's graph is complete: fx.ValidateApp resolves every
// dependency without running constructors.
func TestValidateApps(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := map[string]fx.Option{
		"serve api (in-process)":      apiOptions(testSettings(t, nil), logger, true, false),
		"serve api (redis)":           apiOptions(testSettings(t, map[string]string{"REDIS_URL": "redis://127.0.0.1:6379"}), logger, true, false),
		"serve api without relay":     apiOptions(testSettings(t, nil), logger, false, false),
		"serve api with tracing":      apiOptions(testSettings(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}), logger, true, false),
		"serve agent-gateway":         agentGatewayApp(testSettings(t, nil), logger),
		"worker provisioning":         provisioningWorkerApp(testSettings(t, nil), logger),
		"worker billing":              billingWorkerApp(testSettings(t, nil), logger),
		"worker outbox":               outboxWorkerApp(testSettings(t, nil), logger),
		"worker notifications":        notificationsWorkerApp(testSettings(t, nil), logger),
		"worker notifications (smtp)": notificationsWorkerApp(testSettings(t, map[string]string{"SMTP_HOST": "mail.example.com"}), logger),
		"serve api with storage":      apiOptions(testSettings(t, map[string]string{"S3_BUCKET": "b", "S3_ENDPOINT": "http://127.0.0.1:9"}), logger, true, false),
		"worker storage":              storageWorkerApp(testSettings(t, map[string]string{"S3_BUCKET": "b"}), logger),
	}
	s := testSettings(t, map[string]string{"S3_BUCKET": "gpuaas-dev", "S3_ENDPOINT": "http://127.0.0.1:9"})
	termCfg, err := terminalGatewayConfig(s, func(string) string { return "" }, "127.0.0.1:0", logger)
	if err != nil {
		t.Fatal(err)
	}
	cases["dev"] = devAppOptions(s, devOptions{dataDir: t.TempDir(), agentAddr: "127.0.0.1:0", nodes: 2, nodeSKU: "h100-80g-x1", sshPort: 22201}, termCfg, logger)
	for name, opts := range cases {
		if err := fx.ValidateApp(opts); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The HTTP host takes its use cases as optional dependencies (a process
// without payments or storage serves 503 for those routes), and fx treats
// an optional dependency whose constructor cannot be satisfied as absent —
// so a missing port silently switched payments off in `gpuaas dev` while
// TestValidateApps passed. The API's graph, as `gpuaas dev` builds it with
// storage configured, must build every use case (constructors run; nothing
// starts).
func TestAPIBuildsEveryUseCase(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var got httphost.Params
	s := testSettings(t, map[string]string{"S3_BUCKET": "b", "S3_ENDPOINT": "http://127.0.0.1:9", "GPUAAS_DATA_DIR": t.TempDir()})
	app := fx.New(apiOptions(s, logger, true, true), fx.Populate(&got), fx.NopLogger)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(got)
	for i := range v.NumField() {
		f, field := v.Field(i), v.Type().Field(i)
		if field.Name == "TracerProvider" {
			continue // only with OTEL_EXPORTER_OTLP_ENDPOINT
		}
		if field.Tag.Get("optional") == "true" && f.IsNil() {
			t.Errorf("the API graph lacks %s (%s): its constructor's dependencies are not all provided", field.Name, field.Type)
		}
	}
}

// The workers take some use cases as optional dependencies too, and the
// same silence applies: a billing worker whose graph lost the allocation
// use cases would meter a depleted tenant without ever releasing its nodes.
// Each worker's graph, as the command builds it, must give its module every
// optional dependency that process is meant to have (constructors run;
// nothing starts).
func TestWorkersBuildEveryUseCase(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	build := func(name string, opts fx.Option, target any) {
		t.Helper()
		if err := fx.New(opts, fx.Populate(target), fx.NopLogger).Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Constructors run: keys they make go to a temporary data directory.
	var billing workers.BillingParams
	build("worker billing", billingWorkerApp(testSettings(t, map[string]string{"GPUAAS_DATA_DIR": t.TempDir()}), logger), &billing)
	if billing.Releaser == nil && billing.AllocationService == nil {
		t.Error("worker billing: neither Releaser nor AllocationService: a depleted tenant's allocations would never be released")
	}
	var prov struct {
		fx.In
		Worker  workers.ProvisioningParams
		Sweeper workers.NodeSweeperParams
	}
	build("worker provisioning", provisioningWorkerApp(testSettings(t, map[string]string{"S3_BUCKET": "b", "S3_ENDPOINT": "http://127.0.0.1:9",
		"GPUAAS_DATA_DIR": t.TempDir()}), logger), &prov)
	if prov.Worker.Storage == nil {
		t.Error("worker provisioning with S3_BUCKET: no StorageActivities: storage_sync allocations could not sync")
	}
	if prov.Worker.Tx == nil {
		t.Error("worker provisioning: no TxRunner: provisioning would not take its one-transaction step")
	}
	if prov.Sweeper.Tasks == nil {
		t.Error("worker provisioning: the node sweeper has no TaskQueue: node tasks past their expiry would never expire")
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args     []string
		env      map[string]string
		code     int
		inStdout string
		inStderr string
	}{
		{args: []string{"version"}, code: 0, inStdout: "gpuaas "},
		{args: nil, code: 2, inStderr: "Usage:"},
		{args: []string{"launch", "rockets"}, code: 2, inStderr: "unknown command"},
		{args: []string{"serve", "api"}, code: 1, inStderr: "missing required environment: DATABASE_URL, OIDC_ISSUER_URL"},
		{args: []string{"worker", "outbox"}, code: 1, inStderr: "DATABASE_URL"},
		{args: []string{"worker", "notifications"}, code: 1, inStderr: "DATABASE_URL"},
		{args: []string{"version"}, env: map[string]string{"SMTP_PORT": "smtp"}, code: 2, inStderr: "SMTP_PORT"},
		{args: []string{"migrate"}, env: map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/x"}, code: 2, inStderr: "migrate needs"},
		{args: []string{"version"}, env: map[string]string{"GPUAAS_LOG_LEVEL": "loud"}, code: 2, inStderr: "GPUAAS_LOG_LEVEL"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		code := run(c.args, func(k string) string { return c.env[k] }, &out, &errOut)
		if code != c.code || !strings.Contains(out.String(), c.inStdout) || !strings.Contains(errOut.String(), c.inStderr) {
			t.Errorf("%v: code %d stdout %q stderr %q", c.args, code, out.String(), errOut.String())
		}
	}
}

// migrate up, status and down N against real Postgres.
func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	url := services.FreshDatabaseURL(t)
	env := func(k string) string {
		if k == "DATABASE_URL" {
			return url
		}
		return ""
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"migrate", "up"}, env, &out, &errOut); code != 0 || !strings.Contains(out.String(), "applied") {
		t.Fatalf("up: %d %s %s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"migrate", "status"}, env, &out, &errOut); code != 0 || !strings.Contains(out.String(), "0001") || !strings.Contains(out.String(), "true") {
		t.Fatalf("status: %d %s %s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"migrate", "down", "zero"}, env, &out, &errOut); code != 2 {
		t.Fatalf("down zero: %d", code)
	}
	if code := run([]string{"migrate", "down", "1"}, env, &out, &errOut); code != 0 || !strings.Contains(out.String(), "reverted 1") {
		t.Fatalf("down: %d %s %s", code, out.String(), errOut.String())
	}
}

// `gpuaas ca root` prints the root the CA keeps (the same on every call).
func TestCARootCommand(t *testing.T) {
	t.Parallel()
	url := services.FreshDatabaseURL(t)
	dir := t.TempDir()
	env := func(k string) string {
		return map[string]string{"DATABASE_URL": url, "GPUAAS_DATA_DIR": dir}[k]
	}
	var errOut bytes.Buffer
	if code := run([]string{"migrate", "up"}, env, io.Discard, &errOut); code != 0 {
		t.Fatalf("migrate: %s", errOut.String())
	}
	var first, second bytes.Buffer
	if code := run([]string{"ca", "root"}, env, &first, &errOut); code != 0 {
		t.Fatalf("ca root: %d %s", code, errOut.String())
	}
	if code := run([]string{"ca", "root"}, env, &second, &errOut); code != 0 {
		t.Fatalf("ca root again: %d %s", code, errOut.String())
	}
	if !strings.HasPrefix(first.String(), "-----BEGIN CERTIFICATE-----") || first.String() != second.String() {
		t.Fatalf("root: %q then %q", first.String(), second.String())
	}
}
