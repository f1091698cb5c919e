import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useParams } from "react-router";
import { adminUserQuery, suspendMutation } from "../../api/queries/admin";
import { skusQuery } from "../../api/queries/compute";
import { useProject } from "../../auth";
import { newId } from "../../api/client";
import { loadable } from "../../components/States";
import { useCooldown } from "../../components/hooks";
import { useAnnounce } from "../../components/Announcer";
import { UserPageView } from "./UserPageView";

export function UserPage() {
  const { id = "" } = useParams();
  const { me } = useProject();
  const qc = useQueryClient();
  const announce = useAnnounce();
  const q = useQuery(adminUserQuery(id));
  const skus = useQuery(skusQuery());
  const cooldown = useCooldown();
  const suspend = useMutation({ ...suspendMutation(qc), onError: cooldown.trip });
  return (
    <UserPageView
      detail={loadable(q)}
      skus={skus.data ?? []}
      isSelf={id === me.user.id}
      onSuspend={(on) =>
        suspend
          .mutateAsync({ id, suspend: on, key: newId() })
          .then((u) => announce(on ? `${u.email} suspended.` : `${u.email} reinstated.`))
      }
      onSuspendOpen={() => suspend.reset()}
      pending={suspend.isPending}
      error={suspend.error}
      cooldown={cooldown.secondsLeft}
    />
  );
}
export { UserPage as Component };
