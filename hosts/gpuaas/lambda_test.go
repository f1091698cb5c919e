package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stripe/stripe-go/v76/webhook"
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/nats"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/event"
	lambdahost "github.com/gpuaas/gpuaas/hosts/lambda"
	"github.com/gpuaas/gpuaas/testkit/seed"
	"github.com/gpuaas/gpuaas/testkit/services"
)

const lambdaWebhookSecret = "whsec_lambda_test"

// lambdaEnv is a migrated database of its own and an embedded JetStream
// server: the services a function reaches.
type lambdaEnv struct {
	db       *postgres.DB
	settings Settings
	natsURL  string
}

func newLambdaEnv(t *testing.T) lambdaEnv {
	t.Helper()
	db := services.Postgres(t)
	ns, err := nats.StartEmbedded(nats.EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	vars := map[string]string{
		"DATABASE_URL": db.Pool.Config().ConnString(), "NATS_URL": ns.ClientURL(),
		"OIDC_ISSUER_URL": "http://127.0.0.1:1/issuer", "GPUAAS_DATA_DIR": t.TempDir(),
		"STRIPE_SECRET_KEY": "sk_test_webhook_only", "STRIPE_WEBHOOK_SECRETS": lambdaWebhookSecret,
		"GPUAAS_LOG_LEVEL": "error",
	}
	s, err := readSettings(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return lambdaEnv{db: db, settings: s, natsURL: ns.ClientURL()}
}

// invoke starts the function's app as its bootstrap would and hands it the
// payload through aws-lambda-go's own decoding.
func (e lambdaEnv) invoker(t *testing.T, fn string) func(payload []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vars := map[string]string{"GPUAAS_DATA_DIR": e.settings.DataDir}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, app, err := newLambdaHandler(ctx, e.settings, func(k string) string { return vars[k] }, logger, fn, fx.NopLogger)
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	return func(payload []byte) []byte {
		t.Helper()
		ictx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := h.Invoke(ictx, payload)
		if err != nil {
			t.Fatalf("%s: invoke: %v", fn, err)
		}
		return out
	}
}

func recordedEvent(t *testing.T, name string, replace map[string]string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "lambda", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range replace {
		s = strings.ReplaceAll(s, k, v)
	}
	return []byte(s)
}

type httpAnswer struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	Base64     bool              `json:"isBase64Encoded"`
}

func decodeAnswer(t *testing.T, out []byte) (httpAnswer, string) {
	t.Helper()
	var a httpAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("answer %s: %v", out, err)
	}
	body := a.Body
	if a.Base64 {
		b, err := base64.StdEncoding.DecodeString(a.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
	}
	return a, body
}

// The whole API behind API Gateway (payload 2.0) and a function URL: the
// health check reports the real database and bus; an unauthenticated call
// gets the HTTP host's own 401 body.
func TestLambdaAPI(t *testing.T) {
	t.Parallel()
	e := newLambdaEnv(t)
	invoke := e.invoker(t, lambdahost.FunctionAPI)

	a, body := decodeAnswer(t, invoke(recordedEvent(t, "apigw-v2-get-healthz.json", nil)))
	if a.StatusCode != 200 || !strings.Contains(body, `"postgres":"ok"`) || !strings.Contains(body, `"nats":"ok"`) {
		t.Fatalf("healthz: %d %s", a.StatusCode, body)
	}
	if a.Headers["X-Correlation-Id"] == "" && a.Headers["X-Correlation-ID"] == "" {
		t.Fatalf("healthz answered without the host's headers: %v", a.Headers)
	}
	a, body = decodeAnswer(t, invoke(recordedEvent(t, "function-url-get-users-me.json", nil)))
	if a.StatusCode != 401 || !strings.Contains(body, `"code":"token_missing"`) {
		t.Fatalf("me without a token: %d %s", a.StatusCode, body)
	}
}

// The payment webhook alone: a signed checkout.session.completed credits
// the session once (the redelivery is a duplicate), a bad signature is the
// HTTP host's 400.
func TestLambdaPaymentsWebhook(t *testing.T) {
	t.Parallel()
	e := newLambdaEnv(t)
	invoke := e.invoker(t, lambdahost.FunctionWebhook)
	ctx := context.Background()

	m := seed.NewMember(t, e.db, 0)
	ref := "cs_lambda_" + services.RandomSuffix(6)
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO payment_sessions (id, tenant_id, user_id, amount_minor, currency, provider,
		provider_ref, status, idempotency_key) VALUES ($1, $2, $3, 2500, 'usd', 'stripe', $4, 'initiated', 'k-lambda')`,
		system.UUIDs{}.NewID(), m.Principal.TenantID, m.Principal.User.ID, ref); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"id": "evt_lambda_" + services.RandomSuffix(6), "object": "event", "type": "checkout.session.completed",
		"api_version": "2023-10-16", "created": time.Now().Unix(),
		"data": map[string]any{"object": map[string]any{"id": ref, "object": "checkout.session", "mode": "payment",
			"amount_total": 2500, "currency": "usd", "payment_status": "paid"}},
	})
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: lambdaWebhookSecret, Timestamp: time.Now()}).Header
	ev := recordedEvent(t, "function-url-post-webhook.json", map[string]string{
		"{{SIGNATURE}}": sig, "{{BODY_BASE64}}": base64.StdEncoding.EncodeToString(body)})

	for i, want := range []string{`"outcome":"credited"`, `"outcome":"duplicate"`} {
		a, got := decodeAnswer(t, invoke(ev))
		if a.StatusCode != 200 || !strings.Contains(got, want) {
			t.Fatalf("delivery %d: %d %s; want %s", i+1, a.StatusCode, got, want)
		}
	}
	var balance int64
	if err := e.db.Pool.QueryRow(ctx, `SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE tenant_id = $1`,
		m.Principal.TenantID).Scan(&balance); err != nil {
		t.Fatal(err)
	}
	if balance != 2500 {
		t.Fatalf("balance %d after two deliveries; want 2500 credited once", balance)
	}

	forged := bytes.Replace(ev, []byte(sig), []byte("t=1,v1=00"), 1)
	a, got := decodeAnswer(t, invoke(forged))
	if a.StatusCode != 400 || !strings.Contains(got, "webhook_signature_invalid") {
		t.Fatalf("forged: %d %s", a.StatusCode, got)
	}
}

// One billing cycle per scheduled event: an allocation active for an hour
// is debited once; the next tick in the same window debits nothing.
func TestLambdaBillingTick(t *testing.T) {
	t.Parallel()
	e := newLambdaEnv(t)
	invoke := e.invoker(t, lambdahost.FunctionBillingTick)
	ctx := context.Background()

	m := seed.NewMember(t, e.db, 100000)
	ids := system.UUIDs{}
	alloc := ids.NewID()
	started := time.Now().Add(-time.Hour).UTC().Truncate(time.Minute)
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO allocations (id, tenant_id, project_id, user_id, sku_id, state, price_minor, currency, active_at)
		VALUES ($1, $2, $3, $4, 'h100-80g-x1', 'active', 300, 'usd', $5)`,
		alloc, m.Principal.TenantID, m.ProjectID, m.Principal.User.ID, started); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO usage_records (id, tenant_id, project_id, user_id, allocation_id,
		hourly_price_minor, currency, started_at, billed_through) VALUES ($1, $2, $3, $4, $5, 300, 'usd', $6, $6)`,
		ids.NewID(), m.Principal.TenantID, m.ProjectID, m.Principal.User.ID, alloc, started); err != nil {
		t.Fatal(err)
	}
	tick := recordedEvent(t, "eventbridge-scheduled.json", nil)
	var res lambdahost.TickResult
	if err := json.Unmarshal(invoke(tick), &res); err != nil {
		t.Fatal(err)
	}
	if res.Tenants != 1 || res.WindowEnd.IsZero() {
		t.Fatalf("first tick: %+v; want one tenant debited", res)
	}
	var debited int64
	if err := e.db.Pool.QueryRow(ctx, `SELECT coalesce(sum(billed_minor), 0) FROM usage_records WHERE allocation_id = $1`, alloc).Scan(&debited); err != nil {
		t.Fatal(err)
	}
	if debited < 290 || debited > 310 {
		t.Fatalf("billed %d minor for an hour at 300/h", debited)
	}
	if err := json.Unmarshal(invoke(tick), &res); err != nil {
		t.Fatal(err)
	}
	var again int64
	if err := e.db.Pool.QueryRow(ctx, `SELECT billed_minor FROM usage_records WHERE allocation_id = $1`, alloc).Scan(&again); err != nil {
		t.Fatal(err)
	}
	if again-debited > 10 { // at most the seconds between the two ticks, if a window boundary fell between them
		t.Fatalf("second tick billed %d more", again-debited)
	}
}

// The relay as a one-shot: 2,500 events appended in a transaction are all
// in JetStream after one invocation and the outbox is empty.
func TestLambdaOutboxDrain(t *testing.T) {
	t.Parallel()
	e := newLambdaEnv(t)
	ctx := context.Background()
	ob, err := postgres.NewOutbox(e.db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	const n = 2500
	evs := make([]event.Envelope, n)
	for i := range evs {
		evs[i] = event.Envelope{ID: system.UUIDs{}.NewID(), Type: event.UserSignedUp, Version: 1, OccurredAt: time.Now().UTC(),
			AggregateType: "user", AggregateID: "u", Payload: json.RawMessage(`{}`)}
	}
	if err := e.db.InTx(ctx, func(ctx context.Context) error { return ob.Append(ctx, evs...) }); err != nil {
		t.Fatal(err)
	}
	invoke := e.invoker(t, lambdahost.FunctionOutboxDrain)
	var res lambdahost.DrainResult
	if err := json.Unmarshal(invoke(recordedEvent(t, "eventbridge-scheduled.json", nil)), &res); err != nil {
		t.Fatal(err)
	}
	if res.Claimed != n {
		t.Fatalf("drain: %+v; want %d claimed", res, n)
	}
	var left int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM platform_outbox_events`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows left in the outbox (%v)", left, err)
	}
	nc, err := natsgo.Connect(e.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	info, err := js.StreamInfo("IDENTITY")
	if err != nil || info.State.Msgs != n {
		t.Fatalf("stream IDENTITY: %+v %v; want %d messages", info, err, n)
	}
}

func TestLambdaFunctionsValidate(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := testSettings(t, map[string]string{"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRETS": "whsec_x"})
	for _, fn := range lambdahost.Functions {
		opts, err := lambdaOptions(lambdaSettings(s, func(string) string { return "" }), logger, fn)
		if err != nil {
			t.Fatal(err)
		}
		if err := fx.ValidateApp(opts); err != nil {
			t.Errorf("%s: %v", fn, err)
		}
	}
	if _, err := lambdaOptions(s, logger, "nope"); err == nil {
		t.Fatal("an unknown function was accepted")
	}
}
