package httphost

import (
	"net/http"
	"strings"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/machinesvc"
	"github.com/gpuaas/gpuaas/hosts/http/api"
)

// Machine access (doc/service-accounts.md): the client-credentials token
// route and its key set (core/identity/authsvc), service accounts and API
// keys (core/identity/machinesvc). Deps.Machine and Deps.TokenIssuer are
// optional: without them these routes answer 503 feature_disabled.

func errMachineDisabled() error {
	return &fault.Error{Kind: fault.KindUnavailable, Code: fault.CodeFeatureDisabled,
		Message: "machine access (service accounts, API keys) is not configured on this platform"}
}

// machine returns the use cases and the caller, or answers 503 (not
// configured) or 500 (no principal).
func (s *Server) machine(w http.ResponseWriter, r *http.Request) (*machinesvc.Service, identity.Principal, bool) {
	if s.d.Machine == nil {
		s.fail(w, r, errMachineDisabled())
		return nil, identity.Principal{}, false
	}
	p, ok := s.principal(w, r)
	return s.d.Machine, p, ok
}

// CreateServiceToken implements [api.ServerInterface].
func (h *handlers) CreateServiceToken(w http.ResponseWriter, r *http.Request) {
	s := h.s
	var req api.ServiceTokenRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	tok, err := s.auth.IssueServiceToken(r.Context(), req.ClientId, req.ClientSecret)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	names := make([]string, 0, len(tok.Scopes))
	for _, sc := range tok.Scopes {
		names = append(names, string(sc))
	}
	writeJSON(w, http.StatusOK, api.ServiceTokenResponse{AccessToken: tok.AccessToken, TokenType: "Bearer",
		ExpiresIn: tok.ExpiresIn, Scope: strings.Join(names, " ")})
}

