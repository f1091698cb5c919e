package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gpuaas/gpuaas/adapters/childproc"
)

// GatewayConfig configures a versitygw child process: a real S3 gateway
// with the posix backend, the embedded object store of `gpuaas dev` and of
// the adapter tests. It listens on 127.0.0.1 only.
type GatewayConfig struct {
	// Dir holds the objects (data/), the gateway's log, pid file and the
	// lock of its owner. Required; reusing it keeps the objects. Made
	// absolute.
	Dir string
	// Binary is the versitygw executable; default LocateGateway().
	Binary string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// AccessKey and SecretKey are the gateway's root account; empty makes a
	// random pair (kept in Dir so a restart keeps the same one).
	AccessKey, SecretKey string
	// ReadyTimeout bounds the wait for the gateway to answer; default 30s.
	ReadyTimeout time.Duration
	// StopTimeout bounds a graceful stop before the process is killed;
	// default 10s.
	StopTimeout time.Duration
}

// GatewayVersion is the versitygw release `make tools` installs.
const GatewayVersion = "v1.8.0"

// ErrGatewayNotFound says versitygw is not installed (`make tools`).
var ErrGatewayNotFound = errors.New("s3: versitygw was not found on PATH or in $GOPATH/bin (run `make tools`)")

// LocateGateway finds versitygw on PATH, else in $GOPATH/bin, where `make
// tools` installs it.
func LocateGateway() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	if build.Default.GOPATH != "" {
		p := filepath.Join(build.Default.GOPATH, "bin", "versitygw")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrGatewayNotFound
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *GatewayConfig) CheckAndSetDefaults() error {
	if c.Dir == "" {
		return errors.New("s3: the gateway needs a Dir")
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return fmt.Errorf("s3: gateway dir: %w", err)
	}
	c.Dir = dir
	if c.Port < 0 || c.Port > 65535 {
		return errors.New("s3: gateway port out of range")
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return errors.New("s3: set both AccessKey and SecretKey, or neither")
	}
	if c.Binary == "" {
		p, err := LocateGateway()
		if err != nil {
			return err
		}
		c.Binary = p
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 30 * time.Second
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 10 * time.Second
	}
	return nil
}

// Gateway is a running versitygw.
type Gateway struct {
	cfg      GatewayConfig
	endpoint string
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
	stopErr  error
	lock     *childproc.Lock
	leftover int
}

// Files in GatewayConfig.Dir.
const (
	gatewayLock    = "versitygw.lock"
	gatewayPIDFile = "versitygw.pid"
	gatewayLog     = "versitygw.log"
	gatewayKeys    = "versitygw.keys" // "access secret", made once per Dir
	gatewayData    = "data"
)

// StartGateway starts versitygw on cfg.Dir and waits until it answers, or
// ctx / cfg.ReadyTimeout ends (then the process is stopped again). Like
// the Temporal dev server: the caller owns Dir while it runs (a second
// start fails with an error matching childproc.ErrLocked), the gateway is
// stopped when this process dies however it dies, and one left running by
// a crashed owner is stopped first.
func StartGateway(ctx context.Context, cfg GatewayConfig) (_ *Gateway, err error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, gatewayData), 0o700); err != nil {
		return nil, fmt.Errorf("s3: gateway dir: %w", err)
	}
	lock, err := childproc.LockFile(filepath.Join(cfg.Dir, gatewayLock))
	if err != nil {
		return nil, fmt.Errorf("s3: gateway dir %s is in use: %w", cfg.Dir, err)
	}
	defer func() {
		if err != nil {
			_ = lock.Unlock()
		}
	}()
	leftover, err := stopLeftoverGateway(ctx, cfg.Dir)
	if err != nil {
		return nil, err
	}
	if cfg.AccessKey == "" {
		if cfg.AccessKey, cfg.SecretKey, err = gatewayKeyPair(cfg.Dir); err != nil {
			return nil, err
		}
	}
	port := cfg.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logFile, err := os.OpenFile(filepath.Join(cfg.Dir, gatewayLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("s3: gateway log: %w", err)
	}
	cmd := exec.Command(cfg.Binary, "--port", addr, "--quiet", "--keep-alive", "posix", filepath.Join(cfg.Dir, gatewayData))
	// The keys travel in the environment, not argv, so `ps` does not show them.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+cfg.AccessKey, "ROOT_ACCESS_KEY="+cfg.AccessKey,
		"ROOT_SECRET_ACCESS_KEY="+cfg.SecretKey, "ROOT_SECRET_KEY="+cfg.SecretKey)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	done, err := childproc.Start(cmd, syscall.SIGTERM)
	if err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("s3: starting %s: %w", cfg.Binary, err)
	}
	g := &Gateway{cfg: cfg, endpoint: "http://" + addr, cmd: cmd, exited: make(chan struct{}), lock: lock, leftover: leftover}
	go func() {
		g.waitErr = <-done
		_ = logFile.Close()
		close(g.exited)
	}()
	stop := func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.StopTimeout)
		defer cancel()
		_ = g.Stop(stopCtx)
	}
	if err := childproc.WritePIDFile(filepath.Join(cfg.Dir, gatewayPIDFile), cmd.Process.Pid); err != nil {
		stop()
		return nil, fmt.Errorf("s3: gateway pid file: %w", err)
	}
	if err := g.waitReady(ctx); err != nil {
		stop()
		return nil, fmt.Errorf("%w%s", err, g.logTail())
	}
	return g, nil
}

