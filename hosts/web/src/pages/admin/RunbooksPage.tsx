import { useQuery } from "@tanstack/react-query";
import { useLocation } from "react-router";
import { runbooksQuery } from "../../api/queries/admin";
import { loadable } from "../../components/States";
// The operator runbook, bundled into this screen's lazy chunk when the
// console is built (make web rebuilds it when the document changes).
import runbook from "../../../../../doc/runbook.md?raw";
import { RunbooksPageView } from "./RunbooksPageView";

/** The URL's fragment without "#" (as written when it is not valid percent-encoding). */
function fragment(hash: string): string | undefined {
  if (!hash) return undefined;
  try {
    return decodeURIComponent(hash.slice(1));
  } catch {
    return hash.slice(1);
  }
}

export function RunbooksPage() {
  const { hash } = useLocation();
  const runbooks = useQuery(runbooksQuery());
  return <RunbooksPageView runbooks={loadable(runbooks)} source={runbook} section={fragment(hash)} />;
}
export { RunbooksPage as Component };
