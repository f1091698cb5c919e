import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { markReadMutation, notificationsQuery } from "../api/queries/notifications";
import { newId } from "../api/client";
import { loadable } from "../components/States";
import { useCooldown, useCursorPages } from "../components/hooks";
import { useAnnounce } from "../components/Announcer";
import { NotificationsPageView } from "./NotificationsPageView";

export function NotificationsPage() {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const [unreadOnly, setUnreadOnly] = useState(false);
  const pages = useCursorPages();
  const q = useQuery({ ...notificationsQuery(unreadOnly, pages.cursor), placeholderData: (p) => p });
  const cooldown = useCooldown();
  const mark = useMutation({ ...markReadMutation(qc), onError: cooldown.trip });
  return (
    <NotificationsPageView
      page={loadable(q)}
      unreadOnly={unreadOnly}
      onUnreadOnly={(v) => (setUnreadOnly(v), pages.reset())}
      pager={pages.pager(q.data?.next_cursor)}
      onMarkRead={(id) =>
        mark.mutate({ ids: [id], key: newId() }, { onSuccess: () => announce("Marked read.") })
      }
      onMarkAll={() =>
        mark.mutate(
          { all: true, key: newId() },
          { onSuccess: (r) => announce(`${r.marked} notifications marked read.`) },
        )
      }
      marking={mark.isPending}
      markError={mark.error}
      markCooldown={cooldown.secondsLeft}
    />
  );
}
export { NotificationsPage as Component };
