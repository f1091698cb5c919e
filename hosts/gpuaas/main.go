package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/hosts/cli"
	connecthost "github.com/gpuaas/gpuaas/hosts/connect"
	httphost "github.com/gpuaas/gpuaas/hosts/http"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

const usage = `gpuaas — GPU cloud control plane

Usage:
  gpuaas serve api            run the HTTP API (with an in-process outbox relay)
  gpuaas serve agent-gateway  run the node agents' Connect RPC gateway (mTLS)
  gpuaas serve rpc            run the internal Connect RPC services (service accounts)
  gpuaas serve terminal-gateway
                              run the browser terminal WebSocket gateway
  gpuaas worker provisioning  run the provisioning worker (Temporal) and node sweeper
  gpuaas worker billing       run usage metering and the billing accrual worker
  gpuaas worker notifications run the notifications worker (inbox, email, webhooks)
  gpuaas worker outbox        run the outbox relay alone
  gpuaas worker storage       run the project storage reconciler (S3_BUCKET)
  gpuaas lambda api|payments-webhook|billing-tick|outbox-drain
                              serve one Lambda function (AWS_LAMBDA_RUNTIME_API;
                              make lambda builds a bootstrap per function)
  gpuaas migrate up|down [N]|status
  gpuaas ca root              print the platform CA root (PEM) for node agents
  gpuaas dev                  run the whole platform on embedded defaults
  gpuaas dev down             stop a gpuaas dev and what a crashed one left running
                              (-data-dir, as for gpuaas dev)
  gpuaas version

Configuration comes from the environment; see README.md.

` + cli.Usage

func main() {
	args := os.Args[1:]
	if lambdaFunction != "" && len(args) == 0 {
		args = []string{"lambda", lambdaFunction} // a `make lambda` bootstrap, started by the Lambda runtime
	}
	os.Exit(run(args, os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	// The user commands (login, alloc, ssh, …) are a client of the API:
	// they read none of the server settings below (doc/cli.md).
	if cargs, ok := cli.Command(args); ok {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		e := cli.OSEnv()
		e.Stdout, e.Stderr, e.Getenv = stdout, stderr, getenv
		return cli.Run(ctx, cargs, e)
	}
	settings, err := readSettings(env(getenv))
	if err != nil {
		fmt.Fprintln(stderr, "gpuaas:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case args[0] == "version":
		fmt.Fprintln(stdout, "gpuaas", version)
		return 0
	case args[0] == "ca" && len(args) == 2 && args[1] == "root":
		err = caRoot(ctx, settings, stdout)
	case args[0] == "migrate":
		err = migrate(ctx, settings, args[1:], stdout)
	case args[0] == "serve" && len(args) == 2 && args[1] == "api":
		httphost.TuneGC(getenv)
		err = serveAPI(ctx, settings)
	case args[0] == "serve" && len(args) == 2 && args[1] == "agent-gateway":
		connecthost.TuneGC(getenv)
		err = serveAgentGateway(ctx, settings)
	case args[0] == "serve" && len(args) == 2 && args[1] == "rpc":
		err = serveRPC(ctx, settings)
	case args[0] == "serve" && len(args) == 2 && args[1] == "terminal-gateway":
		err = serveTerminalGateway(ctx, settings, getenv)
	case args[0] == "worker" && len(args) == 2 && args[1] == "provisioning":
		err = workerProvisioning(ctx, settings)
	case args[0] == "worker" && len(args) == 2 && args[1] == "billing":
		err = workerBilling(ctx, settings)
	case args[0] == "worker" && len(args) == 2 && args[1] == "notifications":
		err = workerNotifications(ctx, settings)
	case args[0] == "worker" && len(args) == 2 && args[1] == "outbox":
		err = workerOutbox(ctx, settings)
	case args[0] == "worker" && len(args) == 2 && args[1] == "storage":
		err = workerStorage(ctx, settings)
	case args[0] == "lambda" && len(args) == 2:
		err = runLambda(ctx, settings, getenv, args[1])
	case args[0] == "dev":
		httphost.TuneGC(getenv) // it serves the API too
		err = dev(ctx, settings, args[1:], getenv, stdout)
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "gpuaas: unknown command %q\n\n%s", strings.Join(args[:min(len(args), 2)], " "), usage)
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "gpuaas: %v\n\n%s", err, usage)
			return 2
		}
		fmt.Fprintln(stderr, "gpuaas:", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func migrate(ctx context.Context, s Settings, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError{"migrate needs up, down [N] or status"}
	}
	if err := s.require("DATABASE_URL"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// up and down verify the applied migrations themselves; status reports
	// a changed one instead of refusing.
	db, err := postgres.Open(ctx, postgres.Config{URL: s.DatabaseURL, SkipMigrationCheck: true})
	if err != nil {
		return err
	}
	defer db.Close()
	return runMigrate(ctx, db, args, out)
}

func runMigrate(ctx context.Context, db *postgres.DB, args []string, out io.Writer) error {
	switch args[0] {
	case "up":
		did, err := db.MigrateUp(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "applied %d migration(s) %v\n", len(did), did)
	case "down":
		fs := flag.NewFlagSet("down", flag.ContinueOnError)
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{err.Error()}
		}
		steps := 1
		if fs.NArg() > 0 {
			n, err := strconv.Atoi(fs.Arg(0))
			if err != nil || n < 1 {
				return usageError{"migrate down N: N must be a positive integer"}
			}
			steps = n
		}
		did, err := db.MigrateDown(ctx, steps)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "reverted %d migration(s) %v\n", len(did), did)
	case "status":
		st, err := db.MigrateStatus(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED\tCHANGED")
		changed := 0
		for _, m := range st {
			fmt.Fprintf(tw, "%04d\t%s\t%v\t%v\n", m.Version, m.Name, m.Applied, m.Changed)
			if m.Changed {
				changed++
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if changed > 0 {
			return fmt.Errorf("%d applied migration(s) changed since they were applied: %w", changed, postgres.ErrMigrationChanged)
		}
	default:
		return usageError{"migrate needs up, down [N] or status"}
	}
	return nil
}
