import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useParams } from "react-router";
import {
  adminTenantLedgerQuery,
  adminTenantQuery,
  resetTenantPolicyMutation,
  setTenantPolicyMutation,
  tenantPoliciesQuery,
} from "../../api/queries/admin";
import { skusQuery } from "../../api/queries/compute";
import { newId } from "../../api/client";
import { loadable } from "../../components/States";
import { useAnnounce } from "../../components/Announcer";
import { useCursorPages } from "../../components/hooks";
import { TenantPageView } from "./TenantPageView";

export function TenantPage() {
  const { id = "" } = useParams();
  // One screen per tenant: another tenant starts on its first ledger page,
  // without the drafts or the cursors of the last one.
  return <TenantScreen key={id} id={id} />;
}

function TenantScreen({ id }: { id: string }) {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const q = useQuery(adminTenantQuery(id));
  const policies = useQuery(tenantPoliciesQuery(id));
  const skus = useQuery(skusQuery());
  const ledgerPages = useCursorPages();
  const ledger = useQuery({ ...adminTenantLedgerQuery(id, ledgerPages.cursor), placeholderData: (p) => p });
  const [drafts, setDrafts] = useState<Record<string, string>>({});
  const [busyKey, setBusyKey] = useState<string>();
  const set = useMutation(setTenantPolicyMutation(qc, id));
  const reset = useMutation(resetTenantPolicyMutation(qc, id));
  const error = set.error ?? reset.error;
  return (
    <TenantPageView
      detail={loadable(q)}
      policies={loadable(policies)}
      skus={skus.data ?? []}
      ledger={loadable(ledger)}
      ledgerPager={ledgerPages.pager(ledger.data?.next_cursor)}
      drafts={drafts}
      onDraft={(k, v) => {
        setDrafts((d) => ({ ...d, [k]: v }));
        set.reset();
        reset.reset();
      }}
      onSave={(k) => {
        setBusyKey(k);
        reset.reset();
        set.mutate(
          { key: k, value: drafts[k] ?? "", idem: newId() },
          {
            onSuccess: (p) => {
              setDrafts(({ [k]: _, ...rest }) => rest);
              announce(`${p.key} is ${p.value} for this tenant.`);
            },
          },
        );
      }}
      onReset={(k) => {
        setBusyKey(k);
        set.reset();
        reset.mutate(
          { key: k, idem: newId() },
          {
            onSuccess: (p) => {
              setDrafts(({ [k]: _, ...rest }) => rest);
              announce(`${p.key} is back to the platform value.`);
            },
          },
        );
      }}
      busyKey={set.isPending || reset.isPending ? busyKey : undefined}
      error={error}
      errorKey={error ? busyKey : undefined}
    />
  );
}
export { TenantPage as Component };
