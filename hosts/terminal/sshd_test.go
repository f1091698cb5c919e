package terminalhost_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/terminal"
	"github.com/gpuaas/gpuaas/nodeagent/termsession"
	"github.com/gpuaas/gpuaas/ports"
)

// testCA is a small in-test SSH user CA standing in for the platform CA
// adapter: it certifies keys for one principal with the requested TTL.
type testCA struct {
	signer ssh.Signer
	signed atomic.Int32
	mu     sync.Mutex
	last   *ssh.Certificate
}

var _ ports.SSHCertificateAuthority = (*testCA)(nil)

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{signer: s}
}

func (c *testCA) PublicKey(context.Context) (string, error) {
	return string(ssh.MarshalAuthorizedKey(c.signer.PublicKey())), nil
}

func (c *testCA) SignUserKey(_ context.Context, publicKey, principal string, ttl time.Duration) (string, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(publicKey))
	if err != nil {
		return "", err
	}
	now := time.Now()
	cert := &ssh.Certificate{Key: pub, CertType: ssh.UserCert, KeyId: "terminal", ValidPrincipals: []string{principal},
		ValidAfter: uint64(now.Add(-time.Minute).Unix()), ValidBefore: uint64(now.Add(ttl).Unix()),
		Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}}}
	if err := cert.SignCert(rand.Reader, c.signer); err != nil {
		return "", err
	}
	c.signed.Add(1)
	c.mu.Lock()
	c.last = cert
	c.mu.Unlock()
	return string(ssh.MarshalAuthorizedKey(cert)), nil
}

// sshd is an SSH server written for the tests: it accepts user
// certificates from the test user CA for the login name, presents a host
// certificate from the test host CA, serves terminal sessions on the
// session subsystem with the node agent's own termsession.Manager (what
// real nodes run), and a plain /bin/sh on a real pty (creack/pty) for the
// direct-SSH benchmark baseline. It counts TCP connections so refusal tests
// can prove the gateway never dialled.
type sshd struct {
	terms       *termsession.Manager
	policy      nodetask.SessionPolicy
	addr        string
	dials       atomic.Int32
	auths       atomic.Int32 // user authentication attempts (the session certificate reached the node)
	sessions    atomic.Int32 // session channels opened
	hostKey     ssh.PublicKey
	cfg         *ssh.ServerConfig
	disconnects chan struct{} // one per ended client connection
}

// startSSHD starts a test sshd trusting userCA for user certificates. With
// a hostCA it presents a host certificate for principal; with none, a plain
// host key (as a stock sshd does), which hostKey holds.
func startSSHD(t testing.TB, userCA ssh.PublicKey, hostCA ssh.Signer, principal string) *sshd {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	checker := &ssh.CertChecker{IsUserAuthority: func(k ssh.PublicKey) bool {
		return bytes.Equal(k.Marshal(), userCA.Marshal())
	}}
	terms, err := termsession.New(termsession.Config{HangupGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(terms.Close)
	s := &sshd{terms: terms, disconnects: make(chan struct{}, 16), hostKey: hostSigner.PublicKey()}
	s.cfg = &ssh.ServerConfig{PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		s.auths.Add(1)
		return checker.Authenticate(c, k)
	}}
	if hostCA == nil {
		s.cfg.AddHostKey(hostSigner)
	} else {
		hostCert := &ssh.Certificate{Key: hostSigner.PublicKey(), CertType: ssh.HostCert, KeyId: "test-node",
			ValidPrincipals: []string{principal}, ValidBefore: ssh.CertTimeInfinity}
		if err := hostCert.SignCert(rand.Reader, hostCA); err != nil {
			t.Fatal(err)
		}
		certSigner, err := ssh.NewCertSigner(hostCert, hostSigner)
		if err != nil {
			t.Fatal(err)
		}
		s.cfg.AddHostKey(certSigner)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.dials.Add(1)
			go s.serve(c)
		}
	}()
	return s
}

func (s *sshd) serve(c net.Conn) {
	defer func() { s.disconnects <- struct{}{} }()
	sc, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		c.Close()
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		s.sessions.Add(1)
		go s.session(sc.User(), ch, creqs)
	}
}

type ptyReq struct {
	Term       string
	Cols, Rows uint32
	W, H       uint32
	Modes      string
}

type winch struct{ Cols, Rows, W, H uint32 }

func testShell(string, string) (*exec.Cmd, func(), error) {
	cmd := exec.Command("/bin/sh")
	cmd.Env = []string{"PS1=$ ", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TERM=xterm"}
	return cmd, nil, nil
}

func (s *sshd) session(user string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var (
		size    = &pty.Winsize{Rows: 24, Cols: 80}
		ptmx    io.ReadWriteCloser
		setSize func(*pty.Winsize)
		done    = make(chan uint32, 1)
	)
	for {
		select {
		case status := <-done:
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			return
		case req, ok := <-reqs:
			if !ok {
				if ptmx != nil {
					ptmx.Close() // hang up the shell, as sshd does when the client leaves
				}
				return
			}
			switch req.Type {
			case "pty-req":
				var p ptyReq
				if ssh.Unmarshal(req.Payload, &p) != nil {
					_ = req.Reply(false, nil)
					continue
				}
				size = &pty.Winsize{Rows: uint16(p.Rows), Cols: uint16(p.Cols)}
				_ = req.Reply(true, nil)
			case "window-change":
				var w winch
				if ssh.Unmarshal(req.Payload, &w) == nil && setSize != nil {
					setSize(&pty.Winsize{Rows: uint16(w.Rows), Cols: uint16(w.Cols)})
				}
			case "subsystem":
				var sub struct{ Name string }
				if ssh.Unmarshal(req.Payload, &sub) != nil || sub.Name != terminal.SessionSubsystem {
					_ = req.Reply(false, nil)
					continue
				}
				_ = req.Reply(true, nil)
				go ssh.DiscardRequests(reqs)
				_ = s.terms.Serve(user, s.policy, testShell, ch)
				return
			case "shell":
				cmd := exec.Command("/bin/sh")
				cmd.Env = []string{"PS1=$ ", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TERM=xterm"}
				f, err := pty.StartWithSize(cmd, size)
				if err != nil {
					_ = req.Reply(false, nil)
					continue
				}
				ptmx = f
				setSize = func(ws *pty.Winsize) { _ = pty.Setsize(f, ws) }
				_ = req.Reply(true, nil)
				go func() { _, _ = io.Copy(f, ch) }()
				go func() {
					copied := make(chan struct{})
					go func() { _, _ = io.Copy(ch, f); close(copied) }()
					err := cmd.Wait()
					<-copied // the pty master reads EIO once the shell and its children are gone
					var ee *exec.ExitError
					status := uint32(0)
					if errors.As(err, &ee) {
						if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Exited() {
							status = uint32(ws.ExitStatus())
						} else {
							status = 255
						}
					}
					done <- status
				}()
			default:
				if req.WantReply {
					_ = req.Reply(false, nil)
				}
			}
		}
	}
}
