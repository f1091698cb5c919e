package childproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNotRunning says a process does not exist (or has exited).
var ErrNotRunning = errors.New("childproc: process is not running")

// Running reports whether pid names a live process (not one that has exited
// and waits to be reaped).
func Running(pid int) bool {
	if pid <= 0 {
		return false
	}
	// EPERM: it exists but belongs to another user (a cluster run as the
	// postgres user, seen from a non-root caller).
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !exited(pid)
}

// Stop ends pid, a process this one did not start (a leftover of an earlier
// run; a child is stopped through its exec.Cmd): it sends each signal in turn
// and waits up to wait for the process to exit before sending the next. It
// returns nil once the process is gone, and an error when it outlives the
// last signal or ctx ends.
func Stop(ctx context.Context, pid int, wait time.Duration, sigs ...syscall.Signal) error {
	// A process that is not our child cannot be waited for, and pidfd_open is
	// not everywhere this runs: look every 25 ms.
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for _, sig := range sigs {
		if !Running(pid) {
			return nil
		}
		if err := syscall.Kill(pid, sig); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				return nil
			}
			return fmt.Errorf("childproc: signal %d: %w", pid, err)
		}
		deadline := time.NewTimer(wait)
	waiting:
		for Running(pid) {
			select {
			case <-ctx.Done():
				deadline.Stop()
				return fmt.Errorf("childproc: process %d still running: %w", pid, ctx.Err())
			case <-deadline.C:
				break waiting
			case <-tick.C:
			}
		}
		deadline.Stop()
	}
	if Running(pid) {
		return fmt.Errorf("childproc: process %d did not exit after %v", pid, sigs)
	}
	return nil
}

// ReadPIDFile reads a file whose first line is a process id (a
// postmaster.pid, a pid file of [WritePIDFile]); 0 and no error when the
// file does not exist.
func ReadPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("childproc: %s does not start with a process id", path)
	}
	return pid, nil
}

// WritePIDFile writes pid into path (0600).
func WritePIDFile(path string, pid int) error {
	return os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o600)
}

// HasArgs reports whether args holds seq as consecutive elements, e.g.
// HasArgs(cmdline, "-D", dataDir): how a caller recognises its own leftover
// process before stopping it.
func HasArgs(args []string, seq ...string) bool {
	for i := 0; i+len(seq) <= len(args); i++ {
		match := true
		for j, s := range seq {
			if args[i+j] != s {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