// gatewayKeyPair reads Dir's key pair, making it on first use.
func gatewayKeyPair(dir string) (string, string, error) {
	path := filepath.Join(dir, gatewayKeys)
	if b, err := os.ReadFile(path); err == nil {
		if f := bytes.Fields(b); len(f) == 2 {
			return string(f[0]), string(f[1]), nil
		}
	}
	buf := make([]byte, 30)
	if _, err := rand.Read(buf); err != nil {
		return "", "", err
	}
	access, secret := "GPUAAS"+hex.EncodeToString(buf[:7]), hex.EncodeToString(buf[7:])
	if err := os.WriteFile(path, []byte(access+" "+secret+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("s3: gateway keys: %w", err)
	}
	return access, secret, nil
}

// stopLeftoverGateway stops the gateway Dir's pid file names when it still
// runs and serves Dir (the caller holds Dir's lock, so its owner is gone).
func stopLeftoverGateway(ctx context.Context, dir string) (int, error) {
	pidFile := filepath.Join(dir, gatewayPIDFile)
	pid, err := childproc.ReadPIDFile(pidFile)
	if err != nil || pid == 0 || !childproc.Running(pid) {
		return 0, nil
	}
	args, err := childproc.Cmdline(pid)
	if errors.Is(err, childproc.ErrNotRunning) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("s3: %s names process %d, which could not be inspected: %w", pidFile, pid, err)
	}
	if !childproc.HasArgs(args, "posix", filepath.Join(dir, gatewayData)) {
		return 0, nil // the pid was reused by an unrelated process
	}
	if err := childproc.Stop(ctx, pid, 10*time.Second, syscall.SIGTERM, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("s3: stop the gateway (pid %d) left running in %s: %w", pid, dir, err)
	}
	_ = os.Remove(pidFile)
	return pid, nil
}

func (g *Gateway) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.ReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.endpoint+"/", nil)
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			return nil // any S3 answer (403 without a signature) means it serves
		}
		lastErr = err
		select {
		case <-g.exited:
			return fmt.Errorf("s3: gateway exited during start: %v", g.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("s3: gateway not ready at %s: %w (last error: %v)", g.endpoint, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// Endpoint is the gateway's URL (http://127.0.0.1:port).
func (g *Gateway) Endpoint() string { return g.endpoint }

// AccessKey and SecretKey are its root account's key pair.
func (g *Gateway) AccessKey() string { return g.cfg.AccessKey }

// SecretKey is the root account's secret.
func (g *Gateway) SecretKey() string { return g.cfg.SecretKey }

// DataDir is where the posix backend keeps the buckets.
func (g *Gateway) DataDir() string { return filepath.Join(g.cfg.Dir, gatewayData) }

// PID is the gateway's process id.
func (g *Gateway) PID() int { return g.cmd.Process.Pid }

// StoppedLeftover is the pid of a gateway an earlier owner of Dir left
// running and this start stopped; 0 when there was none.
func (g *Gateway) StoppedLeftover() int { return g.leftover }

// Exited is closed when the gateway process has exited.
func (g *Gateway) Exited() <-chan struct{} { return g.exited }

// Stop ends the gateway (SIGTERM, then SIGKILL at ctx's end or the stop
// timeout) and releases Dir. It is safe to call more than once.
func (g *Gateway) Stop(ctx context.Context) error {
	g.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, g.cfg.StopTimeout)
		defer cancel()
		defer func() {
			_ = os.Remove(filepath.Join(g.cfg.Dir, gatewayPIDFile))
			_ = g.lock.Unlock()
		}()
		select {
		case <-g.exited:
			return
		default:
		}
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-ctx.Done():
			_ = g.cmd.Process.Kill()
			<-g.exited
			g.stopErr = errors.New("s3: gateway did not stop in time; killed")
		}
	})
	return g.stopErr
}

func (g *Gateway) logTail() string {
	b, err := os.ReadFile(filepath.Join(g.cfg.Dir, gatewayLog))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return "\n--- versitygw.log (tail) ---\n" + string(bytes.TrimSpace(b))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("s3: no free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StopLeftoverGateway stops a versitygw that a crashed owner of dir left
// running, and returns its process id (0 when nothing was running). It
// fails, with an error matching childproc.ErrLocked, while a live process
// owns dir.
func StopLeftoverGateway(ctx context.Context, dir string) (int, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	lock, err := childproc.LockFile(filepath.Join(dir, gatewayLock))
	if err != nil {
		return 0, fmt.Errorf("s3: gateway dir %s is in use: %w", dir, err)
	}
	defer lock.Unlock()
	return stopLeftoverGateway(ctx, dir)
}
