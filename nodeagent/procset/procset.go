// Package procset keeps the processes of one allocation account together so
// that a release can end all of them, whatever they did to get away: forked,
// double-forked into the background, called setsid, put themselves in their
// own process group or under nohup.
//
// Where the host offers a writable cgroup v2 hierarchy (Linux ≥ 5.14 has
// cgroup.kill), every process the agent starts for an account runs in the
// account's own cgroup, below the agent's: no process can leave a cgroup by
// itself, and cgroup.kill ends the whole tree atomically. Elsewhere (no
// cgroup v2, not root, a read-only hierarchy) processes carry a marker in
// their environment that the agent finds under /proc; a process that wipes
// its environment escapes that fallback, which is why real nodes also match
// by the account's uid (Group.UID) and sandbox nodes switch users when they
// can. Mode says which one is in use.
package procset

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MarkerEnv is the environment variable that names a process's group in the
// marker fallback (and, for diagnosis, in cgroup mode too).
const MarkerEnv = "GPUAAS_PROCSET"

// Modes of a Tracker.
const (
	ModeCgroup = "cgroup"
	ModeMarker = "marker"
)

// Config configures a Tracker.
type Config struct {
	// Name identifies the tracker's groups on the host (a cgroup directory
	// name and the marker prefix); distinct trackers on one host need
	// distinct names. [A-Za-z0-9_.-], at most 64 bytes.
	Name string
	// CgroupBase is the cgroup directory the tracker creates its own under.
	// "" detects it: the agent's own cgroup in the cgroup v2 hierarchy.
	// "-" disables cgroups (the marker fallback only).
	CgroupBase string
	// KillWait bounds how long End waits for processes to disappear after
	// SIGKILL. Default 5s.
	KillWait time.Duration
	// Poll is how often End looks whether processes are gone. Default 20ms.
	Poll time.Duration
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("procset: Name %q must be 1-64 characters [A-Za-z0-9_.-], not starting with a dot or dash", c.Name)
	}
	if c.KillWait <= 0 {
		c.KillWait = 5 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = 20 * time.Millisecond
	}
	return nil
}

// Tracker hands out the groups of one agent (or sandbox node).
type Tracker struct {
	cfg  Config
	dir  string // the tracker's cgroup directory; "" in marker mode
	why  string // why cgroups are not used (marker mode)
	proc string // /proc, settable for tests
}

// New prepares a tracker: a cgroup directory named cfg.Name under the base
// when that works, else the marker fallback.
func New(cfg Config) (*Tracker, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	t := &Tracker{cfg: cfg, proc: "/proc"}
	base := cfg.CgroupBase
	switch base {
	case "-":
		t.why = "cgroups disabled by configuration"
		return t, nil
	case "":
		b, err := ownCgroupDir()
		if err != nil {
			t.why = err.Error()
			return t, nil
		}
		base = b
	}
	dir := filepath.Join(base, cfg.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.why = "cannot create a cgroup: " + err.Error()
		return t, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		t.why = base + " is not a cgroup v2 directory"
		_ = os.Remove(dir)
		return t, nil
	}
	t.dir = dir
	return t, nil
}

// Close removes the tracker's cgroup directories that hold no process
// (they are made again on use). Groups still running keep theirs.
func (t *Tracker) Close() {
	if t.dir == "" {
		return
	}
	(&Group{t: t, dir: t.dir}).removeDir()
}

// Mode is ModeCgroup or ModeMarker.
func (t *Tracker) Mode() string {
	if t.dir != "" {
		return ModeCgroup
	}
	return ModeMarker
}

// Why says why the tracker fell back to markers ("" in cgroup mode).
func (t *Tracker) Why() string { return t.why }

// ownCgroupDir is this process's cgroup v2 directory: the cgroup2 mount
// point joined with the "0::" line of /proc/self/cgroup.
func ownCgroupDir() (string, error) {
	mount, err := cgroup2Mount("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(mount, filepath.Clean("/"+rest)), nil
		}
	}
	return "", errors.New("this process has no cgroup v2 membership")
}

