// Package cli is the user CLI of the `gpuaas` binary (`gpuaas login`,
// `skus`, `alloc`, `ssh`, `config-ssh`, `balance`, `usage`, `top-up`,
// `files`, `keys`, `mcp`), built on the Go client (package client). It is a
// host: it reads the environment, the user's config directory and flags,
// and calls the API; doc/cli.md is its manual.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// Env is what the CLI reads and writes outside itself; tests replace any
// of it.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// OpenBrowser opens a URL for the person at the keyboard (login,
	// top-up); an error means "print it instead".
	OpenBrowser func(url string) error
	// Exec replaces the process with another program (gpuaas ssh runs the
	// system ssh this way); tests record it instead.
	Exec func(argv0 string, argv []string, env []string) error
	// HTTP is the client for the API (default: 60 s timeout).
	HTTP *http.Client
	// Now tells the time (default time.Now).
	Now func() time.Time
}

// OSEnv is the real environment.
func OSEnv() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, OpenBrowser: openBrowser,
		Exec: execProcess, Now: time.Now}
}

// Commands names the subcommands this package serves, for the binary's
// dispatcher.
var Commands = []string{"login", "logout", "whoami", "skus", "alloc", "ssh", "config-ssh", "ssh-keys", "balance", "usage",
	"top-up", "files", "keys", "mcp"}

// globalFlags are the flags every user command takes (runner.flags), by
// name, with whether each takes a value.
var globalFlags = map[string]bool{"json": false, "api": true, "project": true}

// Command finds the user command named by args, which may come after
// global flags (gpuaas --api URL alloc ls, as with git or kubectl). It
// returns args with the command first and those flags moved after its own
// arguments (before a "--", which ends them), and false when args name no
// user command.
func Command(args []string) ([]string, bool) {
	i := 0
	for i < len(args) {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		name, _, inline := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		takesValue, ok := globalFlags[name]
		if !ok {
			return args, false
		}
		i++
		if takesValue && !inline {
			i++ // the value
		}
	}
	if i >= len(args) || !slices.Contains(Commands, args[i]) {
		return args, false
	}
	if i == 0 {
		return args, true
	}
	rest := args[i:]
	end := slices.Index(rest, "--")
	if end < 0 {
		end = len(rest)
	}
	out := make([]string, 0, len(args))
	out = append(out, rest[:end]...)
	out = append(out, args[:i]...)
	return append(out, rest[end:]...), true
}

// Usage is the CLI part of the binary's help.
const Usage = `User commands (doc/cli.md; --json on every command, --api URL to pick the API):
  gpuaas login [--api-key KEY | --api-key-stdin] [--no-browser]
                              sign in (browser, or an API key) and remember it
  gpuaas logout               forget the credentials
  gpuaas whoami               who you are and which project commands act in
  gpuaas skus                 the catalogue with prices and free nodes
  gpuaas alloc create --sku SKU [--wait] [--max-hourly-price N] [--max-total-cost N]
  gpuaas alloc quote --sku SKU   what a node would cost and whether it is allowed
  gpuaas alloc ls | get ID | release ID [--wait]
  gpuaas ssh ALLOCATION [-- COMMAND…]
                              ssh to an allocation's node (the system ssh)
  gpuaas config-ssh [--ssh-config PATH] [--identity-file PATH]
                              write Host gpuaas.<name> entries to ~/.ssh/config
  gpuaas ssh-keys ls | add [FILE.pub] | rm ID
                              the SSH keys installed on your nodes
  gpuaas balance              balance, burn rate and runway
  gpuaas usage [--csv]        usage records (CSV: the billing export)
  gpuaas top-up AMOUNT [--currency usd]
                              buy credit (opens the checkout)
  gpuaas files ls [PATH] | cp SRC DST | rm PATH [-r]
                              project storage (remote paths start with :)
  gpuaas keys ls | create --name N --scopes read,allocations [--expires 30d] [--spend-cap N] | revoke ID
  gpuaas mcp                  a Model Context Protocol server on stdio for AI agents
`

// Exit codes (doc/cli.md).
const (
	ExitOK          = 0
	ExitError       = 1 // anything else
	ExitUsage       = 2 // bad command line
	ExitAuth        = 3 // not signed in, or the credential was refused (401)
	ExitForbidden   = 4 // 403: scope, role, interactive-only
	ExitNotFound    = 5 // 404
	ExitPayment     = 6 // 402: balance, spend cap
	ExitConflict    = 7 // 409/422: no capacity, state, price over the maximum
	ExitFailed      = 8 // --wait: the allocation ended without becoming active
	ExitUnavailable = 9 // 429/503 after retries, or the API unreachable
)

// Run runs one CLI command (args without the program name) and returns
// its exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.HTTP == nil {
		env.HTTP = &http.Client{Timeout: 60 * time.Second}
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, Usage)
		return ExitUsage
	}
	r := &runner{env: env, ctx: ctx, cmd: args[0]}
	cmds := map[string]func([]string) error{
		"login": r.login, "logout": r.logout, "whoami": r.whoami, "skus": r.skus, "alloc": r.alloc, "ssh": r.ssh,
		"config-ssh": r.configSSH, "ssh-keys": r.sshKeys, "balance": r.balance, "usage": r.usage, "top-up": r.topUp, "files": r.files,
		"keys": r.keys, "mcp": r.mcp,
	}
	f, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "gpuaas: unknown command %q\n\n%s", args[0], Usage)
		return ExitUsage
	}
	return r.finish(f(args[1:]))
}

// runner carries one command's environment and global flags.
type runner struct {
	env     Env
	ctx     context.Context
	cmd     string // the command (its first word)
	json    bool
	apiFlag string
	project string
}

// usageErr is a bad command line.
type usageErr struct{ msg string }

