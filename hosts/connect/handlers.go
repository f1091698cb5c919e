package connecthost

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	"github.com/gpuaas/gpuaas/core/callctx"
	"github.com/gpuaas/gpuaas/core/fault"
	"github.com/gpuaas/gpuaas/core/inventory"
	"github.com/gpuaas/gpuaas/core/inventory/agentsvc"
	"github.com/gpuaas/gpuaas/core/nodetask"
	agentv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/agent/v1/agentv1connect"
	"github.com/gpuaas/gpuaas/hosts/internal/redact"
)

// handler decodes, calls a use case and encodes: no decisions of its own.
type handler struct {
	svc *agentsvc.Service
	log *slog.Logger
}

var _ agentv1connect.AgentServiceHandler = (*handler)(nil)

// fail logs server-side faults once, with the correlation id, and returns
// the Connect error.
func (h *handler) fail(ctx context.Context, procedure string, err error) error {
	// A call whose client went away (an agent stopping mid long-poll) is not
	// a server fault.
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return toConnect(err)
	}
	if fe := fault.From(err); fe.Kind == fault.KindInternal || fe.Kind == fault.KindUnavailable {
		h.log.ErrorContext(ctx, "agent call failed", "procedure", procedure,
			"correlation_id", callctx.CorrelationID(ctx), "node_id", nodeFrom(ctx), "error", redact.Text(err.Error()))
	} else {
		logUnaudited(ctx, h.log, procedure, err)
	}
	return toConnect(err)
}

func (h *handler) Enroll(ctx context.Context, req *connect.Request[agentv1.EnrollRequest]) (*connect.Response[agentv1.EnrollResponse], error) {
	e, err := h.svc.Enroll(ctx, agentsvc.EnrollRequest{
		BootstrapToken: req.Msg.GetBootstrapToken(), CSRDER: req.Msg.GetCsrDer(), AgentVersion: req.Msg.GetAgentVersion(),
	})
	if err != nil {
		return nil, h.fail(ctx, "Enroll", err)
	}
	return connect.NewResponse(&agentv1.EnrollResponse{
		NodeId: e.NodeID, CertChainPem: e.CertChainPEM, CaRootsPem: e.RootsPEM,
		TaskSigningPublicKey: e.TaskKey, TaskSigningKeyId: e.TaskKeyID,
	}), nil
}

func (h *handler) Renew(ctx context.Context, req *connect.Request[agentv1.RenewRequest]) (*connect.Response[agentv1.RenewResponse], error) {
	e, err := h.svc.Renew(ctx, nodeFrom(ctx), req.Msg.GetCsrDer())
	if err != nil {
		return nil, h.fail(ctx, "Renew", err)
	}
	return connect.NewResponse(&agentv1.RenewResponse{CertChainPem: e.CertChainPEM, CaRootsPem: e.RootsPEM,
		TaskSigningPublicKey: e.TaskKey, TaskSigningKeyId: e.TaskKeyID}), nil
}

func (h *handler) Heartbeat(ctx context.Context, req *connect.Request[agentv1.HeartbeatRequest]) (*connect.Response[agentv1.HeartbeatResponse], error) {
	hb := inventory.Heartbeat{AgentVersion: req.Msg.GetAgentVersion(), SSHHostKey: req.Msg.GetSshHostKey()}
	for _, g := range req.Msg.GetGpus() {
		hb.GPUs = append(hb.GPUs, inventory.GPU{Index: int(g.GetIndex()), UUID: g.GetUuid(), Model: g.GetModel(),
			MemoryMiB: int(g.GetMemoryMib()), Healthy: g.GetHealthy(), Source: g.GetSource()})
	}
	if hh := req.Msg.GetHealth(); hh != nil {
		hb.Health = inventory.Health{OK: hh.GetOk(), Checks: hh.GetChecks(), Message: hh.GetMessage()}
	}
	next, err := h.svc.Heartbeat(ctx, nodeFrom(ctx), hb)
	if err != nil {
		return nil, h.fail(ctx, "Heartbeat", err)
	}
	return connect.NewResponse(&agentv1.HeartbeatResponse{NextHeartbeatSeconds: int32(next / time.Second)}), nil
}

