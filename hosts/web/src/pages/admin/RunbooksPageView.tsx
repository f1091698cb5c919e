import { useEffect, useMemo } from "react";
import type { Runbook } from "../../api/types";
import { Markdown, parseMarkdown, renderInline } from "../../components/Markdown";
import { StateView, type Loadable } from "../../components/States";
import { usePageHeading } from "../../components/hooks";
import { runbookHref } from "./runbookLinks";

export interface RunbooksPageViewProps {
  /** The runbooks the ops view points at (GET /admin/runbooks): operators only. */
  runbooks: Loadable<Runbook[]>;
  /** doc/runbook.md. */
  source: string;
  /** The section to show (the URL's fragment, without "#"). */
  section?: string;
}

export function RunbooksPageView(p: RunbooksPageViewProps) {
  const h = usePageHeading("Runbook");
  // The document's own title is the page heading.
  const blocks = useMemo(
    () => parseMarkdown(p.source).filter((b) => !(b.kind === "heading" && b.level === 1)),
    [p.source],
  );
  const sections = blocks.flatMap((b) => (b.kind === "heading" && b.level === 2 ? [b] : []));
  // The introduction, then the contents, then the sections.
  const first = blocks.findIndex((b) => b.kind === "heading");
  const intro = first < 0 ? blocks : blocks.slice(0, first);
  const body = first < 0 ? [] : blocks.slice(first);
  const ready = p.runbooks.status === "success";
  // After the page heading took focus (usePageHeading runs first): a link
  // to a section moves focus, and so the view, to its heading.
  useEffect(() => {
    if (!ready || !p.section) return;
    document.getElementById(p.section)?.focus();
  }, [ready, p.section]);
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Operator runbook
      </h1>
      <StateView state={p.runbooks} what="the runbooks">
        {(rbs) => {
          const fromOps = new Set(rbs.flatMap((r) => runbookHref(r.url)?.split("#")[1] ?? []));
          return (
            <div className="prose">
              <Markdown blocks={intro} base="doc/" />
              <nav aria-labelledby="runbook-contents">
                <h2 id="runbook-contents">Contents</h2>
                <ul>
                  {sections.map((s) => (
                    <li key={s.id}>
                      <a href={`#${s.id}`}>{renderInline(s.text)}</a>
                      {fromOps.has(s.id) && (
                        <>
                          {" "}
                          <span className="badge">ops check</span>
                        </>
                      )}
                    </li>
                  ))}
                </ul>
              </nav>
              <Markdown blocks={body} base="doc/" />
            </div>
          );
        }}
      </StateView>
    </section>
  );
}
