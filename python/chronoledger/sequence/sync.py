"""``sequence sync``: rebuild the SQLite mirrors of a user folder.

The YAML is the source of truth and is only ever read.  Each mirror is built
whole in a temporary file and renamed into place when complete
(:func:`chronoledger.sqlite.atomic_rebuild`), so a failure or a kill leaves
the previous mirror intact.  Unreadable files are skipped and reported; they
never stop a sync.  ``databases.yml`` records each mirror's schema version,
file, counts, last sync and last attempt.
"""

from __future__ import annotations

import bisect
import functools
import gc
import hashlib
import json
import logging
import math
import os
import sys
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeAlias, TypedDict

import apsw
import numpy as np

from chronoledger import sqlite as db
from chronoledger._isotime import iso_text
from chronoledger.chronicle import Chronicle
from chronoledger.errors import ChronoledgerError, ConfigError
from chronoledger.sequence import schema
from chronoledger.sequence.datafolder import (  # noqa: F401 - REGISTRY, data_folder...: also named from here
    REGISTRY,
    data_folder,
    now_text,
    read_registry,
    sync_lock,
    write_registry,
)
from chronoledger.sequence.layout import (
    Item,
    Problem,
    UserTree,
    child,
    find_user_folder,
    minutes_of,
    parse_duration,
    read_user_folder,
)
from chronoledger.sequence.metastudy import build_trends
from chronoledger.sequence.schema import STATUS_DIMENSIONS

DATABASES = ("core", "events", "memory", "trends")
_logger = logging.getLogger("chronoledger.sequence")
EVENT_LOG = "chronos_events.cmeta"
ITEM_COLUMNS = ("category", "status", "priority")
RELATION_KINDS = ("children", "milestones", "rewards", "targets")


# --- small readers of values as people write them ---------------------------

def hhmm(value: Any) -> str | None:
    """"6:30", "06:30", "06:30:00", a time, or YAML's reading of an unquoted
    06:30 (390, sexagesimal) as "HH:MM"; None when it is not a time of day."""
    if type(value) is str:          # the same few hundred spellings, read 100,000s of times
        return _hhmm_text(value)
    return _hhmm(value)


@functools.lru_cache(maxsize=8192)
def _hhmm_text(value: str) -> str | None:
    return _hhmm(value)


def _hhmm(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if hasattr(value, "hour") and hasattr(value, "minute"):
        return f"{value.hour:02d}:{value.minute:02d}"
    if isinstance(value, int):
        minutes = value if value < 24 * 60 else value // 60 if value < 24 * 3600 else None
        return None if minutes is None else f"{minutes // 60:02d}:{minutes % 60:02d}"
    if isinstance(value, str):
        parts = value.strip().split(":")
        if 2 <= len(parts) <= 3 and all(p.isdigit() for p in parts):
            h, m = int(parts[0]), int(parts[1])
            if h < 24 and m < 60:
                return f"{h:02d}:{m:02d}"
    return None


def span(start: str | None, end: str | None) -> float | None:
    a, b = minutes_of(start), minutes_of(end)
    if a is None or b is None:
        return None
    return float((b - a) % (24 * 60))


def iso_date(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            return None
    return None


def stamp(value: Any, day: str | None = None) -> str | None:
    """A ledger/log time ("2026-01-02 06:30:00", a datetime, an ISO string, or a
    time of day on ``day``) as "YYYY-MM-DDTHH:MM:SS" local time."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="seconds")
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00"
    if isinstance(value, str):
        v = value.strip().replace(" ", "T", 1)
        try:
            return datetime.fromisoformat(iso_text(v)).replace(tzinfo=None).isoformat(timespec="seconds")
        except ValueError:
            pass
    t = hhmm(value)
    if t is not None and day is not None:
        return f"{day}T{t}:00"
    return None


_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str)


def _json(value: Any) -> str:
    """JSON text of a value read from YAML; keys JSON cannot sort or hold as
    they are (an int beside a string, a date, bytes) are written as text."""
    try:
        return _ENCODER.encode(value)
    except TypeError:
        return _ENCODER.encode(_text_keys(value))


def _text_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_key_text(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_text_keys(v) for v in value]
    return value


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return _ENCODER.encode(key)            # as JSON itself writes such keys: null, true, 1, 1.5
    if isinstance(key, date):
        return key.isoformat()
    return str(key)


def _tags(value: Any) -> str:
    if value is None:
        return "[]"
    if isinstance(value, str):
        value = [t.strip() for t in value.split(",") if t.strip()]
    return _json(value if isinstance(value, list) else [value])


def _num(value: Any) -> float | None:
    """A finite number, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            x = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str):
        try:
            x = float(value)
        except ValueError:
            return None
    else:
        return None
    return x if math.isfinite(x) else None


def _text(value: Any) -> str | None:
    """A value for a TEXT column: text as it is, other scalars written out,
    mappings and lists as JSON (a file may hold anything anywhere)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple, set)):
        return _json(value)
    return str(value)


def _plain(value: Any) -> Any:
    """A YAML value as plain JSON types (dates as ISO text), for event payloads."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# --- the result of a sync --------------------------------------------------------

@dataclass
class SyncReport:
    user: Path
    data: Path
    built: dict[str, dict] = field(default_factory=dict)      # name -> {"file", "counts", "seconds"}
    problems: list[Problem] = field(default_factory=list)
    unresolved: list[dict] = field(default_factory=list)
    files: int = 0
    items: int = 0
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        """Files that could not be used (warnings about values are not counted)."""
        return len({p.path for p in self.problems if p.skipped})

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.skipped]

    def as_dict(self) -> dict:
        return {"user": str(self.user), "data": str(self.data), "files": self.files, "items": self.items,
                "seconds": round(self.seconds, 3), "skipped_files": self.skipped,
                "problems": [{"path": p.path, "line": p.line, "reason": p.reason, "skipped": p.skipped}
                             for p in self.problems],
                "unresolved_references": self.unresolved, "databases": self.built}


