package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/devoidc"
	"github.com/gpuaas/gpuaas/adapters/nats"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/temporal"
	terminalhost "github.com/gpuaas/gpuaas/hosts/terminal"
)

// devOptions are the `gpuaas dev` flags.
type devOptions struct {
	dataDir   string
	httpAddr  string
	oidcAddr  string
	agentAddr string
	pgPort    int
	nodes     int
	nodeSKU   string
	sshPort   int
}

// dev runs the whole platform in one process on embedded defaults. Each
// default is replaced when its variable is set (DATABASE_URL, NATS_URL,
// REDIS_URL, OIDC_ISSUER_URL), exactly as in production.
func dev(ctx context.Context, s Settings, args []string, getenv func(string) string, out io.Writer) error {
	if len(args) > 0 && args[0] == "down" {
		return devDown(ctx, args[1:], getenv, out)
	}
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(out)
	var o devOptions
	fs.StringVar(&o.dataDir, "data-dir", devDataDir(getenv), "where the dev cluster and JetStream keep their files")
	fs.StringVar(&o.httpAddr, "http-addr", envOr(getenv, "GPUAAS_HTTP_ADDR", "127.0.0.1:8080"), "API listen address")
	fs.StringVar(&o.oidcAddr, "oidc-addr", envOr(getenv, "GPUAAS_DEV_OIDC_ADDR", "127.0.0.1:8081"), "dev OIDC provider listen address (loopback only)")
	fs.IntVar(&o.pgPort, "pg-port", 54329, "port of the private PostgreSQL cluster on 127.0.0.1")
	fs.StringVar(&o.agentAddr, "agent-addr", "127.0.0.1:8444", "agent gateway (Connect RPC, mTLS) listen address")
	fs.IntVar(&o.nodes, "nodes", 2, "sandbox nodes to run (real agents with an embedded SSH server)")
	fs.StringVar(&o.nodeSKU, "node-sku", "h100-80g-x1", "SKU of the sandbox nodes")
	fs.IntVar(&o.sshPort, "node-ssh-port", 22201, "SSH port of sandbox node 1 on 127.0.0.1 (node i uses port+i-1)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	r, err := startDev(ctx, s, o, getenv, out)
	if err != nil {
		return err
	}
	printBanner(out, r.settings, r.parts, r.users)
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping…")
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.stop(stopCtx)
}

// devRun is a started `gpuaas dev`: the settings it ended up with, the
// running app, and the embedded services to stop after it.
type devRun struct {
	settings Settings
	app      *fx.App
	parts    [][2]string // what runs where, for the banner
	users    []devoidc.DemoUser
	stops    []func()
}

// stop stops the app, then the embedded services in reverse order of start.
func (r *devRun) stop(ctx context.Context) error {
	err := r.app.Stop(ctx)
	r.stopServices()
	return err
}

func (r *devRun) stopServices() {
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
	r.stops = nil
}

// startDev brings the platform up the way `gpuaas dev` does: Postgres
// (DATABASE_URL, else a private cluster) migrated, NATS, the dev OIDC
// provider, the Temporal dev server, then the fx app with everything in it
// (extra options are added to the app: tests take values from the graph).
// On error everything started is stopped again.
func startDev(ctx context.Context, s Settings, o devOptions, getenv func(string) string, out io.Writer, extra ...fx.Option) (_ *devRun, err error) {
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return nil, err
	}
	// One gpuaas dev per data dir. The lock also makes whatever still runs
	// from the data dir (a cluster, a dev server) a leftover of a run that
	// crashed, which the adapters then stop instead of failing on it.
	lock, err := lockDevDir(o.dataDir)
	if err != nil {
		return nil, err
	}
	logger := newLogger(s)
	s.HTTPAddr = o.httpAddr
	s.AgentAddr = o.agentAddr
	s.AllowSimGPUs = true // the sandbox nodes' GPUs are simulated
	if getenv("GPUAAS_METRICS_ADDR") == "" {
		s.MetricsAddr = "" // one process: the API listener serves /metrics
	}
	if getenv("GPUAAS_WEBHOOKS_ALLOW_PRIVATE") == "" {
		s.WebhooksAllowPrivate = true // webhook receivers in dev are local
	}
	if getenv("GPUAAS_DATA_DIR") == "" {
		s.DataDir = o.dataDir
		s.KMSKeyFile = filepath.Join(o.dataDir, "kms.key")
		s.SigningKeyFile = filepath.Join(o.dataDir, "task-signing-key.pem")
	}
	if getenv("GPUAAS_PUBLIC_URL") == "" {
		s.PublicURL = "http://" + browserHost(o.httpAddr)
		s.RedirectURIs = []string{s.PublicURL + "/auth/callback"}
		// Browsers and scripts reach a loopback API as localhost or 127.0.0.1.
		if _, port, err := net.SplitHostPort(o.httpAddr); err == nil {
			for _, h := range []string{"localhost", "127.0.0.1"} {
				if u := "http://" + net.JoinHostPort(h, port) + "/auth/callback"; u != s.RedirectURIs[0] {
					s.RedirectURIs = append(s.RedirectURIs, u)
				}
			}
		}
	}
	if getenv("GPUAAS_TERMINAL_ORIGINS") == "" {
		s.TerminalOrigins = []string{s.PublicURL}
		if _, port, err := net.SplitHostPort(o.httpAddr); err == nil {
			for _, h := range []string{"localhost", "127.0.0.1"} {
				if u := "http://" + net.JoinHostPort(h, port); u != s.PublicURL {
					s.TerminalOrigins = append(s.TerminalOrigins, u)
				}
			}
		}
	}
	if getenv("GPUAAS_INSECURE_COOKIES") == "" {
		s.InsecureCookie = strings.HasPrefix(s.PublicURL, "http://")
	}
	r := &devRun{parts: [][2]string{}, stops: []func(){func() { _ = lock.Unlock() }}}
	defer func() {
		if err != nil {
			r.stopServices()
		}
	}()

	// Postgres: DATABASE_URL, else a private cluster from local binaries.
	if s.DatabaseURL == "" {
		fmt.Fprintln(out, "starting a private PostgreSQL cluster in", filepath.Join(o.dataDir, "postgres"), "…")
		startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cl, err := postgres.StartCluster(startCtx, postgres.ClusterConfig{Dir: filepath.Join(o.dataDir, "postgres"), Port: o.pgPort})
		cancel()
		if errors.Is(err, postgres.ErrPortTaken) {
			return nil, fmt.Errorf("%w\n(pass -pg-port to use another port, or set DATABASE_URL to use an existing PostgreSQL)", err)
		}
		if err != nil {
			return nil, fmt.Errorf("%w\n(or set DATABASE_URL to use an existing PostgreSQL)", err)
		}
		r.stops = append(r.stops, func() { _ = cl.Stop() })
		if pid := cl.StoppedLeftover(); pid != 0 {
			fmt.Fprintf(out, "stopped the PostgreSQL server (pid %d) an earlier gpuaas dev left running\n", pid)
		}
		s.DatabaseURL = cl.URL()
		r.parts = append(r.parts, [2]string{"postgres", "private cluster 127.0.0.1:" + fmt.Sprint(o.pgPort)})
	} else {
		r.parts = append(r.parts, [2]string{"postgres", "DATABASE_URL"})
	}
	migCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	db, err := postgres.Open(migCtx, postgres.Config{URL: s.DatabaseURL, Migrate: true})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	// The dev identity provider asks the database whom it should expect
	// (people an operator created or a tenant invited); the pool lives as
	// long as the run.
	r.stops = append(r.stops, db.Close)

	// NATS: NATS_URL, else embedded with JetStream.
	if getenv("NATS_URL") == "" {
		ns, err := nats.StartEmbedded(nats.EmbeddedConfig{StoreDir: filepath.Join(o.dataDir, "jetstream")})
		if err != nil {
			return nil, err
		}
		r.stops = append(r.stops, ns.Shutdown)
		s.NATSURL = ns.ClientURL()
		r.parts = append(r.parts, [2]string{"nats", "embedded " + ns.ClientURL()})
	} else {
		r.parts = append(r.parts, [2]string{"nats", "NATS_URL"})
	}

	// Redis: REDIS_URL, else in-process (single replica).
	if s.RedisURL == "" {
		r.parts = append(r.parts, [2]string{"tokens, rate limits", "in-process"})
	} else {
		r.parts = append(r.parts, [2]string{"tokens, rate limits", "REDIS_URL"})
	}

	// Identity: OIDC_ISSUER_URL, else the built-in dev provider.
	if s.OIDCIssuer == "" {
		// The signing key and the sessions live in the data dir, so a restart
		// (or a crash) of gpuaas dev signs nobody out.
		key, err := devoidc.LoadOrCreateKey(filepath.Join(o.dataDir, "oidc-signing-key.pem"))
		if err != nil {
			return nil, err
		}
		srv, err := devoidc.Serve(devoidc.Config{
			ClientID:     s.OIDCClientID,
			RedirectURIs: s.RedirectURIs,
			// The CLI's `gpuaas login` signs in through a loopback redirect.
			AllowLoopbackRedirects: s.LoopbackRedirects,
			SigningKey:             key,
			StateFile:              filepath.Join(o.dataDir, "oidc-sessions.json"),
			// People sign in with their email and the password they choose
			// the first time (kept bcrypt-hashed in the data dir).
			Directory:  postgres.NewAdminStore(db),
			PeopleFile: filepath.Join(o.dataDir, "oidc-people.json"),
		}, o.oidcAddr)
		if err != nil {
			return nil, err
		}
		r.stops = append(r.stops, func() {
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(c)
		})
		s.OIDCIssuer = srv.Issuer()
		s.OIDCAudience = s.OIDCClientID
		r.users = srv.Provider.Users()
		r.parts = append(r.parts, [2]string{"identity", "dev OIDC provider " + srv.Issuer()})
	} else {
		r.parts = append(r.parts, [2]string{"identity", s.OIDCIssuer})
	}

	// Temporal: TEMPORAL_ADDRESS, else the CLI's dev server as a child process.
	if getenv("TEMPORAL_ADDRESS") == "" {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		ts, err := temporal.StartDevServer(tctx, filepath.Join(o.dataDir, "temporal"))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%w\n(build the Temporal CLI with `make tools`, or set TEMPORAL_ADDRESS)", err)
		}
		r.stops = append(r.stops, func() {
			c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_ = ts.Stop(c)
		})
		if pid := ts.StoppedLeftover(); pid != 0 {
			fmt.Fprintf(out, "stopped the Temporal dev server (pid %d) an earlier gpuaas dev left running\n", pid)
		}
		s.TemporalAddress = ts.HostPort()
		desc := "dev server " + ts.HostPort()
		if ui := ts.UIURL(); ui != "" {
			desc += " (UI " + ui + ")"
		}
		r.parts = append(r.parts, [2]string{"temporal", desc})
	} else {
		r.parts = append(r.parts, [2]string{"temporal", "TEMPORAL_ADDRESS"})
	}

	// Objects: S3_ENDPOINT / S3_BUCKET, else versitygw as a child process.
	objects, stopObjects, err := startDevObjects(ctx, &s, o.dataDir, getenv, out)
	if err != nil {
		return nil, err
	}
	if stopObjects != nil {
		r.stops = append(r.stops, stopObjects)
	}
	r.parts = append(r.parts, objects)

	// Mail: SMTP_HOST, else mailpit as a child process (its web inbox shows
	// every notification email).
	mail, stopMail, err := startDevMail(ctx, &s, o.dataDir, getenv)
	if err != nil {
		return nil, err
	}
	if stopMail != nil {
		r.stops = append(r.stops, stopMail)
	}
	r.parts = append(r.parts, mail)

	// The dev nodes make their SSH host keys at first start and their agents
	// report them in every heartbeat; the gateway trusts exactly those, as
	// in production (GPUAAS_TERMINAL_HOST_CA and
	// GPUAAS_TERMINAL_INSECURE_HOST_KEYS=1 still override).
	termCfg, err := terminalGatewayConfig(s, getenv, "127.0.0.1:0", logger)
	if err != nil {
		return nil, err
	}
	app := fx.New(devAppOptions(s, o, termCfg, logger), fx.Options(extra...))
	r.parts = append(r.parts,
		[2]string{"agent gateway", "https://" + o.agentAddr + " (mTLS)"},
		[2]string{"sandbox nodes", fmt.Sprintf("%d × %s, SSH on 127.0.0.1:%d…", o.nodes, o.nodeSKU, o.sshPort)},
		[2]string{"payments", "dev checkout " + s.PublicURL + "/dev-pay/"},
		// In dev the terminal gateway is mounted on the API listener, not on
		// GPUAAS_TERMINAL_ADDR (:8082) as `serve terminal-gateway` is.
		[2]string{"terminal", "ws://" + browserHost(o.httpAddr) + "/ws/terminal/{allocation_id} (on the API listener)"})
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = app.Start(startCtx)
	cancel()
	if err != nil {
		return nil, err
	}
	r.settings, r.app = s, app
	return r, nil
}

