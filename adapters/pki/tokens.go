package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/ports"
)

// DefaultTokenSecretName is where the sealed signing key of the platform's
// own access tokens (service accounts) is stored.
const DefaultTokenSecretName = "pki/service-token-signing"

// TokenAlgorithm is the one algorithm the platform signs its tokens with
// (ECDSA P-256 with SHA-256); the verifier's allowlist for the platform
// issuer holds only it.
const TokenAlgorithm = string(jose.ES256)

// TokenConfig configures the platform token issuer.
type TokenConfig struct {
	// Issuer is the iss claim: the platform's public base URL.
	Issuer string
	// Audience is the aud claim verifiers require.
	Audience string
	// SecretName is where the sealed signing key is stored.
	SecretName string
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *TokenConfig) CheckAndSetDefaults() error {
	if c.SecretName == "" {
		c.SecretName = DefaultTokenSecretName
	}
	if c.Issuer == "" || c.Audience == "" {
		return errors.New("pki: the token issuer needs Issuer and Audience")
	}
	return nil
}

// TokenIssuer implements [ports.TokenIssuer]: ES256 access tokens signed
// with a key kept sealed (core/envelope) in the SecretStore, made on the
// very first start and shared by every replica through it.
type TokenIssuer struct {
	cfg   TokenConfig
	vault vault

	mu     sync.Mutex
	signer jose.Signer
	key    *ecdsa.PrivateKey
	kid    string
}

var _ ports.TokenIssuer = (*TokenIssuer)(nil)

// NewTokenIssuer returns an issuer. It does no I/O: the key is loaded (or
// made) by Init or the first call.
func NewTokenIssuer(cfg TokenConfig, kms ports.KMS, secrets ports.SecretStore) (*TokenIssuer, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if kms == nil || secrets == nil {
		return nil, errors.New("pki: KMS and Secrets are required")
	}
	return &TokenIssuer{cfg: cfg, vault: vault{kms: kms, secrets: secrets}}, nil
}

// Init loads the signing key, generating it on the first start.
func (t *TokenIssuer) Init(ctx context.Context) error {
	_, err := t.load(ctx)
	return err
}

func (t *TokenIssuer) load(ctx context.Context) (jose.Signer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.signer != nil {
		return t.signer, nil
	}
	k, err := t.vault.loadKey(ctx, t.cfg.SecretName, "token signing key", func() (any, error) {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
	if err != nil {
		return nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("pki: stored token signing key is a %T, not P-256", k)
	}
	kid, err := thumbprint(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return nil, err
	}
	t.signer, t.key, t.kid = s, key, kid
	return s, nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of a public key, base64url:
// the key id.
func thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// Issuer implements [ports.TokenIssuer].
func (t *TokenIssuer) Issuer() string { return t.cfg.Issuer }

// serviceClaims is the JSON body of a service-account token.
type serviceClaims struct {
	jwt.Claims
	ActorType    string `json:"actor_type"`
	TenantID     string `json:"tenant_id"`
	ProjectID    string `json:"project_id"`
	Scope        string `json:"scope"`
	CredentialID string `json:"cred"`
}

// IssueServiceToken implements [ports.TokenIssuer].
func (t *TokenIssuer) IssueServiceToken(ctx context.Context, c ports.ServiceTokenClaims) (string, error) {
	s, err := t.load(ctx)
	if err != nil {
		return "", err
	}
	if c.ServiceAccountID == "" || c.ID == "" || !c.ExpiresAt.After(c.IssuedAt) {
		return "", fault.Internal(errors.New("pki: a service token needs a subject, an id and a lifetime"))
	}
	body := serviceClaims{
		Claims: jwt.Claims{Issuer: t.cfg.Issuer, Subject: c.ServiceAccountID, Audience: jwt.Audience{t.cfg.Audience},
			ID: c.ID, IssuedAt: jwt.NewNumericDate(c.IssuedAt), NotBefore: jwt.NewNumericDate(c.IssuedAt),
			Expiry: jwt.NewNumericDate(c.ExpiresAt)},
		ActorType: "service_account", TenantID: c.TenantID, ProjectID: c.ProjectID,
		Scope: strings.Join(c.Scopes, " "), CredentialID: c.CredentialID,
	}
	tok, err := jwt.Signed(s).Claims(body).Serialize()
	if err != nil {
		return "", fault.Internal(err)
	}
	return tok, nil
}

// PublicKeys returns the verifying keys (the verifier's key set for the
// platform issuer).
func (t *TokenIssuer) PublicKeys(ctx context.Context) ([]crypto.PublicKey, error) {
	if _, err := t.load(ctx); err != nil {
		return nil, err
	}
	return []crypto.PublicKey{&t.key.PublicKey}, nil
}

// JWKS implements [ports.TokenIssuer]: the public keys as a JSON Web Key
// Set, each with its kid, "use": "sig" and "alg": "ES256".
func (t *TokenIssuer) JWKS(ctx context.Context) ([]byte, error) {
	if _, err := t.load(ctx); err != nil {
		return nil, err
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &t.key.PublicKey, KeyID: t.kid, Algorithm: TokenAlgorithm, Use: "sig"}}}
	return json.Marshal(set)
}

// KeyID is the current signing key's id (its RFC 7638 thumbprint).
func (t *TokenIssuer) KeyID(ctx context.Context) (string, error) {
	if _, err := t.load(ctx); err != nil {
		return "", err
	}
	return t.kid, nil
}
