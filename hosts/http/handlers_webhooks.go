package httphost

import (
	"net/http"

	"github.com/gpuaas/gpuaas/core/notification"
	"github.com/gpuaas/gpuaas/core/notification/notificationsvc"
	"github.com/gpuaas/gpuaas/hosts/http/api"
	"github.com/gpuaas/gpuaas/ports"
)

func endpointView(e notification.Endpoint) api.WebhookEndpoint {
	v := api.WebhookEndpoint{Id: e.ID, ProjectId: e.ProjectID, Url: e.URL, Description: e.Description,
		EventTypes: make([]api.WebhookEventType, 0, len(e.EventTypes)), Status: api.WebhookEndpointStatus(e.Status),
		DisabledReason: optional(e.DisabledReason), FailingSince: e.FailingSince, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
	for _, t := range e.EventTypes {
		v.EventTypes = append(v.EventTypes, api.WebhookEventType(t))
	}
	return v
}

func eventTypes(ts []api.WebhookEventType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// ListWebhookEndpoints implements [api.ServerInterface].
func (h *handlers) ListWebhookEndpoints(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.notificationsReady(w, r) {
		return
	}
	eps, err := s.d.Notifications.ListEndpoints(r.Context(), p, projectID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.WebhookEndpointList{Endpoints: make([]api.WebhookEndpoint, 0, len(eps))}
	for _, e := range eps {
		out.Endpoints = append(out.Endpoints, endpointView(e))
	}
	writeJSON(w, http.StatusOK, out)
}

// CreateWebhookEndpoint implements [api.ServerInterface].
func (h *handlers) CreateWebhookEndpoint(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	var req api.CreateWebhookEndpointRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.notificationsReady(w, r) {
		return
	}
	e, secret, err := s.d.Notifications.CreateEndpoint(r.Context(), p, projectID, notificationsvc.EndpointInput{
		URL: &req.Url, Description: req.Description, EventTypes: eventTypes(req.EventTypes)})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.CreatedWebhookEndpoint{Endpoint: endpointView(e), Secret: secret})
}

// GetWebhookEndpoint implements [api.ServerInterface].
func (h *handlers) GetWebhookEndpoint(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, id api.EndpointIDPath) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.notificationsReady(w, r) {
		return
	}
	e, err := s.d.Notifications.Endpoint(r.Context(), p, projectID, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, endpointView(e))
}

// UpdateWebhookEndpoint implements [api.ServerInterface].
func (h *handlers) UpdateWebhookEndpoint(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, id api.EndpointIDPath,
	_ api.UpdateWebhookEndpointParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok {
		return
	}
	var req api.UpdateWebhookEndpointRequest
	if err := s.decode(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.notificationsReady(w, r) {
		return
	}
	in := notificationsvc.EndpointInput{URL: req.Url, Description: req.Description, Enabled: req.Enabled}
	if req.EventTypes != nil {
		in.EventTypes = eventTypes(*req.EventTypes)
	}
	e, err := s.d.Notifications.UpdateEndpoint(r.Context(), p, projectID, id, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, endpointView(e))
}

// DeleteWebhookEndpoint implements [api.ServerInterface].
func (h *handlers) DeleteWebhookEndpoint(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, id api.EndpointIDPath,
	_ api.DeleteWebhookEndpointParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.notificationsReady(w, r) {
		return
	}
	if err := s.d.Notifications.DeleteEndpoint(r.Context(), p, projectID, id); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// RotateWebhookSecret implements [api.ServerInterface].
func (h *handlers) RotateWebhookSecret(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, id api.EndpointIDPath) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.notificationsReady(w, r) {
		return
	}
	secret, err := s.d.Notifications.RotateSecret(r.Context(), p, projectID, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.WebhookSecret{Secret: secret})
}

// ListWebhookDeliveries implements [api.ServerInterface].
func (h *handlers) ListWebhookDeliveries(w http.ResponseWriter, r *http.Request, projectID api.ProjectIDPath, id api.EndpointIDPath,
	params api.ListWebhookDeliveriesParams) {
	s := h.s
	p, ok := s.principal(w, r)
	if !ok || !s.notificationsReady(w, r) {
		return
	}
	f := ports.WebhookDeliveryFilter{Cursor: deref(params.Cursor)}
	if params.Status != nil {
		f.Status = notification.DeliveryStatus(*params.Status)
	}
	if params.Limit != nil {
		f.Limit = *params.Limit
	}
	log, err := s.d.Notifications.Deliveries(r.Context(), p, projectID, id, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.WebhookDeliveryPage{Deliveries: make([]api.WebhookDelivery, 0, len(log.Deliveries)), NextCursor: optional(log.NextCursor)}
	for _, d := range log.Deliveries {
		v := api.WebhookDelivery{Id: d.ID, EventId: d.EventID, EventType: d.EventType, Status: api.WebhookDeliveryStatus(d.Status),
			Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, CreatedAt: d.CreatedAt, LastError: optional(d.LastError),
			Log: make([]api.WebhookAttempt, 0, len(d.Log))}
		if d.LastStatusCode != 0 {
			code := d.LastStatusCode
			v.LastStatusCode = &code
		}
		for _, a := range d.Log {
			v.Log = append(v.Log, api.WebhookAttempt{Attempt: a.Attempt, At: a.At, StatusCode: a.StatusCode, Error: a.Error,
				DurationMs: a.Duration.Milliseconds()})
		}
		out.Deliveries = append(out.Deliveries, v)
	}
	writeJSON(w, http.StatusOK, out)
}
