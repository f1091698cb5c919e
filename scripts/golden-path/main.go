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
	"encoding/json"
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

	"github.com/gpuaas/gpuaas/testkit/tokens/signin"
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

type client struct {
	base    string
	hc      *http.Client
	token   string
	project string
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

	c := &client{base: strings.TrimRight(*api, "/"), hc: &http.Client{Timeout: 30 * time.Second}}
	if err := c.login(ctx, *user, *password); err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	var me struct {
		User     struct{ ID, Email string }
		Tenant   struct{ ID string }
		Projects []struct {
			ID        string
			IsDefault bool `json:"is_default"`
		}
	}
	if err := c.call(ctx, "GET", "/api/v1/users/me", nil, &me); err != nil {
		return fmt.Errorf("users/me: %w", err)
	}
	for _, p := range me.Projects {
		if p.IsDefault {
			c.project = p.ID
		}
	}
	if c.project == "" {
		return errors.New("users/me shows no default project")
	}
	step("signed in as %s (tenant %s, project %s)", me.User.Email, me.Tenant.ID, c.project)

	var bal struct {
		BalanceMinor int64 `json:"balance_minor"`
		Currency     string
	}
	if err := c.call(ctx, "GET", "/api/v1/billing/balance", nil, &bal); err != nil {
		return fmt.Errorf("balance: %w", err)
	}
	if bal.BalanceMinor <= 0 {
		var cs struct {
			CheckoutURL string `json:"checkout_url"`
		}
		if err := c.call(ctx, "POST", "/api/v1/payments/checkout-session",
			map[string]any{"amount_minor": 5000, "currency": "usd"}, &cs); err != nil {
			return fmt.Errorf("checkout: %w", err)
		}
		if err := c.pay(ctx, cs.CheckoutURL); err != nil {
			return fmt.Errorf("dev checkout: %w", err)
		}
		if err := c.call(ctx, "GET", "/api/v1/billing/balance", nil, &bal); err != nil {
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
	if err := c.call(ctx, "POST", "/api/v1/ssh-keys", map[string]any{"name": "golden-path-" + hex.EncodeToString(suffix),
		"public_key": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))}, &key); err != nil {
		return fmt.Errorf("add SSH key: %w", err)
	}
	defer func() { _ = c.call(context.Background(), "DELETE", "/api/v1/ssh-keys/"+key.ID, nil, nil) }()
	step("added SSH key %s", key.ID)

	skuID, avail, err := c.pickSKU(ctx, *sku)
	if err != nil {
		return err
	}
	start := time.Now()
	var alloc allocation
	if err := c.call(ctx, "POST", "/api/v1/allocations", map[string]any{"sku_id": skuID, "ssh_key_ids": []string{key.ID}}, &alloc); err != nil {
		return fmt.Errorf("create allocation: %w", err)
	}
	step("requested allocation %s on %s (%d available)", alloc.ID, skuID, avail)
	released := false
	defer func() {
		if !released { // leave no node held behind a failed run
			_ = c.call(context.Background(), "POST", "/api/v1/allocations/"+alloc.ID+"/release", nil, nil)
		}
	}()
	if alloc, err = c.waitState(ctx, alloc.ID, "active"); err != nil {
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

	if err := c.terminal(ctx, alloc.ID); err != nil {
		return fmt.Errorf("browser terminal: %w", err)
	}
	step("browser terminal ran `echo hi` and printed hi")

	if err := c.call(ctx, "POST", "/api/v1/allocations/"+alloc.ID+"/release", nil, nil); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if _, err := c.waitState(ctx, alloc.ID, "released"); err != nil {
		return err
	}
	released = true
	step("allocation released")
	if _, err := sshRun(addr, alloc.Access.User, signer, "true"); err == nil {
		return errors.New("ssh still works after release")
	}
	step("ssh refused after release")
	if _, after, err := c.pickSKU(ctx, skuID); err != nil || after < avail {
		return fmt.Errorf("the node is not available again (%d available, %d before the allocation; %v)", after, avail, err)
	}
	step("node available again")
	return nil
}

type allocation struct {
	ID          string
	State       string
	FailureCode string `json:"failure_code"`
	Access      struct {
		Host    string
		Port    int
		User    string
		Command string
	}
}

func (c *client) pickSKU(ctx context.Context, want string) (string, int, error) {
	var skus struct {
		SKUs []struct {
			ID        string
			Available int
		} `json:"skus"`
	}
	if err := c.call(ctx, "GET", "/api/v1/skus", nil, &skus); err != nil {
		return "", 0, fmt.Errorf("skus: %w", err)
	}
	for _, s := range skus.SKUs {
		if (want == "" && s.Available > 0) || s.ID == want {
			return s.ID, s.Available, nil
		}
	}
	return "", 0, errors.New("no SKU has capacity (is a node enrolled and heartbeating?)")
}

func (c *client) waitState(ctx context.Context, id, want string) (allocation, error) {
	var a allocation
	for {
		if err := c.call(ctx, "GET", "/api/v1/allocations/"+id, nil, &a); err != nil {
			return a, fmt.Errorf("get allocation: %w", err)
		}
		if a.State == want {
			return a, nil
		}
		if a.State == "failed" || a.State == "release_failed" {
			return a, fmt.Errorf("allocation %s ended %s (%s) while waiting for %s", id, a.State, a.FailureCode, want)
		}
		select {
		case <-ctx.Done():
			return a, fmt.Errorf("allocation %s still %s, waited for %s: %w", id, a.State, want, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
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

func (c *client) terminal(ctx context.Context, allocationID string) error {
	var tok struct {
		Token         string
		WebsocketPath string `json:"websocket_path"`
		Subprotocol   string
	}
	if err := c.call(ctx, "POST", "/api/v1/allocations/"+allocationID+"/terminal-token", nil, &tok); err != nil {
		return fmt.Errorf("mint token: %w", err)
	}
	u, _ := url.Parse(c.base)
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

// pay "presses" Pay on the dev checkout page.
func (c *client) pay(ctx context.Context, checkoutURL string) error {
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(checkoutURL, "/")+"/pay", nil)
	if err != nil {
		return err
	}
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

func (c *client) login(ctx context.Context, user, password string) error {
	redirect := c.base + "/auth/callback"
	cb, err := signin.Login(ctx, signin.Params{StartURL: c.base + "/api/v1/auth/oidc/authorize?" +
		url.Values{"redirect_uri": {redirect}}.Encode(), RedirectURI: redirect, Username: user, Password: password, HTTPClient: c.hc})
	if err != nil {
		return err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.call(ctx, "POST", "/api/v1/auth/oidc/exchange", map[string]string{"code": cb.Code, "state": cb.State,
		"redirect_uri": redirect}, &tok); err != nil {
		return err
	}
	c.token = tok.AccessToken
	return nil
}

// call sends a JSON request with the session's token, active project and a
// fresh idempotency key on writes, and decodes a 2xx JSON answer into out.
func (c *client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.project != "" {
		req.Header.Set("X-Project-ID", c.project)
	}
	if method != "GET" {
		k := make([]byte, 16)
		_, _ = rand.Read(k)
		req.Header.Set("X-Idempotency-Key", hex.EncodeToString(k))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}
