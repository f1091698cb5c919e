package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// AddSSHKey makes an Ed25519 key in memory and registers its public half
// under a unique name with the prefix; it returns the key's id and signer.
func (c *Client) AddSSHKey(ctx context.Context, namePrefix string) (string, ssh.Signer, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return "", nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", nil, err
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	key, err := c.API().AddSSHKey(ctx, namePrefix+"-"+hex.EncodeToString(suffix), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))))
	if err != nil {
		return "", nil, fmt.Errorf("add SSH key: %w", statusOf("POST", "/api/v1/ssh-keys", err))
	}
	return key.Id, signer, nil
}

// GoldenPath walks the compute golden path as the signed-in user of c, who
// must have credit: add an SSH key (made in memory), allocate a node of sku
// (any with capacity when empty) and wait for active, ssh in with that key
// and run a command, run `echo hi-$((6*7))` in the browser terminal, release, and
// check that SSH is refused and the node is available again. step reports
// progress. A failed run releases what it allocated.
func GoldenPath(ctx context.Context, c *Client, sku string, step func(format string, a ...any)) error {
	keyID, signer, err := c.AddSSHKey(ctx, "golden-path")
	if err != nil {
		return err
	}
	defer func() { _ = c.Call(context.Background(), "DELETE", "/api/v1/ssh-keys/"+keyID, nil, nil) }()
	step("added SSH key %s", keyID)

	skuID, avail, err := c.PickSKU(ctx, sku)
	if err != nil {
		return err
	}
	start := time.Now()
	var alloc Allocation
	if err := c.Call(ctx, "POST", "/api/v1/allocations", map[string]any{"sku_id": skuID, "ssh_key_ids": []string{keyID}}, &alloc); err != nil {
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
	step("browser terminal ran `echo hi-$((6*7))` and printed hi-42")

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

func terminal(ctx context.Context, c *Client, allocationID string) error {
	t, err := c.OpenTerminal(ctx, allocationID, "")
	if err != nil {
		return err
	}
	defer t.Close()
	// The terminal echoes the typed line; only the command's output holds
	// "hi-42" (the echoed line holds "hi-$((6*7))"), whatever the shell's
	// prompt and escape sequences around it.
	if err := t.Send("echo hi-$((6*7))\n"); err != nil {
		return err
	}
	if err := t.WaitFor("hi-42", 20*time.Second); err != nil {
		return err
	}
	return t.Send("exit\n")
}
