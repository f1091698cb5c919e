// Package termsession keeps browser-terminal sessions on a node: a shell on
// a pseudo-terminal that outlives the connection it was opened on. When the
// browser (and so the gateway's SSH channel) goes away the session is kept,
// with the last ReplayBytes of its output, for a reconnect window; a
// reconnect with the same session id attaches to it again and replays that
// output. When the window passes, the terminal is hung up as sshd does on a
// lost connection, and the shell and its foreground job are killed if the
// hang-up did not end them. The protocol is
// core/terminal's session frames (doc/terminal.md#sessions).
//
// Executors own the Manager: the sandbox serves it on its embedded SSH
// server's subsystem, the Linux executor on a local socket that the
// subsystem command (gpuaas-agent terminal-attach) connects to.
package termsession

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/terminal"
)

// Config configures a Manager. Zero values take the defaults; a session
// policy sent with the account (nodetask.SessionPolicy) overrides Window
// and MaxSessions per account.
type Config struct {
	// Window a detached session is kept for a reconnect. Default 5 minutes.
	Window time.Duration
	// MaxSessions per account, attached or detached. Default 8.
	MaxSessions int
	// ReplayBytes of recent output replayed on a resume. Default 64 KiB.
	ReplayBytes int
	// HelloTimeout bounds the wait for a client's hello. Default 10s.
	HelloTimeout time.Duration
	// HangupGrace is how long a hung-up session's processes get before
	// SIGKILL. Default 2s.
	HangupGrace time.Duration
	// Logger. Default: discard.
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultWindow      = 5 * time.Minute
	DefaultMaxSessions = 8
	DefaultReplayBytes = 64 << 10
)

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if c.Window < 0 || c.MaxSessions < 0 || c.ReplayBytes < 0 || c.HelloTimeout < 0 || c.HangupGrace < 0 {
		return errors.New("termsession: negative values are not allowed")
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.ReplayBytes == 0 {
		c.ReplayBytes = DefaultReplayBytes
	}
	if c.HelloTimeout == 0 {
		c.HelloTimeout = 10 * time.Second
	}
	if c.HangupGrace == 0 {
		c.HangupGrace = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Spawn builds the shell of a new session of the account: a command not
// yet started (identity, environment, working directory, process group
// already set), and a function to call once it was started (or failed to).
type Spawn func(sessionID string, term string) (cmd *exec.Cmd, started func(), err error)

// Manager holds the sessions of every account of one node.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session // account + "/" + id
	closed   bool
}

// New builds a Manager.
func New(cfg Config) (*Manager, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, log: cfg.Logger, sessions: map[string]*session{}}, nil
}

// Info describes a live session.
type Info struct {
	ID       string
	Account  string
	Attached bool
	PID      int
}

// Sessions lists the live sessions of an account ("" for all).
func (m *Manager) Sessions(account string) []Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Info
	for _, s := range m.sessions {
		if account != "" && s.account != account {
			continue
		}
		s.mu.Lock()
		out = append(out, Info{ID: s.id, Account: s.account, Attached: s.client != nil, PID: s.cmd.Process.Pid})
		s.mu.Unlock()
	}
	return out
}

// Serve runs one client connection: it reads the hello, starts or resumes
// the session, and relays until the client goes away (the session is
// detached and kept for the window) or the shell ends (the client gets
// FrameExit). conn is closed when Serve returns.
func (m *Manager) Serve(account string, pol nodetask.SessionPolicy, spawn Spawn, conn io.ReadWriteCloser) error {
	defer conn.Close()
	c := &client{conn: conn}
	fr := terminal.NewFrameReader(conn)
	hello, err := m.readHello(fr, conn)
	if err != nil {
		c.refuse(terminal.CodeSessionBadHello, err.Error())
		return err
	}
	window, max := m.cfg.Window, m.cfg.MaxSessions
	if pol.ReconnectWindowSeconds > 0 {
		window = time.Duration(pol.ReconnectWindowSeconds) * time.Second
	}
	if pol.MaxSessions > 0 {
		max = pol.MaxSessions
	}
	s, resumed, werr := m.open(account, hello, window, max, spawn)
	if werr != nil {
		c.refuse(werr.Code, werr.Message)
		return werr
	}
	s.attach(c, resumed)
	// Input from the client until it goes away.
	for {
		typ, p, err := fr.Next()
		if err != nil {
			s.detach(c)
			return nil
		}
		switch typ {
		case terminal.FrameData:
			if _, err := s.pty.Write(p); err != nil {
				s.detach(c)
				return nil
			}
		case terminal.FrameResize:
			var sz terminal.Size
			if json.Unmarshal(p, &sz) == nil && sz.Valid() {
				_ = s.pty.Resize(sz.Cols, sz.Rows)
			}
		}
	}
}

