import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useProject } from "../auth";
import { createWebhookMutation, webhooksQuery } from "../api/queries/webhooks";
import type { CreatedWebhookEndpoint } from "../api/types";
import { loadable } from "../components/States";
import { useCooldown } from "../components/hooks";
import { useAnnounce } from "../components/Announcer";
import { WebhooksPageView } from "./WebhooksPageView";
import { createBody, emptyDraft, type EndpointDraft } from "./webhooks";

export function WebhooksPage() {
  const { project } = useProject();
  // Another project starts afresh: a half-typed endpoint is not registered on the wrong one.
  return <WebhooksScreen key={project.id} projectId={project.id} projectName={project.name} />;
}

function WebhooksScreen({ projectId, projectName }: { projectId: string; projectName: string }) {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const list = useQuery(webhooksQuery(projectId));
  const [draft, setDraft] = useState<EndpointDraft>(emptyDraft);
  const [created, setCreated] = useState<CreatedWebhookEndpoint>();
  const cooldown = useCooldown();
  const create = useMutation({ ...createWebhookMutation(qc, projectId), onError: cooldown.trip });
  return (
    <WebhooksPageView
      projectName={projectName}
      endpoints={loadable(list)}
      draft={draft}
      onDraft={setDraft}
      onCreate={() =>
        create.mutate(createBody(draft), {
          onSuccess: (c) => {
            setCreated(c);
            setDraft(emptyDraft());
            announce("Webhook endpoint registered. Copy its signing secret now.");
          },
        })
      }
      creating={create.isPending}
      createError={create.error}
      createCooldown={cooldown.secondsLeft}
      created={created}
      onCloseCreated={() => setCreated(undefined)}
    />
  );
}
export { WebhooksPage as Component };
