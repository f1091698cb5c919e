package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/childproc"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/temporal"
	"github.com/gpuaas/gpuaas/core/ledger"
	"github.com/gpuaas/gpuaas/testkit/e2e"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// TestDevRecoversFromSIGKILL is issue 9's crash check, on the real binary:
// `gpuaas dev` is killed with SIGKILL while an allocation is being
// provisioned (requested, not yet active). Its private PostgreSQL and the
// Temporal dev server must die with it; started again on the same data dir
// it must come up (nothing left blocks it), keep the user signed in (the
// dev OIDC key and sessions are in the data dir), refuse a second gpuaas dev
// on the same data dir, bring the allocation to a final state, and keep the
// ledger whole: exactly the one credit bought before the crash, and usage
// debited once for what was used. `gpuaas dev down` then stops it.
func TestDevRecoversFromSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gpuaas and runs gpuaas dev twice")
	}
	if _, err := temporal.LocateCLI(); err != nil {
		services.Unavailable(t, "temporal_cli", fmt.Errorf("%w; install it with `make tools`", err))
	}
	if _, err := postgres.FindBinDir(""); err != nil {
		services.Unavailable(t, "postgres", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		services.Unavailable(t, "go", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	// The data dir where other users can reach it: the cluster runs as the
	// postgres user when the test runs as root, the sandbox nodes switch
	// users. Fresh, and on ports of its own, so it meets neither a
	// developer's `make dev` nor other tests.
	work, err := os.MkdirTemp("", "gpuaas-crash-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(work) })
	bin := filepath.Join(work, "gpuaas")
	if out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := filepath.Join(work, "dev")
	httpAddr := freeAddr(t)
	args := []string{"dev", "-data-dir", dataDir, "-http-addr", httpAddr, "-oidc-addr", freeAddr(t),
		"-agent-addr", freeAddr(t), "-pg-port", strconv.Itoa(crashFreePort(t)),
		"-node-ssh-port", strconv.Itoa(freeConsecutivePorts(t, 1)), "-nodes", "1"}
	const sku, credit = "h100-80g-x1", int64(5000)
	api := "http://" + httpAddr

	first := startDevProcess(ctx, t, bin, args, filepath.Join(work, "first.log"))
	if want := "ws://" + httpAddr + "/ws/terminal/{allocation_id}"; !strings.Contains(first.banner, want) {
		t.Errorf("the banner does not list the terminal WebSocket %s:\n%s", want, first.banner)
	}
	c := e2e.New(api)
	c.PollEvery = 250 * time.Millisecond // well under the per-user rate limit
	if err := c.Login(ctx, "alice", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.TopUp(ctx, credit, "usd"); err != nil {
		t.Fatal(err)
	}
	if b, err := c.Balance(ctx); err != nil || b.BalanceMinor != credit {
		t.Fatalf("balance before the crash: %+v, %v; want %d", b, err, credit)
	}
	keyID, _, err := c.AddSSHKey(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := waitForCapacity(ctx, c, sku); err != nil {
		t.Fatal(err)
	}

	// Provisioning takes tens of milliseconds here, and the kill follows the
	// create's answer at once, so it nearly always lands before active. When
	// the machine is slow enough for it not to (active_at before the kill),
	// the round proves nothing about a crash mid-provisioning: release, and
	// try again on the restarted platform.
	run := first
	var alloc crashAllocation
	for round := 1; ; round++ {
		if err := c.Call(ctx, "POST", "/api/v1/allocations", map[string]any{"sku_id": sku, "ssh_key_ids": []string{keyID}}, &alloc); err != nil {
			t.Fatalf("create allocation: %v", err)
		}
		killedAt := run.kill(t)
		if alloc.State != "requested" && alloc.State != "provisioning" {
			t.Fatalf("the allocation was %s when gpuaas dev was killed", alloc.State)
		}
		if runtime.GOOS == "linux" {
			// The parent-death signal: nothing of the killed run survives it
			// (the PostgreSQL postmaster, the Temporal dev server).
			waitGone(ctx, t, "the PostgreSQL server", filepath.Join(dataDir, "postgres", "data", "postmaster.pid"))
			waitGone(ctx, t, "the Temporal dev server", filepath.Join(dataDir, "temporal", "devserver.pid"))
		}

		run = startDevProcess(ctx, t, bin, args, filepath.Join(work, fmt.Sprintf("run%d.log", round+1)))
		// Signed in across the restart: the access token from before the
		// crash still verifies, and its refresh token still refreshes.
		if _, err := c.Me(ctx); err != nil {
			t.Fatalf("the access token from before the crash: %v", err)
		}
		var refreshed struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		if err := c.Call(ctx, "POST", "/api/v1/auth/token/refresh", map[string]string{"refresh_token": c.RefreshToken}, &refreshed); err != nil || refreshed.AccessToken == "" {
			t.Fatalf("refresh with the token from before the crash: %v", err)
		}
		c.Token, c.RefreshToken = refreshed.AccessToken, refreshed.RefreshToken

		alloc = waitFinal(ctx, t, c, alloc.ID)
		if alloc.State == "failed" || alloc.ActiveAt == nil || alloc.ActiveAt.After(killedAt) {
			t.Logf("round %d: allocation %s is %s after the restart (active_at %v, killed at %s)", round, alloc.ID, alloc.State, alloc.ActiveAt, killedAt.Format(time.RFC3339Nano))
			break
		}
		t.Logf("round %d: the allocation was active at %s, before the kill at %s; again", round, alloc.ActiveAt.Format(time.RFC3339Nano), killedAt.Format(time.RFC3339Nano))
		releaseAndWait(ctx, t, c, alloc.ID)
		if round == 3 {
			t.Fatal("three rounds and the kill never landed before the allocation was active")
		}
	}

	// A second gpuaas dev on the same data dir is refused, clearly.
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), fmt.Sprintf("another gpuaas dev (pid %d) is running on the data dir", run.cmd.Process.Pid)) {
		t.Errorf("a second gpuaas dev on the data dir: %v\n%s", err, out)
	}

	if alloc.State == "active" {
		releaseAndWait(ctx, t, c, alloc.ID)
	}
	checkLedger(ctx, t, c, alloc, credit)

	// gpuaas dev down stops the running platform and everything it runs.
	downOut, err := exec.CommandContext(ctx, bin, "dev", "down", "-data-dir", dataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("gpuaas dev down: %v\n%s", err, downOut)
	}
	select {
	case <-run.exited:
	case <-ctx.Done():
		t.Fatalf("gpuaas dev still runs after gpuaas dev down:\n%s", downOut)
	}
	for _, f := range []string{filepath.Join(dataDir, "postgres", "data", "postmaster.pid"), filepath.Join(dataDir, "temporal", "devserver.pid")} {
		if pid, _ := childproc.ReadPIDFile(f); childproc.Running(pid) {
			t.Errorf("process %d (%s) still runs after gpuaas dev down", pid, f)
		}
	}
}

// crashAllocation is what the test reads of an allocation.
type crashAllocation struct {
	ID          string
	State       string
	FailureCode string     `json:"failure_code"`
	ActiveAt    *time.Time `json:"active_at"`
}

// devProcess is a `gpuaas dev` subprocess.
type devProcess struct {
	cmd    *exec.Cmd
	banner string
	exited chan struct{}
	log    string
}

// startDevProcess runs the binary and waits for its banner ("is up"); the
// process is killed at cleanup if the test has not stopped it.
func startDevProcess(ctx context.Context, t *testing.T, bin string, args []string, logPath string) *devProcess {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = crashEnv()
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd, exited: make(chan struct{}), log: logPath}
	up := make(chan string, 1)
	var mu sync.Mutex
	var seen strings.Builder
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			mu.Lock()
			seen.WriteString(sc.Text() + "\n")
			if !sent && strings.Contains(sc.Text(), "Ctrl-C stops everything") {
				up <- seen.String()
				sent = true
			}
			mu.Unlock()
		}
	}()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	select {
	case p.banner = <-up:
	case <-p.exited:
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("gpuaas dev exited during start (%v):\n%s\n%s", cmd.ProcessState, seen.String(), logTail(logPath))
	case <-ctx.Done():
		t.Fatalf("gpuaas dev did not come up: %v\n%s", ctx.Err(), logTail(logPath))
	}
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *devProcess) kill(t *testing.T) time.Time {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	<-p.exited
	return at
}

