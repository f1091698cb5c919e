package termsession

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/terminal"
	"github.com/gpuaas/gpuaas/testkit/poll"
)

func shell(sessionID, term string) (*exec.Cmd, func(), error) {
	cmd := exec.Command("/bin/sh")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "PS1=$ ", "TERM=dumb", "HOME=/tmp"}
	return cmd, nil, nil
}

// conn is the test's side of one client connection.
type conn struct {
	t      *testing.T
	c      net.Conn
	frames chan frame
	out    bytes.Buffer // FrameData received so far
}

type frame struct {
	typ byte
	p   []byte
}

func dial(t *testing.T, m *Manager, account string, pol nodetask.SessionPolicy, h terminal.Hello) *conn {
	t.Helper()
	a, b := net.Pipe()
	go func() { _ = m.Serve(account, pol, shell, b) }()
	c := &conn{t: t, c: a, frames: make(chan frame, 1024)}
	go func() {
		defer close(c.frames)
		fr := terminal.NewFrameReader(a)
		for {
			typ, p, err := fr.Next()
			if err != nil {
				return
			}
			c.frames <- frame{typ, append([]byte(nil), p...)}
		}
	}()
	if h.Cols == 0 {
		h.Cols, h.Rows = 80, 24
	}
	if err := terminal.WriteJSONFrame(a, terminal.FrameHello, h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return c
}

// next returns the next non-data frame, collecting data frames on the way.
func (c *conn) next() frame {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return frame{}
			}
			if f.typ == terminal.FrameData {
				c.out.Write(f.p)
				continue
			}
			return f
		case <-timeout:
			c.t.Fatalf("no frame; output so far %q", c.out.String())
		}
	}
}

// waitOutput reads data frames until the output contains s.
func (c *conn) waitOutput(s string) {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for !strings.Contains(c.out.String(), s) {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("closed before %q; output %q", s, c.out.String())
			}
			if f.typ == terminal.FrameData {
				c.out.Write(f.p)
			} else {
				c.t.Fatalf("frame %c %s before %q", f.typ, f.p, s)
			}
		case <-timeout:
			c.t.Fatalf("no %q in %q", s, c.out.String())
		}
	}
}

func (c *conn) send(s string) {
	c.t.Helper()
	if err := terminal.WriteFrame(c.c, terminal.FrameData, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *conn) attached() terminal.Attached {
	c.t.Helper()
	f := c.next()
	if f.typ != terminal.FrameAttached {
		c.t.Fatalf("frame %c %s; want attached", f.typ, f.p)
	}
	var a terminal.Attached
	if err := json.Unmarshal(f.p, &a); err != nil {
		c.t.Fatal(err)
	}
	return a
}

func (c *conn) wireError() terminal.WireError {
	c.t.Helper()
	f := c.next()
	if f.typ != terminal.FrameError {
		c.t.Fatalf("frame %c %s; want an error", f.typ, f.p)
	}
	var e terminal.WireError
	_ = json.Unmarshal(f.p, &e)
	return e
}

func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	return err == nil && !strings.Contains(string(b), "State:\tZ")
}

