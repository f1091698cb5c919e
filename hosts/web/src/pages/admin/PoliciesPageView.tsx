import type { Policy } from "../../api/types";
import { ActionButton } from "../../components/Controls";
import { ActionError, StateView, type Loadable } from "../../components/States";
import { DataTable } from "../../components/Table";
import { usePageHeading } from "../../components/hooks";

export interface PoliciesPageViewProps {
  policies: Loadable<Policy[]>;
  drafts: Record<string, string>;
  onDraft: (key: string, value: string) => void;
  onSave: (key: string) => void;
  saving?: string;
  saveError: unknown;
  errorKey?: string;
}

export function PoliciesPageView(p: PoliciesPageViewProps) {
  const h = usePageHeading("Policies");
  return (
    <section>
      <h1 ref={h} tabIndex={-1}>
        Policies
      </h1>
      <p className="muted">Global values; every change is audited.</p>
      <StateView state={p.policies} what="policies">
        {(rows) => (
          <DataTable
            caption="Policies"
            rows={rows}
            rowKey={(r) => r.key}
            columns={[
              {
                header: "Key",
                cell: (r) => (
                  <>
                    <code>{r.key}</code>
                    <div className="muted">{r.description}</div>
                  </>
                ),
              },
              { header: "Default", cell: (r) => <code>{r.default}</code> },
              {
                header: "Value",
                cell: (r) => (
                  <form
                    className="row"
                    onSubmit={(e) => {
                      e.preventDefault();
                      p.onSave(r.key);
                    }}
                  >
                    <input
                      aria-label={`Value of ${r.key}`}
                      value={p.drafts[r.key] ?? r.value}
                      onChange={(e) => p.onDraft(r.key, e.target.value)}
                      size={12}
                    />
                    <ActionButton
                      type="submit"
                      pending={p.saving === r.key}
                      disabled={(p.drafts[r.key] ?? r.value) === r.value}
                      aria-label={`Save ${r.key}`}
                    >
                      Save
                    </ActionButton>
                    {p.errorKey === r.key && <ActionError error={p.saveError} />}
                  </form>
                ),
              },
            ]}
          />
        )}
      </StateView>
    </section>
  );
}
