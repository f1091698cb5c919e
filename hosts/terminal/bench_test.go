package terminalhost_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/terminal"
)

// The gateway's cost is measured against the same terminal session reached
// directly: an SSH client that opens the session subsystem on the node and
// speaks its frames, exactly what the gateway does for a browser. Both
// paths end in the same node-side session (termsession), so the ratio and
// the latency difference are the gateway's alone.

// benchBytes is what each throughput sample moves: `head -c` of /dev/zero
// through the session's pty.
const benchBytes = 20_000_000

var benchCmd = fmt.Sprintf("head -c %d /dev/zero; exit\n", benchBytes)

// termConn is one terminal session, through the gateway or direct.
type termConn interface {
	send(p []byte) error
	// recv returns the next output chunk; io.EOF when the session ended.
	recv() ([]byte, error)
	close()
}

type gatewayConn struct{ ws *websocket.Conn }

func (g gatewayConn) send(p []byte) error { return g.ws.WriteMessage(websocket.BinaryMessage, p) }
func (g gatewayConn) recv() ([]byte, error) {
	_, b, err := g.ws.ReadMessage()
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
		return nil, io.EOF
	}
	return b, err
}
func (g gatewayConn) close() { _ = g.ws.Close() }

func openGateway(b *testing.B, r *rig) termConn {
	b.Helper()
	ws, resp, err := subprotocolDialer(r.mint(b, r.alloc)).Dial(r.url+r.alloc.ID, browserHeader())
	if err != nil {
		b.Fatalf("open: %v (%s)", err, respCode(resp))
	}
	return gatewayConn{ws}
}

type directConn struct {
	client *ssh.Client
	ch     ssh.Channel
	frames *terminal.FrameReader
}

func (d *directConn) send(p []byte) error { return terminal.WriteFrame(d.ch, terminal.FrameData, p) }
func (d *directConn) recv() ([]byte, error) {
	for {
		typ, p, err := d.frames.Next()
		if err != nil {
			return nil, err
		}
		switch typ {
		case terminal.FrameData:
			return p, nil
		case terminal.FrameExit:
			return nil, io.EOF
		}
	}
}
func (d *directConn) close() { _ = d.client.Close() }

// openDirect opens a new session on the node's subsystem with a session
// certificate from the test CA, as the gateway does.
func openDirect(b *testing.B, r *rig) termConn {
	b.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	user := nodetask.UsernameFor(r.alloc.ID)
	certText, err := r.ca.SignUserKey(context.Background(), string(ssh.MarshalAuthorizedKey(signer.PublicKey())), user, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	pub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(certText))
	certSigner, err := ssh.NewCertSigner(pub.(*ssh.Certificate), signer)
	if err != nil {
		b.Fatal(err)
	}
	client, err := ssh.Dial("tcp", r.sshd.addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(certSigner)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	ch, reqs, err := client.OpenChannel("session", nil)
	if err != nil {
		b.Fatal(err)
	}
	go ssh.DiscardRequests(reqs)
	if ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{terminal.SessionSubsystem})); !ok || err != nil {
		b.Fatalf("subsystem: %v", err)
	}
	var sid [8]byte
	_, _ = rand.Read(sid[:])
	if err := terminal.WriteJSONFrame(ch, terminal.FrameHello, terminal.Hello{SessionID: fmt.Sprintf("direct-%x", sid),
		Mode: terminal.ModeNew, Cols: 80, Rows: 24, Term: "xterm-256color"}); err != nil {
		b.Fatal(err)
	}
	d := &directConn{client: client, ch: ch, frames: terminal.NewFrameReader(ch)}
	if typ, p, err := d.frames.Next(); err != nil || typ != terminal.FrameAttached {
		b.Fatalf("direct session: frame %c %s, %v", typ, p, err)
	}
	return d
}

// throughput runs one transfer and returns its MB/s (connection set-up
// included, as a browser would see it).
func throughput(b *testing.B, open func() termConn) float64 {
	b.Helper()
	start := time.Now()
	c := open()
	defer c.close()
	if err := c.send([]byte(benchCmd)); err != nil {
		b.Fatal(err)
	}
	var n int
	for {
		p, err := c.recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatalf("transfer ended with %v after %d bytes", err, n)
		}
		n += len(p)
	}
	if n < benchBytes {
		b.Fatalf("delivered %d bytes, want at least %d", n, benchBytes)
	}
	return float64(n) / time.Since(start).Seconds() / 1e6
}

