// Spend over time: usage debits from the ledger, summed per bucket (minute,
// hour or day by the span shown), drawn with uPlot. The same numbers are in a
// table for screen readers.
import "uplot/dist/uPlot.min.css";
import uPlot from "uplot";
import { useEffect, useMemo, useRef } from "react";
import type { LedgerEntry } from "../api/types";
import { money } from "./format";
import { useAppliedTheme } from "../theme/theme";
import { spendBuckets, timeRange } from "./spend";

/** The y axis's tick steps, in currency units: 1, 2 and 5 × a power of ten, from a cent up. */
const CENT_STEPS = [-2, -1, 0, 1, 2, 3, 4, 5, 6, 7].flatMap((e) =>
  [1, 2, 5].map((m) => Number((m * 10 ** e).toFixed(2))),
);

export function SpendChart({ entries, currency }: { entries: LedgerEntry[]; currency: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const { buckets, unit } = useMemo(() => spendBuckets(entries), [entries]);
  const total = buckets.reduce((s, b) => s + b.minor, 0);
  // The canvas takes the theme's colours when it is drawn: drawn again when the theme changes.
  const theme = useAppliedTheme();
  useEffect(() => {
    const el = ref.current;
    if (!el || buckets.length === 0) return;
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue("--fg-muted").trim() || "#555";
    const bar = css.getPropertyValue("--chart-bar").trim() || "#2f4fc7";
    const grid = css.getPropertyValue("--border").trim() || "#ddd";
    const size = unit === "minute" ? 60 : unit === "hour" ? 3600 : 86400;
    const data: uPlot.AlignedData = [buckets.map((b) => b.start), buckets.map((b) => b.minor / 100)];
    const xRange = timeRange(buckets, size);
    const plot = new uPlot(
      {
        width: Math.max(280, el.clientWidth),
        height: 220,
        legend: { show: false },
        cursor: { show: false },
        // The buckets' own span and one bucket either side, so a single bar reads as minutes, not
        // years: uPlot widens a one-point time scale by 86400 / ms (1,000 days for seconds) before
        // it asks for the range, so the range is taken from the buckets, not from its arguments.
        scales: { x: { time: true, range: () => xRange } },
        axes: [
          { stroke: fg, grid: { stroke: grid } },
          {
            stroke: fg,
            grid: { stroke: grid },
            // Whole cents only: ticks at half a cent read "$0.01, $0.01, $0.02".
            incrs: CENT_STEPS,
            values: (_u, v) => v.map((n) => money(Math.round(n * 100), currency)),
          },
        ],
        series: [
          {},
          {
            label: "Spend",
            stroke: bar,
            fill: bar,
            paths: uPlot.paths.bars?.({ size: [0.8, 40] }),
            points: { show: false },
          },
        ],
      },
      data,
      el,
    );
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.clientWidth), height: 220 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [buckets, currency, unit, theme]);
  if (buckets.length === 0)
    return <p className="muted">No usage debits yet: the chart fills in as nodes run.</p>;
  return (
    <figure style={{ margin: 0 }}>
      <div
        ref={ref}
        className="chart"
        role="img"
        aria-label={`Spend per ${unit}: ${money(total, currency)} over ${buckets.length} ${unit}s`}
        data-testid="spend-chart"
      />
      <figcaption className="muted">
        Usage debits per {unit}, {money(total, currency)} in all.
      </figcaption>
      <table className="visually-hidden">
        <caption>Spend per {unit}</caption>
        <thead>
          <tr>
            <th scope="col">From</th>
            <th scope="col">Spend</th>
          </tr>
        </thead>
        <tbody>
          {buckets.map((b) => (
            <tr key={b.start}>
              <td>{new Date(b.start * 1000).toLocaleString()}</td>
              <td>{money(b.minor, currency)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