func TestResumeReplaysWhatHappenedWhileAway(t *testing.T) {
	t.Parallel()
	m := newManager(t, Config{Window: time.Minute})
	c := dial(t, m, "ga_acct0001", nodetask.SessionPolicy{}, terminal.Hello{SessionID: "sess-0001", Mode: terminal.ModeNew})
	if a := c.attached(); a.Resumed || a.SessionID != "sess-0001" {
		t.Fatalf("attached %+v", a)
	}
	c.send("echo one-$((40+2))\n")
	c.waitOutput("one-42")
	// A command still running when the browser goes away.
	c.send("sleep 0.5; echo later-$((6*7))\n")
	c.c.Close()
	poll.Until(t, 10*time.Second, "detach", func() bool { s := m.Sessions("ga_acct0001"); return len(s) == 1 && !s[0].Attached })
	pid := m.Sessions("ga_acct0001")[0].PID
	time.Sleep(700 * time.Millisecond) // the command finishes while nobody is attached
	r := dial(t, m, "ga_acct0001", nodetask.SessionPolicy{}, terminal.Hello{SessionID: "sess-0001", Mode: terminal.ModeResume})
	if a := r.attached(); !a.Resumed {
		t.Fatalf("attached %+v; want resumed", a)
	}
	r.waitOutput("later-42")
	if s := m.Sessions("ga_acct0001"); len(s) != 1 || s[0].PID != pid || !s[0].Attached {
		t.Fatalf("sessions %+v; want the same shell, attached", s)
	}
	r.send("exit 3\n")
	f := r.next()
	var x terminal.Exit
	if f.typ != terminal.FrameExit || json.Unmarshal(f.p, &x) != nil || x.Status != 3 {
		t.Fatalf("frame %c %s; want exit 3", f.typ, f.p)
	}
	poll.Until(t, 10*time.Second, "session gone", func() bool { return len(m.Sessions("ga_acct0001")) == 0 })
}

func TestWindowEndsTheSessionAndItsProcesses(t *testing.T) {
	t.Parallel()
	m := newManager(t, Config{Window: time.Hour, HangupGrace: 200 * time.Millisecond})
	// The account's policy shortens the window.
	pol := nodetask.SessionPolicy{ReconnectWindowSeconds: 1}
	c := dial(t, m, "ga_acct0002", pol, terminal.Hello{SessionID: "sess-0002", Mode: terminal.ModeNew})
	c.attached()
	// A foreground job that ignores the hang-up, and its pid.
	// (The terminal echoes the command line; $((0)) makes the output differ.)
	c.send("sh -c 'trap \"\" HUP; echo child-$((0))$$; exec sleep 600'\n")
	c.waitOutput("child-0")
	poll.Until(t, 10*time.Second, "the pid", func() bool {
		select {
		case f := <-c.frames:
			c.out.Write(f.p)
		default:
		}
		return strings.Contains(c.out.String(), "\r\n") && strings.Count(c.out.String(), "child-0") == 1 &&
			strings.ContainsAny(c.out.String()[strings.Index(c.out.String(), "child-0")+7:], "\r\n")
	})
	out := c.out.String()
	i := strings.Index(out, "child-0") + len("child-0")
	j := i
	for j < len(out) && out[j] >= '0' && out[j] <= '9' {
		j++
	}
	child, _ := strconv.Atoi(out[i:j])
	shellPID := m.Sessions("ga_acct0002")[0].PID
	if !alive(child) || !alive(shellPID) {
		t.Fatalf("child %d or shell %d not running", child, shellPID)
	}
	start := time.Now()
	c.c.Close()
	poll.Until(t, 10*time.Second, "the session to end", func() bool { return len(m.Sessions("ga_acct0002")) == 0 })
	if d := time.Since(start); d < time.Second {
		t.Fatalf("ended after %v, before its 1 s window", d)
	}
	poll.Until(t, 10*time.Second, "the processes to die", func() bool { return !alive(child) && !alive(shellPID) })
	r := dial(t, m, "ga_acct0002", pol, terminal.Hello{SessionID: "sess-0002", Mode: terminal.ModeResume})
	if e := r.wireError(); e.Code != terminal.CodeSessionEnded {
		t.Fatalf("resume after the window: %+v", e)
	}
}

