package pki_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/pki"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
)

// The wiring hosts/gpuaas uses: Postgres stores, a key-file KMS and the
// CAs, keys made on start.
func TestModuleStarts(t *testing.T) {
	t.Parallel()
	var (
		ca     ports.CertificateAuthority
		sshCA  ports.SSHCertificateAuthority
		secret ports.SecretStore
	)
	app := fxtest.New(t,
		fx.NopLogger,
		fx.Supply(
			postgres.Config{URL: services.FreshDatabaseURL(t), Migrate: true},
			keyfile.KMSConfig{Path: filepath.Join(t.TempDir(), "kms.key")},
			pki.Config{NodeCertTTL: time.Hour},
		),
		fx.Provide(fx.Annotate(func() *fakes.Clock { return fakes.NewClock(time.Now()) }, fx.As(new(ports.Clock)))),
		postgres.Module, postgres.SecurityModule, keyfile.KMSModule, pki.Module,
		fx.Populate(&ca, &sshCA, &secret),
	)
	app.RequireStart()
	defer app.RequireStop()
	ctx := context.Background()
	// Start made the keys.
	for _, name := range []string{"pki/root", "pki/intermediate/0", "pki/ssh-user-ca"} {
		if _, err := secret.GetSecret(ctx, name); err != nil {
			t.Fatalf("%s not created on start: %v", name, err)
		}
	}
	if roots, err := ca.Roots(ctx); err != nil || roots == nil {
		t.Fatalf("Roots: %v", err)
	}
	if _, err := sshCA.PublicKey(ctx); err != nil {
		t.Fatal(err)
	}
}

// plainCertStore is a NodeCertificateStore that cannot revoke one serial.
type plainCertStore struct{ ports.NodeCertificateStore }

func TestModuleRefusesStoreWithoutSerialRevocation(t *testing.T) {
	t.Parallel()
	err := fx.New(
		fx.NopLogger,
		fx.Supply(pki.Config{}),
		fx.Provide(
			fx.Annotate(func() *fakes.Clock { return fakes.NewClock(time.Time{}) }, fx.As(new(ports.Clock))),
			func() (ports.KMS, error) {
				return keyfile.NewKMS(keyfile.KMSConfig{Path: filepath.Join(t.TempDir(), "k")})
			},
			func() ports.SecretStore { return nil },
			func() ports.NodeCertificateStore { return plainCertStore{} },
		),
		pki.Module,
		fx.Invoke(func(ports.CertificateAuthority) {}),
	).Err()
	if err == nil {
		t.Fatal("module accepted a store that cannot revoke single serials")
	}
}

// With step-ca issuing node certificates, the SSH CA is wired alone.
func TestSSHModuleAlone(t *testing.T) {
	t.Parallel()
	err := fx.ValidateApp(
		fx.Supply(pki.Config{}),
		fx.Provide(
			fx.Annotate(func() *fakes.Clock { return fakes.NewClock(time.Time{}) }, fx.As(new(ports.Clock))),
			func() (ports.KMS, error) { return nil, nil },
			func() ports.SecretStore { return nil },
		),
		pki.SSHModule,
		fx.Invoke(func(ports.SSHCertificateAuthority) {}),
	)
	if err != nil {
		t.Fatal(err)
	}
}
