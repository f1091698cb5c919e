package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.uber.org/fx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/gpuaas/gpuaas/adapters/system"
	"github.com/gpuaas/gpuaas/core/allocation/allocationsvc"
	"github.com/gpuaas/gpuaas/core/identity"
	"github.com/gpuaas/gpuaas/core/identity/authsvc"
	"github.com/gpuaas/gpuaas/core/identity/identitysvc"
	"github.com/gpuaas/gpuaas/core/identity/machinesvc"
	connecthost "github.com/gpuaas/gpuaas/hosts/connect"
	allocationsv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/allocations/v1"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/allocations/v1/allocationsv1connect"
	billingv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/billing/v1"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/billing/v1/billingv1connect"
	inventoryv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/inventory/v1"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/inventory/v1/inventoryv1connect"
	paymentsv1 "github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/payments/v1"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/payments/v1/paymentsv1connect"
	"github.com/gpuaas/gpuaas/ports"
	"github.com/gpuaas/gpuaas/testkit/seed"
	"github.com/gpuaas/gpuaas/testkit/tokens"
)

const testSSHKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl rpc@test"

// TestRPCServices calls every internal service through a Connect client
// and a plain gRPC client (grpc-go with the generated messages, no Connect
// code) with a service-account token over the real wiring of `gpuaas serve
// rpc`: health and reflection answer, the calls reach the same use cases as
// the REST API, a person's token and a personal API key are refused, and
// payments administration refuses every machine credential as the REST
// route does.
func TestRPCServices(t *testing.T) {
	t.Parallel()
	e := newLambdaEnv(t)
	iss := tokens.NewIssuer(t, tokens.WithAudience("gpuaas"))
	s := e.settings
	s.OIDCIssuer, s.OIDCAudience, s.RPCAddr, s.MetricsAddr = iss.URL(), "gpuaas", "127.0.0.1:0", ""
	var (
		srv      *connecthost.RPCServer
		auth     *authsvc.Service
		machines *machinesvc.Service
		ids      *identitysvc.Service
		verifier ports.TokenVerifier
		allocs   *allocationsvc.Service
	)
	app := fx.New(rpcOptions(s, slog.New(slog.NewTextHandler(io.Discard, nil))), fx.NopLogger,
		fx.Populate(&srv, &auth, &machines, &ids, &verifier, &allocs))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = app.Stop(context.Background()) }()
	base := "http://" + srv.Addr()

	// A tenant with credit, a free node, and a service account of its
	// project with a credential, a token and an SSH key.
	owner := seed.NewMember(t, e.db, 1_000_000)
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO nodes (id, name, sku_id, state, ssh_host, ssh_port, last_heartbeat_at)
		VALUES ($1, $2, 'h100-80g-x1', 'active', '127.0.0.1', 22, now())`, system.UUIDs{}.NewID(), "rpc-node-"+owner.ProjectID[:8]); err != nil {
		t.Fatal(err)
	}
	sa, err := machines.CreateServiceAccount(ctx, owner.Principal, owner.ProjectID, "ci", identity.ProjectMember)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := machines.CreateCredential(ctx, owner.Principal, owner.ProjectID, sa.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.IssueServiceToken(ctx, cred.ClientID, cred.Secret)
	if err != nil {
		t.Fatal(err)
	}
	saPrincipal, err := auth.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := allocs.AddSSHKey(ctx, saPrincipal, "ci", testSSHKey); err != nil {
		t.Fatal(err)
	}
	bearer := "Bearer " + tok.AccessToken

	// --- Connect clients ---
	authz := connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", bearerFrom(ctx, bearer))
			return next(ctx, req)
		}
	}))
	ac := allocationsv1connect.NewAllocationServiceClient(http.DefaultClient, base, authz)
	createReq := &allocationsv1.CreateAllocationRequest{
		ProjectId: owner.ProjectID, SkuId: "h100-80g-x1", MaxTotalCostMinor: 10_000, RequestId: "ci-run-1"}
	created, err := ac.CreateAllocation(ctx, connect.NewRequest(createReq))
	if err != nil {
		t.Fatalf("connect CreateAllocation: %v (%s)", err, connecthost.FaultCode(err))
	}
	a := created.Msg.Allocation
	if a.State != "requested" || a.ProjectId != owner.ProjectID || a.MaxTotalCostMinor != 10_000 {
		t.Fatalf("created %+v", a)
	}
	// A retry with the same request_id (AIP-155) answers the first call's
	// allocation, over either protocol; with other fields it is refused; a
	// request_id that is not a key is invalid. (The list below holds one
	// allocation.)
	again, err := ac.CreateAllocation(ctx, connect.NewRequest(createReq))
	if err != nil || again.Msg.Allocation.Id != a.Id {
		t.Fatalf("connect CreateAllocation retried: %v %v (%s); want allocation %s again", again, err, connecthost.FaultCode(err), a.Id)
	}
	changed := proto.Clone(createReq).(*allocationsv1.CreateAllocationRequest)
	changed.MaxTotalCostMinor = 20_000
	if _, err := ac.CreateAllocation(ctx, connect.NewRequest(changed)); connect.CodeOf(err) != connect.CodeFailedPrecondition ||
		connecthost.FaultCode(err) != "idempotency_key_reused" {
		t.Fatalf("same request_id, other fields: %v (%s)", err, connecthost.FaultCode(err))
	}
	badID := proto.Clone(createReq).(*allocationsv1.CreateAllocationRequest)
	badID.RequestId = "not a key"
	if _, err := ac.CreateAllocation(ctx, connect.NewRequest(badID)); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("request_id with spaces: %v", err)
	}
	got, err := ac.GetAllocation(ctx, connect.NewRequest(&allocationsv1.GetAllocationRequest{AllocationId: a.Id}))
	if err != nil || got.Msg.Allocation.Id != a.Id {
		t.Fatalf("connect GetAllocation: %v %v", got, err)
	}
	skus, err := inventoryv1connect.NewInventoryServiceClient(http.DefaultClient, base, authz).
		ListSkus(ctx, connect.NewRequest(&inventoryv1.ListSkusRequest{}))
	if err != nil || len(skus.Msg.Skus) == 0 {
		t.Fatalf("connect ListSkus: %v %v", skus, err)
	}
	// The service account's default scopes decide billing: whatever the
	// REST API answers this credential, the RPC answers the same.
	_, balErr := billingv1connect.NewBillingServiceClient(http.DefaultClient, base, authz).
		GetBalance(ctx, connect.NewRequest(&billingv1.GetBalanceRequest{}))
	if balErr != nil && connecthost.FaultCode(balErr) != string(connecthost.CodeInsufficientScope) {
		t.Fatalf("connect GetBalance: %v", balErr)
	}
	_, err = paymentsv1connect.NewPaymentsAdminServiceClient(http.DefaultClient, base, authz).
		ListPaymentSessions(ctx, connect.NewRequest(&paymentsv1.ListPaymentSessionsRequest{}))
	if connect.CodeOf(err) != connect.CodePermissionDenied || connecthost.FaultCode(err) != "interactive_required" {
		t.Fatalf("connect ListPaymentSessions with a service account: %v (%s)", err, connecthost.FaultCode(err))
	}
	// Another project's id is not found, as on the REST API.
	_, err = ac.ListAllocations(ctx, connect.NewRequest(&allocationsv1.ListAllocationsRequest{ProjectId: system.UUIDs{}.NewID()}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("another project: %v", err)
	}

	// --- a plain gRPC client ---
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	gctx := metadata.AppendToOutgoingContext(ctx, "authorization", bearer)
	gagain := &allocationsv1.CreateAllocationResponse{}
	if err := conn.Invoke(gctx, allocationsv1connect.AllocationServiceCreateAllocationProcedure, createReq, gagain); err != nil ||
		gagain.Allocation.Id != a.Id {
		t.Fatalf("grpc CreateAllocation retried: %v %v; want allocation %s again", gagain, err, a.Id)
	}
	list := &allocationsv1.ListAllocationsResponse{}
	if err := conn.Invoke(gctx, allocationsv1connect.AllocationServiceListAllocationsProcedure,
		&allocationsv1.ListAllocationsRequest{ProjectId: owner.ProjectID}, list); err != nil || len(list.Allocations) != 1 || list.Allocations[0].Id != a.Id {
		t.Fatalf("grpc ListAllocations: %v %v", list, err)
	}
	rel := &allocationsv1.ReleaseAllocationResponse{}
	if err := conn.Invoke(gctx, allocationsv1connect.AllocationServiceReleaseAllocationProcedure,
		&allocationsv1.ReleaseAllocationRequest{AllocationId: a.Id}, rel); err != nil || rel.Allocation.State != "releasing" {
		t.Fatalf("grpc ReleaseAllocation: %v %v", rel, err)
	}
	gskus := &inventoryv1.ListSkusResponse{}
	if err := conn.Invoke(gctx, inventoryv1connect.InventoryServiceListSkusProcedure, &inventoryv1.ListSkusRequest{}, gskus); err != nil || len(gskus.Skus) == 0 {
		t.Fatalf("grpc ListSkus: %v %v", gskus, err)
	}
	err = conn.Invoke(gctx, billingv1connect.BillingServiceGetBalanceProcedure, &billingv1.GetBalanceRequest{}, &billingv1.GetBalanceResponse{})
	if (err == nil) != (balErr == nil) {
		t.Fatalf("grpc GetBalance %v, connect %v: the two protocols disagree", err, balErr)
	}
	err = conn.Invoke(gctx, paymentsv1connect.PaymentsAdminServiceListPaymentSessionsProcedure, &paymentsv1.ListPaymentSessionsRequest{},
		&paymentsv1.ListPaymentSessionsResponse{})
	if status.Code(err).String() != "PermissionDenied" {
		t.Fatalf("grpc ListPaymentSessions: %v", err)
	}
	hc, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: allocationsv1connect.AllocationServiceName})
	if err != nil || hc.Status != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Fatalf("grpc health: %v %v", hc, err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	rs, err := grpc_reflection_v1.NewServerReflectionClient(conn).ServerReflectionInfo(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&grpc_reflection_v1.ServerReflectionRequest{
		MessageRequest: &grpc_reflection_v1.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	rr, err := rs.Recv()
	if err != nil || len(rr.GetListServicesResponse().GetService()) < len(connecthost.RPCServiceNames) {
		t.Fatalf("reflection: %v %v", rr, err)
	}
	_ = rs.CloseSend()

	// --- credentials that are not a service account's ---
	userTok := iss.Mint(t, tokens.Subject("rpc-person"), tokens.Email("rpc-person@example.com"), tokens.Name("P"))
	claims, err := verifier.Verify(ctx, userTok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ids.SignIn(ctx, claims); err != nil {
		t.Fatal(err)
	}
	key, err := machines.CreateAPIKey(ctx, owner.Principal, machinesvc.CreateKeyRequest{Name: "k", ProjectID: owner.ProjectID,
		Scopes: []string{"read", "allocations"}})
	if err != nil {
		t.Fatal(err)
	}
	// A personal API key is refused too (seed's owner has no membership
	// row, so its key does not even resolve; either way, no answer).
	if _, err := inventoryv1connect.NewInventoryServiceClient(http.DefaultClient, base, authz).
		ListSkus(withBearer(ctx, "Bearer "+key.Secret), connect.NewRequest(&inventoryv1.ListSkusRequest{})); err == nil {
		t.Fatal("a personal API key was served")
	}
	for name, cred := range map[string]string{"a person's token": userTok, "no token": ""} {
		hdr := "Bearer " + cred
		if cred == "" {
			hdr = ""
		}
		ictx := withBearer(ctx, hdr)
		_, err := inventoryv1connect.NewInventoryServiceClient(http.DefaultClient, base, authz).
			ListSkus(ictx, connect.NewRequest(&inventoryv1.ListSkusRequest{}))
		want := connect.CodePermissionDenied
		if cred == "" {
			want = connect.CodeUnauthenticated
		}
		if connect.CodeOf(err) != want {
			t.Fatalf("connect with %s: %v; want %v", name, err, want)
		}
		gerr := conn.Invoke(metadata.AppendToOutgoingContext(ctx, "authorization", hdr),
			inventoryv1connect.InventoryServiceListSkusProcedure, &inventoryv1.ListSkusRequest{}, &inventoryv1.ListSkusResponse{})
		if !strings.EqualFold(status.Code(gerr).String(), want.String()) && !(want == connect.CodePermissionDenied && status.Code(gerr).String() == "PermissionDenied") {
			t.Fatalf("grpc with %s: %v; want %v", name, gerr, want)
		}
		if cred != "" && connecthost.FaultCode(err) != string(connecthost.CodeServiceAccountRequired) {
			t.Fatalf("connect with %s: code %q", name, connecthost.FaultCode(err))
		}
	}
}

type bearerKey struct{}

func withBearer(ctx context.Context, v string) context.Context {
	return context.WithValue(ctx, bearerKey{}, &v)
}

func bearerFrom(ctx context.Context, def string) string {
	if v, ok := ctx.Value(bearerKey{}).(*string); ok {
		return *v
	}
	return def
}

func TestRPCAppValidates(t *testing.T) {
	t.Parallel()
	if err := fx.ValidateApp(rpcOptions(testSettings(t, nil), slog.New(slog.NewTextHandler(io.Discard, nil)))); err != nil {
		t.Fatal(err)
	}
}
