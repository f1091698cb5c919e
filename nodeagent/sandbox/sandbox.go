package sandbox

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/terminal"
	"github.com/gpuaas/gpuaas/nodeagent"
	"github.com/gpuaas/gpuaas/nodeagent/procset"
	"github.com/gpuaas/gpuaas/nodeagent/termsession"
)

// Identities: who the accounts' processes run as.
const (
	// IdentityAuto switches to a real OS account per allocation when the
	// agent runs as root and the sandbox root is reachable by other users,
	// and runs as the agent's own user otherwise.
	IdentityAuto = "auto"
	// IdentityOSAccounts requires real OS accounts (root only).
	IdentityOSAccounts = "os-accounts"
	// IdentityAgent runs everything as the agent's own OS user.
	IdentityAgent = "agent"
)

// Config configures the sandbox.
type Config struct {
	// Addr to listen on; must be a loopback address. Default 127.0.0.1:0.
	Addr string
	// Root holds the host key, the accounts' state and their home
	// directories. Made absolute.
	Root string
	// Shell runs sessions. Default /bin/bash, else /bin/sh.
	Shell string
	// Identity is IdentityAuto (default), IdentityOSAccounts or
	// IdentityAgent.
	Identity string
	// CgroupBase is passed to procset (tests); "" detects, "-" disables.
	CgroupBase string
	// Sessions configures browser-terminal sessions (defaults: termsession).
	Sessions termsession.Config
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
	// A relative root would give accounts a relative HOME (`ls ~` fails).
	if c.Root, err = filepath.Abs(c.Root); err != nil {
		return fmt.Errorf("sandbox: Root: %w", err)
	}
	if c.Shell == "" {
		c.Shell = "/bin/sh"
		if _, err := os.Stat("/bin/bash"); err == nil {
			c.Shell = "/bin/bash"
		}
	}
	switch c.Identity {
	case "":
		c.Identity = IdentityAuto
	case IdentityAuto, IdentityAgent:
	case IdentityOSAccounts:
		if os.Geteuid() != 0 {
			return errors.New("sandbox: os-accounts identity needs root")
		}
	default:
		return fmt.Errorf("sandbox: unknown Identity %q", c.Identity)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Sessions.Logger == nil {
		c.Sessions.Logger = c.Logger
	}
	return nil
}

// account is one provisioned per-allocation account.
type account struct {
	state    accountState
	home     string
	keys     map[string]bool // ssh.PublicKey.Marshal() as string
	ca       ssh.PublicKey   // user CA trusted for this principal; nil: none
	conns    map[*ssh.ServerConn]bool
	revoked  bool
	sessions sync.WaitGroup
}

// accountState is what survives a restart of the sandbox (Root/accounts):
// an allocation stays reachable when `gpuaas dev` restarts.
type accountState struct {
	Name     string                 `json:"name"`
	Keys     []string               `json:"authorized_keys"`
	UserCA   string                 `json:"user_ca_key,omitempty"`
	Sessions nodetask.SessionPolicy `json:"sessions,omitzero"`
	// UID/GID of the OS account; -1 when the account runs as the agent.
	UID int `json:"uid"`
	GID int `json:"gid"`
}

// Server is the sandbox SSH server and the executor over it.
type Server struct {
	cfg     Config
	ln      net.Listener
	conf    *ssh.ServerConfig
	hostPub ssh.PublicKey
	procs   *procset.Tracker
	terms   *termsession.Manager
	users   osAccounts

	mu       sync.Mutex
	accounts map[string]*account
	done     chan struct{}
	wg       sync.WaitGroup
}

var (
	_ nodeagent.Executor        = (*Server)(nil)
	_ nodeagent.HostKeyReporter = (*Server)(nil)
)

// New prepares the server (host key under Root, created once), restores the
// accounts an earlier run provisioned and ends what an earlier run left of
// accounts it no longer has; Start listens.
func New(cfg Config) (*Server, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	// Parents it has to create are left passable (0755), so the accounts'
	// homes below can be reached when it switches users; its own
	// directories are private.
	if err := os.MkdirAll(filepath.Dir(cfg.Root), 0o755); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Root, filepath.Join(cfg.Root, "home"), filepath.Join(cfg.Root, "accounts")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	signer, err := hostKey(filepath.Join(cfg.Root, "ssh_host_ed25519_key"))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(cfg.Root))
	name := "gpuaas-sandbox-" + hex.EncodeToString(sum[:6])
	procs, err := procset.New(procset.Config{Name: name, CgroupBase: cfg.CgroupBase})
	if err != nil {
		return nil, err
	}
	terms, err := termsession.New(cfg.Sessions)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, accounts: map[string]*account{}, done: make(chan struct{}), hostPub: signer.PublicKey(),
		procs: procs, terms: terms, users: osAccounts{comment: "gpuaas sandbox " + name}}
	if s.users.enabled, err = s.chooseIdentity(); err != nil {
		return nil, err
	}
	s.conf = &ssh.ServerConfig{PublicKeyCallback: s.authenticate, ServerVersion: "SSH-2.0-gpuaas-sandbox"}
	s.conf.AddHostKey(signer)
	cfg.Logger.Info("sandbox node", "root", cfg.Root, "processes", procs.Mode(), "accounts", s.Identity())
	if procs.Mode() != procset.ModeCgroup {
		cfg.Logger.Info("sandbox: processes are tracked by an environment marker", "why", procs.Why())
	}
	if err := s.restore(); err != nil {
		return nil, err
	}
	return s, nil
}

