package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/pki"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
	"github.com/gpuaas/gpuaas/nodeagent"
	"github.com/gpuaas/gpuaas/nodeagent/gpu"
	"github.com/gpuaas/gpuaas/nodeagent/sandbox"
	"github.com/gpuaas/gpuaas/ports"
)

// sandboxNodesConfig describes the sandbox nodes `gpuaas dev` runs: real
// node agents, enrolled through the real bootstrap-token flow and talking
// mTLS to the agent gateway, each with an embedded SSH server as executor.
type sandboxNodesConfig struct {
	Count     int
	SKU       string
	Dir       string
	FirstPort int // SSH port of node 1 on 127.0.0.1; node i uses FirstPort+i-1
	AgentURL  string
	GPUs      int
	GPUModel  string
	GPUMemMiB int
}

// devAdmin is the principal `gpuaas dev` registers its sandbox nodes as.
var devAdmin = identity.Principal{User: identity.User{ID: "00000000-0000-7000-8000-00000000dev1",
	DisplayName: "gpuaas dev", Role: identity.RoleAdmin, Status: identity.UserActive}}

type sandboxNode struct {
	name  string
	ssh   *sandbox.Server
	agent *nodeagent.Agent
	done  chan struct{}
}

// sandboxNodesOptions start the sandbox nodes after the platform is up and
// stop them first.
func sandboxNodesOptions(cfg sandboxNodesConfig) fx.Option {
	type params struct {
		fx.In
		Inventory *inventorysvc.Service
		SKUs      ports.SKUStore
		CA        *pki.CA
		Logger    *slog.Logger
		Lifecycle fx.Lifecycle
	}
	return fx.Invoke(func(p params) {
		var nodes []*sandboxNode
		ctx, cancel := context.WithCancel(context.Background())
		p.Lifecycle.Append(fx.Hook{
			OnStart: func(startCtx context.Context) error {
				roots, err := p.CA.RootPEM(startCtx)
				if err != nil {
					return err
				}
				// Simulated GPUs match the SKU the nodes are registered as.
				sku, err := p.SKUs.GetSKU(startCtx, cfg.SKU)
				if err != nil {
					return fmt.Errorf("sandbox nodes: SKU %q: %w", cfg.SKU, err)
				}
				cfg.GPUs, cfg.GPUModel, cfg.GPUMemMiB = sku.GPUCount, sku.GPUModel+" (simulated)", sku.GPUMemoryGiB*1024
				for i := 1; i <= cfg.Count; i++ {
					n, err := startSandboxNode(startCtx, ctx, cfg, i, roots, p.Inventory, p.Logger)
					if err != nil {
						return fmt.Errorf("sandbox node %d: %w", i, err)
					}
					nodes = append(nodes, n)
				}
				return nil
			},
			OnStop: func(stopCtx context.Context) error {
				cancel()
				for _, n := range nodes {
					select {
					case <-n.done:
					case <-stopCtx.Done():
					}
					_ = n.ssh.Close()
				}
				return nil
			},
		})
	})
}

func startSandboxNode(startCtx, runCtx context.Context, cfg sandboxNodesConfig, i int, roots []byte,
	inv *inventorysvc.Service, logger *slog.Logger) (*sandboxNode, error) {
	name := fmt.Sprintf("dev-node-%d", i)
	dir := filepath.Join(cfg.Dir, name)
	log := logger.With("component", "sandbox-node", "node", name)
	ssh, err := sandbox.New(sandbox.Config{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.FirstPort+i-1)),
		Root: filepath.Join(dir, "sandbox"), Logger: log})
	if err != nil {
		return nil, err
	}
	if err := ssh.Start(); err != nil {
		return nil, err
	}
	agentDir := filepath.Join(dir, "agent")
	var token string
	if _, err := os.Stat(filepath.Join(agentDir, "identity.json")); errors.Is(err, os.ErrNotExist) {
		// First start (or the node's state was wiped): register a node and
		// enrol with its one-time token, as an operator would.
		reg, err := registerDevNode(startCtx, inv, name, cfg.SKU, cfg.FirstPort+i-1)
		if err != nil {
			ssh.Close()
			return nil, err
		}
		token = reg.BootstrapToken
	}
	gpus := gpu.Simulated(cfg.GPUs, cfg.GPUModel, cfg.GPUMemMiB)
	agent, err := nodeagent.New(nodeagent.Config{
		ServerURL: cfg.AgentURL, BootstrapToken: token, StateDir: agentDir, ServerRootsPEM: roots,
		Executor: ssh, Logger: log,
		GPUs: func(context.Context) ([]inventory.GPU, error) { return gpus, nil },
	})
	if err != nil {
		ssh.Close()
		return nil, err
	}
	if err := agent.Start(startCtx); err != nil {
		ssh.Close()
		return nil, err
	}
	n := &sandboxNode{name: name, ssh: ssh, agent: agent, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		if err := agent.Run(runCtx); err != nil && runCtx.Err() == nil {
			log.Error("agent stopped", "err", err)
		}
	}()
	return n, nil
}

// registerDevNode registers the node; when the name is taken by a node whose
// agent state is gone, the old node is retired and a fresh name is used.
func registerDevNode(ctx context.Context, inv *inventorysvc.Service, name, sku string, port int) (inventorysvc.Registration, error) {
	req := inventorysvc.RegisterRequest{Name: name, SKUID: sku, SSHHost: "127.0.0.1", SSHPort: port}
	reg, err := inv.RegisterNode(ctx, devAdmin, req)
	for n := 2; fault.IsKind(err, fault.KindConflict) && n < 100; n++ {
		req.Name = fmt.Sprintf("%s-%d", name, n)
		reg, err = inv.RegisterNode(ctx, devAdmin, req)
	}
	return reg, err
}
