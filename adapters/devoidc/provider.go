package devoidc

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
)

// cryptoRand is the randomness source; a variable only so key generation and
// token minting read from one place.
var cryptoRand = rand.Reader

// Lifetimes of the short-lived protocol artefacts. Not configurable: nothing
// gains from longer ones.
const (
	authRequestTTL = 10 * time.Minute // user reads the login page
	codeTTL        = time.Minute      // browser hops back to the client
	sweepEvery     = time.Minute
	maxFormBytes   = 16 << 10
)

// Provider is the dev OIDC provider. It is an http.Handler: mount it under the
// issuer's path on another server (mux.Handle(p.PathPrefix()+"/", p), with or
// without http.StripPrefix), or run it on its own listener with [Serve].
type Provider struct {
	cfg     Config
	prefix  string // issuer URL path, e.g. "/dev-oidc"; "" at the root
	alg     jose.SignatureAlgorithm
	kid     string
	signer  jose.Signer
	pub     crypto.PublicKey
	users   map[string]DemoUser // by username
	people  map[string]person   // by email: people the Directory expected
	bySub   map[string]string   // subject → username
	loginUI *loginPage

	mu        sync.Mutex
	requests  map[string]*authRequest // by request id
	codes     map[string]*authCode    // by code
	refreshes map[string]*refreshRec  // by sha256 of the refresh token
	families  map[string]*family      // by session id (sid)
	lastSweep time.Time
}

// authRequest is a validated /authorize request waiting for the user to sign in.
type authRequest struct {
	redirectURI string
	state       string
	nonce       string
	scope       string
	challenge   string
	expires     time.Time
}

// authCode is an issued authorization code.
type authCode struct {
	username    string
	redirectURI string
	nonce       string
	scope       string
	challenge   string
	authTime    time.Time
	expires     time.Time
	family      string // set once redeemed; a second redemption revokes it
}

// family is one sign-in session: the chain of rotated refresh tokens that
// descend from one code or password grant. Its id is the sid claim.
type family struct {
	username string
	scope    string
	nonce    string
	authTime time.Time
	expires  time.Time // latest expiry of its refresh tokens
	revoked  bool
}

type refreshRec struct {
	family  string
	expires time.Time
	used    bool // rotated; presenting it again means it leaked
}

// New builds a Provider from cfg.
func New(cfg Config) (*Provider, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	alg, err := algorithmFor(cfg.SigningKey)
	if err != nil {
		return nil, err
	}
	pubJWK := jose.JSONWebKey{Key: cfg.SigningKey.Public(), Algorithm: alg, Use: "sig"}
	thumb, err := pubJWK.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("devoidc: key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(thumb)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: cfg.SigningKey, KeyID: kid, Algorithm: alg}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("devoidc: signer: %w", err)
	}
	iu, _ := url.Parse(cfg.Issuer) // validated by CheckAndSetDefaults
	p := &Provider{
		cfg:       cfg,
		prefix:    strings.TrimSuffix(iu.Path, "/"),
		alg:       jose.SignatureAlgorithm(alg),
		kid:       kid,
		signer:    signer,
		pub:       cfg.SigningKey.Public(),
		users:     map[string]DemoUser{},
		people:    map[string]person{},
		bySub:     map[string]string{},
		requests:  map[string]*authRequest{},
		codes:     map[string]*authCode{},
		refreshes: map[string]*refreshRec{},
		families:  map[string]*family{},
	}
	for _, u := range cfg.Users {
		if u.Subject == "" {
			u.Subject = SubjectFor(u.Username)
		}
		if u.Name == "" {
			u.Name = u.Username
		}
		p.users[u.Username] = u
		p.bySub[u.Subject] = u.Username
	}
	if err := p.loadPeople(); err != nil {
		return nil, err
	}
	if cfg.StateFile != "" {
		if err := p.loadState(); err != nil {
			return nil, err
		}
	}
	p.loginUI = newLoginPage(p)
	return p, nil
}

// SubjectFor is the sub claim of a demo user without an explicit Subject: a
// name-based UUID, stable across restarts and machines.
func SubjectFor(username string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:gpuaas:devoidc:user:"+username)).String()
}

// Issuer is the issuer URL (the iss claim).
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// ClientID is the client the provider knows.
func (p *Provider) ClientID() string { return p.cfg.ClientID }

// PathPrefix is the issuer URL's path ("" at the root), where the provider
// expects to be mounted.
func (p *Provider) PathPrefix() string { return p.prefix }