# --- building the databases ----------------------------------------------------------

class Completion(TypedDict):
    """One completions entry, as the builds read it."""
    date: str
    name: str
    type: str | None
    scheduled_start: str | None     # "HH:MM"
    scheduled_end: str | None
    actual_start: str | None
    actual_end: str | None
    status: str                     # lower-cased
    quality: float | None
    logged_at: str | None           # "YYYY-MM-DDTHH:MM:SS"
    note: str | None
    source: str                     # the completions file


class Trigger(TypedDict):
    """A commitment judged for one period (met or violated), or a reward redeemed."""
    ts: str
    source_type: str                # "commitment" or "reward"
    source_name: str
    trigger: str                    # "on_met", "on_violation", "on_complete"
    period: str | None
    outcome: str                    # "met", "violated", "redeemed"
    actions: Any                    # the actions as the item's YAML lists them
    actions_json: str
    detail: dict[str, Any]
    detail_json: str


#: A points ledger row: (ts, delta, reason, source, tags JSON, balance after it).
LedgerRow: TypeAlias = "tuple[str, float, str | None, str | None, str, float]"
#: A named schedule block: (day, path, parent path, depth, the block, name, type,
#: start, end, planned minutes, the completion matched to it or None).
BlockRow: TypeAlias = ("tuple[str, str, str | None, int, dict[str, Any], str, str | None, str | None, str | None, "
                       "float | None, Completion | None]")
#: An event for the events database and log: (ts, type, payload).
Event: TypeAlias = "tuple[str, str, dict[str, Any]]"


class _Index:
    """Items by (name, type) and by name, for resolving references."""

    def __init__(self, ids: dict[tuple[str, str], int], items: list[Item]):
        self.by_name_type = {(it.name.lower(), it.type): ids[(it.type, it.slug)] for it in items}
        self.by_name: dict[str, list[int]] = {}
        for it in items:
            self.by_name.setdefault(it.name.lower(), []).append(ids[(it.type, it.slug)])

    def find(self, name: str, itype: str | None) -> int | None:
        key = name.strip().lower()
        if itype:
            hit = self.by_name_type.get((key, str(itype).strip().lower()))
            if hit is not None:
                return hit
        ids = self.by_name.get(key, [])
        return ids[0] if len(ids) == 1 or (ids and not itype) else None


def _blocks(blocks: list[Any], day: str, parent: str | None = None,
            depth: int = 0) -> Iterator[tuple[str, str | None, int, dict[str, Any]]]:
    """Schedule blocks flattened, children to any depth: (path, parent, depth, block)."""
    for i, b in enumerate(blocks or []):
        if not isinstance(b, dict):
            continue
        path = f"{parent}.{i}" if parent is not None else str(i)
        yield path, parent, depth, b
        kids = b.get("children")
        if isinstance(kids, list):
            yield from _blocks(kids, day, path, depth + 1)


def _completion(key: str, value: Any) -> dict[str, Any]:
    """One completions entry: ``name@HH:MM`` -> a status string or a mapping."""
    name, _, at = str(key).rpartition("@")
    if not name:
        name, at = str(key), ""
    entry = {"status": value} if isinstance(value, str) else dict(value) if isinstance(value, dict) else {}
    entry.setdefault("name", name.strip())
    if entry.get("scheduled_start") is None and hhmm(at) is not None:
        entry["scheduled_start"] = at
    return entry


