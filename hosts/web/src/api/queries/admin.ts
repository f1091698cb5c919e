import { queryOptions, type QueryClient } from "@tanstack/react-query";
import { api, unwrap, unwrapEmpty } from "../client";
import type { AllocationState, NodeState, PaymentSessionStatus } from "../types";

export interface AuditFilter {
  tenant_id?: string;
  actor_id?: string;
  action?: string;
  since?: string;
  until?: string;
}

export const adminKeys = {
  nodes: (state?: NodeState) => ["admin", "nodes", state ?? "all"] as const,
  allocations: (status?: AllocationState, cursor?: string) =>
    ["admin", "allocations", status ?? "all", cursor ?? ""] as const,
  policies: ["admin", "policies"] as const,
  audit: (f: AuditFilter, cursor?: string) => ["admin", "audit", f, cursor ?? ""] as const,
  payments: (status?: PaymentSessionStatus, cursor?: string) =>
    ["admin", "payments", status ?? "all", cursor ?? ""] as const,
};

export function adminNodesQuery(state?: NodeState) {
  return queryOptions({
    queryKey: adminKeys.nodes(state),
    queryFn: async () =>
      (await unwrap(api.GET("/api/v1/admin/nodes", { params: { query: { state } } }))).nodes,
    refetchInterval: 15_000,
  });
}

export function registerNodeMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { name: string; sku_id: string; ssh_host: string; ssh_port?: number; key: string }) =>
      unwrap(
        api.POST("/api/v1/admin/nodes", {
          params: { header: { "X-Idempotency-Key": v.key } },
          body: { name: v.name, sku_id: v.sku_id, ssh_host: v.ssh_host, ssh_port: v.ssh_port ?? 22 },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "nodes"] }),
  };
}

export function probeNodeMutation() {
  return {
    mutationFn: (id: string) =>
      unwrap(api.POST("/api/v1/admin/nodes/{node_id}/probe", { params: { path: { node_id: id } } })),
  };
}

export function maintenanceMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { id: string; on: boolean }) =>
      v.on
        ? unwrap(
            api.PUT("/api/v1/admin/nodes/{node_id}/maintenance", { params: { path: { node_id: v.id } } }),
          )
        : unwrap(
            api.DELETE("/api/v1/admin/nodes/{node_id}/maintenance", { params: { path: { node_id: v.id } } }),
          ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "nodes"] }),
  };
}

export function retireNodeMutation(qc: QueryClient) {
  return {
    mutationFn: (id: string) =>
      unwrapEmpty(api.DELETE("/api/v1/admin/nodes/{node_id}", { params: { path: { node_id: id } } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "nodes"] }),
  };
}

export function adminAllocationsQuery(status?: AllocationState, cursor?: string) {
  return queryOptions({
    queryKey: adminKeys.allocations(status, cursor),
    queryFn: () =>
      unwrap(api.GET("/api/v1/admin/allocations", { params: { query: { status, cursor, limit: 20 } } })),
    refetchInterval: 10_000,
  });
}

export function forceReleaseMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { id: string; key: string }) =>
      unwrap(
        api.POST("/api/v1/admin/allocations/{allocation_id}/force-release", {
          params: { path: { allocation_id: v.id }, header: { "X-Idempotency-Key": v.key } },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["admin", "allocations"] }),
  };
}

export function creditMutation() {
  return {
    mutationFn: (v: {
      tenant_id: string;
      amount_minor: number;
      currency: string;
      reason: string;
      key: string;
    }) =>
      unwrap(
        api.POST("/api/v1/admin/tenants/{tenant_id}/credits", {
          params: { path: { tenant_id: v.tenant_id }, header: { "X-Idempotency-Key": v.key } },
          body: { amount_minor: v.amount_minor, currency: v.currency, reason: v.reason },
        }),
      ),
  };
}

export function refundMutation() {
  return {
    mutationFn: (v: {
      tenant_id: string;
      amount_minor: number;
      reason: string;
      credit_entry_id?: string;
      key: string;
    }) =>
      unwrap(
        api.POST("/api/v1/admin/tenants/{tenant_id}/refunds", {
          params: { path: { tenant_id: v.tenant_id }, header: { "X-Idempotency-Key": v.key } },
          body: {
            amount_minor: v.amount_minor,
            reason: v.reason,
            credit_entry_id: v.credit_entry_id || undefined,
          },
        }),
      ),
  };
}

export function policiesQuery() {
  return queryOptions({
    queryKey: adminKeys.policies,
    queryFn: async () => (await unwrap(api.GET("/api/v1/admin/policies"))).policies,
  });
}

export function setPolicyMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { key: string; value: string; idem: string }) =>
      unwrap(
        api.PUT("/api/v1/admin/policies", {
          params: { header: { "X-Idempotency-Key": v.idem } },
          body: { key: v.key, value: v.value },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: adminKeys.policies }),
  };
}

export function auditQuery(f: AuditFilter, cursor?: string) {
  return queryOptions({
    queryKey: adminKeys.audit(f, cursor),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/admin/audit-log", {
          params: {
            query: {
              tenant_id: f.tenant_id || undefined,
              actor_id: f.actor_id || undefined,
              action: f.action || undefined,
              since: f.since || undefined,
              until: f.until || undefined,
              cursor,
              limit: 50,
            },
          },
        }),
      ),
  });
}

export function paymentSessionsQuery(status?: PaymentSessionStatus, cursor?: string) {
  return queryOptions({
    queryKey: adminKeys.payments(status, cursor),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/admin/payments/sessions", { params: { query: { status, cursor, limit: 20 } } }),
      ),
  });
}
