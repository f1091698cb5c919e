package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DefaultAudience is the audience (and azp) of minted tokens unless
// WithAudience is given to NewIssuer.
const DefaultAudience = "gpuaas"

// KeyType selects the issuer's signing algorithm.
type KeyType int

const (
	KeyES256 KeyType = iota // default: fast to generate
	KeyRS256
	KeyEdDSA
)

// Issuer is a test OIDC issuer: discovery and JWKS over HTTP on 127.0.0.1,
// minting in process.
type Issuer struct {
	srv      *httptest.Server
	audience string
	keyType  KeyType
	now      func() time.Time

	mu   sync.Mutex
	keys []*testKey // the last one signs; the JWKS lists all

	jwksFetches atomic.Int64
}

type testKey struct {
	priv crypto.Signer
	kid  string
	alg  jose.SignatureAlgorithm
}

// IssuerOption configures NewIssuer.
type IssuerOption func(*Issuer)

// WithAudience sets the default aud and azp of minted tokens.
func WithAudience(aud string) IssuerOption { return func(i *Issuer) { i.audience = aud } }

// WithKeyType selects the signing algorithm.
func WithKeyType(k KeyType) IssuerOption { return func(i *Issuer) { i.keyType = k } }

// WithClock makes minted timestamps relative to now() instead of time.Now;
// pass the same clock to the verifier under test.
func WithClock(now func() time.Time) IssuerOption { return func(i *Issuer) { i.now = now } }

// NewIssuer starts an issuer; it stops when the test ends.
func NewIssuer(t testing.TB, opts ...IssuerOption) *Issuer {
	t.Helper()
	i := &Issuer{audience: DefaultAudience, now: time.Now}
	for _, o := range opts {
		o(i)
	}
	i.keys = []*testKey{newTestKey(t, i.keyType)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                i.URL(),
			"authorization_endpoint":                i.URL() + "/authorize",
			"token_endpoint":                        i.URL() + "/token",
			"jwks_uri":                              i.JWKSURL(),
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{string(i.currentKey().alg)},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		i.jwksFetches.Add(1)
		i.mu.Lock()
		set := jose.JSONWebKeySet{}
		for _, k := range i.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
		}
		i.mu.Unlock()
		writeJSON(w, set)
	})
	i.srv = httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(i.srv.Close)
	return i
}

// URL is the issuer URL (the iss claim).
func (i *Issuer) URL() string { return i.srv.URL }

// JWKSURL is where the public keys are served.
func (i *Issuer) JWKSURL() string { return i.srv.URL + "/jwks" }

// Audience is the default aud/azp of minted tokens.
func (i *Issuer) Audience() string { return i.audience }

// JWKSFetches counts JWKS requests, to test key caching.
func (i *Issuer) JWKSFetches() int { return int(i.jwksFetches.Load()) }

// PublicKeys are the published verification keys.
func (i *Issuer) PublicKeys() []crypto.PublicKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]crypto.PublicKey, 0, len(i.keys))
	for _, k := range i.keys {
		out = append(out, k.priv.Public())
	}
	return out
}

// RotateKey adds a new signing key with a new kid; tokens minted afterwards
// use it and the JWKS publishes both, as issuers do when they roll keys.
func (i *Issuer) RotateKey(t testing.TB) {
	t.Helper()
	k := newTestKey(t, i.keyType)
	i.mu.Lock()
	i.keys = append(i.keys, k)
	i.mu.Unlock()
}

func (i *Issuer) currentKey() *testKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[len(i.keys)-1]
}

// Claim changes the claims of a token being minted.
type Claim func(c map[string]any)

// Subject sets sub.
func Subject(sub string) Claim { return Set("sub", sub) }

// Email sets email.
func Email(email string) Claim { return Set("email", email) }

// Name sets name.
func Name(name string) Claim { return Set("name", name) }

// Roles sets realm_access.roles (Keycloak's shape).
func Roles(roles ...string) Claim {
	return Set("realm_access", map[string]any{"roles": append([]string{}, roles...)})
}

// TopLevelRoles sets a top-level roles array (other issuers' shape).
func TopLevelRoles(roles ...string) Claim { return Set("roles", append([]string{}, roles...)) }

// Tenant sets tenant_id.
func Tenant(id string) Claim { return Set("tenant_id", id) }

// Audience sets aud: one value as a string, several as an array.
func Audience(aud ...string) Claim {
	if len(aud) == 1 {
		return Set("aud", aud[0])
	}
	return Set("aud", append([]string{}, aud...))
}

// AZP sets azp.
func AZP(azp string) Claim { return Set("azp", azp) }

// IssuerClaim sets iss.
func IssuerClaim(iss string) Claim { return Set("iss", iss) }

// Expiry sets exp.
func Expiry(t time.Time) Claim { return Set("exp", t.Unix()) }

// NotBefore sets nbf.
func NotBefore(t time.Time) Claim { return Set("nbf", t.Unix()) }

// Set sets any claim.
func Set(name string, v any) Claim { return func(c map[string]any) { c[name] = v } }

// Delete removes a claim.
func Delete(name string) Claim { return func(c map[string]any) { delete(c, name) } }

// DefaultSubject is the sub of minted tokens without a Subject claim option.
const DefaultSubject = "test-user"

