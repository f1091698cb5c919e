package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/adapters/awskms"
	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/netprobe"
	"github.com/gpuaas/gpuaas/adapters/pki"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/core/nodetask/tasksvc"
	connecthost "github.com/gpuaas/gpuaas/hosts/connect"
	httphost "github.com/gpuaas/gpuaas/hosts/http"
	terminalhost "github.com/gpuaas/gpuaas/hosts/terminal"
	"github.com/gpuaas/gpuaas/hosts/workers"
	"github.com/gpuaas/gpuaas/ports"
)

// securityOptions wire the encryption envelope's KMS (AWS KMS when
// AWS_KMS_KEY_ID is set, else a local key file), the task signer, the
// built-in CA and SSH user CA, and their Postgres stores.
func securityOptions(s Settings) fx.Option {
	kms := fx.Options(fx.Supply(keyfile.KMSConfig{Path: s.KMSKeyFile}), keyfile.KMSModule)
	if s.AWSKMSKeyID != "" {
		kms = fx.Options(fx.Supply(awskms.Config{KeyID: s.AWSKMSKeyID, Region: s.AWSRegion}), awskms.Module)
	}
	return fx.Options(
		fx.Invoke(func() error { return os.MkdirAll(s.DataDir, 0o700) }),
		kms,
		fx.Supply(keyfile.SignerConfig{Path: s.SigningKeyFile}),
		keyfile.SignerModule,
		postgres.SecurityModule,
		fx.Supply(pki.Config{}),
		pki.Module,
	)
}

// computeParams are what the compute use cases take from the graph.
type computeParams struct {
	fx.In
	Tx          ports.TxRunner
	SKUs        ports.SKUStore
	Nodes       ports.NodeStore
	Allocations ports.AllocationStore
	SSHKeys     ports.SSHKeyStore
	Ledger      ports.LedgerStore
	Bootstrap   ports.BootstrapTokenStore
	Certs       ports.NodeCertificateStore
	Prober      ports.NodeProber
	Policies    ports.PolicyStore
	Audit       ports.AuditLog
	Outbox      ports.Outbox
	Clock       ports.Clock
	IDs         ports.IDs
}

func newInventoryService(p computeParams) (*inventorysvc.Service, error) {
	return inventorysvc.New(inventorysvc.Config{}, inventorysvc.Deps{Tx: p.Tx, SKUs: p.SKUs, Nodes: p.Nodes,
		Allocations: p.Allocations, Bootstrap: p.Bootstrap, Certs: p.Certs, Prober: p.Prober, Audit: p.Audit,
		Clock: p.Clock, IDs: p.IDs})
}

func newAllocationService(p computeParams) (*allocationsvc.Service, error) {
	// The Postgres allocation store also reads API keys' spend (their daily caps).
	spend, _ := p.Allocations.(ports.KeySpendReader)
	return allocationsvc.New(allocationsvc.Deps{Tx: p.Tx, Allocations: p.Allocations, SKUs: p.SKUs, Nodes: p.Nodes,
		SSHKeys: p.SSHKeys, Ledger: p.Ledger, Policies: p.Policies, Audit: p.Audit, Outbox: p.Outbox,
		Clock: p.Clock, IDs: p.IDs, Spend: spend})
}

func newTaskService(tasks ports.TaskQueue, signer ports.Signer, clock ports.Clock, ids ports.IDs) (*tasksvc.Service, error) {
	return tasksvc.New(tasksvc.Config{}, tasksvc.Deps{Tasks: tasks, Signer: signer, Clock: clock, IDs: ids})
}

// computeOptions wire the compute path's stores and use cases shared by the
// API and the workers.
func computeOptions(s Settings) fx.Option {
	return fx.Options(
		securityOptions(s),
		postgres.ComputeModule,
		postgres.TasksModule,
		postgres.BillingModule,
		netprobe.Module,
		fx.Provide(newInventoryService, newAllocationService, newTaskService, newLedgerService),
		computeTelemetryOptions(),
	)
}

