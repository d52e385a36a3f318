import type { Sms } from "../api/types";
import { pairName } from "../lib/format";
import { Link } from "../lib/router";
import { Chip } from "./Chip";
import { Table, type Column } from "./Table";
import { Time } from "./Time";

const COLUMNS: Column<Sms>[] = [
  { key: "created", label: "Created", cell: (m) => <Link to={`/messages/${m.id}`}><Time at={m.created_at} /></Link> },
  { key: "pair", label: "Pair", cell: (m) => <Link to={`/pairs/${m.country_operator_id}`}>{pairName(m)}</Link> },
  { key: "to", label: "To", cell: (m) => <span className="mono">{m.to}</span> },
  { key: "segments", label: "Segments", cell: (m) => m.segments, numeric: true },
  { key: "status", label: "Status", cell: (m) => <Chip status={m.status} /> },
  {
    key: "error",
    label: "Error",
    cell: (m) => (m.error_code ? <span title={m.error_message ?? ""}>{m.error_code}</span> : ""),
  },
  {
    key: "session",
    label: "Session",
    cell: (m) => (m.session_id ? <Link to={`/sessions/${m.session_id}`}>session</Link> : "single"),
  },
];

/// Messages newest first, as the API pages them.
export function MessageTable({ rows, id = "messages" }: { rows: Sms[]; id?: string }) {
  return <Table id={id} caption="Messages" columns={COLUMNS} rows={rows} rowKey={(m) => m.id} empty="No messages." />;
}