// readHello waits for the client's first frame, at most HelloTimeout.
func (m *Manager) readHello(fr *terminal.FrameReader, conn io.Closer) (terminal.Hello, error) {
	t := time.AfterFunc(m.cfg.HelloTimeout, func() { _ = conn.Close() })
	defer t.Stop()
	typ, p, err := fr.Next()
	if err != nil {
		return terminal.Hello{}, fmt.Errorf("no hello: %w", err)
	}
	if typ != terminal.FrameHello {
		return terminal.Hello{}, errors.New("the first frame must be a hello")
	}
	var h terminal.Hello
	if err := json.Unmarshal(p, &h); err != nil {
		return terminal.Hello{}, errors.New("the hello is not JSON")
	}
	if err := h.Validate(); err != nil {
		return terminal.Hello{}, err
	}
	return h, nil
}

// open finds the session to resume or starts a new one.
func (m *Manager) open(account string, h terminal.Hello, window time.Duration, max int, spawn Spawn) (*session, bool, *terminal.WireError) {
	key := account + "/" + h.SessionID
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, false, &terminal.WireError{Code: terminal.CodeSessionUnavailable, Message: "the node is shutting down"}
	}
	if s := m.sessions[key]; s != nil {
		if h.Mode == terminal.ModeNew {
			return nil, false, &terminal.WireError{Code: terminal.CodeSessionExists, Message: "a session with this id exists"}
		}
		return s, true, nil
	}
	if h.Mode == terminal.ModeResume {
		return nil, false, &terminal.WireError{Code: terminal.CodeSessionEnded,
			Message: "the terminal session has ended (its shell exited or it waited longer than the reconnect window)"}
	}
	n := 0
	for _, s := range m.sessions {
		if s.account == account {
			n++
		}
	}
	if n >= max {
		return nil, false, &terminal.WireError{Code: terminal.CodeSessionLimit,
			Message: fmt.Sprintf("this allocation already has %d terminal sessions; close one first", n)}
	}
	cmd, started, err := spawn(h.SessionID, h.Term)
	if err != nil {
		m.log.Warn("terminal session: cannot build the shell", "account", account, "err", err)
		return nil, false, &terminal.WireError{Code: terminal.CodeSessionUnavailable, Message: "the shell could not be started"}
	}
	p, err := StartPTY(cmd, h.Cols, h.Rows)
	if started != nil {
		started()
	}
	if err != nil {
		m.log.Warn("terminal session: cannot start the shell", "account", account, "err", err)
		return nil, false, &terminal.WireError{Code: terminal.CodeSessionUnavailable, Message: "the shell could not be started"}
	}
	s := &session{m: m, key: key, id: h.SessionID, account: account, cmd: cmd, pty: p, window: window,
		ring: newRing(m.cfg.ReplayBytes), exited: make(chan struct{})}
	m.sessions[key] = s
	go s.run()
	m.log.Info("terminal session started", "account", account, "session_id", h.SessionID, "pid", cmd.Process.Pid)
	return s, false, nil
}

func (m *Manager) forget(s *session) {
	m.mu.Lock()
	if m.sessions[s.key] == s {
		delete(m.sessions, s.key)
	}
	m.mu.Unlock()
}