func TestTakeOverLimitAndRefusals(t *testing.T) {
	t.Parallel()
	m := newManager(t, Config{})
	pol := nodetask.SessionPolicy{MaxSessions: 1}
	a := dial(t, m, "ga_acct0003", pol, terminal.Hello{SessionID: "sess-0003", Mode: terminal.ModeNew})
	a.attached()
	// A second session is over the account's limit; another account is not.
	if e := dial(t, m, "ga_acct0003", pol, terminal.Hello{SessionID: "sess-0004", Mode: terminal.ModeNew}).wireError(); e.Code != terminal.CodeSessionLimit {
		t.Fatalf("second session: %+v", e)
	}
	dial(t, m, "ga_acct0004", pol, terminal.Hello{SessionID: "sess-0004", Mode: terminal.ModeNew}).attached()
	// The same id twice as new is refused; another account cannot resume it.
	if e := dial(t, m, "ga_acct0003", pol, terminal.Hello{SessionID: "sess-0003", Mode: terminal.ModeNew}).wireError(); e.Code != terminal.CodeSessionExists {
		t.Fatalf("duplicate id: %+v", e)
	}
	if e := dial(t, m, "ga_acct0004", pol, terminal.Hello{SessionID: "sess-0003", Mode: terminal.ModeResume}).wireError(); e.Code != terminal.CodeSessionEnded {
		t.Fatalf("another account's session: %+v", e)
	}
	// A second attach takes the session over; the first client is told.
	b := dial(t, m, "ga_acct0003", pol, terminal.Hello{SessionID: "sess-0003", Mode: terminal.ModeResume})
	b.attached()
	if e := a.wireError(); e.Code != terminal.CodeSessionTakenOver {
		t.Fatalf("first client: %+v", e)
	}
	b.send("echo still-$((1+1))\n")
	b.waitOutput("still-2")
	for _, h := range []terminal.Hello{
		{SessionID: "../../etc", Mode: terminal.ModeNew, Cols: 80, Rows: 24},
		{SessionID: "sess-0005", Mode: "attach", Cols: 80, Rows: 24},
		{SessionID: "sess-0005", Mode: terminal.ModeNew, Cols: 5000, Rows: 24},
	} {
		if e := dial(t, m, "ga_acct0005", pol, h).wireError(); e.Code != terminal.CodeSessionBadHello {
			t.Fatalf("hello %+v: %+v", h, e)
		}
	}
}

func TestEndAccountEndsItsSessionsOnly(t *testing.T) {
	t.Parallel()
	m := newManager(t, Config{})
	a := dial(t, m, "ga_acct0006", nodetask.SessionPolicy{}, terminal.Hello{SessionID: "sess-0006", Mode: terminal.ModeNew})
	a.attached()
	d := dial(t, m, "ga_acct0006", nodetask.SessionPolicy{}, terminal.Hello{SessionID: "sess-0007", Mode: terminal.ModeNew})
	d.attached()
	d.c.Close() // one detached
	o := dial(t, m, "ga_acct0007", nodetask.SessionPolicy{}, terminal.Hello{SessionID: "sess-0008", Mode: terminal.ModeNew})
	o.attached()
	var pids []int
	for _, s := range m.Sessions("ga_acct0006") {
		pids = append(pids, s.PID)
	}
	m.EndAccount("ga_acct0006")
	if e := a.wireError(); e.Code != terminal.CodeSessionEnded {
		t.Fatalf("attached client: %+v", e)
	}
	if n := len(m.Sessions("ga_acct0006")); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	for _, p := range pids {
		if alive(p) {
			t.Fatalf("shell %d survived", p)
		}
	}
	if len(m.Sessions("ga_acct0007")) != 1 {
		t.Fatal("another account's session was ended")
	}
}

func TestRing(t *testing.T) {
	r := newRing(8)
	r.Write([]byte("abc"))
	if string(r.Bytes()) != "abc" {
		t.Fatal(string(r.Bytes()))
	}
	r.Write([]byte("defgh"))
	if string(r.Bytes()) != "abcdefgh" {
		t.Fatal(string(r.Bytes()))
	}
	r.Write([]byte("ij"))
	if string(r.Bytes()) != "cdefghij" {
		t.Fatal(string(r.Bytes()))
	}
	r.Write([]byte("0123456789"))
	if string(r.Bytes()) != "23456789" {
		t.Fatal(string(r.Bytes()))
	}
	r.Write([]byte("x"))
	if string(r.Bytes()) != "3456789x" {
		t.Fatal(string(r.Bytes()))
	}
}
