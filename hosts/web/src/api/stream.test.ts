import { afterEach, describe, expect, it, vi } from "vitest";
import { openNotificationStream, readEvents, streamLive, type SSEvent } from "./stream";
import { setSessionForTest } from "./session";

const body = (chunks: string[]) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      const enc = new TextEncoder();
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });

const n = (seq: number) => ({
  id: `n${seq}`,
  seq,
  kind: "allocation_active",
  title: `t${seq}`,
  body: "",
  data: { allocation_id: "a1" },
  event_id: "e",
  created_at: "2030-01-01T00:00:00Z",
  read: false,
});

afterEach(() => {
  vi.unstubAllGlobals();
  setSessionForTest(null);
});

describe("readEvents", () => {
  it("parses events split across chunks, skips comments, joins data lines", async () => {
    const got: SSEvent[] = [];
    await readEvents(
      body([
        ": heartbeat\n\nid: 4",
        "1\nevent: notif",
        'ication\ndata: {"a":\r\ndata: 1}\r\n\r\n',
        "data: x\n\n",
      ]),
      (e) => got.push(e),
    );
    expect(got).toEqual([
      { event: "notification", data: '{"a":\n1}', id: "41" },
      { event: "message", data: "x", id: undefined },
    ]);
  });
});

describe("openNotificationStream", () => {
  it("delivers notifications, reconnects with Last-Event-ID, and stops when closed", async () => {
    const lastIds: (string | null)[] = [];
    let calls = 0;
    vi.stubGlobal(
      "fetch",
      vi.fn(async (req: Request) => {
        lastIds.push(req.headers.get("Last-Event-ID"));
        expect(req.headers.has("X-Project-ID")).toBe(false);
        calls++;
        if (calls === 1)
          return new Response(body([`id: 7\nevent: notification\ndata: ${JSON.stringify(n(7))}\n\n`]), {
            status: 200,
            headers: { "Content-Type": "text/event-stream" },
          });
        if (calls === 2) return new Response("{}", { status: 503 });
        // The third stays open.
        const enc = new TextEncoder();
        return new Response(
          new ReadableStream<Uint8Array>({
            start(c) {
              c.enqueue(enc.encode(`id: 8\nevent: notification\ndata: ${JSON.stringify(n(8))}\n\n`));
            },
          }),
          { status: 200 },
        );
      }),
    );
    const seen: number[] = [];
    const states: string[] = [];
    const close = openNotificationStream({
      onNotification: (x) => seen.push(x.seq),
      onState: (s) => states.push(s),
      backoffMs: () => 0,
    });
    try {
      await vi.waitFor(() => expect(seen).toEqual([7, 8]));
      expect(streamLive()).toBe(true);
    } finally {
      close();
    }
    expect(lastIds.slice(0, 3)).toEqual([null, "7", "7"]);
    expect(states).toContain("live");
    expect(streamLive()).toBe(false);
  });

  it("stops on 403 (polling goes on)", async () => {
    let calls = 0;
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => {
        calls++;
        return new Response(JSON.stringify({ error: { code: "forbidden", message: "" } }), { status: 403 });
      }),
    );
    const states: string[] = [];
    const close = openNotificationStream({
      onNotification: () => {},
      onState: (s) => states.push(s),
      backoffMs: () => 0,
    });
    await vi.waitFor(() => expect(states.at(-1)).toBe("down"));
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toBe(1);
    close();
  });
});
