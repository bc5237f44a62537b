// Small hand-drawn SVG charts for the dashboard: bars (stacked or grouped), a line, horizontal
// bars. Each chart has a text summary for screen readers; the dashboard adds a data table.

import { h } from "./common.js";

export const COLORS = { 1: "#1d4ed8", 2: "#d97706", 3: "#17703c", 4: "#b42318" };
const W = 600;
const H = 220;
const M = { top: 12, right: 14, bottom: 30, left: 50 };

export function percent(value) {
  return value == null ? "—" : `${Math.round(value * 100)}%`;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function frame(summary, maxValue, format, ticks = 4) {
  const svg = h("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary, preserveAspectRatio: "xMidYMid meet" });
  const plotH = H - M.top - M.bottom;
  for (let i = 0; i <= ticks; i += 1) {
    const value = (maxValue.min ?? 0) + ((maxValue.max - (maxValue.min ?? 0)) * i) / ticks;
    const y = M.top + plotH - (plotH * i) / ticks;
    svg.appendChild(h("svg:line", { x1: M.left, x2: W - M.right, y1: y, y2: y, stroke: i ? "#e4e7eb" : "#9aa5b1", "stroke-width": "1" }));
    svg.appendChild(h("svg:text", { x: M.left - 6, y: y + 4, "text-anchor": "end", "font-size": "13", fill: "#52606d" }, format(value)));
  }
  return svg;
}

function xLabels(svg, labels, xOf) {
  const every = Math.max(1, Math.ceil(labels.length / 7));
  const last = labels.length - 1;
  labels.forEach((label, i) => {
    if ((last - i) % every) return; // aligned on the newest day, which is always labelled
    const anchor = i === last && xOf(i) > W - M.right - 20 ? "end" : "middle";
    svg.appendChild(h("svg:text", { x: anchor === "end" ? W - 2 : xOf(i), y: H - 10, "text-anchor": anchor, "font-size": "13", fill: "#52606d" }, label));
  });
}

/**
 * data: [{label, values: [..]}]; series names the values. Stacked unless grouped.
 */
export function barChart(data, { series, grouped = false, colors = [1, 2, 3] }) {
  const totals = data.map((d) => (grouped ? Math.max(0, ...d.values) : d.values.reduce((a, b) => a + b, 0)));
  const highest = Math.max(0, ...totals);
  // Whole numbers on the axis: 0..max in steps of 1 up to 5, else five steps of a round number.
  const max = highest <= 5 ? Math.max(1, Math.ceil(highest)) : niceMax(highest);
  const ticks = max <= 5 ? max : 5;
  const sum = data.reduce((n, d) => n + (grouped ? d.values[0] : d.values.reduce((a, b) => a + b, 0)), 0);
  const peak = totals.length ? data[totals.indexOf(Math.max(...totals))] : null;
  const summary = `${series.join(" and ")}: total ${sum}${peak && Math.max(...totals) > 0 ? `, highest ${Math.max(...totals)} on ${peak.label}` : ""}.`;
  const svg = frame(summary, { max }, (v) => String(Math.round(v)), ticks);
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const band = plotW / Math.max(1, data.length);
  const barW = Math.max(2, band * 0.7);
  const xOf = (i) => M.left + band * i + band / 2;
  data.forEach((d, i) => {
    let base = 0;
    d.values.forEach((value, s) => {
      const height = (plotH * value) / max;
      const width = grouped ? barW / d.values.length : barW;
      const x = grouped ? xOf(i) - barW / 2 + width * s : xOf(i) - barW / 2;
      const y = M.top + plotH - height - (grouped ? 0 : (plotH * base) / max);
      if (!grouped) base += value;
      if (value <= 0) return;
      svg.appendChild(h("svg:rect", { x, y, width: Math.max(1, width - (grouped ? 1 : 0)), height, rx: "2", fill: COLORS[colors[s] || 1] },
        h("svg:title", {}, `${d.label}: ${value} ${series[s] || ""}`)));
    });
  });
  xLabels(svg, data.map((d) => d.label), xOf);
  return svg;
}

/** points: [{label, value|null}], drawn as a line with gaps where value is null. */
export function lineChart(points, { min = 0, max = 1, format = String, name = "", color = 1 }) {
  const known = points.filter((p) => p.value != null);
  const avg = known.length ? known.reduce((n, p) => n + p.value, 0) / known.length : null;
  const summary = known.length
    ? `${name}: ${known.length} days with data, average ${format(avg)}, last ${format(known[known.length - 1].value)}.`
    : `${name}: no data in this period.`;
  const svg = frame(summary, { min, max }, format);
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const xOf = (i) => M.left + (points.length > 1 ? (plotW * i) / (points.length - 1) : plotW / 2);
  const yOf = (v) => M.top + plotH - (plotH * (v - min)) / (max - min);
  let path = "";
  points.forEach((p, i) => {
    if (p.value == null) return;
    const previous = points[i - 1];
    path += `${previous && previous.value != null ? "L" : "M"}${xOf(i).toFixed(1)},${yOf(p.value).toFixed(1)} `;
  });
  if (path) svg.appendChild(h("svg:path", { d: path, fill: "none", stroke: COLORS[color], "stroke-width": "2.5" }));
  points.forEach((p, i) => {
    if (p.value == null) return;
    svg.appendChild(h("svg:circle", { cx: xOf(i), cy: yOf(p.value), r: "3.5", fill: COLORS[color] },
      h("svg:title", {}, `${p.label}: ${format(p.value)}`)));
  });
  if (!known.length) {
    svg.appendChild(h("svg:text", { x: W / 2, y: H / 2, "text-anchor": "middle", "font-size": "14", fill: "#52606d" }, "No data in this period"));
  }
  xLabels(svg, points.map((p) => p.label), xOf);
  return svg;
}

/** items: [{name, value, note?, href?}] as labelled horizontal bars (HTML, so names wrap and link). */
export function hbars(items, { label = "", color = 1 } = {}) {
  const max = Math.max(1, ...items.map((i) => i.value));
  return h("div", { role: "list", "aria-label": label }, items.map((item) => {
    const fill = h("span", { class: `fill-${color}` });
    fill.style.width = `${(100 * item.value) / max}%`;
    return h("div", { class: "hbar", role: "listitem" },
      h("span", { class: "name", title: item.note ? `${item.name} — ${item.note}` : item.name },
        item.href ? h("a", { href: item.href }, item.name) : item.name,
        item.note && h("span", { class: "muted small" }, ` · ${item.note}`)),
      h("span", { class: "track", "aria-hidden": "true" }, fill),
      h("span", { class: "num" }, String(item.value)));
  }));
}
