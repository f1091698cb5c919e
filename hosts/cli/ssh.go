package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// The managed block of ~/.ssh/config (Coder's config-ssh does the same):
// everything between the markers is rewritten by every run; nothing
// outside them is touched.
const (
	blockStart = "# ------------ START-GPUAAS -------------"
	blockEnd   = "# ------------ END-GPUAAS ---------------"
)

// knownHostsPath is the CLI's own known_hosts: the nodes' host keys as
// their agents reported them to the platform, so ssh verifies the node
// without trusting it on first use.
func (r *runner) knownHostsPath() (string, error) {
	d, err := r.configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "known_hosts"), nil
}

// hostEntry is one allocation as ssh sees it.
type hostEntry struct {
	Alias        string `json:"alias"`
	AllocationID string `json:"allocation_id"`
	Host         string `json:"host"`
	Port         int    `json:"port"`
	User         string `json:"user"`
	HostKey      string `json:"host_key,omitempty"`
}

func entryOf(a client.Allocation) (hostEntry, bool) {
	if a.State != client.StateActive || a.Access == nil {
		return hostEntry{}, false
	}
	e := hostEntry{Alias: hostAlias(a), AllocationID: a.Id, Host: a.Access.Host, Port: a.Access.Port, User: a.Access.User}
	if a.Access.HostKey != nil {
		e.HostKey = strings.TrimSpace(*a.Access.HostKey)
	}
	return e, true
}

// sshOptions are the options that pin an entry's host key (or, when the
// platform has none for the node, accept a new key once and pin it).
func sshOptions(e hostEntry, knownHosts string) [][2]string {
	opts := [][2]string{{"HostKeyAlias", e.Alias}, {"UserKnownHostsFile", knownHosts}}
	if e.HostKey != "" {
		return append(opts, [2]string{"StrictHostKeyChecking", "yes"})
	}
	return append(opts, [2]string{"StrictHostKeyChecking", "accept-new"})
}

// writeKnownHosts records the entries' host keys under their aliases,
// keeping the lines of other aliases.
func writeKnownHosts(path string, entries []hostEntry) error {
	keep := map[string]string{}
	if b, err := os.ReadFile(path); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 3 {
				keep[f[0]] = l
			}
		}
	}
	for _, e := range entries {
		if e.HostKey != "" {
			keep[e.Alias] = e.Alias + " " + e.HostKey
		}
	}
	names := make([]string, 0, len(keep))
	for n := range keep {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(keep[n] + "\n")
	}
	return writeFileAtomic(path, []byte(b.String()), 0o600)
}

// ssh runs the system ssh to an allocation: its node, its account, its
// host key pinned; arguments after "--" are the remote command.
func (r *runner) ssh(args []string) error {
	f := r.flags("ssh")
	identityFile := f.String("identity-file", "", "private key to use (default: ssh's own keys and agent)")
	if err := f.parse(args); err != nil {
		return err
	}
	if len(f.args) < 1 {
		return usagef("ssh needs an allocation (its id or short name)")
	}
	// Words after the allocation are the remote command too (`gpuaas ssh
	// ID nvidia-smi`).
	remote := append(append([]string(nil), f.args[1:]...), f.tail...)
	c, err := r.client()
	if err != nil {
		return err
	}
	a, err := r.resolve(c, f.args[0])
	if err != nil {
		return err
	}
	e, ok := entryOf(a)
	if !ok {
		return exitErr{ExitConflict, fmt.Sprintf("allocation %s is %s, not active: nothing to ssh to yet", shortID(a.Id), a.State)}
	}
	kh, err := r.knownHostsPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(kh), 0o700); err != nil {
		return err
	}
	if err := writeKnownHosts(kh, []hostEntry{e}); err != nil {
		return err
	}
	bin, err := exec.LookPath("ssh")
	if err != nil {
		return errors.New("the system ssh is not installed (OpenSSH client)")
	}
	argv := []string{"ssh", "-p", strconv.Itoa(e.Port)}
	for _, o := range sshOptions(e, kh) {
		argv = append(argv, "-o", o[0]+"="+o[1])
	}
	if *identityFile != "" {
		argv = append(argv, "-i", *identityFile, "-o", "IdentitiesOnly=yes")
	}
	argv = append(argv, e.User+"@"+e.Host)
	argv = append(argv, remote...)
	return r.env.Exec(bin, argv, os.Environ())
}

