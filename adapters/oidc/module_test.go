package oidc_test

import (
	"testing"

	"go.uber.org/fx"

	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/ports"
)

func TestModule(t *testing.T) {
	t.Parallel()
	opts := fx.Options(
		fx.NopLogger,
		fx.Supply(
			oidc.VerifierConfig{Issuer: "https://sso.example.com/realms/gpuaas", Audience: "gpuaas"},
			oidc.ClientConfig{Issuer: "https://sso.example.com/realms/gpuaas", ClientID: "gpuaas"},
		),
		oidc.Module,
	)
	if err := fx.ValidateApp(opts, fx.Invoke(func(ports.TokenVerifier, ports.IdentityProvider) {})); err != nil {
		t.Fatalf("ValidateApp: %v", err)
	}
	// Construction makes no network call (discovery is lazy), so the graph
	// builds even though the issuer does not exist.
	var v ports.TokenVerifier
	var c ports.IdentityProvider
	app := fx.New(opts, fx.Populate(&v, &c))
	if err := app.Err(); err != nil {
		t.Fatalf("fx.New: %v", err)
	}
	if _, ok := v.(*oidc.Verifier); !ok {
		t.Fatalf("TokenVerifier is %T", v)
	}
	if _, ok := c.(*oidc.Client); !ok {
		t.Fatalf("IdentityProvider is %T", c)
	}
}
