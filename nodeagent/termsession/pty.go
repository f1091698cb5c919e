package termsession

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is the master side of a pseudo-terminal whose slave is the
// controlling terminal of a started command.
//
// It is opened non-blocking and registered with Go's poller, unlike the
// *os.File creack/pty returns (its ioctls call Fd(), which turns the file
// back to blocking mode). That matters: closing a pollable file wakes a
// goroutine blocked reading it, and only then does the kernel drop the last
// reference and hang the terminal up (SIGHUP to the shell). With a blocking
// file a reader stays stuck, the hang-up never happens and the shell lives
// on — the bug where a terminal outlived its browser.
type PTY struct {
	*os.File
}

// StartPTY starts cmd on a new pseudo-terminal of the given size as the
// leader of a new session with the terminal as its controlling terminal.
// cmd.SysProcAttr is kept (credentials, cgroup) and completed.
func StartPTY(cmd *exec.Cmd, cols, rows int) (*PTY, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open a pty: %w", err)
	}
	defer slave.Close()
	if err := pty.Setsize(master, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}); err != nil {
		master.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0 // stdin: the slave
	if err := cmd.Start(); err != nil {
		master.Close()
		return nil, err
	}
	fd, err := unix.Dup(int(master.Fd()))
	master.Close()
	if err == nil {
		err = unix.SetNonblock(fd, true)
		unix.CloseOnExec(fd)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("prepare the pty: %w", err)
	}
	return &PTY{File: os.NewFile(uintptr(fd), "/dev/ptmx")}, nil
}

// foreground is the terminal's foreground process group (0 if unknown).
func (p *PTY) foreground() int {
	sc, err := p.SyscallConn()
	if err != nil {
		return 0
	}
	pgrp := 0
	_ = sc.Control(func(fd uintptr) {
		if n, err := unix.IoctlGetInt(int(fd), unix.TIOCGPGRP); err == nil {
			pgrp = n
		}
	})
	return pgrp
}

// Resize sets the terminal size (the shell gets SIGWINCH).
func (p *PTY) Resize(cols, rows int) error {
	sc, err := p.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = sc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(cols), Row: uint16(rows)})
	})
	if err != nil {
		return err
	}
	return ierr
}
