package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// refresh trades a refresh token for new tokens at the API.
func refresh(ctx context.Context, hc *http.Client, api, refreshToken string) (client.SignIn, error) {
	c, err := client.New(api, client.WithHTTPClient(hc))
	if err != nil {
		return client.SignIn{}, err
	}
	return c.RefreshSignIn(ctx, refreshToken)
}

// login signs in with an API key (checked against the API before it is
// saved) or in the browser: a loopback listener on 127.0.0.1 receives the
// identity provider's redirect (RFC 8252), and the platform, which holds
// the PKCE verifier, exchanges the code.
func (r *runner) login(args []string) error {
	f := r.flags("login")
	key := f.String("api-key", "", "sign in with this API key (gpa_…) instead of the browser")
	keyStdin := f.Bool("api-key-stdin", false, "read the API key from standard input")
	noBrowser := f.Bool("no-browser", false, "print the sign-in URL instead of opening a browser")
	timeout := f.positiveDuration("timeout", 5*time.Minute, "how long to wait for the browser")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.want(0, 0, "no arguments"); err != nil {
		return err
	}
	api := r.api("")
	if *keyStdin {
		line, err := bufio.NewReader(r.env.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		*key = strings.TrimSpace(line)
	}
	if *key != "" {
		return r.loginWithKey(api, *key)
	}
	return r.loginInBrowser(api, *noBrowser, *timeout)
}

func (r *runner) loginWithKey(api, key string) error {
	if !identity.LooksLikeAPIKey(key) {
		return usagef("an API key starts with gpa_")
	}
	ctx, cancel := r.withTimeout(time.Minute)
	defer cancel()
	c, err := client.New(api, client.WithHTTPClient(r.env.HTTP), client.WithAPIKey(key), client.WithUserAgent("gpuaas-cli"))
	if err != nil {
		return usagef("%v", err)
	}
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	project := r.project
	if project == "" {
		project = client.DefaultProjectOf(me)
	}
	creds := credentials{API: api, ProjectID: project, Kind: "api_key", APIKey: key, User: who(me.User)}
	return r.signedIn(creds, "API key "+key[:min(len(key), 4+identity.LookupLength)]+"…", me)
}

// projectLabel names a project by its name and id when me lists it.
func projectLabel(me client.Me, id string) string {
	for _, p := range me.Projects {
		if p.Id == id && p.Name != "" {
			return p.Name + " (" + id + ")"
		}
	}
	return id
}

func who(u client.User) string {
	if u.Email != "" {
		return u.Email
	}
	return u.DisplayName
}

func (r *runner) signedIn(creds credentials, how string, me client.Me) error {
	if err := r.saveCredentials(creds); err != nil {
		return err
	}
	path, _ := r.credentialsPath()
	return r.out(map[string]any{"api": creds.API, "user": creds.User, "project_id": creds.ProjectID, "kind": creds.Kind,
		"credentials": path}, func(w io.Writer) {
		fmt.Fprintf(w, "Signed in to %s as %s (%s).\n", creds.API, creds.User, how)
		if creds.ProjectID != "" {
			fmt.Fprintf(w, "Commands act in project %s (--project to change).\n", projectLabel(me, creds.ProjectID))
		}
		fmt.Fprintf(w, "Credentials: %s (mode 0600).\n", path)
	})
}

// callback is what the browser brought back to the loopback listener.
type callback struct{ code, state, errCode, errDesc string }

func (r *runner) loginInBrowser(api string, noBrowser bool, timeout time.Duration) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1 for the browser's redirect: %w", err)
	}
	defer ln.Close()
	redirect := fmt.Sprintf("http://127.0.0.1:%d%s", ln.Addr().(*net.TCPAddr).Port, identity.LoopbackRedirectPath)
	c, err := client.New(api, client.WithHTTPClient(r.env.HTTP), client.WithUserAgent("gpuaas-cli"))
	if err != nil {
		return usagef("%v", err)
	}
	got := make(chan callback, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != identity.LoopbackRedirectPath {
			http.NotFound(w, req)
			return
		}
		q := req.URL.Query()
		cb := callback{code: q.Get("code"), state: q.Get("state"), errCode: q.Get("error"), errDesc: q.Get("error_description")}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		msg := "Signed in. You can close this tab and return to the terminal."
		if cb.errCode != "" || cb.code == "" {
			msg = "Sign-in failed: " + html.EscapeString(cb.errCode+" "+cb.errDesc)
		}
		fmt.Fprintf(w, "<!doctype html><title>gpuaas login</title><p>%s</p>", msg)
		select {
		case got <- cb:
		default:
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	target := c.AuthorizeURL(redirect)
	fmt.Fprintf(r.env.Stderr, "To sign in, open this URL in a browser on this machine:\n\n  %s\n\n", target)
	if noBrowser {
		// The redirect comes back to this machine's loopback, so a browser
		// elsewhere needs the port forwarded, or an API key instead.
		fmt.Fprintf(r.env.Stderr, "No browser here? Forward the port from the machine that has one (ssh -L %d:127.0.0.1:%d THIS-HOST)\n"+
			"and open the URL there, or create an API key in the console and run: gpuaas login --api-key-stdin\n\n",
			ln.Addr().(*net.TCPAddr).Port, ln.Addr().(*net.TCPAddr).Port)
	}
	fmt.Fprintln(r.env.Stderr, "Waiting for the sign-in to finish…")
	if !noBrowser && r.env.OpenBrowser != nil {
		_ = r.env.OpenBrowser(target) // the URL is printed either way
	}
	ctx, cancel := r.withTimeout(timeout)
	defer cancel()
	var cb callback
	select {
	case cb = <-got:
	case <-ctx.Done():
		return exitErr{ExitAuth, "no sign-in arrived within " + timeout.String()}
	}
	if cb.errCode != "" || cb.code == "" {
		return exitErr{ExitAuth, "the identity provider refused the sign-in: " + strings.TrimSpace(cb.errCode+" "+cb.errDesc)}
	}
	tok, err := c.ExchangeCode(ctx, cb.code, cb.state, redirect)
	if err != nil {
		return err
	}
	creds := credentials{API: api, Kind: "oidc", AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		Expiry: r.env.Now().Add(time.Duration(tok.ExpiresIn) * time.Second), User: who(tok.User), ProjectID: r.project}
	signed, err := client.New(api, client.WithHTTPClient(r.env.HTTP), client.WithBearerToken(tok.AccessToken))
	if err != nil {
		return err
	}
	me, err := signed.Me(ctx)
	if err != nil {
		return err
	}
	if creds.ProjectID == "" {
		creds.ProjectID = client.DefaultProjectOf(me)
	}
	return r.signedIn(creds, "browser sign-in", me)
}

// logout forgets the credentials (a browser sign-in is also signed out at
// the platform, best effort).
func (r *runner) logout(args []string) error {
	f := r.flags("logout")
	if err := f.parse(args); err != nil {
		return err
	}
	creds, err := r.loadCredentials()
	if err != nil {
		var ee exitErr
		if errors.As(err, &ee) && ee.code == ExitAuth {
			return r.out(map[string]any{"signed_out": false}, func(w io.Writer) { fmt.Fprintln(w, "Not signed in.") })
		}
		return err
	}
	if creds.Kind == "oidc" && creds.RefreshToken != "" {
		ctx, cancel := r.withTimeout(10 * time.Second)
		defer cancel()
		body, _ := json.Marshal(map[string]string{"refresh_token": creds.RefreshToken})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.api(creds.API)+"/api/v1/auth/logout", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+creds.AccessToken)
		if resp, err := r.env.HTTP.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	p, _ := r.credentialsPath()
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return r.out(map[string]any{"signed_out": true}, func(w io.Writer) { fmt.Fprintln(w, "Signed out; credentials removed.") })
}

// whoami shows the caller and the project commands act in.
func (r *runner) whoami(args []string) error {
	c, ctx, cancel, err := r.session(r.flags("whoami"), args, 0, 0, "no arguments", time.Minute)
	if err != nil {
		return err
	}
	defer cancel()
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	return r.out(map[string]any{"user": me.User, "tenant": me.Tenant, "projects": me.Projects, "project_id": c.Project(),
		"api": c.BaseURL()}, func(w io.Writer) {
		fmt.Fprintf(w, "%s (%s) in %s at %s\n", who(me.User), me.User.Id, me.Tenant.Name, c.BaseURL())
		for _, p := range me.Projects {
			mark := " "
			if p.Id == c.Project() {
				mark = "*"
			}
			fmt.Fprintf(w, "%s %s  %s  (%s)\n", mark, p.Id, p.Name, p.Role)
		}
	})
}
