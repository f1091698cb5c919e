import { queryOptions, type QueryClient } from "@tanstack/react-query";
import { api, unwrap, unwrapEmpty } from "../client";
import type { Allocation, AllocationState } from "../types";
import { TRANSITIONAL_STATES } from "../types";
import { streamLive } from "../stream";

export const computeKeys = {
  skus: ["skus"] as const,
  nodes: ["nodes"] as const,
  allocations: (projectId: string) => ["allocations", projectId] as const,
  allocationPage: (projectId: string, status: AllocationState | undefined, cursor: string | undefined) =>
    ["allocations", projectId, status ?? "all", cursor ?? ""] as const,
  allocation: (id: string) => ["allocation", id] as const,
  sshKeys: ["sshKeys"] as const,
};

export function skusQuery() {
  return queryOptions({
    queryKey: computeKeys.skus,
    queryFn: async () => (await unwrap(api.GET("/api/v1/skus"))).skus,
    // Availability is live: refresh while the page is open.
    refetchInterval: 15_000,
  });
}

export function nodesQuery() {
  return queryOptions({
    queryKey: computeKeys.nodes,
    queryFn: async () => (await unwrap(api.GET("/api/v1/nodes"))).nodes,
    refetchInterval: 30_000,
  });
}

/**
 * Polling with backoff while something is in motion: 1 s right after a
 * change, growing ×1.5 to 10 s while nothing changes; 30 s when settled.
 * While the notification stream is live it brings the outcomes (active,
 * failed, released, release failed) as they happen and the Shell refreshes
 * the allocation on them, so polling slows to 10 s in motion (for the steps
 * in between) and 60 s when settled; polling with backoff is the fallback.
 */
export function backoffInterval(changedAgoMs: number, moving: boolean, live = streamLive()): number {
  if (live) return moving ? 10_000 : 60_000;
  if (!moving) return 30_000;
  const steps = Math.floor(changedAgoMs / 3_000);
  return Math.min(10_000, Math.round(1_000 * Math.pow(1.5, steps)));
}

const lastChange = new Map<string, { sig: string; at: number }>();
function changedAgo(key: string, sig: string): number {
  const prev = lastChange.get(key);
  const now = Date.now();
  if (!prev || prev.sig !== sig) {
    lastChange.set(key, { sig, at: now });
    return 0;
  }
  return now - prev.at;
}

export function isMoving(a: Pick<Allocation, "state">): boolean {
  return TRANSITIONAL_STATES.includes(a.state);
}

export function allocationsQuery(projectId: string, status?: AllocationState, cursor?: string) {
  return queryOptions({
    queryKey: computeKeys.allocationPage(projectId, status, cursor),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/allocations", {
          params: { header: { "X-Project-ID": projectId }, query: { status, cursor, limit: 20 } },
        }),
      ),
    refetchInterval: (q) => {
      const page = q.state.data;
      if (!page) return false;
      const sig = page.allocations.map((a) => a.id + a.state).join();
      return backoffInterval(
        changedAgo("list:" + projectId + (status ?? ""), sig),
        page.allocations.some(isMoving),
      );
    },
  });
}

export function allocationQuery(id: string) {
  return queryOptions({
    queryKey: computeKeys.allocation(id),
    queryFn: () =>
      unwrap(api.GET("/api/v1/allocations/{allocation_id}", { params: { path: { allocation_id: id } } })),
    refetchInterval: (q) => {
      const a = q.state.data;
      if (!a) return false;
      if (a.state === "released" || a.state === "failed") return false;
      return backoffInterval(changedAgo("one:" + id, a.state), isMoving(a));
    },
  });
}

export function createAllocationMutation(qc: QueryClient, projectId: string) {
  return {
    mutationFn: (v: { sku_id: string; ssh_key_ids?: string[]; key: string }) =>
      unwrap(
        api.POST("/api/v1/allocations", {
          params: { header: { "X-Project-ID": projectId, "X-Idempotency-Key": v.key } },
          body: { sku_id: v.sku_id, ssh_key_ids: v.ssh_key_ids },
        }),
      ),
    onSuccess: (a: Allocation) => {
      qc.setQueryData(computeKeys.allocation(a.id), a);
      void qc.invalidateQueries({ queryKey: computeKeys.allocations(projectId) });
      void qc.invalidateQueries({ queryKey: computeKeys.skus });
    },
  };
}

export function releaseAllocationMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { id: string; key: string }) =>
      unwrap(
        api.POST("/api/v1/allocations/{allocation_id}/release", {
          params: { path: { allocation_id: v.id }, header: { "X-Idempotency-Key": v.key } },
        }),
      ),
    onSuccess: (a: Allocation) => {
      qc.setQueryData(computeKeys.allocation(a.id), a);
      void qc.invalidateQueries({ queryKey: ["allocations"] });
    },
  };
}

export function terminalToken(allocationId: string, projectId: string, sessionId?: string) {
  return unwrap(
    api.POST("/api/v1/allocations/{allocation_id}/terminal-token", {
      params: { path: { allocation_id: allocationId }, header: { "X-Project-ID": projectId } },
      body: sessionId ? { session_id: sessionId } : {},
    }),
  );
}

export function sshKeysQuery() {
  return queryOptions({
    queryKey: computeKeys.sshKeys,
    queryFn: async () => (await unwrap(api.GET("/api/v1/ssh-keys"))).ssh_keys,
  });
}

export function addSSHKeyMutation(qc: QueryClient) {
  return {
    mutationFn: (v: { name: string; public_key: string; key: string }) =>
      unwrap(
        api.POST("/api/v1/ssh-keys", {
          params: { header: { "X-Idempotency-Key": v.key } },
          body: { name: v.name, public_key: v.public_key },
        }),
      ),
    onSuccess: () => void qc.invalidateQueries({ queryKey: computeKeys.sshKeys }),
  };
}

export function deleteSSHKeyMutation(qc: QueryClient) {
  return {
    mutationFn: (id: string) =>
      unwrapEmpty(api.DELETE("/api/v1/ssh-keys/{key_id}", { params: { path: { key_id: id } } })),
    onSuccess: () => void qc.invalidateQueries({ queryKey: computeKeys.sshKeys }),
  };
}
