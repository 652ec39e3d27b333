"""Each day's report: what the agents did, where, with whom, what they
remember, which moves full places turned away and what became of the
scripted events; as Markdown and JSON in reports/, as a daily_reports row,
and (with a report channel) POSTed to a webhook.  Also one agent's day, read
back from the database (:func:`agent_day`)."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence, TypedDict

import apsw
import numpy as np

from chronoledger import sqlite as db
from chronoledger._fsutil import atomic_write_bytes
from chronoledger.errors import NotFoundError
from chronoledger.world import store
from chronoledger.world.agents import Agents
from chronoledger.world.config import WorldConfig
from chronoledger.world.environment import Environment
from chronoledger.world.results import RunOptions, TickResult


class RunView(Protocol):
    """What a day's report reads of a run (chronoledger.world.scheduler.WorldRun is one)."""
    conn: apsw.Connection
    db_file: Path

    @property
    def run_id(self) -> int: ...
    @property
    def cfg(self) -> WorldConfig: ...
    @property
    def agents(self) -> Agents: ...
    @property
    def env(self) -> Environment: ...
    @property
    def act_category(self) -> list[str]: ...
    def day_label(self, day: int) -> str: ...
    def stamp(self, day: int, tick: int) -> tuple[str, int]: ...

TOP = 5
#: Transcripts kept in a Markdown report; the rest are in the database.
MAX_TRANSCRIPTS = 50
#: Names listed in a line of Markdown before "and N more" (the JSON has them all).
MAX_NAMES = 12


class Transcript(TypedDict):
    """One conversation a day's report shows, turn by turn."""
    tick: int
    time: str                       # the tick's time of day, "09:00"
    kind: str                       # duo_chat | group_meeting
    conversation: int               # conversations.id
    turns: list[str]                # "Name: what they said"


class ScriptedEvent(TypedDict):
    """What became of one scripted event of the day (the scheduler's
    ScriptedOutcome, with the time of its tick)."""
    tick: int
    time: str
    type: str
    agents: list[str]
    location: str | None
    prompt: str | None
    held: bool
    took_part: list[str]
    away: list[str]                 # on the way to its place, too late to take part
    busy: list[str]                 # travelling or past the day's cap when it came
    turned_away: list[str]          # a move a full place refused


class TallyState(TypedDict):
    """A DayTally's figures in a checkpoint's JSON (its arrays are stored beside it)."""
    actions: dict[str, int]
    categories: dict[str, int]
    places: dict[str, int]
    memories: dict[str, int]
    conversations: int
    # a checkpoint written before transcripts were dicts holds [title, turns] pairs (see _transcript)
    transcripts: list[Transcript]
    more_transcripts: int
    refused: dict[str, int]         # moves turned away, by place name (absent from older checkpoints)
    scripted: list[ScriptedEvent]   # (absent from older checkpoints)


class PairChange(TypedDict):
    agents: list[str]               # two names
    change: float


class BusyAgent(TypedDict):
    agent: str
    actions: int


class PlaceRefusals(TypedDict):
    location: str
    capacity: int
    moves: int                      # moves it turned away that day


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
    moves_refused: int              # moves that full places turned away
    agents_turned_away: int         # agents turned away at least once
    refused_by_place: list[PlaceRefusals]       # most refusals first
    scripted_events: list[ScriptedEvent]        # in the order they fired
    relationships_strengthened: list[PairChange]
    relationships_weakened: list[PairChange]
    new_memories_by_kind: dict[str, int]
    busiest_agents: list[BusyAgent]


def clock(minute_of_day: int) -> str:
    """``09:00`` (a minute past the day's end, 24:00 and on, counts on from midnight)."""
    m = minute_of_day % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


