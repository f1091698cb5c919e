package agentsvc_test

import (
	"bytes"
	"testing"

	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	"github.com/gpuaas/gpuaas/core/inventory/inventorysvc"
)

// The token an operator gets from node registration must hash to what
// Enroll looks up; the two packages must agree.
func TestBootstrapTokenHashMatchesRegistration(t *testing.T) {
	t.Parallel()
	for _, tok := range []string{"abc", "Zm9vYmFy-_", ""} {
		if !bytes.Equal(agentsvc.HashBootstrapToken(tok), inventorysvc.HashBootstrapToken(tok)) {
			t.Fatalf("hashes differ for %q", tok)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	root := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	cases := []struct {
		name string
		cfg  agentsvc.Config
		ok   bool
	}{
		{"defaults", agentsvc.Config{RootsPEM: root}, true},
		{"no roots", agentsvc.Config{}, false},
		{"long-lived certificates", agentsvc.Config{RootsPEM: root, CertTTL: 30 * 24 * 3600e9}, false},
		{"negative lease", agentsvc.Config{RootsPEM: root, LeaseDuration: -1}, false},
	}
	for _, tc := range cases {
		cfg := tc.cfg
		if err := cfg.CheckAndSetDefaults(); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}
