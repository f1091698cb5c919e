package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// keys manages personal API keys (a browser sign-in is needed: keys do
// not manage keys).
func (r *runner) keys(args []string) error {
	if len(args) == 0 {
		return usagef("keys needs ls, create or revoke")
	}
	switch args[0] {
	case "ls", "list":
		return r.keysList(args[1:])
	case "create":
		return r.keysCreate(args[1:])
	case "revoke":
		return r.keysRevoke(args[1:])
	}
	return usagef("keys %s: unknown subcommand (ls, create, revoke)", args[0])
}

func (r *runner) keysList(args []string) error {
	c, ctx, cancel, err := r.session(r.flags("keys ls"), args, 0, 0, "no arguments", time.Minute)
	if err != nil {
		return err
	}
	defer cancel()
	ks, err := c.APIKeys(ctx)
	if err != nil {
		return err
	}
	now := r.env.Now()
	return r.out(map[string]any{"api_keys": ks}, func(w io.Writer) {
		rows := make([][]string, 0, len(ks))
		for _, k := range ks {
			used, expires, capS := "never", "never", "none"
			if k.LastUsedAt != nil {
				used = ago(now, *k.LastUsedAt)
			}
			if k.ExpiresAt != nil {
				expires = k.ExpiresAt.Format("2006-01-02")
			}
			if k.SpendCapMinor > 0 {
				capS = money(k.SpendCapMinor, "") + "/day"
			}
			scopes := make([]string, 0, len(k.Scopes))
			for _, s := range k.Scopes {
				scopes = append(scopes, string(s))
			}
			rows = append(rows, []string{k.Id, k.Name, k.Prefix + "…", strings.Join(scopes, ","), capS, expires, used})
		}
		table(w, "ID\tNAME\tKEY\tSCOPES\tSPEND CAP\tEXPIRES\tLAST USED", rows)
	})
}

func (r *runner) keysCreate(args []string) error {
	f := r.flags("keys create")
	name := f.String("name", "", "a name to tell the key apart")
	scopes := f.String("scopes", "read", "comma-separated: read, allocations, storage, billing")
	expires := f.positiveDuration("expires", 0, "lifetime: days (30d) or a duration (12h); default: until revoked")
	spendCap := f.String("spend-cap", "", "most its allocations may spend per UTC day (e.g. 50)")
	c, ctx, cancel, err := r.session(f, args, 0, 0, "no arguments", time.Minute)
	if err != nil {
		return err
	}
	defer cancel()
	if *name == "" {
		return usagef("keys create needs --name")
	}
	project := c.Project()
	if project == "" {
		return usagef("keys create needs a project (--project)")
	}
	req := client.CreateAPIKey{Name: *name, ProjectId: project}
	for _, s := range strings.Split(*scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			req.Scopes = append(req.Scopes, client.CredentialScope(s))
		}
	}
	if *expires > 0 {
		t := r.env.Now().Add(*expires)
		req.ExpiresAt = &t
	}
	if *spendCap != "" {
		n, err := parseMoney(*spendCap)
		if err != nil {
			return usagef("--spend-cap: %v", err)
		}
		req.SpendCapMinor = &n
	}
	k, err := c.CreateAPIKey(ctx, req)
	if err != nil {
		return err
	}
	return r.out(k, func(w io.Writer) {
		fmt.Fprintf(w, "API key %s (%s) for project %s:\n\n  %s\n\nIt is shown once; keep it like a password. Use it with `gpuaas login --api-key-stdin` or GPUAAS_API_KEY.\n",
			k.ApiKey.Name, k.ApiKey.Id, k.ApiKey.ProjectId, k.Secret)
	})
}

func (r *runner) keysRevoke(args []string) error {
	f := r.flags("keys revoke")
	c, ctx, cancel, err := r.session(f, args, 1, 1, "a key id (gpuaas keys ls)", time.Minute)
	if err != nil {
		return err
	}
	defer cancel()
	if err := c.RevokeAPIKey(ctx, f.args[0]); err != nil {
		return err
	}
	return r.out(map[string]any{"revoked": f.args[0]}, func(w io.Writer) {
		fmt.Fprintf(w, "Revoked %s; it stops working within a second.\n", f.args[0])
	})
}
