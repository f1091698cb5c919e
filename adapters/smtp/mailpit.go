package smtp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gpuaas/gpuaas/adapters/childproc"
)

// MailpitVersion is the release `make tools` installs.
const MailpitVersion = "v1.33.1"

// ErrMailpitNotFound says mailpit is not installed (`make tools`).
var ErrMailpitNotFound = errors.New("smtp: mailpit was not found on PATH or in $GOPATH/bin (run `make tools`)")

// LocateMailpit finds mailpit on PATH, else in $GOPATH/bin.
func LocateMailpit() (string, error) {
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p, nil
	}
	if build.Default.GOPATH != "" {
		p := filepath.Join(build.Default.GOPATH, "bin", "mailpit")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrMailpitNotFound
}

// MailpitConfig configures a mailpit child process: an SMTP server that
// keeps every message and shows it in a web inbox with an HTTP API. It
// listens on 127.0.0.1 only.
type MailpitConfig struct {
	// Dir holds its database, log, pid file and the owner's lock. Required.
	Dir string
	// Binary is the mailpit executable; default LocateMailpit().
	Binary string
	// SMTPPort and HTTPPort on 127.0.0.1; 0 picks free ones.
	SMTPPort, HTTPPort int
	// ReadyTimeout bounds the wait for it to answer; default 30 s.
	ReadyTimeout time.Duration
}

// Mailpit is a running mailpit.
type Mailpit struct {
	cfg      MailpitConfig
	smtpAddr string
	httpURL  string
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
	lock     *childproc.Lock
	leftover int
}

const (
	mailpitLock = "mailpit.lock"
	mailpitPID  = "mailpit.pid"
	mailpitLog  = "mailpit.log"
	mailpitDB   = "mailpit.db"
)

// StartMailpit starts mailpit on cfg.Dir and waits until it answers. Like
// the other children of `gpuaas dev`: the caller owns Dir while it runs,
// mailpit dies with this process, and one a crashed owner left running is
// stopped first.
func StartMailpit(ctx context.Context, cfg MailpitConfig) (_ *Mailpit, err error) {
	if cfg.Dir == "" {
		return nil, errors.New("smtp: mailpit needs a Dir")
	}
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, err
	}
	if cfg.Binary == "" {
		if cfg.Binary, err = LocateMailpit(); err != nil {
			return nil, err
		}
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	lock, err := childproc.LockFile(filepath.Join(cfg.Dir, mailpitLock))
	if err != nil {
		return nil, fmt.Errorf("smtp: mailpit dir %s is in use: %w", cfg.Dir, err)
	}
	defer func() {
		if err != nil {
			_ = lock.Unlock()
		}
	}()
	leftover, err := stopLeftoverMailpit(ctx, cfg.Dir)
	if err != nil {
		return nil, err
	}
	for _, p := range []*int{&cfg.SMTPPort, &cfg.HTTPPort} {
		if *p == 0 {
			if *p, err = freePort(); err != nil {
				return nil, err
			}
		}
	}
	smtpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.SMTPPort))
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.HTTPPort))
	cmd := exec.Command(cfg.Binary, "--smtp", smtpAddr, "--listen", httpAddr, "--database", filepath.Join(cfg.Dir, mailpitDB),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--disable-version-check", "--quiet",
		"--log-file", filepath.Join(cfg.Dir, mailpitLog))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	done, err := childproc.Start(cmd, syscall.SIGTERM)
	if err != nil {
		return nil, fmt.Errorf("smtp: starting %s: %w", cfg.Binary, err)
	}
	m := &Mailpit{cfg: cfg, smtpAddr: smtpAddr, httpURL: "http://" + httpAddr, cmd: cmd, exited: make(chan struct{}),
		lock: lock, leftover: leftover}
	go func() { m.waitErr = <-done; close(m.exited) }()
	if err := childproc.WritePIDFile(filepath.Join(cfg.Dir, mailpitPID), cmd.Process.Pid); err != nil {
		m.Stop(context.Background())
		return nil, err
	}
	if err := m.waitReady(ctx); err != nil {
		m.Stop(context.Background())
		return nil, err
	}
	return m, nil
}

func stopLeftoverMailpit(ctx context.Context, dir string) (int, error) {
	pidFile := filepath.Join(dir, mailpitPID)
	pid, err := childproc.ReadPIDFile(pidFile)
	if err != nil || pid == 0 || !childproc.Running(pid) {
		return 0, nil
	}
	args, err := childproc.Cmdline(pid)
	if err != nil || !childproc.HasArgs(args, "--database", filepath.Join(dir, mailpitDB)) {
		return 0, nil // gone, or the pid was reused by an unrelated process
	}
	if err := childproc.Stop(ctx, pid, 10*time.Second, syscall.SIGTERM, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("smtp: stop the mailpit (pid %d) left running in %s: %w", pid, dir, err)
	}
	_ = os.Remove(pidFile)
	return pid, nil
}

func (m *Mailpit) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := m.Messages(ctx); err == nil {
			if c, err := net.DialTimeout("tcp", m.smtpAddr, time.Second); err == nil {
				_ = c.Close()
				return nil
			}
		}
		select {
		case <-m.exited:
			return fmt.Errorf("smtp: mailpit exited during start: %v", m.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("smtp: mailpit not ready at %s: %w", m.httpURL, ctx.Err())
		case <-tick.C:
		}
	}
}

// SMTPHost and SMTPPort are where it accepts mail (no TLS, any or no auth).
func (m *Mailpit) SMTPHost() string { return "127.0.0.1" }

// SMTPPort is its SMTP port.
func (m *Mailpit) SMTPPort() int { return m.cfg.SMTPPort }

// WebURL is its web inbox (and API root).
func (m *Mailpit) WebURL() string { return m.httpURL }

// StoppedLeftover is the pid of a mailpit a crashed owner left running
// and this start stopped; 0 when there was none.
func (m *Mailpit) StoppedLeftover() int { return m.leftover }

// Stop ends mailpit (SIGTERM, SIGKILL after 10 s) and releases Dir.
func (m *Mailpit) Stop(ctx context.Context) {
	m.stopOnce.Do(func() {
		defer func() {
			_ = os.Remove(filepath.Join(m.cfg.Dir, mailpitPID))
			_ = m.lock.Unlock()
		}()
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-m.exited:
		case <-ctx.Done():
			_ = m.cmd.Process.Kill()
			<-m.exited
		case <-t.C:
			_ = m.cmd.Process.Kill()
			<-m.exited
		}
	})
}

// CapturedMessage is a message as mailpit's API lists it.
type CapturedMessage struct {
	ID        string `json:"ID"`
	MessageID string `json:"MessageID"`
	Subject   string `json:"Subject"`
	To        []struct {
		Address string `json:"Address"`
	} `json:"To"`
}

// Messages lists the captured messages (newest first, up to 1000) through
// mailpit's API (GET /api/v1/messages).
func (m *Mailpit) Messages(ctx context.Context) ([]CapturedMessage, error) {
	return ListMailpit(ctx, m.httpURL)
}

// ListMailpit lists the messages of the mailpit at baseURL.
func ListMailpit(ctx context.Context, baseURL string) ([]CapturedMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/v1/messages?"+url.Values{"limit": {"1000"}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("smtp: mailpit answered %s", resp.Status)
	}
	var out struct {
		Messages []CapturedMessage `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out.Messages, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("smtp: no free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
