package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/core/event/relay"
	lambdahost "github.com/gpuaas/gpuaas/hosts/lambda"
)

// lambdaFunction is set at build time by `make lambda` (-ldflags "-X
// main.lambdaFunction=api"): a bootstrap binary started without arguments
// — as the Lambda runtime starts it — runs that function.
var lambdaFunction = ""

// lambdaSettings adjust the settings for a function's sandbox: no admin
// listener (nothing scrapes a frozen process), the API's own listener on
// an ephemeral loopback port (the adapter calls its handler directly), and
// local state under /tmp, the one writable place, unless GPUAAS_DATA_DIR
// says otherwise. Key files there are generated per sandbox, so a function
// that opens sealed secrets (the API) needs AWS_KMS_KEY_ID or a key file
// shipped with it (GPUAAS_KMS_KEY_FILE).
func lambdaSettings(s Settings, getenv func(string) string) Settings {
	s.MetricsAddr = ""
	s.HTTPAddr = "127.0.0.1:0"
	if getenv("GPUAAS_DATA_DIR") == "" {
		s.DataDir = "/tmp/gpuaas"
		if getenv("GPUAAS_KMS_KEY_FILE") == "" {
			s.KMSKeyFile = filepath.Join(s.DataDir, "kms.key")
		}
		if getenv("GPUAAS_TASK_SIGNING_KEY_FILE") == "" {
			s.SigningKeyFile = filepath.Join(s.DataDir, "task-signing-key.pem")
		}
	}
	return s
}

// lambdaOptions wire one function: the options of the process that runs the
// same use case in a loop or behind a listener, with the function's
// handler module instead.
func lambdaOptions(s Settings, logger *slog.Logger, fn string) (fx.Option, error) {
	switch fn {
	case lambdahost.FunctionAPI:
		return fx.Options(apiOptions(s, logger, false, false), lambdahost.APIModule), nil
	case lambdahost.FunctionWebhook:
		return fx.Options(baseOptions(s, logger), computeOptions(s), paymentOptions(s, false), lambdahost.WebhookModule), nil
	case lambdahost.FunctionBillingTick:
		return fx.Options(baseOptions(s, logger), computeOptions(s), lambdahost.BillingTickModule), nil
	case lambdahost.FunctionOutboxDrain:
		// The relay's config without its loop (relayOptions would start one).
		return fx.Options(baseOptions(s, logger), fx.Supply(relay.Config{}), lambdahost.OutboxDrainModule), nil
	}
	return nil, usageError{fmt.Sprintf("lambda: unknown function %q (one of %s)", fn, strings.Join(lambdahost.Functions, ", "))}
}

// lambdaRequirements are the settings each function cannot do without.
func lambdaRequirements(fn string) []string {
	switch fn {
	case lambdahost.FunctionAPI:
		return []string{"DATABASE_URL", "OIDC_ISSUER_URL"}
	default:
		return []string{"DATABASE_URL"}
	}
}

// newLambdaHandler builds and starts the function's app and returns its
// handler (for lambda.Start, or a test's Invoke) and the app to stop.
func newLambdaHandler(ctx context.Context, s Settings, getenv func(string) string, logger *slog.Logger, fn string, extra ...fx.Option) (lambda.Handler, *fx.App, error) {
	if !slices.Contains(lambdahost.Functions, fn) {
		_, err := lambdaOptions(s, logger, fn)
		return nil, nil, err
	}
	if err := s.require(lambdaRequirements(fn)...); err != nil {
		return nil, nil, err
	}
	if fn == lambdahost.FunctionWebhook && s.StripeSecretKey == "" {
		return nil, nil, fmt.Errorf("lambda %s: STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRETS are required", fn)
	}
	opts, err := lambdaOptions(lambdaSettings(s, getenv), logger, fn)
	if err != nil {
		return nil, nil, err
	}
	var (
		api     *lambdahost.API
		webhook *lambdahost.Webhook
		tick    *lambdahost.BillingTick
		drain   *lambdahost.OutboxDrain
		handler any
	)
	switch fn {
	case lambdahost.FunctionAPI:
		opts = fx.Options(opts, fx.Populate(&api))
	case lambdahost.FunctionWebhook:
		opts = fx.Options(opts, fx.Populate(&webhook))
	case lambdahost.FunctionBillingTick:
		opts = fx.Options(opts, fx.Populate(&tick))
	case lambdahost.FunctionOutboxDrain:
		opts = fx.Options(opts, fx.Populate(&drain))
	}
	app := fx.New(opts, fx.Options(extra...))
	if err := app.Start(ctx); err != nil {
		return nil, nil, err
	}
	switch fn {
	case lambdahost.FunctionAPI:
		handler = api.Handle
	case lambdahost.FunctionWebhook:
		handler = webhook.Handle
	case lambdahost.FunctionBillingTick:
		handler = tick.Handle
	case lambdahost.FunctionOutboxDrain:
		handler = drain.Handle
	}
	return lambda.NewHandler(handler), app, nil
}

// runLambda is `gpuaas lambda <function>`: it serves the Lambda runtime API
// ($AWS_LAMBDA_RUNTIME_API) until the sandbox is shut down.
func runLambda(ctx context.Context, s Settings, getenv func(string) string, fn string) error {
	logger := newLogger(s).With("lambda_function", fn)
	h, app, err := newLambdaHandler(ctx, s, getenv, logger, fn)
	if err != nil {
		return err
	}
	defer func() { _ = app.Stop(context.WithoutCancel(ctx)) }()
	lambda.StartWithOptions(h, lambda.WithContext(ctx))
	return nil
}