// cgroup2Mount finds the mount point of the cgroup v2 hierarchy (unified or
// hybrid layout) in a mountinfo file.
func cgroup2Mount(mountinfo string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "id parent maj:min root mountpoint opts [optional…] - fstype source superopts"
		fields := strings.Fields(sc.Text())
		for i, fld := range fields {
			if fld == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return unescapeMount(fields[4]), nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Group is one account's processes.
type Group struct {
	t    *Tracker
	name string
	dir  string // cgroup directory; "" in marker mode
	// UID, when ≥ 0, also counts every process of that uid as the group's
	// (accounts with their own uid: real nodes, and sandbox nodes run as
	// root). Processes sshd starts for the account are found this way.
	UID int
}

var groupRE = nameRE

// Group returns the group of one account. It is created on first use.
func (t *Tracker) Group(name string) (*Group, error) {
	if !groupRE.MatchString(name) {
		return nil, fmt.Errorf("procset: group name %q must be 1-64 characters [A-Za-z0-9_.-], not starting with a dot or dash", name)
	}
	g := &Group{t: t, name: name, UID: -1}
	if t.dir != "" {
		g.dir = filepath.Join(t.dir, name)
	}
	return g, nil
}

// Groups lists the groups present on the host (cgroup mode: the tracker's
// cgroup directories, populated or not; marker mode: the groups of running
// marked processes). A restarted agent uses it to find what an earlier run
// left behind.
func (t *Tracker) Groups() ([]string, error) {
	seen := map[string]bool{}
	if t.dir != "" {
		entries, err := os.ReadDir(t.dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() && groupRE.MatchString(e.Name()) {
				seen[e.Name()] = true
			}
		}
	} else {
		prefix := t.cfg.Name + "/"
		_ = t.eachProc(func(pid int) {
			if m := t.markerOf(pid); strings.HasPrefix(m, prefix) {
				seen[strings.TrimPrefix(m, prefix)] = true
			}
		})
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	return out, nil
}

func (g *Group) marker() string { return g.t.cfg.Name + "/" + g.name }

// Prepare makes cmd's process start inside the group: in its cgroup (the
// clone puts it there, so not even its first instruction runs outside)
// and with the marker in its environment. Call done after cmd.Start,
// whatever it returned.
func (g *Group) Prepare(cmd *exec.Cmd) (done func(), err error) {
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(withoutMarker(env), MarkerEnv+"="+g.marker())
	if g.dir == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return nil, fmt.Errorf("procset: create cgroup %s: %w", g.dir, err)
	}
	fd, err := syscall.Open(g.dir, syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("procset: open cgroup %s: %w", g.dir, err)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = fd
	return func() { _ = syscall.Close(fd) }, nil
}

func withoutMarker(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, MarkerEnv+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// Pids lists the live processes of the group (zombies excluded: they are
// gone already, only not yet reaped).
func (g *Group) Pids() ([]int, error) {
	seen := map[int]bool{}
	if g.dir != "" {
		if err := g.cgroupPids(g.dir, seen); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	mark := g.marker()
	err := g.t.eachProc(func(pid int) {
		if seen[pid] {
			return
		}
		st, uid, ok := g.t.stat(pid)
		if !ok || st == 'Z' || st == 'X' {
			return
		}
		if (g.UID >= 0 && uid == g.UID) || (g.dir == "" && g.t.markerOf(pid) == mark) {
			seen[pid] = true
		}
	})
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(seen))
	for pid := range seen {
		if st, _, ok := g.t.stat(pid); ok && st != 'Z' && st != 'X' {
			out = append(out, pid)
		}
	}
	return out, nil
}

// cgroupPids adds the processes of dir and of every cgroup below it.
func (g *Group) cgroupPids(dir string, into map[int]bool) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil // a child cgroup removed while walking
		}
		if !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				into[pid] = true
			}
		}
		return nil
	})
}

// Signal sends sig to every process of the group and returns how many it
// reached.
func (g *Group) Signal(sig syscall.Signal) (int, error) {
	pids, err := g.Pids()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, pid := range pids {
		if syscall.Kill(pid, sig) == nil {
			n++
		}
	}
	return n, nil
}

