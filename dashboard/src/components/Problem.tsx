import type { ApiError } from "../api/client";

/// A load's error, next to what it failed to load; it goes when a later load succeeds.
export function Problem({ error, what }: { error: ApiError | null; what: string }) {
  if (!error) return null;
  const text =
    error.code === "network" ? `Cannot reach smsops to load ${what}; trying again.` : `${what}: ${error.message} (${error.code})`;
  return (
    <p className="problem" role="alert">
      {text}
    </p>
  );
}

export function Empty({ children }: { children: string }) {
  return <p className="empty">{children}</p>;
}

export function Loading() {
  return (
    <p className="loading" aria-busy="true">
      Loading…
    </p>
  );
}
