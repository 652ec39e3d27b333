// chronoledger serve: run charts.  Several runs' metrics overlaid, one chart a
// metric, the phases the runs share shaded; thinned by the server (min/max
// buckets keep every extreme) unless "full resolution" is ticked.
"use strict";

const runsState = {runs: [], drawing: 0};

async function drawRuns() {
  const metric = document.getElementById("metric").value;
  const ticked = [...document.querySelectorAll("#run-list input:checked")].map(i => i.value);
  // a run without the metric is left out of the chart, and named under it
  const has = new Map(runsState.runs.map(r => [r.run, r.metrics.includes(metric)]));
  const picked = ticked.filter(r => has.get(r));
  const without = ticked.filter(r => !has.get(r));
  const full = document.getElementById("full").checked;
  const box = document.getElementById("charts");
  // a later change supersedes a drawing still waiting for its series: only the latest one draws
  const mine = ++runsState.drawing;
  document.body.dataset.ready = "0";
  if (!picked.length || !metric) {
    box.textContent = "";
    box.textContent = "Pick at least one run and a metric.";
    document.body.dataset.ready = "1";
    return;
  }
  try {
    const q = new URLSearchParams({metrics: metric});
    if (full) q.set("full", "1"); else q.set("points", document.getElementById("points").value);
    const got = await Promise.all(picked.map(r =>
      getJSON(`/api/runs/${r.split("/").map(encodeURIComponent).join("/")}/series?${q}`)));
    if (mine !== runsState.drawing) return;
    box.textContent = "";
    const axis = document.getElementById("axis").value;
    const series = got.map((b, i) => {
      const m = b.series.metrics[metric];
      const t0 = m.t.length ? m.t[0] : 0;
      const x = axis === "record" ? m.i : axis === "since" ? m.t.map(t => t - t0) : m.t;
      return {name: picked[i], t: x, y: m.y};
    });
    // phases shaded when one run is drawn (its own stretches), on the axis drawn
    let phases = [];
    if (got.length === 1) {
      const s = got[0].series;
      const t0 = s.phases.length ? s.phases[0][0] : 0;
      phases = axis === "record" ? s.phase_records
        : axis === "since" ? s.phases.map(([a, b, p]) => [a - t0, b - t0, p]) : s.phases;
    }
    const xLabel = {record: "record", since: "time since the run's first record", timestamp: "timestamp"}[axis];
    lineChart(box, {series, phases, title: `${metric}${full ? " (every record)" : ""} against ${xLabel}`});
    const note = document.createElement("p");
    note.className = "muted";
    note.id = "points-note";
    note.textContent = series.map(s => `${s.name}: ${s.t.length} points`).join("; ");
    box.appendChild(note);
    if (without.length) {
      const skipped = document.createElement("p");
      skipped.className = "muted";
      skipped.id = "skipped-note";
      skipped.textContent = `Not drawn (no ${metric}): ${without.join(", ")}`;
      box.appendChild(skipped);
    }
  } catch (err) {
    if (mine !== runsState.drawing) return;
    box.textContent = "";
    showError(box, err);
  }
  document.body.dataset.ready = "1";
}

function fillMetrics() {
  const picked = new Set([...document.querySelectorAll("#run-list input:checked")].map(i => i.value));
  const names = new Set();
  for (const r of runsState.runs) if (picked.has(r.run)) r.metrics.forEach(m => names.add(m));
  const sel = document.getElementById("metric");
  const before = sel.value;
  sel.textContent = "";
  for (const m of names) {
    const o = document.createElement("option");
    o.value = o.textContent = m;
    sel.appendChild(o);
  }
  if (names.has(before)) sel.value = before;
  else if (names.has("loss_value")) sel.value = "loss_value";
}

window.addEventListener("DOMContentLoaded", async () => {
  const list = document.getElementById("run-list");
  try {
    const body = await getJSON("/api/runs");
    runsState.runs = body.runs;
    body.runs.forEach((r, i) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = r.run;
      box.checked = r.schema === "cycle" || (i === 0 && !body.runs.some(x => x.schema === "cycle"));
      box.addEventListener("change", () => { fillMetrics(); drawRuns(); });
      label.appendChild(box);
      label.appendChild(document.createTextNode(` ${r.run} (${r.records.toLocaleString()} records)`));
      list.appendChild(label);
      list.appendChild(document.createElement("br"));
    });
    for (const p of body.unreadable) showError(list, new Error(`${p.run}: ${p.error}`));
    fillMetrics();
    for (const id of ["metric", "full", "points", "axis"]) document.getElementById(id).addEventListener("change", drawRuns);
    await drawRuns();
  } catch (err) {
    showError(list, err);
    document.body.dataset.ready = "1";
  }
});
