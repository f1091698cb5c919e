import { describe, expect, it } from "vitest";
import { render, screen, within } from "@testing-library/react";
import { ApiError } from "../../api/errors";
import type { Runbook } from "../../api/types";
import { RunbooksPageView } from "./RunbooksPageView";
import { runbookHref } from "./runbookLinks";

const source = [
  "# Operator runbook",
  "Day-to-day tasks.",
  "## Money",
  "- Refund: `POST /refunds`",
  "## Events that did not go out",
  "Retry them; see [Money](#money).",
].join("\n");

const runbooks: Runbook[] = [
  {
    id: "failed-events",
    title: "Events that did not go out",
    url: "doc/runbook.md#events-that-did-not-go-out",
  },
];

describe("RunbooksPageView", () => {
  it("shows the document under one page heading, with its contents", () => {
    render(<RunbooksPageView runbooks={{ status: "success", data: runbooks }} source={source} />);
    expect(screen.getAllByRole("heading", { level: 1 }).map((h) => h.textContent)).toEqual([
      "Operator runbook",
    ]);
    const contents = screen.getByRole("navigation", { name: "Contents" });
    const items = within(contents).getAllByRole("listitem");
    expect(items.map((li) => li.textContent)).toEqual(["Money", "Events that did not go out ops check"]);
    expect(within(contents).getByRole("link", { name: "Money" }).getAttribute("href")).toBe("#money");
    // The introduction comes before the contents.
    expect(screen.getByText("Day-to-day tasks.").compareDocumentPosition(contents)).toBe(
      Node.DOCUMENT_POSITION_FOLLOWING,
    );
    expect(screen.getByRole("heading", { name: "Events that did not go out", level: 2 }).id).toBe(
      "events-that-did-not-go-out",
    );
  });

  it("moves focus to the section the link named", () => {
    render(
      <RunbooksPageView
        runbooks={{ status: "success", data: runbooks }}
        source={source}
        section="events-that-did-not-go-out"
      />,
    );
    expect(document.activeElement?.id).toBe("events-that-did-not-go-out");
  });

  it("is for operators only", () => {
    render(
      <RunbooksPageView
        runbooks={{ status: "error", error: new ApiError({ status: 403, code: "forbidden" }) }}
        source={source}
      />,
    );
    expect(screen.getByRole("heading", { name: "Restricted" })).toBeTruthy();
    expect(screen.queryByRole("heading", { name: "Money" })).toBeNull();
  });
});

describe("runbookHref", () => {
  it("maps the API's runbook URLs to the runbooks screen", () => {
    expect(runbookHref("doc/runbook.md#consumer-lag")).toBe("/admin/runbooks#consumer-lag");
    expect(runbookHref("doc/runbook.md")).toBe("/admin/runbooks");
    expect(runbookHref("doc/payments.md#refunds")).toBeUndefined();
    expect(runbookHref("https://wiki.example.com/doc/runbook.md#x")).toBeUndefined();
  });
});
