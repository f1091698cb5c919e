package childproc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked is what errors.Is finds in the error of [LockFile] when another
// process holds the lock.
var ErrLocked = errors.New("childproc: locked by another process")

// HeldError says which process holds a lock.
type HeldError struct {
	Path string
	// PID of the holder as it wrote it into the file; 0 when unknown.
	PID int
}

func (e *HeldError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is held by process %d", e.Path, e.PID)
	}
	return e.Path + " is held by another process"
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *HeldError) Is(target error) bool { return target == ErrLocked }

// Lock is an exclusive lock on a file, held until Unlock or until this
// process dies: it is a flock(2) lock, which the kernel drops with the last
// descriptor of the open file, and Go opens files close-on-exec, so no child
// keeps it past its exec (see Unlock for the moment before).
type Lock struct {
	f *os.File
}

// LockFile takes an exclusive lock on path (created 0600 if missing) without
// waiting, and writes this process's id into the file for whoever finds it
// held. When another process holds it, the error is a *HeldError.
func LockFile(path string) (*Lock, error) {
	// No O_TRUNC: the holder's pid must stay readable for a refused caller.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("childproc: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &HeldError{Path: path, PID: readPID(f)}
		}
		return nil, fmt.Errorf("childproc: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock. The file stays: removing it would let a process
// that opened it just before lock a file nobody else can find any more.
//
// It unlocks before closing: a child forked by another goroutine holds a
// copy of the descriptor until its exec closes it, and the lock belongs to
// the open file, so closing ours alone would leave the lock held for that
// moment.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	unlockErr := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	err := l.f.Close()
	l.f = nil
	if unlockErr != nil {
		return fmt.Errorf("childproc: unlock: %w", unlockErr)
	}
	return err
}

func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil {
		return 0
	}
	return pid
}
