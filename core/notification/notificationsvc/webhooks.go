package notificationsvc

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/envelope"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/notification"
	"github.com/gpuaas/gpuaas/core/resource"
	"github.com/gpuaas/gpuaas/core/text"
	"github.com/gpuaas/gpuaas/ports"
)

// MaxEndpointsPerProject bounds a project's webhook endpoints.
const MaxEndpointsPerProject = 20

// DescriptionMaxLength bounds an endpoint's description (the contract's
// maxLength).
const DescriptionMaxLength = 200

// EndpointInput is what a caller sets on an endpoint. Nil fields are left
// as they are by UpdateEndpoint.
type EndpointInput struct {
	URL         *string
	Description *string
	EventTypes  []string // nil: unchanged
	Enabled     *bool
}

// admin checks that the caller administers the project (a project admin
// or a tenant owner/admin): webhooks carry the project's events out of
// the platform.
func (s *Service) admin(ctx context.Context, p identity.Principal, projectID string) error {
	_, role, err := s.d.Projects.ProjectAccess(ctx, p, projectID)
	if err != nil {
		return err
	}
	if role != identity.ProjectAdmin {
		return fault.Forbidden("only project admins manage webhook endpoints")
	}
	return nil
}

func (s *Service) checkInput(in EndpointInput, creating bool) error {
	if in.URL != nil || creating {
		if in.URL == nil {
			return fault.Invalid("url", "url is required")
		}
		if err := text.Line("url", *in.URL, 1, notification.URLMaxLength); err != nil {
			return err
		}
		if err := notification.CheckURL(*in.URL, s.cfg.AllowPrivateWebhooks); err != nil {
			return err
		}
	}
	if in.Description != nil {
		if err := text.Line("description", *in.Description, 0, DescriptionMaxLength); err != nil {
			return err
		}
	}
	if in.EventTypes != nil || creating {
		if len(in.EventTypes) == 0 {
			return fault.Invalid("event_types", "choose at least one event type")
		}
		for _, t := range in.EventTypes {
			if !notification.ValidEventType(t) {
				return fault.Invalid("event_types", "unknown event type "+t).With("allowed", notification.WebhookEventTypes)
			}
		}
	}
	return nil
}

func (s *Service) seal(ctx context.Context, endpointID string, secrets []notification.Secret) ([]byte, error) {
	b, err := json.Marshal(secrets)
	if err != nil {
		return nil, fault.Internal(err)
	}
	return envelope.Seal(ctx, s.d.KMS, b, []byte("webhook-endpoint:"+endpointID))
}

func (s *Service) open(ctx context.Context, endpointID string, sealed []byte) ([]notification.Secret, error) {
	b, err := envelope.Open(ctx, s.d.KMS, sealed, []byte("webhook-endpoint:"+endpointID))
	if err != nil {
		return nil, err
	}
	var out []notification.Secret
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fault.Internal(err)
	}
	return out, nil
}

// CreateEndpoint registers a webhook endpoint on a project and returns it
// with its signing secret (shown this once).
func (s *Service) CreateEndpoint(ctx context.Context, p identity.Principal, projectID string, in EndpointInput) (notification.Endpoint, string, error) {
	if err := s.checkInput(in, true); err != nil {
		return notification.Endpoint{}, "", err
	}
	if err := s.admin(ctx, p, projectID); err != nil {
		return notification.Endpoint{}, "", err
	}
	secret, err := notification.NewSecret(s.d.Rand)
	if err != nil {
		return notification.Endpoint{}, "", err
	}
	now := s.d.Clock.Now()
	e := notification.Endpoint{ID: s.d.IDs.NewID(), TenantID: p.TenantID, ProjectID: projectID, URL: *in.URL,
		EventTypes: dedupe(in.EventTypes), Status: notification.EndpointEnabled, CreatedAt: now, UpdatedAt: now,
		Secrets: []notification.Secret{{Value: secret, CreatedAt: now}}}
	if in.Description != nil {
		e.Description = *in.Description
	}
	sealed, err := s.seal(ctx, e.ID, e.Secrets)
	if err != nil {
		return notification.Endpoint{}, "", err
	}
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		existing, err := s.d.Webhooks.ListEndpoints(ctx, projectID)
		if err != nil {
			return err
		}
		if len(existing) >= MaxEndpointsPerProject {
			return fault.Conflict("webhook_endpoint_limit", "a project has at most 20 webhook endpoints")
		}
		if err := s.d.Webhooks.CreateEndpoint(ctx, e, sealed); err != nil {
			return err
		}
		return s.audit(ctx, p, "webhook.endpoint_create", e, map[string]any{"url": e.URL, "event_types": e.EventTypes})
	})
	e.Secrets = nil
	return e, secret, err
}

