// File uploads with progress. fetch() reports no upload progress, so the
// bytes go through XMLHttpRequest (the Transport; tests pass a fake):
//  - through the API: PUT /storage/upload streams the body to the object
//    store (no JSON limit; the API's ceiling is 64 GiB), with the session's
//    token, one refresh on 401 and the same retry as every other call;
//  - direct, when the console may reach the object store (the Go handler
//    puts its origin in the CSP and says so in <meta name="gpuaas-direct-
//    uploads">) and the file is large: POST /storage/presign reserves the
//    quota and signs one PUT, or one URL per part over 5 GiB; the parts go
//    up three at a time, each retried, and POST /storage/presign/complete
//    records the file with the parts' ETags (doc/storage.md).
import { api, newId, unwrap } from "./client";
import { ApiError, toApiError } from "./errors";
import { getSession, refresh } from "./session";
import type { StorageEntry, StorageSignedRequest } from "./types";

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Blob;
  onProgress?: (loaded: number) => void;
  signal?: AbortSignal;
}
export interface HttpReply {
  status: number;
  headers: Headers;
  text: string;
}
export type Transport = (r: HttpRequest) => Promise<HttpReply>;

function parseHeaders(raw: string): Headers {
  const h = new Headers();
  for (const line of raw.trim().split(/[\r\n]+/)) {
    const i = line.indexOf(":");
    if (i > 0) h.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return h;
}

export const xhrTransport: Transport = (r) =>
  new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open(r.method, r.url);
    for (const [k, v] of Object.entries(r.headers)) x.setRequestHeader(k, v);
    x.upload.onprogress = (e) => r.onProgress?.(e.loaded);
    x.onload = () =>
      resolve({ status: x.status, headers: parseHeaders(x.getAllResponseHeaders()), text: x.responseText });
    x.onerror = () => reject(new ApiError({ status: 0, code: "network_error" }));
    x.onabort = () => reject(new DOMException("The upload was cancelled.", "AbortError"));
    if (r.signal) {
      if (r.signal.aborted) return reject(new DOMException("The upload was cancelled.", "AbortError"));
      r.signal.addEventListener("abort", () => x.abort(), { once: true });
    }
    x.send(r.body);
  });

function replyError(r: HttpReply): ApiError {
  let body: unknown;
  try {
    body = JSON.parse(r.text);
  } catch {
    body = undefined;
  }
  if (r.status < 200 || r.status > 599) return new ApiError({ status: 0, code: "network_error" });
  return toApiError(new Response(null, { status: r.status, headers: r.headers }), body);
}

const ok = (s: number) => s >= 200 && s < 300;

export interface UploadOptions {
  projectId: string;
  onProgress?: (loaded: number) => void;
  signal?: AbortSignal;
  transport?: Transport;
  /** Direct uploads only: parts in flight at once. */
  concurrency?: number;
  /** Direct uploads only: the wait before retry n (tests pass 0). */
  backoffMs?: (attempt: number) => number;
}

/** PUT /storage/upload: the file streamed through the API. */
export async function uploadThroughApi(file: Blob, path: string, o: UploadOptions): Promise<StorageEntry> {
  const transport = o.transport ?? xhrTransport;
  const origin = typeof location !== "undefined" ? location.origin : "";
  const url = `${origin}/api/v1/storage/upload?path=${encodeURIComponent(path)}`;
  const send = () => {
    const s = getSession();
    const headers: Record<string, string> = {
      "X-Project-ID": o.projectId,
      "X-Correlation-ID": newId(),
      "Content-Type": file.type || "application/octet-stream",
    };
    if (s) headers.Authorization = `Bearer ${s.accessToken}`;
    return transport({ method: "PUT", url, headers, body: file, onProgress: o.onProgress, signal: o.signal });
  };
  let r = await send();
  if (r.status === 401 && getSession() !== null && (await refresh())) {
    o.onProgress?.(0);
    r = await send();
  }
  if (!ok(r.status)) throw replyError(r);
  return JSON.parse(r.text) as StorageEntry;
}

// Headers the browser sets itself and refuses from scripts.
const FORBIDDEN = new Set(["content-length", "host", "connection", "expect"]);

