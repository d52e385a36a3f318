import type { Pair } from "../api/types";
import { useLoad, type Loaded } from "../lib/useLoad";
import { useApp } from "./context";

/// Every pair, loaded again whenever the live state asks for a reload.
export function usePairs(): Loaded<Pair[]> {
  const { client, live } = useApp();
  return useLoad(
    () => client.call("get", "/api/v1/country-operators", { query: { page_size: 100 } }).then((page) => page.items),
    [client, live.stale, live.changes.pair],
  );
}
