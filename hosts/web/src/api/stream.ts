// The live notification stream (GET /notifications/stream, Server-Sent
// Events). EventSource cannot send the Authorization header, so the console
// reads the stream through fetch (authedFetch: the token, one refresh on
// 401) and parses the events itself. It reconnects with Last-Event-ID, so
// what arrived meanwhile comes first, with backoff (1 s doubling to 30 s);
// the server ends a stream when the access token expires, and the next one
// carries the refreshed token. While the stream is live, screens that poll
// for allocation state poll slowly and refresh on its events instead.
import { authedFetch } from "./client";
import { isApiError, toApiError } from "./errors";
import { getSession } from "./session";
import type { Notification } from "./types";

export type StreamState = "connecting" | "live" | "down";

let state: StreamState = "down";

/** Whether the notification stream is connected now (polling falls back when not). */
export function streamLive(): boolean {
  return state === "live";
}

export interface SSEvent {
  event: string;
  data: string;
  id?: string;
}

/** Parses a text/event-stream body, calling onEvent for each event. */
export async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (e: SSEvent) => void) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  let ev: { event?: string; data: string[]; id?: string } = { data: [] };
  const line = (l: string) => {
    if (l === "") {
      if (ev.data.length) onEvent({ event: ev.event ?? "message", data: ev.data.join("\n"), id: ev.id });
      ev = { data: [] };
      return;
    }
    if (l.startsWith(":")) return; // a comment: the heartbeat
    const i = l.indexOf(":");
    const field = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? "" : l.slice(i + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") ev.event = value;
    else if (field === "data") ev.data.push(value);
    else if (field === "id" && !value.includes("\0")) ev.id = value;
  };
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl: number;
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      const crlf = buf[nl] === "\r" && buf[nl + 1] === "\n";
      line(buf.slice(0, nl));
      buf = buf.slice(nl + (crlf ? 2 : 1));
    }
  }
}

export interface StreamOptions {
  onNotification: (n: Notification) => void;
  onState?: (s: StreamState) => void;
  /** For tests: the wait before reconnect attempt n. */
  backoffMs?: (attempt: number) => number;
}

/** Opens the stream and keeps it open until the returned function is called. */
export function openNotificationStream(o: StreamOptions): () => void {
  let stopped = false;
  let ctrl: AbortController | undefined;
  let lastId: string | undefined;
  let wake: (() => void) | undefined;
  const set = (s: StreamState) => {
    state = s;
    o.onState?.(s);
  };
  const backoff =
    o.backoffMs ?? ((n: number) => Math.min(30_000, 1_000 * 2 ** n) * (0.8 + Math.random() * 0.4));
  const origin = typeof location !== "undefined" ? location.origin : "http://localhost";
  const run = async () => {
    for (let attempt = 0; !stopped;) {
      ctrl = new AbortController();
      set("connecting");
      let wait: number | undefined;
      try {
        const headers: Record<string, string> = { Accept: "text/event-stream", "X-Project-ID": "" };
        if (lastId) headers["Last-Event-ID"] = lastId;
        const res = await authedFetch(
          new Request(origin + "/api/v1/notifications/stream", { headers, signal: ctrl.signal }),
        );
        if (!res.ok || !res.body) throw toApiError(res, await res.json().catch(() => undefined));
        set("live");
        attempt = 0;
        await readEvents(res.body, (e) => {
          if (e.id) lastId = e.id;
          if (e.event !== "notification") return;
          try {
            o.onNotification(JSON.parse(e.data) as Notification);
          } catch {
            // a malformed event is skipped; the inbox still has it
          }
        });
      } catch (e) {
        if (stopped) break;
        if (isApiError(e)) {
          // Signed out, or not allowed to stream: stop; polling goes on.
          if (e.status === 401 || e.status === 403 || e.status === 404) {
            if (e.status !== 401 || getSession() === null) break;
          }
          if (e.status === 429) wait = (e.retryAfter ?? 5) * 1000;
        }
      }
      if (stopped) break;
      set("down");
      const ms = wait ?? backoff(attempt++);
      await new Promise<void>((res) => {
        wake = res;
        setTimeout(res, ms);
      });
    }
    set("down");
  };
  void run();
  return () => {
    stopped = true;
    ctrl?.abort();
    wake?.();
    set("down");
  };
}
