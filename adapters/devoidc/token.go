package devoidc

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// tokenResponse is the RFC 6749 §5.1 success body.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// oauthError is an RFC 6749 §5.2 error.
type oauthError struct {
	status int
	Code   string `json:"error"`
	Desc   string `json:"error_description,omitempty"`
}

func errGrant(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: "invalid_grant", Desc: desc}
}

func errRequest(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: "invalid_request", Desc: desc}
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="devoidc"`)
	}
	writeJSON(w, e.status, e)
}

// token is the token endpoint.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := p.parseClientForm(w, r); err != nil {
		writeOAuthError(w, err)
		return
	}
	var (
		resp *tokenResponse
		err  *oauthError
	)
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
		resp, err = p.grantCode(r)
	case "refresh_token":
		resp, err = p.grantRefresh(r)
	case "password":
		if p.cfg.DisablePasswordGrant {
			err = &oauthError{status: http.StatusBadRequest, Code: "unsupported_grant_type", Desc: "the password grant is disabled"}
		} else {
			resp, err = p.grantPassword(r)
		}
	case "":
		err = errRequest("grant_type is required")
	default:
		err = &oauthError{status: http.StatusBadRequest, Code: "unsupported_grant_type", Desc: fmt.Sprintf("grant_type %q is not supported", gt)}
	}
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// parseClientForm reads the form and authenticates the client: client_id must
// be ours, and the secret must match when the client is confidential.
func (p *Provider) parseClientForm(w http.ResponseWriter, r *http.Request) *oauthError {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return errRequest("the body must be application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		return errRequest("the form could not be parsed")
	}
	clientID, secret, basic := r.BasicAuth()
	if !basic {
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	unauthorized := &oauthError{status: http.StatusUnauthorized, Code: "invalid_client", Desc: "client authentication failed"}
	if clientID != p.cfg.ClientID {
		return unauthorized
	}
	if p.cfg.ClientSecret != "" && !equalConstantTime(secret, p.cfg.ClientSecret) {
		return unauthorized
	}
	return nil
}

func (p *Provider) grantCode(r *http.Request) (*tokenResponse, *oauthError) {
	code, verifier := r.PostForm.Get("code"), r.PostForm.Get("code_verifier")
	if code == "" {
		return nil, errRequest("code is required")
	}
	if !verifierRE.MatchString(verifier) {
		return nil, errRequest("a valid code_verifier is required (PKCE)")
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked(now)
	c, ok := p.codes[code]
	switch {
	case !ok || now.After(c.expires):
		return nil, errGrant("the authorization code is invalid or has expired")
	case c.family != "":
		// RFC 6749 §4.1.2: a code used twice may have been stolen; revoke
		// what the first redemption issued.
		p.revokeFamilyLocked(c.family)
		return nil, errGrant("the authorization code was already used")
	case r.PostForm.Get("redirect_uri") != c.redirectURI:
		return nil, errGrant("redirect_uri does not match the authorization request")
	case !equalConstantTime(s256(verifier), c.challenge):
		return nil, errGrant("the code_verifier does not match the code_challenge")
	}
	sid := randomToken()
	c.family = sid
	p.families[sid] = &family{username: c.username, scope: c.scope, nonce: c.nonce, authTime: c.authTime}
	return p.issueLocked(sid, now)
}

func (p *Provider) grantRefresh(r *http.Request) (*tokenResponse, *oauthError) {
	rt := r.PostForm.Get("refresh_token")
	if rt == "" {
		return nil, errRequest("refresh_token is required")
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked(now)
	rec, ok := p.refreshes[hashToken(rt)]
	if !ok || now.After(rec.expires) {
		return nil, errGrant("the refresh token is invalid or has expired")
	}
	fam := p.families[rec.family]
	if fam == nil || fam.revoked {
		return nil, errGrant("the session was ended")
	}
	if rec.used {
		// Rotation turns reuse into a theft signal (OAuth 2.0 Security BCP
		// §4.14.2): end the whole session so neither party keeps it.
		p.revokeFamilyLocked(rec.family)
		return nil, errGrant("the refresh token was already used; the session is revoked")
	}
	if s := r.PostForm.Get("scope"); s != "" && !scopeSubset(s, fam.scope) {
		return nil, &oauthError{status: http.StatusBadRequest, Code: "invalid_scope", Desc: "the scope exceeds the original grant"}
	}
	rec.used = true
	resp, err := p.issueLocked(rec.family, now)
	if err != nil {
		rec.used = false // nothing was issued: the token may be presented again
	}
	return resp, err
}

func (p *Provider) grantPassword(r *http.Request) (*tokenResponse, *oauthError) {
	user, ok := p.checkPassword(r.Context(), r.PostForm.Get("username"), r.PostForm.Get("password"))
	if !ok {
		return nil, errGrant("invalid user credentials")
	}
	scope := r.PostForm.Get("scope")
	if scope == "" {
		scope = "openid"
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked(now)
	sid := randomToken()
	p.families[sid] = &family{username: user.Username, scope: scope, authTime: now}
	return p.issueLocked(sid, now)
}

// issueLocked mints an access token, a new refresh token in the family and,
// for the openid scope, an ID token. p.mu is held.
func (p *Provider) issueLocked(sid string, now time.Time) (*tokenResponse, *oauthError) {
	fam := p.families[sid]
	u, _ := p.lookupLocked(fam.username)
	exp := now.Add(p.cfg.AccessTTL)
	access := map[string]any{
		"iss":                p.cfg.Issuer,
		"sub":                u.Subject,
		"aud":                p.cfg.ClientID,
		"azp":                p.cfg.ClientID,
		"exp":                exp.Unix(),
		"nbf":                now.Unix(),
		"iat":                now.Unix(),
		"jti":                randomToken(),
		"typ":                "Bearer",
		"scope":              fam.scope,
		"sid":                sid,
		"email":              u.Email,
		"email_verified":     u.Email != "",
		"name":               u.Name,
		"preferred_username": u.Username,
		"realm_access":       map[string]any{"roles": nonNil(u.Roles)},
	}
	if u.TenantID != "" {
		access["tenant_id"] = u.TenantID
	}
	at, err := p.sign(access)
	if err != nil {
		return nil, &oauthError{status: http.StatusInternalServerError, Code: "server_error"}
	}
	resp := &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int(p.cfg.AccessTTL / time.Second), Scope: fam.scope}

	if slices.Contains(strings.Fields(fam.scope), "openid") {
		id := map[string]any{
			"iss":                p.cfg.Issuer,
			"sub":                u.Subject,
			"aud":                p.cfg.ClientID,
			"azp":                p.cfg.ClientID,
			"exp":                exp.Unix(),
			"iat":                now.Unix(),
			"auth_time":          fam.authTime.Unix(),
			"typ":                "ID",
			"sid":                sid,
			"email":              u.Email,
			"email_verified":     u.Email != "",
			"name":               u.Name,
			"preferred_username": u.Username,
		}
		if fam.nonce != "" {
			id["nonce"] = fam.nonce
		}
		if resp.IDToken, err = p.sign(id); err != nil {
			return nil, &oauthError{status: http.StatusInternalServerError, Code: "server_error"}
		}
	}

	rt := randomToken()
	rexp := now.Add(p.cfg.RefreshTTL)
	p.refreshes[hashToken(rt)] = &refreshRec{family: sid, expires: rexp}
	if rexp.After(fam.expires) {
		fam.expires = rexp
	}
	// A refresh token that is not in the StateFile would not survive a
	// restart; better no token than one that dies with the process.
	if err := p.saveLocked(); err != nil {
		delete(p.refreshes, hashToken(rt))
		return nil, &oauthError{status: http.StatusInternalServerError, Code: "server_error", Desc: "the session could not be saved"}
	}
	resp.RefreshToken = rt
	return resp, nil
}

func (p *Provider) sign(claims map[string]any) (string, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := p.signer.Sign(b)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// revokeFamilyLocked ends a session: all its refresh tokens stop working.
// Access tokens already issued stay valid until they expire (they are
// stateless JWTs), which is why AccessTTL is short.
func (p *Provider) revokeFamilyLocked(sid string) {
	if f := p.families[sid]; f != nil {
		f.revoked = true
		// Best effort: the session is revoked in memory whatever happens, and
		// the next successful save records it.
		_ = p.saveLocked()
	}
}

// revoke is the RFC 7009 revocation endpoint. Only refresh tokens are
// revocable; anything else, including unknown tokens, is answered 200 as the
// RFC requires so the endpoint reveals nothing.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	if err := p.parseClientForm(w, r); err != nil {
		writeOAuthError(w, err)
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		writeOAuthError(w, errRequest("token is required"))
		return
	}
	p.mu.Lock()
	if rec, ok := p.refreshes[hashToken(tok)]; ok {
		p.revokeFamilyLocked(rec.family)
	}
	p.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// endSession is RP-initiated logout. With a valid id_token_hint the session
// it names (sid) is revoked; the browser then goes to a registered
// post_logout_redirect_uri or sees a signed-out page.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		p.loginUI.renderError(w, http.StatusBadRequest, "The sign-out request could not be read.")
		return
	}
	if hint := r.Form.Get("id_token_hint"); hint != "" {
		sid, err := p.sessionFromIDToken(hint)
		if err != nil {
			p.loginUI.renderError(w, http.StatusBadRequest, "The id_token_hint is not valid.")
			return
		}
		p.mu.Lock()
		p.revokeFamilyLocked(sid)
		p.mu.Unlock()
	}
	if cid := r.Form.Get("client_id"); cid != "" && cid != p.cfg.ClientID {
		p.loginUI.renderError(w, http.StatusBadRequest, "Unknown client_id.")
		return
	}
	if target := r.Form.Get("post_logout_redirect_uri"); target != "" {
		if !slices.Contains(p.cfg.PostLogoutRedirectURIs, target) {
			p.loginUI.renderError(w, http.StatusBadRequest, "The post_logout_redirect_uri is not registered for this client.")
			return
		}
		http.Redirect(w, r, p.callbackURL(target, map[string][]string{"state": {r.Form.Get("state")}}), http.StatusFound)
		return
	}
	p.loginUI.write(w, http.StatusOK, loginView{Title: "Signed out — gpuaas dev", Error: "", Fatal: true})
}

// sessionFromIDToken checks an ID token we issued and returns its sid.
// Expiry is not checked: OIDC lets a client send an expired ID token as the
// logout hint.
func (p *Provider) sessionFromIDToken(raw string) (string, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{p.alg})
	if err != nil {
		return "", err
	}
	payload, err := jws.Verify(p.pub)
	if err != nil {
		return "", err
	}
	var c struct {
		Iss string `json:"iss"`
		Aud any    `json:"aud"`
		Sid string `json:"sid"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", err
	}
	if c.Iss != p.cfg.Issuer || c.Sid == "" {
		return "", fmt.Errorf("id token hint from another issuer or without sid")
	}
	return c.Sid, nil
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func scopeSubset(requested, granted string) bool {
	g := strings.Fields(granted)
	for _, s := range strings.Fields(requested) {
		if !slices.Contains(g, s) {
			return false
		}
	}
	return true
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