// echoP50 types one character at a time and waits for the terminal's echo,
// rounds times, and returns the median round trip.
func echoP50(b *testing.B, c termConn, rounds int) time.Duration {
	b.Helper()
	// Let the prompt arrive first.
	if err := c.send([]byte("echo rea''dy\n")); err != nil {
		b.Fatal(err)
	}
	var seen []byte
	for !containsBytes(seen, "ready") {
		p, err := c.recv()
		if err != nil {
			b.Fatal(err)
		}
		seen = append(seen, p...)
	}
	rtts := make([]time.Duration, 0, rounds)
	for i := 0; i < rounds; i++ {
		ch := byte('a' + i%26)
		start := time.Now()
		if err := c.send([]byte{ch}); err != nil {
			b.Fatal(err)
		}
		for got := false; !got; {
			p, err := c.recv()
			if err != nil {
				b.Fatal(err)
			}
			for _, x := range p {
				got = got || x == ch
			}
		}
		rtts = append(rtts, time.Since(start))
	}
	// End the session (a closed connection would only detach it and keep
	// it for the reconnect window): ^U drops the typed characters first.
	if err := c.send([]byte("\x15exit\n")); err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := c.recv(); err != nil {
			break
		}
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2]
}

func containsBytes(b []byte, s string) bool { return strings.Contains(string(b), s) }

// BenchmarkThroughput reports node → browser throughput through the
// gateway and directly to the same session, from 5 interleaved samples
// each (min and median), and the ratio of the medians (goal ≥ 0.8).
//
//	go test ./hosts/terminal -run '^$' -bench Throughput -benchtime 1x
func BenchmarkThroughput(b *testing.B) {
	r := newRig(b)
	for range b.N {
		var gw, direct []float64
		for round := 0; round < 5; round++ {
			gw = append(gw, throughput(b, func() termConn { return openGateway(b, r) }))
			direct = append(direct, throughput(b, func() termConn { return openDirect(b, r) }))
		}
		slices.Sort(gw)
		slices.Sort(direct)
		ratio := gw[2] / direct[2]
		b.ReportMetric(gw[2], "gateway_MB/s")
		b.ReportMetric(direct[2], "direct_MB/s")
		b.ReportMetric(ratio, "ratio")
		b.Logf("terminal throughput (5 interleaved samples of %d MB): gateway min %.1f median %.1f MB/s; direct SSH min %.1f median %.1f MB/s; ratio of medians %.2f (goal ≥ 0.8)",
			benchBytes/1_000_000, gw[0], gw[2], direct[0], direct[2], ratio)
	}
}

// BenchmarkEchoLatency reports the keystroke → echo round trip through the
// gateway and directly to the same kind of session, from 5 interleaved
// samples of 200 keystrokes (min and median of the per-sample p50), and
// the latency the gateway adds (median difference; goal ≤ 1 ms).
//
//	go test ./hosts/terminal -run '^$' -bench EchoLatency -benchtime 1x
func BenchmarkEchoLatency(b *testing.B) {
	r := newRig(b)
	const rounds = 200
	for range b.N {
		var gw, direct, added []time.Duration
		for round := 0; round < 5; round++ {
			g := openGateway(b, r)
			gp := echoP50(b, g, rounds)
			g.close()
			d := openDirect(b, r)
			dp := echoP50(b, d, rounds)
			d.close()
			gw, direct, added = append(gw, gp), append(direct, dp), append(added, gp-dp)
		}
		slices.Sort(gw)
		slices.Sort(direct)
		slices.Sort(added)
		b.ReportMetric(float64(gw[2].Microseconds()), "gateway_p50_µs")
		b.ReportMetric(float64(direct[2].Microseconds()), "direct_p50_µs")
		b.ReportMetric(float64(added[2].Microseconds()), "added_p50_µs")
		b.Logf("terminal echo p50 (5 interleaved samples of %d keystrokes): gateway min %v median %v; direct SSH min %v median %v; added by the gateway median %v (goal ≤ 1 ms)",
			rounds, gw[0], gw[2], direct[0], direct[2], added[2])
	}
}
