package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/devoidc"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/testkit/tokens"
	"github.com/gpuaas/gpuaas/testkit/tokens/signin"
)

// fakeAPI is the slice of the platform API the script talks to, built the
// way the HTTP host is meant to: state and PKCE verifier kept server side,
// exchange through the production oidc.Client, /users/me through the
// production oidc.Verifier.
func fakeAPI(t *testing.T) (apiURL string, dev *tokens.DevOIDC) {
	t.Helper()
	mux := http.NewServeMux()
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)
	dev = tokens.NewDevOIDC(t, func(c *devoidc.Config) {
		c.RedirectURIs = append(c.RedirectURIs, api.URL+"/auth/callback")
	})
	client, err := oidc.NewClient(oidc.ClientConfig{Issuer: dev.Issuer(), ClientID: dev.ClientID()})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: dev.Issuer(), Audience: dev.ClientID()})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	pending := map[string]string{} // state → PKCE verifier

	mux.HandleFunc("GET /api/v1/auth/oidc/authorize", func(w http.ResponseWriter, r *http.Request) {
		v, challenge := signin.NewPKCE()
		state, _ := signin.NewPKCE()
		mu.Lock()
		pending[state] = v
		mu.Unlock()
		http.Redirect(w, r, client.AuthCodeURL(state, challenge, r.URL.Query().Get("redirect_uri")), http.StatusFound)
	})
	mux.HandleFunc("POST /api/v1/auth/oidc/exchange", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Code        string `json:"code"`
			State       string `json:"state"`
			RedirectURI string `json:"redirect_uri"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, `{"code":"validation_failed"}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		v, ok := pending[in.State]
		delete(pending, in.State)
		mu.Unlock()
		if !ok {
			http.Error(w, `{"code":"token_invalid","message":"unknown state"}`, http.StatusUnauthorized)
			return
		}
		tok, err := client.Exchange(r.Context(), in.Code, v, in.RedirectURI)
		if err != nil {
			http.Error(w, `{"code":"token_invalid"}`, http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok.AccessToken, "refresh_token": tok.RefreshToken,
			"expires_in": tok.ExpiresIn, "token_type": tok.TokenType})
	})
	mux.HandleFunc("GET /api/v1/users/me", func(w http.ResponseWriter, r *http.Request) {
		c, err := verifier.Verify(r.Context(), strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil {
			http.Error(w, `{"code":"token_invalid"}`, http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"subject": c.Subject, "email": c.Email, "roles": c.Roles})
	})
	return api.URL, dev
}

func TestRun(t *testing.T) {
	t.Parallel()
	api, dev := fakeAPI(t)
	v, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: dev.Issuer(), Audience: dev.ClientID()})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("prints a valid access token", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"-api", api, "-user", "alice", "-password", "alice"}, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		c, err := v.Verify(context.Background(), strings.TrimSpace(out.String()))
		if err != nil || c.Subject != devoidc.SubjectFor("alice") {
			t.Fatalf("printed token: %+v, %v", c, err)
		}
	})
	t.Run("-me prints the user", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"-api", api, "-user", "admin", "-me"}, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		var me struct {
			Email string   `json:"email"`
			Roles []string `json:"roles"`
		}
		if err := json.Unmarshal(out.Bytes(), &me); err != nil || me.Email != "admin@example.com" {
			t.Fatalf("output %q: %v", out.String(), err)
		}
	})

	failures := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong password", []string{"-api", api, "-user", "alice", "-password", "nope"}, 1, "refused the username or password"},
		{"unregistered redirect", []string{"-api", api, "-redirect-uri", "http://127.0.0.1:1/elsewhere"}, 1, "pkce-login:"},
		{"no API", []string{"-api", "http://127.0.0.1:1"}, 1, "pkce-login:"},
		{"bad flag", []string{"-nope"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"extra"}, 2, "unexpected arguments"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &errOut); code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.code, errOut.String())
			}
			t.Logf("stderr: %s", errOut.String())
			if out.Len() != 0 || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("stdout %q stderr %q, want %q in stderr", out.String(), errOut.String(), tc.want)
			}
			if strings.Contains(errOut.String(), "nope") && tc.name == "wrong password" {
				t.Fatal("the password was echoed")
			}
		})
	}
}
