package terminalhost_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/core/nodetask"
)

// benchBytes is what each transfer moves: `head -c` of /dev/zero through the
// shell's pty, once through the gateway and once over a direct SSH session
// to the same server, so the ratio isolates the gateway's cost.
const benchBytes = 50_000_000

var benchCmd = fmt.Sprintf("head -c %d /dev/zero; exit\n", benchBytes)

// BenchmarkThroughput reports node → browser throughput through the
// gateway, through a direct SSH session, and their ratio (goal ≥ 0.7).
//
//	go test ./hosts/terminal -run '^$' -bench Throughput -benchtime 3x
func BenchmarkThroughput(b *testing.B) {
	r := newRig(b)
	var gwBytes, directBytes int64
	var gwTime, directTime time.Duration
	for i := 0; i < b.N; i++ {
		n, d := benchGateway(b, r)
		gwBytes, gwTime = gwBytes+n, gwTime+d
		n, d = benchDirect(b, r)
		directBytes, directTime = directBytes+n, directTime+d
	}
	gw := float64(gwBytes) / gwTime.Seconds() / 1e6
	direct := float64(directBytes) / directTime.Seconds() / 1e6
	b.ReportMetric(gw, "gateway_MB/s")
	b.ReportMetric(direct, "direct_MB/s")
	b.ReportMetric(gw/direct, "ratio")
	b.Logf("gateway %.1f MB/s, direct SSH %.1f MB/s, ratio %.2f", gw, direct, gw/direct)
}

func benchGateway(b *testing.B, r *rig) (int64, time.Duration) {
	b.Helper()
	tok := r.mint(b, r.alloc)
	start := time.Now()
	ws, resp, err := subprotocolDialer(tok).Dial(r.url+r.alloc.ID, browserHeader())
	if err != nil {
		b.Fatalf("open: %v (%s)", err, respCode(resp))
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte(benchCmd)); err != nil {
		b.Fatal(err)
	}
	var n int64
	_ = ws.SetReadDeadline(time.Now().Add(2 * time.Minute))
	for {
		_, rd, err := ws.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
				b.Fatalf("gateway transfer ended with %v after %d bytes", err, n)
			}
			break
		}
		m, _ := io.Copy(io.Discard, rd)
		n += m
	}
	d := time.Since(start)
	if n < benchBytes {
		b.Fatalf("gateway delivered %d bytes, want at least %d", n, benchBytes)
	}
	return n, d
}

func benchDirect(b *testing.B, r *rig) (int64, time.Duration) {
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
	start := time.Now()
	client, err := ssh.Dial("tcp", r.sshd.addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(certSigner)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	if err := sess.RequestPty("xterm-256color", 24, 80, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		b.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		b.Fatal(err)
	}
	if _, err := io.WriteString(stdin, benchCmd); err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, stdout)
	if err != nil {
		b.Fatal(err)
	}
	_ = sess.Wait()
	d := time.Since(start)
	if n < benchBytes {
		b.Fatalf("direct SSH delivered %d bytes, want at least %d", n, benchBytes)
	}
	return n, d
}