// configSSH writes a Host entry per active allocation of the project into
// a managed block of ~/.ssh/config, so `ssh gpuaas.<name>` (and VS Code
// Remote-SSH) reach the node with its host key pinned.
func (r *runner) configSSH(args []string) error {
	f := r.flags("config-ssh")
	cfgPath := f.String("ssh-config", "", "ssh config file to edit (default ~/.ssh/config)")
	identityFile := f.String("identity-file", "", "private key the entries use (default: ssh's own keys and agent)")
	dryRun := f.Bool("dry-run", false, "print the block instead of writing it")
	remove := f.Bool("remove", false, "remove the managed block")
	if err := f.parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		home := r.env.Getenv("HOME")
		if home == "" {
			h, err := os.UserHomeDir()
			if err != nil {
				return err
			}
			home = h
		}
		*cfgPath = filepath.Join(home, ".ssh", "config")
	}
	kh, err := r.knownHostsPath()
	if err != nil {
		return err
	}
	var entries []hostEntry
	if !*remove {
		c, err := r.client()
		if err != nil {
			return err
		}
		ctx, cancel := r.withTimeout(2 * time.Minute)
		defer cancel()
		for a, err := range c.Allocations(ctx, client.ListAllocations{State: client.StateActive}) {
			if err != nil {
				return err
			}
			full, err := c.GetAllocation(ctx, a.Id) // the listing has no access details
			if err != nil {
				return err
			}
			if e, ok := entryOf(full); ok {
				entries = append(entries, e)
			}
		}
	}
	idf := ""
	if *identityFile != "" {
		abs, err := filepath.Abs(*identityFile)
		if err != nil {
			return err
		}
		idf = abs
	}
	block := managedBlock(entries, kh, idf)
	if *dryRun {
		return r.out(map[string]any{"hosts": entries, "ssh_config": *cfgPath, "block": block}, func(w io.Writer) { fmt.Fprint(w, block) })
	}
	old, err := os.ReadFile(*cfgPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	mode := os.FileMode(0o600)
	if st, err := os.Stat(*cfgPath); err == nil {
		mode = st.Mode().Perm()
	}
	updated, err := replaceBlock(old, block)
	if err != nil {
		return fmt.Errorf("%s: %w", *cfgPath, err)
	}
	if err := os.MkdirAll(filepath.Dir(*cfgPath), 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(kh), 0o700); err != nil {
		return err
	}
	if err := writeKnownHosts(kh, entries); err != nil {
		return err
	}
	if !bytes.Equal(old, updated) {
		if err := writeFileAtomic(*cfgPath, updated, mode); err != nil {
			return err
		}
	}
	if entries == nil {
		entries = []hostEntry{}
	}
	return r.out(map[string]any{"hosts": entries, "ssh_config": *cfgPath, "known_hosts": kh}, func(w io.Writer) {
		if len(entries) == 0 {
			fmt.Fprintf(w, "No active allocations; the gpuaas block of %s is empty.\n", *cfgPath)
			return
		}
		fmt.Fprintf(w, "Updated %s:\n", *cfgPath)
		for _, e := range entries {
			fmt.Fprintf(w, "  ssh %s\t(%s@%s:%d)\n", e.Alias, e.User, e.Host, e.Port)
		}
	})
}

// managedBlock is the ssh config text of the entries between the markers.
func managedBlock(entries []hostEntry, knownHosts, identityFile string) string {
	var b strings.Builder
	b.WriteString(blockStart + "\n")
	b.WriteString("# Written by `gpuaas config-ssh`; it rewrites everything between these lines.\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "Host %s\n  HostName %s\n  Port %d\n  User %s\n", e.Alias, e.Host, e.Port, e.User)
		for _, o := range sshOptions(e, knownHosts) {
			fmt.Fprintf(&b, "  %s %s\n", o[0], sshQuote(o[1]))
		}
		if identityFile != "" {
			fmt.Fprintf(&b, "  IdentityFile %s\n  IdentitiesOnly yes\n", sshQuote(identityFile))
		}
		b.WriteString("  ServerAliveInterval 30\n")
	}
	b.WriteString(blockEnd + "\n")
	return b.String()
}

// sshQuote quotes a value with spaces for ssh_config.
func sshQuote(v string) string {
	if strings.ContainsAny(v, " \t\"") {
		return `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
	}
	return v
}

// replaceBlock puts block where the old one was (or at the end), leaving
// every other line as it was. A start marker without its end is refused:
// rewriting from it would drop the user's own lines.
func replaceBlock(old []byte, block string) ([]byte, error) {
	s := string(old)
	start := strings.Index(s, blockStart)
	if start < 0 {
		if strings.Contains(s, blockEnd) {
			return nil, errors.New("the gpuaas end marker has no start marker; fix the file by hand")
		}
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		if s != "" {
			s += "\n"
		}
		return []byte(s + block), nil
	}
	end := strings.Index(s[start:], blockEnd)
	if end < 0 {
		return nil, errors.New("the gpuaas start marker has no end marker; fix the file by hand")
	}
	end += start + len(blockEnd)
	if end < len(s) && s[end] == '\n' {
		end++
	}
	return []byte(s[:start] + block + s[end:]), nil
}

// writeFileAtomic writes through a temporary file in the same directory.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