class DayTally:
    """What a day's report needs, added up tick by tick (and kept in the
    run's checkpoint, so that a resumed day reports all of its ticks)."""

    def __init__(self, n_agents: int):
        self.actions: Counter[str] = Counter()
        self.categories: Counter[str] = Counter()
        self.places: Counter[str] = Counter()
        self.per_agent = np.zeros(n_agents, dtype=np.int64)
        self.refused_per_agent = np.zeros(n_agents, dtype=np.int64)
        self.deltas: dict[tuple[int, int], float] = {}
        self.memories: Counter[str] = Counter()   # set from the writer's counts (WorldState.day_memories) at day end
        self.conversations = 0
        self.transcripts: list[Transcript] = []
        self.more_transcripts = 0
        self.refused: Counter[str] = Counter()
        self.scripted: list[ScriptedEvent] = []

    def add(self, w: RunView, tick: int, t: TickResult) -> None:
        acted = t["acted"]
        self.per_agent[acted] += 1
        # counted with bincount: a tick of a large run has tens of thousands of events
        for counter, names, codes in ((self.actions, t["action_names"], t["action"][acted]),
                                      (self.categories, w.act_category, t["activity"][acted]),
                                      (self.places, w.env.names, t["loc"])):
            for k, n in enumerate(np.bincount(codes, minlength=len(names)).tolist()):
                if n:
                    counter[names[k]] += n
        turned = np.flatnonzero(t["refused"] >= 0)
        if len(turned):
            self.refused_per_agent[turned] += 1
            for k, n in enumerate(np.bincount(t["refused"][turned], minlength=len(w.env.names)).tolist()):
                if n:
                    self.refused[w.env.names[k]] += n
        for a, b, d in t["deltas"]:
            self.deltas[(a, b)] = self.deltas.get((a, b), 0.0) + d
        self.conversations += len(t["chats"])
        taken = 0
        for c, turns in sorted(t["transcripts"].items()):     # only the first few are captured (scheduler)
            if len(self.transcripts) < MAX_TRANSCRIPTS:
                _, kind, _ = t["chats"][c]
                self.transcripts.append({"tick": tick, "time": t["clock"], "kind": t["action_names"][kind],
                                         "conversation": t["conv_base"] + c, "turns": turns})
                taken += 1
        self.more_transcripts += len(t["chats"]) - taken
        for o in t["scripted"]:
            self.scripted.append({"tick": o["tick"], "time": t["clock"], "type": o["type"], "agents": list(o["agents"]),
                                  "location": o["location"], "prompt": o["prompt"], "held": bool(o["held"]),
                                  "took_part": list(o["took_part"]), "away": list(o["away"]),
                                  "busy": list(o["busy"]), "turned_away": list(o["turned_away"])})

    def arrays(self) -> tuple[dict[str, np.ndarray], TallyState]:
        """(arrays, small JSON state) for a checkpoint."""
        pairs = np.array(list(self.deltas), dtype=np.int32).reshape(-1, 2)
        arrays: dict[str, np.ndarray] = {"tally_per_agent": self.per_agent.astype(np.int32), "tally_pairs": pairs,
                                         "tally_deltas": np.array(list(self.deltas.values()), dtype=np.float64),
                                         "tally_refused": self.refused_per_agent.astype(np.int32)}
        state: TallyState = {
            "actions": dict(self.actions), "categories": dict(self.categories), "places": dict(self.places),
            "memories": dict(self.memories), "conversations": self.conversations,
            # copies: the checkpoint is written on the run's writer thread while the next tick adds
            # to the tally (each transcript and scripted event is never changed once added)
            "transcripts": list(self.transcripts), "more_transcripts": self.more_transcripts,
            "refused": dict(self.refused), "scripted": list(self.scripted)}
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
        t.transcripts = [_transcript(x) for x in s["transcripts"]]
        t.more_transcripts = s["more_transcripts"]
        # a checkpoint of an older version has no refusals or scripted events: its day reports none before it
        t.refused = Counter(s.get("refused", {}))
        t.scripted = list(s.get("scripted", []))
        if "tally_refused" in arrays:
            t.refused_per_agent = arrays["tally_refused"].astype(np.int64)
        return t


_OLD_TITLE = re.compile(r"tick (\d+), (\w+) #(\d+)\Z")


