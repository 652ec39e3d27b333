"""Each day's report: what the agents did, where, with whom, what they
remember; as Markdown and JSON in reports/, and as a daily_reports row."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence, TypedDict

import numpy as np

from chronoledger import sqlite as db
from chronoledger._fsutil import atomic_write_bytes
from chronoledger.world.config import ACTIONS

if TYPE_CHECKING:                      # pragma: no cover
    from chronoledger.world.scheduler import RunOptions, TickResult, WorldRun

TOP = 5
#: Transcripts kept in a Markdown report; the rest are in the database.
MAX_TRANSCRIPTS = 50


class TallyState(TypedDict):
    """A DayTally's figures in a checkpoint's JSON (its arrays are stored beside it)."""
    actions: dict[str, int]
    categories: dict[str, int]
    places: dict[str, int]
    memories: dict[str, int]
    conversations: int
    transcripts: list[tuple[str, list[str]]]      # read back from JSON as [title, turns] lists
    more_transcripts: int


class PairChange(TypedDict):
    agents: list[str]               # two names
    change: float


class BusyAgent(TypedDict):
    agent: str
    actions: int


class DayMetrics(TypedDict):
    """A day's figures: the JSON report, and daily_reports.metrics_json."""
    day_label: str
    events: int
    agents_active: int
    agents: int
    conversations: int
    actions: dict[str, int]
    activities_per_category: dict[str, int]
    locations_visited: dict[str, int]
    relationships_strengthened: list[PairChange]
    relationships_weakened: list[PairChange]
    new_memories_by_kind: dict[str, int]
    busiest_agents: list[BusyAgent]


class DayTally:
    """What a day's report needs, added up tick by tick (and kept in the
    run's checkpoint, so that a resumed day reports all of its ticks)."""

    def __init__(self, n_agents: int):
        self.actions: Counter[str] = Counter()
        self.categories: Counter[str] = Counter()
        self.places: Counter[str] = Counter()
        self.per_agent = np.zeros(n_agents, dtype=np.int64)
        self.deltas: dict[tuple[int, int], float] = {}
        self.memories: Counter[str] = Counter()   # set from the writer's counts (WorldRun.day_memories) at day end
        self.conversations = 0
        self.transcripts: list[tuple[str, list[str]]] = []
        self.more_transcripts = 0

    def add(self, w: "WorldRun", tick: int, t: "TickResult") -> None:
        acted = t["acted"]
        self.per_agent[acted] += 1
        # counted with bincount: a tick of a large run has tens of thousands of events
        for counter, names, codes in ((self.actions, ACTIONS, t["action"][acted]),
                                      (self.categories, w.act_category, t["activity"][acted]),
                                      (self.places, w.env.names, t["loc"])):
            for k, n in enumerate(np.bincount(codes, minlength=len(names)).tolist()):
                if n:
                    counter[names[k]] += n
        for a, b, d in t["deltas"]:
            self.deltas[(a, b)] = self.deltas.get((a, b), 0.0) + d
        self.conversations += len(t["chats"])
        taken = 0
        for c, turns in sorted(t["transcripts"].items()):     # only the first few are captured (scheduler)
            if len(self.transcripts) < MAX_TRANSCRIPTS:
                _, kind, _ = t["chats"][c]
                self.transcripts.append((f"tick {tick}, {ACTIONS[kind]} #{t['conv_base'] + c}", turns))
                taken += 1
        self.more_transcripts += len(t["chats"]) - taken

    def arrays(self) -> tuple[dict[str, np.ndarray], TallyState]:
        """(arrays, small JSON state) for a checkpoint."""
        pairs = np.array(list(self.deltas), dtype=np.int32).reshape(-1, 2)
        arrays: dict[str, np.ndarray] = {"tally_per_agent": self.per_agent.astype(np.int32), "tally_pairs": pairs,
                                         "tally_deltas": np.array(list(self.deltas.values()), dtype=np.float64)}
        state: TallyState = {
            "actions": dict(self.actions), "categories": dict(self.categories), "places": dict(self.places),
            "memories": dict(self.memories), "conversations": self.conversations,
            # a copy: the checkpoint is written on the run's writer thread while the next tick adds
            # to the tally (each transcript's turns are never changed once added)
            "transcripts": list(self.transcripts), "more_transcripts": self.more_transcripts}
        return arrays, state

    @classmethod
    def from_state(cls, n_agents: int, s: TallyState, arrays: Mapping[str, np.ndarray]) -> "DayTally":
        t = cls(n_agents)
        t.actions, t.categories, t.places = Counter(s["actions"]), Counter(s["categories"]), Counter(s["places"])
        t.per_agent = arrays["tally_per_agent"].astype(np.int64)
        t.deltas = {(int(a), int(b)): float(d) for (a, b), d in zip(arrays["tally_pairs"].tolist(),
                                                                    arrays["tally_deltas"].tolist())}
        t.memories = Counter(s["memories"])
        t.conversations = s["conversations"]
        t.transcripts = [(title, turns) for title, turns in s["transcripts"]]
        t.more_transcripts = s["more_transcripts"]
        return t


