"""chronos_events.db and chronos_events.cmeta: what happened, in time order
(completions, points, reviews, commitments judged and rewards redeemed, and
the commands run), from the records a sync read, plus the command history
carried over from the database being replaced.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import date, datetime, timedelta
from pathlib import Path

import apsw
import numpy as np

from chronoledger import sqlite as db
from chronoledger.chronicle import Chronicle
from chronoledger.errors import ChronoledgerError
from chronoledger.sequence import schema
from chronoledger.sequence.derived import Derived
from chronoledger.sequence.records import Event, Problem, UserTree
from chronoledger.sequence.values import iso_date, micros_array, to_json, to_plain, to_text

_logger = logging.getLogger("chronoledger.sequence")
#: The chronicle event log beside the events database.
EVENT_LOG = "chronos_events.cmeta"
#: What a review event keeps of its file: what Chronos's review command writes
#: (``sections``: goals, habits, points, tasks, schedule) and what its example
#: reviews hold (highlights, lowlights, lessons, next_week).
REVIEW_FIELDS = ("sections", "highlights", "lowlights", "lessons", "next_week")


def events(records: Derived) -> list[Event]:
    """(ts, type, payload) for what happened, from the logs, in time order."""
    ev: list[Event] = []
    for c in records.completions:
        ts = c["logged_at"] or (f"{c['date']}T{c['actual_end'] or c['scheduled_start'] or '00:00'}:00")
        ev.append((ts, "completion", {"name": c["name"], "status": c["status"], "date": c["date"],
                                      "scheduled_start": c["scheduled_start"], "actual_start": c["actual_start"],
                                      "quality": c["quality"]}))
    for ts, delta, reason, source, _, balance in records.points_ledger():
        ev.append((ts, "points", {"delta": delta, "reason": reason, "source": source, "balance": balance}))
    for kind, path, data in records.tree.reviews:
        label = data.get("week") or data.get("month") or data.get("date") or Path(path).stem
        day = iso_date(data.get("date")) or _review_day(str(label))
        ev.append((f"{day}T23:59:59" if day else "1970-01-01T00:00:00", "review",
                   {"kind": kind, "label": to_text(label), "path": path,
                    **{k: to_plain(v) for k, v in data.items() if k in REVIEW_FIELDS}}))
    for t in records.triggers():
        ev.append((t["ts"], "trigger", {"source_type": t["source_type"], "source_name": t["source_name"],
                                        "trigger": t["trigger"], "period": t["period"], "outcome": t["outcome"]}))
    ev.sort(key=lambda e: (e[0], e[1]))        # stable: equal times keep the order above
    return ev


def _review_day(label: str) -> str | None:
    try:
        if "-W" in label:
            y, w = label.split("-W")
            return date.fromisocalendar(int(y), int(w[:2]), 7).isoformat()
        if len(label) == 7:
            y, m = label.split("-")
            nxt = date(int(y) + (int(m) == 12), int(m) % 12 + 1, 1)
            return (nxt - timedelta(days=1)).isoformat()
        return date.fromisoformat(label[:10]).isoformat()
    except ValueError:
        return None


def pending(data: Path, records: Derived, carried: tuple[list[tuple], list[tuple]]
            ) -> tuple[dict[str, int], list[db.PendingFile]]:
    """chronos_events.db and its chronicle log, built beside their targets
    from the records and what :func:`carried_over` kept of the database
    being replaced."""
    target = data / schema.FILES["events"]
    old_runs, old_cmd_events = carried
    events_ = events(records) + [(ts, et, json.loads(p)) for ts, et, p in old_cmd_events]
    events_.sort(key=lambda e: (e[0], e[1]))
    triggers = records.triggers()

    def fill(conn: apsw.Connection) -> dict[str, int]:
        conn.execute(schema.tables(schema.EVENTS))
        conn.executemany("INSERT INTO events (ts, event_type, payload_json) VALUES (?, ?, ?)",
                         [(ts, et, to_json(p)) for ts, et, p in events_])
        conn.executemany("INSERT INTO command_runs (ts, command, args_json, duration_s, result, detail) "
                         "VALUES (?, ?, ?, ?, ?, ?)", old_runs)
        conn.executemany("INSERT INTO trigger_log (ts, source_type, source_name, trigger, period, outcome, "
                         "actions_json, detail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [(t["ts"], t["source_type"], t["source_name"], t["trigger"], t["period"], t["outcome"],
                           t["actions_json"], t["detail_json"]) for t in triggers])
        conn.execute(schema.indexes(schema.EVENTS))     # after the rows: see schema.tables
        return {"events": len(events_), "command_runs": len(old_runs), "trigger_log": len(triggers)}

    events_db = db.build_pending(target, fill, user_version=schema.VERSIONS["events"])
    try:
        log = pending_event_log(data, events_)
    except BaseException:
        events_db.discard()
        raise
    return events_db.result, [events_db, log]


def carried_over(target: Path, tree: UserTree) -> tuple[list[tuple], list[tuple]]:
    """What a rebuild keeps of the events database it replaces: the command
    runs, and the events that commands recorded (command runs and the
    reviews `sequence review` logged; a sync rebuilds the rest from the
    YAML).  One that cannot be read is set aside, not lost."""
    if not target.exists():
        return [], []
    try:
        db.settle(target)
        conn = db.open_readonly(target)
    except ChronoledgerError as exc:        # control flow: an events database that cannot be read is set aside
        return _set_aside(target, tree, exc)
    try:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(command_runs)")}
        want = ("ts", "command", "args_json", "duration_s", "result", "detail")
        runs = [] if not cols else [tuple(r) for r in conn.execute(
            f"SELECT {', '.join(c if c in cols else 'NULL' for c in want)} FROM command_runs ORDER BY id")]
        ev = [tuple(r) for r in conn.execute(
            "SELECT ts, event_type, payload_json FROM events WHERE event_type = 'command' OR (event_type = "
            "'review' AND json_valid(payload_json) AND json_extract(payload_json, '$.source') = 'sequence review') "
            "ORDER BY id")] \
            if {r[1] for r in conn.execute("PRAGMA table_info(events)")} else []
    except apsw.Error as exc:               # control flow, as above (the reason is said where it is set aside)
        conn.close()
        return _set_aside(target, tree, db.sqlite_error(exc))
    conn.close()
    return runs, ev


def _set_aside(target: Path, tree: UserTree, exc: Exception) -> tuple[list, list]:
    """An events database that cannot be read is renamed, not overwritten:
    its command history may still be recovered from it."""
    aside = target.with_name(f"{target.name}.unreadable-{datetime.now().strftime('%Y%m%dT%H%M%S')}")
    os.replace(target, aside)
    _logger.warning("%s: the previous events database cannot be read (%s); set aside as %s, a new one started",
                    target, exc, aside.name)
    tree.problems.append(Problem(f"Data/{target.name}", None, f"the previous events database cannot be read "
                                                              f"({exc}); it was set aside as {aside.name} and "
                                                              f"a new one started", skipped=False))
    return [], []


def pending_event_log(data: Path, events: list[tuple]) -> db.PendingFile:
    """The same events as a chronicle event log, built beside its target."""
    target = data / EVENT_LOG
    tmp = db.building_path(target)
    tmp.unlink(missing_ok=True)
    try:
        with Chronicle.open(tmp, "w", schema="event", metadata={"source": "sequence sync"}) as ch:
            if events:
                ch.extend({"timestamp": micros_array([e[0] for e in events]),
                           "event_type": np.array([e[1] for e in events], dtype=object),
                           "payload": np.array([e[2] for e in events], dtype=object)})     # dicts
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return db.PendingFile(tmp, target)
