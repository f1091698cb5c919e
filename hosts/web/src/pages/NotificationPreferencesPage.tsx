import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import {
  notificationPreferencesQuery,
  setNotificationPreferencesMutation,
} from "../api/queries/notifications";
import { loadable } from "../components/States";
import { useIdempotencyKey } from "../components/hooks";
import { useAnnounce } from "../components/Announcer";
import { NotificationPreferencesPageView } from "./NotificationPreferencesPageView";

export function NotificationPreferencesPage() {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const q = useQuery(notificationPreferencesQuery());
  // The edits over what was loaded; dropped once saved.
  const [edits, setEdits] = useState<Record<string, boolean>>({});
  const saved = q.data?.email;
  const draft = saved && { ...saved, ...edits };
  const dirty = !!saved && Object.entries(edits).some(([k, on]) => (saved[k] ?? true) !== on);
  const idem = useIdempotencyKey(draft);
  const save = useMutation(setNotificationPreferencesMutation(qc));
  return (
    <NotificationPreferencesPageView
      preferences={loadable(q)}
      draft={draft}
      onToggle={(kind, on) => setEdits((e) => ({ ...e, [kind]: on }))}
      onSave={() =>
        draft &&
        save.mutate(
          { email: draft, key: idem.key },
          {
            onSuccess: () => {
              setEdits({});
              idem.reset();
              announce("Email preferences saved.");
            },
          },
        )
      }
      saving={save.isPending}
      saveError={save.error}
      dirty={dirty}
    />
  );
}
export { NotificationPreferencesPage as Component };
