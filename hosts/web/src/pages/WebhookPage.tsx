import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useNavigate, useParams, useSearchParams } from "react-router";
import { useProject } from "../auth";
import { newId } from "../api/client";
import {
  deleteWebhookMutation,
  rotateWebhookSecretMutation,
  updateWebhookMutation,
  webhookDeliveriesQuery,
  webhookQuery,
} from "../api/queries/webhooks";
import type { WebhookDeliveryStatus } from "../api/types";
import { loadable } from "../components/States";
import { useCooldown, useCursorPages, useIdempotencyKey } from "../components/hooks";
import { useAnnounce } from "../components/Announcer";
import { WebhookPageView } from "./WebhookPageView";
import { draftOf, emptyDraft, endpointChanges, previousSecretUntil, type EndpointDraft } from "./webhooks";

export function WebhookPage() {
  const { id = "" } = useParams();
  const { me, project, setProject } = useProject();
  const [params, setParams] = useSearchParams();
  // A notification's link names the endpoint's project (?project=), which
  // may not be the active one: it becomes the active project when it is one
  // of the user's, and the parameter goes, so the header's project and the
  // screen's stay the same from then on.
  const named = params.get("project");
  const projectId = named && me.projects.some((p) => p.id === named) ? named : project.id;
  useEffect(() => {
    if (named === null) return;
    if (projectId !== project.id) setProject(projectId);
    setParams(
      (p) => {
        p.delete("project");
        return p;
      },
      { replace: true },
    );
  }, [named, projectId, project.id, setProject, setParams]);
  return <WebhookScreen key={projectId + "\n" + id} projectId={projectId} id={id} />;
}

function WebhookScreen({ projectId, id }: { projectId: string; id: string }) {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const navigate = useNavigate();
  const endpoint = useQuery(webhookQuery(projectId, id));
  const [status, setStatus] = useState<WebhookDeliveryStatus | undefined>();
  const pages = useCursorPages();
  const deliveries = useQuery({
    ...webhookDeliveriesQuery(projectId, id, status, pages.cursor),
    placeholderData: (prev) => prev,
    enabled: endpoint.isSuccess,
  });

  const [draft, setDraft] = useState<EndpointDraft>(emptyDraft);
  const changes = endpoint.data && endpointChanges(endpoint.data, draft);
  // The same key while the edit is the same: a retried Save changes it once.
  const editKey = useIdempotencyKey({ id, changes });
  const cooldown = useCooldown();
  const edit = useMutation({ ...updateWebhookMutation(qc, projectId), onError: cooldown.trip });
  // Enable/disable is its own mutation so its pending state and error stay with its button.
  const toggle = useMutation(updateWebhookMutation(qc, projectId));
  const rotate = useMutation(rotateWebhookSecretMutation(qc, projectId));
  const [secret, setSecret] = useState<{ value: string; previousUntil: string }>();
  const del = useMutation(deleteWebhookMutation(qc, projectId));

  return (
    <WebhookPageView
      endpoint={loadable(endpoint)}
      draft={draft}
      onDraft={setDraft}
      onEditOpen={() => {
        if (endpoint.data) setDraft(draftOf(endpoint.data));
        edit.reset();
      }}
      onEdit={() =>
        changes
          ? edit
              .mutateAsync({ id, body: changes, key: editKey.key })
              .then(() => (editKey.reset(), announce("Endpoint saved.")))
          : Promise.resolve()
      }
      editing={edit.isPending}
      editError={edit.error}
      editCooldown={cooldown.secondsLeft}
      onEnable={(on) =>
        toggle
          .mutateAsync({ id, body: { enabled: on }, key: newId() })
          .then(() => announce(on ? "Endpoint enabled." : "Endpoint disabled."))
      }
      toggling={toggle.isPending}
      toggleError={toggle.error}
      onRotateOpen={() => rotate.reset()}
      onRotate={() =>
        rotate.mutateAsync(id).then((r) => {
          setSecret({ value: r.secret, previousUntil: previousSecretUntil(Date.now()) });
          announce("Signing secret rotated. Copy the new one now.");
        })
      }
      rotating={rotate.isPending}
      rotateError={rotate.error}
      secret={secret}
      onCloseSecret={() => setSecret(undefined)}
      onDelete={() =>
        del.mutateAsync({ id, key: newId() }).then(() => {
          announce("Webhook endpoint deleted.");
          navigate("/settings/webhooks");
        })
      }
      deleting={del.isPending}
      deleteError={del.error}
      deliveries={loadable(deliveries)}
      status={status}
      onStatus={(s) => {
        setStatus(s);
        pages.reset();
      }}
      pager={pages.pager(deliveries.data?.next_cursor, deliveries.isFetching)}
    />
  );
}
export { WebhookPage as Component };