// ListEndpoints lists a project's endpoints (without secrets).
func (s *Service) ListEndpoints(ctx context.Context, p identity.Principal, projectID string) ([]notification.Endpoint, error) {
	if err := s.admin(ctx, p, projectID); err != nil {
		return nil, err
	}
	return s.d.Webhooks.ListEndpoints(ctx, projectID)
}

// Endpoint returns one endpoint of the project (without secrets).
func (s *Service) Endpoint(ctx context.Context, p identity.Principal, projectID, id string) (notification.Endpoint, error) {
	if err := identity.ValidateID("endpoint_id", id); err != nil {
		return notification.Endpoint{}, err
	}
	if err := s.admin(ctx, p, projectID); err != nil {
		return notification.Endpoint{}, err
	}
	e, _, err := s.d.Webhooks.Endpoint(ctx, projectID, id)
	return e, err
}

// UpdateEndpoint changes an endpoint's URL, description, event types or
// status. Enabling a disabled endpoint clears its failure record.
func (s *Service) UpdateEndpoint(ctx context.Context, p identity.Principal, projectID, id string, in EndpointInput) (notification.Endpoint, error) {
	if err := s.checkInput(in, false); err != nil {
		return notification.Endpoint{}, err
	}
	if err := s.admin(ctx, p, projectID); err != nil {
		return notification.Endpoint{}, err
	}
	var out notification.Endpoint
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		e, _, err := s.d.Webhooks.Endpoint(ctx, projectID, id)
		if err != nil {
			return err
		}
		if in.URL != nil {
			e.URL = *in.URL
		}
		if in.Description != nil {
			e.Description = *in.Description
		}
		if in.EventTypes != nil {
			e.EventTypes = dedupe(in.EventTypes)
		}
		if in.Enabled != nil {
			switch {
			case *in.Enabled && e.Status != notification.EndpointEnabled:
				e.Status, e.DisabledReason, e.FailingSince = notification.EndpointEnabled, "", nil
			case !*in.Enabled && e.Status == notification.EndpointEnabled:
				e.Status, e.DisabledReason = notification.EndpointDisabled, "manual"
			}
		}
		e.UpdatedAt = s.d.Clock.Now()
		if err := s.d.Webhooks.UpdateEndpoint(ctx, e, nil); err != nil {
			return err
		}
		if e.Status == notification.EndpointDisabled {
			if _, err := s.d.Webhooks.CancelPending(ctx, e.ID, "endpoint disabled"); err != nil {
				return err
			}
		}
		out = e
		return s.audit(ctx, p, "webhook.endpoint_update", e, map[string]any{"url": e.URL, "event_types": e.EventTypes,
			"status": string(e.Status)})
	})
	out.Secrets = nil
	return out, err
}

// DeleteEndpoint removes an endpoint with its deliveries.
func (s *Service) DeleteEndpoint(ctx context.Context, p identity.Principal, projectID, id string) error {
	if err := identity.ValidateID("endpoint_id", id); err != nil {
		return err
	}
	if err := s.admin(ctx, p, projectID); err != nil {
		return err
	}
	return s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		e, _, err := s.d.Webhooks.Endpoint(ctx, projectID, id)
		if err != nil {
			return err
		}
		if err := s.d.Webhooks.DeleteEndpoint(ctx, projectID, id); err != nil {
			return err
		}
		return s.audit(ctx, p, "webhook.endpoint_delete", e, map[string]any{"url": e.URL})
	})
}

