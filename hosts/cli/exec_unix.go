//go:build unix

package cli

import "syscall"

// execProcess replaces this process with argv0 (the system ssh), so the
// terminal, signals and exit status are ssh's own.
func execProcess(argv0 string, argv []string, env []string) error {
	return syscall.Exec(argv0, argv, env)
}
