"""The metastudy: the behaviour logs (chronos_memory.db) digested into
rolling-window trends (chronos_trends.db, :mod:`~chronoledger.sequence.trends_builder`)
and a short, ranked digest for AI agents (tendencies.md and tendencies.json,
:mod:`~chronoledger.sequence.digest`).

The trends are a pure function of the memory database and ``as_of``; the
digest also says what the core mirror holds (the items, with Chronos's habit
streaks, goal progress and timer sessions, and the span of every log), so it
is a pure function of the two mirrors and ``as_of``: the same logs and the
same date give the same files, byte for byte.  A sync runs it as its last
build; run alone, it takes the folder's lock and records itself in
databases.yml.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import ConfigError
from chronoledger.sequence import digest, schema, trends_builder
from chronoledger.sequence.lock import sync_lock
from chronoledger.sequence.registry import mark_built, now_text, read_registry, write_registry
from chronoledger.sequence.trends_builder import LOG_KEYS, Fact, Folder, compute, latest_log_date
from chronoledger.sequence.values import iso_date, minutes_of

_logger = logging.getLogger("chronoledger.sequence")


#: The logs whose size and span the digest gives, by mirror: (name, the query
#: giving rows, distinct days, first and last day).  A table a mirror lacks
#: (an older one, or one another tool wrote) is left out.
CORE_LOGS = (
    ("completions", "SELECT COUNT(*), COUNT(DISTINCT date), MIN(date), MAX(date) FROM completions"),
    ("schedules", "SELECT COUNT(*), COUNT(DISTINCT date), MIN(date), MAX(date) FROM schedules"),
    ("points_ledger", "SELECT COUNT(*), COUNT(DISTINCT substr(ts, 1, 10)), MIN(substr(ts, 1, 10)), "
                      "MAX(substr(ts, 1, 10)) FROM points_ledger"),
)
MEMORY_LOGS = (
    ("status", "SELECT COUNT(*), COUNT(DISTINCT date), MIN(date), MAX(date) FROM status_snapshots"),
    ("narratives", "SELECT COUNT(*), COUNT(DISTINCT date), MIN(date), MAX(date) FROM narratives"),
)
#: Where the timer's session logs are looked for in the core mirror, and the
#: columns read from it (Chronos's Timers/sessions/YYYY-MM-DD.yml entries:
#: start, end, phase, profile, seconds); a day from ``date``, else ``start``.
TIMER_TABLE = "timer_sessions"
#: The fields of a completions entry Chronos's trends build counts as its own
#: (modules/sequence/trends_builder.py); every other field is a custom property.
CHRONOS_COMPLETION_KEYS = frozenset({"name", "status", "scheduled_start", "scheduled_end", "actual_start",
                                     "actual_end", "logged_at", "note", "quality"})


def _log_spans(conn: apsw.Connection, queries: tuple[tuple[str, str], ...]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, sql in queries:
        try:
            row = conn.execute(sql).fetchone()
        except apsw.SQLError:             # control flow: a mirror without this log's table holds none of it
            continue
        out[name] = dict(zip(LOG_KEYS, row or (0, 0, None, None)))
    return out


def load_facts(memory_db: Path) -> tuple[list[Fact], list[tuple], list[tuple], dict[str, dict[str, Any]]]:
    """What the trends are computed from, read from the memory mirror: the
    activity facts (top-level blocks, nested blocks that were logged, and
    completions that match no block), the status snapshots, the
    reinforcements; and the size and span of its logs (``MEMORY_LOGS``)."""
    if not memory_db.exists():
        raise ConfigError(f"{memory_db}: no memory mirror yet; run `sequence sync --db memory` first")
    conn = db.open_readonly(memory_db)
    try:
        facts = [Fact(d, wd, n, t, s, minutes_of(a), dl, p, ac) for d, wd, n, t, s, a, dl, p, ac in conn.execute(
            "SELECT date, weekday, name, type, status, actual_start, start_delay_minutes, planned_minutes, "
            "actual_minutes FROM activity_facts WHERE depth IS NULL OR depth = 0 OR status <> 'unlogged' "
            "ORDER BY date, id")]
        snaps = list(conn.execute("SELECT date, time, health, place, energy, mind_state, focus, emotion, vibe "
                                  "FROM status_snapshots ORDER BY date, time"))
        reinf = list(conn.execute("SELECT ts, kind, source_name, outcome, points FROM reinforcements ORDER BY ts"))
        spans = _log_spans(conn, MEMORY_LOGS)
    except apsw.Error as exc:
        raise db.sqlite_error(exc, memory_db, "reading the memory mirror") from None
    finally:
        conn.close()
    return facts, snaps, reinf, spans


def load_folder(core_db: Path) -> Folder:
    """What the digest says beyond the behaviour logs, from the core mirror:
    every item (type, name, status and the whole item), the size and span of
    its logs (``CORE_LOGS``), the timer sessions when it holds a
    ``timer_sessions`` table, the status levels Chronos's settings give
    (``status.levels``), and each completion's quality label and custom
    properties (:func:`_completion_properties`).  Without a core mirror: an
    empty Folder whose ``core`` is False (the digest says the items are not
    available)."""
    if not core_db.exists():
        return Folder(core=False)
    conn = db.open_readonly(core_db)
    try:
        items = [(t, n, s, _item(raw)) for t, n, s, raw in
                 conn.execute("SELECT type, name, status, raw_json FROM items ORDER BY type, name, id")]
        return Folder(items=items, logs=_log_spans(conn, CORE_LOGS), timer_sessions=_timer_sessions(conn),
                      status_levels=_status_levels(conn), completions=_completion_properties(conn))
    except apsw.Error as exc:
        raise db.sqlite_error(exc, core_db, "reading the core mirror") from None
    finally:
        conn.close()


def _completion_properties(conn: apsw.Connection) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """Each completion in the core mirror as (date, its quality as Chronos
    names it, its custom properties): the label as written (a number as
    written when it has none: ``3``), and the entry's fields outside
    :data:`CHRONOS_COMPLETION_KEYS` (its ``type``, its own ``source``,
    ``auto_missed`` / ``auto_skipped``, and those in ``extra_json``).  Empty
    without a completions table; an older mirror's lacks the labels and fields."""
    cols = set(db.table_columns(conn, "completions"))       # none when there is no such table
    if "date" not in cols:
        return []
    want = ("quality_label", "quality", "item_type", "origin", "auto", "extra_json")
    out = []
    for day, label, score, itype, origin, auto, extra in conn.execute(
            f"SELECT date, {', '.join(c if c in cols else 'NULL' for c in want)} FROM completions ORDER BY id"):
        if label is None and isinstance(score, (int, float)):
            label = str(int(score)) if float(score).is_integer() else str(score)
        keys = set(_item(extra)) if extra else set()
        keys |= {k for k, v in (("type", itype), ("source", origin)) if v is not None}
        if auto in ("missed", "skipped"):
            keys.add(f"auto_{auto}")
        out.append((str(day), label, tuple(sorted(keys - CHRONOS_COMPLETION_KEYS))))
    return out


