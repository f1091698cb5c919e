// Command pkce-login signs a user in to the platform without a browser and
// prints the access token, for trying the API with curl:
//
//	go run ./scripts/pkce-login -api http://127.0.0.1:8080 -user alice -password alice
//	TOKEN=$(go run ./scripts/pkce-login -user alice -password alice)
//	go run ./scripts/pkce-login -user admin -password admin -me
//
// It follows the same flow as the web console:
//
//  1. GET {api}/api/v1/auth/oidc/authorize?redirect_uri=R — the API makes
//     state and a PKCE verifier, keeps the verifier server side and redirects
//     to the identity provider;
//  2. the dev provider's login page is filled in (request_id, username,
//     password; see adapters/devoidc) and the provider redirects to R with
//     code and state — the script stops there and does not request R;
//  3. POST {api}/api/v1/auth/oidc/exchange {"code","state","redirect_uri"}
//     returns {"access_token","refresh_token","expires_in","token_type"}.
//
// With -me it then calls GET {api}/api/v1/users/me and prints the JSON.
// It only works with the built-in dev provider (`gpuaas dev`), whose login
// form it knows. Exit status 1 on any failure, 2 on bad flags.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/testkit/e2e"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pkce-login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", "http://127.0.0.1:8080", "base URL of the platform API")
	user := fs.String("user", "alice", "username at the dev identity provider")
	password := fs.String("password", "", "password (default: same as -user, as for the dev demo users)")
	redirect := fs.String("redirect-uri", "", "redirect URI registered at the provider (default: {api}/auth/callback)")
	me := fs.Bool("me", false, "call GET /api/v1/users/me with the token and print the JSON instead of the token")
	timeout := fs.Duration("timeout", 30*time.Second, "overall time limit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pkce-login: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *password == "" {
		*password = *user
	}
	base := strings.TrimSuffix(*api, "/")
	if *redirect == "" {
		*redirect = base + "/auth/callback"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	c := e2e.New(base)
	c.HTTP = &http.Client{Timeout: *timeout}
	c.RedirectURI = *redirect
	if err := c.Login(ctx, *user, *password); err != nil {
		fmt.Fprintf(stderr, "pkce-login: %v\n", err)
		return 1
	}
	if !*me {
		fmt.Fprintln(stdout, c.Token)
		return 0
	}
	var body json.RawMessage
	if err := c.Call(ctx, "GET", "/api/v1/users/me", nil, &body); err != nil {
		fmt.Fprintf(stderr, "pkce-login: users/me: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(body)))
	return 0
}
