// Command gpuaas-agent is the node agent for GPU hosts.
//
//	gpuaas-agent run              enrol (first start) and serve the control plane
//	gpuaas-agent discover         print the GPUs found, as JSON
//	gpuaas-agent version          print the version
//	gpuaas-agent terminal-attach  sshd's subsystem command for browser terminals
//	                              (runs as the account; relays to the agent's socket)
//
// Configuration comes from flags, each with an environment variable
// fallback (GPUAAS_AGENT_*). The bootstrap token is best passed through
// GPUAAS_AGENT_BOOTSTRAP_TOKEN or a file, never on the command line where
// other users can read it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/nodeagent"
	"github.com/gpuaas/gpuaas/nodeagent/gpu"
	"github.com/gpuaas/gpuaas/nodeagent/linuxexec"
	"github.com/gpuaas/gpuaas/nodeagent/sandbox"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gpuaas-agent:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

type options struct {
	server, tokenFile, stateDir, executor, caFile, sandboxAddr, gpuModel, hostKeyFile, terminalSocket string
	simGPUs, gpuMemMiB                                                                                int
}

func flags(fs *flag.FlagSet) *options {
	o := &options{}
	fs.StringVar(&o.server, "server", env("GPUAAS_AGENT_SERVER", ""), "agent gateway URL (https://…)")
	fs.StringVar(&o.tokenFile, "bootstrap-token-file", env("GPUAAS_AGENT_BOOTSTRAP_TOKEN_FILE", ""), "file holding the one-time bootstrap token")
	fs.StringVar(&o.stateDir, "state-dir", env("GPUAAS_AGENT_STATE_DIR", "/var/lib/gpuaas-agent"), "state directory")
	fs.StringVar(&o.executor, "executor", env("GPUAAS_AGENT_EXECUTOR", "linux"), "executor: linux or sandbox")
	fs.StringVar(&o.caFile, "ca-file", env("GPUAAS_AGENT_CA_FILE", ""), "PEM roots trusted for the gateway before enrolment")
	fs.StringVar(&o.sandboxAddr, "sandbox-ssh-addr", env("GPUAAS_AGENT_SANDBOX_SSH_ADDR", "127.0.0.1:2222"), "sandbox SSH listen address (loopback)")
	fs.StringVar(&o.hostKeyFile, "ssh-host-key-file", env("GPUAAS_AGENT_SSH_HOST_KEY_FILE", "/etc/ssh/ssh_host_ed25519_key.pub"), "sshd host public key reported to the control plane (linux executor)")
	fs.StringVar(&o.terminalSocket, "socket", env("GPUAAS_AGENT_TERMINAL_SOCKET", "/run/gpuaas-agent/terminal.sock"), "local socket of browser-terminal sessions (linux executor; terminal-attach)")
	fs.IntVar(&o.simGPUs, "simulated-gpus", atoi(env("GPUAAS_AGENT_SIMULATED_GPUS", "0")), "simulated GPUs reported when none is found")
	fs.StringVar(&o.gpuModel, "simulated-gpu-model", env("GPUAAS_AGENT_SIMULATED_GPU_MODEL", "NVIDIA H100 80GB HBM3"), "model of simulated GPUs")
	fs.IntVar(&o.gpuMemMiB, "simulated-gpu-memory-mib", atoi(env("GPUAAS_AGENT_SIMULATED_GPU_MEMORY_MIB", "81559")), "memory of simulated GPUs")
	return o
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func run(args []string) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("gpuaas-agent "+cmd, flag.ContinueOnError)
	o := flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	gcfg := gpu.Config{Simulated: gpu.Simulated(o.simGPUs, o.gpuModel, o.gpuMemMiB)}
	switch cmd {
	case "version":
		fmt.Println(nodeagent.Version)
		return nil
	case "discover":
		res, err := gpu.Discover(context.Background(), gcfg)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	case "run":
		return serve(o, gcfg)
	case "terminal-attach":
		return linuxexec.Attach(context.Background(), o.terminalSocket, os.Stdin, os.Stdout)
	}
	return fmt.Errorf("unknown command %q (run, discover, version, terminal-attach)", cmd)
}

func serve(o *options, gcfg gpu.Config) error {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "gpuaas-agent")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	token := os.Getenv("GPUAAS_AGENT_BOOTSTRAP_TOKEN")
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return err
		}
		token = strings.TrimSpace(string(b))
	}
	var roots []byte
	if o.caFile != "" {
		b, err := os.ReadFile(o.caFile)
		if err != nil {
			return err
		}
		roots = b
	}
	var exe nodeagent.Executor
	switch o.executor {
	case "sandbox":
		sb, err := sandbox.New(sandbox.Config{Addr: o.sandboxAddr, Root: filepath.Join(o.stateDir, "sandbox"),
			Logger: logger.With("component", "sandbox")})
		if err != nil {
			return err
		}
		if err := sb.Start(); err != nil {
			return err
		}
		defer sb.Close()
		logger.Info("sandbox SSH listening", "addr", sb.Addr())
		exe = sb
	case "linux":
		le, err := linuxexec.New(linuxexec.Config{HostKeyFile: o.hostKeyFile, TerminalSocket: o.terminalSocket,
			Logger: logger.With("component", "linux-executor")})
		if err != nil {
			return err
		}
		if err := le.Start(); err != nil {
			return err
		}
		defer le.Close()
		exe = le
	default:
		return errors.New("executor must be linux or sandbox")
	}
	a, err := nodeagent.New(nodeagent.Config{
		ServerURL: o.server, BootstrapToken: token, StateDir: o.stateDir, ServerRootsPEM: roots,
		Executor: exe, Logger: logger,
		GPUs: func(ctx context.Context) (gpusOut []inventory.GPU, err error) {
			r, err := gpu.Discover(ctx, gcfg)
			return r.GPUs, err
		},
	})
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	// The token has served its purpose; drop it from the environment.
	_ = os.Unsetenv("GPUAAS_AGENT_BOOTSTRAP_TOKEN")
	logger.Info("agent running", "node_id", a.NodeID(), "version", nodeagent.Version)
	if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