def _transcript(x: Any) -> Transcript:
    """A transcript as a checkpoint holds it: a dict, or (written before
    reports showed times) a [title, turns] pair, whose time is found from its
    tick when the day is written (see _timed)."""
    if isinstance(x, dict):
        return {"tick": x["tick"], "time": x["time"], "kind": x["kind"], "conversation": x["conversation"],
                "turns": list(x["turns"])}
    title, turns = x
    m = _OLD_TITLE.match(title)
    if m is None:
        raise ValueError(f"a transcript of the day's report has no tick in its title: {title!r}")
    return {"tick": int(m.group(1)), "time": "", "kind": m.group(2), "conversation": int(m.group(3)),
            "turns": list(turns)}


def _timed(cfg: WorldConfig, transcripts: list[Transcript]) -> list[Transcript]:
    return [x if x["time"] else {**x, "time": clock(cfg.tick_minute_of_day(x["tick"]))} for x in transcripts]


def title(x: Transcript) -> str:
    """A transcript's heading: ``09:00, duo_chat #12``."""
    return f"{x['time']}, {x['kind']} #{x['conversation']}"


def day_metrics(w: RunView, day: int, tally: DayTally) -> DayMetrics:
    """The figures of one day."""
    ag = w.agents
    per_agent = tally.per_agent

    def pair(item: tuple[tuple[int, int], float]) -> PairChange:
        (a, b), d = item
        return {"agents": [ag.names[a], ag.names[b]], "change": round(d, 4)}

    ranked = sorted(tally.deltas.items(), key=lambda kv: (-kv[1], kv[0]))
    busiest = np.argsort(-per_agent, kind="stable")[:TOP]
    capacity = dict(zip(w.env.names, w.env.capacity.tolist()))
    refused: list[PlaceRefusals] = [{"location": place, "capacity": int(capacity.get(place, 0)), "moves": n}
                                    for place, n in sorted(tally.refused.items(), key=lambda kv: (-kv[1], kv[0]))]
    return {
        "day_label": w.day_label(day),
        "events": int(per_agent.sum()),
        "agents_active": int((per_agent > 0).sum()),
        "agents": len(ag),
        "conversations": tally.conversations,
        "actions": dict(sorted(tally.actions.items())),
        "activities_per_category": dict(sorted(tally.categories.items())),
        "locations_visited": dict(sorted(tally.places.items())),
        "moves_refused": sum(tally.refused.values()),
        "agents_turned_away": int((tally.refused_per_agent > 0).sum()),
        "refused_by_place": refused,
        "scripted_events": list(tally.scripted),
        "relationships_strengthened": [pair(kv) for kv in ranked[:TOP] if kv[1] > 0],
        "relationships_weakened": [pair(kv) for kv in reversed(ranked[-TOP:]) if kv[1] < 0],
        "new_memories_by_kind": dict(sorted(tally.memories.items())),
        "busiest_agents": [{"agent": ag.names[i], "actions": int(per_agent[i])} for i in busiest if per_agent[i] > 0],
    }


