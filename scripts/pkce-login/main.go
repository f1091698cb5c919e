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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/testkit/tokens/signin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// tokenResponse is the API's exchange response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	TokenType    string `json:"token_type"`
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

	hc := &http.Client{Timeout: *timeout}
	tok, err := login(ctx, hc, base, *redirect, *user, *password)
	if err != nil {
		fmt.Fprintf(stderr, "pkce-login: %v\n", err)
		return 1
	}
	if !*me {
		fmt.Fprintln(stdout, tok.AccessToken)
		return 0
	}
	body, err := getMe(ctx, hc, base, tok.AccessToken)
	if err != nil {
		fmt.Fprintf(stderr, "pkce-login: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(body)))
	return 0
}

// login runs the three steps in the package comment.
func login(ctx context.Context, hc *http.Client, api, redirectURI, user, password string) (tokenResponse, error) {
	start := api + "/api/v1/auth/oidc/authorize?" + url.Values{"redirect_uri": {redirectURI}}.Encode()
	cb, err := signin.Login(ctx, signin.Params{
		StartURL: start, RedirectURI: redirectURI, Username: user, Password: password, HTTPClient: hc,
	})
	if err != nil {
		return tokenResponse{}, err
	}
	reqBody, _ := json.Marshal(map[string]string{"code": cb.Code, "state": cb.State, "redirect_uri": redirectURI})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/api/v1/auth/oidc/exchange", bytes.NewReader(reqBody))
	if err != nil {
		return tokenResponse{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	body, err := do(hc, req)
	if err != nil {
		return tokenResponse{}, fmt.Errorf("exchange: %w", err)
	}
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil {
		return tokenResponse{}, fmt.Errorf("exchange: decode response: %w", err)
	}
	if tok.AccessToken == "" {
		return tokenResponse{}, errors.New("exchange: the response has no access_token")
	}
	return tok, nil
}

func getMe(ctx context.Context, hc *http.Client, api, accessToken string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/api/v1/users/me", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	body, err := do(hc, req)
	if err != nil {
		return nil, fmt.Errorf("users/me: %w", err)
	}
	return body, nil
}

// do sends req and returns the body of a 2xx response; anything else is an
// error quoting the API's error message (never the request's credentials).
func do(hc *http.Client, req *http.Request) ([]byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, msg)
	}
	return body, nil
}
