// Command cli-path walks issue 14's user journey with the `gpuaas` CLI
// against a running platform (`gpuaas dev`), non-interactively, as CI runs
// it (scripts/ci-golden-path.sh): a person signs in, tops up and registers
// an SSH key (through the Go client), makes an API key; then the CLI logs
// in with it (--api-key-stdin), lists SKUs, creates an allocation with
// --wait, writes the ssh config (config-ssh), and the SYSTEM ssh runs
// `nvidia-smi` on gpuaas.<name> — on gpuaas dev's sandbox nodes there is no
// GPU and no nvidia-smi, and the script says so plainly instead of faking
// it — then a command that proves where it ran, `gpuaas ssh`, release and
// `usage --csv`. It also drives the browser login (`gpuaas login
// --no-browser`) through the dev identity provider's form, as a browser
// would, to the CLI's loopback listener.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gpuaas/gpuaas/hosts/http/client"
	"github.com/gpuaas/gpuaas/testkit/e2e"
	"github.com/gpuaas/gpuaas/testkit/tokens/signin"
)

func main() {
	api := flag.String("api", "http://127.0.0.1:8080", "API base URL")
	bin := flag.String("gpuaas", "", "the gpuaas binary (default: built from ./hosts/gpuaas)")
	user := flag.String("user", "alice", "dev user")
	password := flag.String("password", "alice", "dev user's password")
	sku := flag.String("sku", "", "SKU to allocate (default: any with capacity)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := run(ctx, *api, *bin, *user, *password, *sku); err != nil {
		log.Fatalf("cli-path: FAILED: %v", err)
	}
	log.Print("cli-path: OK")
}

func step(format string, a ...any) { log.Printf("cli-path: "+format, a...) }

// cli runs the gpuaas binary with a private HOME and config dir.
type cli struct {
	bin, home string
}

func (c cli) env() []string {
	env := []string{"HOME=" + c.home, "GPUAAS_CONFIG_DIR=" + filepath.Join(c.home, "config"), "PATH=" + os.Getenv("PATH")}
	return env
}

// run runs `gpuaas args…` and returns stdout; a non-zero exit is an error
// with its stderr.
func (c cli) run(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, io.MultiWriter(&stderr, prefixed{"  | "})
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("gpuaas %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// prefixed copies the CLI's progress lines into the log.
type prefixed struct{ p string }

func (p prefixed) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l != "" {
			log.Print(p.p + l)
		}
	}
	return len(b), nil
}

