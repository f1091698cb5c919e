package identity_test

import (
	"strings"
	"testing"

	"github.com/gpuaas/gpuaas/core/identity"
)

func TestMapRole(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		roles []string
		want  identity.Role
	}{
		"none":          {nil, identity.RoleUser},
		"keycloak user": {[]string{"offline_access", "uma_authorization"}, identity.RoleUser},
		"admin":         {[]string{"offline_access", "admin"}, identity.RoleAdmin},
		"mixed case":    {[]string{"GPUaaS-Admin"}, identity.RoleAdmin},
		"lookalike":     {[]string{"administrator"}, identity.RoleUser},
	}
	for name, c := range cases {
		if got := identity.MapRole(c.roles); got != c.want {
			t.Errorf("%s: %s; want %s", name, got, c.want)
		}
	}
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"ml-research", "Équipe IA", strings.Repeat("x", 100)} {
		if err := identity.ValidateName("name", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "  ", " lead", "trail ", strings.Repeat("x", 101), "bell\a"} {
		if err := identity.ValidateName("name", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSlugify(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"Alice Smith": "alice-smith", "  ": "tenant", "a--b!!c": "a-b-c", "Über": "ber"} {
		if got := identity.Slugify(in); got != want {
			t.Errorf("Slugify(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestIsLoopbackRedirect(t *testing.T) {
	t.Parallel()
	for uri, want := range map[string]bool{
		"http://127.0.0.1:49152/callback":    true,
		"http://[::1]:8080/callback":         true,
		"http://127.0.0.1/callback":          false, // a port is required
		"http://localhost:8080/callback":     false,
		"https://127.0.0.1:8080/callback":    false,
		"http://127.0.0.1:8080/other":        false,
		"http://127.0.0.1:8080/callback?x=1": false,
		"http://127.0.0.1:8080/callback#f":   false,
		"http://u@127.0.0.1:8080/callback":   false,
		"http://127.0.0.2:8080/callback":     false,
		"http://127.0.0.1:0/callback":        false,
		"http://127.0.0.1:080/callback":      false,
		"http://127.0.0.1:70000/callback":    false,
		"http://evil.example/callback":       false,
	} {
		if got := identity.IsLoopbackRedirect(uri); got != want {
			t.Errorf("IsLoopbackRedirect(%q) = %v, want %v", uri, got, want)
		}
	}
}
