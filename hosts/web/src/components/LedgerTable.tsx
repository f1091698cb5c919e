// The one ledger table: a tenant's own (Billing) and an operator's view of
// any tenant's (the admin tenant screen), which adds an action per row.
import type { ReactNode } from "react";
import type { LedgerEntry } from "../api/types";
import { DataTable, type Column, type Pager } from "./Table";
import { dateTime, money, shortId } from "./format";

export function LedgerTable({
  caption,
  entries,
  pager,
  action,
}: {
  caption: string;
  entries: LedgerEntry[];
  pager?: Pager;
  /** An extra last column ("Action"): what can be done with the entry. */
  action?: (e: LedgerEntry) => ReactNode;
}) {
  const columns: Column<LedgerEntry>[] = [
    { header: "When", cell: (e) => dateTime(e.created_at) },
    { header: "Type", cell: (e) => e.type.replace("_", " ") },
    { header: "Reason", cell: (e) => e.reason || "—" },
    { header: "Amount", numeric: true, cell: (e) => money(e.amount_minor, e.currency) },
    {
      // Support asks for it (a refund names the credit it returns).
      header: "Entry",
      cell: (e) => (
        <code title={e.id} data-entry-id={e.id}>
          {shortId(e.id)}
        </code>
      ),
    },
  ];
  if (action) columns.push({ header: "Action", cell: action });
  return <DataTable caption={caption} rows={entries} rowKey={(e) => e.id} pager={pager} columns={columns} />;
}
