"""A day of a world run as a timeline to replay: the places, who is at each
one at every tick, the conversations held, and how relationships changed.

    from chronoledger.world.timeline import day_timeline, world_runs

    day_timeline("world/world.db", "2026-01-05")

Where an agent is comes from ``agent_locations`` (its stays, each from
``since_ts`` until ``until_ts``): at a tick, an agent is at the place of the
stay that covers the tick's simulated time, else at the place it reaches
before the next tick (a move takes minutes; a tick is often an hour), else
on its way (no place) for the whole tick.  Read-only; the database is never written.
"""

from __future__ import annotations

import bisect
import json
import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypedDict

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import NotFoundError
from chronoledger.world import store
from chronoledger.world.config import WorldConfig
from chronoledger.world.reporting import clock

__all__ = ["DayTimeline", "MAX_CONVERSATIONS", "day_timeline", "world_runs"]

#: conversations a timeline carries with their turns (a large run's day holds tens of thousands; the
#: rest are counted in ``conversations_total`` and read with ``world report``)
MAX_CONVERSATIONS = 500


class DayTimeline(TypedDict):
    run_id: int
    day_label: str
    days: list[str]
    ticks: list[str]                        # the clock time of each tick
    places: list[dict[str, Any]]            # {"id", "name", "kind", "capacity"}
    agents: list[dict[str, Any]]            # {"id", "name", "job"}
    # per agent (in the order of ``agents``): [[tick, place id or None], ...] each time its place changes
    moves: list[list[list[int | None]]]
    conversations: list[dict[str, Any]]     # {"id", "tick", "time", "kind", "topic", "place", "agents", "turns"}
    conversations_total: int
    relationships: dict[str, list[dict[str, Any]]]   # the day report's strengthened / weakened pairs


