import { useMemo } from "react";
import { useApp } from "../app/context";
import { useSeries } from "../app/useSeries";
import { WINDOWS } from "../lib/series";
import { Chart } from "./Chart";
import { Problem } from "./Problem";

export const COLORS = { sent: "#3b82f6", delivered: "#16a34a", undelivered: "#d97706", failed: "#dc2626" };

/// Messages by status and the success rate over the chosen window, for one
/// pair or all of them.
export function Charts({ scope }: { scope: string }) {
  const { window } = useApp();
  const { columns, error } = useSeries(scope, window);
  const counts = useMemo(
    () => [
      { label: "sent", values: columns.sent, color: COLORS.sent },
      { label: "delivered", values: columns.delivered, color: COLORS.delivered },
      { label: "undelivered", values: columns.undelivered, color: COLORS.undelivered },
      { label: "failed", values: columns.failed, color: COLORS.failed },
    ],
    [columns],
  );
  const rate = useMemo(() => [{ label: "success rate", values: columns.success, color: COLORS.delivered }], [columns]);
  return (
    <div className="charts">
      <Problem error={error} what="the charts" />
      <Chart title={`Messages ${WINDOWS[window].per}`} x={columns.x} lines={counts} />
      <Chart title="Success rate" x={columns.x} lines={rate} percent />
    </div>
  );
}
