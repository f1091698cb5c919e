import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { adminTenantsQuery } from "../../api/queries/admin";
import { loadable } from "../../components/States";
import { useCursorPages } from "../../components/hooks";
import { TenantsPageView } from "./TenantsPageView";

export function TenantsPage() {
  const [draft, setDraft] = useState("");
  const [name, setName] = useState("");
  const pages = useCursorPages();
  const q = useQuery({ ...adminTenantsQuery(name, pages.cursor), placeholderData: (p) => p });
  return (
    <TenantsPageView
      page={loadable(q)}
      draft={draft}
      onDraft={setDraft}
      onApply={() => (setName(draft), pages.reset())}
      pager={pages.pager(q.data?.next_cursor, q.isFetching)}
    />
  );
}
export { TenantsPage as Component };
