// A small Markdown renderer for the project's own documents (the operator
// runbook): headings with GitHub's anchors, paragraphs, lists, fenced code,
// and inline code, bold, italics and links. It builds React elements — never
// HTML from the text — so nothing in a document can run or style the page.
// What it does not know (tables, nesting) reads as plain text.
import { Fragment, type ReactNode } from "react";

export type Block =
  | { kind: "heading"; level: number; text: string; id: string }
  | { kind: "paragraph"; text: string }
  | { kind: "list"; ordered: boolean; items: string[] }
  | { kind: "code"; text: string };

/** GitHub's anchor for a heading: lower case, letters, digits, "-" and "_" kept, spaces to "-". */
export function slug(text: string): string {
  let out = "";
  for (const ch of text.toLowerCase()) {
    if (/[\p{L}\p{N}_-]/u.test(ch)) out += ch;
    else if (ch === " ") out += "-";
  }
  return out;
}

const FENCE = /^\s*```/;
const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const ITEM = /^([-*+]|\d+[.)])\s+(.*)$/;

/** Splits a document into blocks; repeated headings get GitHub's "-1", "-2" suffixes. */
export function parseMarkdown(md: string): Block[] {
  const lines = md.replace(/\r\n?/g, "\n").split("\n");
  const blocks: Block[] = [];
  const seen = new Map<string, number>();
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    if (line.trim() === "") {
      i++;
      continue;
    }
    if (FENCE.test(line)) {
      const body: string[] = [];
      i++;
      while (i < lines.length && !FENCE.test(lines[i] ?? "")) body.push(lines[i++] ?? "");
      i++; // the closing fence (or the end)
      blocks.push({ kind: "code", text: body.join("\n") });
      continue;
    }
    const h = HEADING.exec(line);
    if (h) {
      const text = h[2] ?? "";
      const base = slug(text);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      blocks.push({ kind: "heading", level: (h[1] ?? "#").length, text, id: n ? `${base}-${n}` : base });
      i++;
      continue;
    }
    const first = ITEM.exec(line);
    if (first) {
      const ordered = /\d/.test(first[1] ?? "");
      const items: string[] = [first[2] ?? ""];
      i++;
      // An item runs until a blank line, a block of another kind or the next item.
      while (i < lines.length) {
        const next = lines[i] ?? "";
        if (next.trim() === "" || FENCE.test(next) || HEADING.test(next)) break;
        const m = ITEM.exec(next);
        if (m) {
          if (/\d/.test(m[1] ?? "") !== ordered) break;
          items.push(m[2] ?? "");
        } else {
          items[items.length - 1] += " " + next.trim();
        }
        i++;
      }
      blocks.push({ kind: "list", ordered, items });
      continue;
    }
    const para: string[] = [line.trim()];
    i++;
    while (i < lines.length) {
      const next = lines[i] ?? "";
      if (next.trim() === "" || FENCE.test(next) || HEADING.test(next) || ITEM.test(next)) break;
      para.push(next.trim());
      i++;
    }
    blocks.push({ kind: "paragraph", text: para.join(" ") });
  }
  return blocks;
}

// `code`, **bold**, *italics*, [text](target): the first that starts earliest wins.
const INLINE = /`([^`]+)`|\*\*(.+?)\*\*|\*([^*\s](?:[^*]*[^*\s])?)\*|\[([^\]]+)\]\(([^)\s]+)\)/g;

/**
 * Inline Markdown as React nodes. A link to "#anchor" stays on the page; an
 * http(s) link opens in a new tab; a link to another document (relative to
 * `base`, such as "doc/") is shown as its path, since the console does not
 * serve the documents.
 */
export function renderInline(text: string, base = ""): ReactNode[] {
  const out: ReactNode[] = [];
  let last = 0;
  let k = 0;
  for (const m of text.matchAll(INLINE)) {
    const at = m.index;
    if (at > last) out.push(text.slice(last, at));
    last = at + m[0].length;
    const key = k++;
    if (m[1] !== undefined) out.push(<code key={key}>{m[1]}</code>);
    else if (m[2] !== undefined) out.push(<strong key={key}>{renderInline(m[2], base)}</strong>);
    else if (m[3] !== undefined) out.push(<em key={key}>{renderInline(m[3], base)}</em>);
    else out.push(<Fragment key={key}>{link(m[4] ?? "", m[5] ?? "", base)}</Fragment>);
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function link(label: string, target: string, base: string): ReactNode {
  const text = renderInline(label, base);
  if (target.startsWith("#")) return <a href={target}>{text}</a>;
  if (/^https?:\/\//.test(target))
    return (
      <a href={target} target="_blank" rel="noopener noreferrer">
        {text}
      </a>
    );
  const path = <code className="entry-name">{base + target}</code>;
  // "[payments.md](payments.md#refunds)": the path says it all.
  if (target.split("#")[0] === label) return path;
  return (
    <>
      {text} ({path})
    </>
  );
}

/** Renders a document; headings get their anchors as ids and can take focus (links to a section move it there). */
export function Markdown({ blocks, base }: { blocks: Block[]; base?: string }) {
  return (
    <>
      {blocks.map((b, i) => {
        switch (b.kind) {
          case "heading": {
            const H = `h${Math.min(6, Math.max(2, b.level))}` as "h2";
            return (
              <H key={i} id={b.id} tabIndex={-1}>
                {renderInline(b.text, base)}
              </H>
            );
          }
          case "paragraph":
            return <p key={i}>{renderInline(b.text, base)}</p>;
          case "list": {
            const L = b.ordered ? "ol" : "ul";
            return (
              <L key={i}>
                {b.items.map((it, j) => (
                  <li key={j}>{renderInline(it, base)}</li>
                ))}
              </L>
            );
          }
          case "code":
            return (
              <pre key={i} className="code-block">
                <code>{b.text}</code>
              </pre>
            );
        }
      })}
    </>
  );
}