/** Presigned upload: one PUT, or parts three at a time, then complete. */
export async function uploadDirect(file: Blob, path: string, o: UploadOptions): Promise<StorageEntry> {
  const transport = o.transport ?? xhrTransport;
  const backoff = o.backoffMs ?? ((n: number) => 500 * 2 ** n);
  const p = await unwrap(
    api.POST("/api/v1/storage/presign", {
      params: { header: { "X-Project-ID": o.projectId } },
      body: {
        path,
        method: "PUT",
        size_bytes: file.size,
        content_type: file.type || undefined,
      },
    }),
  );
  if (!p.upload_id) throw new ApiError({ status: 0, code: "internal_error" });
  const multipart = (p.parts?.length ?? 0) > 0;
  let offset = 0;
  const parts: { number: number; size: number; offset: number; request: StorageSignedRequest }[] = [];
  if (multipart) {
    for (const pt of [...(p.parts ?? [])].sort((a, b) => a.number - b.number)) {
      parts.push({ number: pt.number, size: pt.size_bytes, offset, request: pt.request });
      offset += pt.size_bytes;
    }
  } else if (p.request) {
    parts.push({ number: 1, size: file.size, offset: 0, request: p.request });
  }
  const loaded = new Map<number, number>();
  const report = () => o.onProgress?.([...loaded.values()].reduce((a, b) => a + b, 0));
  const done: { number: number; etag: string }[] = [];

  const putPart = async (part: (typeof parts)[number]): Promise<string> => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(part.request.headers))
      if (!FORBIDDEN.has(k.toLowerCase())) headers[k] = v;
    for (let attempt = 0; ; attempt++) {
      if (o.signal?.aborted) throw new DOMException("The upload was cancelled.", "AbortError");
      let r: HttpReply | undefined;
      let failure: unknown;
      try {
        r = await transport({
          method: part.request.method,
          url: part.request.url,
          headers,
          body: file.slice(part.offset, part.offset + part.size),
          onProgress: (l) => (loaded.set(part.number, l), report()),
          signal: o.signal,
        });
      } catch (e) {
        if (e instanceof DOMException && e.name === "AbortError") throw e;
        failure = e;
      }
      if (r && ok(r.status)) {
        const etag = r.headers.get("ETag");
        // The object store must expose ETag to this origin (its CORS rules).
        if (!etag) throw new ApiError({ status: 0, code: "storage_direct_etag_hidden" });
        loaded.set(part.number, part.size);
        report();
        return etag;
      }
      // The object store's own errors are XML: retry what may pass (5xx,
      // network), give up on the rest.
      const retryable = !r || r.status >= 500 || r.status === 429;
      if (!retryable || attempt >= 3)
        throw failure ?? new ApiError({ status: r?.status ?? 0, code: "storage_direct_failed" });
      loaded.set(part.number, 0);
      report();
      const wait = backoff(attempt);
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    }
  };

  let next = 0;
  const worker = async () => {
    while (next < parts.length) {
      const part = parts[next++]!;
      done.push({ number: part.number, etag: await putPart(part) });
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 3, parts.length) }, worker));
  return unwrap(
    api.POST("/api/v1/storage/presign/complete", {
      params: { header: { "X-Project-ID": o.projectId, "X-Idempotency-Key": newId() } },
      body: {
        upload_id: p.upload_id,
        parts: multipart ? done.sort((a, b) => a.number - b.number) : undefined,
      },
    }),
  );
}

/** Over one PUT's limit (5 GiB) the platform signs parts: direct uploads start there. */
export const DIRECT_UPLOAD_MIN = 5 * 1024 ** 3 + 1;

/** Whether this console may send bytes to the object store (the CSP allows it). */
export function directUploads(): boolean {
  if (typeof document === "undefined") return false;
  return document.querySelector('meta[name="gpuaas-direct-uploads"]')?.getAttribute("content") === "on";
}

/** Uploads a file to a path: large files direct when allowed, else through the API. */
export function uploadFile(file: Blob, path: string, o: UploadOptions): Promise<StorageEntry> {
  if (file.size >= DIRECT_UPLOAD_MIN && directUploads()) return uploadDirect(file, path, o);
  return uploadThroughApi(file, path, o);
}