// chooseIdentity decides whether accounts get real OS users.
func (s *Server) chooseIdentity() (bool, error) {
	if s.cfg.Identity == IdentityAgent {
		return false, nil
	}
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "the agent is not root"
	default:
		if _, err := exec.LookPath("useradd"); err != nil {
			why = "useradd is not installed"
		} else if err := traversable(s.cfg.Root); err != nil {
			why = err.Error()
		}
	}
	if why == "" {
		// Other users must reach their home through Root/home.
		for _, d := range []string{s.cfg.Root, filepath.Join(s.cfg.Root, "home")} {
			if err := os.Chmod(d, 0o711); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	if s.cfg.Identity == IdentityOSAccounts {
		return false, fmt.Errorf("sandbox: os-accounts identity impossible: %s", why)
	}
	s.cfg.Logger.Info("sandbox: shells run as the agent's own user", "why", why)
	return false, nil
}

// traversable checks that every directory above dir lets other users pass.
func traversable(dir string) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not reachable by other users (mode %v)", d, fi.Mode().Perm())
		}
		if d == "/" {
			return nil
		}
	}
}

// Identity says what the accounts' processes run as.
func (s *Server) Identity() string {
	if s.users.enabled {
		return "an OS user per allocation"
	}
	return "the agent's own OS user (" + currentUser() + ")"
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return fmt.Sprint(os.Geteuid())
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

// restore loads the provisioned accounts and ends the processes and OS
// users of accounts that are no longer provisioned (an earlier run died
// between killing and forgetting, or its state was wiped).
func (s *Server) restore() error {
	entries, err := os.ReadDir(filepath.Join(s.cfg.Root, "accounts"))
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || validName(name) != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.cfg.Root, "accounts", e.Name()))
		if err != nil {
			return err
		}
		var st accountState
		if err := json.Unmarshal(b, &st); err != nil || st.Name != name {
			s.cfg.Logger.Warn("sandbox: ignoring an unreadable account file", "file", e.Name())
			continue
		}
		a, err := newAccount(st, s.homeOf(name))
		if err != nil {
			s.cfg.Logger.Warn("sandbox: ignoring an account file", "file", e.Name(), "err", err)
			continue
		}
		s.accounts[name] = a
		known[name] = true
	}
	groups, err := s.procs.Groups()
	if err != nil {
		return err
	}
	leftovers := append(groups, s.users.list()...)
	for _, name := range leftovers {
		if known[name] || validName(name) != nil {
			continue
		}
		s.cfg.Logger.Info("sandbox: ending what an earlier run left of a revoked account", "account", name)
		if err := s.endAccount(context.Background(), name, 0); err != nil {
			s.cfg.Logger.Warn("sandbox: leftover account", "account", name, "err", err)
		}
	}
	return nil
}