// Claims returns the claims Mint would sign: a valid Keycloak-like access
// token for DefaultSubject, valid for five minutes, then opts applied.
func (i *Issuer) Claims(opts ...Claim) map[string]any {
	now := i.now()
	c := map[string]any{
		"iss":                i.URL(),
		"sub":                DefaultSubject,
		"aud":                i.audience,
		"azp":                i.audience,
		"iat":                now.Unix(),
		"nbf":                now.Unix(),
		"exp":                now.Add(5 * time.Minute).Unix(),
		"typ":                "Bearer",
		"email":              "test-user@example.com",
		"name":               "Test User",
		"preferred_username": "test-user",
		"realm_access":       map[string]any{"roles": []string{"user"}},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Mint returns a valid signed access token with opts applied.
func (i *Issuer) Mint(t testing.TB, opts ...Claim) string {
	t.Helper()
	return i.Sign(t, i.Claims(opts...))
}

// Sign signs exactly these claims with the current key.
func (i *Issuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	return signWith(t, i.currentKey(), claims)
}

// Forgery names a way a token is wrong.
type Forgery string

// The forgeries. Each yields a token that a correct verifier must refuse;
// ForgeExpired with token_expired, the others with token_invalid.
const (
	ForgeExpired        Forgery = "expired"          // exp an hour ago
	ForgeNotYetValid    Forgery = "nbf_future"       // nbf an hour ahead
	ForgeWrongAudience  Forgery = "wrong_audience"   // aud and azp of another client
	ForgeWrongIssuer    Forgery = "wrong_issuer"     // iss of another issuer
	ForgeWrongKey       Forgery = "wrong_key"        // signed by a stranger's key with our kid
	ForgeUnknownKID     Forgery = "unknown_kid"      // signed by a stranger's key with a kid nobody publishes
	ForgeTampered       Forgery = "tampered"         // payload changed after signing
	ForgeAlgNone        Forgery = "alg_none"         // "alg":"none", empty signature
	ForgeHS256PublicKey Forgery = "hs256_public_key" // HMAC-SHA256 keyed with our public key (alg confusion)
	ForgeNoExpiry       Forgery = "no_exp"           // exp missing
	ForgeIDToken        Forgery = "id_token"         // typ "ID": an ID token replayed as an access token
)

// Forgeries lists every Forgery, for table tests.
var Forgeries = []Forgery{
	ForgeExpired, ForgeNotYetValid, ForgeWrongAudience, ForgeWrongIssuer, ForgeWrongKey,
	ForgeUnknownKID, ForgeTampered, ForgeAlgNone, ForgeHS256PublicKey, ForgeNoExpiry, ForgeIDToken,
}

// Forge returns a token that is wrong in the way f says and otherwise like
// Mint(opts...).
func (i *Issuer) Forge(t testing.TB, f Forgery, opts ...Claim) string {
	t.Helper()
	now := i.now()
	c := i.Claims(opts...)
	key := i.currentKey()
	switch f {
	case ForgeExpired:
		c["iat"], c["nbf"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
	case ForgeNotYetValid:
		c["nbf"] = now.Add(time.Hour).Unix()
		c["exp"] = now.Add(2 * time.Hour).Unix()
	case ForgeWrongAudience:
		c["aud"], c["azp"] = "some-other-client", "some-other-client"
	case ForgeWrongIssuer:
		c["iss"] = "https://evil.example.com"
	case ForgeNoExpiry:
		delete(c, "exp")
	case ForgeIDToken:
		c["typ"] = "ID"
	case ForgeWrongKey:
		stranger := newTestKey(t, i.keyType)
		stranger.kid = key.kid
		return signWith(t, stranger, c)
	case ForgeUnknownKID:
		return signWith(t, newTestKey(t, i.keyType), c)
	case ForgeTampered:
		tok := signWith(t, key, c)
		parts := strings.Split(tok, ".")
		c["sub"] = "someone-else"
		parts[1] = b64JSON(t, c)
		return strings.Join(parts, ".")
	case ForgeAlgNone:
		return b64JSON(t, map[string]any{"alg": "none", "typ": "JWT", "kid": key.kid}) + "." + b64JSON(t, c) + "."
	case ForgeHS256PublicKey:
		der, err := x509.MarshalPKIXPublicKey(key.priv.Public())
		if err != nil {
			t.Fatalf("tokens: marshal public key: %v", err)
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		signing := b64JSON(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": key.kid}) + "." + b64JSON(t, c)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	default:
		t.Fatalf("tokens: unknown forgery %q", f)
	}
	return signWith(t, key, c)
}

func newTestKey(t testing.TB, kt KeyType) *testKey {
	t.Helper()
	var (
		priv crypto.Signer
		alg  jose.SignatureAlgorithm
		err  error
	)
	switch kt {
	case KeyRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
		alg = jose.RS256
	case KeyEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
		alg = jose.EdDSA
	default:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		alg = jose.ES256
	}
	if err != nil {
		t.Fatalf("tokens: generate key: %v", err)
	}
	kidBytes := make([]byte, 9)
	_, _ = rand.Read(kidBytes)
	return &testKey{priv: priv, alg: alg, kid: base64.RawURLEncoding.EncodeToString(kidBytes)}
}

func signWith(t testing.TB, k *testKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: string(k.alg)}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		t.Fatalf("tokens: signer: %v", err)
	}
	payload, err := json.Marshal(maps.Clone(claims))
	if err != nil {
		t.Fatalf("tokens: marshal claims: %v", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("tokens: sign: %v", err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatalf("tokens: serialize: %v", err)
	}
	return s
}

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("tokens: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v) // a write error means the client went away
}
