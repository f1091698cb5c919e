// Command golden-path walks the product's reason to exist against a running
// platform (`gpuaas dev`), as a signed-in user would, and exits non-zero on
// the first thing that does not work:
//
//  1. sign in through the dev identity provider (PKCE) and read /users/me;
//
//  2. top up credit through the dev checkout if the balance is not positive;
//
//  3. add an SSH key (made in memory for this run);
//
//  4. POST /allocations for a SKU with capacity and wait for `active`;
//
//  5. ssh into the node with that key and run a command;
//
//  6. open the browser terminal WebSocket, run `echo hi`, expect `hi`;
//
//  7. release, wait for `released`, and check SSH is refused and the node is
//     available again.
//
//     go run ./scripts/golden-path -api http://127.0.0.1:8080 -user alice
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/testkit/e2e"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "golden-path: FAIL:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stdout, "golden-path: OK")
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("golden-path", flag.ContinueOnError)
	api := fs.String("api", "http://127.0.0.1:8080", "base URL of the platform API")
	user := fs.String("user", "alice", "dev identity provider user")
	password := fs.String("password", "", "password (default: the user name)")
	sku := fs.String("sku", "", "SKU to allocate (default: the first with capacity)")
	timeout := fs.Duration("timeout", 3*time.Minute, "overall time limit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *password == "" {
		*password = *user
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	step := func(format string, a ...any) { fmt.Fprintf(out, "• "+format+"\n", a...) }

	c := e2e.New(*api)
	if err := c.Login(ctx, *user, *password); err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	me, err := c.Me(ctx)
	if err != nil {
		return fmt.Errorf("users/me: %w", err)
	}
	step("signed in as %s (tenant %s, project %s)", me.User.Email, me.Tenant.ID, c.Project)

	bal, err := c.Balance(ctx)
	if err != nil {
		return fmt.Errorf("balance: %w", err)
	}
	if bal.BalanceMinor <= 0 {
		if err := c.TopUp(ctx, 5000, "usd"); err != nil {
			return err
		}
		if bal, err = c.Balance(ctx); err != nil {
			return fmt.Errorf("balance: %w", err)
		}
		if bal.BalanceMinor <= 0 {
			return fmt.Errorf("balance is %d after paying", bal.BalanceMinor)
		}
	}
	step("balance %d %s", bal.BalanceMinor, bal.Currency)

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	sshPub, _ := ssh.NewPublicKey(pub)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	var key struct{ ID string }
	if err := c.Call(ctx, "POST", "/api/v1/ssh-keys", map[string]any{"name": "golden-path-" + hex.EncodeToString(suffix),
		"public_key": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))}, &key); err != nil {
		return fmt.Errorf("add SSH key: %w", err)
	}
	defer func() { _ = c.Call(context.Background(), "DELETE", "/api/v1/ssh-keys/"+key.ID, nil, nil) }()
	step("added SSH key %s", key.ID)

	skuID, avail, err := c.PickSKU(ctx, *sku)
	if err != nil {
		return err
	}
	start := time.Now()
	var alloc e2e.Allocation
	if err := c.Call(ctx, "POST", "/api/v1/allocations", map[string]any{"sku_id": skuID, "ssh_key_ids": []string{key.ID}}, &alloc); err != nil {
		return fmt.Errorf("create allocation: %w", err)
	}
	step("requested allocation %s on %s (%d available)", alloc.ID, skuID, avail)
	released := false
	defer func() {
		if !released { // leave no node held behind a failed run
			_ = c.Call(context.Background(), "POST", "/api/v1/allocations/"+alloc.ID+"/release", nil, nil)
		}
	}()
	if alloc, err = c.WaitState(ctx, alloc.ID, "active"); err != nil {
		return err
	}
	step("allocation active after %s; connect with: %s", time.Since(start).Round(time.Millisecond), alloc.Access.Command)

	addr := net.JoinHostPort(alloc.Access.Host, fmt.Sprint(alloc.Access.Port))
	outSSH, err := sshRun(addr, alloc.Access.User, signer, "echo golden-$((40+2))")
	if err != nil {
		return fmt.Errorf("ssh %s: %w", addr, err)
	}
	if strings.TrimSpace(outSSH) != "golden-42" {
		return fmt.Errorf("ssh command printed %q, want golden-42", outSSH)
	}
	step("ssh %s@%s ran a command", alloc.Access.User, addr)

	if err := terminal(ctx, c, alloc.ID); err != nil {
		return fmt.Errorf("browser terminal: %w", err)
	}
	step("browser terminal ran `echo hi` and printed hi")

	if err := c.Call(ctx, "POST", "/api/v1/allocations/"+alloc.ID+"/release", nil, nil); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if _, err := c.WaitState(ctx, alloc.ID, "released"); err != nil {
		return err
	}
	released = true
	step("allocation released")
	if _, err := sshRun(addr, alloc.Access.User, signer, "true"); err == nil {
		return errors.New("ssh still works after release")
	}
	step("ssh refused after release")
	if _, after, err := c.PickSKU(ctx, skuID); err != nil || after < avail {
		return fmt.Errorf("the node is not available again (%d available, %d before the allocation; %v)", after, avail, err)
	}
	step("node available again")
	return nil
}

func sshRun(addr, user string, signer ssh.Signer, cmd string) (string, error) {
	conn, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		// The dev nodes make their host keys at first start; this script
		// checks reachability and authorisation, not host identity.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	sess, err := conn.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	b, err := sess.CombinedOutput(cmd)
	return string(b), err
}

func terminal(ctx context.Context, c *e2e.Client, allocationID string) error {
	var tok struct {
		Token         string
		WebsocketPath string `json:"websocket_path"`
		Subprotocol   string
	}
	if err := c.Call(ctx, "POST", "/api/v1/allocations/"+allocationID+"/terminal-token", nil, &tok); err != nil {
		return fmt.Errorf("mint token: %w", err)
	}
	u, _ := url.Parse(c.Base)
	origin := u.Scheme + "://" + u.Host
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = tok.WebsocketPath
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second, Subprotocols: []string{tok.Subprotocol, "bearer." + tok.Token}}
	ws, resp, err := d.DialContext(ctx, u.String(), http.Header{"Origin": {origin}})
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("dial: %w (%d %s)", err, resp.StatusCode, strings.TrimSpace(string(b)))
		}
		return fmt.Errorf("dial: %w", err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte("echo hi\n")); err != nil {
		return err
	}
	// The terminal echoes the typed line ("echo hi"); the command's output is
	// "hi" on a line of its own, possibly after the shell's prompt when the
	// prompt was printed after the echo ("# hi").
	var seen bytes.Buffer
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_ = ws.SetReadDeadline(deadline)
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("read: %w (so far %q)", err, seen.String())
		}
		seen.Write(msg)
		for _, line := range strings.Split(strings.ReplaceAll(seen.String(), "\r", ""), "\n") {
			line = strings.TrimSpace(line)
			if line == "hi" || (strings.HasSuffix(line, " hi") && !strings.Contains(line, "echo")) {
				_ = ws.WriteMessage(websocket.BinaryMessage, []byte("exit\n"))
				return nil
			}
		}
	}
	return fmt.Errorf("no 'hi' from the terminal (got %q)", seen.String())
}
