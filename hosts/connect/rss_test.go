package connecthost_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

// BenchmarkAgentRSS builds the gpuaas-agent binary, enrols it with the
// sandbox executor against a real gateway, waits for its first heartbeat
// and reports its resident set size (goal: ≤ 25 MB) as rss_MB.
//
//	go test -run '^$' -bench AgentRSS -benchtime 1x ./hosts/connect/
func BenchmarkAgentRSS(b *testing.B) {
	var rss float64
	for range b.N {
		rss = agentRSS(b)
	}
	b.ReportMetric(rss, "rss_MB")
	if rss > 25 {
		b.Logf("agent RSS %.1f MB is above the 25 MB goal", rss)
	}
}

func agentRSS(t testing.TB) float64 {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "gpuaas-agent")
	build := exec.Command("go", "build", "-o", bin, "github.com/gpuaas/gpuaas/nodeagent/cmd/gpuaas-agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build agent: %v\n%s", err, out)
	}
	e := newEnv(t, agentsvc.Config{})
	nodeID, token := e.newNode(t)
	caFile := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(caFile, e.rootsPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--server", e.url, "--ca-file", caFile,
		"--state-dir", filepath.Join(dir, "state"), "--executor", "sandbox", "--sandbox-ssh-addr", "127.0.0.1:0",
		"--simulated-gpus", "8")
	cmd.Env = append(os.Environ(), "GPUAAS_AGENT_BOOTSTRAP_TOKEN="+token)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	poll.Until(t, 30*time.Second, "the agent's first heartbeat", func() bool {
		n, err := e.nodes.GetNode(context.Background(), nodeID)
		return err == nil && n.LastHeartbeatAt != nil && len(n.GPUs) == 8
	})
	f, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}