func run(ctx context.Context, api, bin, user, password, want string) error {
	work, err := os.MkdirTemp("", "gpuaas-cli-path-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if bin == "" {
		bin = filepath.Join(work, "gpuaas")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./hosts/gpuaas")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build gpuaas: %w", err)
		}
	}
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		return err
	}
	g := cli{bin: bin, home: home}

	// The person: sign in, credit, an SSH key (its private half on disk for
	// the system ssh), an API key for the CLI.
	p := e2e.New(api)
	if err := p.Login(ctx, user, password); err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	if err := p.TopUp(ctx, 5000, "usd"); err != nil {
		return fmt.Errorf("top up: %w", err)
	}
	keyFile := filepath.Join(home, ".ssh", "id_ed25519")
	pub, err := writeSSHKey(keyFile)
	if err != nil {
		return err
	}
	sshKey, err := p.API().AddSSHKey(ctx, "cli-path-"+suffix(), pub)
	if err != nil {
		return fmt.Errorf("add SSH key: %w", err)
	}
	defer func() { _ = p.API().DeleteSSHKey(context.Background(), sshKey.Id) }()
	apiKey, err := p.API().CreateAPIKey(ctx, client.CreateAPIKey{Name: "cli-path-" + suffix(), ProjectId: p.Project,
		Scopes: []client.CredentialScope{client.ScopeRead, client.ScopeAllocations, client.ScopeBilling, client.ScopeStorage}})
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	defer func() { _ = p.API().RevokeAPIKey(context.Background(), apiKey.ApiKey.Id) }()
	step("signed in as %s, topped up, SSH key and API key %s… made", user, apiKey.ApiKey.Prefix)

	// The CLI, non-interactively.
	if _, err := g.run(ctx, apiKey.Secret+"\n", "login", "--api", api, "--api-key-stdin"); err != nil {
		return err
	}
	out, err := g.run(ctx, "", "skus", "--json")
	if err != nil {
		return err
	}
	var skus struct{ Skus []client.SKU }
	if err := json.Unmarshal(out, &skus); err != nil {
		return fmt.Errorf("skus --json: %w", err)
	}
	sku := ""
	for _, s := range skus.Skus {
		if (want == "" && s.Available > 0) || s.Id == want {
			sku = s.Id
			break
		}
	}
	if sku == "" {
		return errors.New("no SKU has capacity (are the sandbox nodes up?)")
	}
	step("gpuaas skus: %d SKUs, using %s", len(skus.Skus), sku)
	start := time.Now()
	out, err = g.run(ctx, "", "alloc", "create", "--sku", sku, "--wait", "--json")
	if err != nil {
		return err
	}
	var a client.Allocation
	if err := json.Unmarshal(out, &a); err != nil || a.State != client.StateActive {
		return fmt.Errorf("alloc create --wait: %v: %s", err, out)
	}
	name := a.Id[len(a.Id)-8:]
	released := false
	defer func() {
		if !released {
			_, _ = g.run(context.Background(), "", "alloc", "release", a.Id)
		}
	}()
	step("gpuaas alloc create --wait: %s active after %s", name, time.Since(start).Round(time.Millisecond))

	sshConfig := filepath.Join(home, ".ssh", "config")
	if _, err := g.run(ctx, "", "config-ssh", "--ssh-config", sshConfig, "--identity-file", keyFile); err != nil {
		return err
	}
	alias := "gpuaas." + name
	step("gpuaas config-ssh wrote Host %s to %s", alias, sshConfig)

	// The system ssh, by the alias (OpenSSH reads the passwd home's config,
	// not $HOME's: -F names ours).
	sshOut, code, err := systemSSH(ctx, sshConfig, alias, "nvidia-smi")
	switch {
	case err != nil:
		return err
	case code == 0:
		step("ssh %s nvidia-smi: the node has GPUs:\n%s", alias, sshOut)
	case code == 127 && strings.Contains(sshOut, "nvidia-smi"):
		step("ssh %s nvidia-smi: reached the node, which is a gpuaas dev SANDBOX node: it has no GPU and no nvidia-smi, "+
			"and its shell answered (exit 127): %s", alias, strings.TrimSpace(sshOut))
	default:
		return fmt.Errorf("ssh %s nvidia-smi: exit %d: %s", alias, code, sshOut)
	}
	sshOut, code, err = systemSSH(ctx, sshConfig, alias, "echo cli-$((40+2)); whoami")
	if err != nil || code != 0 {
		return fmt.Errorf("ssh %s: exit %d %v: %s", alias, code, err, sshOut)
	}
	lines := strings.Fields(sshOut)
	if len(lines) < 2 || lines[0] != "cli-42" {
		return fmt.Errorf("ssh %s printed %q", alias, sshOut)
	}
	step("ssh %s ran a command as %s on the node", alias, lines[1])
	out, err = g.run(ctx, "", "ssh", name, "--identity-file", keyFile, "--", "echo", "via-gpuaas-ssh")
	if err != nil || strings.TrimSpace(string(out)) != "via-gpuaas-ssh" {
		return fmt.Errorf("gpuaas ssh: %v: %q", err, out)
	}
	step("gpuaas ssh %s ran a command (the system ssh, host key pinned)", name)

	out, err = g.run(ctx, "", "alloc", "release", name, "--wait")
	if err != nil {
		return err
	}
	released = true
	billedLine := regexp.MustCompile(`Billed \S+ \S+ for \S+ of use\.`).Find(out)
	if billedLine == nil {
		return fmt.Errorf("alloc release --wait did not say what was billed: %q", out)
	}
	step("gpuaas alloc release %s --wait: released; %s", name, billedLine)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err = g.run(ctx, "", "usage", "--csv")
		if err != nil {
			return err
		}
		if bytes.Contains(out, []byte(a.Id)) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("usage --csv lacks %s:\n%s", a.Id, out)
		}
		time.Sleep(500 * time.Millisecond) // polling a command with a deadline; not synchronising goroutines
	}
	step("gpuaas usage --csv: %d lines, the allocation's among them", bytes.Count(out, []byte("\n")))

	// Project storage through the CLI: up, list, down, compare, remove.
	if err := files(ctx, g, work); err != nil {
		return err
	}

	// The browser login, with the dev provider's form filled in as a
	// browser would, ending at the CLI's loopback listener.
	if err := browserLogin(ctx, g, api, user, password); err != nil {
		return fmt.Errorf("browser login: %w", err)
	}
	out, err = g.run(ctx, "", "whoami", "--json")
	if err != nil {
		return err
	}
	if !bytes.Contains(out, []byte(user)) {
		return fmt.Errorf("whoami after the browser login: %s", out)
	}
	step("gpuaas login (browser, loopback redirect) signed %s in", user)
	return nil
}

