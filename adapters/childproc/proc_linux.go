package childproc

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Cmdline is pid's argument vector, read from /proc. [ErrNotRunning] when
// the process does not exist or has exited.
func Cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, ErrNotRunning
		}
		return nil, err
	}
	if len(b) == 0 || exited(pid) {
		return nil, ErrNotRunning
	}
	return strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00"), nil
}

// exited reports whether pid is a zombie (exited, not yet reaped): a parent
// that does not reap, such as some container init processes, keeps it
// answering kill(pid, 0) after it has exited.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain ") ".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'Z' || b[i+2] == 'X'
}
