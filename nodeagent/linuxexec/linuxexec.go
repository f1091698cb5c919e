package linuxexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/core/terminal"
	"github.com/gpuaas/gpuaas/nodeagent"
	"github.com/gpuaas/gpuaas/nodeagent/procset"
	"github.com/gpuaas/gpuaas/nodeagent/termsession"
)

// Config configures the executor. The defaults fit Debian and Ubuntu.
type Config struct {
	// SSHDDropIn is the sshd configuration snippet the executor owns.
	// Default /etc/ssh/sshd_config.d/50-gpuaas.conf.
	SSHDDropIn string
	// PrincipalsDir holds one AuthorizedPrincipalsFile per account.
	// Default /etc/ssh/gpuaas_principals.
	PrincipalsDir string
	// UserCAFile is the TrustedUserCAKeys file. Default /etc/ssh/gpuaas_user_ca.pub.
	UserCAFile string
	// GPUGroup owns /dev/nvidia*; "" detects it from /dev/nvidiactl (none
	// when there is no device).
	GPUGroup string
	// HostKeyFile is sshd's host public key, reported in heartbeats so the
	// terminal gateway can verify the node. Default
	// /etc/ssh/ssh_host_ed25519_key.pub.
	HostKeyFile string
	// Shell of the accounts. Default /bin/bash.
	Shell string
	// ReloadSSHD reloads sshd after its configuration changed. Default
	// ["systemctl", "reload", "ssh"].
	ReloadSSHD []string
	// TerminalSocket is the local socket where the agent serves browser-
	// terminal sessions to the sshd subsystem command. Default
	// /run/gpuaas-agent/terminal.sock.
	TerminalSocket string
	// AttachCommand is the sshd subsystem command for terminal sessions (it
	// runs as the account and relays to TerminalSocket). Default: this
	// executable with `terminal-attach --socket <TerminalSocket>`.
	AttachCommand string
	// Sessions configures browser-terminal sessions (termsession defaults).
	Sessions termsession.Config
	// CgroupBase is passed to procset: "" detects the agent's own cgroup
	// (run the agent with systemd's Delegate=yes), "-" disables cgroups.
	CgroupBase string
	// Run executes a command (tests record instead). Default: exec.
	Run func(ctx context.Context, argv []string) error
	// Logger. Default: discard.
	Logger *slog.Logger
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if c.SSHDDropIn == "" {
		c.SSHDDropIn = "/etc/ssh/sshd_config.d/50-gpuaas.conf"
	}
	if c.PrincipalsDir == "" {
		c.PrincipalsDir = "/etc/ssh/gpuaas_principals"
	}
	if c.UserCAFile == "" {
		c.UserCAFile = "/etc/ssh/gpuaas_user_ca.pub"
	}
	if c.HostKeyFile == "" {
		c.HostKeyFile = "/etc/ssh/ssh_host_ed25519_key.pub"
	}
	if c.Shell == "" {
		c.Shell = "/bin/bash"
	}
	if len(c.ReloadSSHD) == 0 {
		c.ReloadSSHD = []string{"systemctl", "reload", "ssh"}
	}
	if c.TerminalSocket == "" {
		c.TerminalSocket = "/run/gpuaas-agent/terminal.sock"
	}
	for _, p := range []string{c.SSHDDropIn, c.PrincipalsDir, c.UserCAFile, c.HostKeyFile, c.TerminalSocket} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("linuxexec: %q must be an absolute path", p)
		}
	}
	if c.AttachCommand == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("linuxexec: AttachCommand: %w", err)
		}
		c.AttachCommand = exe + " terminal-attach --socket " + c.TerminalSocket
	}
	if strings.ContainsAny(c.AttachCommand, "\n\r") {
		return errors.New("linuxexec: AttachCommand must be one line")
	}
	if c.Run == nil {
		c.Run = run
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Sessions.Logger == nil {
		c.Sessions.Logger = c.Logger
	}
	return nil
}

func run(ctx context.Context, argv []string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return &CommandError{Argv: argv, Err: err, Output: strings.TrimSpace(string(out))}
	}
	return nil
}

// CommandError is a failed command with its exit status.
type CommandError struct {
	Argv   []string
	Err    error
	Output string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Argv, " "), e.Err, e.Output)
}