def _status_levels(conn: apsw.Connection) -> dict[str, list[str]]:
    """``status.levels`` of the core mirror's variables (each dimension's
    levels, worst to best, from Chronos's settings); empty when it holds none."""
    if "value" not in db.table_columns(conn, "variables"):      # none when there is no such table
        return {}
    row = conn.execute("SELECT value FROM variables WHERE key = 'status.levels'").fetchone()
    value = _item(row[0]) if row else {}
    return {str(k): [str(x) for x in v] for k, v in value.items() if isinstance(v, list)}


def _item(raw: str | None) -> dict:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _timer_sessions(conn: apsw.Connection) -> list[dict[str, Any]] | None:
    """The timer's sessions (date, phase, profile, seconds), or None when the
    mirror has no such table (or one without a phase and a day)."""
    cols = set(db.table_columns(conn, TIMER_TABLE))         # none when there is no such table
    day = "date" if "date" in cols else "start" if "start" in cols else None
    if day is None or "phase" not in cols:
        return None
    profile = "profile" if "profile" in cols else "NULL"
    seconds = "seconds" if "seconds" in cols else "minutes * 60" if "minutes" in cols else "NULL"
    return [{"date": iso_date(d), "phase": p, "profile": pr, "seconds": s} for d, p, pr, s in conn.execute(
        f"SELECT {day}, phase, {profile}, {seconds} FROM {TIMER_TABLE} ORDER BY {day}")]


def build_trends(data: Path, as_of: date | None = None, *, memory_db: Path | None = None,
                 core_db: Path | None = None, pending: bool = False):
    """Rebuild chronos_trends.db and write tendencies.md / .json from the
    memory and core mirrors (``memory_db``, ``core_db``: other files, e.g.
    ones a sync is about to put in place).  ``as_of`` defaults to the last
    day the logs cover (so the digest does not change while nothing new is
    logged), or today when there are none.  With ``pending`` the three files
    are built beside their targets and returned as (counts, [PendingFile,
    ...]) for the caller to put in place; otherwise they are put in place
    (under the folder's lock) and the counts returned."""
    if not pending:
        with sync_lock(data, wait=True):
            counts, files = build_trends(data, as_of, memory_db=memory_db, core_db=core_db, pending=True)
            for f in files:
                f.commit()
            _registered(data, counts)
        _logger.info("%s: metastudy rebuilt %s and the tendencies digest (%s)", data, schema.FILES["trends"],
                     ", ".join(f"{k} {v}" for k, v in counts.items()))
        return counts
    facts, snaps, reinf, spans = load_facts(memory_db or data / schema.FILES["memory"])
    folder = load_folder(core_db or data / schema.FILES["core"])
    folder.logs.update(spans)
    given = as_of is not None
    as_of = as_of or latest_log_date(facts, snaps, folder)
    basis = "given" if given else "last log" if as_of is not None else "today (no logs)"
    as_of = as_of or date.today()
    trends = compute(facts, snaps, reinf, as_of, folder)
    trends_db = db.build_pending(data / schema.FILES["trends"], lambda c: trends_builder.fill(c, trends),
                                 user_version=schema.VERSIONS["trends"])
    summary = digest.tendencies(trends, as_of_basis=basis)
    try:
        files = digest.pending_files(data, summary)
    except BaseException:
        trends_db.discard()
        raise
    return trends_db.result, [trends_db, *files]


def _registered(data: Path, counts: dict) -> None:
    """databases.yml says what the trends mirror now holds (a metastudy rebuilt it)."""
    reg = read_registry(data)
    stamp = now_text()
    mark_built(reg, "trends", counts, stamp, stamp)
    write_registry(data, reg)
