import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setSessionForTest } from "./session";
import { uploadDirect, uploadThroughApi, type HttpReply, type HttpRequest } from "./upload";
import { ApiError } from "./errors";

const user = { id: "u1", email: "a@example.com", display_name: "A", role: "user", resource_id: "r" } as const;
const reply = (status: number, body: unknown = {}, headers: Record<string, string> = {}): HttpReply => ({
  status,
  headers: new Headers(headers),
  text: JSON.stringify(body),
});
const entry = {
  path: "/d/f.bin",
  name: "f.bin",
  kind: "file",
  size_bytes: 10,
  created_at: "",
  updated_at: "",
};

let fetches: Request[];
let answers: ((r: Request) => Response)[];
beforeEach(() => {
  fetches = [];
  answers = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = input instanceof Request ? input : new Request(String(input), init);
      fetches.push(req);
      const next = answers.shift();
      if (!next) throw new Error("unexpected fetch " + req.url);
      return next(req);
    }),
  );
});
afterEach(() => {
  vi.unstubAllGlobals();
  setSessionForTest(null);
});
const blobText = (b: Blob) =>
  new Promise<string>((res) => {
    const fr = new FileReader();
    fr.onload = () => res(String(fr.result));
    fr.readAsText(b);
  });
const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

describe("upload through the API", () => {
  it("streams the file with the token, the project and its type, reporting progress", async () => {
    setSessionForTest({ accessToken: "A1", expiresAt: Date.now() + 600_000, user });
    const seen: HttpRequest[] = [];
    const progress: number[] = [];
    const got = await uploadThroughApi(new Blob(["0123456789"], { type: "text/plain" }), "/d/f bin", {
      projectId: "p1",
      onProgress: (n) => progress.push(n),
      transport: async (r) => {
        seen.push(r);
        r.onProgress?.(5);
        r.onProgress?.(10);
        return reply(201, entry);
      },
    });
    expect(got.name).toBe("f.bin");
    expect(seen[0]!.method).toBe("PUT");
    expect(seen[0]!.url).toContain("/api/v1/storage/upload?path=%2Fd%2Ff%20bin");
    expect(seen[0]!.headers).toMatchObject({
      Authorization: "Bearer A1",
      "X-Project-ID": "p1",
      "Content-Type": "text/plain",
    });
    expect(progress).toEqual([5, 10]);
  });

  it("refreshes once on 401 and sends the file again", async () => {
    setSessionForTest({ accessToken: "old", expiresAt: Date.now() + 600_000, user });
    answers.push(() =>
      json(200, { access_token: "new", refresh_token: "r", expires_in: 300, token_type: "Bearer", user }),
    );
    const tokens: string[] = [];
    await uploadThroughApi(new Blob(["x"]), "/f", {
      projectId: "p1",
      transport: async (r) => {
        tokens.push(r.headers.Authorization ?? "");
        return tokens.length === 1
          ? reply(401, { error: { code: "token_expired", message: "" } })
          : reply(201, entry);
      },
    });
    expect(tokens).toEqual(["Bearer old", "Bearer new"]);
  });

  it("turns the API's error into an ApiError with its details", async () => {
    const e = await uploadThroughApi(new Blob(["x"]), "/f", {
      projectId: "p1",
      transport: async () =>
        reply(400, {
          error: {
            code: "storage_quota_exceeded",
            message: "over quota",
            details: { used_bytes: 9, limit_bytes: 10, reserved_bytes: 0, requested_bytes: 2 },
          },
        }),
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).code).toBe("storage_quota_exceeded");
    expect((e as ApiError).details?.limit_bytes).toBe(10);
  });
});

describe("direct upload (presigned multipart)", () => {
  it("puts the parts, retries a failed one, and completes with the ETags in order", async () => {
    const file = new Blob(["aaaabbbbcc"]);
    answers.push((r) => {
      expect(r.url).toContain("/api/v1/storage/presign");
      return json(200, {
        path: "/big",
        method: "PUT",
        upload_id: "up-1",
        part_size_bytes: 4,
        expires_at: "2030-01-01T00:00:00Z",
        parts: [3, 1, 2].map((n) => ({
          number: n,
          size_bytes: n === 3 ? 2 : 4,
          request: {
            method: "PUT",
            url: `https://s3.test/k?partNumber=${n}`,
            headers: { "Content-Length": "4", "x-amz-sdk": "y" },
            expires_at: "2030-01-01T00:00:00Z",
          },
        })),
      });
    });
    let completeBody: unknown;
    answers.push((r) => {
      expect(r.url).toContain("/api/v1/storage/presign/complete");
      expect(r.headers.get("X-Idempotency-Key")).toBeTruthy();
      void r
        .clone()
        .json()
        .then((b) => (completeBody = b));
      return json(201, entry);
    });
    const bodies = new Map<string, string>();
    let failedOnce = false;
    let last = 0;
    await uploadDirect(file, "/big", {
      projectId: "p1",
      backoffMs: () => 0,
      onProgress: (n) => (last = n),
      transport: async (r) => {
        expect(r.headers).not.toHaveProperty("Content-Length");
        const n = new URL(r.url).searchParams.get("partNumber")!;
        if (n === "2" && !failedOnce) {
          failedOnce = true;
          return reply(503);
        }
        bodies.set(n, await blobText(r.body));
        r.onProgress?.(r.body.size);
        return reply(200, "", { ETag: `"etag-${n}"` });
      },
    });
    expect(Object.fromEntries(bodies)).toEqual({ "1": "aaaa", "2": "bbbb", "3": "cc" });
    await vi.waitFor(() => expect(completeBody).toBeDefined());
    expect(completeBody).toEqual({
      upload_id: "up-1",
      parts: [
        { number: 1, etag: '"etag-1"' },
        { number: 2, etag: '"etag-2"' },
        { number: 3, etag: '"etag-3"' },
      ],
    });
    expect(last).toBe(10);
  });

  it("a single presigned PUT completes without parts; a hidden ETag is an error", async () => {
    answers.push(() =>
      json(200, {
        path: "/f",
        method: "PUT",
        upload_id: "up-2",
        expires_at: "2030-01-01T00:00:00Z",
        request: { method: "PUT", url: "https://s3.test/k", headers: {}, expires_at: "2030-01-01T00:00:00Z" },
      }),
    );
    const e = await uploadDirect(new Blob(["x"]), "/f", {
      projectId: "p1",
      transport: async () => reply(200),
    }).catch((x: unknown) => x);
    expect((e as ApiError).code).toBe("storage_direct_etag_hidden");
    expect(fetches).toHaveLength(1); // never completed
  });
});
