// A uPlot chart of live time series: canvas drawing, fast enough to redraw
// on every pushed event, and no inline script or style (the page's CSP).
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Line {
  label: string;
  values: (number | null)[];
  color: string;
}

export interface ChartProps {
  title: string;
  /// Unix seconds, oldest first.
  x: number[];
  lines: Line[];
  /// Values are fractions shown as percentages.
  percent?: boolean;
  height?: number;
}

function options(props: ChartProps, width: number): uPlot.Options {
  const format = (v: number | null) =>
    v === null ? "–" : props.percent ? `${(v * 100).toFixed(1)} %` : v.toLocaleString("en");
  return {
    width,
    height: props.height ?? 180,
    scales: props.percent ? { y: { range: [0, 1] } } : { y: { range: (_u, _min, max) => [0, Math.max(max, 1)] } },
    axes: [
      { stroke: "currentColor", grid: { stroke: "rgba(128,128,128,0.15)" } },
      {
        stroke: "currentColor",
        grid: { stroke: "rgba(128,128,128,0.15)" },
        values: (_u, ticks) => ticks.map((t) => (props.percent ? `${Math.round(t * 100)} %` : String(t))),
        size: 56,
      },
    ],
    series: [
      {},
      ...props.lines.map((line) => ({
        label: line.label,
        stroke: line.color,
        width: 2,
        // A rate is undefined where nothing finished: bridge those gaps.
        spanGaps: props.percent === true,
        // A rate's lone bucket is a point, not nothing.
        points: props.percent ? { show: true, size: 5 } : {},
        value: (_u: uPlot, v: number | null) => format(v),
      })),
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
}

export function Chart(props: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = `${props.percent ? "p" : "n"}:${props.lines.map((l) => l.label).join(",")}`;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const u = new uPlot(options(props, el.clientWidth || 600), [props.x, ...props.lines.map((l) => l.values)], el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: el.clientWidth, height: props.height ?? 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
    // Rebuilt only when the lines themselves change; new data is set below.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData([props.x, ...props.lines.map((l) => l.values)]);
  }, [props.x, props.lines]);

  // What the chart holds, for a test or a screen reader to read off it.
  const sum = props.lines.reduce((t, l) => t + l.values.reduce<number>((a, v) => a + (v ?? 0), 0), 0);
  return (
    <figure className="chart" data-points={props.x.length} data-sum={sum}>
      <figcaption>{props.title}</figcaption>
      <div ref={box} role="img" aria-label={`${props.title}, ${props.x.length} points`} />
    </figure>
  );
}
