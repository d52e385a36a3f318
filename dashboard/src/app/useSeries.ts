import { useEffect, useMemo, useRef, useState } from "react";
import type { SeriesPoint } from "../api/types";
import { liveDelta, type Tally } from "../live/reducer";
import { columns, WINDOWS, type Columns } from "../lib/series";
import { asApiError } from "../lib/useLoad";
import type { ApiError } from "../api/client";
import { useApp, type Window } from "./context";

const REFETCH_MS = 60_000;
const RETRY_MS = 3000;

/// A pair's (or, with "*", every pair's) series over `window`: fetched, then
/// moved on by every pushed event, and fetched again each minute.
export function useSeries(scope: string, window: Window): { columns: Columns; error: ApiError | null } {
  const { client, live } = useApp();
  const [points, setPoints] = useState<SeriesPoint[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  const [baseline, setBaseline] = useState<Tally>({});
  const tally = useRef(live.tally);
  tally.current = live.tally;
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    let gone = false;
    const load = () => {
      const until = Date.now();
      const since = new Date(until - WINDOWS[window].ms).toISOString();
      const taken = tally.current;
      client
        .call("get", "/api/v1/metrics/series", {
          query: {
            bucket: WINDOWS[window].bucket,
            since,
            ...(scope === "*" ? {} : { country_operator_id: scope }),
          },
        })
        .then(
          (series) => {
            if (gone) return;
            setPoints(series.points);
            setBaseline(taken);
            setNow(until);
            setError(null);
          },
          (err: unknown) => {
            if (gone) return;
            const error = asApiError(err);
            setError(error);
            // No answer: again soon, not in a minute.
            if (error.code === "network") retry = setTimeout(load, RETRY_MS);
          },
        );
    };
    let retry: ReturnType<typeof setTimeout> | null = null;
    load();
    const timer = setInterval(load, REFETCH_MS);
    return () => {
      gone = true;
      clearInterval(timer);
      if (retry) clearTimeout(retry);
    };
  }, [client, scope, window, live.stale]);

  const cols = useMemo(() => {
    const delta = liveDelta(live.tally, baseline, scope, WINDOWS[window].bucketMs);
    return columns(points, delta, window, Math.max(now, Date.now()));
  }, [points, baseline, live.tally, scope, window, now]);
  return { columns: cols, error };
}
