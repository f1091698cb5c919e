package nodeagent

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/gpuaas/gpuaas/core/nodetask"
	agentv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1"
)

// Stable codes the agent reports when it refuses a task. Nothing runs for
// a refused task.
const (
	CodeBadSignature = "bad_signature"
	CodeReplayed     = "replayed"
	CodeExpired      = "expired"
	CodeWrongNode    = "wrong_node"
	CodeUnknownType  = "unknown_type"
	CodeBadParams    = "bad_params"
	// CodeExecutionFailed: the task was valid but its handler failed.
	CodeExecutionFailed = "execution_failed"
)

// Refusal is why a task was not run.
type Refusal struct {
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Message }

// DefaultClockSkew is how far in the future a task's issued-at may lie
// (the control plane's clock may run ahead of the node's).
const DefaultClockSkew = 2 * time.Minute

// Verifier checks signed task envelopes for one node.
type Verifier struct {
	NodeID string
	Key    ed25519.PublicKey
	KeyID  string
	Now    func() time.Time
	Skew   time.Duration
	Replay *ReplayWindow
}

// Verify checks, in this order: the key id and Ed25519 signature over
// SigningBytes, that the task is for this node, that it is within its
// validity window, that its sequence number is new, that its type is in
// the catalogue and that its parameters validate. Only a task that passes
// every check is marked seen; it returns the decoded parameters.
func (v *Verifier) Verify(e nodetask.Envelope) (any, *Refusal) {
	if len(v.Key) != ed25519.PublicKeySize {
		return nil, &Refusal{CodeBadSignature, "no task signing key is enrolled"}
	}
	if e.KeyID != v.KeyID {
		return nil, &Refusal{CodeBadSignature, "task signed with an unknown key id"}
	}
	if len(e.Signature) != ed25519.SignatureSize || !ed25519.Verify(v.Key, e.SigningBytes(), e.Signature) {
		return nil, &Refusal{CodeBadSignature, "task signature does not verify"}
	}
	if e.NodeID != v.NodeID {
		return nil, &Refusal{CodeWrongNode, "task is for another node"}
	}
	now := v.Now()
	skew := v.Skew
	if skew == 0 {
		skew = DefaultClockSkew
	}
	if !now.Before(e.ExpiresAt) {
		return nil, &Refusal{CodeExpired, "task expired"}
	}
	if e.IssuedAt.After(now.Add(skew)) || !e.IssuedAt.Before(e.ExpiresAt) {
		return nil, &Refusal{CodeExpired, "task is not valid yet"}
	}
	if err := v.Replay.Check(e.TaskID, e.Seq); err != nil {
		return nil, &Refusal{CodeReplayed, err.Error()}
	}
	if !nodetask.Known(e.Type) {
		_ = v.Replay.Mark(e.TaskID, e.Seq)
		return nil, &Refusal{CodeUnknownType, fmt.Sprintf("task type %q is not in the catalogue", e.Type)}
	}
	params, err := nodetask.ValidateParams(e.Type, e.Params)
	if err != nil {
		_ = v.Replay.Mark(e.TaskID, e.Seq)
		return nil, &Refusal{CodeBadParams, err.Error()}
	}
	if err := v.Replay.Mark(e.TaskID, e.Seq); err != nil {
		// Refuse what cannot be remembered: running it could let it run twice.
		return nil, &Refusal{CodeReplayed, "replay window cannot be saved: " + err.Error()}
	}
	return params, nil
}

// maxEnvelopeBytes bounds one encoded envelope.
const maxEnvelopeBytes = 256 << 10

// DecodeEnvelope decodes a wire TaskEnvelope (protobuf) into the envelope
// the signature covers. It checks only the shape; Verify checks the rest.
func DecodeEnvelope(b []byte) (nodetask.Envelope, error) {
	if len(b) > maxEnvelopeBytes {
		return nodetask.Envelope{}, errors.New("envelope too large")
	}
	var p agentv1.TaskEnvelope
	if err := proto.Unmarshal(b, &p); err != nil {
		return nodetask.Envelope{}, fmt.Errorf("envelope does not decode: %w", err)
	}
	return envelopeFromProto(&p)
}

func envelopeFromProto(p *agentv1.TaskEnvelope) (nodetask.Envelope, error) {
	if len(p.GetParamsJson()) > 0 && !json.Valid(p.GetParamsJson()) {
		return nodetask.Envelope{}, errors.New("envelope parameters are not JSON")
	}
	return nodetask.Envelope{
		TaskID: p.GetTaskId(), NodeID: p.GetNodeId(), Type: nodetask.Type(p.GetType()), Params: p.GetParamsJson(),
		IssuedAt: time.Unix(0, p.GetIssuedAtUnixNano()).UTC(), ExpiresAt: time.Unix(0, p.GetExpiresAtUnixNano()).UTC(),
		Seq: p.GetSeq(), KeyID: p.GetKeyId(), Signature: p.GetSignature(),
	}, nil
}