// agentGatewayOptions run the Connect RPC host for node agents. Its server
// certificate and client roots come from the built-in CA, which is ready only
// once the database is (at start), so the server is built in OnStart.
func agentGatewayOptions(s Settings) fx.Option {
	type params struct {
		fx.In
		CA        *pki.CA
		Tx        ports.TxRunner
		Tokens    ports.BootstrapTokenStore
		Certs     ports.NodeCertificateStore
		Nodes     ports.NodeStore
		Tasks     ports.TaskQueue
		Signer    ports.Signer
		Audit     ports.AuditLog
		Clock     ports.Clock
		IDs       ports.IDs
		Logger    *slog.Logger
		Lifecycle fx.Lifecycle
		Registry  *prometheus.Registry
		Trace     tracerIn
	}
	return fx.Invoke(func(p params) {
		var srv *connecthost.Server
		p.Lifecycle.Append(fx.Hook{
			OnStart: func(ctx context.Context) error {
				if err := p.CA.Init(ctx); err != nil {
					return err
				}
				// The server certificate renews itself at two thirds of its
				// lifetime, so a long-running gateway never serves an
				// expired one.
				tlsCfg, err := p.CA.ServerTLSConfig(ctx, s.AgentHosts)
				if err != nil {
					return err
				}
				rootsPEM, err := p.CA.RootPEM(ctx)
				if err != nil {
					return err
				}
				srv, _, err = connecthost.NewFromParams(connecthost.Params{
					Config: connecthost.Config{Addr: s.AgentAddr, GetCertificate: tlsCfg.GetCertificate, ClientCAs: tlsCfg.ClientCAs,
						TrustDomain: p.CA.TrustDomain(), Clock: p.Clock, Logger: p.Logger.With("component", "agent-gateway"),
						Telemetry: connecthost.Telemetry{Tracer: p.Trace.Tracer, Metrics: p.Registry}},
					AgentsCfg: agentsvc.Config{RootsPEM: rootsPEM, AllowSimulatedGPUs: s.AllowSimGPUs},
					Tx:        p.Tx, Tokens: p.Tokens, CA: p.CA, Certs: p.Certs, Nodes: p.Nodes, Tasks: p.Tasks,
					Signer: p.Signer, Audit: p.Audit, Clock: p.Clock, IDs: p.IDs,
				})
				if err != nil {
					return err
				}
				return srv.Start(ctx)
			},
			OnStop: func(ctx context.Context) error {
				if srv == nil {
					return nil
				}
				return srv.Stop(ctx)
			},
		})
	})
}

// terminalGatewayConfig builds the gateway's config. Node host keys, by
// default: exactly the key each node's own agent reported in its heartbeats
// over mTLS (InventoryHostKeys), so production needs no host CA. A host CA
// (GPUAAS_TERMINAL_HOST_CA, authorized_keys format) replaces that when set;
// GPUAAS_TERMINAL_INSECURE_HOST_KEYS=1 accepts any key, logging its
// fingerprint (never needed: dev's sandbox nodes report their keys too).
func terminalGatewayConfig(s Settings, getenv func(string) string, addr string, logger *slog.Logger) (terminalhost.Config, error) {
	cfg := terminalhost.Config{Addr: addr, AllowedOrigins: s.TerminalOrigins}
	switch {
	case getenv("GPUAAS_TERMINAL_HOST_CA") != "":
		var keys []ssh.PublicKey
		for _, line := range strings.Split(getenv("GPUAAS_TERMINAL_HOST_CA"), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				return cfg, errors.New("GPUAAS_TERMINAL_HOST_CA: not an SSH public key")
			}
			keys = append(keys, k)
		}
		policy, err := terminalhost.HostCertificateAuthority(keys...)
		if err != nil {
			return cfg, err
		}
		cfg.HostKeys = policy
	case s.TerminalAnyHost:
		cfg.HostKeys = terminalhost.InsecureAcceptAnyHostKey(logger.With("component", "terminal-gateway"))
	default:
		cfg.HostKeys = terminalhost.InventoryHostKeys()
	}
	return cfg, nil
}

// billingOptions run the billing worker: usage metering from allocation
// events and the accrual cycle.
func billingOptions() fx.Option {
	return fx.Options(billingTelemetryOptions(), workers.BillingModule)
}

// terminalMountOptions serve the terminal gateway on the API's listener
// (`gpuaas dev`), so the path the token endpoint returns is same-origin.
func terminalMountOptions(cfg terminalhost.Config) fx.Option {
	return fx.Options(
		fx.Supply(cfg),
		fx.Provide(fx.Annotate(func(p terminalhost.Params) (httphost.Mount, error) {
			srv, err := terminalhost.NewFromParams(p)
			if err != nil {
				return httphost.Mount{}, err
			}
			return httphost.Mount{Pattern: "/ws/terminal/", Handler: srv.Handler()}, nil
		}, fx.ResultTags(`group:"http_mounts"`))),
	)
}

// provisioningOptions run the provisioning worker: Temporal worker and
// client, the NATS consumers that start workflows, and the node sweeper.
func provisioningOptions(s Settings) fx.Option {
	return fx.Options(
		fx.Provide(func(t tracerIn) (temporal.Config, error) { return temporalConfig(s, t) }),
		temporal.Module,
		fx.Provide(
			fx.Annotate(func(a *allocationsvc.Service) *allocationsvc.Service { return a }, fx.As(new(temporal.AllocationTransitions))),
			fx.Annotate(func(t *tasksvc.Service) *tasksvc.Service { return t }, fx.As(new(temporal.TaskRunner))),
			fx.Annotate(temporal.NewSSHAccess, fx.As(new(temporal.AccessResolver))),
			provideStorageActivities,
		),
		provisioningTelemetryOptions(),
		workers.ProvisioningModule,
		workers.NodeSweeperModule,
	)
}