// devAppOptions are everything `gpuaas dev` runs in its one process.
func devAppOptions(s Settings, o devOptions, termCfg terminalhost.Config, logger *slog.Logger) fx.Option {
	return fx.Options(
		apiOptions(s, logger, true, true),
		agentGatewayOptions(s),
		provisioningOptions(s),
		billingOptions(),
		notificationWorkerOptions(s),
		storageReconcilerOptions(s),
		terminalMountOptions(termCfg),
		sandboxNodesOptions(sandboxNodesConfig{Count: o.nodes, SKU: o.nodeSKU, Dir: filepath.Join(o.dataDir, "nodes"),
			FirstPort: o.sshPort, AgentURL: "https://" + o.agentAddr}),
	)
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// browserHost turns a listen address into one a browser can open.
func browserHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func printBanner(out io.Writer, s Settings, parts [][2]string, users []devoidc.DemoUser) {
	api := "http://" + browserHost(s.HTTPAddr)
	fmt.Fprintf(out, "\nGPUaaS %s is up: %s\n\n", version, api)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, p := range parts {
		fmt.Fprintf(tw, "  %s\t%s\n", p[0], p[1])
	}
	tw.Flush()
	if len(users) > 0 {
		fmt.Fprintln(out, "\nDemo users (password = username):")
		for _, u := range users {
			role := "user"
			for _, r := range u.Roles {
				if r == "admin" {
					role = "platform admin"
				}
			}
			fmt.Fprintf(out, "  %-8s %-22s %s\n", u.Username, u.Email, role)
		}
	}
	fmt.Fprintf(out, `
Try:
  curl -s %[1]s/api/v1/healthz
  TOKEN=$(go run ./scripts/pkce-login -api %[1]s -user alice -password alice)
  curl -s -H "Authorization: Bearer $TOKEN" %[1]s/api/v1/users/me
  curl -s -H "Authorization: Bearer $TOKEN" %[1]s/api/v1/projects
  go run ./scripts/golden-path -api %[1]s    # allocation → ssh + browser terminal → release
  go run ./scripts/money-path -api %[1]s     # credit → per-second debits → depletion → 402

Ctrl-C stops everything.
`, api)
}