func newAccount(st accountState, home string) (*account, error) {
	keys := map[string]bool{}
	for _, k := range st.Keys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			return nil, fmt.Errorf("authorized key: %w", err)
		}
		keys[string(pk.Marshal())] = true
	}
	var ca ssh.PublicKey
	if st.UserCA != "" {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(st.UserCA))
		if err != nil {
			return nil, fmt.Errorf("user CA key: %w", err)
		}
		ca = k
	}
	return &account{state: st, home: home, keys: keys, ca: ca, conns: map[*ssh.ServerConn]bool{}}, nil
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

// Close stops the node: it stops listening, closes every connection and
// terminal session and kills every process of every account, as a node
// powering off would. The accounts stay provisioned (Root/accounts): a
// sandbox started again on the same Root lets their users back in.
func (s *Server) Close() error {
	close(s.done)
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	s.terms.Close()
	s.mu.Lock()
	var groups []*procset.Group
	for name, a := range s.accounts {
		for c := range a.conns {
			_ = c.Close()
		}
		groups = append(groups, s.group(name, a.state.UID))
	}
	s.mu.Unlock()
	for _, g := range groups {
		if kerr := g.End(context.Background(), 0); kerr != nil {
			s.cfg.Logger.Warn("sandbox: processes survived the stop", "err", kerr)
		}
	}
	s.wg.Wait()
	s.procs.Close()
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
	a.sessions.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(a.conns, sc)
		s.mu.Unlock()
		sc.Close()
		a.sessions.Done()
	}()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions are offered")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); s.session(a, ch, creqs) }()
	}
}

type ptyReq struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

type winChange struct{ Cols, Rows, Width, Height uint32 }

// session runs one shell, command or browser-terminal session for the
// account: a shell or command with a pty when the client asked for one,
// with plain pipes otherwise.
func (s *Server) session(a *account, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var pr *ptyReq
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
		case "env":
			_ = req.Reply(true, nil) // accepted and ignored: the environment is fixed
		case "subsystem":
			var sub struct{ Name string }
			if ssh.Unmarshal(req.Payload, &sub) != nil || sub.Name != terminal.SessionSubsystem {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			go ssh.DiscardRequests(reqs)
			s.mu.Lock()
			pol := a.state.Sessions
			s.mu.Unlock()
			_ = s.terms.Serve(a.state.Name, pol, s.terminalShell(a), ch)
			return
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
			status := s.run(a, ch, pr, args, reqs)
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// command builds a process of the account: its identity, a login
// environment with an absolute HOME, its home as working directory.
func (s *Server) command(a *account, term string, args ...string) *exec.Cmd {
	cmd := exec.Command(s.cfg.Shell, args...)
	cmd.Dir = a.home
	if term == "" {
		term = "xterm-256color"
	}
	cmd.Env = []string{"HOME=" + a.home, "USER=" + a.state.Name, "LOGNAME=" + a.state.Name, "SHELL=" + s.cfg.Shell,
		"PATH=/usr/local/bin:/usr/bin:/bin", "TERM=" + term, "LANG=C.UTF-8"}
	if a.state.UID >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: uint32(a.state.UID), Gid: uint32(a.state.GID), Groups: []uint32{}}}
	}
	return cmd
}

// terminalShell starts browser-terminal shells: a login shell in the
// account's process group.
func (s *Server) terminalShell(a *account) termsession.Spawn {
	return func(sessionID, term string) (*exec.Cmd, func(), error) {
		cmd := s.command(a, term, "-l")
		done, err := s.group(a.state.Name, a.state.UID).Prepare(cmd)
		if err != nil {
			return nil, nil, err
		}
		return cmd, done, nil
	}
}

