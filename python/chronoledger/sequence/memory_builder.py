"""chronos_memory.db: the behaviour logs as facts the metastudy reads (each
schedule block planned vs actual, status snapshots, narratives, commitments
and rewards fired), from the records a sync read.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import apsw

from chronoledger.sequence import schema
from chronoledger.sequence.derived import Derived
from chronoledger.sequence.records import Completion
from chronoledger.sequence.schema import STATUS_DIMENSIONS
from chronoledger.sequence.values import hhmm, minutes_of, span, to_json, to_num, to_text


def fill(conn: apsw.Connection, records: Derived) -> dict[str, int]:
    """chronos_memory.db's tables, from the records."""
    tree = records.tree
    conn.execute(schema.tables(schema.MEMORY))
    _, loose = records.matched_blocks()
    facts = []
    weekday: dict[str, int] = {}
    for day, path, _, depth, _, name, btype, start, end, planned, c in records.block_rows():
        wd = weekday.get(day)
        if wd is None:
            wd = weekday[day] = date.fromisoformat(day).weekday()
        facts.append(_fact(day, wd, name, btype, path, depth, start, end, planned, c))
    for c in loose:                      # completions logged for no block of a schedule
        facts.append(_fact(c["date"], date.fromisoformat(c["date"]).weekday(), c["name"], c["type"], None,
                           None, c["scheduled_start"], c["scheduled_end"],
                           span(c["scheduled_start"], c["scheduled_end"]), c))
    conn.executemany("INSERT INTO activity_facts (date, weekday, name, type, block, depth, scheduled_start, "
                     "scheduled_end, actual_start, actual_end, planned_minutes, actual_minutes, "
                     "start_delay_minutes, status, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     facts)
    known = STATUS_DIMENSIONS
    snaps = []
    for day, items in sorted(tree.status.items()):
        for s in items:
            if isinstance(s, dict):
                snaps.append((day, hhmm(s.get("time")), *(to_text(s.get(k)) for k in known),
                              to_json({k: v for k, v in s.items() if k not in known and k != "time"})))
    conn.executemany("INSERT INTO status_snapshots (date, time, health, place, energy, mind_state, focus, "
                     "emotion, vibe, extra_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", snaps)
    conn.executemany("INSERT INTO narratives VALUES (?, ?)", sorted(tree.narratives.items()))
    reinf = [(t["ts"], t["source_type"], t["source_name"], t["outcome"],
              to_num(t["detail"].get("points")) or _points_of(t["actions"]), t["detail_json"])
             for t in records.triggers()]
    conn.executemany("INSERT INTO reinforcements (ts, kind, source_name, outcome, points, detail_json) "
                     "VALUES (?, ?, ?, ?, ?, ?)", reinf)
    conn.execute(schema.indexes(schema.MEMORY))     # after the rows: see schema.tables
    return {"activity_facts": len(facts), "status_snapshots": len(snaps),
            "narratives": len(tree.narratives), "reinforcements": len(reinf)}


def _points_of(actions: Any) -> float | None:
    """The points the first action that names some gives (spent: negative)."""
    for a in actions or []:
        points = to_num(a.get("points")) if isinstance(a, dict) else None
        if points is not None:
            sign = -1 if str(a.get("action", "")).startswith("spend") else 1
            return sign * points
    return None


def _fact(day: str, wd: int, name: str, itype: str | None, block: str | None, depth: int | None,
          start: str | None, end: str | None, planned: float | None, c: Completion | None) -> tuple[Any, ...]:
    astart = c and c["actual_start"]
    delay = None
    if astart and start:
        actual_min, start_min = minutes_of(astart), minutes_of(start)
        if actual_min is not None and start_min is not None:      # always: both are "HH:MM"
            delay = float(actual_min - start_min)
            if delay < -12 * 60:
                delay += 24 * 60                # started after midnight
    return (day, wd, name, itype, block, depth, start, end, astart, c and c["actual_end"], planned,
            c and span(c["actual_start"], c["actual_end"]), delay, c["status"] if c else "unlogged",
            c and c["quality"])
