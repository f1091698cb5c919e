// The browser terminal: xterm.js over the terminal gateway's WebSocket
// (doc/terminal.md). The token travels in the subprotocol, never the URL;
// a dropped connection resumes the node-kept session with a fresh token.
import "@xterm/xterm/css/xterm.css";
import { Terminal as XTerm } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { useEffect, useRef, useState } from "react";
import { terminalToken } from "../api/queries/compute";
import { isApiError } from "../api/errors";

type Status =
  | { kind: "connecting" }
  | { kind: "connected" }
  | { kind: "reconnecting"; attempt: number }
  | { kind: "closed"; message: string };

const RESUMABLE = new Set([1001, 1006, 4003]);

export function Terminal({ allocationId, projectId }: { allocationId: string; projectId: string }) {
  const host = useRef<HTMLDivElement>(null);
  const leave = useRef<HTMLParagraphElement>(null);
  const [status, setStatus] = useState<Status>({ kind: "connecting" });
  const [gen, setGen] = useState(0);

  useEffect(() => {
    if (!host.current) return;
    const css = getComputedStyle(document.documentElement);
    const term = new XTerm({
      cursorBlink: true,
      fontFamily: css.getPropertyValue("--font-mono") || "monospace",
      fontSize: 14,
      screenReaderMode: false,
      theme: { background: "#111418", foreground: "#e6e8eb" },
    });
    // F6 leaves the terminal (it takes Tab and every other key while focused).
    term.attachCustomKeyEventHandler((e) => {
      if (e.key === "F6") {
        if (e.type === "keydown") {
          term.blur();
          leave.current?.focus();
        }
        return false;
      }
      return true;
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host.current);
    fit.fit();
    const enc = new TextEncoder();
    let ws: WebSocket | null = null;
    let sessionId: string | undefined;
    let disposed = false;
    let attempt = 0;

    const sendResize = () => {
      if (ws?.readyState === WebSocket.OPEN)
        ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
    };
    const connect = async () => {
      try {
        const t = await terminalToken(allocationId, projectId, sessionId);
        if (disposed) return;
        sessionId = t.session_id;
        const proto = location.protocol === "https:" ? "wss:" : "ws:";
        const sock = new WebSocket(`${proto}//${location.host}${t.websocket_path}`, [
          t.subprotocol,
          `bearer.${t.token}`,
        ]);
        sock.binaryType = "arraybuffer";
        ws = sock;
        sock.onopen = () => {
          attempt = 0;
          setStatus({ kind: "connected" });
          fit.fit();
          sendResize();
          term.focus();
        };
        sock.onmessage = (ev) => {
          if (ev.data instanceof ArrayBuffer) term.write(new Uint8Array(ev.data));
          else term.write(String(ev.data));
        };
        sock.onclose = (ev) => {
          if (disposed || ws !== sock) return;
          if (RESUMABLE.has(ev.code) && attempt < 5) {
            attempt++;
            setStatus({ kind: "reconnecting", attempt });
            setTimeout(() => void connect(), Math.min(8000, 500 * 2 ** attempt));
            return;
          }
          const msg =
            ev.code === 1000
              ? `The shell exited${ev.reason ? ` (${ev.reason})` : ""}.`
              : ev.code === 4001
                ? "This terminal was opened in another window."
                : ev.code === 4002
                  ? "The node ended the session (the allocation is being released)."
                  : `The connection closed${ev.reason ? `: ${ev.reason}` : ""}.`;
          setStatus({ kind: "closed", message: msg });
        };
      } catch (e) {
        if (disposed) return;
        setStatus({ kind: "closed", message: isApiError(e) ? e.human : "Could not open the terminal." });
      }
    };
    const input = term.onData((d) => {
      if (ws?.readyState === WebSocket.OPEN) ws.send(enc.encode(d));
    });
    const binary = term.onBinary((d) => {
      if (ws?.readyState === WebSocket.OPEN) ws.send(Uint8Array.from(d, (c) => c.charCodeAt(0)));
    });
    const resize = term.onResize(sendResize);
    const ro = new ResizeObserver(() => fit.fit());
    ro.observe(host.current);
    void connect();
    return () => {
      disposed = true;
      ro.disconnect();
      input.dispose();
      binary.dispose();
      resize.dispose();
      ws?.close(1000);
      term.dispose();
    };
  }, [allocationId, projectId, gen]);

  const label =
    status.kind === "connecting"
      ? "Connecting…"
      : status.kind === "connected"
        ? "Connected"
        : status.kind === "reconnecting"
          ? `Connection lost, reconnecting (try ${status.attempt})…`
          : status.message;
  return (
    <div>
      <div className="toolbar">
        <span role="status" aria-live="polite" data-testid="terminal-status">
          Terminal: {label}
        </span>
        {status.kind === "closed" && (
          <button
            type="button"
            onClick={() => {
              setStatus({ kind: "connecting" });
              setGen((g) => g + 1);
            }}
          >
            Reconnect
          </button>
        )}
      </div>
      {/* Not the class "terminal": xterm gives its own root that class. The frame's padding is on an
          outer box, since xterm fits itself to its parent's whole box, padding included. */}
      <div className="term-frame">
        <div
          className="term-host"
          ref={host}
          role="group"
          aria-label="Browser terminal"
          data-testid="terminal"
        />
      </div>
      <p className="muted" ref={leave} tabIndex={-1}>
        The terminal takes every key while focused (Tab included): press F6 to move focus out of it.
      </p>
    </div>
  );
}
