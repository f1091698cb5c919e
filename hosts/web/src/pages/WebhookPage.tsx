import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useNavigate, useParams } from "react-router";
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
  const { project } = useProject();
  return <WebhookScreen key={project.id + "\n" + id} projectId={project.id} id={id} />;
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
      pager={{
        page: pages.page,
        hasPrev: pages.page > 1,
        hasNext: !!deliveries.data?.next_cursor,
        onPrev: pages.prev,
        onNext: () => pages.next(deliveries.data?.next_cursor),
        busy: deliveries.isFetching,
      }}
    />
  );
}
export { WebhookPage as Component };
