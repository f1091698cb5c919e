package terminalhost

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/terminal"
)

// Initial pty size until the browser sends its first resize.
const (
	initialCols = 80
	initialRows = 24
	// relayBuffer is the read size of the node → browser pump: large enough
	// that bulk output goes in few frames, small enough to stay interactive.
	relayBuffer = 32 << 10
	// closeGrace is how long the gateway waits for the browser to answer a
	// close frame before dropping the connection.
	closeGrace = 2 * time.Second
)

// upstream is an SSH connection to a node with a shell on a pty.
type upstream struct {
	client *ssh.Client
	sess   *ssh.Session
	stdin  io.WriteCloser
	stdout io.Reader
	stderr io.Reader
}

func (u *upstream) close() {
	_ = u.sess.Close()
	_ = u.client.Close()
}

// dialNode opens the SSH session for a grant. The key pair is generated
// here, certified for the grant's account for CertTTL and kept only in this
// function's memory: nothing is stored and nothing is logged, so the
// credential dies with the handshake.
func (s *Server) dialNode(ctx context.Context, g terminal.Grant) (*upstream, error) {
	node, err := s.d.Nodes.GetNode(ctx, g.NodeID)
	if err != nil {
		return nil, fmt.Errorf("look up node: %w", err)
	}
	if node.SSHHost == "" || node.SSHPort < 1 || node.SSHPort > 65535 {
		return nil, errors.New("node has no SSH endpoint")
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate session key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	certText, err := s.d.CA.SignUserKey(ctx, string(ssh.MarshalAuthorizedKey(sshPub)), g.SSHUser, s.cfg.CertTTL)
	if err != nil {
		return nil, fmt.Errorf("certify session key: %w", err)
	}
	parsed, _, _, _, err := ssh.ParseAuthorizedKey([]byte(certText))
	if err != nil {
		return nil, fmt.Errorf("parse session certificate: %w", err)
	}
	cert, ok := parsed.(*ssh.Certificate)
	if !ok || cert.CertType != ssh.UserCert {
		return nil, errors.New("the CA did not return a user certificate")
	}
	certSigner, err := ssh.NewCertSigner(cert, signer)
	if err != nil {
		return nil, fmt.Errorf("session certificate does not match the session key: %w", err)
	}

	addr := net.JoinHostPort(node.SSHHost, strconv.Itoa(node.SSHPort))
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	deadline, _ := dctx.Deadline()
	_ = conn.SetDeadline(deadline) // bounds the handshake; cleared below
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:            g.SSHUser,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(certSigner)},
		HostKeyCallback: s.cfg.HostKeys.Callback(node),
		Timeout:         s.cfg.DialTimeout,
		ClientVersion:   "SSH-2.0-gpuaas-terminal",
	})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	up, err := openShell(client, s.cfg.Term)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return up, nil
}

func openShell(client *ssh.Client, term string) (*upstream, error) {
	sess, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	up := &upstream{client: client, sess: sess}
	if up.stdin, err = sess.StdinPipe(); err != nil {
		return nil, err
	}
	if up.stdout, err = sess.StdoutPipe(); err != nil {
		return nil, err
	}
	if up.stderr, err = sess.StderrPipe(); err != nil {
		return nil, err
	}
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	if err := sess.RequestPty(term, initialRows, initialCols, modes); err != nil {
		return nil, fmt.Errorf("request pty: %w", err)
	}
	if err := sess.Shell(); err != nil {
		return nil, fmt.Errorf("start shell: %w", err)
	}
	return up, nil
}

// session relays one browser WebSocket to one SSH shell.
type session struct {
	cfg Config
	ws  *websocket.Conn
	up  *upstream
	log *slog.Logger

	wmu     sync.Mutex // gorilla allows one concurrent writer of data frames
	away    chan struct{}
	awayOne sync.Once
}

func newSession(cfg Config, ws *websocket.Conn, up *upstream, log *slog.Logger) *session {
	return &session{cfg: cfg, ws: ws, up: up, log: log, away: make(chan struct{})}
}

