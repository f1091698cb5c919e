package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gpuaas dev down with nothing to do says so, and never signals a process
// that holds the data dir's lock unless it is a gpuaas dev. The whole path
// (a running gpuaas dev, leftovers of a crashed one) is in
// TestDevRecoversFromSIGKILL.
func TestDevDown(t *testing.T) {
	t.Parallel()
	noEnv := func(string) string { return "" }
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run([]string{"dev", "down", "-data-dir", filepath.Join(dir, "missing")}, noEnv, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "nothing to stop") {
		t.Fatalf("missing dir: %d %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"dev", "down", "-data-dir", dir}, noEnv, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "nothing left running") {
		t.Fatalf("empty dir: %d %q %q", code, out.String(), errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"dev", "down", "extra"}, noEnv, &out, &errOut); code != 2 {
		t.Fatalf("dev down extra: exit %d, want 2 (%s)", code, errOut.String())
	}

	// This test process holds the lock, as a gpuaas dev would; it is not one.
	lock, err := lockDevDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	_, err = lockDevDir(dir)
	if want := fmt.Sprintf("another gpuaas dev (pid %d) is running on the data dir %s", os.Getpid(), dir); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second lock: %v, want %q", err, want)
	}
	errOut.Reset()
	if code := run([]string{"dev", "down", "-data-dir", dir}, noEnv, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "which is not a gpuaas dev") {
		t.Fatalf("lock held by a non-dev process: %d %q", code, errOut.String())
	}
}