class Builder:
    """Turns a read UserTree into table rows (shared by the core, events and memory builds)."""

    def __init__(self, tree: UserTree):
        self.tree = tree
        self.unresolved: list[dict] = []
        self.ids = {(it.type, it.slug): i + 1 for i, it in enumerate(tree.items)}
        self.index = _Index(self.ids, tree.items)
        self.completions = self._completions()
        self._ledger: list[LedgerRow] | None = None
        self._triggers: list[Trigger] | None = None
        self._matched: tuple[dict[tuple[str, str], Completion], list[Completion]] | None = None
        self._block_rows: list[BlockRow] | None = None

    def _completions(self) -> list[Completion]:
        out: list[Completion] = []
        for day, entries in sorted(self.tree.completions.items()):
            for key, value in entries.items():
                e = _completion(key, value)
                status = e.get("status")
                if not isinstance(status, str):
                    self.tree.problems.append(Problem(self.tree.completion_files.get(day, day), None,
                                                      f"entry {key!r} has no status; it is left out",
                                                      skipped=False))
                    continue
                out.append({"date": day, "name": _text(e.get("name")) or str(key), "type": _text(e.get("type")),
                            "scheduled_start": hhmm(e.get("scheduled_start")),
                            "scheduled_end": hhmm(e.get("scheduled_end")),
                            "actual_start": hhmm(e.get("actual_start")), "actual_end": hhmm(e.get("actual_end")),
                            "status": status.strip().lower(), "quality": _num(e.get("quality")),
                            "logged_at": stamp(e.get("logged_at"), day), "note": _text(e.get("note")),
                            "source": f"Schedules/completions/{day}.yml"})
        return out

    def matched_blocks(self) -> tuple[dict[tuple[str, str], Completion], list[Completion]]:
        """Which completion belongs to which schedule block, at any depth:
        same day and name (in any case), and the same start, or no start
        given and that name only once in the day's schedule.  Returns
        ({(day, block path): completion}, completions that match no block)."""
        if self._matched is not None:
            return self._matched
        blocks: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
        for day, bl in self.tree.schedules.items():
            for path, _, _, b in _blocks(bl, day):
                name = (_text(b.get("name")) or "").strip().lower()
                if name:
                    blocks.setdefault((day, name), []).append((path, hhmm(b.get("start_time"))))
        matched: dict[tuple[str, str], Completion] = {}
        loose: list[Completion] = []
        for c in self.completions:
            cands = blocks.get((c["date"], c["name"].lower()), [])
            if c["scheduled_start"] is not None:
                hit = next((p for p, st in cands if st == c["scheduled_start"] and (c["date"], p) not in matched), None)
            else:
                hit = cands[0][0] if len(cands) == 1 and (c["date"], cands[0][0]) not in matched else None
            if hit is None:
                loose.append(c)
            else:
                matched[(c["date"], hit)] = c
        self._matched = (matched, loose)
        return self._matched

    def block_rows(self) -> list[BlockRow]:
        """Every named schedule block, days in order, with what both the core
        (schedules) and the memory (activity_facts) builds read of it:
        (day, path, parent, depth, block, name, type, start, end, planned
        minutes, the matched completion or None)."""
        if self._block_rows is None:
            matched, _ = self.matched_blocks()
            out: list[BlockRow] = []
            for day, blocks in sorted(self.tree.schedules.items()):
                for path, parent, depth, b in _blocks(blocks, day):
                    name = (_text(b.get("name")) or "").strip()
                    if not name:
                        continue
                    start, end = hhmm(b.get("start_time")), hhmm(b.get("end_time"))
                    planned = parse_duration(b.get("duration"))
                    if planned is None:
                        planned = span(start, end)
                    out.append((day, path, parent, depth, b, name, _text(b.get("type")), start, end, planned,
                                matched.get((day, path))))
            self._block_rows = out
        return self._block_rows

    # core ----------------------------------------------------------------
    def core(self, conn: apsw.Connection) -> dict[str, int]:
        conn.execute(schema.CORE)
        rows = []
        for it in self.tree.items:
            d = it.data
            dur = d.get("duration")
            minutes = parse_duration(dur)
            rows.append((self.ids[(it.type, it.slug)], it.slug, it.name, it.type,
                         *(_text(d.get(c)) for c in ITEM_COLUMNS),
                         iso_date(d.get("due_date")), minutes, _num(d.get("points")),
                         _tags(d.get("tags")), it.path, stamp(d.get("created")),
                         stamp(d.get("updated")) or datetime.fromtimestamp(it.mtime).isoformat(timespec="seconds"),
                         _json(d)))
            if dur is not None and minutes is None:
                self.tree.problems.append(Problem(it.path, None, f"duration {dur!r} is not h:mm, Nd, Nh, Nm "
                                                                 f"or a number of minutes; stored as NULL",
                                                  skipped=False))
        conn.executemany("INSERT INTO items VALUES (" + ",".join("?" * 15) + ")", rows)
        rel = []
        for it in self.tree.items:
            pid = self.ids[(it.type, it.slug)]
            for kind in RELATION_KINDS:
                refs = it.data.get(kind)
                if not isinstance(refs, list):
                    continue
                for order, r in enumerate(refs):
                    if isinstance(r, dict):
                        name, rtype = r.get("name"), r.get("type")
                        detail = {k: v for k, v in r.items() if k not in ("name", "type")} or None
                    else:
                        name, rtype, detail = r, None, None
                    if not isinstance(name, str) or not name.strip():
                        continue
                    rtype = rtype or {"milestones": "milestone", "rewards": "reward"}.get(kind)
                    cid = self.index.find(name, rtype)
                    if cid is None:
                        self.unresolved.append({"from": it.path, "kind": kind, "name": name, "type": rtype})
                    rel.append((pid, cid, name.strip(), rtype, kind, order, int(cid is not None),
                                _json(detail) if detail else None))
        conn.executemany("INSERT INTO relations (parent_id, child_id, child_name, child_type, kind, ord, resolved, "
                         "detail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rel)
        conn.executemany(
            "INSERT INTO completions (date, item_name, item_type, item_id, scheduled_start, scheduled_end, "
            "actual_start, actual_end, status, quality, logged_at, note, source) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(c["date"], c["name"], c["type"], self.index.find(c["name"], c["type"]), c["scheduled_start"],
              c["scheduled_end"], c["actual_start"], c["actual_end"], c["status"], c["quality"], c["logged_at"],
              c["note"], c["source"]) for c in self.completions])
        sched = [(day, path, parent, depth, name, btype, self.index.find(name, btype), start, end, planned,
                  _text(b.get("status")), c and c["actual_start"], c and c["actual_end"],
                  c and span(c["actual_start"], c["actual_end"]), c and c["status"])
                 for day, path, parent, depth, b, name, btype, start, end, planned, c in self.block_rows()]
        conn.executemany("INSERT INTO schedules (date, block, parent_block, depth, name, type, item_id, start_time, "
                         "end_time, planned_minutes, status, actual_start, actual_end, actual_minutes, "
                         "completion_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", sched)
        ledger = self.points_ledger()
        conn.executemany("INSERT INTO points_ledger (ts, delta, reason, source, tags, balance) "
                         "VALUES (?, ?, ?, ?, ?, ?)", ledger)
        status = [(day, hhmm(s.get("time")), str(dim), _text(v))
                  for day, snaps in sorted(self.tree.status.items()) for s in snaps if isinstance(s, dict)
                  for dim, v in s.items() if dim != "time"]
        conn.executemany("INSERT INTO status_log (date, time, dimension, value) VALUES (?, ?, ?, ?)", status)
        variables = {"points.balance": self.tree.points.get("balance"),
                     "points.ledger_balance": ledger[-1][-1] if ledger else 0,
                     "status.dimensions": self.dimensions()}
        for name, data in self.tree.settings.items():
            variables[f"settings.{name}"] = data
        conn.executemany("INSERT INTO variables VALUES (?, ?)", [(k, _json(v)) for k, v in variables.items()])
        return {"items": len(rows), "relations": len(rel), "unresolved_relations": len(self.unresolved),
                "completions": len(self.completions), "schedules": len(sched), "points_ledger": len(ledger),
                "status_log": len(status), "variables": len(variables)}

    def dimensions(self) -> list[str]:
        s = self.tree.settings.get("status_settings") or {}
        dims = s.get("dimensions") if isinstance(s, dict) else None
        return [str(d) for d in dims] if isinstance(dims, list) else list(STATUS_DIMENSIONS)

    def points_ledger(self) -> list[LedgerRow]:
        if self._ledger is None:
            self._ledger = self._points_ledger()
        return self._ledger

    def _points_ledger(self) -> list[LedgerRow]:
        out: list[LedgerRow] = []
        balance = 0.0
        entries = self.tree.points.get("ledger") if isinstance(self.tree.points, dict) else None
        for i, e in enumerate(entries or []):
            delta = _num(e.get("delta")) if isinstance(e, dict) else None
            ts = stamp(e.get("date")) if delta is not None else None
            if delta is None or ts is None:
                self.tree.problems.append(Problem(self.tree.points_file, None,
                                                  f"ledger entry {i} needs a date and a finite numeric delta; "
                                                  f"it is left out", skipped=False))
                continue
            balance += delta
            out.append((ts, delta, _text(e.get("reason")), _text(e.get("source")), _tags(e.get("tags")), balance))
        return out

    # events -----------------------------------------------------------------
    def triggers(self) -> list[Trigger]:
        """Commitments evaluated against the completions (met / violated per
        period, with the actions their triggers name), and rewards redeemed."""
        if self._triggers is None:
            self._triggers = self._evaluate_triggers()
        return self._triggers

    def _evaluate_triggers(self) -> list[Trigger]:
        out: list[Trigger] = []
        by_name: dict[str, list[str]] = {}
        for c in self.completions:
            if c["status"] == "completed":
                by_name.setdefault(c["name"].lower(), []).append(c["date"])
        days = sorted(self.tree.completions)
        if not days:
            return out
        first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
        for it in self.tree.items:
            if it.type != "commitment":
                continue
            rule = it.data.get("rule") if isinstance(it.data.get("rule"), dict) else it.data.get("frequency")
            targets = it.data.get("targets") or []
            if not isinstance(rule, dict) or not isinstance(targets, list):
                continue
            times = int(min(_num(rule.get("times")) or 1, 1e9))
            period = PERIODS.get(str(rule.get("period", "week")).strip().lower())
            if period is None:
                self.tree.problems.append(Problem(it.path, None, f"rule period {rule.get('period')!r} is not one of "
                                                                 f"day, week, month; the commitment is not judged",
                                                  skipped=False))
                continue
            if str(it.data.get("status", "active")).strip().lower() not in ("active", ""):
                continue                        # paused, completed, archived...: not judged
            since = iso_date(it.data.get("created")) or iso_date(it.data.get("start_date"))
            names = [str(t.get("name") if isinstance(t, dict) else t).lower() for t in targets]
            hits = sorted(d for n in names for d in by_name.get(n, []))
            trig = it.data.get("triggers")
            if not isinstance(trig, dict):
                trig = {}
            # the same actions every period: encoded once
            actions_met = (trig.get("on_met") or [], _json(trig.get("on_met") or []))
            actions_violated = (trig.get("on_violation") or [], _json(trig.get("on_violation") or []))
            period_json = _json(period)
            for p_start, p_end, p_last, label in _periods(first, last, period):
                if since is not None and p_last < since:
                    continue                    # before the commitment existed
                n = bisect.bisect_left(hits, p_end) - bisect.bisect_left(hits, p_start)
                met = n >= times
                actions = actions_met if met else actions_violated
                out.append({"ts": f"{p_last}T23:59:59", "source_type": "commitment",
                            "source_name": it.name, "trigger": "on_met" if met else "on_violation",
                            "period": label, "outcome": "met" if met else "violated",
                            "actions": actions[0], "actions_json": actions[1],
                            "detail": {"count": n, "times": times, "period": period},
                            "detail_json": f'{{"count": {n}, "period": {period_json}, "times": {times}}}'})
        rewards = {it.name.lower(): it for it in self.tree.items if it.type == "reward"}
        for ts, delta, reason, source, _, _ in self.points_ledger():
            if source == "reward" and isinstance(reason, str):
                name = reason.split(" ", 1)[-1].lower()
                reward = rewards.get(name)
                if reward is not None:
                    trig = reward.data.get("triggers")
                    if not isinstance(trig, dict):
                        trig = {}
                    redeemed = trig.get("on_complete") or []
                    out.append({"ts": ts, "source_type": "reward", "source_name": reward.name,
                                "trigger": "on_complete", "period": None, "outcome": "redeemed", "actions": redeemed,
                                "actions_json": _json(redeemed), "detail": {"points": delta},
                                "detail_json": _json({"points": delta})})
        out.sort(key=lambda t: (t["ts"], t["source_name"]))
        return out

    def events(self) -> list[Event]:
        """(ts, type, payload) for what happened, from the logs, in time order."""
        ev: list[Event] = []
        for c in self.completions:
            ts = c["logged_at"] or (f"{c['date']}T{c['actual_end'] or c['scheduled_start'] or '00:00'}:00")
            ev.append((ts, "completion", {"name": c["name"], "status": c["status"], "date": c["date"],
                                          "scheduled_start": c["scheduled_start"], "actual_start": c["actual_start"],
                                          "quality": c["quality"]}))
        for ts, delta, reason, source, _, balance in self.points_ledger():
            ev.append((ts, "points", {"delta": delta, "reason": reason, "source": source, "balance": balance}))
        for kind, path, data in self.tree.reviews:
            label = data.get("week") or data.get("month") or data.get("date") or Path(path).stem
            day = iso_date(data.get("date")) or _review_day(str(label))
            ev.append((f"{day}T23:59:59" if day else "1970-01-01T00:00:00", "review",
                       {"kind": kind, "label": _text(label), "path": path,
                        **{k: _plain(v) for k, v in data.items() if k in ("highlights", "lowlights", "lessons",
                                                                          "next_week")}}))
        for t in self.triggers():
            ev.append((t["ts"], "trigger", {"source_type": t["source_type"], "source_name": t["source_name"],
                                            "trigger": t["trigger"], "period": t["period"], "outcome": t["outcome"]}))
        ev.sort(key=lambda e: (e[0], e[1]))        # stable: equal times keep the order above
        return ev

    def memory(self, conn: apsw.Connection) -> dict[str, int]:
        conn.execute(schema.MEMORY)
        _, loose = self.matched_blocks()
        facts = []
        weekday: dict[str, int] = {}
        for day, path, _, depth, _, name, btype, start, end, planned, c in self.block_rows():
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
        for day, items in sorted(self.tree.status.items()):
            for s in items:
                if isinstance(s, dict):
                    snaps.append((day, hhmm(s.get("time")), *(_text(s.get(k)) for k in known),
                                  _json({k: v for k, v in s.items() if k not in known and k != "time"})))
        conn.executemany("INSERT INTO status_snapshots (date, time, health, place, energy, mind_state, focus, "
                         "emotion, vibe, extra_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", snaps)
        conn.executemany("INSERT INTO narratives VALUES (?, ?)", sorted(self.tree.narratives.items()))
        reinf = [(t["ts"], t["source_type"], t["source_name"], t["outcome"],
                  _num(t["detail"].get("points")) or _points_of(t["actions"]), t["detail_json"])
                 for t in self.triggers()]
        conn.executemany("INSERT INTO reinforcements (ts, kind, source_name, outcome, points, detail_json) "
                         "VALUES (?, ?, ?, ?, ?, ?)", reinf)
        return {"activity_facts": len(facts), "status_snapshots": len(snaps),
                "narratives": len(self.tree.narratives), "reinforcements": len(reinf)}


