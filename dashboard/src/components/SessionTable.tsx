import type { Session } from "../api/types";
import { count, pairName } from "../lib/format";
import { Link } from "../lib/router";
import { Chip } from "./Chip";
import { SessionActions } from "./SessionActions";
import { Table, type Column } from "./Table";
import { Time } from "./Time";

const COLUMNS: Column<Session>[] = [
  {
    key: "pair",
    label: "Pair",
    cell: (s) => (
      <Link to={`/sessions/${s.id}`}>
        {pairName(s)}
        {s.is_high_priority && <span className="tag">high priority</span>}
      </Link>
    ),
    sort: (s) => pairName(s),
  },
  {
    key: "state",
    label: "State",
    cell: (s) => (
      <>
        <Chip status={s.state} />
        {s.state === "paused" && s.paused_reason && <span className="why"> waiting: {s.paused_reason}</span>}
        {(s.state === "failed" || s.state === "stopped") && s.reason && <span className="why"> {s.reason}</span>}
      </>
    ),
    sort: (s) => s.state,
  },
  {
    key: "rate",
    label: "Rate/min",
    cell: (s) =>
      s.effective_rate_per_minute < s.config.rate_per_minute - 1e-9 && s.state === "running"
        ? `${s.effective_rate_per_minute.toFixed(1)} of ${s.config.rate_per_minute}`
        : String(s.config.rate_per_minute),
    sort: (s) => s.config.rate_per_minute,
    numeric: true,
  },
  { key: "submitted", label: "Submitted", cell: (s) => count(s.counters.submitted), sort: (s) => s.counters.submitted, numeric: true },
  { key: "accepted", label: "Accepted", cell: (s) => <span className="accepted">{count(s.counters.accepted)}</span>, sort: (s) => s.counters.accepted, numeric: true },
  { key: "failed", label: "Failed", cell: (s) => count(s.counters.failed), sort: (s) => s.counters.failed, numeric: true },
  { key: "started", label: "Started", cell: (s) => <Time at={s.started_at ?? s.created_at} />, sort: (s) => s.started_at ?? s.created_at },
  { key: "actions", label: "", cell: (s) => <SessionActions session={s} /> },
];

export function SessionTable({ rows, id = "sessions" }: { rows: Session[]; id?: string }) {
  return (
    <Table
      id={id}
      caption="Sessions"
      columns={COLUMNS}
      rows={rows}
      rowKey={(s) => s.id}
      empty="No sessions yet."
      filter={(s) => `${pairName(s)} ${s.state}`}
      initialSort={{ key: "started", descending: true }}
    />
  );
}