// EndAccount ends every session of the account at once (the allocation is
// being released): attached clients are told, terminals hung up and their
// processes killed. It returns when the shells have exited.
func (m *Manager) EndAccount(account string) {
	m.mu.Lock()
	var ss []*session
	for _, s := range m.sessions {
		if s.account == account {
			ss = append(ss, s)
		}
	}
	m.mu.Unlock()
	m.endAll(ss, "the allocation is being released")
}

// Close ends every session and refuses new ones.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	ss := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		ss = append(ss, s)
	}
	m.mu.Unlock()
	m.endAll(ss, "the node agent is stopping")
}

func (m *Manager) endAll(ss []*session, why string) {
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() { defer wg.Done(); s.end(why) }()
	}
	wg.Wait()
}

// client is one connection attached to a session.
type client struct {
	conn io.ReadWriteCloser
	wmu  sync.Mutex // frames are written whole, in order
	gone bool       // a write failed or the session let it go (under wmu)
}

func (c *client) write(typ byte, p []byte) {
	if c.gone {
		return
	}
	for len(p) > terminal.MaxFramePayload {
		c.write(typ, p[:terminal.MaxFramePayload])
		p = p[terminal.MaxFramePayload:]
	}
	if err := terminal.WriteFrame(c.conn, typ, p); err != nil {
		c.gone = true
		_ = c.conn.Close()
	}
}

func (c *client) writeJSON(typ byte, v any) {
	b, _ := json.Marshal(v)
	c.write(typ, b)
}

// refuse answers a hello that cannot be served.
func (c *client) refuse(code, msg string) {
	c.wmu.Lock()
	c.writeJSON(terminal.FrameError, terminal.WireError{Code: code, Message: msg})
	c.wmu.Unlock()
}

// session is one shell on one pty.
type session struct {
	m       *Manager
	key     string
	id      string
	account string
	cmd     *exec.Cmd
	pty     *PTY
	window  time.Duration

	mu     sync.Mutex
	ring   *ring
	client *client
	timer  *time.Timer // reconnect window while detached
	ended  bool

	exited chan struct{} // closed when the shell was reaped
	status int
}

// run pumps the terminal's output to the ring and the attached client,
// and ends the session when the shell exits.
func (s *session) run() {
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		buf := make([]byte, 32<<10)
		for {
			n, err := s.pty.Read(buf)
			if n > 0 {
				s.output(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	err := s.cmd.Wait()
	s.status = exitStatus(err)
	close(s.exited)
	// The shell is gone; whatever it printed last is still in the pty.
	// Background jobs may hold the terminal open, so the drain is bounded.
	_ = s.pty.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	<-pumped
	s.finish(terminal.FrameExit, terminal.Exit{Status: s.status})
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	default:
		return 255
	}
}

// output records terminal output and forwards it. The client's write lock
// is taken before the session lock is released, so output reaches the
// client in ring order even when an attach replays concurrently.
func (s *session) output(p []byte) {
	s.mu.Lock()
	s.ring.Write(p)
	c := s.client
	if c == nil {
		s.mu.Unlock()
		return
	}
	c.wmu.Lock()
	s.mu.Unlock()
	c.write(terminal.FrameData, p)
	failed := c.gone
	c.wmu.Unlock()
	if failed {
		s.detach(c)
	}
}

// attach makes c the session's client, telling a previous one it lost it,
// and replays the recent output when resuming.
func (s *session) attach(c *client, resumed bool) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		c.refuse(terminal.CodeSessionEnded, "the terminal session has ended")
		return
	}
	prev := s.client
	s.client = c
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	var replay []byte
	if resumed {
		replay = s.ring.Bytes()
	}
	c.wmu.Lock()
	s.mu.Unlock()
	c.writeJSON(terminal.FrameAttached, terminal.Attached{SessionID: s.id, Resumed: resumed})
	if len(replay) > 0 {
		c.write(terminal.FrameData, replay)
	}
	c.wmu.Unlock()
	if prev != nil {
		prev.wmu.Lock()
		prev.writeJSON(terminal.FrameError, terminal.WireError{Code: terminal.CodeSessionTakenOver,
			Message: "this terminal session was opened somewhere else"})
		prev.gone = true
		prev.wmu.Unlock()
		_ = prev.conn.Close()
	}
	s.m.log.Info("terminal session attached", "account", s.account, "session_id", s.id, "resumed", resumed)
}