// SurvivorsError is End's failure: processes that outlived SIGKILL (in
// uninterruptible sleep on a hung device, typically).
type SurvivorsError struct {
	Group string
	Pids  []int
}

func (e *SurvivorsError) Error() string {
	return fmt.Sprintf("procset: %d processes of %s survived SIGKILL: %v", len(e.Pids), e.Group, e.Pids)
}

// End ends the group: SIGTERM to every process, up to grace for them to
// exit, then SIGKILL to whatever is left (cgroup.kill in cgroup mode, which
// also catches processes forked meanwhile), then up to KillWait for them to
// disappear. The cgroup directory is removed. An empty group ends at once.
// It fails with *SurvivorsError when processes remain.
func (g *Group) End(ctx context.Context, grace time.Duration) error {
	if grace > 0 {
		n, err := g.Signal(syscall.SIGTERM)
		if err != nil {
			return err
		}
		if n > 0 {
			g.waitEmpty(ctx, grace)
		}
	}
	for attempt := 0; ; attempt++ {
		// Stopped first, so a process found by uid or marker cannot fork a
		// replacement between the scan and the kill.
		if _, err := g.Signal(syscall.SIGSTOP); err != nil {
			return err
		}
		if g.dir != "" {
			// Writing cgroup.kill SIGKILLs the whole subtree, including
			// processes created while it runs (Linux ≥ 5.14).
			if err := os.WriteFile(filepath.Join(g.dir, "cgroup.kill"), []byte("1"), 0); err != nil &&
				!errors.Is(err, fs.ErrNotExist) {
				if _, err := g.Signal(syscall.SIGKILL); err != nil {
					return err
				}
			}
		}
		if _, err := g.Signal(syscall.SIGKILL); err != nil {
			return err
		}
		if g.waitEmpty(ctx, g.t.cfg.KillWait/4) {
			break
		}
		if attempt == 3 || ctx.Err() != nil {
			pids, _ := g.Pids()
			return &SurvivorsError{Group: g.name, Pids: pids}
		}
	}
	g.removeDir()
	return nil
}

// waitEmpty polls until the group has no process, d passes or ctx ends.
func (g *Group) waitEmpty(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	t := time.NewTicker(g.t.cfg.Poll)
	defer t.Stop()
	for {
		pids, err := g.Pids()
		if err == nil && len(pids) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// removeDir removes the group's cgroup directories, deepest first (an
// empty cgroup can be removed with rmdir).
func (g *Group) removeDir() {
	if g.dir == "" {
		return
	}
	var dirs []string
	_ = filepath.WalkDir(g.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = syscall.Rmdir(dirs[i])
	}
}

// eachProc calls fn for every numeric entry of /proc.
func (t *Tracker) eachProc(fn func(pid int)) error {
	entries, err := os.ReadDir(t.proc)
	if err != nil {
		return err
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		fn(pid)
	}
	return nil
}

// stat returns a process's state letter and real uid.
func (t *Tracker) stat(pid int) (state byte, uid int, ok bool) {
	b, err := os.ReadFile(filepath.Join(t.proc, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, false
	}
	uid = -1
	for _, line := range bytes.Split(b, []byte("\n")) {
		switch {
		case bytes.HasPrefix(line, []byte("State:")):
			f := bytes.Fields(line[len("State:"):])
			if len(f) > 0 && len(f[0]) > 0 {
				state = f[0][0]
			}
		case bytes.HasPrefix(line, []byte("Uid:")):
			f := bytes.Fields(line[len("Uid:"):])
			if len(f) > 0 {
				uid, _ = strconv.Atoi(string(f[0]))
			}
		}
	}
	return state, uid, state != 0
}

// markerOf is the MarkerEnv value in a process's initial environment ("" if
// none or unreadable).
func (t *Tracker) markerOf(pid int) string {
	b, err := os.ReadFile(filepath.Join(t.proc, strconv.Itoa(pid), "environ"))
	if err != nil {
		return ""
	}
	prefix := []byte(MarkerEnv + "=")
	for _, kv := range bytes.Split(b, []byte{0}) {
		if bytes.HasPrefix(kv, prefix) {
			return string(kv[len(prefix):])
		}
	}
	return ""
}
