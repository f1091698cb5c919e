package childproc

import (
	"os/exec"
	"runtime"
	"syscall"
)

// Start starts cmd and arranges for the kernel to send it sig when this
// process dies, however it dies (SIGKILL included): the parent-death signal
// (prctl PR_SET_PDEATHSIG, set by the Go runtime in the child after its
// credentials change, so it also holds for a child that drops to another
// user). The returned channel receives cmd.Wait's result once.
//
// The kernel sends the signal when the *thread* that forked the child exits,
// not the process, and the Go runtime may end an OS thread whose goroutine
// locked it and returned. So the child is forked from a dedicated goroutine
// that locks its OS thread and keeps it until the child has exited
// (cmd.Wait runs on the same goroutine); the thread therefore lives at least
// as long as the child, and dies with the process otherwise.
func Start(cmd *exec.Cmd, sig syscall.Signal) (<-chan error, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = sig
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the goroutine returns only after the child has
		// exited, and a locked thread that ends is discarded, which is fine.
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}
