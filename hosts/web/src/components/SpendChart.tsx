// Spend over time: usage debits from the ledger, summed per bucket (minute,
// hour or day by the span shown), drawn with uPlot. The same numbers are in a
// table for screen readers.
import "uplot/dist/uPlot.min.css";
import uPlot from "uplot";
import { useEffect, useMemo, useRef } from "react";
import type { LedgerEntry } from "../api/types";
import { money } from "./format";

export interface Bucket {
  start: number; // unix seconds
  minor: number;
}

export function spendBuckets(entries: LedgerEntry[]): { buckets: Bucket[]; unit: "minute" | "hour" | "day" } {
  const debits = entries.filter((e) => e.type === "usage_debit");
  if (debits.length === 0) return { buckets: [], unit: "hour" };
  const times = debits.map((e) => Date.parse(e.created_at) / 1000);
  const span = Math.max(...times) - Math.min(...times);
  const unit = span < 2 * 3600 ? "minute" : span < 3 * 86400 ? "hour" : "day";
  const size = unit === "minute" ? 60 : unit === "hour" ? 3600 : 86400;
  const sums = new Map<number, number>();
  debits.forEach((e, i) => {
    const b = Math.floor((times[i] ?? 0) / size) * size;
    sums.set(b, (sums.get(b) ?? 0) + Math.abs(e.amount_minor));
  });
  const first = Math.min(...sums.keys());
  const last = Math.max(...sums.keys());
  const buckets: Bucket[] = [];
  for (let t = first; t <= last && buckets.length < 500; t += size)
    buckets.push({ start: t, minor: sums.get(t) ?? 0 });
  return { buckets, unit };
}

export function SpendChart({ entries, currency }: { entries: LedgerEntry[]; currency: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const { buckets, unit } = useMemo(() => spendBuckets(entries), [entries]);
  const total = buckets.reduce((s, b) => s + b.minor, 0);
  useEffect(() => {
    const el = ref.current;
    if (!el || buckets.length === 0) return;
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue("--fg-muted").trim() || "#555";
    const bar = css.getPropertyValue("--chart-bar").trim() || "#2f4fc7";
    const grid = css.getPropertyValue("--border").trim() || "#ddd";
    const size = unit === "minute" ? 60 : unit === "hour" ? 3600 : 86400;
    const data: uPlot.AlignedData = [buckets.map((b) => b.start), buckets.map((b) => b.minor / 100)];
    const plot = new uPlot(
      {
        width: Math.max(280, el.clientWidth),
        height: 220,
        legend: { show: false },
        cursor: { show: false },
        // One bucket either side, so a single bar reads as minutes, not years.
        scales: { x: { time: true, range: (_u, min, max) => [min - size, max + size] } },
        axes: [
          { stroke: fg, grid: { stroke: grid } },
          {
            stroke: fg,
            grid: { stroke: grid },
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
  }, [buckets, currency, unit]);
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
