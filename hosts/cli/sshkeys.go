package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// sshKeys registers and lists the SSH public keys provisioning installs on
// your allocations' nodes.
func (r *runner) sshKeys(args []string) error {
	if len(args) == 0 {
		return usagef("ssh-keys needs ls, add or rm")
	}
	switch args[0] {
	case "ls", "list":
		c, ctx, cancel, err := r.session(r.flags("ssh-keys ls"), args[1:], 0, 0, "no arguments", time.Minute)
		if err != nil {
			return err
		}
		defer cancel()
		ks, err := c.SSHKeys(ctx)
		if err != nil {
			return err
		}
		return r.out(map[string]any{"ssh_keys": ks}, func(w io.Writer) {
			rows := make([][]string, 0, len(ks))
			for _, k := range ks {
				rows = append(rows, []string{k.Id, k.Name, k.KeyType, k.Fingerprint})
			}
			if len(rows) == 0 {
				fmt.Fprintln(w, "No SSH keys. gpuaas ssh-keys add registers ~/.ssh/id_ed25519.pub; new nodes get every key listed here.")
				return
			}
			table(w, "ID\tNAME\tTYPE\tFINGERPRINT", rows)
		})
	case "add":
		return r.sshKeyAdd(args[1:])
	case "rm", "remove":
		f := r.flags("ssh-keys rm")
		c, ctx, cancel, err := r.session(f, args[1:], 1, 1, "a key id (gpuaas ssh-keys ls)", time.Minute)
		if err != nil {
			return err
		}
		defer cancel()
		if err := c.DeleteSSHKey(ctx, f.args[0]); err != nil {
			return err
		}
		return r.out(map[string]any{"removed": f.args[0]}, func(w io.Writer) { fmt.Fprintf(w, "Removed SSH key %s.\n", f.args[0]) })
	}
	return usagef("ssh-keys %s: unknown subcommand (ls, add, rm)", args[0])
}

// sshKeyAdd registers a public key file (default: the first of
// ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub).
func (r *runner) sshKeyAdd(args []string) error {
	f := r.flags("ssh-keys add")
	name := f.String("name", "", "a name for the key (default: the file's comment or name)")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.want(0, 1, "at most one public key file"); err != nil {
		return err
	}
	path := ""
	if len(f.args) == 1 {
		path = f.args[0]
	} else {
		home := r.env.Getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		for _, n := range []string{"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"} {
			if p := filepath.Join(home, ".ssh", n); fileExists(p) {
				path = p
				break
			}
		}
		if path == "" {
			return usagef("no ~/.ssh/id_ed25519.pub (make one with ssh-keygen -t ed25519), or name a .pub file")
		}
	}
	if !strings.HasSuffix(path, ".pub") {
		return usagef("%s: give the public key (.pub), never the private one", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	pub := strings.TrimSpace(string(b))
	if *name == "" {
		if fields := strings.Fields(pub); len(fields) >= 3 {
			*name = fields[2]
		} else {
			*name = filepath.Base(path)
		}
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	ctx, cancel := r.withTimeout(time.Minute)
	defer cancel()
	k, err := c.AddSSHKey(ctx, *name, pub)
	if client.ErrorCode(err) == "ssh_key_duplicate" {
		return r.out(map[string]any{"already_registered": path}, func(w io.Writer) { fmt.Fprintf(w, "%s is already registered.\n", path) })
	}
	if err != nil {
		return err
	}
	return r.out(k, func(w io.Writer) { fmt.Fprintf(w, "Registered %s as %q (%s).\n", path, k.Name, k.Fingerprint) })
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, os.ErrNotExist) && err == nil
}