func (u usageErr) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageErr{fmt.Sprintf(format, a...)} }

// exitErr carries a chosen exit code and message.
type exitErr struct {
	code int
	msg  string
}

func (e exitErr) Error() string { return e.msg }

// flags is a subcommand's flag set with the global flags (--json, --api,
// --project) and interleaved positional arguments (`alloc get ID --json`);
// words after "--" are kept apart (tail: the command `gpuaas ssh` runs).
type flags struct {
	*flag.FlagSet
	args []string
	tail []string
}

func (r *runner) flags(name string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&r.json, "json", false, "print JSON for scripts")
	fs.StringVar(&r.apiFlag, "api", "", "API base URL (default: the one you logged in to, $GPUAAS_API_URL, http://127.0.0.1:8080)")
	fs.StringVar(&r.project, "project", "", "project id (default: the credential's)")
	return &flags{FlagSet: fs}
}

// positiveDuration defines a flag taking a positive span of time — whole
// days ("30d") or a Go duration ("12h") — as --expires and --timeout do. A
// zero or negative one is refused: it used to mean "never expires" for a
// key and "give up at once" for a wait.
func (f *flags) positiveDuration(name string, def time.Duration, usage string) *time.Duration {
	d := def
	f.Var((*positiveDuration)(&d), name, usage)
	return &d
}

type positiveDuration time.Duration

func (p *positiveDuration) String() string { return time.Duration(*p).String() }

// Get implements flag.Getter (session reads --timeout through it).
func (p *positiveDuration) Get() any { return time.Duration(*p) }

func (p *positiveDuration) Set(s string) error {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n > 36500 {
			return errors.New("not a number of days (like 30d)")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return errors.New("not days or a duration (like 30d or 12h)")
		}
	}
	if d <= 0 {
		return errors.New("must be positive (like 30d or 12h)")
	}
	*p = positiveDuration(d)
	return nil
}

// parse parses flags anywhere among the arguments before "--".
func (f *flags) parse(args []string) error {
	for i, a := range args {
		if a == "--" {
			f.tail = args[i+1:]
			args = args[:i]
			break
		}
	}
	for {
		if err := f.Parse(args); err != nil {
			for _, a := range args {
				if _, numErr := strconv.ParseFloat(a, 64); numErr == nil && strings.HasPrefix(a, "-") &&
					strings.Contains(err.Error(), "not defined: "+a) {
					return usagef("%s: %s is not a flag, and amounts and counts here are positive", f.Name(), a)
				}
			}
			return usagef("%s: %v", f.Name(), err)
		}
		rest := f.Args()
		if len(rest) == 0 {
			return nil
		}
		f.args = append(f.args, rest[0])
		args = rest[1:]
	}
}

// session parses a subcommand's arguments, checks how many positional ones
// it got, and opens the API client with a context bounded by timeout (or,
// when the subcommand has a --timeout flag, by its value and a minute for
// the calls around the wait): the preamble of every command that calls the
// API.
func (r *runner) session(f *flags, args []string, minArgs, maxArgs int, what string, timeout time.Duration) (*client.Client, context.Context, context.CancelFunc, error) {
	if err := f.parse(args); err != nil {
		return nil, nil, nil, err
	}
	if err := f.want(minArgs, maxArgs, what); err != nil {
		return nil, nil, nil, err
	}
	c, err := r.client()
	if err != nil {
		return nil, nil, nil, err
	}
	if fl := f.Lookup("timeout"); fl != nil {
		if d, ok := fl.Value.(flag.Getter).Get().(time.Duration); ok {
			timeout = d + time.Minute
		}
	}
	ctx, cancel := r.withTimeout(timeout)
	return c, ctx, cancel, nil
}

// want checks the number of positional arguments.
func (f *flags) want(min, max int, what string) error {
	if len(f.args) < min || len(f.args) > max {
		return usagef("%s needs %s", f.Name(), what)
	}
	return nil
}

// finish prints an error as one line with its code and maps it to an exit
// code.
func (r *runner) finish(err error) int {
	if err == nil {
		return ExitOK
	}
	code, line := classify(err)
	next := nextStep(err)
	if r.json {
		e := map[string]any{"code": errCode(err), "message": line, "exit_code": code}
		if next != "" {
			e["next"] = next
		}
		writeJSONLine(r.env.Stderr, map[string]any{"error": e})
	} else {
		fmt.Fprintln(r.env.Stderr, "gpuaas: "+line)
		if next != "" {
			fmt.Fprintln(r.env.Stderr, "  next: "+next)
		}
	}
	var ue usageErr
	if errors.As(err, &ue) && !r.json {
		fmt.Fprint(r.env.Stderr, "\n"+usageOf(r.cmd))
	}
	return code
}

// usageOf is Usage's lines for one command (with their descriptions), so
// a bad command line is answered with what that command takes, not every
// command's help, which buried the one line that said what was wrong.
func usageOf(cmd string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(strings.TrimSuffix(Usage, "\n"), "\n")[1:] {
		if f := strings.Fields(line); strings.HasPrefix(line, "  gpuaas ") && len(f) > 1 {
			in = f[1] == cmd
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	if b.Len() == 0 {
		return Usage
	}
	return "Usage:\n" + b.String() + "(gpuaas help lists every command; doc/cli.md)\n"
}

func openBrowser(u string) error {
	for _, cmd := range []string{"xdg-open", "open", "wslview"} {
		if p, err := exec.LookPath(cmd); err == nil {
			c := exec.Command(p, u)
			c.Stdout, c.Stderr = io.Discard, io.Discard
			return c.Start()
		}
	}
	return errors.New("no browser opener found")
}

// trimAPI normalises an API base URL.
func trimAPI(u string) string { return strings.TrimRight(strings.TrimSpace(u), "/") }
