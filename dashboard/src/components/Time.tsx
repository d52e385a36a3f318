import { localTime, utcTime } from "../lib/format";

/// A time in the reader's zone, named, with UTC on hover.
export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span className="muted">–</span>;
  return (
    <time dateTime={at} title={utcTime(at)}>
      {localTime(at)}
    </time>
  );
}
