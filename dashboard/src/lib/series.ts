// Turns the API's series (empty buckets left out) and the live feed's
// counts since the fetch into evenly spaced columns a chart can draw.
import type { SeriesPoint } from "../api/types";
import type { Counts } from "../live/reducer";

export type Window = "1h" | "24h" | "7d";

export const WINDOWS: Record<Window, { ms: number; bucket: "1m" | "5m" | "1h"; bucketMs: number; per: string }> = {
  "1h": { ms: 3600_000, bucket: "1m", bucketMs: 60_000, per: "per minute" },
  "24h": { ms: 86_400_000, bucket: "5m", bucketMs: 300_000, per: "per 5 minutes" },
  "7d": { ms: 604_800_000, bucket: "1h", bucketMs: 3600_000, per: "per hour" },
};

export interface Columns {
  /// Bucket starts, Unix seconds.
  x: number[];
  sent: number[];
  delivered: number[];
  undelivered: number[];
  failed: number[];
  /// delivered / finished per bucket; null where none finished.
  success: (number | null)[];
}

export function columns(
  points: SeriesPoint[],
  live: Map<number, Counts>,
  window: Window,
  now: number = Date.now(),
): Columns {
  const { ms, bucketMs } = WINDOWS[window];
  const last = Math.floor(now / bucketMs) * bucketMs;
  const first = last - ms + bucketMs;
  const fetched = new Map<number, SeriesPoint>();
  for (const p of points) fetched.set(Math.floor(Date.parse(p.at) / bucketMs) * bucketMs, p);
  const out: Columns = { x: [], sent: [], delivered: [], undelivered: [], failed: [], success: [] };
  for (let at = first; at <= last; at += bucketMs) {
    const p = fetched.get(at);
    const l = live.get(at);
    const delivered = (p?.delivered ?? 0) + (l?.delivered ?? 0);
    const undelivered = (p?.undelivered ?? 0) + (l?.undelivered ?? 0);
    const failed = (p?.failed ?? 0) + (l?.failed ?? 0);
    const finished = delivered + undelivered + failed;
    out.x.push(at / 1000);
    out.sent.push((p?.sms_sent ?? 0) + (l?.sent ?? 0));
    out.delivered.push(delivered);
    out.undelivered.push(undelivered);
    out.failed.push(failed);
    out.success.push(finished === 0 ? null : delivered / finished);
  }
  return out;
}
