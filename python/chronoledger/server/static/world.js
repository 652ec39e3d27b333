// chronoledger serve: the world replay.  One day of a run: the places with who
// is there at each tick, a scrubber, the conversations of the tick, the day's
// relationship changes, and one agent's day (click an agent).
"use strict";

const state = {tl: null, tick: 0, chosen: null, colors: {}};

function agentColor(i) { return `hsl(${(i * 137.508) % 360}, 55%, 45%)`; }

function placeAt(moves, tick) {
  // moves: [[tick, place id or null], ...] each time the place changes
  let here = null;
  for (const [t, p] of moves) { if (t > tick) break; here = p; }
  return here;
}

function renderTick() {
  const tl = state.tl, tick = state.tick;
  document.getElementById("clock").textContent = `${tl.day_label} ${tl.ticks[tick]} (tick ${tick + 1} of ${tl.ticks.length})`;
  const who = new Map(tl.places.map(p => [p.id, []]));
  const away = [];
  tl.agents.forEach((a, i) => {
    const p = placeAt(tl.moves[i], tick);
    (p === null || !who.has(p) ? away : who.get(p)).push(i);
  });
  const box = document.getElementById("places");
  box.textContent = "";
  const cards = tl.places.map(p => ({id: p.id, name: p.name, kind: p.kind, members: who.get(p.id)}));
  cards.push({id: "away", name: "on the way", kind: "", members: away});
  for (const c of cards) {
    const div = document.createElement("div");
    div.className = "place";
    div.dataset.place = c.name;
    const h = document.createElement("h3");
    h.textContent = c.name;
    const n = document.createElement("span");
    n.className = "count";
    n.textContent = String(c.members.length);
    h.appendChild(n);
    div.appendChild(h);
    for (const i of c.members) {
      const a = tl.agents[i];
      const dot = document.createElement("span");
      dot.className = "agent" + (state.chosen === a.name ? " chosen" : "");
      dot.style.background = agentColor(i);
      dot.dataset.agent = a.name;
      dot.title = `${a.name}${a.job ? " (" + a.job + ")" : ""}`;
      dot.textContent = a.name.replace(/[^0-9A-Z]/g, "").slice(-3) || a.name.slice(0, 2);
      dot.addEventListener("click", () => chooseAgent(a.name));
      div.appendChild(dot);
    }
    box.appendChild(div);
  }
  const convs = document.getElementById("conversations");
  convs.textContent = "";
  const now = tl.conversations.filter(c => c.tick === tick);
  if (!now.length) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = "No conversation at this tick.";
    convs.appendChild(p);
  }
  for (const c of now) {
    const div = document.createElement("div");
    div.className = "conv";
    const h = document.createElement("div");
    h.innerHTML = "<strong></strong> <span class=muted></span>";
    h.firstChild.textContent = `${c.kind} #${c.id}`;
    h.lastChild.textContent = `${c.place || ""} ${c.topic ? "- " + c.topic : ""}`;
    div.appendChild(h);
    for (const t of c.turns) {
      const p = document.createElement("div");
      p.className = "turn";
      p.textContent = `${t.agent}: ${t.text}`;
      div.appendChild(p);
    }
    convs.appendChild(div);
  }
}

function renderRelationships() {
  const box = document.getElementById("relationships");
  box.textContent = "";
  for (const key of ["strengthened", "weakened"]) {
    for (const r of state.tl.relationships[key]) {
      const li = document.createElement("li");
      li.textContent = `${r.agents.join(" & ")}: ${r.change > 0 ? "+" : ""}${r.change}`;
      li.dataset.kind = key;
      box.appendChild(li);
    }
  }
  if (!box.children.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "No relationship changed this day (or the day has no report yet).";
    box.appendChild(li);
  }
}

async function chooseAgent(name) {
  state.chosen = name;
  renderTick();
  const box = document.getElementById("agent-day");
  box.textContent = "Loading...";
  try {
    const q = new URLSearchParams({day: state.tl.day_label, run: state.tl.run_id});
    const body = await getJSON(`/api/world/agents/${encodeURIComponent(name)}?${q}`);
    const d = body.day;
    box.textContent = "";
    const h = document.createElement("h2");
    h.textContent = `${d.agent.name}'s day`;
    box.appendChild(h);
    const table = document.createElement("table");
    for (const e of d.events) {
      const tr = document.createElement("tr");
      for (const v of [e.time, e.action, e.activity || "", e.location || "", e.partner ? "with " + e.partner : ""]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
    box.appendChild(table);
  } catch (err) {
    box.textContent = "";
    showError(box, err);
  }
}

async function loadDay(day, run) {
  const q = new URLSearchParams();
  if (day) q.set("day", day);
  if (run) q.set("run", run);
  const body = await getJSON(`/api/world/timeline?${q}`);
  state.tl = body.timeline;
  state.tick = 0;
  const scrub = document.getElementById("scrubber");
  scrub.max = String(state.tl.ticks.length - 1);
  scrub.value = "0";
  document.getElementById("summary").textContent =
    `run ${state.tl.run_id}: ${state.tl.agents.length} agents, ${state.tl.places.length} places, ` +
    `${state.tl.conversations_total} conversations this day`;
  const days = document.getElementById("day");
  days.textContent = "";
  for (const d of state.tl.days) {
    const o = document.createElement("option");
    o.value = o.textContent = d;
    if (d === state.tl.day_label) o.selected = true;
    days.appendChild(o);
  }
  renderTick();
  renderRelationships();
}

window.addEventListener("DOMContentLoaded", async () => {
  const scrub = document.getElementById("scrubber");
  scrub.addEventListener("input", () => { state.tick = Number(scrub.value); renderTick(); });
  document.getElementById("day").addEventListener("change", e => loadDay(e.target.value, state.tl.run_id));
  document.getElementById("run").addEventListener("change", e => loadDay(null, e.target.value));
  try {
    // only runs with events can be replayed; a database without any says so instead of asking for one
    const runs = (await getJSON("/api/world/runs")).runs.filter(r => r.days.length);
    if (!runs.length) {
      const p = document.createElement("p");
      p.className = "panel";
      p.id = "no-runs";
      p.textContent = "This world database has no run with events yet: `chronoledger world run` records one.";
      document.querySelector("main").appendChild(p);
    } else {
      const pick = document.getElementById("run");
      for (const r of runs) {
        const o = document.createElement("option");
        o.value = String(r.id);
        o.textContent = `run ${r.id} (seed ${r.seed}, ${r.agents} agents, ${r.status})`;
        pick.appendChild(o);
      }
      await loadDay(null, runs[0].id);
    }
  } catch (err) {
    showError(document.querySelector("main"), err);
  }
  document.body.dataset.ready = "1";
});
