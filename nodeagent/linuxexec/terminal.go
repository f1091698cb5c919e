package linuxexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/nodeagent/termsession"
)

// Browser-terminal sessions on a real node. sshd runs the subsystem
// command (AttachCommand: `gpuaas-agent terminal-attach`) as the account;
// it connects to the agent's TerminalSocket and relays the session
// protocol. The agent, as root, keeps the sessions (a shell on a pty per
// session, started as the account in its process set) so they outlive the
// connection. The socket is open to every local user (0666): the agent
// reads the caller's uid from the kernel (SO_PEERCRED) and serves only
// allocation accounts, each only its own sessions.

// Start listens on TerminalSocket and serves terminal sessions until Close.
func (e *Executor) Start() error {
	path := e.cfg.TerminalSocket
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("linuxexec: terminal socket: %w", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return err
	}
	e.mu.Lock()
	e.ln = ln
	e.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go e.serveTerminal(c)
		}
	}()
	return nil
}

// Close stops serving terminal sessions and ends them. The accounts'
// other processes keep running (an agent restart must not kill workloads).
func (e *Executor) Close() error {
	e.mu.Lock()
	ln := e.ln
	e.ln = nil
	e.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	e.terms.Close()
	e.procs.Close()
	return err
}

func (e *Executor) serveTerminal(c net.Conn) {
	uid, err := peerUID(c)
	if err != nil {
		e.cfg.Logger.Warn("terminal socket: no peer credentials", "err", err)
		c.Close()
		return
	}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil || !nodetask.ValidUsername(u.Username) {
		e.cfg.Logger.Warn("terminal socket: refused a caller that is not an allocation account", "uid", uid)
		c.Close()
		return
	}
	e.mu.Lock()
	pol := e.policies[u.Username]
	e.mu.Unlock()
	_ = e.terms.Serve(u.Username, pol, e.shellFor(u), c)
}

// peerUID is the uid of the process at the other end of a unix socket.
func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return int(cred.Uid), nil
}

// shellFor starts the account's login shell as the account, in its home,
// with its groups (the GPU group among them), in its process set.
func (e *Executor) shellFor(u *user.User) termsession.Spawn {
	return func(sessionID, term string) (*exec.Cmd, func(), error) {
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("account %s has no numeric ids", u.Username)
		}
		gids, _ := u.GroupIds()
		groups := make([]uint32, 0, len(gids))
		for _, g := range gids {
			if n, err := strconv.Atoi(g); err == nil {
				groups = append(groups, uint32(n))
			}
		}
		if term == "" {
			term = "xterm-256color"
		}
		cmd := exec.Command(e.cfg.Shell, "-l")
		cmd.Dir = u.HomeDir
		cmd.Env = []string{"HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username, "SHELL=" + e.cfg.Shell,
			"PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin", "TERM=" + term, "LANG=C.UTF-8"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}
		g, err := e.procs.Group(u.Username)
		if err != nil {
			return nil, nil, err
		}
		g.UID = uid
		done, err := g.Prepare(cmd)
		if err != nil {
			return nil, nil, err
		}
		return cmd, done, nil
	}
}

// Attach is `gpuaas-agent terminal-attach`, the sshd subsystem command: it
// relays stdin and stdout (the SSH channel) to the agent's terminal socket
// until either side ends. It runs as the account; the agent does the rest.
func Attach(ctx context.Context, socket string, stdin io.Reader, stdout io.Writer) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("terminal-attach: %w", err)
	}
	defer c.Close()
	go func() {
		_, _ = io.Copy(c, stdin)
		// The channel closed: tell the agent (the session detaches), keep
		// relaying whatever it still sends.
		_ = c.(*net.UnixConn).CloseWrite()
	}()
	_, err = io.Copy(stdout, c)
	return err
}
