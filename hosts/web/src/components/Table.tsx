// The one table with cursor pagination. Pages come from the API's opaque
// next_cursor; "Previous" walks back the stack of cursors seen.
import type { ReactNode } from "react";

export interface Column<T> {
  header: string;
  cell: (row: T) => ReactNode;
  numeric?: boolean;
}

export interface Pager {
  page: number;
  hasPrev: boolean;
  hasNext: boolean;
  onPrev: () => void;
  onNext: () => void;
  busy?: boolean;
}

export function DataTable<T>({
  caption,
  columns,
  rows,
  rowKey,
  pager,
}: {
  caption: string;
  columns: Column<T>[];
  rows: T[];
  rowKey: (row: T) => string;
  pager?: Pager;
}) {
  return (
    <div>
      <div className="table-wrap" tabIndex={0} role="region" aria-label={caption}>
        <table>
          <caption className="visually-hidden">{caption}</caption>
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c.header} scope="col" className={c.numeric ? "num" : undefined}>
                  {c.header}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={rowKey(r)}>
                {columns.map((c) => (
                  <td key={c.header} className={c.numeric ? "num" : undefined}>
                    {c.cell(r)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {pager && <PagerNav pager={pager} label={`${caption} pages`} />}
    </div>
  );
}

/** Previous / next over cursor pages (hidden while there is one page). */
export function PagerNav({ pager, label }: { pager: Pager; label: string }) {
  if (!pager.hasPrev && !pager.hasNext) return null;
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" onClick={pager.onPrev} disabled={!pager.hasPrev || pager.busy}>
        Previous
      </button>
      <span aria-live="polite">Page {pager.page}</span>
      <button type="button" onClick={pager.onNext} disabled={!pager.hasNext || pager.busy}>
        Next
      </button>
    </nav>
  );
}
