package httphost

import (
	"net/http"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/terminal"
	"github.com/gpuaas/gpuaas/hosts/http/api"
)

// CreateTerminalToken implements [api.ServerInterface]: it mints the
// single-use token the browser presents to the terminal gateway. The active
// project (X-Project-ID, checked by the authorize layer) scopes the lookup,
// so an allocation of another project is 404 like one of another tenant.
func (h *handlers) CreateTerminalToken(w http.ResponseWriter, r *http.Request, allocationID api.AllocationIDPath, _ api.CreateTerminalTokenParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	if s.d.Terminal == nil {
		s.fail(w, r, fault.New(fault.KindUnavailable, fault.CodeFeatureDisabled, "the browser terminal is not enabled on this server"))
		return
	}
	var body api.TerminalTokenRequest
	if err := s.decode(r, &body, true); err != nil {
		s.fail(w, r, err)
		return
	}
	resume := ""
	if body.SessionId != nil {
		resume = *body.SessionId
	}
	projectID := ""
	if ap, ok := ActiveProjectFrom(r.Context()); ok {
		projectID = ap.Project.ID
	}
	m, err := s.d.Terminal.Mint(r.Context(), p, projectID, allocationID, resume)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The token is a bearer credential: never cached by anything in between.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, api.TerminalToken{Token: m.Token, ExpiresAt: m.ExpiresAt.UTC(),
		WebsocketPath: terminal.WebSocketPath(allocationID), Subprotocol: terminal.Subprotocol,
		SessionId: m.SessionID, Resume: m.Resume})
}
