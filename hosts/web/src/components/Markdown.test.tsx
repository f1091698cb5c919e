import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/react";
import { Markdown, parseMarkdown, slug } from "./Markdown";
import runbook from "../../../../doc/runbook.md?raw";

const show = (md: string) => render(<Markdown blocks={parseMarkdown(md)} base="doc/" />);

describe("slug", () => {
  it("makes GitHub's anchors (the ones doc/runbook.md links and the API name)", () => {
    expect(slug("Events that did not go out")).toBe("events-that-did-not-go-out");
    expect(slug("`gpuaas dev` after a crash")).toBe("gpuaas-dev-after-a-crash");
    expect(slug("Nodes offline or unhealthy")).toBe("nodes-offline-or-unhealthy");
    expect(slug("API errors (5xx)")).toBe("api-errors-5xx");
  });
});

describe("parseMarkdown", () => {
  it("reads headings, lists with continuation lines, paragraphs and fences", () => {
    const blocks = parseMarkdown(
      [
        "# Title",
        "## Money",
        "1. first",
        "   goes on",
        "2. second",
        "",
        "A paragraph",
        "over two lines.",
        "- a",
        "- b",
        "```",
        "## not a heading",
        "```",
        "## Money",
      ].join("\n"),
    );
    expect(blocks).toEqual([
      { kind: "heading", level: 1, text: "Title", id: "title" },
      { kind: "heading", level: 2, text: "Money", id: "money" },
      { kind: "list", ordered: true, items: ["first goes on", "second"] },
      { kind: "paragraph", text: "A paragraph over two lines." },
      { kind: "list", ordered: false, items: ["a", "b"] },
      { kind: "code", text: "## not a heading" },
      { kind: "heading", level: 2, text: "Money", id: "money-1" },
    ]);
  });

  it("finds every section of the operator runbook the ops view points at", () => {
    const ids = parseMarkdown(runbook).flatMap((b) => (b.kind === "heading" ? [b.id] : []));
    // core/admin.Runbooks (TestRunbookAnchorsExist checks the same from Go).
    for (const a of [
      "allocations-that-will-not-go-away",
      "events-that-did-not-go-out",
      "outbox-backlog",
      "consumer-lag",
      "nodes-offline-or-unhealthy",
      "money",
      "notifications-not-going-out",
    ])
      expect(ids).toContain(a);
  });
});

describe("Markdown", () => {
  it("renders inline code, emphasis and the three kinds of link", () => {
    show(
      "## `gpuaas dev` after a crash\n" +
        "Run `make web`, **now**, *twice*; see [below](#money), [docs](https://example.com/x) " +
        "and [payments.md](payments.md#refunds) or [the ADR](adr/0004.md).",
    );
    const h = screen.getByRole("heading", { level: 2 });
    expect(h.id).toBe("gpuaas-dev-after-a-crash");
    expect(h.getAttribute("tabindex")).toBe("-1");
    expect(h.querySelector("code")?.textContent).toBe("gpuaas dev");
    expect(screen.getByText("now").tagName).toBe("STRONG");
    expect(screen.getByText("twice").tagName).toBe("EM");
    expect(screen.getByRole("link", { name: "below" }).getAttribute("href")).toBe("#money");
    const out = screen.getByRole("link", { name: "docs" });
    expect(out.getAttribute("target")).toBe("_blank");
    expect(out.getAttribute("rel")).toBe("noopener noreferrer");
    // Documents the console does not serve are named, not linked.
    expect(screen.getAllByRole("link")).toHaveLength(2);
    expect(screen.getByText("doc/payments.md#refunds").tagName).toBe("CODE");
    expect(screen.getByText("doc/adr/0004.md").parentElement?.textContent).toContain(
      "the ADR (doc/adr/0004.md)",
    );
  });

  it("never turns the text into markup", () => {
    const { container } = show('<img src=x onerror="alert(1)"> and [x](javascript:alert(1))');
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector("a")).toBeNull();
    expect(container.textContent).toContain('<img src=x onerror="alert(1)">');
  });
});
