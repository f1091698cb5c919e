import { queryOptions, type QueryClient } from "@tanstack/react-query";
import { api, download, unwrap } from "../client";
import type { StorageEntry } from "../types";

// Project storage (doc/storage.md). Every call names its project in
// X-Project-ID so a project switch mid-flight never touches another's files.

export const storageKeys = {
  all: (projectId: string) => ["storage", projectId] as const,
  list: (projectId: string, dir: string, cursor?: string) =>
    ["storage", projectId, "list", dir, cursor ?? ""] as const,
  usage: (projectId: string) => ["storage", projectId, "usage"] as const,
};

/** Joins a folder ("/" or "/a/b") and a name into a path. */
export function joinPath(dir: string, name: string): string {
  return (dir.endsWith("/") ? dir : dir + "/") + name;
}

/** The folder above a path ("/" for top-level entries). */
export function parentPath(path: string): string {
  const i = path.replace(/\/+$/, "").lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** "/a/b" → [{name: "a", path: "/a"}, {name: "b", path: "/a/b"}]. */
export function crumbs(path: string): { name: string; path: string }[] {
  const out: { name: string; path: string }[] = [];
  let acc = "";
  for (const seg of path.split("/").filter(Boolean)) {
    acc += "/" + seg;
    out.push({ name: seg, path: acc });
  }
  return out;
}

export function storageListQuery(projectId: string, dir: string, cursor?: string) {
  return queryOptions({
    queryKey: storageKeys.list(projectId, dir, cursor),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/storage/list", {
          params: { header: { "X-Project-ID": projectId }, query: { path: dir, cursor, limit: 100 } },
        }),
      ),
  });
}

export function storageUsageQuery(projectId: string) {
  return queryOptions({
    queryKey: storageKeys.usage(projectId),
    queryFn: () =>
      unwrap(api.GET("/api/v1/storage/usage", { params: { header: { "X-Project-ID": projectId } } })),
    refetchInterval: 60_000,
  });
}

export function invalidateStorage(qc: QueryClient, projectId: string) {
  void qc.invalidateQueries({ queryKey: storageKeys.all(projectId) });
}

export function mkdirMutation(qc: QueryClient, projectId: string) {
  return {
    mutationFn: (v: { path: string; key: string }) =>
      unwrap(
        api.POST("/api/v1/storage/mkdir", {
          params: { header: { "X-Project-ID": projectId, "X-Idempotency-Key": v.key } },
          body: { path: v.path },
        }),
      ),
    onSuccess: () => invalidateStorage(qc, projectId),
  };
}

export function renameMutation(qc: QueryClient, projectId: string) {
  return {
    mutationFn: (v: { from: string; to: string; key: string }) =>
      unwrap(
        api.POST("/api/v1/storage/rename", {
          params: { header: { "X-Project-ID": projectId, "X-Idempotency-Key": v.key } },
          body: { from: v.from, to: v.to },
        }),
      ),
    onSuccess: () => invalidateStorage(qc, projectId),
  };
}

export function deleteMutation(qc: QueryClient, projectId: string) {
  return {
    mutationFn: (v: { entry: StorageEntry; key: string }) =>
      unwrap(
        api.DELETE("/api/v1/storage/delete", {
          params: {
            header: { "X-Project-ID": projectId, "X-Idempotency-Key": v.key },
            query: { path: v.entry.path, recursive: v.entry.kind === "dir" },
          },
        }),
      ),
    onSuccess: () => invalidateStorage(qc, projectId),
  };
}

/**
 * Files up to this size download through the API into memory and are saved
 * from there; larger ones through a presigned GET the browser streams to
 * disk itself (the URL is valid 15 minutes and names this file only).
 */
export const API_DOWNLOAD_MAX = 100 * 1024 * 1024;

export async function downloadFile(projectId: string, entry: StorageEntry): Promise<void> {
  if (entry.size_bytes <= API_DOWNLOAD_MAX) {
    await download(`/api/v1/storage/download?path=${encodeURIComponent(entry.path)}`, entry.name, {
      "X-Project-ID": projectId,
    });
    return;
  }
  const p = await unwrap(
    api.POST("/api/v1/storage/presign", {
      params: { header: { "X-Project-ID": projectId } },
      body: { path: entry.path, method: "GET" },
    }),
  );
  if (!p.request) throw new Error("presign answered without a request");
  const a = document.createElement("a");
  a.href = p.request.url;
  a.rel = "noopener noreferrer";
  a.download = entry.name;
  document.body.appendChild(a);
  a.click();
  a.remove();
}