// ExitCode is the command's exit status (-1 when it did not run).
func (e *CommandError) ExitCode() int {
	var ee *exec.ExitError
	if errors.As(e.Err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Executor manages accounts on the host. It must run as root.
type Executor struct {
	cfg   Config
	procs *procset.Tracker
	terms *termsession.Manager

	mu       sync.Mutex
	policies map[string]nodetask.SessionPolicy // account → its terminal-session policy
	ln       net.Listener
}

var (
	_ nodeagent.Executor        = (*Executor)(nil)
	_ nodeagent.HostKeyReporter = (*Executor)(nil)
)

// New validates the config and prepares the process tracker (a cgroup
// below the agent's own when the host allows it) and the terminal
// sessions; Start serves them.
func New(cfg Config) (*Executor, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	procs, err := procset.New(procset.Config{Name: "gpuaas-accounts", CgroupBase: cfg.CgroupBase})
	if err != nil {
		return nil, err
	}
	terms, err := termsession.New(cfg.Sessions)
	if err != nil {
		return nil, err
	}
	if procs.Mode() != procset.ModeCgroup {
		cfg.Logger.Warn("linuxexec: accounts' processes are found by uid and marker only", "why", procs.Why())
	}
	return &Executor{cfg: cfg, procs: procs, terms: terms, policies: map[string]nodetask.SessionPolicy{}}, nil
}

// SSHDDropInContent is the drop-in's content: trust the platform's user CA, and
// accept a certificate for an account only when its principal is listed in
// that account's principals file (so a certificate for one allocation
// never opens another, and accounts without a file accept none); offer
// browser-terminal sessions as a subsystem.
func (c Config) SSHDDropInContent() string {
	return "# Managed by gpuaas-agent; do not edit.\n" +
		"TrustedUserCAKeys " + c.UserCAFile + "\n" +
		"AuthorizedPrincipalsFile " + c.PrincipalsDir + "/%u\n" +
		"Subsystem " + terminal.SessionSubsystem + " " + c.AttachCommand + "\n"
}

// ProvisionCommands are the commands that create an account (exists says
// whether it is there already, so provisioning stays idempotent).
func ProvisionCommands(c Config, username, gpuGroup string, exists bool) [][]string {
	var cmds [][]string
	if !exists {
		cmds = append(cmds, []string{"useradd", "--create-home", "--user-group", "--shell", c.Shell,
			"--comment", "gpuaas allocation account", username})
	}
	if gpuGroup != "" {
		cmds = append(cmds, []string{"usermod", "--append", "--groups", gpuGroup, username})
	}
	return cmds
}

// LockCommand expires the account, so sshd refuses it from now on
// whatever key or certificate is offered (exit 6: no such user).
func LockCommand(username string) []string {
	return []string{"usermod", "--expiredate", "1", username}
}

// DeleteCommand removes the account with its home and mail spool (exit 6:
// no such user).
func DeleteCommand(username string) []string {
	return []string{"userdel", "--remove", "--force", username}
}

// ProvisionUser implements [nodeagent.Executor].
func (e *Executor) ProvisionUser(ctx context.Context, p nodetask.ProvisionUserParams) error {
	if _, err := nodetask.ValidateParams(nodetask.ProvisionUser, mustJSON(p)); err != nil {
		return err
	}
	e.mu.Lock()
	e.policies[p.Username] = p.Sessions
	e.mu.Unlock()
	_, lookErr := user.Lookup(p.Username)
	exists := lookErr == nil
	group := e.cfg.GPUGroup
	if group == "" {
		group = detectGPUGroup("/dev/nvidiactl")
	}
	for _, argv := range ProvisionCommands(e.cfg, p.Username, group, exists) {
		if err := e.cfg.Run(ctx, argv); err != nil {
			return err
		}
	}
	u, err := user.Lookup(p.Username)
	if err != nil {
		return fmt.Errorf("account %s was not created: %w", p.Username, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	sshDir := filepath.Join(u.HomeDir, ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		return err
	}
	keys := strings.Join(p.AuthorizedKeys, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(sshDir, "authorized_keys"), []byte(keys), 0o600); err != nil {
		return err
	}
	for _, f := range []string{sshDir, filepath.Join(sshDir, "authorized_keys")} {
		if err := os.Lchown(f, uid, gid); err != nil {
			return err
		}
	}
	if p.UserCAKey != "" {
		if err := e.trustCA(ctx, p.Username, p.UserCAKey); err != nil {
			return err
		}
	}
	return nil
}

// trustCA writes the CA key, the account's principals file and the drop-in,
// reloading sshd only when its configuration changed.
func (e *Executor) trustCA(ctx context.Context, username, caKey string) error {
	if err := os.MkdirAll(e.cfg.PrincipalsDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.cfg.PrincipalsDir, username), []byte(username+"\n"), 0o644); err != nil {
		return err
	}
	changed := false
	for _, f := range []struct{ path, content string }{
		{e.cfg.UserCAFile, strings.TrimSpace(caKey) + "\n"},
		{e.cfg.SSHDDropIn, e.cfg.SSHDDropInContent()},
	} {
		old, _ := os.ReadFile(f.path)
		if string(old) == f.content {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.path, []byte(f.content), 0o644); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return e.cfg.Run(ctx, e.cfg.ReloadSSHD)
	}
	return nil
}

// RevokeUser implements [nodeagent.Executor]: the account is refused at
// once (its principals file and authorized keys removed, the account
// expired), its browser-terminal sessions are ended, every process of it —
// in its cgroup or anywhere under its uid, sshd sessions included — gets
// SIGTERM and, after the grace period, SIGKILL, and the account is deleted
// with its home. A process that survives SIGKILL fails the task (the
// release is retried, then release_failed with the reason). An account
// that is already gone is success.
func (e *Executor) RevokeUser(ctx context.Context, p nodetask.RevokeUserParams) error {
	if _, err := nodetask.ValidateParams(nodetask.RevokeUser, mustJSON(p)); err != nil {
		return err
	}
	if err := e.stop(ctx, p.Username, time.Duration(p.GraceSeconds)*time.Second); err != nil {
		return err
	}
	if err := e.cfg.Run(ctx, DeleteCommand(p.Username)); err != nil && exitCode(err) != 6 {
		return err
	}
	e.mu.Lock()
	delete(e.policies, p.Username)
	e.mu.Unlock()
	return nil
}

// StopUser implements [nodeagent.Executor]: what RevokeUser does but the
// deletion — the account is refused and every process of it ended, its
// home stays (a release pushes files back from it, then revokes).
func (e *Executor) StopUser(ctx context.Context, p nodetask.StopUserParams) error {
	if _, err := nodetask.ValidateParams(nodetask.StopUser, mustJSON(p)); err != nil {
		return err
	}
	return e.stop(ctx, p.Username, time.Duration(p.GraceSeconds)*time.Second)
}

// stop refuses the account (principals file and authorized keys removed,
// the account expired) and ends its terminal sessions and every process in
// its process set or under its uid, within the grace period.
func (e *Executor) stop(ctx context.Context, username string, grace time.Duration) error {
	if err := os.Remove(filepath.Join(e.cfg.PrincipalsDir, username)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	uid := -1
	if u, err := user.Lookup(username); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		if err := os.Remove(filepath.Join(u.HomeDir, ".ssh", "authorized_keys")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := e.cfg.Run(ctx, LockCommand(username)); err != nil && exitCode(err) != 6 {
		return err
	}
	e.terms.EndAccount(username)
	g, err := e.procs.Group(username)
	if err != nil {
		return err
	}
	g.UID = uid
	return g.End(ctx, grace)
}

func exitCode(err error) int {
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce.ExitCode()
	}
	return -1
}

// Health implements [nodeagent.Executor].
func (e *Executor) Health(context.Context) map[string]string {
	if os.Geteuid() != 0 {
		return map[string]string{"linux_executor": "not running as root"}
	}
	return map[string]string{"linux_executor": "ok"}
}

// detectGPUGroup names the group owning the NVIDIA control device, or ""
// when there is none.
func detectGPUGroup(dev string) string {
	fi, err := os.Stat(dev)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Gid == 0 {
		return ""
	}
	g, err := user.LookupGroupId(strconv.Itoa(int(st.Gid)))
	if err != nil {
		return ""
	}
	return g.Name
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// SSHHostKey implements [nodeagent.HostKeyReporter]: the content of
// HostKeyFile (one authorized_keys line), or "" when it cannot be read or is
// implausibly large. The control plane validates what it is sent.
func (e *Executor) SSHHostKey() string {
	b, err := os.ReadFile(e.cfg.HostKeyFile)
	if err != nil || len(b) > 16<<10 {
		return ""
	}
	return strings.TrimSpace(string(b))
}
