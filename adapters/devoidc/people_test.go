package devoidc_test

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/gpuaas/gpuaas/adapters/devoidc"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

// expected is a Directory of fixed emails.
type expected map[string]bool

func (e expected) Expected(_ context.Context, email string) (bool, error) { return e[email], nil }

// TestPeopleSetTheirPasswordAtFirstSignIn: someone the platform expects
// signs in with their email and the password they choose the first time;
// afterwards only that password works, also after a restart; anyone else
// cannot sign in.
func TestPeopleSetTheirPasswordAtFirstSignIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "people.json")
	dir := expected{"carol@example.com": true}
	grant := func(d *tokens.DevOIDC, user, password string) error {
		_, err := d.PostToken(ctx, url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}})
		return err
	}
	dev := tokens.NewDevOIDC(t, func(c *devoidc.Config) { c.Directory, c.PeopleFile = dir, file })
	v := verifierFor(t, dev)
	wantOAuthError(t, grant(dev, "mallory@example.com", "long-enough-1"), "invalid_grant")
	wantOAuthError(t, grant(dev, "carol@example.com", "short"), "invalid_grant")
	tok, err := dev.PostToken(ctx, url.Values{"grant_type": {"password"}, "username": {"Carol@Example.com"}, "password": {"carols-secret-1"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(ctx, tok.AccessToken)
	if err != nil || c.Email != "carol@example.com" || c.Subject != devoidc.SubjectFor("person:carol@example.com") {
		t.Fatalf("claims %+v, %v", c, err)
	}
	wantOAuthError(t, grant(dev, "carol@example.com", "another-password"), "invalid_grant")
	if err := grant(dev, "carol@example.com", "carols-secret-1"); err != nil {
		t.Fatalf("second sign-in: %v", err)
	}
	again := tokens.NewDevOIDC(t, func(c *devoidc.Config) { c.Directory, c.PeopleFile = expected{}, file })
	if err := grant(again, "carol@example.com", "carols-secret-1"); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	wantOAuthError(t, grant(again, "carol@example.com", "guess-guess"), "invalid_grant")
}
