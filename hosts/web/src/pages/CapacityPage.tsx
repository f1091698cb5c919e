import { useQuery } from "@tanstack/react-query";
import { nodesQuery, skusQuery } from "../api/queries/compute";
import { loadable } from "../components/States";
import { CapacityPageView } from "./CapacityPageView";

export function CapacityPage() {
  const skus = useQuery(skusQuery());
  const nodes = useQuery(nodesQuery());
  return <CapacityPageView skus={loadable(skus)} nodes={loadable(nodes)} />;
}
export { CapacityPage as Component };
