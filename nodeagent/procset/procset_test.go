package procset

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func uniqueName(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "procset-test-" + hex.EncodeToString(b[:])
}

// escapees is a shell that leaves behind, in the background: a plain child,
// a setsid'd loop that ignores SIGTERM (its own session and process group,
// reparented to init once the shell exits), and a nohup'd sleep. Each
// writes its pid to dir.
const escapees = `
sleep 600 & echo $! > "$D/plain"
setsid sh -c 'trap "" TERM HUP; echo $$ > "$D/setsid"; while :; do sleep 1; done' </dev/null >/dev/null 2>&1 &
nohup sleep 600 </dev/null >/dev/null 2>&1 & echo $! > "$D/nohup"
`

func startEscapees(t *testing.T, g *Group) []int {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", escapees)
	cmd.Env = append(os.Environ(), "D="+dir)
	done, err := g.Prepare(cmd)
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Run()
	done()
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range []string{"plain", "setsid", "nohup"} {
		var pid int
		for i := 0; i < 200; i++ { // the setsid child writes its pid asynchronously
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err == nil && len(strings.TrimSpace(string(b))) > 0 {
				pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if pid <= 0 {
			t.Fatalf("no pid for %s", f)
		}
		pids = append(pids, pid)
	}
	t.Cleanup(func() {
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	})
	return pids
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	return !strings.Contains(string(b), "State:\tZ")
}

func TestEndKillsEverythingTheGroupStarted(t *testing.T) {
	modes := []struct {
		name string
		base string
	}{{"marker", "-"}}
	if os.Geteuid() == 0 {
		modes = append(modes, struct{ name, base string }{"cgroup", ""})
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			tr, err := New(Config{Name: uniqueName(t), CgroupBase: m.base})
			if err != nil {
				t.Fatal(err)
			}
			if m.name == "cgroup" && tr.Mode() != ModeCgroup {
				if os.Getenv("GPUAAS_REQUIRE_SERVICES") == "1" {
					t.Fatalf("running as root but cgroups are unusable: %s", tr.Why())
				}
				t.Skipf("cgroups unusable here: %s", tr.Why())
			}
			if m.name == "marker" && tr.Mode() != ModeMarker {
				t.Fatalf("mode %s; want marker", tr.Mode())
			}
			g, err := tr.Group("ga_test0001")
			if err != nil {
				t.Fatal(err)
			}
			other, _ := tr.Group("ga_test0002")
			pids := startEscapees(t, g)
			bystander := startEscapees(t, other)
			got, err := g.Pids()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pids {
				if !contains(got, p) {
					t.Fatalf("pid %d (of %v) is not in the group's %v", p, pids, got)
				}
			}
			names, _ := tr.Groups()
			if !contains(names, "ga_test0001") || !contains(names, "ga_test0002") {
				t.Fatalf("groups %v", names)
			}
			start := time.Now()
			if err := g.End(context.Background(), 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 300*time.Millisecond+5*time.Second {
				t.Fatalf("End took %v", d)
			}
			for _, p := range pids {
				if alive(p) {
					t.Fatalf("pid %d survived End", p)
				}
			}
			for _, p := range bystander {
				if !alive(p) {
					t.Fatalf("another group's pid %d was killed", p)
				}
			}
			if left, _ := g.Pids(); len(left) != 0 {
				t.Fatalf("left: %v", left)
			}
			if err := other.End(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			tr.Close()
			if tr.dir != "" {
				if _, err := os.Stat(tr.dir); !os.IsNotExist(err) {
					t.Fatalf("Close left %s: %v", tr.dir, err)
				}
			}
		})
	}
}

func TestEndGivesTheGracePeriod(t *testing.T) {
	t.Parallel()
	tr, err := New(Config{Name: uniqueName(t), CgroupBase: "-"})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := tr.Group("ga_grace0001")
	dir := t.TempDir()
	// A process that takes 200 ms to shut down cleanly on SIGTERM.
	cmd := exec.Command("/bin/sh", "-c", `trap 'sleep 0.2; echo clean > "$D/out"; exit 0' TERM; echo up > "$D/up"; while :; do sleep 0.05; done`)
	cmd.Env = append(os.Environ(), "D="+dir)
	done, _ := g.Prepare(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done()
	go func() { _ = cmd.Wait() }()
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(filepath.Join(dir, "up")); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := g.End(context.Background(), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out")); strings.TrimSpace(string(b)) != "clean" {
		t.Fatalf("the process was not given its grace period to shut down (out=%q)", b)
	}
}

func TestSurvivorsErrorNamesThePids(t *testing.T) {
	e := &SurvivorsError{Group: "ga_x", Pids: []int{1, 2}}
	var se *SurvivorsError
	if !errors.As(error(e), &se) || !strings.Contains(e.Error(), "2 processes of ga_x") {
		t.Fatal(e.Error())
	}
}

func TestCgroup2Mount(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ info, want string }{
		{"29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup"},
		{"25 21 0:22 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n33 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup/unified"},
		{"33 25 0:28 / /mnt/with\\040space rw - cgroup2 none rw\n", "/mnt/with space"},
		{"25 21 0:22 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", ""},
	} {
		p := filepath.Join(dir, "mountinfo")
		if err := os.WriteFile(p, []byte(c.info), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := cgroup2Mount(p)
		if c.want == "" {
			if err == nil {
				t.Fatalf("%q: found %q in a host without cgroup v2", c.info, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Fatalf("%q: %q, %v; want %q", c.info, got, err, c.want)
		}
	}
}

func TestNamesAreChecked(t *testing.T) {
	if _, err := New(Config{Name: "../x"}); err == nil {
		t.Fatal("a path as tracker name was accepted")
	}
	tr, err := New(Config{Name: uniqueName(t), CgroupBase: "-"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"", "..", "a/b", strings.Repeat("x", 65)} {
		if _, err := tr.Group(n); err == nil {
			t.Fatalf("group name %q accepted", n)
		}
	}
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