// GetPlatformJWKS implements [api.ServerInterface]. The set is public and
// changes only when the key does: caches may keep it five minutes.
func (h *handlers) GetPlatformJWKS(w http.ResponseWriter, r *http.Request) {
	s := h.s
	if s.d.TokenIssuer == nil {
		s.fail(w, r, errMachineDisabled())
		return
	}
	b, err := s.d.TokenIssuer.JWKS(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func scopeViews(in []identity.Scope) []api.CredentialScope {
	out := make([]api.CredentialScope, 0, len(in))
	for _, sc := range in {
		out = append(out, api.CredentialScope(sc))
	}
	return out
}

func credentialView(c identity.Credential) api.ServiceAccountCredential {
	return api.ServiceAccountCredential{Id: c.ID, Hint: c.Hint, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt, RevokedAt: c.RevokedAt,
		LastUsedAt: c.LastUsedAt}
}

func serviceAccountView(v machinesvc.ServiceAccountView) api.ServiceAccount {
	creds := make([]api.ServiceAccountCredential, 0, len(v.Credentials))
	for _, c := range v.Credentials {
		creds = append(creds, credentialView(c))
	}
	a := v.Account
	return api.ServiceAccount{Id: a.ID, ClientId: a.ID, Name: a.Name, ProjectId: a.ProjectID, Role: api.ServiceAccountRole(a.Role),
		Scopes: scopeViews(identity.ScopesForRole(a.Role)), CreatedAt: a.CreatedAt, Credentials: creds}
}

// ListServiceAccounts implements [api.ServerInterface].
func (h *handlers) ListServiceAccounts(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, _ api.ListServiceAccountsParams) {
	s := h.s
	m, p, ok := s.machine(w, r)
	if !ok {
		return
	}
	vs, err := m.ListServiceAccounts(r.Context(), p, projectID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.ServiceAccountList{ServiceAccounts: make([]api.ServiceAccount, 0, len(vs))}
	for _, v := range vs {
		out.ServiceAccounts = append(out.ServiceAccounts, serviceAccountView(v))
	}
	writeJSON(w, http.StatusOK, out)
}

// CreateServiceAccount implements [api.ServerInterface].
func (h *handlers) CreateServiceAccount(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, _ api.CreateServiceAccountParams) {
	s := h.s
	m, p, ok := s.machine(w, r)
	if !ok {
		return
	}
	var req api.CreateServiceAccountRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	sa, err := m.CreateServiceAccount(r.Context(), p, projectID, req.Name, identity.ProjectRole(req.Role))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, serviceAccountView(machinesvc.ServiceAccountView{Account: sa}))
}

// DeleteServiceAccount implements [api.ServerInterface].
func (h *handlers) DeleteServiceAccount(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, id api.ServiceAccountIDPath, _ api.DeleteServiceAccountParams) {
	s := h.s
	m, p, ok := s.machine(w, r)
	if !ok {
		return
	}
	if err := m.DisableServiceAccount(r.Context(), p, projectID, id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.auth.Forget()
	w.WriteHeader(http.StatusNoContent)
}

// CreateServiceAccountCredential implements [api.ServerInterface].
func (h *handlers) CreateServiceAccountCredential(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, id api.ServiceAccountIDPath, _ api.CreateServiceAccountCredentialParams) {
	s := h.s
	m, p, ok := s.machine(w, r)
	if !ok {
		return
	}
	var req api.CreateCredentialRequest
	if err := s.decode(r, &req, true); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := m.CreateCredential(r.Context(), p, projectID, id, req.ExpiresAt)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.CreatedCredential{Credential: credentialView(c.Credential), ClientId: c.ClientID,
		ClientSecret: c.Secret})
}

// RevokeServiceAccountCredential implements [api.ServerInterface].
func (h *handlers) RevokeServiceAccountCredential(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, id api.ServiceAccountIDPath, credentialID string, _ api.RevokeServiceAccountCredentialParams) {
	s := h.s
	m, p, ok := s.machine(w, r)
	if !ok {
		return
	}
	if err := m.RevokeCredential(r.Context(), p, projectID, id, credentialID); err != nil {
		s.fail(w, r, err)
		return
	}
	s.auth.Forget()
	w.WriteHeader(http.StatusNoContent)
}

func apiKeyView(k identity.APIKey) api.APIKey {
	return api.APIKey{Id: k.ID, Name: k.Name, ProjectId: k.ProjectID, Prefix: identity.APIKeyPrefix + k.Lookup,
		Scopes: scopeViews(k.Scopes), SpendCapMinor: k.SpendCapMinor, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt,
		LastUsedAt: k.LastUsedAt}
}

// ListAPIKeys implements [api.ServerInterface].
func (h *handlers) ListAPIKeys(w http.ResponseWriter, r *http.Request) {
	s := h.s
	m, p, ok := s.machine(w, r)
	if !ok {
		return
	}
	ks, err := m.ListAPIKeys(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.APIKeyList{ApiKeys: make([]api.APIKey, 0, len(ks))}
	for _, k := range ks {
		out.ApiKeys = append(out.ApiKeys, apiKeyView(k))
	}
	writeJSON(w, http.StatusOK, out)
}

// CreateAPIKey implements [api.ServerInterface].
func (h *handlers) CreateAPIKey(w http.ResponseWriter, r *http.Request) {
	s := h.s
	m, p, ok := s.machine(w, r)
	if !ok {
		return
	}
	var req api.CreateAPIKeyRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	scopes := make([]string, 0, len(req.Scopes))
	for _, sc := range req.Scopes {
		scopes = append(scopes, string(sc))
	}
	k, err := m.CreateAPIKey(r.Context(), p, machinesvc.CreateKeyRequest{Name: req.Name, ProjectID: req.ProjectId,
		Scopes: scopes, ExpiresAt: req.ExpiresAt, SpendCapMinor: derefInt(req.SpendCapMinor)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.CreatedAPIKey{ApiKey: apiKeyView(k.Key), Secret: k.Secret})
}

// RevokeAPIKey implements [api.ServerInterface].
func (h *handlers) RevokeAPIKey(w http.ResponseWriter, r *http.Request, keyID string, _ api.RevokeAPIKeyParams) {
	s := h.s
	m, p, ok := s.machine(w, r)
	if !ok {
		return
	}
	if err := m.RevokeAPIKey(r.Context(), p, keyID); err != nil {
		s.fail(w, r, err)
		return
	}
	s.auth.Forget()
	w.WriteHeader(http.StatusNoContent)
}
