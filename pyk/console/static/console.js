// The console's charts (uPlot).  Everything else in the pages is server-rendered HTML and htmx.
"use strict";

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];

function chartWidth(el) { return Math.max(320, el.clientWidth || 800); }

// 1536 -> "1.5 Ki": byte rates on the axis and in the legend.
function binary(v) {
  if (v == null) return "-";
  const units = ["", " Ki", " Mi", " Gi", " Ti"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + units[i];
}

// Time series of /api/series, redrawn every 2 s: one chart per element with data-series, one
// line per name; "Produce p50" and "Produce p99" share a colour, the p99 dashed.
function consoleCharts(url) {
  const charts = {};
  async function refresh() {
    let data;
    try { data = await (await fetch(url)).json(); } catch (e) { return; }
    document.querySelectorAll("[data-series]").forEach((el) => {
      const group = data[el.dataset.series];
      const names = Object.keys(group);
      const columns = [data.times, ...names.map((n) => group[n])];
      const key = el.id + ":" + names.join(",");
      if (charts[el.id] && charts[el.id].key === key) { charts[el.id].plot.setData(columns); return; }
      if (charts[el.id]) charts[el.id].plot.destroy();
      const bytes = el.dataset.unit === "B/s";
      const format = bytes ? binary : (v) => (v == null ? "-" : v.toFixed(v < 10 ? 2 : 0));
      const colours = [...new Set(names.map((n) => n.split(" ")[0]))];
      const series = [{}, ...names.map((n) => ({
        label: n, stroke: PALETTE[colours.indexOf(n.split(" ")[0]) % PALETTE.length],
        width: n === "total" ? 2 : 1.5, dash: n.endsWith(" p99") ? [6, 4] : undefined,
        value: (u, v) => format(v), spanGaps: false,
      }))];
      const axis = { label: el.dataset.unit, size: 60 };
      if (bytes) axis.values = (u, ticks) => ticks.map(binary);
      const opts = { width: chartWidth(el), height: 200, series: series, axes: [{}, axis],
                     scales: { y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } } };
      charts[el.id] = { key: key, plot: new uPlot(opts, columns, el) };
    });
    document.querySelectorAll("[data-series]").forEach((el) => { el.dataset.points = String(data.times.length); });
  }
  document.addEventListener("DOMContentLoaded", () => { refresh(); setInterval(refresh, 2000); });
}

// Bar chart of a consumer group's lag per partition.
function lagChart(id, labels, lags) {
  const el = document.getElementById(id);
  if (!el || labels.length === 0) return;
  const xs = labels.map((_, i) => i);
  const bars = uPlot.paths.bars({ size: [0.6, 60] });
  const opts = {
    width: chartWidth(el), height: 200,
    scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } },
    axes: [{ values: (u, ticks) => ticks.map((t) => labels[t] ?? ""), splits: () => xs }, { label: "lag (messages)", size: 60 }],
    series: [{ label: "partition", value: (u, v) => labels[v] ?? "" }, { label: "lag", fill: "#2563eb88", stroke: "#2563eb", paths: bars, points: { show: false } }],
  };
  el.innerHTML = "";
  new uPlot(opts, [xs, lags], el);
  el.dataset.points = String(lags.length);
}
