//go:build !linux

package childproc

import (
	"os/exec"
	"strconv"
	"strings"
)

// Cmdline is pid's command line as ps(1) prints it, split at spaces (an
// argument containing a space comes back in pieces). [ErrNotRunning] when
// the process does not exist.
func Cmdline(pid int) ([]string, error) {
	out, err := exec.Command("ps", "-o", "command=", "-p", strconv.Itoa(pid)).Output()
	if err != nil || len(strings.TrimSpace(string(out))) == 0 {
		return nil, ErrNotRunning
	}
	return strings.Fields(string(out)), nil
}

func exited(int) bool { return false }
