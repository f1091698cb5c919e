package terminalhost

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/terminal"
)

// Initial pty size until the browser sends its first resize.
const (
	initialCols = 80
	initialRows = 24
	// closeGrace is how long the gateway waits for the browser to answer a
	// close frame before dropping the connection.
	closeGrace = 2 * time.Second
)

// upstream is an SSH connection to a node carrying one terminal session
// (core/terminal's session protocol on its subsystem).
type upstream struct {
	client   *ssh.Client
	ch       ssh.Channel
	frames   *terminal.FrameReader
	wmu      sync.Mutex // frames to the node are written whole
	attached terminal.Attached
}

// close drops the connection: the node keeps the session for its
// reconnect window.
func (u *upstream) close() {
	_ = u.ch.Close()
	_ = u.client.Close()
}

func (u *upstream) send(typ byte, p []byte) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	for len(p) > terminal.MaxFramePayload {
		if err := terminal.WriteFrame(u.ch, typ, p[:terminal.MaxFramePayload]); err != nil {
			return err
		}
		p = p[terminal.MaxFramePayload:]
	}
	return terminal.WriteFrame(u.ch, typ, p)
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
	up, err := openSession(client, g, s.cfg.Term)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return up, nil
}

// openSession opens the grant's terminal session on the node: the session
// subsystem, a hello (new or resume), and the node's answer. A refusal by
// the node is returned as its *terminal.WireError.
func openSession(client *ssh.Client, g terminal.Grant, term string) (*upstream, error) {
	ch, reqs, err := client.OpenChannel("session", nil)
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	go ssh.DiscardRequests(reqs)
	ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{terminal.SessionSubsystem}))
	if err != nil || !ok {
		_ = ch.Close()
		return nil, fmt.Errorf("the node does not offer terminal sessions (%s): %v", terminal.SessionSubsystem, err)
	}
	mode := terminal.ModeNew
	if g.Resume {
		mode = terminal.ModeResume
	}
	up := &upstream{client: client, ch: ch, frames: terminal.NewFrameReader(ch)}
	if err := terminal.WriteJSONFrame(ch, terminal.FrameHello, terminal.Hello{SessionID: g.SessionID, Mode: mode,
		Cols: initialCols, Rows: initialRows, Term: term}); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	typ, p, err := up.frames.Next()
	if err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("read the node's answer: %w", err)
	}
	switch typ {
	case terminal.FrameAttached:
		if err := json.Unmarshal(p, &up.attached); err != nil {
			_ = ch.Close()
			return nil, fmt.Errorf("the node's answer is not JSON: %w", err)
		}
		return up, nil
	case terminal.FrameError:
		_ = ch.Close()
		var we terminal.WireError
		if err := json.Unmarshal(p, &we); err != nil || we.Code == "" {
			return nil, fmt.Errorf("the node refused the session without a reason")
		}
		return nil, &we
	default:
		_ = ch.Close()
		return nil, fmt.Errorf("the node answered the hello with frame %q", typ)
	}
}

// Close codes the gateway ends a WebSocket with, besides 1000 (the shell
// exited: reason "exit status N"), 1001 (gateway shutdown: the session is
// kept on the node, resume it) and 1009 (frame too large).
const (
	// CloseSessionTakenOver: the session was resumed from another browser.
	CloseSessionTakenOver = 4001
	// CloseSessionEnded: the node ended the session (the allocation is
	// being released, or the node is stopping).
	CloseSessionEnded = 4002
	// CloseNodeLost: the connection to the node broke; the session may
	// still be there to resume.
	CloseNodeLost = 4003
)

// session relays one browser WebSocket to one terminal session on a node.
type session struct {
	cfg Config
	ws  *websocket.Conn
	up  *upstream
	log *slog.Logger

	wmu     sync.Mutex // gorilla allows one concurrent writer of data frames
	away    chan struct{}
	awayOne sync.Once

	metrics *metrics
	userID  string
	// Bytes relayed on this connection (its close's audit row).
	toNode, toWeb atomic.Int64
	revoked       chan struct{} // closed when the user was suspended (standing.go)
	revokeOne     sync.Once
}

func newSession(cfg Config, ws *websocket.Conn, up *upstream, log *slog.Logger) *session {
	return &session{cfg: cfg, ws: ws, up: up, log: log, away: make(chan struct{}), revoked: make(chan struct{})}
}

// goAway ends the session from the gateway's side (shutdown).
func (s *session) goAway() { s.awayOne.Do(func() { close(s.away) }) }

// nodeEnd is how the node's side of a session ended.
type nodeEnd struct {
	code   int
	reason string
}

