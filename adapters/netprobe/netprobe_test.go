package netprobe_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/netprobe"
	"github.com/gpuaas/gpuaas/core/fault"
)

// serve accepts connections on 127.0.0.1 and writes greeting to each (and
// then holds the connection open until the test ends).
func serve(t *testing.T, greeting string) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write([]byte(greeting))
				<-done
			}()
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

func TestProbe(t *testing.T) {
	t.Parallel()
	closedHost, closedPort := func() (string, int) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := ln.Addr().(*net.TCPAddr)
		ln.Close()
		return a.IP.String(), a.Port
	}()
	for _, c := range []struct {
		name      string
		greeting  string
		closed    bool
		reachable bool
		banner    string
		errPart   string
	}{
		{name: "openssh", greeting: "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3\r\n", reachable: true, banner: "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3"},
		{name: "pre-banner lines", greeting: "hello\r\nwelcome\r\nSSH-2.0-dropbear\r\n", reachable: true, banner: "SSH-2.0-dropbear"},
		{name: "ssh 1 only", greeting: "SSH-1.5-old\r\n", banner: "SSH-1.5-old", errPart: "SSH 2"},
		{name: "http server", greeting: strings.Repeat("HTTP/1.1 400 Bad Request\r\n", 25), errPart: "no SSH identification"},
		{name: "silent server", greeting: "", errPart: "timed out"},
		{name: "nothing listening", closed: true, errPart: "connect"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, err := netprobe.New(netprobe.Config{Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			host, port := closedHost, closedPort
			if !c.closed {
				host, port = serve(t, c.greeting)
			}
			res, err := p.Probe(context.Background(), host, port)
			if err != nil {
				t.Fatal(err)
			}
			if res.Reachable != c.reachable || res.Banner != c.banner || !strings.Contains(res.Error, c.errPart) {
				t.Fatalf("probe: %+v; want reachable=%v banner=%q error containing %q", res, c.reachable, c.banner, c.errPart)
			}
			if c.reachable && (res.Latency <= 0 || res.Error != "") {
				t.Fatalf("reachable probe without latency or with an error: %+v", res)
			}
		})
	}
}

func TestProbeRefusesBadInput(t *testing.T) {
	t.Parallel()
	p, _ := netprobe.New(netprobe.Config{})
	for _, c := range []struct {
		host string
		port int
	}{{"", 22}, {"a b", 22}, {"127.0.0.1", 0}, {"127.0.0.1", 70000}} {
		if _, err := p.Probe(context.Background(), c.host, c.port); !fault.IsKind(err, fault.KindInvalid) {
			t.Errorf("Probe(%q, %d): %v; want invalid", c.host, c.port, err)
		}
	}
	if _, err := netprobe.New(netprobe.Config{Timeout: -1}); err == nil {
		t.Fatal("negative timeout accepted")
	}
}
