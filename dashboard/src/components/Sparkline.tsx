/// A row's trend in a table cell: an SVG line, scaled to its own maximum.
export function Sparkline({ values, label }: { values: number[]; label: string }) {
  const width = 96;
  const height = 22;
  if (values.length < 2) return <span className="muted">–</span>;
  const max = Math.max(...values, 1);
  const step = width / (values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - (v / max) * (height - 2)).toFixed(1)}`);
  return (
    <svg className="sparkline" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
      <polyline points={points.join(" ")} fill="none" stroke="currentColor" strokeWidth="1.5" />
    </svg>
  );
}
