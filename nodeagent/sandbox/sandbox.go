package sandbox

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/nodeagent"
)

// Config configures the sandbox.
type Config struct {
	// Addr to listen on; must be a loopback address. Default 127.0.0.1:0.
	Addr string
	// Root holds the host key and the accounts' home directories.
	Root string
	// Shell runs sessions. Default /bin/sh.
	Shell string
	// Now tells the time for certificate validity. Default time.Now.
	Now func() time.Time
	// Logger. Default: discard.
	Logger *slog.Logger
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("sandbox: bad Addr: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("sandbox: Addr must be a loopback address")
	}
	if c.Root == "" {
		return errors.New("sandbox: Root is required")
	}
	if c.Shell == "" {
		c.Shell = "/bin/sh"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// account is one provisioned per-allocation account.
type account struct {
	name     string
	home     string
	keys     map[string]bool // ssh.PublicKey.Marshal() as string
	ca       ssh.PublicKey   // user CA trusted for this principal; nil: none
	conns    map[*ssh.ServerConn]bool
	procs    map[int]bool // process group ids of running sessions
	revoked  bool
	sessions sync.WaitGroup
}

// Server is the sandbox SSH server and the executor over it.
type Server struct {
	cfg     Config
	ln      net.Listener
	conf    *ssh.ServerConfig
	hostPub ssh.PublicKey

	mu       sync.Mutex
	accounts map[string]*account
	done     chan struct{}
	wg       sync.WaitGroup
}

var (
	_ nodeagent.Executor        = (*Server)(nil)
	_ nodeagent.HostKeyReporter = (*Server)(nil)
)

// New prepares the server (host key under Root, created once); Start listens.
func New(cfg Config) (*Server, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Root, "home"), 0o700); err != nil {
		return nil, err
	}
	signer, err := hostKey(filepath.Join(cfg.Root, "ssh_host_ed25519_key"))
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, accounts: map[string]*account{}, done: make(chan struct{}), hostPub: signer.PublicKey()}
	s.conf = &ssh.ServerConfig{PublicKeyCallback: s.authenticate, ServerVersion: "SSH-2.0-gpuaas-sandbox"}
	s.conf.AddHostKey(signer)
	return s, nil
}

func hostKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		blk, merr := ssh.MarshalPrivateKey(priv, "gpuaas sandbox host key")
		if merr != nil {
			return nil, merr
		}
		b = pem.EncodeToMemory(blk)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(b)
}

// Start listens and serves until Close.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	return nil
}

// Addr is the listening address (host:port).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// HostPublicKey is the server's host key, for clients to pin.
func (s *Server) HostPublicKey() ssh.PublicKey { return s.hostPub }

// SSHHostKey implements [nodeagent.HostKeyReporter]: the host key in
// authorized_keys format, which the agent reports in its heartbeats.
func (s *Server) SSHHostKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.hostPub)))
}

// Close stops listening, ends every session and waits for them.
func (s *Server) Close() error {
	close(s.done)
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	s.mu.Lock()
	for _, a := range s.accounts {
		s.killLocked(a)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// authenticate accepts a key listed for the account, or a user certificate
// from the account's trusted CA naming the account as principal. Anything
// else — unknown account, unknown key, another principal, expired — is
// refused.
func (s *Server) authenticate(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	s.mu.Lock()
	a := s.accounts[conn.User()]
	var ca ssh.PublicKey
	var known bool
	if a != nil && !a.revoked {
		ca = a.ca
		known = a.keys[string(key.Marshal())]
	}
	s.mu.Unlock()
	if a == nil {
		return nil, errors.New("unknown account")
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		if ca == nil {
			return nil, errors.New("no user CA is trusted for this account")
		}
		checker := &ssh.CertChecker{
			IsUserAuthority: func(auth ssh.PublicKey) bool { return bytes.Equal(auth.Marshal(), ca.Marshal()) },
			Clock:           s.cfg.Now,
		}
		if _, err := checker.Authenticate(conn, cert); err != nil {
			return nil, err
		}
		return &ssh.Permissions{Extensions: map[string]string{"account": conn.User()}}, nil
	}
	if !known {
		return nil, errors.New("key not authorized")
	}
	return &ssh.Permissions{Extensions: map[string]string{"account": conn.User()}}, nil
}

func (s *Server) serve(nc net.Conn) {
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.conf)
	if err != nil {
		nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	name := sc.Permissions.Extensions["account"]
	s.mu.Lock()
	a := s.accounts[name]
	if a == nil || a.revoked {
		s.mu.Unlock()
		sc.Close()
		return
	}
	a.conns[sc] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(a.conns, sc)
		s.mu.Unlock()
		sc.Close()
	}()
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions are offered")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		a.sessions.Add(1)
		go func() { defer a.sessions.Done(); s.session(a, ch, creqs) }()
	}
}

type ptyReq struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

type winChange struct{ Cols, Rows, Width, Height uint32 }