#: How rule periods are spelled, and what they mean.
PERIODS = {"day": "day", "daily": "day", "d": "day", "week": "week", "weekly": "week", "w": "week",
           "month": "month", "monthly": "month", "m": "month"}


@functools.lru_cache(maxsize=64)
def _periods(first: date, last: date, period: str) -> tuple[tuple[str, str, str, str], ...]:
    """The whole periods (days, weeks from Monday, or calendar months)
    between two dates, as (first day, first day after, last day, label)
    text; one still running at ``last`` is not judged.  Shared by every
    commitment of a sync."""
    out: list[tuple[str, str, str, str]] = []
    if period == "week":
        start = first - timedelta(days=first.weekday())
    elif period == "month":
        start = first.replace(day=1)
    else:
        start = first
    while True:
        if period == "month":
            end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
            label = start.strftime("%Y-%m")
        elif period == "week":
            end = start + timedelta(days=7)
            iso = start.isocalendar()
            label = f"{iso[0]}-W{iso[1]:02d}"
        else:
            end = start + timedelta(days=1)
            label = start.isoformat()
        if end - timedelta(days=1) > last:
            return tuple(out)
        out.append((start.isoformat(), end.isoformat(), (end - timedelta(days=1)).isoformat(), label))
        start = end


def _points_of(actions: Any) -> float | None:
    """The points the first action that names some gives (spent: negative)."""
    for a in actions or []:
        points = _num(a.get("points")) if isinstance(a, dict) else None
        if points is not None:
            sign = -1 if str(a.get("action", "")).startswith("spend") else 1
            return sign * points
    return None


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


