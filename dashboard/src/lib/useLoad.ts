import { useCallback, useEffect, useRef, useState, type DependencyList } from "react";
import { ApiError } from "../api/client";

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | null;
  loading: boolean;
  reload(): void;
}

export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError(0, "internal", err instanceof Error ? err.message : String(err));
}

const RETRY_MS = 3000;

/// Loads with `load` whenever `deps` change or `reload` is called. Only the
/// newest load's answer is kept, and a success clears the last error, so an
/// error on screen always describes the present.
export function useLoad<T>(load: () => Promise<T>, deps: DependencyList): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const latest = useRef(0);
  useEffect(() => {
    const mine = ++latest.current;
    let retry: ReturnType<typeof setTimeout> | null = null;
    setLoading(true);
    load().then(
      (value) => {
        if (latest.current !== mine) return;
        setData(value);
        setError(null);
        setLoading(false);
      },
      (err: unknown) => {
        if (latest.current !== mine) return;
        const error = asApiError(err);
        setError(error);
        setLoading(false);
        // No answer at all: try again by itself, so the error goes once the
        // network is back, without anyone reloading the page.
        if (error.code === "network") {
          retry = setTimeout(() => setTick((t) => t + 1), RETRY_MS);
        }
      },
    );
    return () => {
      latest.current += 1;
      if (retry) clearTimeout(retry);
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}