// RotateSecret gives the endpoint a new signing secret (returned this
// once). The previous one keeps signing for notification.RotationOverlap,
// so each delivery then carries two signatures; older ones are dropped.
func (s *Service) RotateSecret(ctx context.Context, p identity.Principal, projectID, id string) (string, error) {
	if err := identity.ValidateID("endpoint_id", id); err != nil {
		return "", err
	}
	if err := s.admin(ctx, p, projectID); err != nil {
		return "", err
	}
	secret, err := notification.NewSecret(s.d.Rand)
	if err != nil {
		return "", err
	}
	err = s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		e, sealed, err := s.d.Webhooks.Endpoint(ctx, projectID, id)
		if err != nil {
			return err
		}
		old, err := s.open(ctx, e.ID, sealed)
		if err != nil {
			return err
		}
		now := s.d.Clock.Now()
		next := []notification.Secret{{Value: secret, CreatedAt: now}}
		if live := (notification.Endpoint{Secrets: old}).Live(now); len(live) > 0 {
			prev := live[0]
			until := now.Add(notification.RotationOverlap)
			prev.ExpiresAt = &until
			next = append(next, prev)
		}
		sealedNext, err := s.seal(ctx, e.ID, next)
		if err != nil {
			return err
		}
		e.UpdatedAt = now
		if err := s.d.Webhooks.UpdateEndpoint(ctx, e, sealedNext); err != nil {
			return err
		}
		return s.audit(ctx, p, "webhook.secret_rotate", e, nil)
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// DeliveryLog is an endpoint's deliveries with the attempts of each.
type DeliveryLog struct {
	Deliveries []DeliveryWithAttempts
	NextCursor string
}

// DeliveryWithAttempts is one delivery and its attempts, oldest first.
type DeliveryWithAttempts struct {
	notification.Delivery
	Log []ports.WebhookAttempt
}

// Deliveries pages an endpoint's delivery log, newest first.
func (s *Service) Deliveries(ctx context.Context, p identity.Principal, projectID, id string, f ports.WebhookDeliveryFilter) (DeliveryLog, error) {
	if err := identity.ValidateID("endpoint_id", id); err != nil {
		return DeliveryLog{}, err
	}
	if f.Status != "" && f.Status != notification.DeliveryPending && f.Status != notification.DeliverySucceeded &&
		f.Status != notification.DeliveryFailed {
		return DeliveryLog{}, fault.Invalid("status", "status must be pending, succeeded or failed")
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	if f.Limit < 1 || f.Limit > 200 {
		return DeliveryLog{}, fault.Invalid("limit", "limit must be between 1 and 200")
	}
	if err := s.admin(ctx, p, projectID); err != nil {
		return DeliveryLog{}, err
	}
	if _, _, err := s.d.Webhooks.Endpoint(ctx, projectID, id); err != nil {
		return DeliveryLog{}, err
	}
	ds, next, err := s.d.Webhooks.ListDeliveries(ctx, id, f)
	if err != nil {
		return DeliveryLog{}, err
	}
	out := DeliveryLog{NextCursor: next, Deliveries: make([]DeliveryWithAttempts, 0, len(ds))}
	for _, d := range ds {
		as, err := s.d.Webhooks.Attempts(ctx, d.ID)
		if err != nil {
			return DeliveryLog{}, err
		}
		out.Deliveries = append(out.Deliveries, DeliveryWithAttempts{Delivery: d, Log: as})
	}
	return out, nil
}

func (s *Service) audit(ctx context.Context, p identity.Principal, action string, e notification.Endpoint, md map[string]any) error {
	return s.d.Audit.Record(ctx, audit.Event{ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: audit.ActorUser,
		ActorID: p.User.ID, TenantID: e.TenantID, ProjectID: e.ProjectID, Action: action, ResourceType: resource.TypeWebhook,
		ResourceID: resource.New("", e.TenantID, e.ProjectID, resource.TypeWebhook, e.ID).String(), Outcome: audit.Success,
		CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx), Metadata: md})
}

func dedupe(ts []string) []string {
	out := slices.Clone(ts)
	slices.Sort(out)
	return slices.Compact(out)
}