func (s *Server) group(name string, uid int) *procset.Group {
	g, err := s.procs.Group(name)
	if err != nil {
		panic(err) // names are validated before they get here
	}
	g.UID = uid
	return g
}

// run starts the process in the account's group and returns its exit
// status. When the channel closes (the client disconnected) the session is
// hung up as sshd does: the pty's master is closed (SIGHUP to the shell),
// or the process group gets SIGHUP. What ignores the hang-up runs on until
// the allocation is released.
func (s *Server) run(a *account, ch ssh.Channel, pr *ptyReq, args []string, reqs <-chan *ssh.Request) uint32 {
	term := ""
	if pr != nil {
		term = pr.Term
	}
	cmd := s.command(a, term, args...)
	g := s.group(a.state.Name, a.state.UID)
	done, err := g.Prepare(cmd)
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "cannot start a shell: %v\r\n", err)
		return 127
	}
	var copyDone sync.WaitGroup
	var tty *termsession.PTY
	if pr != nil {
		cols, rows := int(pr.Cols), int(pr.Rows)
		if cols < 1 || cols > terminal.MaxCols || rows < 1 || rows > terminal.MaxRows {
			cols, rows = 80, 24
		}
		tty, err = termsession.StartPTY(cmd, cols, rows)
		done()
		if err != nil {
			fmt.Fprintf(ch.Stderr(), "cannot start a shell: %v\r\n", err)
			return 127
		}
		defer tty.Close()
		go func() { _, _ = io.Copy(tty, ch) }()
		copyDone.Add(1)
		go func() { defer copyDone.Done(); _, _ = io.Copy(ch, tty) }()
	} else {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Setpgid = true
		stdin, err := cmd.StdinPipe()
		if err != nil {
			done()
			return 127
		}
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		err = cmd.Start()
		done()
		if err != nil {
			fmt.Fprintf(ch.Stderr(), "cannot start a shell: %v\n", err)
			return 127
		}
		go func() { _, _ = io.Copy(stdin, ch); stdin.Close() }()
	}
	exited := make(chan struct{})
	var hungUp atomic.Bool
	// Serve window changes while the process runs; the request stream ends
	// when the channel closes, which hangs the session up.
	go func() {
		for req := range reqs {
			if req.Type == "window-change" && tty != nil {
				var w winChange
				if ssh.Unmarshal(req.Payload, &w) == nil && w.Cols >= 1 && w.Cols <= terminal.MaxCols &&
					w.Rows >= 1 && w.Rows <= terminal.MaxRows {
					_ = tty.Resize(int(w.Cols), int(w.Rows))
				}
			}
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
		select {
		case <-exited:
		default:
			if tty != nil {
				// Marked before the close: the shell may exit of the
				// hang-up, and run read the mark, before this goroutine
				// runs again.
				hungUp.Store(true)
				_ = tty.Close()
				hangUpSession(g, cmd.Process.Pid)
			} else {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGHUP)
			}
		}
	}()
	err = cmd.Wait()
	close(exited)
	if tty != nil && (hungUp.Load() || killedBySignal(cmd)) {
		// A job the shell was starting as the line dropped (or as the shell
		// was killed) may have missed the kernel's hang-up and the shell's:
		// between fork and exec it still runs the shell's SIGHUP handler,
		// which swallows the signal. Now that the shell is gone everything
		// it started is in the group; what is left of the session with the
		// default SIGHUP action (a job that has since exec'd) is hung up
		// until none has been seen for three seconds (the group's listing
		// may not show a process at once), for at most a minute. What
		// ignores or catches SIGHUP had its one hang-up and is left alone.
		go func(sid int) {
			seen := time.Now()
			for end := seen.Add(time.Minute); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				if hangUpSessionDefault(g, sid) > 0 {
					seen = time.Now()
				} else if time.Since(seen) > 3*time.Second {
					return
				}
			}
		}(cmd.Process.Pid)
	}
	if tty != nil {
		// The output drains once the last process holding the terminal
		// exits; a background job may hold it, so the drain is bounded.
		_ = tty.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	}
	copyDone.Wait()
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