def world_runs(db_url: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The runs of a world database, newest first, each with its days
    (those with events): ``{"id", "seed", "agents", "days", "status",
    "started_at", "finished_at", "model"}``."""
    conn, path = _open(db_url)
    try:
        with db.named_damage(path, "listing its runs"):
            days: dict[int, list[str]] = {}
            for rid, label in conn.execute("SELECT DISTINCT run_id, day_label FROM world_events ORDER BY run_id, "
                                           "day_label"):
                days.setdefault(store.as_int(rid, "world_events.run_id"), []).append(
                    store.as_text(label, "world_events.day_label"))
            return [{"id": store.as_int(rid, "runs.id"), "seed": seed, "agents": agents, "status": status,
                     "model": model, "started_at": started, "finished_at": finished,
                     "days": days.get(store.as_int(rid, "runs.id"), [])}
                    for rid, seed, agents, status, model, started, finished in conn.execute(
                        "SELECT id, seed, agents, status, model, started_at, finished_at FROM runs ORDER BY id DESC")]
    finally:
        conn.close()


def day_timeline(db_url: str | os.PathLike[str], day_label: str | None = None,
                 run_id: int | None = None) -> DayTimeline:
    """Day ``day_label`` (default: the run's first) of run ``run_id``
    (default: the latest run with events) as a :class:`DayTimeline`.  A
    database, run or day that does not exist is a NotFoundError naming
    those that do."""
    conn, path = _open(db_url)
    try:
        with db.named_damage(path, f"reading the timeline of day {day_label or '(first)'}"):
            return _timeline(conn, path, day_label, run_id)
    finally:
        conn.close()


def _open(db_url: str | os.PathLike[str]) -> tuple[apsw.Connection, Path]:
    path = store.db_path(db_url)
    if not path.is_file():
        raise NotFoundError(f"{path}: no such world database")
    store.refuse_foreign(path)
    return db.open_readonly(path, db.DEFAULT_BUSY_TIMEOUT_MS), path      # a run may be writing it


def _timeline(conn: apsw.Connection, path: Path, day_label: str | None, run_id: int | None) -> DayTimeline:
    runs = {store.as_int(r, "runs.id"): (store.as_int(n, "runs.agents"), store.as_text(c, "runs.config_json"))
            for r, n, c in conn.execute("SELECT id, agents, config_json FROM runs")}
    days: dict[int, list[str]] = {}
    for rid, label in conn.execute("SELECT DISTINCT run_id, day_label FROM world_events ORDER BY run_id, day_label"):
        days.setdefault(store.as_int(rid, "world_events.run_id"), []).append(store.as_text(label, "day_label"))
    if run_id is None:
        with_days = sorted(days)
        if not with_days:
            raise NotFoundError(f"{path}: no run has events yet")
        run_id = with_days[-1]
    elif run_id not in runs:
        raise NotFoundError(f"{path}: no run {run_id} (runs: {', '.join(map(str, sorted(runs))) or 'none yet'})")
    run_days = days.get(run_id, [])
    if not run_days:
        raise NotFoundError(f"{path}: run {run_id} has no events yet")
    if day_label is None:
        day_label = run_days[0]
    elif day_label not in run_days:
        raise NotFoundError(f"{path}: run {run_id} has no day {day_label!r} (its days: {', '.join(run_days)})")
    n_agents, config_json = runs[run_id]
    cfg = store.recorded_config(path, run_id, config_json)
    ticks = list(range(cfg.ticks_per_day))
    stamps = [_stamp(cfg, day_label, t) for t in ticks]
    after = stamps[1:] + [_stamp(cfg, day_label, len(ticks))]        # when each tick ends

    # a run's agents are the first N by id (see scheduler._Agents)
    agents = [{"id": store.as_int(i, "agents.id"), "name": store.as_text(n, "agents.name"),
               "job": store.as_text(j, "agents.job")}
              for i, n, j in conn.execute("SELECT id, name, job FROM agents ORDER BY id LIMIT ?", (n_agents,))]
    index = {a["id"]: k for k, a in enumerate(agents)}
    names = {a["id"]: a["name"] for a in agents}
    places = [{"id": store.as_int(i, "locations.id"), "name": store.as_text(n, "locations.name"),
               "kind": store.as_text(k, "locations.kind"), "capacity": store.as_int(c, "locations.capacity")}
              for i, n, k, c in conn.execute("SELECT id, name, kind, capacity FROM locations ORDER BY id")]
    place_names = {p["id"]: p["name"] for p in places}

    stays: list[list[tuple[str, str | None, int]]] = [[] for _ in agents]
    for aid, loc, since, until in conn.execute(
            "SELECT agent_id, location_id, since_ts, until_ts FROM agent_locations WHERE run_id = ? "
            "AND since_ts <= ? AND (until_ts IS NULL OR until_ts > ?) ORDER BY agent_id, since_ts, id",
            (run_id, stamps[-1], stamps[0])):
        k = index.get(store.as_int(aid, "agent_locations.agent_id"))
        if k is not None:
            stays[k].append((store.as_text(since, "since_ts"), None if until is None else str(until),
                             store.as_int(loc, "agent_locations.location_id")))
    moves: list[list[list[int | None]]] = []
    for own in stays:
        starts = [s[0] for s in own]
        changes: list[list[int | None]] = []
        last: object = object()
        for t, stamp in zip(ticks, stamps):
            i = bisect.bisect_right(starts, stamp) - 1
            until = own[i][1] if i >= 0 else None
            here = own[i][2] if i >= 0 and (until is None or until > stamp) else None
            if here is None and i + 1 < len(own) and own[i + 1][0] < after[t]:
                here = own[i + 1][2]            # on its way at the tick's start, there within the tick
            if here != last:
                changes.append([t, here])
                last = here
        moves.append(changes)

    total = store.as_int(conn.execute("SELECT count(*) FROM conversations WHERE run_id = ? AND day_label = ?",
                                      (run_id, day_label)).fetchall()[0][0], "count")
    conversations: dict[int, dict[str, Any]] = {}
    for cid, tick, kind, topic, loc in conn.execute(
            "SELECT id, tick_index, kind, topic, location_id FROM conversations WHERE run_id = ? AND day_label = ? "
            "ORDER BY tick_index, id LIMIT ?", (run_id, day_label, MAX_CONVERSATIONS)):
        tick = store.as_int(tick, "conversations.tick_index")
        conversations[store.as_int(cid, "conversations.id")] = {
            "id": cid, "tick": tick, "time": clock(cfg.tick_minute_of_day(tick)),
            "kind": store.as_text(kind, "conversations.kind"), "topic": store.as_text(topic, "conversations.topic"),
            "place": place_names.get(loc) if isinstance(loc, int) else None, "agents": [], "turns": []}
    if conversations:
        ids = list(conversations)
        marks = ",".join("?" * len(ids))      # at most MAX_CONVERSATIONS: well under SQLite's parameter limit
        for cid, rnd, speaker, content in conn.execute(
                f"SELECT conversation_id, round, agent_id, content FROM conversation_turns "
                f"WHERE conversation_id IN ({marks}) ORDER BY conversation_id, round, id", ids):
            c = conversations[cid]
            who = names.get(speaker, f"agent {speaker}") if isinstance(speaker, int) else "?"
            c["turns"].append({"round": store.as_int(rnd, "conversation_turns.round"), "agent": who,
                               "text": store.as_text(content, "conversation_turns.content")})
            if who not in c["agents"]:
                c["agents"].append(who)
    relationships: dict[str, list[dict[str, Any]]] = {"strengthened": [], "weakened": []}
    for (metrics_json,) in conn.execute("SELECT metrics_json FROM daily_reports WHERE run_id = ? AND day_label = ?",
                                        (run_id, day_label)):
        try:
            m = json.loads(metrics_json) if isinstance(metrics_json, (str, bytes)) else {}
        except ValueError:
            m = {}
        if isinstance(m, dict):
            for key in relationships:
                pairs = m.get(f"relationships_{key}")
                relationships[key] = [p for p in pairs if isinstance(p, dict)] if isinstance(pairs, list) else []
    return {"run_id": run_id, "day_label": day_label, "days": run_days,
            "ticks": [clock(cfg.tick_minute_of_day(t)) for t in ticks], "places": places, "agents": agents,
            "moves": moves, "conversations": list(conversations.values()), "conversations_total": total,
            "relationships": relationships}


def _stamp(cfg: WorldConfig, day_label: str, tick: int) -> str:
    """A tick's simulated time as the ISO text agent_locations holds (the simulation's own form)."""
    try:
        day = date.fromisoformat(day_label)
    except ValueError:
        raise NotFoundError(f"day {day_label!r} is not a date (YYYY-MM-DD)") from None
    t = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc) + \
        timedelta(minutes=cfg.tick_minute_of_day(tick))
    return t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
