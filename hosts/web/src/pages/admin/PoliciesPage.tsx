import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { policiesQuery, setPolicyMutation } from "../../api/queries/admin";
import { newId } from "../../api/client";
import { loadable } from "../../components/States";
import { useAnnounce } from "../../components/Announcer";
import { PoliciesPageView } from "./PoliciesPageView";

export function PoliciesPage() {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const q = useQuery(policiesQuery());
  const [drafts, setDrafts] = useState<Record<string, string>>({});
  const save = useMutation(setPolicyMutation(qc));
  return (
    <PoliciesPageView
      policies={loadable(q)}
      drafts={drafts}
      onDraft={(k, v) => setDrafts((d) => ({ ...d, [k]: v }))}
      onSave={(key) =>
        save.mutate(
          { key, value: drafts[key] ?? "", idem: newId() },
          {
            onSuccess: () => {
              setDrafts(({ [key]: _, ...rest }) => rest);
              announce(`${key} saved.`);
            },
          },
        )
      }
      saving={save.isPending ? save.variables?.key : undefined}
      saveError={save.error}
      errorKey={save.isError ? save.variables?.key : undefined}
    />
  );
}
export { PoliciesPage as Component };