// PublicKey is the token signing key, for verifiers that want static keys
// instead of fetching the JWKS over HTTP.
func (p *Provider) PublicKey() crypto.PublicKey { return p.pub }

// Users lists the demo users (passwords included; development only).
func (p *Provider) Users() []DemoUser {
	out := make([]DemoUser, 0, len(p.cfg.Users))
	for _, u := range p.cfg.Users {
		out = append(out, p.users[u.Username])
	}
	return out
}

// Endpoint URLs, absolute.
func (p *Provider) AuthorizationURL() string { return p.cfg.Issuer + "/authorize" }
func (p *Provider) TokenURL() string         { return p.cfg.Issuer + "/token" }
func (p *Provider) JWKSURL() string          { return p.cfg.Issuer + "/jwks" }
func (p *Provider) RevocationURL() string    { return p.cfg.Issuer + "/revoke" }
func (p *Provider) EndSessionURL() string    { return p.cfg.Issuer + "/end_session" }
func (p *Provider) loginPath() string        { return p.prefix + "/login" }

// ServeHTTP routes a request. The issuer's path prefix is stripped if present,
// so the provider works both behind http.StripPrefix and mounted as is.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if p.prefix != "" && strings.HasPrefix(path, p.prefix+"/") {
		path = strings.TrimPrefix(path, p.prefix)
	}
	type route struct {
		methods []string
		h       http.HandlerFunc
	}
	routes := map[string]route{
		"/.well-known/openid-configuration": {[]string{http.MethodGet}, p.discovery},
		"/jwks":                             {[]string{http.MethodGet}, p.jwks},
		"/authorize":                        {[]string{http.MethodGet}, p.authorize},
		"/login":                            {[]string{http.MethodPost}, p.login},
		"/token":                            {[]string{http.MethodPost}, p.token},
		"/revoke":                           {[]string{http.MethodPost}, p.revoke},
		"/end_session":                      {[]string{http.MethodGet, http.MethodPost}, p.endSession},
	}
	rt, ok := routes[path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	allowed := false
	for _, m := range rt.methods {
		allowed = allowed || r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead)
	}
	if !allowed {
		w.Header().Set("Allow", strings.Join(rt.methods, ", "))
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rt.h(w, r)
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	grants := []string{"authorization_code", "refresh_token"}
	if !p.cfg.DisablePasswordGrant {
		grants = append(grants, "password")
	}
	authMethods := []string{"none"}
	if p.cfg.ClientSecret != "" {
		authMethods = []string{"client_secret_basic", "client_secret_post"}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                         p.cfg.Issuer,
		"authorization_endpoint":                         p.AuthorizationURL(),
		"token_endpoint":                                 p.TokenURL(),
		"jwks_uri":                                       p.JWKSURL(),
		"revocation_endpoint":                            p.RevocationURL(),
		"end_session_endpoint":                           p.EndSessionURL(),
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          grants,
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{string(p.alg)},
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          authMethods,
		"revocation_endpoint_auth_methods_supported":     authMethods,
		"scopes_supported":                               []string{"openid", "profile", "email", "offline_access"},
		"claims_supported":                               []string{"iss", "sub", "aud", "azp", "exp", "nbf", "iat", "auth_time", "nonce", "sid", "email", "email_verified", "name", "preferred_username", "realm_access", "tenant_id"},
		"authorization_response_iss_parameter_supported": true,
	})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: p.pub, KeyID: p.kid, Algorithm: string(p.alg), Use: "sig"}}}
	writeJSON(w, http.StatusOK, set)
}

// sweepLocked drops expired state. Called with p.mu held on every write; it
// walks the maps at most once a minute so memory stays bounded in a long
// `gpuaas dev` session.
func (p *Provider) sweepLocked(now time.Time) {
	if now.Sub(p.lastSweep) < sweepEvery {
		return
	}
	p.lastSweep = now
	for k, v := range p.requests {
		if now.After(v.expires) {
			delete(p.requests, k)
		}
	}
	for k, v := range p.codes {
		if now.After(v.expires) {
			delete(p.codes, k)
		}
	}
	for k, v := range p.refreshes {
		if now.After(v.expires) {
			delete(p.refreshes, k)
		}
	}
	for k, v := range p.families {
		if now.After(v.expires) {
			delete(p.families, k)
		}
	}
}

func (p *Provider) now() time.Time { return p.cfg.Clock.Now() }

// randomToken returns 256 random bits, base64url encoded.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := cryptoRand.Read(b); err != nil {
		panic("devoidc: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func equalConstantTime(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