// detach lets c go; if it was the session's client, the reconnect window
// starts.
func (s *session) detach(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != c || s.ended {
		return
	}
	s.client = nil
	s.timer = time.AfterFunc(s.window, func() { s.expire() })
	s.m.log.Info("terminal session detached; kept for a reconnect", "account", s.account, "session_id", s.id,
		"window", s.window)
}

// expire ends a session still detached when its window passed.
func (s *session) expire() {
	s.mu.Lock()
	detached := s.client == nil && !s.ended
	s.mu.Unlock()
	if detached {
		s.end("the reconnect window passed")
	}
}

// end hangs the terminal up, as sshd does when its client is gone: the
// kernel sends SIGHUP to the shell and the terminal's foreground job. If
// either is still there after the grace, it is killed: after end the shell
// and its terminal are gone. Processes that ignore the hang-up in the
// background (nohup) or left the session (setsid) keep running as they
// would after an SSH disconnect; they end with the allocation.
func (s *session) end(why string) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		<-s.exited
		return
	}
	s.ended = true
	if s.timer != nil {
		s.timer.Stop()
	}
	c := s.client
	s.client = nil
	s.mu.Unlock()
	if c != nil {
		c.wmu.Lock()
		c.writeJSON(terminal.FrameError, terminal.WireError{Code: terminal.CodeSessionEnded, Message: why})
		c.gone = true
		c.wmu.Unlock()
		_ = c.conn.Close()
	}
	fg := s.pty.foreground()
	_ = s.pty.Close()
	select {
	case <-s.exited:
	case <-time.After(s.m.cfg.HangupGrace):
	}
	shell := s.cmd.Process.Pid
	_ = syscall.Kill(-shell, syscall.SIGKILL) // the shell leads its own process group
	if fg > 0 && fg != shell {
		_ = syscall.Kill(-fg, syscall.SIGKILL)
	}
	<-s.exited
	s.m.log.Info("terminal session ended", "account", s.account, "session_id", s.id, "reason", why)
	s.m.forget(s)
}

// finish runs after the shell exited by itself: the client learns the exit
// status and the session is gone.
func (s *session) finish(typ byte, v any) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		_ = s.pty.Close()
		return
	}
	s.ended = true
	if s.timer != nil {
		s.timer.Stop()
	}
	c := s.client
	s.client = nil
	s.mu.Unlock()
	_ = s.pty.Close()
	if c != nil {
		c.wmu.Lock()
		c.writeJSON(typ, v)
		c.gone = true
		c.wmu.Unlock()
		_ = c.conn.Close()
	}
	s.m.forget(s)
	s.m.log.Info("terminal session exited", "account", s.account, "session_id", s.id, "status", s.status)
}

// ring keeps the last n bytes written.
type ring struct {
	buf  []byte
	n    int
	full bool
	at   int
}

func newRing(n int) *ring { return &ring{buf: make([]byte, n), n: n} }

func (r *ring) Write(p []byte) {
	if len(p) >= r.n {
		copy(r.buf, p[len(p)-r.n:])
		r.at, r.full = 0, true
		return
	}
	k := copy(r.buf[r.at:], p)
	if k < len(p) {
		copy(r.buf, p[k:])
		r.full = true
	}
	r.at = (r.at + len(p)) % r.n
	if r.at == 0 && len(p) > 0 {
		r.full = true
	}
}

// Bytes returns a copy of what the ring holds, oldest first.
func (r *ring) Bytes() []byte {
	if !r.full {
		return append([]byte(nil), r.buf[:r.at]...)
	}
	out := make([]byte, 0, r.n)
	out = append(out, r.buf[r.at:]...)
	return append(out, r.buf[:r.at]...)
}