def _cell(value: object) -> str:
    """A value in a Markdown table cell: its pipes escaped, on one line."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _names(names: Sequence[str]) -> str:
    """``Ava, Ben and Cleo``; past MAX_NAMES, ``... and 40 more``."""
    shown = list(names[:MAX_NAMES])
    more = len(names) - len(shown)
    if more:
        return ", ".join(shown) + f" and {more:,} more"
    return ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else "".join(shown)


def _scripted_line(e: ScriptedEvent) -> str:
    """A scripted event and what became of it, as a Markdown list item:
    ``- 11:00, group_meeting at park (Ava, Ben and Cleo), "Plan the hike": held with Ava and Ben; on the way: Cleo.``"""
    where = e["location"]
    what = e["type"] + ((" to " if e["type"] == "move" else " at ") + where if where else "")
    line = f"- {e['time']}, {what} ({_names(e['agents'])})" + (f', "{e["prompt"]}"' if e["prompt"] else "")
    # a move is held only if no one was turned away; those who did set off are named all the same
    went = [n for n in e["took_part"] if n not in e["turned_away"]]
    if e["held"] or (e["type"] == "move" and went):
        verb = {"move": "begun by ", "duo_chat": "held with ", "group_meeting": "held with "}.get(e["type"], "done by ")
        outcome = verb + _names(went)
    else:
        outcome = "not held"
    extras = [f"{label}: {_names(who)}" for label, who in (("on the way", e["away"]), ("busy", e["busy"]),
                                                          ("turned away", e["turned_away"])) if who]
    return f"{line}: " + "; ".join([outcome, *extras]) + "."


def render_markdown(m: DayMetrics, transcripts: list[Transcript] | None, more: int = 0) -> str:
    refused_moves = m.get("moves_refused", 0)          # a report stored before refusals were counted has none
    lines = [f"# World report: {m['day_label']}", "",
             f"{m['events']:,} events; {m['agents_active']:,} of {m['agents']:,} agents active; "
             f"{m['conversations']:,} conversations"
             + (f"; {refused_moves:,} moves turned away by full places." if refused_moves else "."), ""]

    def table(title: str, rows: Sequence[tuple[object, ...]], head: tuple[str, ...]) -> None:
        lines.extend([f"## {title}", ""])
        if not rows:
            lines.extend(["(none)", ""])
            return
        lines.append("| " + " | ".join(head) + " |")
        lines.append("| --- |" + " ---: |" * (len(head) - 1))
        lines.extend("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows)
        lines.append("")

    table("Actions", sorted(m["actions"].items()), ("action", "count"))
    table("Activities per category", sorted(m["activities_per_category"].items()), ("category", "count"))
    table("Locations visited", sorted(m["locations_visited"].items()), ("location", "agent-ticks"))
    by_place = m.get("refused_by_place", [])
    table("Moves turned away by full places", [(p["location"], p["capacity"], p["moves"]) for p in by_place],
          ("location", "capacity", "moves turned away"))
    if by_place:
        lines.extend([f"{m['agents_turned_away']:,} agents were turned away at least once.", ""])
    scripted = m.get("scripted_events", [])
    if scripted:
        lines.extend(["## Scripted events", ""])
        lines.extend(_scripted_line(e) for e in scripted)
        lines.append("")
    table("Relationships strengthened", [(" & ".join(p["agents"]), f"+{p['change']}")
                                         for p in m["relationships_strengthened"]], ("agents", "change"))
    table("Relationships weakened", [(" & ".join(p["agents"]), p["change"]) for p in m["relationships_weakened"]],
          ("agents", "change"))
    table("New memories by kind", sorted(m["new_memories_by_kind"].items()), ("kind", "count"))
    table("Busiest agents", [(b["agent"], b["actions"]) for b in m["busiest_agents"]], ("agent", "actions"))
    if transcripts is not None:
        lines.extend(["## Transcripts", ""])
        for x in transcripts:
            lines.append(f"### {title(x)}")
            lines.extend(f"- {t}" for t in x["turns"])
            lines.append("")
        if more:
            lines.extend([f"... and {more:,} more conversations (in the database: conversation_turns).", ""])
    return "\n".join(lines).rstrip() + "\n"


def write_day(w: RunView, day: int, tally: DayTally, options: RunOptions) -> list[Path]:
    """The day's report: a daily_reports row, files in reports/ (per
    --report-format), then, with a report channel, the JSON report (with the
    run's id) POSTed to it; a channel that fails raises ReportChannelError,
    after the row and files are written."""
    m = day_metrics(w, day, tally)
    transcripts = None if options.summary_only else _timed(w.cfg, tally.transcripts)
    summary = render_markdown(m, None)
    with db.write_transaction(w.conn, f"{w.db_file}: report of {m['day_label']}"):
        w.conn.execute("INSERT INTO daily_reports (run_id, day_label, summary_text, metrics_json, created_at) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, day_label) DO UPDATE SET "
                       "summary_text = excluded.summary_text, metrics_json = excluded.metrics_json",
                       (w.run_id, m["day_label"], summary, json.dumps(m, sort_keys=True),
                        w.stamp(day, w.cfg.ticks_per_day - 1)[0]))
    body: dict[str, object] = dict(m)
    if transcripts is not None:
        body["transcripts"] = [{"title": title(x), **x} for x in transcripts]
    out: list[Path] = []
    fmt = options.report_format
    if fmt != "none":
        folder = options.reports_dir or w.db_file.parent / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        base = folder / f"run-{w.run_id}-{m['day_label']}"
        if fmt in ("markdown", "both"):
            p = base.with_suffix(".md")
            _write(p, render_markdown(m, transcripts, 0 if transcripts is None else tally.more_transcripts))
            out.append(p)
        if fmt in ("json", "both"):
            p = base.with_suffix(".json")
            _write(p, json.dumps(body, indent=2, ensure_ascii=False) + "\n")
            out.append(p)
    # getattr: RunOptions of a build without report channels has no such field
    channel = getattr(options, "report_channel", None)
    if channel is not None:
        channel.post({"run_id": w.run_id, **body})
    return out


def _write(path: Path, text: str) -> None:
    """Written beside, fsynced and renamed into place: a report is whole or absent."""
    atomic_write_bytes(path, text.encode("utf-8"))


# --- one agent's day, read back from the database ------------------------------------------------------------------

class AgentRef(TypedDict):
    id: int
    name: str


class AgentEvent(TypedDict):
    """One thing an agent did (a world_events row)."""
    tick: int
    time: str
    action: str
    activity: str | None
    location: str | None            # where it was; for a move, where it went
    conversation: int | None
    partner: str | None             # a duo chat's other speaker
    refused_by: str | None          # the full place that turned its move away
    arrives: str | None             # a move: when it gets there (None: at once)


class AgentTurn(TypedDict):
    round: int
    agent: str
    text: str


class AgentConversation(TypedDict):
    id: int
    tick: int
    time: str
    kind: str
    topic: str
    location: str | None
    others: list[str]               # who else spoke
    turns: list[AgentTurn]


class AgentMemory(TypedDict):
    time: str
    kind: str
    importance: int
    text: str


class AgentDay(TypedDict):
    """One agent's day in one run: what it did, tick by tick, what it said
    and heard, and the memories it made that day."""
    run_id: int
    day_label: str
    agent: AgentRef
    actions: dict[str, int]
    events: list[AgentEvent]
    conversations: list[AgentConversation]
    memories: list[AgentMemory]


def agent_day(db_url: str | os.PathLike[str], day_label: str, agent: str | int,
              run_id: int | None = None) -> AgentDay:
    """One agent's day (``agent``: its name, or its id), from the latest run
    that has that day unless ``run_id`` says which; read-only.  Memories
    belong to agents, not runs: those listed are the ones made that day.
    A database, run, day or agent that does not exist is a NotFoundError
    naming those that do."""
    path = store.db_path(db_url)
    if not path.is_file():
        raise NotFoundError(f"{path}: no such world database")
    store.refuse_foreign(path)
    conn = db.open_readonly(path, db.DEFAULT_BUSY_TIMEOUT_MS)      # a run may be writing it
    try:
        with db.named_damage(path, f"reading the day {day_label} of {agent}"):
            return _agent_day(conn, path, day_label, str(agent).strip(), run_id)
    finally:
        conn.close()


def _agent_day(conn: apsw.Connection, path: Path, day_label: str, agent: str, run_id: int | None) -> AgentDay:
    def has_day(rid: int) -> bool:
        return bool(conn.execute("SELECT 1 FROM world_events WHERE run_id = ? AND day_label = ? LIMIT 1",
                                 (rid, day_label)).fetchall())

    runs = [store.as_int(r, "runs.id") for r, in conn.execute("SELECT id FROM runs ORDER BY id DESC")]
    if run_id is not None:
        if run_id not in runs:
            raise NotFoundError(f"{path}: no run {run_id} (" + (f"runs: {_listed(sorted(runs))}" if runs else
                                                                "no runs yet") + ")")
        if not has_day(run_id):
            raise NotFoundError(f"{path}: run {run_id} has no day {day_label!r} ({_known_days(path, run_id)})")
        rid = run_id
    else:
        found = next((r for r in runs if has_day(r)), None)
        if found is None:
            raise NotFoundError(f"{path}: no run has a day {day_label!r} ({_known_days(path, None)})")
        rid = found
    n_agents, config_json = conn.execute("SELECT agents, config_json FROM runs WHERE id = ?", (rid,)).fetchall()[0]
    cfg = store.recorded_config(path, rid, config_json)
    # a run's agents are the first N by id (see scheduler._Agents)
    names = {store.as_int(i, "agents.id"): store.as_text(n, "agents.name") for i, n in conn.execute(
        "SELECT id, name FROM agents ORDER BY id LIMIT ?", (store.as_int(n_agents, "runs.agents"),))}
    by_name = {n: i for i, n in names.items()}
    aid = by_name.get(agent)
    if aid is None and agent.isdigit() and int(agent) in names:
        aid = int(agent)
    if aid is None:
        listed = list(names.values())
        raise NotFoundError(f"{path}: run {rid} has no agent {agent!r} (its {len(listed):,} agents: "
                            f"{_names(listed)})")
    places = {store.as_int(i, "locations.id"): store.as_text(n, "locations.name")
              for i, n in conn.execute("SELECT id, name FROM locations")}
    doings = {store.as_int(i, "activities.id"): store.as_text(n, "activities.name")
              for i, n in conn.execute("SELECT id, name FROM activities")}

    def at(tick: int, ticks_later: int = 0) -> str:
        return clock(cfg.tick_minute_of_day(tick) + ticks_later * cfg.tick_minutes)

    events: list[AgentEvent] = []
    for tick, action, activity, location, meta_json in conn.execute(
            "SELECT tick_index, action, activity_id, location_id, metadata_json FROM world_events "
            "WHERE run_id = ? AND day_label = ? AND agent_id = ? ORDER BY tick_index, id", (rid, day_label, aid)):
        tick = store.as_int(tick, "world_events.tick_index")
        meta = _meta(meta_json)
        travel = meta.get("travel_ticks")
        events.append({"tick": tick, "time": at(tick), "action": store.as_text(action, "world_events.action"),
                       "activity": doings.get(activity) if isinstance(activity, int) else None,
                       "location": places.get(location) if isinstance(location, int) else None,
                       "conversation": _int_or_none(meta.get("conversation")),
                       "partner": names.get(meta["partner"]) if isinstance(meta.get("partner"), int) else None,
                       "refused_by": places.get(meta["refused_by"]) if isinstance(meta.get("refused_by"), int)
                       else None,
                       "arrives": at(tick, travel) if isinstance(travel, int) and travel > 0 else None})
    conversations = _conversations(conn, rid, aid, [e["conversation"] for e in events
                                                    if e["conversation"] is not None], names, places, at)
    has_importance = any(r[1] == "importance" for r in conn.execute("PRAGMA table_info(memories)"))
    memories: list[AgentMemory] = [
        {"time": store.as_text(made, "memories.created_at")[11:16], "kind": store.as_text(kind, "memories.kind"),
         "importance": store.as_int(imp, "memories.importance"), "text": store.as_text(text, "memories.text")}
        for kind, imp, text, made in conn.execute(
            # a database from before memories had an importance: they count as 3, as its migration says
            "SELECT kind, " + ("importance" if has_importance else "3") + ", text, created_at FROM memories "
            "WHERE agent_id = ? AND substr(created_at, 1, 10) = ? ORDER BY id", (aid, day_label))]
    return {"run_id": rid, "day_label": day_label, "agent": {"id": aid, "name": names[aid]},
            "actions": dict(sorted(Counter(e["action"] for e in events).items())), "events": events,
            "conversations": conversations, "memories": memories}


def _conversations(conn: apsw.Connection, rid: int, aid: int, ids: list[int], names: Mapping[int, str],
                   places: Mapping[int, str], at: Callable[[int], str]) -> list[AgentConversation]:
    """The conversations ``ids`` of run ``rid``, with their turns, in the order they were held."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))          # at most one a tick: well under SQLite's limit on parameters
    out: dict[int, AgentConversation] = {}
    for cid, tick, kind, topic, location in conn.execute(
            f"SELECT id, tick_index, kind, topic, location_id FROM conversations WHERE run_id = ? AND id IN ({marks}) "
            "ORDER BY tick_index, id", (rid, *ids)):
        tick, cid = store.as_int(tick, "conversations.tick_index"), store.as_int(cid, "conversations.id")
        out[cid] = {
            "id": cid, "tick": tick, "time": at(tick), "kind": store.as_text(kind, "conversations.kind"),
            "topic": store.as_text(topic, "conversations.topic"),
            "location": places.get(location) if isinstance(location, int) else None, "others": [], "turns": []}
    for cid, rnd, speaker, content in conn.execute(
            f"SELECT conversation_id, round, agent_id, content FROM conversation_turns WHERE conversation_id IN "
            f"({marks}) ORDER BY conversation_id, round, id", ids):
        c = out.get(cid)
        if c is None:
            continue
        who = names.get(speaker, f"agent {speaker}") if isinstance(speaker, int) else "?"
        c["turns"].append({"round": store.as_int(rnd, "conversation_turns.round"), "agent": who,
                           "text": store.as_text(content, "conversation_turns.content")})
        if speaker != aid and who not in c["others"]:
            c["others"].append(who)
    return list(out.values())


def _meta(raw: apsw.SQLiteValue) -> dict[str, Any]:
    """A world event's metadata_json (a damaged one reads as none: the event itself is still worth showing)."""
    try:
        value = json.loads(raw) if isinstance(raw, (str, bytes)) else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _listed(values: Iterable[object]) -> str:
    return _names([str(v) for v in values])


def _known_days(path: Path, run_id: int | None) -> str:
    """What days the database's reports are of, for a NotFoundError."""
    days = store.report_days(path, run_id)
    if not days:
        return "no day has a report yet"
    return "reports: " + store.days_text(days)


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def render_agent_day(d: AgentDay) -> str:
    """An agent's day as Markdown."""
    who = d["agent"]["name"]
    acts = ", ".join(f"{n:,} {a}" for a, n in d["actions"].items())
    lines = [f"# {who}: {d['day_label']} (run {d['run_id']})", "",
             _count(len(d["events"]), "event", "events") + (f" ({acts})" if acts else "") +
             f"; {_count(len(d['conversations']), 'conversation', 'conversations')}; "
             f"{_count(len(d['memories']), 'new memory', 'new memories')}.", "",
             "## Timeline", ""]
    if d["events"]:
        lines.extend(["| time | action | activity | place | note |", "| --- | --- | --- | --- | --- |"])
        for e in d["events"]:
            notes = []
            if e["partner"]:
                notes.append(f"with {e['partner']}")
            if e["conversation"] is not None:
                notes.append(f"conversation #{e['conversation']}")
            if e["refused_by"]:
                notes.append(f"turned away by {e['refused_by']} (full)")
            if e["arrives"]:
                notes.append(f"on the way until {e['arrives']}")
            lines.append("| " + " | ".join(_cell(v) for v in (e["time"], e["action"], e["activity"] or "",
                                                               e["location"] or "", "; ".join(notes))) + " |")
    else:
        lines.append(f"(nothing: {who} did not act that day)")
    lines.extend(["", "## Conversations", ""])
    if not d["conversations"]:
        lines.extend(["(none)", ""])
    for c in d["conversations"]:
        head = f"### {c['time']}, {c['kind']} #{c['id']}"
        if c["location"]:
            head += f" at {c['location']}"
        if c["others"]:
            head += f", with {_names(c['others'])}"
        if c["topic"]:
            head += f" (about {c['topic']})"
        lines.append(head)
        lines.extend(f"- {t['agent']}: {' '.join(t['text'].split())}" for t in c["turns"])
        lines.append("")
    lines.extend(["## New memories", ""])
    if not d["memories"]:
        lines.append("(none)")
    lines.extend(f"- {m['time']}, {m['kind']} (importance {m['importance']}): {' '.join(m['text'].split())}"
                 for m in d["memories"])
    return "\n".join(lines).rstrip() + "\n"
