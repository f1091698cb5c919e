//go:build !unix

package cli

import (
	"os"
	"os/exec"
)

// execProcess runs argv0 as a child with this process's terminal and exits
// with its status (no exec(2) here).
func execProcess(argv0 string, argv []string, env []string) error {
	c := exec.Command(argv0, argv[1:]...)
	c.Env, c.Stdin, c.Stdout, c.Stderr = env, os.Stdin, os.Stdout, os.Stderr
	err := c.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	}
	if err == nil {
		os.Exit(0)
	}
	return err
}
