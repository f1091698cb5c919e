package authsvc_test

import (
	"context"
	"crypto"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpuaas/gpuaas/adapters/inproc"
	"github.com/gpuaas/gpuaas/adapters/keyfile"
	"github.com/gpuaas/gpuaas/adapters/oidc"
	"github.com/gpuaas/gpuaas/adapters/pki"
	"github.com/gpuaas/gpuaas/adapters/postgres"
	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/authsvc"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/identity/machinesvc"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/fakes"
	"github.com/gpuaas/gpuaas/testkit/services"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

const platformIssuer = "https://gpuaas.test"

// env wires authsvc and machinesvc over real stores, the platform token
// issuer (key sealed in Postgres) and one verifier trusting both the test
// OIDC issuer and the platform.
type env struct {
	t       testing.TB
	db      *postgres.DB
	clock   *fakes.Clock
	ids     *identitysvc.Service
	auth    *authsvc.Service
	machine *machinesvc.Service
	oidc    *tokens.Issuer
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	db := services.Postgres(t)
	clock := fakes.NewClock(time.Now().Truncate(time.Second))
	outbox, err := postgres.NewOutbox(db, postgres.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(outbox.Close)
	auditLog := postgres.NewAuditLog(db)
	idsvc, err := identitysvc.New(identitysvc.Deps{Tx: db, Users: postgres.NewUserStore(db), Tenants: postgres.NewTenantStore(db),
		Projects: postgres.NewProjectStore(db), Members: postgres.NewMembershipStore(db), Audit: auditLog, Outbox: outbox,
		Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	kms, err := keyfile.NewKMS(keyfile.KMSConfig{Path: filepath.Join(t.TempDir(), "kms.key")})
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := pki.NewTokenIssuer(pki.TokenConfig{Issuer: platformIssuer, Audience: platformIssuer}, kms, postgres.NewSecretStore(db))
	if err != nil {
		t.Fatal(err)
	}
	if err := issuer.Init(ctx); err != nil {
		t.Fatal(err)
	}
	iss := tokens.NewIssuer(t)
	verifier, err := oidc.NewVerifier(oidc.VerifierConfig{Issuer: iss.URL(), Audience: iss.Audience(), Clock: clock,
		StaticKeys: append([]crypto.PublicKey(nil), iss.PublicKeys()...),
		Trusted:    []oidc.TrustedIssuer{{Issuer: platformIssuer, Audience: platformIssuer, Keys: issuer.PublicKeys}}})
	if err != nil {
		t.Fatal(err)
	}
	accounts, keys := postgres.NewServiceAccountStore(db), postgres.NewAPIKeyStore(db)
	auth, err := authsvc.New(authsvc.Config{}, authsvc.Deps{Identity: idsvc, Verifier: verifier, IdP: nopIdP{},
		Tokens: inproc.NewTokenStore(clock), Policies: mustPolicies(t, db), Accounts: accounts, Keys: keys, Issuer: issuer,
		Audit: auditLog, Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	machine, err := machinesvc.New(machinesvc.Deps{Tx: db, Accounts: accounts, Keys: keys, Identity: idsvc, Audit: auditLog,
		Clock: clock, IDs: system.UUIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, clock: clock, ids: idsvc, auth: auth, machine: machine, oidc: iss}
}

func mustPolicies(t testing.TB, db *postgres.DB) *postgres.PolicyStore {
	t.Helper()
	p, err := postgres.NewPolicyStore(db, postgres.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// owner signs a new person in (their own tenant, owner, a default project)
// and returns them with that project's id.
func (e *env) owner(name string, roles ...string) (identity.Principal, string) {
	e.t.Helper()
	ctx := context.Background()
	sub := name + "-" + services.RandomSuffix(6)
	p, err := e.ids.SignIn(ctx, identity.Claims{Issuer: e.oidc.URL(), Subject: sub, Email: sub + "@example.com", Name: name, Roles: roles})
	if err != nil {
		e.t.Fatal(err)
	}
	ps, err := e.ids.ListProjects(ctx, p)
	if err != nil || len(ps) == 0 {
		e.t.Fatalf("projects: %v %v", ps, err)
	}
	return p, ps[0].Project.ID
}

func wantCode(t *testing.T, err error, code fault.Code) {
	t.Helper()
	if err == nil || fault.From(err).Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// nopIdP is an identity provider nobody signs in through here.
type nopIdP struct{}

func (nopIdP) AuthCodeURL(string, string, string) string { return "" }
func (nopIdP) Exchange(context.Context, string, string, string) (ports.Tokens, error) {
	return ports.Tokens{}, fault.Forbidden("no")
}
func (nopIdP) Refresh(context.Context, string) (ports.Tokens, error) {
	return ports.Tokens{}, fault.Forbidden("no")
}
func (nopIdP) Revoke(context.Context, string) error { return nil }
func (nopIdP) PasswordLogin(context.Context, string, string) (ports.Tokens, error) {
	return ports.Tokens{}, fault.Forbidden("no")
}

func TestServiceAccountTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	owner, project := e.owner("olga")
	sa, err := e.machine.CreateServiceAccount(ctx, owner, project, "ci", identity.ProjectMember)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := e.machine.CreateCredential(ctx, owner, project, sa.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c1.Secret, identity.ServiceAccountSecretPrefix) || c1.ClientID != sa.ID || len(c1.Credential.SecretHash) != 0 {
		t.Fatalf("credential %+v", c1)
	}
	tok, err := e.auth.IssueServiceToken(ctx, sa.ID, c1.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresIn != 900 || len(tok.Scopes) != 3 {
		t.Fatalf("token %+v", tok)
	}
	// The secret's last use is when it bought the token.
	creds, err := postgres.NewServiceAccountStore(e.db).Credentials(ctx, sa.ID)
	if err != nil || len(creds) != 1 || creds[0].LastUsedAt == nil || !creds[0].LastUsedAt.Equal(e.clock.Now()) {
		t.Fatalf("credentials after a token: %+v, %v", creds, err)
	}
	p, err := e.auth.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	m := p.Machine
	if m == nil || m.Kind != identity.CallerServiceAccount || m.ProjectID != project || m.ProjectRole != identity.ProjectMember ||
		p.User.ID != sa.ID || p.TenantID != owner.TenantID || p.CanManageTenant() || p.IsPlatformAdmin() ||
		!p.Allows(identity.ScopeAllocations) || p.Allows(identity.ScopeBilling) || p.Allows(identity.ScopeInteractive) {
		t.Fatalf("principal %+v machine %+v", p, m)
	}
	// The project is its one project; its role is its own.
	if _, role, err := e.ids.ProjectAccess(ctx, p, project); err != nil || role != identity.ProjectMember {
		t.Fatalf("ProjectAccess = %s %v", role, err)
	}
	other, err := e.ids.CreateProject(ctx, owner, "other")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.ids.ProjectAccess(ctx, p, other.ID); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("another project: %v", err)
	}

	// Wrong, unknown and malformed: one code, one message.
	var msgs []string
	for _, c := range []struct{ id, secret string }{
		{sa.ID, c1.Secret[:len(c1.Secret)-1] + "x"}, // checksum fails
		{sa.ID, mustSecret(t)},                      // well formed, not this account's
		{"2b1f0c1e-0000-4000-8000-000000000000", c1.Secret},
		{"", c1.Secret},
	} {
		_, err := e.auth.IssueServiceToken(ctx, c.id, c.secret)
		wantCode(t, err, authsvc.CodeInvalidClient)
		msgs = append(msgs, err.Error())
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Fatalf("refusals differ: %q vs %q", m, msgs[0])
		}
	}

	// Rotation: a second credential, no third; revoking the first refuses
	// its secret at once and its tokens after the cache lifetime.
	c2, err := e.machine.CreateCredential(ctx, owner, project, sa.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.machine.CreateCredential(ctx, owner, project, sa.ID, nil)
	wantCode(t, err, postgres.CodeCredentialLimit)
	tok2, err := e.auth.IssueServiceToken(ctx, sa.ID, c2.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.machine.RevokeCredential(ctx, owner, project, sa.ID, c1.Credential.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.auth.IssueServiceToken(ctx, sa.ID, c1.Secret)
	wantCode(t, err, authsvc.CodeInvalidClient)
	e.clock.Advance(authsvc.DefaultMachineCacheTTL)
	_, err = e.auth.Authenticate(ctx, tok.AccessToken)
	wantCode(t, err, fault.CodeTokenInvalid)
	if _, err := e.auth.Authenticate(ctx, tok2.AccessToken); err != nil {
		t.Fatalf("the other credential's token: %v", err)
	}
	// Disabling the account ends everything.
	if err := e.machine.DisableServiceAccount(ctx, owner, project, sa.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(authsvc.DefaultMachineCacheTTL)
	_, err = e.auth.Authenticate(ctx, tok2.AccessToken)
	wantCode(t, err, fault.CodeTokenInvalid)
	_, err = e.auth.IssueServiceToken(ctx, sa.ID, c2.Secret)
	wantCode(t, err, authsvc.CodeInvalidClient)
	// Expiry: a token past its exp (and the leeway) is expired.
	sb, _ := e.machine.CreateServiceAccount(ctx, owner, project, "batch", identity.ProjectViewer)
	cb, _ := e.machine.CreateCredential(ctx, owner, project, sb.ID, nil)
	tb, err := e.auth.IssueServiceToken(ctx, sb.ID, cb.Secret)
	if err != nil || len(tb.Scopes) != 1 {
		t.Fatalf("viewer token %+v %v", tb, err)
	}
	e.clock.Advance(16 * time.Minute)
	_, err = e.auth.Authenticate(ctx, tb.AccessToken)
	wantCode(t, err, fault.CodeTokenExpired)

	// Machines manage nothing.
	_, err = e.machine.CreateServiceAccount(ctx, p, project, "x", identity.ProjectAdmin)
	wantCode(t, err, machinesvc.CodeInteractiveRequired)
	_, err = e.machine.CreateAPIKey(ctx, p, machinesvc.CreateKeyRequest{Name: "k", ProjectID: project, Scopes: []string{"read"}})
	wantCode(t, err, machinesvc.CodeInteractiveRequired)

	// Audit: the grants and refusals, never a secret.
	var n, denied int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE outcome = 'success'), count(*) FILTER (WHERE outcome = 'denied')
		FROM audit_log WHERE action = 'auth.service_token' AND (actor_id = $1 OR actor_id = '')`, sa.ID).Scan(&n, &denied); err != nil {
		t.Fatal(err)
	}
	if n != 2 || denied < 4 {
		t.Fatalf("audit: %d granted, %d denied", n, denied)
	}
	var leaks int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE metadata::text LIKE '%gps\_%'`).Scan(&leaks); err != nil || leaks != 0 {
		t.Fatalf("secrets in the audit log: %d %v", leaks, err)
	}
}

func mustSecret(t *testing.T) string {
	t.Helper()
	s, err := identity.NewSecret(randReader{}, identity.ServiceAccountSecretPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type randReader struct{}

func (randReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return len(b), nil
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	admin, project := e.owner("ada", "admin") // a platform operator and tenant owner
	exp := e.clock.Now().Add(48 * time.Hour)
	k, err := e.machine.CreateAPIKey(ctx, admin, machinesvc.CreateKeyRequest{Name: "laptop", ProjectID: project,
		Scopes: []string{"allocations", "read"}, ExpiresAt: &exp, SpendCapMinor: 500})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Secret, "gpa_") || len(k.Secret) != identity.SecretLength || k.Key.Hash != nil {
		t.Fatalf("key %+v", k)
	}
	p, err := e.auth.Authenticate(ctx, k.Secret)
	if err != nil {
		t.Fatal(err)
	}
	m := p.Machine
	if m == nil || m.Kind != identity.CallerAPIKey || m.ID != k.Key.ID || m.ProjectID != project || m.SpendCapMinor != 500 ||
		p.User.ID != admin.User.ID || p.IsPlatformAdmin() || p.CanManageTenant() || p.User.IsAdmin() ||
		!p.Allows(identity.ScopeRead) || !p.Allows(identity.ScopeAllocations) || p.Allows(identity.ScopeStorage) {
		t.Fatalf("principal %+v machine %+v", p, m)
	}
	keys, err := e.machine.ListAPIKeys(ctx, admin)
	if err != nil || len(keys) != 1 || keys[0].LastUsedAt == nil || keys[0].Hash != nil {
		t.Fatalf("list: %+v %v", keys, err)
	}
	// A changed character fails the checksum; a well-formed stranger and
	// a key whose lookup id matches but whose secret does not are refused
	// alike.
	body := []byte(k.Secret)
	body[20] ^= 1
	forged := mustKey(t)
	sameLookup := k.Secret[:4+identity.LookupLength] + forged[4+identity.LookupLength:]
	for _, bad := range []string{string(body), forged, sameLookup, "gpa_short"} {
		_, err := e.auth.Authenticate(ctx, bad)
		wantCode(t, err, fault.CodeTokenInvalid)
	}
	// Scopes, name and expiry are checked.
	for _, c := range []struct {
		req   machinesvc.CreateKeyRequest
		field string
	}{
		{machinesvc.CreateKeyRequest{Name: "a", ProjectID: project, Scopes: []string{"admin"}}, "scopes"},
		{machinesvc.CreateKeyRequest{Name: "a", ProjectID: project}, "scopes"},
		{machinesvc.CreateKeyRequest{Name: "", ProjectID: project, Scopes: []string{"read"}}, "name"},
		{machinesvc.CreateKeyRequest{Name: "a", ProjectID: project, Scopes: []string{"read"}, SpendCapMinor: -1}, "spend_cap_minor"},
		{machinesvc.CreateKeyRequest{Name: "a", ProjectID: "2b1f0c1e-0000-4000-8000-000000000000", Scopes: []string{"read"}}, "project_id"},
	} {
		_, err := e.machine.CreateAPIKey(ctx, admin, c.req)
		if err == nil || fault.From(err).Field != c.field {
			t.Errorf("%+v: %v, want invalid %s", c.req, err, c.field)
		}
	}
	// Expiry and revocation.
	e.clock.Advance(49 * time.Hour)
	_, err = e.auth.Authenticate(ctx, k.Secret)
	wantCode(t, err, fault.CodeTokenInvalid)
	k2, err := e.machine.CreateAPIKey(ctx, admin, machinesvc.CreateKeyRequest{Name: "ci", ProjectID: project, Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth.Authenticate(ctx, k2.Secret); err != nil {
		t.Fatal(err)
	}
	if err := e.machine.RevokeAPIKey(ctx, admin, k2.Key.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(authsvc.DefaultMachineCacheTTL)
	_, err = e.auth.Authenticate(ctx, k2.Secret)
	wantCode(t, err, fault.CodeTokenInvalid)
	if err := e.machine.RevokeAPIKey(ctx, admin, k2.Key.ID); !fault.IsKind(err, fault.KindNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	var leaks int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE metadata::text LIKE '%'||$1||'%'`,
		k.Secret[4:20]).Scan(&leaks); err != nil || leaks != 0 {
		t.Fatalf("key in the audit log: %d %v", leaks, err)
	}
}

func mustKey(t *testing.T) string {
	t.Helper()
	s, err := identity.NewSecret(randReader{}, identity.APIKeyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
