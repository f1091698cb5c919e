package tasksvc

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"time"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/nodetask"
	"github.com/gpuaas/gpuaas/ports"
)

// Config tunes the service.
type Config struct {
	// TTL is how long a task stays valid after it is issued. Default
	// nodetask.DefaultTTL; at most one hour, so a stolen envelope is
	// useless soon.
	TTL time.Duration
	// WaitSlice bounds one blocking wait for a result; the service re-reads
	// the task after each slice, so a lost notification costs at most this.
	// Default 5s.
	WaitSlice time.Duration
}

// CheckAndSetDefaults validates the config and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if c.TTL < 0 || c.WaitSlice < 0 {
		return errors.New("tasksvc: durations must not be negative")
	}
	if c.TTL == 0 {
		c.TTL = nodetask.DefaultTTL
	}
	if c.TTL > time.Hour {
		return errors.New("tasksvc: TTL must be at most one hour")
	}
	if c.WaitSlice == 0 {
		c.WaitSlice = 5 * time.Second
	}
	return nil
}

// Deps are the ports the service needs.
type Deps struct {
	Tasks  ports.TaskQueue
	Signer ports.Signer
	Clock  ports.Clock
	IDs    ports.IDs
}

// Service enqueues signed tasks and waits for their outcome.
type Service struct {
	cfg Config
	d   Deps
}

// New checks the config and that every dependency is present. The signer
// must hold an Ed25519 key: that is the only algorithm agents verify.
func New(cfg Config, d Deps) (*Service, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if d.Tasks == nil || d.Signer == nil || d.Clock == nil || d.IDs == nil {
		return nil, errors.New("tasksvc: every dependency is required")
	}
	if _, ok := d.Signer.Public().(ed25519.PublicKey); !ok {
		return nil, errors.New("tasksvc: the task signer must hold an Ed25519 key")
	}
	if d.Signer.KeyID() == "" {
		return nil, errors.New("tasksvc: the task signer has no key id")
	}
	return &Service{cfg: cfg, d: d}, nil
}

// Enqueue validates params for the type, then queues a task for the node:
// the store assigns the node's next sequence number and the service signs
// the envelope inside the same transaction. params is the type's parameter
// struct (or its JSON); it is stored as the JSON that was signed.
func (s *Service) Enqueue(ctx context.Context, nodeID string, typ nodetask.Type, params any, allocationID string) (nodetask.Task, error) {
	if !nodetask.Known(typ) {
		return nodetask.Task{}, fault.Invalid("type", "unknown task type "+string(typ))
	}
	raw, err := canonicalParams(params)
	if err != nil {
		return nodetask.Task{}, err
	}
	if _, err := nodetask.ValidateParams(typ, raw); err != nil {
		return nodetask.Task{}, err
	}
	now := s.d.Clock.Now()
	t := nodetask.Task{
		Envelope: nodetask.Envelope{
			TaskID: s.d.IDs.NewID(), NodeID: nodeID, Type: typ, Params: raw,
			IssuedAt: now, ExpiresAt: now.Add(s.cfg.TTL),
		},
		AllocationID: allocationID,
		State:        nodetask.Queued,
	}
	return s.d.Tasks.Enqueue(ctx, t, func(e nodetask.Envelope) (nodetask.Envelope, error) {
		return Sign(ctx, s.d.Signer, e)
	})
}

// Sign sets the signer's key id on e and signs e.SigningBytes.
func Sign(ctx context.Context, signer ports.Signer, e nodetask.Envelope) (nodetask.Envelope, error) {
	e.KeyID = signer.KeyID()
	e.Signature = nil
	sig, err := signer.Sign(ctx, e.SigningBytes())
	if err != nil {
		return e, fault.Unavailable("task signer unavailable", err)
	}
	e.Signature = sig
	return e, nil
}

// canonicalParams renders params as the JSON that will be signed. A struct
// marshals deterministically; raw JSON is compacted so whitespace does not
// matter to the caller.
func canonicalParams(params any) (json.RawMessage, error) {
	switch p := params.(type) {
	case nil:
		return nil, fault.Invalid("params", "parameters are required")
	case json.RawMessage:
		return compact(p)
	case []byte:
		return compact(p)
	}
	b, err := json.Marshal(params)
	if err != nil {
		return nil, fault.Invalid("params", "parameters do not encode as JSON")
	}
	return b, nil
}

func compact(b []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, fault.Invalid("params", "parameters are not valid JSON")
	}
	return buf.Bytes(), nil
}

// Wait blocks until the task has its outcome, it expires, or ctx ends. A
// task that failed or expired is returned with Succeeded false and a nil
// error (its ErrorCode says why: the agent's code, or "expired"); the error
// is for the queue itself being unreachable, an unknown task or ctx.
func (s *Service) Wait(ctx context.Context, taskID string) (nodetask.Result, error) {
	for {
		t, err := s.d.Tasks.GetTask(ctx, taskID)
		if err != nil {
			return nodetask.Result{}, err
		}
		if t.State.Done() && t.Result != nil {
			return *t.Result, nil
		}
		now := s.d.Clock.Now()
		if !now.Before(t.ExpiresAt) {
			// Nobody may have swept yet: expire it here so the outcome is
			// recorded (and final) before we report it.
			if _, err := s.d.Tasks.ExpireOverdue(ctx, now); err != nil {
				return nodetask.Result{}, err
			}
			continue
		}
		slice := min(s.cfg.WaitSlice, t.ExpiresAt.Sub(now))
		if err := s.d.Tasks.WaitForDone(ctx, taskID, slice); err != nil {
			return nodetask.Result{}, err
		}
	}
}

// RunTask enqueues a task and waits until the agent reports it done or it
// expires: the one call a provisioning activity makes. It is not
// idempotent by itself — a retried activity enqueues a fresh task (with a
// new sequence number); the task handlers on the agent are idempotent, so
// running provision_user or revoke_user twice is harmless.
func (s *Service) RunTask(ctx context.Context, nodeID string, typ nodetask.Type, params any, allocationID string) (nodetask.Result, error) {
	t, err := s.Enqueue(ctx, nodeID, typ, params, allocationID)
	if err != nil {
		return nodetask.Result{}, err
	}
	return s.Wait(ctx, t.TaskID)
}
