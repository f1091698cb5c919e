package connecthost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/hosts/internal/idempotency"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
	"github.com/gpuaas/gpuaas/ports"
)

// requestIDField is the field that carries a mutating RPC's idempotency
// key (AIP-155).
const requestIDField protoreflect.Name = "request_id"

// idempotent runs a mutating RPC at most once per caller and request_id,
// with the REST API's X-Idempotency-Key semantics on the same store
// (hosts/http/idempotency.go; doc/state-machines.md): a retry with the same
// request_id and the same fields gets the first call's response; other
// fields are idempotency_key_reused; a retry while the first call runs is
// idempotency_request_in_flight; one whose first call committed but failed
// before answering is idempotency_response_lost. The call's transactions
// mark the key committed with their own writes. A call that fails is not
// remembered unless it committed: a retry runs it again. Without a
// request_id the call simply runs.
func idempotent[Resp proto.Message](ctx context.Context, d RPCDeps, log *slog.Logger, procedure string, req proto.Message,
	newResp func() Resp, run func(ctx context.Context) (Resp, error)) (Resp, error) {
	var zero Resp
	key := req.ProtoReflect().Get(req.ProtoReflect().Descriptor().Fields().ByName(requestIDField)).String()
	if key == "" {
		return run(ctx)
	}
	if !ports.ValidIdempotencyKey(key) {
		return zero, fault.Invalid(string(requestIDField), "request_id must be 1-255 printable ASCII characters without spaces")
	}
	p := principalFrom(ctx)
	scope := "rpc:" + p.User.ID // apart from the same caller's REST keys
	fp, err := rpcFingerprint(procedure, p.User.ID, req)
	if err != nil {
		return zero, fault.Internal(err)
	}
	state, stored, err := d.Idempotency.Begin(ctx, scope, key, fp, idempotency.TTL(ctx, d.Policies, p.TenantID))
	if err == nil {
		err = idempotency.Refusal(state, string(requestIDField))
	}
	if err != nil {
		return zero, err
	}
	if state == ports.IdempotencyReplay {
		resp := newResp()
		if err := protojson.Unmarshal(stored.Body, resp); err != nil {
			return zero, fault.Internal(err)
		}
		return resp, nil
	}
	// The outcome is recorded even if the caller goes away.
	bg := context.WithoutCancel(ctx)
	resp, err := run(idempotency.MarkOnCommit(ctx, d.Idempotency, scope, key))
	if err != nil {
		if aerr := d.Idempotency.Abandon(bg, scope, key); aerr != nil {
			log.LogAttrs(bg, slog.LevelWarn, "idempotency abandon failed", slog.String("procedure", procedure),
				slog.String("error", redact.Text(aerr.Error())))
		}
		return zero, err
	}
	body, err := protojson.Marshal(resp)
	if err == nil {
		err = d.Idempotency.Complete(bg, scope, key, ports.StoredResponse{Status: 200, Body: body})
	}
	if err != nil {
		// The call succeeded: answer it. The key stays held (a retry hears
		// idempotency_response_lost), never run twice.
		log.LogAttrs(bg, slog.LevelWarn, "idempotency complete failed", slog.String("procedure", procedure),
			slog.String("error", redact.Text(err.Error())))
	}
	return resp, nil
}

// rpcFingerprint identifies "the same request": the procedure, the caller
// and the request's fields other than request_id, deterministically
// encoded.
func rpcFingerprint(procedure, userID string, req proto.Message) (string, error) {
	m := proto.Clone(req)
	m.ProtoReflect().Clear(m.ProtoReflect().Descriptor().Fields().ByName(requestIDField))
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, part := range []string{procedure, userID} {
		h.Write([]byte(strconv.Itoa(len(part)) + ":" + part + "\n"))
	}
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}