// systemSSH runs the system ssh with a config file and returns its output
// and exit status.
func systemSSH(ctx context.Context, config, alias, command string) (string, int, error) {
	cmd := exec.CommandContext(ctx, "ssh", "-F", config, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", alias, command)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() == 255 {
			return string(out), 255, fmt.Errorf("ssh %s could not connect: %s", alias, out)
		}
		return string(out), ee.ExitCode(), nil
	}
	return string(out), 0, err
}

// browserLogin runs `gpuaas login --no-browser`, reads the URL it prints,
// signs in at the dev provider's form and delivers the redirect to the
// CLI's loopback listener.
func browserLogin(ctx context.Context, g cli, api, user, password string) error {
	cmd := exec.CommandContext(ctx, g.bin, "login", "--api", api, "--no-browser", "--timeout", "60s")
	cmd.Env = g.env()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	urlRE := regexp.MustCompile(`https?://\S+/api/v1/auth/oidc/authorize\?\S+`)
	var target string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := urlRE.FindString(sc.Text()); m != "" {
			target = m
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	if target == "" {
		_ = cmd.Wait()
		return errors.New("gpuaas login printed no sign-in URL")
	}
	redirect := regexp.MustCompile(`redirect_uri=([^&]+)`).FindStringSubmatch(target)
	if redirect == nil {
		return fmt.Errorf("no redirect_uri in %s", target)
	}
	ru, err := urlUnescape(redirect[1])
	if err != nil {
		return err
	}
	cb, err := signin.Login(ctx, signin.Params{StartURL: target, RedirectURI: ru, Username: user, Password: password})
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cb.URL.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("deliver the redirect to the CLI: %w", err)
	}
	resp.Body.Close()
	return cmd.Wait()
}

func writeSSHKey(path string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "cli-path")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))), nil
}

func suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func urlUnescape(s string) (string, error) { return url.QueryUnescape(s) }

// files copies a file to project storage and back with `gpuaas files`.
func files(ctx context.Context, g cli, work string) error {
	local := filepath.Join(work, "notes.txt")
	body := []byte("cli-path " + suffix() + "\n")
	if err := os.WriteFile(local, body, 0o600); err != nil {
		return err
	}
	folder := "cli-path-" + suffix()
	if _, err := g.run(ctx, "", "files", "cp", local, ":"+folder+"/"); err != nil {
		return err
	}
	out, err := g.run(ctx, "", "files", "ls", ":"+folder, "--json")
	if err != nil {
		return err
	}
	if !bytes.Contains(out, []byte(`"notes.txt"`)) {
		return fmt.Errorf("files ls :%s: %s", folder, out)
	}
	back := filepath.Join(work, "back.txt")
	if _, err := g.run(ctx, "", "files", "cp", ":"+folder+"/notes.txt", back); err != nil {
		return err
	}
	if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, body) {
		return fmt.Errorf("the file came back as %q (%v), want %q", got, err, body)
	}
	if _, err := g.run(ctx, "", "files", "rm", ":"+folder, "-r"); err != nil {
		return err
	}
	step("gpuaas files cp/ls/cp/rm: a file to :%s/ and back, identical, removed", folder)
	return nil
}