// goAway ends the session from the gateway's side (shutdown).
func (s *session) goAway() { s.awayOne.Do(func() { close(s.away) }) }

// run relays until the shell exits (close 1000), the browser goes away (SSH
// closed), or the gateway shuts down (close 1001).
func (s *session) run() {
	ws := s.ws
	pongWait := 2 * s.cfg.PingInterval
	ws.SetReadLimit(s.cfg.MaxFrameBytes)
	_ = ws.SetReadDeadline(time.Now().Add(pongWait))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(pongWait)) })

	browserGone := make(chan struct{})
	go func() {
		defer close(browserGone)
		s.readLoop(pongWait)
	}()

	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); s.pump(s.up.stdout) }()
	go func() { defer pumps.Done(); s.pump(s.up.stderr) }()
	shellDone := make(chan error, 1)
	go func() {
		// Wait returns once the node reports the exit and closes the channel;
		// the pumps then drain what is still buffered.
		err := s.up.sess.Wait()
		pumps.Wait()
		shellDone <- err
	}()

	stopPing := make(chan struct{})
	go s.pinger(stopPing)
	defer close(stopPing)

	select {
	case err := <-shellDone:
		s.close(websocket.CloseNormalClosure, exitReason(err))
		s.up.close()
		s.awaitClose(browserGone)
		s.log.Info("terminal session ended", "reason", exitReason(err))
	case <-browserGone:
		// The browser closed or vanished: end the shell on the node too.
		s.up.close()
		<-shellDone
		s.log.Info("terminal session ended", "reason", "browser went away")
	case <-s.away:
		s.close(websocket.CloseGoingAway, "gateway shutting down")
		s.up.close()
		s.awaitClose(browserGone)
		<-shellDone
		s.log.Info("terminal session ended", "reason", "gateway shutdown")
	}
	_ = ws.Close()
}

// readLoop feeds the browser's frames to the shell. Binary frames are input;
// text frames that are control frames ({"type":"resize",…}) act on the pty,
// other text frames are input too (clients should send input as binary to
// avoid any doubt).
func (s *session) readLoop(pongWait time.Duration) {
	for {
		mt, data, err := s.ws.ReadMessage()
		if err != nil {
			return
		}
		_ = s.ws.SetReadDeadline(time.Now().Add(pongWait))
		if mt == websocket.TextMessage && len(data) > 0 && data[0] == '{' {
			if c, err := terminal.ParseControl(data); err == nil {
				if err := s.up.sess.WindowChange(c.Rows, c.Cols); err != nil {
					return
				}
				continue
			}
		}
		if _, err := s.up.stdin.Write(data); err != nil {
			return
		}
	}
}

// pump copies node output to the browser as binary frames (output need not
// be valid UTF-8, which text frames require).
func (s *session) pump(r io.Reader) {
	buf := make([]byte, relayBuffer)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			s.wmu.Lock()
			_ = s.ws.SetWriteDeadline(time.Now().Add(2 * s.cfg.PingInterval))
			werr := s.ws.WriteMessage(websocket.BinaryMessage, buf[:n])
			s.wmu.Unlock()
			if werr != nil {
				// The browser is gone; keep draining so the SSH channel is not
				// stuck on a full window while the session tears down.
				_, _ = io.Copy(io.Discard, r)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *session) pinger(stop <-chan struct{}) {
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := s.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.cfg.PingInterval)); err != nil {
				return
			}
		}
	}
}

func (s *session) close(code int, reason string) {
	_ = s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason),
		time.Now().Add(closeGrace))
}

// awaitClose gives the browser closeGrace to answer the close frame, then
// the read loop ends either way.
func (s *session) awaitClose(browserGone <-chan struct{}) {
	_ = s.ws.SetReadDeadline(time.Now().Add(closeGrace))
	<-browserGone
}

// exitReason is the close frame's reason (at most 123 bytes).
func exitReason(err error) string {
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return "exit status " + strconv.Itoa(ee.ExitStatus())
	default:
		return "session ended"
	}
}
