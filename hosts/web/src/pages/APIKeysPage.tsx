import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useProject } from "../auth";
import { apiKeysQuery, createAPIKeyMutation, revokeAPIKeyMutation } from "../api/queries/apiKeys";
import { balanceQuery } from "../api/queries/billing";
import { ApiError } from "../api/errors";
import type { CreatedAPIKey } from "../api/types";
import { loadable } from "../components/States";
import { useCooldown, useIdempotencyKeys, useTick } from "../components/hooks";
import { useAnnounce } from "../components/Announcer";
import { APIKeysPageView } from "./APIKeysPageView";
import { createKeyBody, emptyKeyDraft, type KeyDraft } from "./credentials";

export function APIKeysPage() {
  const { me, project } = useProject();
  const qc = useQueryClient();
  const announce = useAnnounce();
  const keys = useQuery(apiKeysQuery());
  // The spend cap is in the ledger's currency.
  const balance = useQuery(balanceQuery());
  const [draft, setDraft] = useState<KeyDraft>(() => emptyKeyDraft(project.id));
  // A mistake caught before asking the API, shown as the API shows its own.
  const [localError, setLocalError] = useState<ApiError>();
  const [created, setCreated] = useState<CreatedAPIKey>();
  const cooldown = useCooldown();
  const create = useMutation({ ...createAPIKeyMutation(qc), onError: cooldown.trip });
  const revoke = useMutation(revokeAPIKeyMutation(qc));
  const revokeKeys = useIdempotencyKeys();
  // Expiries pass while the screen is open.
  const now = useTick(60_000);
  return (
    <APIKeysPageView
      keys={loadable(keys)}
      projects={me.projects}
      currency={balance.data?.currency}
      origin={location.origin}
      now={now}
      draft={draft}
      onDraft={setDraft}
      onCreate={() => {
        const r = createKeyBody(draft, Date.now());
        if (!("body" in r)) {
          create.reset();
          setLocalError(new ApiError({ status: 400, code: "validation_failed", ...r }));
          return;
        }
        setLocalError(undefined);
        create.mutate(r.body, {
          onSuccess: (k) => {
            setCreated(k);
            setDraft(emptyKeyDraft(project.id));
            announce("API key created. Copy it now: it is shown once.");
          },
        });
      }}
      creating={create.isPending}
      createError={localError ?? create.error}
      createCooldown={cooldown.secondsLeft}
      created={created}
      onCloseCreated={() => setCreated(undefined)}
      onRevoke={(id) =>
        revoke.mutateAsync({ id, key: revokeKeys.keyFor(id) }).then(() => {
          revokeKeys.done(id);
          announce("API key revoked.");
        })
      }
      revoking={revoke.isPending}
      revokeError={
        revoke.error && revoke.variables ? { id: revoke.variables.id, error: revoke.error } : undefined
      }
    />
  );
}
export { APIKeysPage as Component };