// crashEnv is the test's environment without the variables that would
// replace an embedded default (DATABASE_URL, …): the run must use its own.
func crashEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "GPUAAS_"), strings.HasPrefix(name, "OIDC_"), strings.HasPrefix(name, "TEMPORAL_"),
			strings.HasPrefix(name, "STRIPE_"), strings.HasPrefix(name, "AWS_"), strings.HasPrefix(name, "OTEL_"),
			name == "DATABASE_URL", name == "NATS_URL", name == "REDIS_URL":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GPUAAS_LOG_LEVEL=warn", "GPUAAS_LOG_FORMAT=text")
}

// waitGone waits until the process a pid file names has exited.
func waitGone(ctx context.Context, t *testing.T, what, pidFile string) {
	t.Helper()
	pid, err := childproc.ReadPIDFile(pidFile)
	if err != nil || pid == 0 {
		t.Fatalf("%s: no pid in %s (%v)", what, pidFile, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for childproc.Running(pid) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s (pid %d) still runs 30 s after gpuaas dev was killed", what, pid)
		case <-tick.C:
		}
	}
}

// waitFinal polls the allocation until it is active, failed or released.
func waitFinal(ctx context.Context, t *testing.T, c *e2e.Client, id string) crashAllocation {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var a crashAllocation
	for {
		if err := c.Call(ctx, "GET", "/api/v1/allocations/"+id, nil, &a); err != nil {
			t.Fatalf("get allocation: %v", err)
		}
		switch a.State {
		case "active", "failed", "released":
			return a
		}
		select {
		case <-ctx.Done():
			t.Fatalf("allocation %s still %s after the restart", id, a.State)
		case <-tick.C:
		}
	}
}

