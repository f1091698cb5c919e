package linuxexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/nodeagent"
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
	// Run executes a command (tests record instead). Default: exec.
	Run func(ctx context.Context, argv []string) error
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
	for _, p := range []string{c.SSHDDropIn, c.PrincipalsDir, c.UserCAFile, c.HostKeyFile} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("linuxexec: %q must be an absolute path", p)
		}
	}
	if c.Run == nil {
		c.Run = run
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
type Executor struct{ cfg Config }

var (
	_ nodeagent.Executor        = (*Executor)(nil)
	_ nodeagent.HostKeyReporter = (*Executor)(nil)
)

// New validates the config.
func New(cfg Config) (*Executor, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	return &Executor{cfg: cfg}, nil
}

// SSHDDropInContent is the drop-in's content: trust the platform's user CA, and
// accept a certificate for an account only when its principal is listed in
// that account's principals file (so a certificate for one allocation
// never opens another, and accounts without a file accept none).
func (c Config) SSHDDropInContent() string {
	return "# Managed by gpuaas-agent; do not edit.\n" +
		"TrustedUserCAKeys " + c.UserCAFile + "\n" +
		"AuthorizedPrincipalsFile " + c.PrincipalsDir + "/%u\n"
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

// RevokeCommands are the commands that remove an account: kill every
// process it owns first (userdel refuses while it has any), then delete it
// with its home and mail spool.
func RevokeCommands(username string) [][]string {
	return [][]string{
		{"pkill", "-KILL", "-u", username},
		{"userdel", "--remove", "--force", username},
	}
}

// ProvisionUser implements [nodeagent.Executor].
func (e *Executor) ProvisionUser(ctx context.Context, p nodetask.ProvisionUserParams) error {
	if _, err := nodetask.ValidateParams(nodetask.ProvisionUser, mustJSON(p)); err != nil {
		return err
	}
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

// RevokeUser implements [nodeagent.Executor]. pkill exiting 1 (no process)
// and userdel exiting 6 (no such user) are success: the account is gone.
func (e *Executor) RevokeUser(ctx context.Context, p nodetask.RevokeUserParams) error {
	if _, err := nodetask.ValidateParams(nodetask.RevokeUser, mustJSON(p)); err != nil {
		return err
	}
	cmds := RevokeCommands(p.Username)
	if err := e.cfg.Run(ctx, cmds[0]); err != nil && exitCode(err) != 1 {
		return err
	}
	if err := e.cfg.Run(ctx, cmds[1]); err != nil && exitCode(err) != 6 {
		return err
	}
	if err := os.Remove(filepath.Join(e.cfg.PrincipalsDir, p.Username)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
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
