"""chronos_behavior.db: every schedule block, planned against what was
logged for it, in the shape of Chronos's own behaviour mirror (its table
``activity_facts``), from the records a sync read.

Chronos's scheduler (Kairos) reads it to score items by how reliably they
are done, and Chronos's trends build reads it for its block and adherence
metrics: the same SQL runs here.  Where Chronos's own build is wrong, this
one is not: it holds every day's schedule, not only today's; a start
variance is the minutes between the planned and the actual start (Chronos's
is always 0: it compares an ISO time with an HH:MM one), and NULL for a
block nobody logged (Chronos's 0 counted those as on time).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import apsw

from chronoledger.sequence import schema
from chronoledger.sequence.derived import Derived
from chronoledger.sequence.records import Completion
from chronoledger.sequence.slugs import block_key, item_slug, item_slugs
from chronoledger.sequence.values import minutes_of, to_json, to_num, to_text

#: The fields of a completion entry Chronos keeps in ``completion_json`` (its
#: raw entry), in the order Chronos's writers give them.
ENTRY_FIELDS = ("name", "status", "scheduled_start", "scheduled_end", "actual_start", "actual_end", "logged_at",
                "note", "quality", "type")


def fill(conn: apsw.Connection, records: Derived) -> dict[str, int]:
    """chronos_behavior.db's table, from the records: one row per named
    schedule block (nested ones too, each at its depth)."""
    conn.execute(schema.BEHAVIOR)
    items = records.tree.items
    slug_of = {records.ids[(it.type, it.slug)]: s for it, s in zip(items, item_slugs(items))}
    type_of = {records.ids[(it.type, it.slug)]: it.type for it in items}
    rows = []
    for day, path, _, depth, b, name, btype, start, end, planned, c in records.block_rows():
        iid = records.index.find(name, btype)
        planned_start = f"{day}T{start}:00" if start else None
        planned_end = None
        if end:
            end_day = day
            if start and end < start:                   # "HH:MM" both: overnight, it ends the next day
                end_day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
            planned_end = f"{end_day}T{end}:00"
        status = (c["status"] if c else None) or to_text(b.get("status")) or "pending"
        rows.append((day, block_key(name, start), name,
                     slug_of[iid] if iid is not None else item_slug(btype, name),
                     type_of[iid] if iid is not None else btype,
                     planned_start, planned_end, c and c["actual_start"], c and c["actual_end"],
                     planned, to_num(b.get("importance_score")), status, depth, int(path.rsplit(".", 1)[-1]),
                     _variance(start, c), c and _quality(c), c and _entry_json(c)))
    conn.executemany("INSERT INTO activity_facts (schedule_date, block_key, name, item_slug, item_type, "
                     "planned_start, planned_end, actual_start, actual_end, planned_minutes, importance_score, "
                     "status, depth, order_index, variance_minutes, completion_quality, completion_json) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return {"activity_facts": len(rows)}


def _variance(start: str | None, c: Completion | None) -> int | None:
    """Minutes from the planned start to the actual one (negative: early); a
    start after midnight of a late-evening block counts as late, not early."""
    a, p = minutes_of(c["actual_start"] if c else None), minutes_of(start)
    if a is None or p is None:
        return None
    v = a - p
    if v < -12 * 60:
        v += 24 * 60
    elif v > 12 * 60:
        v -= 24 * 60
    return v


def _quality(c: Completion) -> str | None:
    """The quality as written: Chronos's label ("Good") when the entry had
    one, else the number."""
    label = c.get("quality_label")              # the reader keeps the label as written, when it gives one
    if isinstance(label, str) and label:
        return label
    q = c["quality"]
    if q is None:
        return None
    return str(int(q)) if float(q).is_integer() else str(q)


def _entry_json(c: Completion) -> str:
    """The completion entry, as Chronos keeps it (its raw entry): its own
    fields, the ones it did not give left out, and the others it had
    (``source``, ``auto_missed``, ``reason``, ``tags``...)."""
    entry: dict[str, Any] = {}
    for k in ENTRY_FIELDS:
        v = _quality(c) if k == "quality" else c.get(k)
        if v is not None:
            entry[k] = v
    if c.get("origin"):
        entry["source"] = c.get("origin")
    if c.get("auto") in ("missed", "skipped"):
        entry[f"auto_{c.get('auto')}"] = True
    extra = c.get("extra_json")
    if isinstance(extra, str) and extra:
        more = json.loads(extra)
        if isinstance(more, dict):
            for k, v in more.items():
                entry.setdefault(str(k), v)
    return to_json(entry)
