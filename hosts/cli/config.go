package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/gpuaas/gpuaas/hosts/http/client"
)

// DefaultAPI is the API a fresh CLI talks to: `gpuaas dev`'s.
const DefaultAPI = "http://127.0.0.1:8080"

// credentials is what `gpuaas login` remembers, in credentials.json of the
// config directory, mode 0600 (the directory 0700).
type credentials struct {
	API       string `json:"api"`
	ProjectID string `json:"project_id,omitempty"`
	// Kind is "api_key" or "oidc".
	Kind         string    `json:"kind"`
	APIKey       string    `json:"api_key,omitempty"`
	AccessToken  string    `json:"access_token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	User         string    `json:"user,omitempty"`
}

// configDir is $GPUAAS_CONFIG_DIR, else the user's config directory's
// gpuaas folder ($XDG_CONFIG_HOME/gpuaas, ~/.config/gpuaas, …).
func (r *runner) configDir() (string, error) {
	if d := r.env.Getenv("GPUAAS_CONFIG_DIR"); d != "" {
		return d, nil
	}
	if d := r.env.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "gpuaas"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory: %w (set GPUAAS_CONFIG_DIR)", err)
	}
	return filepath.Join(d, "gpuaas"), nil
}

func (r *runner) credentialsPath() (string, error) {
	d, err := r.configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "credentials.json"), nil
}

// errNotSignedIn is the answer of every API command before `gpuaas login`.
var errNotSignedIn = exitErr{ExitAuth, "not signed in: run `gpuaas login` (or set GPUAAS_API_KEY)"}

// loadCredentials reads the remembered credentials; a file others may
// read is refused (it holds a secret).
func (r *runner) loadCredentials() (credentials, error) {
	p, err := r.credentialsPath()
	if err != nil {
		return credentials{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return credentials{}, errNotSignedIn
	}
	if err != nil {
		return credentials{}, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return credentials{}, fmt.Errorf("%s is readable by others (mode %o): run `chmod 600 %s` or log in again", p, st.Mode().Perm(), p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return credentials{}, err
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return credentials{}, fmt.Errorf("%s: %w", p, err)
	}
	return c, nil
}

// saveCredentials writes them atomically with mode 0600.
func (r *runner) saveCredentials(c credentials) error {
	p, err := r.credentialsPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".credentials-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// api picks the API base URL: --api, $GPUAAS_API_URL, the remembered one,
// the default.
func (r *runner) api(saved string) string {
	for _, u := range []string{r.apiFlag, r.env.Getenv("GPUAAS_API_URL"), saved} {
		if u != "" {
			return trimAPI(u)
		}
	}
	return DefaultAPI
}

// client builds the API client from $GPUAAS_API_KEY or the remembered
// credentials (refreshing and re-saving an expired sign-in).
func (r *runner) client() (*client.Client, error) {
	opts := []client.Option{client.WithHTTPClient(r.env.HTTP), client.WithUserAgent("gpuaas-cli")}
	if key := r.env.Getenv("GPUAAS_API_KEY"); key != "" {
		// The key from the environment, the API as always: --api,
		// $GPUAAS_API_URL, then the one a login remembered.
		saved := ""
		if creds, err := r.loadCredentials(); err == nil {
			saved = creds.API
		}
		c, err := client.New(r.api(saved), append(opts, client.WithAPIKey(key), client.WithProject(r.project))...)
		if err != nil {
			return nil, err
		}
		if r.project == "" {
			if err := r.pickProject(c); err != nil {
				return nil, err
			}
			return c.InProject(r.project), nil
		}
		return c, nil
	}
	creds, err := r.loadCredentials()
	if err != nil {
		return nil, err
	}
	project := r.project
	if project == "" {
		project = creds.ProjectID
	}
	opts = append(opts, client.WithProject(project))
	switch creds.Kind {
	case "api_key":
		opts = append(opts, client.WithAPIKey(creds.APIKey))
	case "oidc":
		opts = append(opts, client.WithTokenSource(&savedTokens{r: r, creds: creds}))
	default:
		return nil, errNotSignedIn
	}
	return client.New(r.api(creds.API), opts...)
}

// pickProject selects the credential's project when none is named: the
// only one it can act in, else the default.
func (r *runner) pickProject(c *client.Client) error {
	p, err := c.DefaultProject(r.ctx)
	if err != nil {
		return err
	}
	r.project = p
	return nil
}

// savedTokens is the signed-in person's token source: the remembered
// access token until a minute before it expires, then the API's refresh
// route, whose answer is saved for the next command.
type savedTokens struct {
	r     *runner
	mu    sync.Mutex
	creds credentials
}

// Token implements oauth2.TokenSource.
func (s *savedTokens) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.creds.AccessToken != "" && (s.creds.Expiry.IsZero() || s.r.env.Now().Before(s.creds.Expiry.Add(-time.Minute))) {
		return &oauth2.Token{AccessToken: s.creds.AccessToken, Expiry: s.creds.Expiry}, nil
	}
	if s.creds.RefreshToken == "" {
		return nil, errNotSignedIn
	}
	tok, err := refresh(s.r.ctx, s.r.env.HTTP, s.r.api(s.creds.API), s.creds.RefreshToken)
	if err != nil {
		return nil, exitErr{ExitAuth, "the sign-in has ended (" + err.Error() + "): run `gpuaas login`"}
	}
	s.creds.AccessToken, s.creds.RefreshToken = tok.AccessToken, tok.RefreshToken
	s.creds.Expiry = s.r.env.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	if err := s.r.saveCredentials(s.creds); err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: s.creds.AccessToken, Expiry: s.creds.Expiry}, nil
}

// withTimeout bounds one command's API work.
func (r *runner) withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.ctx, d)
}