// session runs one shell or command for the account: with a pty when the
// client asked for one, with plain pipes otherwise.
func (s *Server) session(a *account, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var pr *ptyReq
	var tty *os.File
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			var p ptyReq
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			pr = &p
			_ = req.Reply(true, nil)
		case "window-change":
			var w winChange
			if ssh.Unmarshal(req.Payload, &w) == nil && tty != nil {
				_ = pty.Setsize(tty, &pty.Winsize{Cols: uint16(w.Cols), Rows: uint16(w.Rows)})
			}
		case "env":
			_ = req.Reply(true, nil) // accepted and ignored: the environment is fixed
		case "shell", "exec":
			var args []string
			if req.Type == "exec" {
				var e struct{ Command string }
				if err := ssh.Unmarshal(req.Payload, &e); err != nil {
					_ = req.Reply(false, nil)
					return
				}
				args = []string{"-c", e.Command}
			}
			_ = req.Reply(true, nil)
			status := s.run(a, ch, pr, args, &tty, reqs)
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

func (s *Server) command(a *account, args []string) *exec.Cmd {
	cmd := exec.Command(s.cfg.Shell, args...)
	cmd.Dir = a.home
	cmd.Env = []string{"HOME=" + a.home, "USER=" + a.name, "LOGNAME=" + a.name, "SHELL=" + s.cfg.Shell,
		"PATH=/usr/local/bin:/usr/bin:/bin", "TERM=xterm-256color", "LANG=C.UTF-8"}
	return cmd
}

// run starts the process, tracks its process group so RevokeUser can kill
// everything it spawned, and returns its exit status.
func (s *Server) run(a *account, ch ssh.Channel, pr *ptyReq, args []string, tty **os.File, reqs <-chan *ssh.Request) uint32 {
	cmd := s.command(a, args)
	var copyDone sync.WaitGroup
	if pr != nil {
		f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(pr.Cols), Rows: uint16(pr.Rows)})
		if err != nil {
			fmt.Fprintf(ch.Stderr(), "cannot start a shell: %v\r\n", err)
			return 127
		}
		*tty = f
		defer f.Close()
		go func() { _, _ = io.Copy(f, ch) }()
		copyDone.Add(1)
		go func() { defer copyDone.Done(); _, _ = io.Copy(ch, f) }()
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return 127
		}
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(ch.Stderr(), "cannot start a shell: %v\n", err)
			return 127
		}
		go func() { _, _ = io.Copy(stdin, ch); stdin.Close() }()
	}
	pgid := cmd.Process.Pid // Setsid (pty) or Setpgid: the child leads its group
	s.mu.Lock()
	if a.revoked {
		s.mu.Unlock()
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	} else {
		a.procs[pgid] = true
		s.mu.Unlock()
	}
	// Keep serving window changes while the process runs.
	go func() {
		for req := range reqs {
			if req.Type == "window-change" && *tty != nil {
				var w winChange
				if ssh.Unmarshal(req.Payload, &w) == nil {
					_ = pty.Setsize(*tty, &pty.Winsize{Cols: uint16(w.Cols), Rows: uint16(w.Rows)})
				}
			}
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}()
	err := cmd.Wait()
	if pr != nil {
		// The pty's output drains once the last process holding it exits.
		(*tty).Close()
	}
	copyDone.Wait()
	s.mu.Lock()
	delete(a.procs, pgid)
	s.mu.Unlock()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if code := ee.ExitCode(); code >= 0 {
			return uint32(code)
		}
		return 137
	default:
		return 127
	}
}

// ProvisionUser implements [nodeagent.Executor]: the account exists with
// exactly these keys and this CA afterwards (running it twice is harmless).
func (s *Server) ProvisionUser(_ context.Context, p nodetask.ProvisionUserParams) error {
	keys := map[string]bool{}
	for _, k := range p.AuthorizedKeys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			return fmt.Errorf("authorized key: %w", err)
		}
		keys[string(pk.Marshal())] = true
	}
	var ca ssh.PublicKey
	if p.UserCAKey != "" {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(p.UserCAKey))
		if err != nil {
			return fmt.Errorf("user CA key: %w", err)
		}
		ca = k
	}
	home, err := s.homeOf(p.Username)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[p.Username]
	if a == nil || a.revoked {
		a = &account{name: p.Username, home: home, conns: map[*ssh.ServerConn]bool{}, procs: map[int]bool{}}
		s.accounts[p.Username] = a
	}
	a.keys, a.ca = keys, ca
	s.cfg.Logger.Info("sandbox account provisioned", "account", p.Username, "keys", len(keys))
	return nil
}

// RevokeUser implements [nodeagent.Executor]: new logins are refused at
// once, every connection and process of the account is killed and its home
// directory is removed.
func (s *Server) RevokeUser(_ context.Context, p nodetask.RevokeUserParams) error {
	home, err := s.homeOf(p.Username)
	if err != nil {
		return err
	}
	s.mu.Lock()
	a := s.accounts[p.Username]
	if a != nil {
		a.revoked = true
		delete(s.accounts, p.Username)
		s.killLocked(a)
	}
	s.mu.Unlock()
	if a != nil {
		a.sessions.Wait()
	}
	if err := os.RemoveAll(home); err != nil {
		return err
	}
	s.cfg.Logger.Info("sandbox account revoked", "account", p.Username)
	return nil
}

func (s *Server) killLocked(a *account) {
	for pgid := range a.procs {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	for c := range a.conns {
		_ = c.Close()
	}
}

// homeOf is the account's home directory; the name is validated again so
// no path can escape Root even if a caller skipped ValidateParams.
func (s *Server) homeOf(name string) (string, error) {
	if !strings.HasPrefix(name, "ga_") || strings.ContainsAny(name, "/\\.") || len(name) > 32 {
		return "", fmt.Errorf("invalid account name %q", name)
	}
	return filepath.Join(s.cfg.Root, "home", name), nil
}

// Health implements [nodeagent.Executor].
func (s *Server) Health(context.Context) map[string]string {
	select {
	case <-s.done:
		return map[string]string{"sandbox_ssh": "stopped"}
	default:
	}
	if s.ln == nil {
		return map[string]string{"sandbox_ssh": "not listening"}
	}
	return map[string]string{"sandbox_ssh": "ok"}
}

// Accounts lists the provisioned accounts (for status output and tests).
func (s *Server) Accounts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.accounts))
	for n := range s.accounts {
		out = append(out, n)
	}
	return out
}
