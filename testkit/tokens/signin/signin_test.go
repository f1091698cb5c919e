package signin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/testkit/tokens"
	"github.com/gpuaas/gpuaas/testkit/tokens/signin"
)

func TestLoginAgainstDevProvider(t *testing.T) {
	t.Parallel()
	dev := tokens.NewDevOIDC(t)
	_, challenge := signin.NewPKCE()
	cb, err := dev.Login(context.Background(), "bob", "bob", "state-1", challenge)
	if err != nil {
		t.Fatal(err)
	}
	if cb.Code == "" || cb.State != "state-1" || !strings.HasPrefix(cb.URL.String(), dev.RedirectURI) {
		t.Fatalf("callback = %+v", cb)
	}
}

func TestLoginErrors(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cbURL := srv.URL + "/cb"
	mux.HandleFunc("/not-a-login-page", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>hello</html>")) })
	mux.HandleFunc("/denied", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, cbURL+"?error=access_denied&error_description=nope&state=s", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/no-code", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, cbURL+"?state=s", http.StatusFound) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })

	cases := map[string]string{
		"/not-a-login-page": "did not return the dev provider's login page",
		"/denied":           "access_denied",
		"/loop":             "redirects",
		"/no-code":          "no code",
		"/broken":           "500",
	}
	for path, want := range cases {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			_, err := signin.Login(context.Background(), signin.Params{StartURL: srv.URL + path, RedirectURI: cbURL, Username: "u", Password: "p"})
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want %q", err, want)
			}
		})
	}
	// An immediate redirect with a code (a provider with a live session) is
	// returned without any form.
	mux.HandleFunc("/sso", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, cbURL+"?code=c1&state=s", http.StatusFound)
	})
	cb, err := signin.Login(context.Background(), signin.Params{StartURL: srv.URL + "/sso", RedirectURI: cbURL})
	if err != nil || cb.Code != "c1" || cb.State != "s" {
		t.Fatalf("sso: %+v, %v", cb, err)
	}
}

func TestPKCE(t *testing.T) {
	t.Parallel()
	v, c := signin.NewPKCE()
	// RFC 7636 appendix B test vector.
	if got := signin.S256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("S256 = %s", got)
	}
	if len(v) != 43 || c != signin.S256(v) {
		t.Fatalf("verifier %q challenge %q", v, c)
	}
	if v2, _ := signin.NewPKCE(); v2 == v {
		t.Fatal("verifiers repeat")
	}
}