// killedBySignal reports whether the waited-for process ended by a signal.
func killedBySignal(cmd *exec.Cmd) bool {
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// hangUpSession sends SIGHUP (and SIGCONT, for stopped jobs) to every
// process of the group in the terminal session led by sid, as the hang-up
// of sshd's terminal reaches them: the kernel signals only the terminal's
// foreground process group and the shell forwards the hang-up to its jobs,
// so a job the shell was starting as the line dropped was missed by both
// (TestSandboxDisconnectHangsUp, about one run in ten under load). What ignores SIGHUP, or left the session
// (setsid, nohup), runs on until the allocation is released.
func hangUpSession(g *procset.Group, sid int) {
	for _, pid := range sessionPids(g, sid) {
		_ = syscall.Kill(pid, syscall.SIGHUP)
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
}

// hangUpSessionDefault hangs up the processes of the session whose SIGHUP
// action is the default (they end of it), and returns how many there were
// or may be: a process whose action cannot be read counts, so the caller
// looks again.
func hangUpSessionDefault(g *procset.Group, sid int) int {
	n := 0
	for _, pid := range sessionPids(g, sid) {
		ign, cgt, ok := sighupDisposition(pid)
		if ok && (ign || cgt) {
			continue
		}
		n++
		_ = syscall.Kill(pid, syscall.SIGHUP)
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	return n
}

// sessionPids lists the group's processes in the session led by sid.
func sessionPids(g *procset.Group, sid int) []int {
	pids, err := g.Pids()
	if err != nil {
		return nil
	}
	out := pids[:0]
	for _, pid := range pids {
		if got, err := unix.Getsid(pid); err == nil && got == sid {
			out = append(out, pid)
		}
	}
	return out
}

// sighupDisposition reads whether a process ignores or catches SIGHUP
// (/proc/<pid>/status: SigIgn and SigCgt, bit 0 is signal 1).
func sighupDisposition(pid int) (ignored, caught, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false, false, false
	}
	var gotIgn, gotCgt bool
	for _, line := range strings.Split(string(b), "\n") {
		k, v, found := strings.Cut(line, ":")
		if !found || (k != "SigIgn" && k != "SigCgt") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return false, false, false
		}
		if k == "SigIgn" {
			ignored, gotIgn = mask&1 != 0, true
		} else {
			caught, gotCgt = mask&1 != 0, true
		}
	}
	return ignored, caught, gotIgn && gotCgt
}

// ProvisionUser implements [nodeagent.Executor]: the account exists with
// exactly these keys, this CA and this session policy afterwards (running
// it twice is harmless). As root, the account is a real OS user.
func (s *Server) ProvisionUser(_ context.Context, p nodetask.ProvisionUserParams) error {
	if err := validName(p.Username); err != nil {
		return err
	}
	home := s.homeOf(p.Username)
	st := accountState{Name: p.Username, Keys: p.AuthorizedKeys, UserCA: p.UserCAKey, Sessions: p.Sessions, UID: -1, GID: -1}
	a, err := newAccount(st, home)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	if s.users.enabled {
		uid, gid, err := s.users.ensure(p.Username, home, s.cfg.Shell)
		if err != nil {
			return err
		}
		if err := os.Chown(home, uid, gid); err != nil {
			return err
		}
		a.state.UID, a.state.GID = uid, gid
	}
	if err := s.save(a.state); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.accounts[p.Username]; old != nil && !old.revoked {
		old.state, old.keys, old.ca = a.state, a.keys, a.ca
	} else {
		s.accounts[p.Username] = a
	}
	s.cfg.Logger.Info("sandbox account provisioned", "account", p.Username, "keys", len(a.keys), "uid", a.state.UID)
	return nil
}

// save writes the account's state atomically.
func (s *Server) save(st accountState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	path := filepath.Join(s.cfg.Root, "accounts", st.Name+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// StopUser implements [nodeagent.Executor]: new logins are refused at once,
// terminal sessions and connections are closed and every process of the
// account is ended (SIGTERM, the grace period, SIGKILL); the account and its
// home stay for a revoke to remove (after files were pushed back).
func (s *Server) StopUser(ctx context.Context, p nodetask.StopUserParams) error {
	if err := validName(p.Username); err != nil {
		return err
	}
	s.mu.Lock()
	a := s.accounts[p.Username]
	if a != nil {
		a.revoked = true // refused from now on; RevokeUser removes it
	}
	s.mu.Unlock()
	s.terms.EndAccount(p.Username)
	if a != nil {
		s.mu.Lock()
		for c := range a.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
	}
	uid := -1
	if s.users.enabled {
		uid = s.users.uidOf(p.Username)
	}
	if err := s.group(p.Username, uid).End(ctx, time.Duration(p.GraceSeconds)*time.Second); err != nil {
		return err
	}
	s.cfg.Logger.Info("sandbox account stopped", "account", p.Username)
	return nil
}

// RevokeUser implements [nodeagent.Executor]: new logins are refused at
// once, connections and terminal sessions are closed, every process of the
// account gets SIGTERM and, after the grace period, SIGKILL; then the OS
// user, the home directory and the account's state are removed. It fails
// (and a retry picks up) when a process survives.
func (s *Server) RevokeUser(ctx context.Context, p nodetask.RevokeUserParams) error {
	if err := validName(p.Username); err != nil {
		return err
	}
	s.mu.Lock()
	a := s.accounts[p.Username]
	if a != nil {
		a.revoked = true
		delete(s.accounts, p.Username)
	}
	s.mu.Unlock()
	// Terminal sessions first, so their browsers are told why (close 4002)
	// before the connections carrying them are cut.
	s.terms.EndAccount(p.Username)
	if a != nil {
		s.mu.Lock()
		for c := range a.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
	}
	if err := s.endAccount(ctx, p.Username, time.Duration(p.GraceSeconds)*time.Second); err != nil {
		return err
	}
	if a != nil {
		// Connections are closed and their processes dead: their
		// goroutines end promptly.
		waited := make(chan struct{})
		go func() { a.sessions.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			s.cfg.Logger.Warn("sandbox: sessions still closing after revoke", "account", p.Username)
		}
	}
	s.cfg.Logger.Info("sandbox account revoked", "account", p.Username)
	return nil
}

// endAccount ends the terminal sessions and processes of an account and
// removes its OS user, home and state. Safe to repeat.
func (s *Server) endAccount(ctx context.Context, name string, grace time.Duration) error {
	s.terms.EndAccount(name)
	uid := -1
	if s.users.enabled {
		uid = s.users.uidOf(name)
	}
	if err := s.group(name, uid).End(ctx, grace); err != nil {
		return err
	}
	if s.users.enabled {
		if err := s.users.remove(name); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(s.homeOf(name)); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(s.cfg.Root, "accounts", name+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// validName checks an account name again so no path can escape Root even
// if a caller skipped ValidateParams.
func validName(name string) error {
	if !strings.HasPrefix(name, "ga_") || strings.ContainsAny(name, "/\\.") || len(name) > 32 {
		return fmt.Errorf("invalid account name %q", name)
	}
	return nil
}

func (s *Server) homeOf(name string) string { return filepath.Join(s.cfg.Root, "home", name) }

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

// Processes lists the live processes of an account (tests, status).
func (s *Server) Processes(name string) ([]int, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	uid := -1
	if s.users.enabled {
		uid = s.users.uidOf(name)
	}
	return s.group(name, uid).Pids()
}

// TerminalSessions lists an account's browser-terminal sessions.
func (s *Server) TerminalSessions(name string) []termsession.Info { return s.terms.Sessions(name) }
