package childproc_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/childproc"
)

func init() {
	if os.Getenv("CHILDPROC_TEST_ROLE") == "parent" {
		// Keep the main goroutine on the main thread: a goroutine that ends
		// locked on the main thread parks it instead of ending it, and the
		// helper needs the thread that called Start to really end.
		runtime.LockOSThread()
	}
}

// TestMain lets the test binary play the parent in TestChildDiesWithParent.
func TestMain(m *testing.M) {
	if os.Getenv("CHILDPROC_TEST_ROLE") == "parent" {
		helperParent()
		return
	}
	os.Exit(m.Run())
}

// helperParent starts `sleep 300` through Start from a goroutine that locks
// its OS thread and returns, so that thread exits; it prints the child's pid
// once that thread is gone and then waits to be killed.
func helperParent() {
	var tid int
	var child *exec.Cmd
	started := make(chan error)
	go func() {
		runtime.LockOSThread() // returning while locked ends this thread
		tid = syscall.Gettid()
		child = exec.Command("sleep", "300")
		_, err := childproc.Start(child, syscall.SIGKILL)
		started <- err
	}()
	if err := <-started; err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	deadline := time.After(10 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid)); os.IsNotExist(err) {
			break
		}
		select {
		case <-deadline:
			fmt.Println("error: the locked thread did not end")
			os.Exit(1)
		case <-tick.C:
		}
	}
	fmt.Println(child.Process.Pid)
	_, _ = os.Stdin.Read(make([]byte, 1)) // until the test kills us
}

// A child started with Start outlives the OS thread of the goroutine that
// called Start (a naive Pdeathsig would kill it then), and dies when its
// parent is killed with SIGKILL.
func TestChildDiesWithParent(t *testing.T) {
	t.Parallel()
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), "CHILDPROC_TEST_ROLE=parent")
	stdin, err := parent.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = parent.Process.Kill()
		t.Fatalf("helper: %v (%q)", err, line)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		_ = parent.Process.Kill()
		t.Fatalf("helper said %q", line)
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if !childproc.Running(child) {
		_ = parent.Process.Kill()
		t.Fatal("the child died with the thread that called Start, not with its parent")
	}
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for childproc.Running(child) {
		select {
		case <-deadline:
			t.Fatalf("child %d still runs 10 s after its parent was killed", child)
		case <-tick.C:
		}
	}
}
