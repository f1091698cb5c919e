package temporal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/gpuaas/gpuaas/adapters/childproc"
)

// DevServerConfig configures a `temporal server start-dev` child process.
type DevServerConfig struct {
	// Dir holds the SQLite database (temporal.db), the server's log
	// (temporal.log), its pid file and the lock of its owner. Required;
	// reusing it keeps workflows across restarts. Made absolute.
	Dir string
	// CLIPath is the temporal CLI; default LocateCLI().
	CLIPath string
	// Port of the frontend gRPC service; 0 picks a free one.
	Port int
	// UI enables the web UI on UIPort (0: a free one). Tests run headless.
	UI     bool
	UIPort int
	// ReadyTimeout bounds the wait for the frontend to answer; default 60s.
	ReadyTimeout time.Duration
	// StopTimeout bounds a graceful stop before the process is killed;
	// default 15s.
	StopTimeout time.Duration
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *DevServerConfig) CheckAndSetDefaults() error {
	if c.Dir == "" {
		return errors.New("temporal: the dev server needs a Dir")
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return fmt.Errorf("temporal: dev server dir: %w", err)
	}
	c.Dir = dir
	if c.Port < 0 || c.Port > 65535 || c.UIPort < 0 || c.UIPort > 65535 {
		return errors.New("temporal: dev server port out of range")
	}
	if c.CLIPath == "" {
		p, err := LocateCLI()
		if err != nil {
			return err
		}
		c.CLIPath = p
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 60 * time.Second
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 15 * time.Second
	}
	return nil
}

// ErrCLINotFound says the temporal CLI is not installed (`make tools`).
var ErrCLINotFound = errors.New("temporal: the temporal CLI was not found on PATH or in $GOPATH/bin (run `make tools`)")

// LocateCLI finds the temporal CLI on PATH, else in $GOPATH/bin, where
// `make tools` installs it.
func LocateCLI() (string, error) {
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	if build.Default.GOPATH != "" {
		p := filepath.Join(build.Default.GOPATH, "bin", "temporal")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrCLINotFound
}

// DevServer is a running Temporal dev server, bound to 127.0.0.1 only.
type DevServer struct {
	cfg      DevServerConfig
	hostPort string
	uiURL    string
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
	stopErr  error
	lock     *childproc.Lock
	leftover int
}

// Files in DevServerConfig.Dir besides the database and the log.
const (
	devServerLock    = "devserver.lock" // held by the owner while it runs the server
	devServerPIDFile = "devserver.pid"  // the server's pid, to find it after a crash
)

// StartDevServer starts a headless dev server keeping its state in dir and
// waits until it answers.
func StartDevServer(ctx context.Context, dir string) (*DevServer, error) {
	return StartDevServerWith(ctx, DevServerConfig{Dir: dir})
}

// StartDevServerWith starts a dev server with cfg and waits until its
// frontend answers a health check, or ctx / cfg.ReadyTimeout ends (then
// the process is stopped again).
//
// The caller owns cfg.Dir while the server runs: a second start on the same
// Dir, in this process or another, fails with an error matching
// childproc.ErrLocked. The server is interrupted when this process dies,
// however it dies; one still running from Dir when the lock is free is a
// leftover of an owner that crashed, and is stopped first
// ([DevServer.StoppedLeftover]) so two servers never share the database.
func StartDevServerWith(ctx context.Context, cfg DevServerConfig) (_ *DevServer, err error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("temporal: dev server dir: %w", err)
	}
	lock, err := childproc.LockFile(filepath.Join(cfg.Dir, devServerLock))
	if err != nil {
		return nil, fmt.Errorf("temporal: dev server dir %s is in use: %w", cfg.Dir, err)
	}
	defer func() {
		if err != nil {
			_ = lock.Unlock()
		}
	}()
	leftover, err := stopLeftover(ctx, cfg.Dir)
	if err != nil {
		return nil, err
	}
	port, err := freePort(cfg.Port)
	if err != nil {
		return nil, err
	}
	args := []string{"server", "start-dev",
		"--ip", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--db-filename", filepath.Join(cfg.Dir, "temporal.db"),
		"--log-level", "warn",
		// Eager activity dispatch: an activity scheduled on the task queue
		// of the worker completing the workflow task comes back in the
		// completion's response instead of through matching (the SDK asks
		// for it by default; servers leave it off unless configured). A
		// production cluster sets the same dynamic config.
		"--dynamic-config-value", "system.enableActivityEagerExecution=true",
	}
	// The HTTP API and metrics listeners default to random ports on --ip;
	// pin them so nothing binds outside 127.0.0.1 whatever the CLI does.
	httpPort, err := freePort(0)
	if err != nil {
		return nil, err
	}
	metricsPort, err := freePort(0)
	if err != nil {
		return nil, err
	}
	args = append(args, "--http-port", strconv.Itoa(httpPort), "--metrics-port", strconv.Itoa(metricsPort))
	d := &DevServer{cfg: cfg, hostPort: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{}),
		lock: lock, leftover: leftover}
	if cfg.UI {
		uiPort, err := freePort(cfg.UIPort)
		if err != nil {
			return nil, err
		}
		args = append(args, "--ui-ip", "127.0.0.1", "--ui-port", strconv.Itoa(uiPort))
		d.uiURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(uiPort))
	} else {
		args = append(args, "--headless")
	}

	logFile, err := os.OpenFile(filepath.Join(cfg.Dir, "temporal.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("temporal: dev server log: %w", err)
	}
	// Not CommandContext: ctx bounds the start only; Stop ends the process.
	cmd := exec.Command(cfg.CLIPath, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttrs()
	// If this process dies first, the parent-death signal interrupts the
	// server as Stop would.
	done, err := childproc.Start(cmd, syscall.SIGINT)
	if err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("temporal: starting %s: %w", cfg.CLIPath, err)
	}
	d.cmd = cmd
	go func() {
		d.waitErr = <-done
		_ = logFile.Close()
		close(d.exited)
	}()
	// Where a crash leaves it, so the next owner can stop it (a platform
	// without a parent-death signal, a server that ignored it).
	if err := childproc.WritePIDFile(filepath.Join(cfg.Dir, devServerPIDFile), cmd.Process.Pid); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.StopTimeout)
		defer cancel()
		_ = d.Stop(stopCtx)
		return nil, fmt.Errorf("temporal: dev server pid file: %w", err)
	}

	if err := d.waitReady(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), cfg.StopTimeout)
		defer cancel()
		_ = d.Stop(stopCtx)
		return nil, fmt.Errorf("%w%s", err, d.logTail())
	}
	return d, nil
}