def fingerprint(user: Path) -> dict:
    """A summary of the YAML that changes when any file is added, removed,
    moved, resized or touched (Data/ is not part of it): a hash of every
    relative path with its size and modification time, plus totals."""
    h = hashlib.sha256()
    totals = [0, 0, 0]                      # files, bytes, newest change

    def walk(folder: str, rel: str, top: bool) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                if not (top and e.name.lower() == "data"):
                    walk(e.path, f"{rel}{e.name}/", False)
            elif e.name.lower().endswith((".yml", ".yaml", ".md")):
                try:
                    st = e.stat()
                    size, mtime = st.st_size, st.st_mtime_ns
                except OSError:               # a dangling link: counted by name only
                    size = mtime = -1
                # a name that is not UTF-8 comes as lone surrogates: hashed as its own bytes
                h.update(f"{rel}{e.name}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
                totals[0] += 1
                totals[1] += max(size, 0)
                totals[2] = max(totals[2], mtime)

    walk(str(user), "", True)
    return {"files": totals[0], "bytes": totals[1], "newest_ns": totals[2], "sha256": h.hexdigest()}


# --- sync ------------------------------------------------------------------------

@contextmanager
def _cycle_collection_paused():
    """Python's cycle collector off for the block, back as it was after.

    A sync allocates a few million dicts, lists and tuples that stay alive
    until it ends, so the collector keeps rescanning a growing heap for
    cycles it will not find (the tree read from YAML has none: a recursive
    document is refused).  On a 20,000-item folder that is about a fifth of
    the sync's time.  Reference counting still frees everything as usual;
    only cycles made meanwhile, here or in other threads, wait for the next
    collection."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def sync(user_path: str | os.PathLike[str], databases: tuple[str, ...] = DATABASES, *,
         progress: Callable[[str], None] | None = None, as_of: date | None = None) -> SyncReport:
    """Rebuild the chosen mirrors of the user folder at (or in) ``user_path``.
    ``progress`` is called with "read" once the YAML is read, then with each
    database's name as it is built."""
    for name in databases:
        if name not in DATABASES:
            raise ConfigError(f"--db must be one of {', '.join(DATABASES)} or all, got {name!r}")
    t0 = time.perf_counter()
    user = find_user_folder(user_path)
    data = data_folder(user)
    report = SyncReport(user=user, data=data)
    with sync_lock(data), _cycle_collection_paused():
        for stale in db.remove_stale_builds(data):
            _logger.info("%s: removed %s, left by a rebuild that did not finish", data, stale.name)
        reg = read_registry(data)
        attempt = now_text()
        for name in databases:
            reg["databases"].setdefault(name, {})["last_attempt"] = attempt
        write_registry(data, reg)
        fp = fingerprint(user)
        try:
            tree = read_user_folder(user)
        except Exception as exc:              # the folder could not be read at all: say so in the registry
            for name in databases:
                reg["databases"][name].update({"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
            write_registry(data, reg)
            raise
        if progress:
            progress("read")
        builder = Builder(tree)
        report.files, report.items = tree.files, len(tree.items)
        # Every mirror is built beside its target first; only when all are
        # built are they renamed into place, one after another, and the
        # registry written: a failure leaves every previous mirror as it was.
        # (Building them in worker processes was tried: on two cores, copying
        # the read tree into them cost more than it saved.)
        pending: list[db.PendingFile] = []
        memory_file = None
        try:
            for name in databases:
                t = time.perf_counter()
                try:
                    if name in ("core", "memory"):
                        fill = builder.core if name == "core" else builder.memory
                        p = db.build_pending(data / schema.FILES[name], fill, user_version=schema.VERSIONS[name])
                        pending.append(p)
                        counts = p.result
                        if name == "memory":
                            memory_file = p.tmp
                    elif name == "events":
                        counts, files = _pending_events(data, builder)
                        pending += files
                    else:
                        counts, files = build_trends(data, as_of=as_of, memory_db=memory_file, pending=True)
                        pending += files
                except Exception as exc:
                    reg["databases"][name].update({"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
                    write_registry(data, reg)
                    raise
                finally:
                    if progress:
                        progress(name)
                report.built[name] = {"file": schema.FILES[name], "counts": counts,
                                      "seconds": round(time.perf_counter() - t, 3)}
        except BaseException:
            for p in pending:
                p.discard()
            raise
        for p in pending:
            p.commit()
        stamp_ = now_text()
        for name in databases:
            entry = reg["databases"].setdefault(name, {})
            entry.pop("error", None)
            entry.update({"file": schema.FILES[name], "schema_version": schema.VERSIONS[name],
                          "counts": report.built[name]["counts"], "last_sync": stamp_, "last_attempt": attempt,
                          "status": "ok", "source": fp})
        report.problems = tree.problems
        report.unresolved = builder.unresolved
        reg["user_folder"] = "."          # relative: the registry lives inside the user folder
        reg["skipped_files"] = [str(p) for p in tree.problems if p.skipped]
        reg["warnings"] = [str(p) for p in tree.problems if not p.skipped]
        write_registry(data, reg)
    report.seconds = time.perf_counter() - t0
    _logger.info("%s: synced %s: %d items from %d files in %.2f s; %d file(s) skipped, %d warning(s)", user,
                 ", ".join(databases), report.items, report.files, report.seconds, report.skipped,
                 len(report.warnings))
    return report


def _pending_events(data: Path, builder: Builder) -> tuple[dict[str, int], list[db.PendingFile]]:
    """chronos_events.db and its chronicle log, built beside their targets.
    The command runs (and their events) of the database being replaced are
    carried over; one that cannot be read is set aside, not lost."""
    target = data / schema.FILES["events"]
    old_runs, old_cmd_events = _previous_commands(target, builder.tree)
    events = builder.events() + [(ts, et, json.loads(p)) for ts, et, p in old_cmd_events]
    events.sort(key=lambda e: (e[0], e[1]))
    triggers = builder.triggers()

    def fill(conn: apsw.Connection) -> dict[str, int]:
        conn.execute(schema.EVENTS)
        conn.executemany("INSERT INTO events (ts, event_type, payload_json) VALUES (?, ?, ?)",
                         [(ts, et, _json(p)) for ts, et, p in events])
        conn.executemany("INSERT INTO command_runs (ts, command, args_json, duration_s, result, detail) "
                         "VALUES (?, ?, ?, ?, ?, ?)", old_runs)
        conn.executemany("INSERT INTO trigger_log (ts, source_type, source_name, trigger, period, outcome, "
                         "actions_json, detail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [(t["ts"], t["source_type"], t["source_name"], t["trigger"], t["period"], t["outcome"],
                           t["actions_json"], t["detail_json"]) for t in triggers])
        return {"events": len(events), "command_runs": len(old_runs), "trigger_log": len(triggers)}

    events_db = db.build_pending(target, fill, user_version=schema.VERSIONS["events"])
    try:
        log = _pending_event_log(data, events)
    except BaseException:
        events_db.discard()
        raise
    return events_db.result, [events_db, log]


def _previous_commands(target: Path, tree: UserTree) -> tuple[list[tuple], list[tuple]]:
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
            # what commands recorded (a sync rebuilds the rest from the YAML): command runs and the
            # reviews `sequence review` logged
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


def _micros(ts: str) -> int:
    dt = datetime.fromisoformat(iso_text(ts))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return max(0, int(dt.timestamp() * 1_000_000))


def _micros_array(stamps: list[str]) -> np.ndarray:
    """_micros for many "YYYY-MM-DDTHH:MM:SS" texts at once (numpy parses ISO times in C)."""
    try:
        t = np.array(stamps, dtype="datetime64[us]")
    except ValueError:                    # an odd form: one at a time
        return np.array([_micros(x) for x in stamps], dtype=np.uint64)
    us = t.astype(np.int64)
    return np.maximum(us, 0).astype(np.uint64)


def _pending_event_log(data: Path, events: list[tuple]) -> db.PendingFile:
    """The same events as a chronicle event log, built beside its target."""
    target = data / EVENT_LOG
    tmp = db.building_path(target)
    tmp.unlink(missing_ok=True)
    try:
        with Chronicle.open(tmp, "w", schema="event", metadata={"source": "sequence sync"}) as ch:
            if events:
                ch.extend({"timestamp": _micros_array([e[0] for e in events]),
                           "event_type": np.array([e[1] for e in events], dtype=object),
                           "payload": np.array([e[2] for e in events], dtype=object)})     # dicts
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return db.PendingFile(tmp, target)


def record_command(user: Path, command: str, args: list[str], duration_s: float, result: str,
                   detail: str | None = None) -> None:
    """Append one command run to chronos_events.db (creating it if need be),
    with its event, also appended to the event log."""
    ts = datetime.now().replace(microsecond=0).isoformat()
    payload = {"command": command, "args": args, "result": result, "duration_s": round(duration_s, 3)}
    _append(user, ts, "command", payload,
            ("INSERT INTO command_runs (ts, command, args_json, duration_s, result, detail) VALUES (?, ?, ?, ?, ?, ?)",
             (ts, command, _json(args), duration_s, result, detail)))


def record_review(user: Path, kind: str, day: date) -> None:
    """A review event (daily, weekly or monthly) for ``day``."""
    ts = datetime.now().replace(microsecond=0).isoformat()
    _append(user, ts, "review", {"kind": kind, "date": day.isoformat(), "source": "sequence review"})


def _append(user: Path, ts: str, etype: str, payload: dict, extra: tuple[str, tuple] | None = None) -> None:
    data = data_folder(user)
    with sync_lock(data, wait=True):      # not while a sync is copying command_runs into its new file
        _append_locked(data, ts, etype, payload, extra)


def _append_locked(data: Path, ts: str, etype: str, payload: dict, extra: tuple[str, tuple] | None) -> None:
    target = data / schema.FILES["events"]
    conn = db.connect(target, journal="delete")
    try:
        with db.sqlite_errors(target, f"appending a {etype} event"), \
                db.write_transaction(conn, f"{target}: appending a {etype} event"):
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'command_runs'").fetchall():
                conn.execute(schema.EVENTS)
                conn.execute(f"PRAGMA user_version={schema.VERSIONS['events']}")
            if extra is not None:
                conn.execute(*extra)
            conn.execute("INSERT INTO events (ts, event_type, payload_json) VALUES (?, ?, ?)", (ts, etype, _json(payload)))
    finally:
        conn.close()
    with Chronicle.open(data / EVENT_LOG, "a", schema="event") as ch:
        # the log is in time order; logs dated after now (a plan logged ahead)
        # would make "now" too old for it: such an event is placed at the
        # log's last time (its payload and the database keep the real one)
        when = max(_micros(ts), ch.last_timestamp or 0)
        ch.append(timestamp=when, event_type=etype, payload={**payload, "recorded_at": ts})


# --- status and plan ----------------------------------------------------------------

def status(user_path: str | os.PathLike[str]) -> dict:
    """Each mirror: file, schema version, counts, last sync and its age, and
    whether the YAML changed since (by the fingerprint taken at that sync)."""
    user = find_user_folder(user_path)
    existing = child(user, "data")
    reg = read_registry(existing) if existing is not None else {"databases": {}}
    fp = fingerprint(user)
    now = datetime.now(timezone.utc)
    databases: dict[str, dict[str, Any]] = {}
    for name in DATABASES:
        e = dict(reg["databases"].get(name, {}))
        path = (existing / schema.FILES[name]) if existing is not None else None
        e["exists"] = bool(path is not None and path.exists())
        if e.get("last_sync"):
            age = now - datetime.fromisoformat(iso_text(e["last_sync"]))
            e["age_seconds"] = int(age.total_seconds())
            e["yaml_changed_since"] = e.get("source") != fp
        else:
            e["yaml_changed_since"] = True
        databases[name] = e
    return {"user": str(user), "yaml": fp, "databases": databases}


def plan(user_path: str | os.PathLike[str]) -> dict:
    """What a sync of the core mirror would change, per item type (added,
    removed, changed), and the log rows it would hold; nothing is written."""
    user = find_user_folder(user_path)
    with _cycle_collection_paused():
        tree = read_user_folder(user)
        new = {(it.type, it.slug): _json(it.data) for it in tree.items}
    old: dict[tuple[str, str], str] = {}
    existing = child(user, "data")
    core = existing / schema.FILES["core"] if existing is not None else None
    if core is not None and core.exists():
        conn = db.open_readonly(core)
        try:
            old = {(t, s): raw for t, s, raw in conn.execute("SELECT type, slug, raw_json FROM items")}
        except apsw.SQLError:               # control flow: a core mirror without items holds nothing to compare
            old = {}
        except apsw.Error as exc:
            raise db.sqlite_error(exc, core, "reading the core mirror") from None
        finally:
            conn.close()
    per_type: dict[str, dict[str, list[str]]] = {}

    def note(kind: str, key: tuple[str, str]) -> None:
        per_type.setdefault(key[0], {"added": [], "removed": [], "changed": []})[kind].append(key[1])

    for key in sorted(new.keys() - old.keys()):
        note("added", key)
    for key in sorted(old.keys() - new.keys()):
        note("removed", key)
    for key in sorted(new.keys() & old.keys()):
        if new[key] != old[key]:
            note("changed", key)
    b = Builder(tree)
    return {"user": str(user), "mirror_exists": bool(old), "items": len(new), "types": per_type,
            "logs": {"completions": len(b.completions), "schedule_days": len(tree.schedules),
                     "status_days": len(tree.status), "narratives": len(tree.narratives),
                     "reviews": len(tree.reviews)},
            "problems": [str(p) for p in tree.problems]}


# --- chronoledger.sequence.sync(...) -----------------------------------------------

class _CallableModule(types.ModuleType):
    """This module, callable: ``chronoledger.sequence.sync(user, ...)`` is
    :func:`sync`.  The package's attribute ``sync`` is this submodule once it
    is imported (Python sets it so), so the module itself answers the call
    that docs/sequence.md and DESIGN.md show, and ``sync.SyncReport``,
    ``from chronoledger.sequence import sync`` and ``import
    chronoledger.sequence.sync`` still give the module."""

    def __call__(self, *args: Any, **kwargs: Any) -> SyncReport:
        return sync(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