// run relays until the shell exits (close 1000), the node ends the session
// (4001/4002), the node connection breaks (4003), the browser goes away
// (the SSH connection is closed; the node keeps the session for its
// reconnect window), or the gateway shuts down (close 1001, same). It
// says how the connection ended.
func (s *session) run() terminal.ConnectionEnd {
	began := time.Now()
	var end terminal.ConnectionEnd
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
	nodeDone := make(chan nodeEnd, 1)
	go func() { nodeDone <- s.pump() }()

	stopPing := make(chan struct{})
	go s.pinger(stopPing)
	defer close(stopPing)

	select {
	case ne := <-nodeDone:
		s.close(ne.code, ne.reason)
		s.up.close()
		s.awaitClose(browserGone)
		s.log.Info("terminal session ended", "reason", ne.reason)
		end.End, end.Detail = nodeEndReason(ne.code), ne.reason
		if ne.code == CloseNodeLost {
			end.Detail = "" // the gateway's own words, not the node's
		}
	case <-browserGone:
		// The browser closed or vanished: the node keeps the session.
		s.up.close()
		<-nodeDone
		s.log.Info("terminal detached", "reason", "browser went away", "session_id", s.up.attached.SessionID)
		end.End = terminal.EndBrowserLeft
	case <-s.revoked:
		s.close(CloseSuspended, "this account was suspended")
		s.up.close()
		s.awaitClose(browserGone)
		<-nodeDone
		s.log.Info("terminal session ended", "reason", "account suspended", "session_id", s.up.attached.SessionID)
		end.End = terminal.EndSuspended
	case <-s.away:
		s.close(websocket.CloseGoingAway, "gateway shutting down; reconnect to resume")
		s.up.close()
		s.awaitClose(browserGone)
		<-nodeDone
		s.log.Info("terminal detached", "reason", "gateway shutdown", "session_id", s.up.attached.SessionID)
		end.End = terminal.EndGatewayShutdown
	}
	_ = ws.Close()
	end.Duration = time.Since(began)
	end.BytesToNode, end.BytesToBrowser = s.toNode.Load(), s.toWeb.Load()
	return end
}

// nodeEndReason names the end of a connection the node's side closed with
// code (pump's codes).
func nodeEndReason(code int) string {
	switch code {
	case websocket.CloseNormalClosure:
		return terminal.EndExited
	case CloseSessionTakenOver:
		return terminal.EndTakenOver
	case CloseNodeLost:
		return terminal.EndNodeLost
	}
	return terminal.EndEndedByNode
}

// readLoop feeds the browser's frames to the node. Binary frames are input;
// text frames that are control frames ({"type":"resize",…}) resize the
// terminal, other text frames are input too (clients should send input as
// binary to avoid any doubt).
func (s *session) readLoop(pongWait time.Duration) {
	for {
		mt, data, err := s.ws.ReadMessage()
		if err != nil {
			return
		}
		_ = s.ws.SetReadDeadline(time.Now().Add(pongWait))
		if mt == websocket.TextMessage && len(data) > 0 && data[0] == '{' {
			if c, err := terminal.ParseControl(data); err == nil {
				b, _ := json.Marshal(terminal.Size{Cols: c.Cols, Rows: c.Rows})
				if err := s.up.send(terminal.FrameResize, b); err != nil {
					return
				}
				continue
			}
		}
		if err := s.up.send(terminal.FrameData, data); err != nil {
			return
		}
		s.toNode.Add(int64(len(data)))
		if s.metrics != nil {
			s.metrics.toNode.Add(float64(len(data)))
		}
	}
}

// pump copies the node's output to the browser as binary frames (output
// need not be valid UTF-8, which text frames require) until the session
// ends, and says how it ended.
func (s *session) pump() nodeEnd {
	browserOK := true
	for {
		typ, p, err := s.up.frames.Next()
		if err != nil {
			return nodeEnd{CloseNodeLost, "the connection to the node was lost; reconnect to resume"}
		}
		switch typ {
		case terminal.FrameData:
			if !browserOK {
				continue // keep draining so the node is not stuck on a full window
			}
			s.wmu.Lock()
			_ = s.ws.SetWriteDeadline(time.Now().Add(2 * s.cfg.PingInterval))
			werr := s.ws.WriteMessage(websocket.BinaryMessage, p)
			s.wmu.Unlock()
			browserOK = werr == nil
			if browserOK {
				s.toWeb.Add(int64(len(p)))
				if s.metrics != nil {
					s.metrics.toWeb.Add(float64(len(p)))
				}
			}
		case terminal.FrameExit:
			var x terminal.Exit
			_ = json.Unmarshal(p, &x)
			return nodeEnd{websocket.CloseNormalClosure, "exit status " + strconv.Itoa(x.Status)}
		case terminal.FrameError:
			var we terminal.WireError
			_ = json.Unmarshal(p, &we)
			code := CloseSessionEnded
			if we.Code == terminal.CodeSessionTakenOver {
				code = CloseSessionTakenOver
			}
			return nodeEnd{code, closeReason(we)}
		}
	}
}

// closeReason is "code: message", cut to the 123 bytes a close frame holds.
func closeReason(we terminal.WireError) string {
	r := we.Code
	if we.Message != "" {
		r += ": " + we.Message
	}
	if len(r) > 123 {
		r = r[:123]
		for !utf8.ValidString(r) {
			r = r[:len(r)-1]
		}
	}
	return r
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
