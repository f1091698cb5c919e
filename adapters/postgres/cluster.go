package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gpuaas/gpuaas/adapters/childproc"
)

// ClusterConfig configures a private PostgreSQL cluster started from the
// machine's own PostgreSQL binaries: the embedded default of `gpuaas dev`.
type ClusterConfig struct {
	// Dir holds the cluster's data and socket directories.
	Dir string
	// Port on 127.0.0.1 (0 = 54329).
	Port int
	// Database created for the platform (default "gpuaas").
	Database string
	// BinDir overrides where initdb/pg_ctl/postgres are looked up.
	BinDir string
	// Log receives the server's output (nil: Dir/postgres.log).
	Log *os.File
}

// Cluster is a running private cluster.
type Cluster struct {
	cfg      ClusterConfig
	cmd      *exec.Cmd
	cred     *syscall.Credential
	done     <-chan error
	url      string
	lock     *childproc.Lock
	leftover int
	stopOnce sync.Once
}

// ErrPortTaken says the cluster's port is used by a process that is not a
// server of this cluster (another cluster, another PostgreSQL).
var ErrPortTaken = errors.New("postgres cluster: port taken")

// ErrNoPostgresBinaries says no local PostgreSQL installation was found.
var ErrNoPostgresBinaries = errors.New("no PostgreSQL binaries found (looked for initdb and postgres in $PATH and /usr/lib/postgresql/*/bin); install PostgreSQL ≥ 14 or set DATABASE_URL")

// FindBinDir locates a directory holding initdb and postgres.
func FindBinDir(override string) (string, error) {
	if override != "" {
		return override, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	var dirs []string
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/opt/postgresql@*/bin", "/usr/pgsql-*/bin"} {
		m, _ := filepath.Glob(pattern)
		dirs = append(dirs, m...)
	}
	// Prefer the newest version.
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoPostgresBinaries
}

func versionOf(dir string) int {
	for _, part := range strings.Split(dir, string(filepath.Separator)) {
		part = strings.TrimPrefix(strings.TrimPrefix(part, "postgresql@"), "pgsql-")
		if n, err := strconv.Atoi(part); err == nil {
			return n
		}
	}
	return 0
}

// StartCluster initialises the cluster on first use and starts it. PostgreSQL
// refuses to run as root, so when the process is root the cluster runs as
// the "postgres" system user (or "nobody") and its directory is handed over.
//
// The caller owns Dir while the cluster runs: StartCluster locks it
// (cluster.lock), and a second StartCluster on the same Dir, in this process
// or another, fails with an error matching childproc.ErrLocked. The server
// gets SIGINT (a fast shutdown) when this process dies, however it dies; one
// still running from Dir when the lock is free is a leftover of an owner
// that crashed (or of a platform without a parent-death signal), and is
// stopped before the new server starts ([Cluster.StoppedLeftover]).
func StartCluster(ctx context.Context, cfg ClusterConfig) (c *Cluster, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("postgres cluster: Dir is required")
	}
	if cfg.Port == 0 {
		cfg.Port = 54329
	}
	if cfg.Database == "" {
		cfg.Database = "gpuaas"
	}
	bin, err := FindBinDir(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	dataDir, sockDir := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	for _, d := range []string{dir, sockDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	lock, err := childproc.LockFile(filepath.Join(dir, "cluster.lock"))
	if err != nil {
		return nil, fmt.Errorf("postgres cluster: %s is in use: %w", dir, err)
	}
	defer func() {
		if err != nil {
			_ = lock.Unlock()
		}
	}()
	c = &Cluster{cfg: cfg, lock: lock}
	if os.Geteuid() == 0 {
		cred, err := unprivileged()
		if err != nil {
			return nil, err
		}
		c.cred = cred
		if err := chownTree(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("postgres cluster: hand %s to uid %d: %w", dir, cred.Uid, err)
		}
		// The unprivileged user must be able to traverse to the directory.
		for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
			if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o001 == 0 {
				_ = os.Chmod(p, st.Mode().Perm()|0o001)
			}
		}
	}
	logf := cfg.Log
	if logf == nil {
		logf, err = os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		if c.cred != nil {
			_ = logf.Chown(int(c.cred.Uid), int(c.cred.Gid))
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		init := c.command(ctx, filepath.Join(bin, "initdb"), "-D", dataDir, "-U", "postgres",
			"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions")
		init.Stdout, init.Stderr = logf, logf
		if err := init.Run(); err != nil {
			return nil, fmt.Errorf("postgres cluster: initdb failed (see %s): %w", filepath.Join(dir, "postgres.log"), err)
		}
	}
	if c.leftover, err = stopLeftover(ctx, dataDir); err != nil {
		return nil, err
	}
	if err := portFree(cfg.Port); err != nil {
		return nil, fmt.Errorf("%w: 127.0.0.1:%d is used by a process that is not a server of %s (a cluster in another directory, or another PostgreSQL): %v",
			ErrPortTaken, cfg.Port, dataDir, err)
	}
	c.cmd = c.command(context.WithoutCancel(ctx), filepath.Join(bin, "postgres"), "-D", dataDir,
		"-h", "127.0.0.1", "-p", strconv.Itoa(cfg.Port), "-k", sockDir,
		"-c", "fsync=off", "-c", "max_connections=200", "-c", "TimeZone=UTC")
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Own process group: Ctrl-C in the terminal reaches gpuaas, which then
	// shuts the server down in order instead of it dying mid-write. If this
	// process dies first, the parent-death signal asks for a fast shutdown.
	c.cmd.SysProcAttr.Setpgid = true
	if c.done, err = childproc.Start(c.cmd, syscall.SIGINT); err != nil {
		return nil, fmt.Errorf("postgres cluster: start: %w", err)
	}
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", cfg.Port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, admin)
		if err == nil {
			var exists bool
			err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, cfg.Database).Scan(&exists)
			if err == nil && !exists {
				_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
			}
			conn.Close(ctx)
			if err != nil {
				c.Stop()
				return nil, fmt.Errorf("postgres cluster: create database: %w", err)
			}
			break
		}
		select {
		case err := <-c.done:
			return nil, fmt.Errorf("postgres cluster: server exited (see %s): %v", filepath.Join(dir, "postgres.log"), err)
		case <-ctx.Done():
			c.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Stop()
			return nil, fmt.Errorf("postgres cluster: not ready after 30s (see %s)", filepath.Join(dir, "postgres.log"))
		}
	}
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", cfg.Port, cfg.Database)
	return c, nil
}

