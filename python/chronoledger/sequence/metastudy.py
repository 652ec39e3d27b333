"""The metastudy: the behaviour logs (chronos_memory.db) digested into
rolling-window trends (chronos_trends.db, :mod:`~chronoledger.sequence.trends_builder`)
and a short, ranked digest for AI agents (tendencies.md and tendencies.json,
:mod:`~chronoledger.sequence.digest`).

Everything is a pure function of the memory database and ``as_of``: the same
logs and the same date give the same files, byte for byte.  A sync runs it
as its last build; run alone, it takes the folder's lock and records itself
in databases.yml.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import ConfigError
from chronoledger.sequence import digest, schema, trends_builder
from chronoledger.sequence.lock import sync_lock
from chronoledger.sequence.registry import mark_built, now_text, read_registry, write_registry
from chronoledger.sequence.trends_builder import Fact, compute, latest_log_date
from chronoledger.sequence.values import minutes_of

_logger = logging.getLogger("chronoledger.sequence")


def load_facts(memory_db: Path) -> tuple[list[Fact], list[tuple], list[tuple]]:
    """What the trends are computed from, read from the memory mirror: the
    activity facts (top-level blocks, nested blocks that were logged, and
    completions that match no block), the status snapshots, the reinforcements."""
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
    except apsw.Error as exc:
        raise db.sqlite_error(exc, memory_db, "reading the memory mirror") from None
    finally:
        conn.close()
    return facts, snaps, reinf


def build_trends(data: Path, as_of: date | None = None, *, memory_db: Path | None = None,
                 pending: bool = False):
    """Rebuild chronos_trends.db and write tendencies.md / .json from the
    memory mirror (``memory_db``: another file, e.g. one a sync is about to
    put in place).  ``as_of`` defaults to the last day the logs cover (so the
    digest does not change while nothing new is logged).  With ``pending``
    the three files are built beside their targets and returned as
    (counts, [PendingFile, ...]) for the caller to put in place; otherwise
    they are put in place (under the folder's lock) and the counts returned."""
    if not pending:
        with sync_lock(data, wait=True):
            counts, files = build_trends(data, as_of, memory_db=memory_db, pending=True)
            for f in files:
                f.commit()
            _registered(data, counts)
        _logger.info("%s: metastudy rebuilt %s and the tendencies digest (%s)", data, schema.FILES["trends"],
                     ", ".join(f"{k} {v}" for k, v in counts.items()))
        return counts
    facts, snaps, reinf = load_facts(memory_db or data / schema.FILES["memory"])
    as_of = as_of or latest_log_date(facts, snaps) or date.today()
    trends = compute(facts, snaps, reinf, as_of)
    trends_db = db.build_pending(data / schema.FILES["trends"], lambda c: trends_builder.fill(c, trends),
                                 user_version=schema.VERSIONS["trends"])
    summary = digest.tendencies(trends)
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
