// Package policysvc holds the policy administration use case: platform
// operators change typed policy values, and every change is audited in the
// same transaction.
package policysvc

import (
	"context"
	"errors"

	"github.com/gpuaas/gpuaas/core/audit"
	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/policy"
	"github.com/gpuaas/gpuaas/ports"
)

// Deps are the ports the service needs.
type Deps struct {
	Tx       ports.TxRunner
	Policies ports.PolicyStore
	Audit    ports.AuditLog
	Clock    ports.Clock
	IDs      ports.IDs
}

// Service implements policy administration.
type Service struct{ d Deps }

// New checks that every dependency is present.
func New(d Deps) (*Service, error) {
	if d.Tx == nil || d.Policies == nil || d.Audit == nil || d.Clock == nil || d.IDs == nil {
		return nil, errors.New("policysvc: every dependency is required")
	}
	return &Service{d: d}, nil
}

// Setting is a policy key with its effective global value.
type Setting struct {
	Key   policy.Key
	Value string
}

// List returns every registered key with its effective global value (the
// stored override, else the default), sorted by name. Platform admins only.
func (s *Service) List(ctx context.Context, p identity.Principal) ([]Setting, error) {
	if !p.User.IsAdmin() {
		return nil, fault.Forbidden("only platform administrators can read policy")
	}
	vals, err := s.d.Policies.Values(ctx, "")
	if err != nil {
		return nil, err
	}
	keys := policy.Keys()
	out := make([]Setting, 0, len(keys))
	for _, k := range keys {
		out = append(out, Setting{Key: k, Value: vals.String(k)})
	}
	return out, nil
}

// Set changes a global policy value. Platform admins only; the key must be
// registered and the value valid for it. The audit record names the old and
// the new value (policy values are configuration, never secrets).
func (s *Service) Set(ctx context.Context, p identity.Principal, key, value string) (policy.Key, error) {
	if !p.User.IsAdmin() {
		return policy.Key{}, fault.Forbidden("only platform administrators can change policy")
	}
	k, ok := policy.Lookup(key)
	if !ok {
		return policy.Key{}, fault.Invalid("key", "unknown policy key")
	}
	if err := k.Validate(value); err != nil {
		return policy.Key{}, err
	}
	err := s.d.Tx.InTx(ctx, func(ctx context.Context) error {
		old, err := s.d.Policies.Values(ctx, "")
		if err != nil {
			return err
		}
		if err := s.d.Policies.Set(ctx, "", k.Name, value, p.User.ID); err != nil {
			return err
		}
		return s.d.Audit.Record(ctx, audit.Event{
			ID: s.d.IDs.NewID(), OccurredAt: s.d.Clock.Now(), ActorType: audit.ActorUser, ActorID: p.User.ID,
			Action: "policy.set", ResourceType: "policy", ResourceID: k.Name, Outcome: audit.Success,
			CorrelationID: callctx.CorrelationID(ctx), SourceIP: callctx.SourceIP(ctx),
			Metadata: map[string]any{"key": k.Name, "old_value": old.String(k), "new_value": value},
		})
	})
	return k, err
}
