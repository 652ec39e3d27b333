// chronoledger serve: small SVG charts (no library, no build step).
// Each line is one <polyline data-series="NAME" data-points="N">, so a page's
// tests can count what was drawn.
"use strict";
const SVGNS = "http://www.w3.org/2000/svg";
// ten distinct hues (Tableau 10): lines of one chart never share a colour below eleven series
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
                 "#bab0ac"];
const PHASE_FILL = {train: "#dbe7fb", validate: "#fde7d4", dream: "#eadcf3"};

function el(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

// a legend: a swatch and a name for each item ({name, color}), in the colours the chart used
function legendOf(items) {
  const legend = document.createElement("div");
  legend.className = "legend";
  items.forEach((s, i) => {
    const span = document.createElement("span");
    const sw = document.createElement("i");
    sw.style.background = s.color || PALETTE[i % PALETTE.length];
    span.appendChild(sw);
    span.appendChild(document.createTextNode(s.name));
    legend.appendChild(span);
  });
  return legend;
}

function fmt(v) {
  if (!isFinite(v)) return "";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  return (Math.round(v * 1000) / 1000).toString();
}

// lineChart(container, {series: [{name, t: [...], y: [...]}], phases: [[a, b, name]], title, xFormat, width, height})
function lineChart(container, opts) {
  const W = opts.width || 860, H = opts.height || 300, L = 64, R = 12, T = 22, B = 28;
  const svg = el("svg", {class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img"});
  const all = opts.series.filter(s => s.t.length);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of all) {
    for (const t of s.t) { if (t < x0) x0 = t; if (t > x1) x1 = t; }
    for (const y of s.y) { if (y === null) continue; if (y < y0) y0 = y; if (y > y1) y1 = y; }
  }
  if (!all.length) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 = y0 + 1; y0 = y0 - 1; }
  const sx = t => L + (t - x0) / (x1 - x0) * (W - L - R);
  const sy = y => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  for (const [a, b, name] of (opts.phases || [])) {
    el("rect", {x: sx(a), y: T, width: Math.max(0.5, sx(b) - sx(a)), height: H - T - B,
                fill: PHASE_FILL[name] || "#eceff3", "data-phase": name}, svg);
  }
  el("line", {class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B}, svg);
  el("line", {class: "axis", x1: L, y1: T, x2: L, y2: H - B}, svg);
  for (let k = 0; k <= 4; k++) {
    const v = y0 + (y1 - y0) * k / 4;
    el("text", {x: 4, y: sy(v) + 4}, svg).textContent = fmt(v);
  }
  const xf = opts.xFormat || fmt;
  el("text", {x: L, y: H - 8}, svg).textContent = xf(x0);
  const last = el("text", {x: W - R, y: H - 8, "text-anchor": "end"}, svg);
  last.textContent = xf(x1);
  if (opts.title) el("text", {x: L, y: 14}, svg).textContent = opts.title;
  opts.series.forEach((s, i) => {
    const pts = [];
    for (let k = 0; k < s.t.length; k++) if (s.y[k] !== null) pts.push(`${sx(s.t[k]).toFixed(1)},${sy(s.y[k]).toFixed(1)}`);
    el("polyline", {points: pts.join(" "), stroke: s.color || PALETTE[i % PALETTE.length],
                    "data-series": s.name, "data-points": pts.length}, svg);
  });
  container.appendChild(svg);
  container.appendChild(legendOf(opts.series));
  return svg;
}

// barChart(container, {labels: [...], stacks: [{name, values: [...], color}], title}): stacked bars
function barChart(container, opts) {
  const W = opts.width || 860, H = opts.height || 240, L = 40, R = 10, T = 22, B = 28;
  const svg = el("svg", {class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img"});
  const n = opts.labels.length;
  const totals = opts.labels.map((_, k) => opts.stacks.reduce((acc, s) => acc + s.values[k], 0));
  const top = Math.max(1, ...totals);
  const bw = (W - L - R) / Math.max(1, n);
  el("line", {class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B}, svg);
  el("text", {x: 4, y: T + 4}, svg).textContent = String(top);
  el("text", {x: 4, y: H - B}, svg).textContent = "0";
  if (opts.title) el("text", {x: L, y: 14}, svg).textContent = opts.title;
  for (let k = 0; k < n; k++) {
    let base = 0;
    opts.stacks.forEach((s, i) => {
      const v = s.values[k];
      if (!v) return;
      const h = v / top * (H - T - B);
      el("rect", {x: L + k * bw + 1, y: H - B - base - h, width: Math.max(1, bw - 2), height: h,
                  fill: s.color || PALETTE[i % PALETTE.length], "data-stack": s.name, "data-value": v}, svg);
      base += h;
    });
  }
  if (n) {
    el("text", {x: L, y: H - 8}, svg).textContent = opts.labels[0];
    el("text", {x: W - R, y: H - 8, "text-anchor": "end"}, svg).textContent = opts.labels[n - 1];
  }
  container.appendChild(svg);
  container.appendChild(legendOf(opts.stacks));
  return svg;
}

async function getJSON(url) {
  const r = await fetch(url, {headers: {Accept: "application/json"}});
  const body = await r.json();
  if (!r.ok || !body.ok) throw new Error(body.error || `${url}: HTTP ${r.status}`);
  return body;
}

function showError(where, err) {
  const p = document.createElement("p");
  p.className = "error";
  p.textContent = String(err.message || err);
  where.appendChild(p);
}
