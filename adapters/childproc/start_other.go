//go:build !linux

package childproc

import (
	"os/exec"
	"syscall"
)

// Start starts cmd; the returned channel receives cmd.Wait's result once.
// Outside Linux there is no parent-death signal: a child outlives a crashed
// parent, and the next owner of its directory stops it as a leftover.
func Start(cmd *exec.Cmd, _ syscall.Signal) (<-chan error, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done, nil
}
