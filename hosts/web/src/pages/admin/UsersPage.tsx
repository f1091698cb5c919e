import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { adminUsersQuery, createUserMutation, type NewUser, type UserFilter } from "../../api/queries/admin";
import { loadable } from "../../components/States";
import { useCooldown, useCursorPages, useIdempotencyKey } from "../../components/hooks";
import { useAnnounce } from "../../components/Announcer";
import { UsersPageView } from "./UsersPageView";

const blank: NewUser = {
  email: "",
  display_name: "",
  where: "new",
  tenant_id: "",
  role: "member",
  new_tenant_name: "",
};

export function UsersPage() {
  const qc = useQueryClient();
  const announce = useAnnounce();
  const [draft, setDraft] = useState<UserFilter>({});
  const [filter, setFilter] = useState<UserFilter>({});
  const pages = useCursorPages();
  const q = useQuery({ ...adminUsersQuery(filter, pages.cursor), placeholderData: (p) => p });
  const [form, setForm] = useState<NewUser>(blank);
  const idem = useIdempotencyKey(form);
  const cooldown = useCooldown();
  const create = useMutation({ ...createUserMutation(qc), onError: cooldown.trip });
  return (
    <UsersPageView
      page={loadable(q)}
      draft={draft}
      onDraft={setDraft}
      onApply={() => {
        setFilter(draft);
        pages.reset();
      }}
      pager={pages.pager(q.data?.next_cursor, q.isFetching)}
      form={form}
      onForm={(f) => {
        setForm(f);
        create.reset();
      }}
      onCreate={() =>
        create.mutate(
          { ...form, key: idem.key },
          {
            onSuccess: (u) => {
              setForm(blank);
              idem.reset();
              announce(`User ${u.email} created.`);
            },
          },
        )
      }
      creating={create.isPending}
      createError={create.error}
      createCooldown={cooldown.secondsLeft}
      created={create.data}
    />
  );
}
export { UsersPage as Component };
