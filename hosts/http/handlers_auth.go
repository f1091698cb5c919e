package httphost

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/ports"
)

const (
	// RefreshCookieName holds the refresh token for browser sessions.
	RefreshCookieName = "gpuaas_refresh"
	// refreshCookiePath keeps the cookie off every route but the auth ones.
	refreshCookiePath = "/api/v1/auth"
	// oidcStateTTL bounds how long a started sign-in may take.
	oidcStateTTL = 10 * time.Minute
	// oidcStatePrefix namespaces the state in the shared token store.
	oidcStatePrefix = "oidc-state:"
)

// pendingSignIn is what authorize remembers under the state for exchange.
type pendingSignIn struct {
	Verifier    string `json:"verifier"`
	RedirectURI string `json:"redirect_uri"`
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// s256 is the PKCE S256 code challenge of a verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// AuthorizeOIDC implements [api.ServerInterface].
func (h *handlers) AuthorizeOIDC(w http.ResponseWriter, r *http.Request, params api.AuthorizeOIDCParams) {
	s := h.s
	if !s.redirectURIs[params.RedirectUri] {
		s.fail(w, r, fault.Invalid("redirect_uri", "redirect_uri is not one of this host's sign-in redirect URIs"))
		return
	}
	state, err := randomToken(32)
	if err != nil {
		s.fail(w, r, fault.Internal(err))
		return
	}
	verifier, err := randomToken(32) // 43 characters, the RFC 7636 minimum, with 256 bits of entropy
	if err != nil {
		s.fail(w, r, fault.Internal(err))
		return
	}
	val, _ := json.Marshal(pendingSignIn{Verifier: verifier, RedirectURI: params.RedirectUri})
	if err := s.d.Tokens.Put(r.Context(), oidcStatePrefix+state, val, oidcStateTTL); err != nil {
		s.fail(w, r, err)
		return
	}
	target := s.d.IdP.AuthCodeURL(state, s256(verifier), params.RedirectUri)
	if target == "" { // the port has no error; "" means the issuer could not be reached
		s.fail(w, r, fault.Unavailable("the identity provider is unreachable", nil))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// ExchangeOIDCCode implements [api.ServerInterface].
func (h *handlers) ExchangeOIDCCode(w http.ResponseWriter, r *http.Request) {
	s := h.s
	var req api.ExchangeRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	for _, f := range []struct{ name, v string }{{"code", req.Code}, {"state", req.State}, {"redirect_uri", req.RedirectUri}} {
		if f.v == "" {
			s.fail(w, r, fault.Invalid(f.name, f.name+" is required"))
			return
		}
	}
	// Consume, not read: a state works once, so a replayed callback fails.
	raw, err := s.d.Tokens.Consume(r.Context(), oidcStatePrefix+req.State)
	if err != nil {
		if fault.IsKind(err, fault.KindNotFound) {
			s.fail(w, r, fault.Invalid("state", "unknown, used or expired sign-in state; start the sign-in again"))
			return
		}
		s.fail(w, r, err)
		return
	}
	var pending pendingSignIn
	if err := json.Unmarshal(raw, &pending); err != nil {
		s.fail(w, r, fault.Internal(err))
		return
	}
	if pending.RedirectURI != req.RedirectUri {
		s.fail(w, r, fault.Invalid("redirect_uri", "redirect_uri does not match the one the sign-in started with"))
		return
	}
	tokens, err := s.d.IdP.Exchange(r.Context(), req.Code, pending.Verifier, req.RedirectUri)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.signedIn(w, r, tokens, true)
}

// RefreshToken implements [api.ServerInterface].
func (h *handlers) RefreshToken(w http.ResponseWriter, r *http.Request, params api.RefreshTokenParams) {
	s := h.s
	var req api.RefreshRequest
	if err := s.decode(r, &req, true); err != nil {
		s.fail(w, r, err)
		return
	}
	tok := deref(req.RefreshToken)
	if tok == "" {
		tok = deref(params.GpuaasRefresh)
	}
	if tok == "" {
		s.fail(w, r, fault.Unauthenticated(fault.CodeTokenMissing, "a refresh token is required (body or cookie)"))
		return
	}
	tokens, err := s.d.IdP.Refresh(r.Context(), tok)
	if err != nil {
		if fault.IsKind(err, fault.KindUnauthenticated) {
			s.clearRefreshCookie(w) // a dead cookie would only fail again
		}
		s.fail(w, r, err)
		return
	}
	s.signedIn(w, r, tokens, false)
}

// Logout implements [api.ServerInterface].
func (h *handlers) Logout(w http.ResponseWriter, r *http.Request, params api.LogoutParams) {
	s := h.s
	var req api.LogoutRequest
	if err := s.decode(r, &req, true); err != nil {
		s.fail(w, r, err)
		return
	}
	s.clearRefreshCookie(w)
	tok := deref(req.RefreshToken)
	if tok == "" {
		tok = deref(params.GpuaasRefresh)
	}
	if tok != "" {
		// Revoking an unknown or dead token is success (RFC 7009): the
		// caller's goal, a token that no longer works, holds.
		if err := s.d.IdP.Revoke(r.Context(), tok); err != nil &&
			!fault.IsKind(err, fault.KindUnauthenticated) && !fault.IsKind(err, fault.KindNotFound) &&
			!fault.IsKind(err, fault.KindInvalid) {
			s.fail(w, r, err)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// PersonalLogin implements [api.ServerInterface]. When the policy is off
// the answer is 403 feature_disabled rather than 404: the route is in the
// published contract, and whether it is enabled is an operator setting, not
// something to hide.
func (h *handlers) PersonalLogin(w http.ResponseWriter, r *http.Request) {
	s := h.s
	vals, err := s.d.Policies.Values(r.Context(), "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !vals.Bool(policy.PersonalLoginEnabled) {
		s.fail(w, r, &fault.Error{Kind: fault.KindForbidden, Code: fault.CodeFeatureDisabled,
			Message: "personal login is disabled on this platform"})
		return
	}
	var req api.PersonalLoginRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Username == "" {
		s.fail(w, r, fault.Invalid("username", "username is required"))
		return
	}
	if req.Password == "" {
		s.fail(w, r, fault.Invalid("password", "password is required"))
		return
	}
	tokens, err := s.d.IdP.PasswordLogin(r.Context(), req.Username, req.Password)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.signedIn(w, r, tokens, true)
}

// signedIn verifies the issued access token like any other (so a provider
// misconfiguration shows here, not on the next call), signs the user in or
// resolves them, and answers with the tokens and the refresh cookie.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request, tokens ports.Tokens, signIn bool) {
	claims, err := s.d.Verifier.Verify(r.Context(), tokens.AccessToken)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var p identity.Principal
	if signIn {
		p, err = s.d.Identity.SignIn(r.Context(), claims)
	} else {
		p, err = s.d.Identity.Resolve(r.Context(), claims)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stateOf(r.Context()).userID = p.User.ID
	if tokens.RefreshToken != "" {
		http.SetCookie(w, s.refreshCookie(tokens.RefreshToken, int(s.cfg.RefreshCookieTTL/time.Second)))
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, api.TokenResponse{
		AccessToken: tokens.AccessToken, RefreshToken: tokens.RefreshToken, ExpiresIn: tokens.ExpiresIn,
		TokenType: api.Bearer, User: userView(p.User),
	})
}

// refreshCookie is httpOnly (scripts never see it), SameSite=Strict (no
// cross-site request carries it) and scoped to the auth routes.
func (s *Server) refreshCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: RefreshCookieName, Value: value, Path: refreshCookiePath, MaxAge: maxAge,
		HttpOnly: true, Secure: !s.cfg.CookieInsecure, SameSite: http.SameSiteStrictMode}
}

func (s *Server) clearRefreshCookie(w http.ResponseWriter) {
	http.SetCookie(w, s.refreshCookie("", -1))
}

func deref[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}