// URL is the connection string of the platform database.
func (c *Cluster) URL() string { return c.url }

// StoppedLeftover is the process id of a server that an earlier owner of
// the directory left running and StartCluster stopped; 0 when there was none.
func (c *Cluster) StoppedLeftover() int { return c.leftover }

// Stop shuts the server down ("fast" mode: SIGINT), waits for it and
// releases the directory. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		if c.cmd != nil && c.cmd.Process != nil && c.done != nil {
			_ = c.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-c.done:
			case <-time.After(20 * time.Second):
				_ = c.cmd.Process.Kill()
				<-c.done
			}
		}
		_ = c.lock.Unlock()
	})
	return nil
}

// StopLeftoverCluster stops a server that a crashed owner of dir (a cluster
// directory of [StartCluster]) left running, and returns its process id (0
// when nothing was running). It fails, with an error matching
// childproc.ErrLocked, while a live process owns dir.
func StopLeftoverCluster(ctx context.Context, dir string) (int, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	lock, err := childproc.LockFile(filepath.Join(dir, "cluster.lock"))
	if err != nil {
		return 0, fmt.Errorf("postgres cluster: %s is in use: %w", dir, err)
	}
	defer lock.Unlock()
	return stopLeftover(ctx, filepath.Join(dir, "data"))
}

// stopLeftover stops the server postmaster.pid in dataDir names if it still
// runs and is a server of dataDir; the caller holds the directory's lock, so
// such a server belongs to an owner that is gone. A pid file naming an
// unrelated process (the pid was reused after a reboot or a crash) is
// removed: PostgreSQL would refuse to start over it.
func stopLeftover(ctx context.Context, dataDir string) (int, error) {
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	pid, err := childproc.ReadPIDFile(pidFile)
	if err != nil || pid == 0 || !childproc.Running(pid) {
		// Absent, unreadable or stale: PostgreSQL handles a stale file itself.
		return 0, nil
	}
	args, err := childproc.Cmdline(pid)
	if errors.Is(err, childproc.ErrNotRunning) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres cluster: %s names process %d, which could not be inspected: %w", pidFile, pid, err)
	}
	if !childproc.HasArgs(args, "-D", dataDir) {
		if err := os.Remove(pidFile); err != nil {
			return 0, fmt.Errorf("postgres cluster: remove stale %s: %w", pidFile, err)
		}
		return 0, nil
	}
	// Fast shutdown first (what the parent-death signal sent, if it did), then
	// immediate shutdown, then SIGKILL; the next start recovers from the WAL.
	if err := childproc.Stop(ctx, pid, 20*time.Second, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("postgres cluster: stop the server (pid %d) left running in %s: %w", pid, dataDir, err)
	}
	return pid, nil
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr.Credential = c.cred
		cmd.Dir = "/"
	}
	return cmd
}

func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("postgres cluster: running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}
