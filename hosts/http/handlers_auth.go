package httphost

import (
	"net/http"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity/authsvc"
	"github.com/gpuaas/gpuaas/hosts/http/api"
)

const (
	// RefreshCookieName holds the refresh token for browser sessions.
	RefreshCookieName = "gpuaas_refresh"
	// refreshCookiePath keeps the cookie off every route but the auth ones.
	refreshCookiePath = "/api/v1/auth"
)

// The sign-in flows are core/identity/authsvc's; these handlers decode,
// call it, and answer with the tokens and the refresh cookie.

// AuthorizeOIDC implements [api.ServerInterface].
func (h *handlers) AuthorizeOIDC(w http.ResponseWriter, r *http.Request, params api.AuthorizeOIDCParams) {
	s := h.s
	target, err := s.auth.StartSignIn(r.Context(), params.RedirectUri)
	if err != nil {
		s.fail(w, r, err)
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
	sess, err := s.auth.FinishSignIn(r.Context(), req.Code, req.State, req.RedirectUri)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.signedIn(w, r, sess)
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
	sess, err := s.auth.Refresh(r.Context(), tok)
	if err != nil {
		if fault.IsKind(err, fault.KindUnauthenticated) && tok != "" {
			s.clearRefreshCookie(w) // a dead cookie would only fail again
		}
		s.fail(w, r, err)
		return
	}
	s.signedIn(w, r, sess)
}

// Logout implements [api.ServerInterface]. Besides the refresh token (body
// or cookie) it reads an optional bearer access token, which is signed out
// with it (refused from now on): the one public route that reads the
// Authorization header, and never fails on it.
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
	access, _ := bearerToken(r)
	if err := s.auth.Logout(r.Context(), tok, access); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// PersonalLogin implements [api.ServerInterface]. authsvc checks the policy
// gate first: a disabled route answers 403 feature_disabled whatever the
// credentials.
func (h *handlers) PersonalLogin(w http.ResponseWriter, r *http.Request) {
	s := h.s
	var req api.PersonalLoginRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	sess, err := s.auth.PersonalLogin(r.Context(), req.Username, req.Password)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.signedIn(w, r, sess)
}

// signedIn answers with the tokens and the refresh cookie.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request, sess authsvc.Session) {
	stateOf(r.Context()).userID = sess.Principal.User.ID
	tokens := sess.Tokens
	if tokens.RefreshToken != "" {
		http.SetCookie(w, s.refreshCookie(tokens.RefreshToken, int(s.cfg.RefreshCookieTTL/time.Second)))
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, api.TokenResponse{
		AccessToken: tokens.AccessToken, RefreshToken: tokens.RefreshToken, ExpiresIn: tokens.ExpiresIn,
		TokenType: api.Bearer, User: userView(sess.Principal.User),
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
