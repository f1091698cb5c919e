package connecthost

import (
	"fmt"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/allocations/v1/allocationsv1connect"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/billing/v1/billingv1connect"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/inventory/v1/inventoryv1connect"
	"github.com/gpuaas/gpuaas/hosts/connect/gen/gpuaas/payments/v1/paymentsv1connect"
)

// Every internal RPC has a decision, and it is the decision (x-authz) and
// scope (x-scope) of its REST operation in the contract: the two hosts
// authorise the same way.
func TestRPCDecisionsMatchTheContract(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromFile("../../doc/api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]*openapi3.Operation{}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			ops[op.OperationID] = op
		}
	}
	procedures := []string{
		allocationsv1connect.AllocationServiceCreateAllocationProcedure,
		allocationsv1connect.AllocationServiceGetAllocationProcedure,
		allocationsv1connect.AllocationServiceListAllocationsProcedure,
		allocationsv1connect.AllocationServiceReleaseAllocationProcedure,
		inventoryv1connect.InventoryServiceListSkusProcedure,
		billingv1connect.BillingServiceGetBalanceProcedure,
		billingv1connect.BillingServiceListLedgerEntriesProcedure,
		paymentsv1connect.PaymentsAdminServiceListPaymentSessionsProcedure,
	}
	if len(procedures) != len(rpcDecisions) {
		t.Fatalf("%d procedures listed, %d decisions: keep them together", len(procedures), len(rpcDecisions))
	}
	for _, proc := range procedures {
		d, ok := rpcDecisions[proc]
		if !ok {
			t.Fatalf("%s has no decision", proc)
		}
		op := ops[d.operation]
		if op == nil {
			t.Fatalf("%s: operation %q is not in the contract", proc, d.operation)
		}
		if got := fmt.Sprint(op.Extensions["x-authz"]); got != string(d.authz) {
			t.Errorf("%s: authz %q, the contract's %s says %q", proc, d.authz, d.operation, got)
		}
		if got := fmt.Sprint(op.Extensions["x-scope"]); got != string(d.scope) {
			t.Errorf("%s: scope %q, the contract's %s says %q", proc, d.scope, d.operation, got)
		}
	}
}