// StoppedLeftover is the process id of a server that an earlier owner of
// the directory left running and the start stopped; 0 when there was none.
func (d *DevServer) StoppedLeftover() int { return d.leftover }

// StopLeftoverDevServer stops a dev server that a crashed owner of dir left
// running, and returns its process id (0 when nothing was running). It
// fails, with an error matching childproc.ErrLocked, while a live process
// owns dir.
func StopLeftoverDevServer(ctx context.Context, dir string) (int, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	lock, err := childproc.LockFile(filepath.Join(dir, devServerLock))
	if err != nil {
		return 0, fmt.Errorf("temporal: dev server dir %s is in use: %w", dir, err)
	}
	defer lock.Unlock()
	return stopLeftover(ctx, dir)
}

// stopLeftover stops the server the pid file in dir names if it still runs
// and serves dir's database; the caller holds dir's lock, so such a server
// belongs to an owner that is gone.
func stopLeftover(ctx context.Context, dir string) (int, error) {
	pidFile := filepath.Join(dir, devServerPIDFile)
	pid, err := childproc.ReadPIDFile(pidFile)
	if err != nil || pid == 0 || !childproc.Running(pid) {
		return 0, nil
	}
	args, err := childproc.Cmdline(pid)
	if errors.Is(err, childproc.ErrNotRunning) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("temporal: %s names process %d, which could not be inspected: %w", pidFile, pid, err)
	}
	if !childproc.HasArgs(args, "--db-filename", filepath.Join(dir, "temporal.db")) {
		return 0, nil // the pid was reused by an unrelated process
	}
	if err := childproc.Stop(ctx, pid, 15*time.Second, syscall.SIGINT, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("temporal: stop the dev server (pid %d) left running in %s: %w", pid, dir, err)
	}
	_ = os.Remove(pidFile)
	return pid, nil
}

// waitReady polls the frontend's health RPC until it answers.
func (d *DevServer) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ReadyTimeout)
	defer cancel()
	c, err := client.NewLazyClient(client.Options{HostPort: d.hostPort, Logger: quietLogger{}})
	if err != nil {
		return err
	}
	defer c.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		callCtx, callCancel := context.WithTimeout(ctx, time.Second)
		_, err := c.CheckHealth(callCtx, &client.CheckHealthRequest{})
		callCancel()
		if err == nil {
			// The default namespace is registered just after the frontend
			// comes up; wait for it too, or the first start fails.
			callCtx, callCancel := context.WithTimeout(ctx, time.Second)
			_, err = c.WorkflowService().DescribeNamespace(callCtx, describeDefault())
			callCancel()
			if err == nil {
				return nil
			}
		}
		select {
		case <-d.exited:
			return fmt.Errorf("temporal: dev server exited during start: %v", d.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("temporal: dev server not ready at %s: %w (last error: %v)", d.hostPort, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// HostPort is the frontend's address, for Config.HostPort.
func (d *DevServer) HostPort() string { return d.hostPort }

// UIURL is the web UI's address ("" when headless).
func (d *DevServer) UIURL() string { return d.uiURL }

// Stop interrupts the server and waits for it to exit, killing it when ctx
// or the stop timeout ends first, then releases the directory. It is safe
// to call more than once.
func (d *DevServer) Stop(ctx context.Context) error {
	d.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, d.cfg.StopTimeout)
		defer cancel()
		defer func() {
			_ = os.Remove(filepath.Join(d.cfg.Dir, devServerPIDFile))
			_ = d.lock.Unlock()
		}()
		select {
		case <-d.exited:
			return
		default:
		}
		_ = d.cmd.Process.Signal(os.Interrupt)
		select {
		case <-d.exited:
		case <-ctx.Done():
			_ = d.cmd.Process.Kill()
			<-d.exited
			d.stopErr = fmt.Errorf("temporal: dev server did not stop in time; killed")
		}
	})
	return d.stopErr
}

func (d *DevServer) logTail() string {
	b, err := os.ReadFile(filepath.Join(d.cfg.Dir, "temporal.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return "\n--- temporal.log (tail) ---\n" + string(bytes.TrimSpace(b))
}

// freePort returns want, or a port free on 127.0.0.1 when want is 0.
func freePort(want int) (int, error) {
	if want != 0 {
		return want, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("temporal: no free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// childAttrs put the server in its own process group, so a terminal's
// Ctrl-C reaches the parent, which stops the server in order.
func childAttrs() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
