const TONES: Record<string, string> = {
  delivered: "good",
  running: "good",
  sent: "info",
  queued: "info",
  accepted: "info",
  starting: "info",
  open: "bad",
  failed: "bad",
  undelivered: "warn",
  paused: "warn",
  stopping: "warn",
  stopped: "muted",
  resolved: "muted",
};

/// A status, coloured by what it means and always spelled out (colour is
/// never the only sign).
export function Chip({ status }: { status: string }) {
  return <span className={`chip ${TONES[status] ?? "muted"}`}>{status}</span>;
}
