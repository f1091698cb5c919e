import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useProject } from "../auth";
import {
  createCredentialMutation,
  createServiceAccountMutation,
  disableServiceAccountMutation,
  revokeCredentialMutation,
  serviceAccountsQuery,
} from "../api/queries/serviceAccounts";
import { ApiError } from "../api/errors";
import type { CreatedCredential, ServiceAccount } from "../api/types";
import { loadable } from "../components/States";
import { useCooldown, useIdempotencyKey, useIdempotencyKeys, useTick } from "../components/hooks";
import { useAnnounce } from "../components/Announcer";
import { ServiceAccountsPageView } from "./ServiceAccountsPageView";
import {
  createAccountBody,
  createCredentialBody,
  emptyAccountDraft,
  type AccountDraft,
  type Expiry,
} from "./credentials";

const NO_EXPIRY: Expiry = { choice: "never", date: "" };

export function ServiceAccountsPage() {
  const { project } = useProject();
  // Another project starts afresh: a half-typed account is not created in the wrong one.
  return <ServiceAccountsScreen key={project.id} projectId={project.id} projectName={project.name} />;
}

function ServiceAccountsScreen({ projectId, projectName }: { projectId: string; projectName: string }) {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const accounts = useQuery(serviceAccountsQuery(projectId));
  // Expiries pass while the screen is open.
  const now = useTick(60_000);

  const [draft, setDraft] = useState<AccountDraft>(emptyAccountDraft);
  const body = createAccountBody(draft);
  // The same key while the account asked for is the same: a retried Create makes one account.
  const createKey = useIdempotencyKey(body);
  const cooldown = useCooldown();
  const create = useMutation({ ...createServiceAccountMutation(qc, projectId), onError: cooldown.trip });

  const [secretExpiry, setSecretExpiry] = useState<Expiry>(NO_EXPIRY);
  // A mistake caught before asking the API, for the account it was for.
  const [localSecretError, setLocalSecretError] = useState<{ id: string; error: ApiError }>();
  const addSecret = useMutation(createCredentialMutation(qc, projectId));
  const [created, setCreated] = useState<{ account: ServiceAccount; credential: CreatedCredential }>();

  const revokeSecret = useMutation(revokeCredentialMutation(qc, projectId));
  const disable = useMutation(disableServiceAccountMutation(qc, projectId));
  // One idempotency key per credential revoked and per account disabled, until it succeeds.
  const keys = useIdempotencyKeys();

  return (
    <ServiceAccountsPageView
      projectId={projectId}
      projectName={projectName}
      accounts={loadable(accounts)}
      origin={location.origin}
      now={now}
      draft={draft}
      onDraft={setDraft}
      onCreate={() =>
        create.mutate(
          { body, key: createKey.key },
          {
            onSuccess: (a) => {
              setDraft(emptyAccountDraft());
              createKey.reset();
              announce(`Service account ${a.name} created. Add a client secret to use it.`);
            },
          },
        )
      }
      creating={create.isPending}
      createError={create.error}
      createCooldown={cooldown.secondsLeft}
      secretExpiry={secretExpiry}
      onSecretExpiry={setSecretExpiry}
      onSecretDialog={(open) => {
        if (!open) return;
        setSecretExpiry(NO_EXPIRY);
        setLocalSecretError(undefined);
        addSecret.reset();
      }}
      onAddSecret={(id) => {
        const r = createCredentialBody(secretExpiry, Date.now());
        if (!("body" in r)) {
          addSecret.reset();
          setLocalSecretError({ id, error: new ApiError({ status: 400, code: "validation_failed", ...r }) });
          return Promise.reject(new Error(r.message));
        }
        setLocalSecretError(undefined);
        const account = accounts.data?.find((a) => a.id === id);
        return addSecret.mutateAsync({ id, body: r.body }).then((c) => {
          if (account) setCreated({ account, credential: c });
          announce("Client secret added. Copy it now: it is shown once.");
        });
      }}
      addingSecret={addSecret.isPending}
      addSecretError={
        localSecretError ??
        (addSecret.error && addSecret.variables
          ? { id: addSecret.variables.id, error: addSecret.error }
          : undefined)
      }
      created={created}
      onCloseCreated={() => setCreated(undefined)}
      onRevokeSecret={(id, credentialId) =>
        revokeSecret
          .mutateAsync({ id, credentialId, key: keys.keyFor(`credential ${credentialId}`) })
          .then(() => {
            keys.done(`credential ${credentialId}`);
            announce("Client secret revoked.");
          })
      }
      revokingSecret={revokeSecret.isPending}
      revokeSecretError={
        revokeSecret.error && revokeSecret.variables
          ? { id: revokeSecret.variables.credentialId, error: revokeSecret.error }
          : undefined
      }
      onDisable={(id) =>
        disable.mutateAsync({ id, key: keys.keyFor(`account ${id}`) }).then(() => {
          keys.done(`account ${id}`);
          announce("Service account disabled.");
        })
      }
      disabling={disable.isPending}
      disableError={
        disable.error && disable.variables ? { id: disable.variables.id, error: disable.error } : undefined
      }
    />
  );
}
export { ServiceAccountsPage as Component };
