import type { PairSummary } from "../api/types";
import { useApp } from "../app/context";
import { useSeries } from "../app/useSeries";
import { count, duration, pairName, percent } from "../lib/format";
import { Link } from "../lib/router";
import { Sparkline } from "./Sparkline";
import { Table, type Column } from "./Table";

function Trend({ pair }: { pair: PairSummary }) {
  const { window } = useApp();
  const { columns } = useSeries(pair.country_operator_id, window);
  return <Sparkline values={columns.sent} label={`messages sent on ${pairName(pair)} over ${window}`} />;
}

const finished = (p: PairSummary) => p.delivered + p.undelivered + p.failed;

const COLUMNS: Column<PairSummary>[] = [
  {
    key: "pair",
    label: "Pair",
    cell: (p) => <Link to={`/pairs/${p.country_operator_id}`}>{pairName(p)}</Link>,
    sort: (p) => pairName(p),
  },
  { key: "sent", label: "Sent", cell: (p) => count(p.sms_sent), sort: (p) => p.sms_sent, numeric: true },
  { key: "delivered", label: "Delivered", cell: (p) => count(p.delivered), sort: (p) => p.delivered, numeric: true },
  {
    key: "failed",
    label: "Failed",
    cell: (p) => count(p.failed + p.undelivered),
    sort: (p) => p.failed + p.undelivered,
    numeric: true,
  },
  {
    key: "success",
    label: "Success",
    cell: (p) => (finished(p) === 0 ? "–" : percent(p.success_rate)),
    sort: (p) => (finished(p) === 0 ? 2 : p.success_rate),
    numeric: true,
  },
  {
    key: "p95",
    label: "p95 delivery",
    cell: (p) => duration(p.to_delivered?.p95_ms),
    sort: (p) => p.to_delivered?.p95_ms ?? -1,
    numeric: true,
  },
  {
    key: "error",
    label: "Top error",
    cell: (p) => {
      const top = p.top_errors[0];
      return top ? `${top.code} × ${count(top.count)}` : "";
    },
  },
  { key: "trend", label: "Trend", cell: (p) => <Trend pair={p} /> },
];

/// Every pair's totals over the window; worst success rate first.
export function PairTable({ rows }: { rows: PairSummary[] }) {
  return (
    <Table
      id="metrics"
      caption="Pairs"
      columns={COLUMNS}
      rows={rows}
      rowKey={(p) => p.country_operator_id}
      empty="No messages in this window yet."
      filter={(p) => pairName(p)}
      initialSort={{ key: "sent", descending: true }}
    />
  );
}
