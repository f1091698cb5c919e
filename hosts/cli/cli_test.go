package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// fakeAPI serves the few routes the tests need, in the contract's shapes.
type fakeAPI struct {
	*httptest.Server
	mu       sync.Mutex
	exchange map[string]string // code → state the authorize step issued
}

const (
	testKey = "gpa_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
	testPID = "7a9d3c1e-2222-4c8e-8f7e-3a1b2c3d4e5f"
	allocA  = "01a249c7-bb0a-7c14-be30-8416e0215d1e"
	// emptyPID is a project the fake API lists no allocations of.
	emptyPID = "01a249c7-0000-7000-8000-00000000e0e0"
)

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{exchange: map[string]string{}}
	alloc := map[string]any{"id": allocA, "project_id": testPID, "user_id": "u", "sku_id": "h100-80g-x1", "state": "active",
		"price_minor": 299, "currency": "usd", "created_at": time.Now().UTC(), "updated_at": time.Now().UTC(), "resource_id": "r",
		"access": map[string]any{"host": "127.0.0.1", "port": 2222, "user": "ga_0215d1e", "command": "ssh -p 2222 ga_0215d1e@127.0.0.1",
			"host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyForTests"}}
	write := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case r.URL.Path == "/api/v1/auth/oidc/authorize":
			// The platform would send the browser to the identity
			// provider; here it signs in at once and redirects back.
			f.exchange["code-1"] = "state-1"
			http.Redirect(w, r, r.URL.Query().Get("redirect_uri")+"?code=code-1&state=state-1", http.StatusFound)
			return
		case r.URL.Path == "/api/v1/auth/oidc/exchange":
			var req struct{ Code, State, RedirectURI string }
			_ = json.NewDecoder(r.Body).Decode(&struct {
				Code        *string `json:"code"`
				State       *string `json:"state"`
				RedirectURI *string `json:"redirect_uri"`
			}{&req.Code, &req.State, &req.RedirectURI})
			if f.exchange[req.Code] != req.State || !strings.HasPrefix(req.RedirectURI, "http://127.0.0.1:") {
				write(w, 400, map[string]any{"error": map[string]any{"code": "validation_failed", "message": "bad code", "correlation_id": "c"}})
				return
			}
			write(w, 200, map[string]any{"access_token": "oidc-access", "refresh_token": "oidc-refresh", "expires_in": 300,
				"token_type": "Bearer", "user": map[string]any{"id": "u", "email": "alice@example.com", "display_name": "Alice",
					"role": "user", "resource_id": "r"}})
			return
		}
		if a := r.Header.Get("Authorization"); a != "Bearer "+testKey && a != "Bearer oidc-access" {
			write(w, 401, map[string]any{"error": map[string]any{"code": "token_invalid", "message": "the API key is invalid, revoked or expired", "correlation_id": "c"}})
			return
		}
		switch {
		case r.URL.Path == "/api/v1/users/me":
			write(w, 200, map[string]any{"user": map[string]any{"id": "u", "email": "alice@example.com", "display_name": "Alice",
				"role": "user", "resource_id": "r"}, "tenant": map[string]any{"id": "t", "name": "T", "slug": "t", "role": "owner",
				"resource_id": "r"}, "projects": []any{map[string]any{"id": testPID, "name": "default", "is_default": true,
				"role": "admin", "resource_id": "r"}}})
		case r.URL.Path == "/api/v1/allocations" && r.Method == "GET" && r.Header.Get("X-Project-ID") == emptyPID:
			write(w, 200, map[string]any{"allocations": []any{}})
		case r.URL.Path == "/api/v1/allocations" && r.Method == "GET":
			write(w, 200, map[string]any{"allocations": []any{alloc}})
		case r.URL.Path == "/api/v1/allocations/"+allocA:
			write(w, 200, alloc)
		case r.URL.Path == "/api/v1/ssh-keys" && r.Method == "POST":
			var body map[string]string
			_ = json.NewDecoder(r.Body).Decode(&body)
			write(w, 201, map[string]any{"id": "k1", "name": body["name"], "public_key": body["public_key"],
				"fingerprint": "SHA256:x", "key_type": "ssh-ed25519", "created_at": time.Now().UTC()})
		case r.URL.Path == "/api/v1/storage/delete" && r.URL.Query().Get("recursive") != "true":
			write(w, 409, map[string]any{"error": map[string]any{"code": "storage_conflict",
				"message": "the folder is not empty; delete it with recursive=true", "correlation_id": "c"}})
		case r.URL.Path == "/api/v1/storage/delete":
			write(w, 200, map[string]any{"path": "/" + r.URL.Query().Get("path"), "kind": "dir", "files": 1, "bytes": 6})
		case r.URL.Path == "/api/v1/ssh-keys" && r.Method == "GET":
			write(w, 200, map[string]any{"ssh_keys": []any{}})
		case r.URL.Path == "/api/v1/billing/usage":
			write(w, 200, map[string]any{"usage": []any{}})
		case r.URL.Path == "/api/v1/storage/list":
			now := time.Now().UTC()
			write(w, 200, map[string]any{"path": "/data", "entries": []any{
				map[string]any{"path": "/data/sub", "name": "sub", "kind": "dir", "size_bytes": 0, "created_by": "u", "created_at": now, "updated_at": now},
				map[string]any{"path": "/data/x.json", "name": "x.json", "kind": "file", "size_bytes": 8, "created_by": "u", "created_at": now, "updated_at": now}}})
		case r.URL.Path == "/api/v1/billing/balance":
			write(w, 402, map[string]any{"error": map[string]any{"code": "spend_cap_reached", "message": "over the cap", "correlation_id": "c"}})
		default:
			write(w, 404, map[string]any{"error": map[string]any{"code": "not_found", "message": "nope", "correlation_id": "c"}})
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// cliEnv runs commands with a private config dir and records exec calls.
type cliEnv struct {
	t      *testing.T
	dir    string
	execed []string
	open   func(url string) error
	// env holds further environment variables.
	env map[string]string
}

func (c *cliEnv) run(want int, stdin string, args ...string) string {
	c.t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, OpenBrowser: c.open,
		Getenv: func(k string) string {
			switch k {
			case "GPUAAS_CONFIG_DIR":
				return filepath.Join(c.dir, "config")
			case "HOME":
				return c.dir
			}
			return c.env[k]
		},
		Exec: func(argv0 string, argv []string, _ []string) error { c.execed = argv; return nil }}
	if code := Run(context.Background(), args, env); code != want {
		c.t.Fatalf("gpuaas %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String() + errb.String()
}

func TestLoginWithAPIKeyAndSSH(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := &cliEnv{t: t, dir: t.TempDir()}
	c.run(ExitAuth, "", "skus") // not signed in yet
	c.run(ExitAuth, "gpa_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOx\n", "login", "--api", api.URL, "--api-key-stdin")
	out := c.run(ExitOK, testKey+"\n", "login", "--api", api.URL, "--api-key-stdin")
	if !strings.Contains(out, "alice@example.com") || strings.Contains(out, testKey) ||
		!strings.Contains(out, "Commands act in project default ("+testPID+")") {
		t.Fatalf("login said %q", out)
	}
	p := filepath.Join(c.dir, "config", "credentials.json")
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials: %v %v", st, err)
	}
	b, _ := os.ReadFile(p)
	var creds credentials
	if json.Unmarshal(b, &creds) != nil || creds.Kind != "api_key" || creds.ProjectID != testPID || creds.API != api.URL {
		t.Fatalf("credentials %s", b)
	}
	// A key from the environment goes to the API the login remembered
	// (not to the default), as --api's order says.
	c.env = map[string]string{"GPUAAS_API_KEY": testKey}
	if out := c.run(ExitOK, "", "whoami"); !strings.Contains(out, "alice@example.com") {
		t.Fatalf("whoami with GPUAAS_API_KEY said %q", out)
	}
	c.env = nil
	// A file others may read is refused.
	_ = os.Chmod(p, 0o644)
	c.run(ExitError, "", "alloc", "ls")
	_ = os.Chmod(p, 0o600)

	// ssh execs the system ssh with the host key pinned.
	c.run(ExitOK, "", "ssh", "0215d1e", "--", "nvidia-smi", "-L")
	got := strings.Join(c.execed, " ")
	for _, want := range []string{"-p 2222", "HostKeyAlias=gpuaas.e0215d1e", "StrictHostKeyChecking=yes",
		"ga_0215d1e@127.0.0.1 nvidia-smi -L"} {
		if !strings.Contains(got, want) {
			t.Fatalf("ssh argv %q lacks %q", got, want)
		}
	}
	kh, _ := os.ReadFile(filepath.Join(c.dir, "config", "known_hosts"))
	if !strings.HasPrefix(string(kh), "gpuaas.e0215d1e ssh-ed25519 ") {
		t.Fatalf("known_hosts %q", kh)
	}
	// Errors are one line with the code and an exit code per kind.
	out = c.run(ExitPayment, "", "balance")
	if !strings.Contains(out, "(402 spend_cap_reached)") {
		t.Fatalf("balance said %q", out)
	}
	out = c.run(ExitPayment, "", "balance", "--json")
	if !strings.Contains(out, `"code": "spend_cap_reached"`) {
		t.Fatalf("--json error %q", out)
	}
	c.run(ExitUsage, "", "alloc")
	// A bad command line is answered with that command's usage, not every
	// command's; with --json, the error object alone.
	if out := c.run(ExitUsage, "", "alloc", "create"); !strings.Contains(out, "alloc create needs --sku") ||
		!strings.Contains(out, "Usage:\n  gpuaas alloc create --sku") || strings.Contains(out, "gpuaas login") {
		t.Fatalf("alloc create without --sku said %q", out)
	}
	if out := c.run(ExitUsage, "", "alloc", "create", "--json"); strings.Contains(out, "Usage") {
		t.Fatalf("--json usage error said %q", out)
	}
	if out := c.run(ExitUsage, "", "top-up", "-5"); !strings.Contains(out, "-5 is not a flag") {
		t.Fatalf("top-up -5 said %q", out)
	}
	// --expires takes days as the usage shows; none that would mean "never".
	for _, bad := range []string{"0d", "-1h", "0s", "30", "1y"} {
		if out := c.run(ExitUsage, "", "keys", "create", "--name", "k", "--expires", bad); !strings.Contains(out, "-expires") {
			t.Fatalf("keys create --expires %s said %q", bad, out)
		}
	}
	if out := c.run(ExitUsage, "", "alloc", "create", "--sku", "x", "--wait", "--timeout", "-1s"); !strings.Contains(out, "-timeout") {
		t.Fatalf("alloc create --timeout -1s said %q", out)
	}
	c.run(ExitNotFound, "", "alloc", "get", "ffffffff")
	c.run(ExitNotFound, "", "alloc", "release", "ffffffff", "--wait", "--timeout", "2m") // session reads --timeout
	_ = os.MkdirAll(filepath.Join(c.dir, ".ssh"), 0o700)
	_ = os.WriteFile(filepath.Join(c.dir, ".ssh", "id_ed25519.pub"), []byte("ssh-ed25519 AAAAC3Nza me@laptop\n"), 0o644)
	_ = os.WriteFile(filepath.Join(c.dir, ".ssh", "id_ed25519"), []byte("PRIVATE"), 0o600)
	if out := c.run(ExitOK, "", "ssh-keys", "add"); !strings.Contains(out, `as "me@laptop"`) {
		t.Fatalf("ssh-keys add said %q", out)
	}
	c.run(ExitUsage, "", "ssh-keys", "add", filepath.Join(c.dir, ".ssh", "id_ed25519"))
	// Empty lists say what would fill them.
	if out := c.run(ExitOK, "", "ssh-keys", "ls"); !strings.Contains(out, "No SSH keys. gpuaas ssh-keys add") {
		t.Fatalf("ssh-keys ls said %q", out)
	}
	if out := c.run(ExitOK, "", "usage"); !strings.Contains(out, "No usage yet") {
		t.Fatalf("usage said %q", out)
	}
	// A folder is listed with a slash and no size; --json names the folder
	// as the API does.
	if out := c.run(ExitOK, "", "files", "ls", ":data"); !regexp.MustCompile(`(?m)^sub/\s+-\s`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^x\.json\s+8\s`).MatchString(out) {
		t.Fatalf("files ls said %q", out)
	}
	if out := c.run(ExitOK, "", "files", "ls", ":data", "--json"); !strings.Contains(out, `"path": "/data"`) {
		t.Fatalf("files ls --json said %q", out)
	}
	c.run(ExitOK, "", "logout")
	c.run(ExitAuth, "", "alloc", "ls")
}

func TestBrowserLogin(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := &cliEnv{t: t, dir: t.TempDir()}
	var opened string
	c.open = func(u string) error {
		opened = u
		go func() { // the browser: follows the platform's redirect to the loopback listener
			resp, err := http.Get(u)
			if err == nil {
				resp.Body.Close()
			}
		}()
		return nil
	}
	c.run(ExitOK, "", "login", "--api", api.URL, "--timeout", "20s")
	if !strings.Contains(opened, "redirect_uri=http%3A%2F%2F127.0.0.1%3A") || !strings.Contains(opened, "%2Fcallback") {
		t.Fatalf("opened %q", opened)
	}
	b, _ := os.ReadFile(filepath.Join(c.dir, "config", "credentials.json"))
	var creds credentials
	if json.Unmarshal(b, &creds) != nil || creds.Kind != "oidc" || creds.AccessToken != "oidc-access" ||
		creds.RefreshToken != "oidc-refresh" || creds.ProjectID != testPID {
		t.Fatalf("credentials %s", b)
	}
	c.run(ExitOK, "", "alloc", "ls")
}

func TestReplaceBlock(t *testing.T) {
	t.Parallel()
	block := managedBlock([]hostEntry{{Alias: "gpuaas.a1", Host: "h", Port: 22, User: "u", HostKey: "ssh-ed25519 K"}}, "/kh", "")
	mine := "Host mine\n  HostName example.org\n"
	first, err := replaceBlock([]byte(mine), block)
	if err != nil || !strings.HasPrefix(string(first), mine) || !strings.HasSuffix(string(first), blockEnd+"\n") {
		t.Fatalf("append: %q %v", first, err)
	}
	empty := managedBlock(nil, "/kh", "")
	again, err := replaceBlock(append(first, []byte("Host after\n")...), empty)
	if err != nil || strings.Contains(string(again), "gpuaas.a1") || !strings.Contains(string(again), "Host after") ||
		strings.Count(string(again), blockStart) != 1 || !strings.HasPrefix(string(again), mine) {
		t.Fatalf("replace: %q %v", again, err)
	}
	if _, err := replaceBlock([]byte(blockStart+"\nHost x\n"), block); err == nil {
		t.Fatal("a start marker without its end was rewritten")
	}
	if !strings.Contains(block, "StrictHostKeyChecking yes") {
		t.Fatalf("block %q", block)
	}
	if b := managedBlock([]hostEntry{{Alias: "gpuaas.b", Host: "h", Port: 22, User: "u"}}, "/k h", "/id file"); !strings.Contains(b, "accept-new") ||
		!strings.Contains(b, `UserKnownHostsFile "/k h"`) || !strings.Contains(b, `IdentityFile "/id file"`) {
		t.Fatalf("block without host key %q", b)
	}
}

func TestParseMoney(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"25": 2500, "12.5": 1250, "12.50": 1250, "0.01": 1, "0": 0} {
		if got, err := parseMoney(in); err != nil || got != want {
			t.Errorf("parseMoney(%q) = %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "+1", "1.234", "1.", "abc", "1e3", "1.-5"} {
		if _, err := parseMoney(bad); err == nil {
			t.Errorf("parseMoney(%q) accepted", bad)
		}
	}
	if money(-1234, "usd") != "-12.34 USD" || money(5, "eur") != "0.05 EUR" {
		t.Fatal("money")
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]int{400: ExitUsage, 401: ExitAuth, 402: ExitPayment, 403: ExitForbidden, 404: ExitNotFound,
		409: ExitConflict, 422: ExitConflict, 429: ExitUnavailable, 503: ExitUnavailable, 500: ExitError} {
		code, line := classify(&client.Error{StatusCode: status, Code: "c", Message: "m"})
		if code != want || line != "m ("+itoa(int64(status))+" c)" {
			t.Errorf("%d: exit %d %q, want %d", status, code, line, want)
		}
	}
	if code, _ := classify(&client.AllocationFailedError{}); code != ExitFailed {
		t.Fatal("allocation failed")
	}
	if code, _ := classify(errors.New("x")); code != ExitError {
		t.Fatal("plain error")
	}
	// A missing local file is the file's error, not "the API is
	// unreachable" (its syscall.Errno looks like a net.Error).
	_, err := os.Open(filepath.Join(t.TempDir(), "missing"))
	if code, line := classify(err); code != ExitError || strings.Contains(line, "unreachable") {
		t.Fatalf("missing file: exit %d %q", code, line)
	}
	if code, line := classify(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}); code != ExitUnavailable ||
		!strings.Contains(line, "unreachable") {
		t.Fatalf("refused connection: exit %d %q", code, line)
	}
}

// Global flags may come before the command, as with git or kubectl; they
// are moved behind the command's own arguments, before a "--".
func TestGlobalFlagsBeforeTheCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []string
		want []string
		ok   bool
	}{
		{[]string{"alloc", "ls"}, []string{"alloc", "ls"}, true},
		{[]string{"--api", "http://x", "alloc", "ls"}, []string{"alloc", "ls", "--api", "http://x"}, true},
		{[]string{"--json", "-project=p", "whoami"}, []string{"whoami", "--json", "-project=p"}, true},
		{[]string{"--api=http://x", "ssh", "a1", "--", "nvidia-smi", "--json"},
			[]string{"ssh", "a1", "--api=http://x", "--", "nvidia-smi", "--json"}, true},
		{[]string{"--api", "http://x"}, []string{"--api", "http://x"}, false},
		{[]string{"--verbose", "alloc", "ls"}, []string{"--verbose", "alloc", "ls"}, false},
		{[]string{"--api", "http://x", "serve", "api"}, []string{"--api", "http://x", "serve", "api"}, false},
		{[]string{"serve", "api"}, []string{"serve", "api"}, false},
	} {
		got, ok := Command(tc.in)
		if ok != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("Command(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	// globalFlags says what runner.flags defines.
	fs := (&runner{}).flags("x")
	for name, takesValue := range globalFlags {
		fl := fs.Lookup(name)
		if fl == nil {
			t.Fatalf("runner.flags has no -%s", name)
		}
		_, isBool := fl.Value.(interface{ IsBoolFlag() bool })
		if isBool == takesValue {
			t.Fatalf("-%s: takes a value %v in globalFlags, but its flag is bool %v", name, takesValue, isBool)
		}
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n != len(globalFlags) {
		t.Fatalf("runner.flags defines %d flags, globalFlags names %d", n, len(globalFlags))
	}
}

// files rm on a folder with files in it says how to remove it from the
// command line (the API's message names its query parameter).
func TestFilesRemoveNamesTheFlag(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := &cliEnv{t: t, dir: t.TempDir()}
	c.run(ExitOK, testKey+"\n", "login", "--api", api.URL, "--api-key-stdin")
	out := c.run(ExitConflict, "", "files", "rm", ":data")
	if !strings.Contains(out, "gpuaas files rm -r :data") || strings.Contains(out, "recursive=true") {
		t.Fatalf("files rm on a full folder said %q", out)
	}
	if out := c.run(ExitOK, "", "files", "rm", "-r", ":data"); !strings.Contains(out, "Removed :data (1 file, 6 bytes)") {
		t.Fatalf("files rm -r said %q", out)
	}
}

// An empty list says what to do instead of printing a bare header.
func TestAllocListEmptySaysWhatToDo(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := &cliEnv{t: t, dir: t.TempDir()}
	c.run(ExitOK, testKey+"\n", "login", "--api", api.URL, "--api-key-stdin")
	if out := c.run(ExitOK, "", "alloc", "ls", "--project", emptyPID); !strings.Contains(out, "No node is allocated") ||
		!strings.Contains(out, "--all") {
		t.Fatalf("empty alloc ls said %q", out)
	}
	if out := c.run(ExitOK, "", "alloc", "ls"); !strings.Contains(out, "NAME") || !strings.Contains(out, "BILLED") ||
		!strings.Contains(out, allocA) {
		t.Fatalf("alloc ls said %q", out)
	}
}

// A refusal a new user meets says which command fixes it, in text and JSON.
func TestRefusalsSayWhatToRunNext(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t)
	c := &cliEnv{t: t, dir: t.TempDir()}
	c.run(ExitOK, testKey+"\n", "login", "--api", api.URL, "--api-key-stdin")
	if out := c.run(ExitPayment, "", "balance"); !strings.Contains(out, "over the cap (402 spend_cap_reached)\n  next: ") ||
		!strings.Contains(out, "gpuaas keys ls") {
		t.Fatalf("balance over the spend cap said %q", out)
	}
	out := c.run(ExitPayment, "", "balance", "--json")
	var line struct {
		Error struct{ Code, Next string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &line); err != nil || line.Error.Code != "spend_cap_reached" ||
		!strings.Contains(line.Error.Next, "gpuaas keys ls") {
		t.Fatalf("--json refusal %q (%v)", out, err)
	}
	for code, want := range map[string]string{"ssh_key_required": "gpuaas ssh-keys add", "insufficient_balance": "gpuaas top-up",
		"no_capacity": "gpuaas skus", "allocation_cap_reached": "gpuaas alloc release", "storage_quota_exceeded": "gpuaas files rm",
		"validation_failed": ""} {
		got := nextStep(&client.Error{StatusCode: 409, Code: code})
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("nextStep(%s) = %q; want it to name %q", code, got, want)
		}
	}
	if got := nextStep(&client.Error{StatusCode: 401, Code: "token_invalid"}); !strings.Contains(got, "gpuaas login") {
		t.Errorf("401: %q", got)
	}
}

// What an allocation was billed: active_at to the release request at its
// price, rounded down; so far while it runs; nothing before it was active.
func TestBilledLine(t *testing.T) {
	t.Parallel()
	active := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	asked, done, now := active.Add(2*time.Hour+13*time.Minute+500*time.Millisecond), active.Add(3*time.Hour), active.Add(5*time.Hour)
	a := client.Allocation{PriceMinor: 1859, Currency: "usd", ActiveAt: &active}
	if got := billedLine(a, now); got != "92.95 USD for 5h0m0s of use so far" {
		t.Errorf("running: %q", got)
	}
	a.ReleaseRequestedAt, a.ReleasedAt = &asked, &done
	if got := billedLine(a, now); got != "41.20 USD for 2h13m0s of use" { // 1859 × 7980 / 3600 = 4120.78
		t.Errorf("released: %q", got)
	}
	a.ReleaseRequestedAt = nil
	if got := billedLine(a, now); got != "55.77 USD for 3h0m0s of use" {
		t.Errorf("released, no request time: %q", got)
	}
	if got := billedLine(client.Allocation{PriceMinor: 1859, Currency: "usd"}, now); got != "" {
		t.Errorf("never active: %q", got)
	}
	// Every reason the API can give has its words.
	for _, r := range []client.ReleaseReason{client.ReleasedByUser, client.ReleasedByTenantAdmin, client.ReleasedByOperator,
		client.ReleasedBalanceOut, client.ReleasedCostCap} {
		if !r.Valid() {
			t.Errorf("%s is not a reason the contract knows", r)
		}
		if releaseReasonText[r] == "" {
			t.Errorf("no words for release reason %s", r)
		}
	}
}

func TestPositiveDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"30d": 720 * time.Hour, "12h": 12 * time.Hour, "90m": 90 * time.Minute} {
		var d positiveDuration
		if err := d.Set(in); err != nil || time.Duration(d) != want {
			t.Errorf("%s: %v %v, want %v", in, time.Duration(d), err, want)
		}
	}
	var g flag.Getter = new(positiveDuration) // session reads --timeout through it
	_ = g.Set("2m")
	if g.Get() != 2*time.Minute {
		t.Errorf("Get %v", g.Get())
	}
	for _, bad := range []string{"0d", "-1h", "0s", "30", "1y", "99999d"} {
		var d positiveDuration
		if err := d.Set(bad); err == nil {
			t.Errorf("%s taken as %v", bad, time.Duration(d))
		}
	}
}
