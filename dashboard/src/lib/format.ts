// Formatting shared by every view. Times are shown in the browser's own zone
// with the zone named, and the same instant in UTC on hover, so two people in
// different zones can compare what they read.

export function localTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return "";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const sameDay = at.toDateString() === now.toDateString();
  const options: Intl.DateTimeFormatOptions = sameDay
    ? { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" }
    : {
        year: "numeric",
        month: "short",
        day: "numeric",
        hour: "2-digit",
        minute: "2-digit",
        timeZoneName: "short",
      };
  return at.toLocaleString(undefined, options);
}

export function utcTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return `${at.toISOString().replace("T", " ").replace(/\.\d+Z$/, "")} UTC`;
}

export function percent(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return `${(x * 100).toFixed(1)} %`;
}

const counts = new Intl.NumberFormat("en");
export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? "–" : counts.format(n);
}

/// A latency: ms under a second, seconds under two minutes, then minutes.
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

export function pairName(p: { country?: string | null; operator?: string | null }): string {
  if (!p.country) return "";
  return `${p.country} / ${p.operator ?? ""}`;
}

/// delivered / finished, the API's own definition; null when none finished.
export function successRate(delivered: number, undelivered: number, failed: number): number | null {
  const finished = delivered + undelivered + failed;
  return finished === 0 ? null : delivered / finished;
}

export function relative(iso: string, now: Date = new Date()): string {
  const seconds = Math.round((now.getTime() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return `${Math.max(seconds, 0)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}