func releaseAndWait(ctx context.Context, t *testing.T, c *e2e.Client, id string) {
	t.Helper()
	if err := c.Call(ctx, "POST", "/api/v1/allocations/"+id+"/release", nil, nil); err != nil {
		t.Fatalf("release: %v", err)
	}
	if _, err := c.WaitState(ctx, id, "released"); err != nil {
		t.Fatal(err)
	}
}

// checkLedger checks that the crash lost and doubled nothing: the one credit
// bought before it, the balance equal to the sum of the entries, and the
// allocation's usage debited exactly as its record says, once.
func checkLedger(ctx context.Context, t *testing.T, c *e2e.Client, alloc crashAllocation, credit int64) {
	t.Helper()
	type entry struct {
		Type        string
		AmountMinor int64 `json:"amount_minor"`
		Reference   string
	}
	type usage struct {
		ID            string
		AllocationID  string    `json:"allocation_id"`
		HourlyPrice   int64     `json:"hourly_price_minor"`
		StartedAt     time.Time `json:"started_at"`
		BilledThrough time.Time `json:"billed_through"`
		BilledMinor   int64     `json:"billed_minor"`
	}
	usageOf := func() (usage, bool) {
		var page struct{ Usage []usage }
		if err := c.Call(ctx, "GET", "/api/v1/billing/usage?limit=200", nil, &page); err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Usage {
			if u.AllocationID == alloc.ID {
				return u, true
			}
		}
		return usage{}, false
	}
	// The billing worker may debit a window between two reads: read until
	// the usage record is the same before and after the ledger.
	for try := 0; ; try++ {
		before, hasUsage := usageOf()
		var page struct{ Entries []entry }
		if err := c.Call(ctx, "GET", "/api/v1/billing/ledger?limit=200", nil, &page); err != nil {
			t.Fatal(err)
		}
		bal, err := c.Balance(ctx)
		if err != nil {
			t.Fatal(err)
		}
		after, _ := usageOf()
		if before.BilledMinor != after.BilledMinor && try < 20 {
			continue
		}
		var credits []int64
		var sum, charged int64
		for _, e := range page.Entries {
			sum += e.AmountMinor
			switch {
			case e.Type == "credit":
				credits = append(credits, e.AmountMinor)
			case hasUsage && e.Reference == before.ID:
				charged -= e.AmountMinor // usage debits and their corrections
			default:
				t.Errorf("unexpected ledger entry %+v", e)
			}
		}
		if len(credits) != 1 || credits[0] != credit {
			t.Errorf("credits %v, want exactly the one credit of %d bought before the crash", credits, credit)
		}
		if bal.BalanceMinor != sum || bal.BalanceMinor != credit-charged {
			t.Errorf("balance %d, ledger sum %d, credit %d − usage %d", bal.BalanceMinor, sum, credit, charged)
		}
		if !hasUsage {
			if alloc.ActiveAt != nil {
				t.Errorf("allocation %s was active but has no usage record", alloc.ID)
			}
			return
		}
		if charged != before.BilledMinor {
			t.Errorf("usage record %s billed %d, the ledger charged %d for it", before.ID, before.BilledMinor, charged)
		}
		seconds := int64(before.BilledThrough.Sub(before.StartedAt) / time.Second)
		if want := ledger.CostMinor(before.HourlyPrice, seconds); before.BilledMinor != want {
			t.Errorf("usage record billed %d for %d s at %d/h; want %d", before.BilledMinor, seconds, before.HourlyPrice, want)
		}
		return
	}
}

func crashFreePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "--- log tail ---\n" + string(b)
}