def day_metrics(w: "WorldRun", day: int, tally: DayTally) -> DayMetrics:
    """The figures of one day."""
    ag = w.agents
    per_agent = tally.per_agent

    def pair(item: tuple[tuple[int, int], float]) -> PairChange:
        (a, b), d = item
        return {"agents": [ag.names[a], ag.names[b]], "change": round(d, 4)}

    ranked = sorted(tally.deltas.items(), key=lambda kv: (-kv[1], kv[0]))
    busiest = np.argsort(-per_agent, kind="stable")[:TOP]
    return {
        "day_label": w.day_label(day),
        "events": int(per_agent.sum()),
        "agents_active": int((per_agent > 0).sum()),
        "agents": len(ag),
        "conversations": tally.conversations,
        "actions": dict(sorted(tally.actions.items())),
        "activities_per_category": dict(sorted(tally.categories.items())),
        "locations_visited": dict(sorted(tally.places.items())),
        "relationships_strengthened": [pair(kv) for kv in ranked[:TOP] if kv[1] > 0],
        "relationships_weakened": [pair(kv) for kv in reversed(ranked[-TOP:]) if kv[1] < 0],
        "new_memories_by_kind": dict(sorted(tally.memories.items())),
        "busiest_agents": [{"agent": ag.names[i], "actions": int(per_agent[i])} for i in busiest if per_agent[i] > 0],
    }


def render_markdown(m: DayMetrics, transcripts: list[tuple[str, list[str]]] | None, more: int = 0) -> str:
    lines = [f"# World report: {m['day_label']}", "",
             f"{m['events']:,} events; {m['agents_active']:,} of {m['agents']:,} agents active; "
             f"{m['conversations']:,} conversations.", ""]

    def table(title: str, rows: Sequence[tuple[object, object]], head: tuple[str, str]) -> None:
        lines.extend([f"## {title}", ""])
        if not rows:
            lines.extend(["(none)", ""])
            return
        lines.append(f"| {head[0]} | {head[1]} |")
        lines.append("| --- | ---: |")
        lines.extend(f"| {a} | {b} |" for a, b in rows)
        lines.append("")

    table("Actions", sorted(m["actions"].items()), ("action", "count"))
    table("Activities per category", sorted(m["activities_per_category"].items()), ("category", "count"))
    table("Locations visited", sorted(m["locations_visited"].items()), ("location", "agent-ticks"))
    table("Relationships strengthened", [(" & ".join(p["agents"]), f"+{p['change']}")
                                         for p in m["relationships_strengthened"]], ("agents", "change"))
    table("Relationships weakened", [(" & ".join(p["agents"]), p["change"]) for p in m["relationships_weakened"]],
          ("agents", "change"))
    table("New memories by kind", sorted(m["new_memories_by_kind"].items()), ("kind", "count"))
    table("Busiest agents", [(b["agent"], b["actions"]) for b in m["busiest_agents"]], ("agent", "actions"))
    if transcripts is not None:
        lines.extend(["## Transcripts", ""])
        for title, turns in transcripts:
            lines.append(f"### {title}")
            lines.extend(f"- {t}" for t in turns)
            lines.append("")
        if more:
            lines.extend([f"... and {more:,} more conversations (in the database: conversation_turns).", ""])
    return "\n".join(lines).rstrip() + "\n"


def write_day(w: "WorldRun", day: int, tally: DayTally, options: "RunOptions") -> list[Path]:
    """The day's report: a daily_reports row, and files in reports/ (per --report-format)."""
    m = day_metrics(w, day, tally)
    transcripts = None if options.summary_only else tally.transcripts
    summary = render_markdown(m, None)
    with db.write_transaction(w.conn, f"{w.db_file}: report of {m['day_label']}"):
        w.conn.execute("INSERT INTO daily_reports (run_id, day_label, summary_text, metrics_json, created_at) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, day_label) DO UPDATE SET "
                       "summary_text = excluded.summary_text, metrics_json = excluded.metrics_json",
                       (w.run_id, m["day_label"], summary, json.dumps(m, sort_keys=True),
                        w._stamp(day, w.cfg.ticks_per_day - 1)[0]))
    out: list[Path] = []
    fmt = options.report_format
    if fmt == "none":
        return out
    folder = options.reports_dir or w.db_file.parent / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / f"run-{w.run_id}-{m['day_label']}"
    if fmt in ("markdown", "both"):
        p = base.with_suffix(".md")
        _write(p, render_markdown(m, transcripts, 0 if transcripts is None else tally.more_transcripts))
        out.append(p)
    if fmt in ("json", "both"):
        p = base.with_suffix(".json")
        body: dict[str, object] = dict(m)
        if transcripts is not None:
            body["transcripts"] = [{"title": t, "turns": turns} for t, turns in transcripts]
        _write(p, json.dumps(body, indent=2, ensure_ascii=False) + "\n")
        out.append(p)
    return out


def _write(path: Path, text: str) -> None:
    """Written beside, fsynced and renamed into place: a report is whole or absent."""
    atomic_write_bytes(path, text.encode("utf-8"))
