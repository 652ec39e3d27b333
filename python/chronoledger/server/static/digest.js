// chronoledger serve: the behaviour digest of a Chronos user: completions per
// day by status, the habits' streaks, and the dashboard's metrics.
"use strict";

const STATUS_COLORS = {completed: "#17a589", partial: "#f39c12", skipped: "#98a2b3", missed: "#e4572e"};

window.addEventListener("DOMContentLoaded", async () => {
  const main = document.querySelector("main");
  try {
    const [series, trends] = await Promise.all([getJSON("/api/data/series"), getJSON("/api/trends/metrics")]);
    const c = series.completions;
    barChart(document.getElementById("completions"), {
      labels: c.dates, title: "completions per day",
      stacks: Object.entries(c.statuses).map(([name, values]) => ({name, values, color: STATUS_COLORS[name]}))});
    const s = series.streaks;
    const days = s.dates.map(d => Date.parse(d) / 86400000);
    lineChart(document.getElementById("streaks"), {
      title: "streak of days done (habits to build)",
      xFormat: d => new Date(d * 86400000).toISOString().slice(0, 10),
      series: s.habits.map(h => ({name: `${h.name} (longest ${h.longest}, now ${h.current})`, t: days, y: h.streak}))});
    const m = trends.metrics;
    const table = document.getElementById("metrics");
    const rows = [];
    for (const [k, v] of Object.entries(m)) {
      if (v !== null && typeof v === "object") for (const [k2, v2] of Object.entries(v)) rows.push([`${k}.${k2}`, v2]);
      else rows.push([k, v]);
    }
    for (const [k, v] of rows) {
      const tr = document.createElement("tr");
      const a = document.createElement("td"), b = document.createElement("td");
      a.textContent = k;
      b.textContent = typeof v === "number" ? fmt(v) : JSON.stringify(v);
      tr.appendChild(a);
      tr.appendChild(b);
      table.appendChild(tr);
    }
  } catch (err) {
    showError(main, err);
  }
  document.body.dataset.ready = "1";
});