// PollTasks parks for up to 25 s in the use case, one call per connected
// agent: its frame is kept small (the answer is built in pollAnswer), since
// the parked depth of these goroutines decides their stacks' size
// (doc/performance.md, agent gateway at fleet scale).
func (h *handler) PollTasks(ctx context.Context, req *connect.Request[agentv1.PollTasksRequest]) (*connect.Response[agentv1.PollTasksResponse], error) {
	tasks, err := h.svc.PollTasks(ctx, nodeFrom(ctx), int(req.Msg.GetMax()), time.Duration(req.Msg.GetWaitSeconds())*time.Second)
	if err != nil {
		return nil, h.fail(ctx, "PollTasks", err)
	}
	return pollAnswer(tasks), nil
}

//go:noinline
func pollAnswer(tasks []nodetask.Task) *connect.Response[agentv1.PollTasksResponse] {
	out := &agentv1.PollTasksResponse{}
	for _, t := range tasks {
		out.Tasks = append(out.Tasks, EnvelopeToProto(t.Envelope))
	}
	return connect.NewResponse(out)
}

func (h *handler) ReportTaskResult(ctx context.Context, req *connect.Request[agentv1.ReportTaskResultRequest]) (*connect.Response[agentv1.ReportTaskResultResponse], error) {
	err := h.svc.ReportTaskResult(ctx, nodeFrom(ctx), nodetask.Result{
		TaskID: req.Msg.GetTaskId(), Succeeded: req.Msg.GetSucceeded(), ErrorCode: req.Msg.GetErrorCode(),
		ErrorMessage: req.Msg.GetErrorMessage(), Output: req.Msg.GetOutputJson(),
	})
	if err != nil {
		return nil, h.fail(ctx, "ReportTaskResult", err)
	}
	return connect.NewResponse(&agentv1.ReportTaskResultResponse{}), nil
}

// EnvelopeToProto encodes a signed envelope for the wire. Times travel as
// Unix nanoseconds: exactly what SigningBytes covers.
func EnvelopeToProto(e nodetask.Envelope) *agentv1.TaskEnvelope {
	return &agentv1.TaskEnvelope{
		TaskId: e.TaskID, NodeId: e.NodeID, Type: string(e.Type), ParamsJson: e.Params,
		IssuedAtUnixNano: e.IssuedAt.UnixNano(), ExpiresAtUnixNano: e.ExpiresAt.UnixNano(),
		Seq: e.Seq, KeyId: e.KeyID, Signature: e.Signature,
	}
}

// EnvelopeFromProto is EnvelopeToProto's inverse.
func EnvelopeFromProto(p *agentv1.TaskEnvelope) nodetask.Envelope {
	return nodetask.Envelope{
		TaskID: p.GetTaskId(), NodeID: p.GetNodeId(), Type: nodetask.Type(p.GetType()), Params: p.GetParamsJson(),
		IssuedAt: time.Unix(0, p.GetIssuedAtUnixNano()).UTC(), ExpiresAt: time.Unix(0, p.GetExpiresAtUnixNano()).UTC(),
		Seq: p.GetSeq(), KeyID: p.GetKeyId(), Signature: p.GetSignature(),
	}
}

// logUnaudited logs a refusal whose audit record could not be written: the
// caller is refused all the same, but the audit log has a gap to explain.
func logUnaudited(ctx context.Context, log *slog.Logger, procedure string, err error) {
	if errors.Is(err, agentsvc.ErrRefusalNotAudited) {
		log.ErrorContext(ctx, "refused agent call not audited", "procedure", procedure,
			"correlation_id", callctx.CorrelationID(ctx), "error", redact.Text(err.Error()))
	}
}
