"""chronos_core.db: the items, the references between them, and the logs
as tables (completions, the items' own habit history, schedule blocks
planned vs actual, the points ledger, status snapshots, variables), from
the records a sync read.

Items and relations also carry Chronos's names for them (an item's slug
``type::name``, a relation's ``parent_slug`` and ``child_slug``), so the
SQL Chronos's ``today`` runs on its own core mirror runs on this one.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path, PurePosixPath

import apsw

from chronoledger import sqlite as db
from chronoledger.sequence import schema
from chronoledger.sequence.derived import Derived
from chronoledger.sequence.records import Problem, UserTree
from chronoledger.sequence.schema import STATUS_DIMENSIONS
from chronoledger.sequence.slugs import item_slug, item_slugs
from chronoledger.sequence.values import hhmm, iso_date, parse_duration, span, stamp, to_json, to_num, to_tags, to_text

#: Item fields stored as columns of their own, as text.
ITEM_COLUMNS = ("category", "status", "priority")
#: The lists in an item that name other items, stored as relations.
RELATION_KINDS = ("children", "milestones", "rewards", "targets")


def fill(conn: apsw.Connection, records: Derived) -> dict[str, int]:
    """chronos_core.db's tables, from the records; references no item answers go to ``records.unresolved``."""
    tree = records.tree
    conn.execute(schema.tables(schema.CORE))
    slugs = item_slugs(tree.items)
    slug_of = {records.ids[(it.type, it.slug)]: slug for it, slug in zip(tree.items, slugs)}
    rows = []
    for it, slug in zip(tree.items, slugs):
        d = it.data
        dur = d.get("duration")
        minutes = parse_duration(dur)
        rows.append((records.ids[(it.type, it.slug)], slug, it.name, it.type,
                     *(to_text(d.get(c)) for c in ITEM_COLUMNS),
                     iso_date(d.get("due_date")), minutes, to_num(d.get("points")),
                     to_tags(d.get("tags")), it.path, stamp(d.get("created")),
                     stamp(d.get("updated")) or datetime.fromtimestamp(it.mtime).isoformat(timespec="seconds"),
                     to_json(d)))
        if dur is not None and minutes is None:
            tree.problems.append(Problem(it.path, None, f"duration {dur!r} is not h:mm, Nd, Nh, Nm "
                                                        f"or a number of minutes; stored as NULL", skipped=False))
    conn.executemany("INSERT INTO items VALUES (" + ",".join("?" * 15) + ")", rows)
    rel = []
    for it, slug in zip(tree.items, slugs):
        pid = records.ids[(it.type, it.slug)]
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
                cid = records.index.find(name, rtype)
                if cid is None:
                    records.unresolved.append({"from": it.path, "kind": kind, "name": name, "type": rtype})
                # Chronos's child_slug: the item's own when it resolves, else type::name as written
                rel.append((pid, cid, name.strip(), rtype, kind, order, int(cid is not None),
                            to_json(detail) if detail else None, slug,
                            slug_of[cid] if cid is not None else item_slug(rtype, name)))
    # a milestone's goal: and a day's sequence: windows (derived.Derived.link_relations)
    rel += [(*r, slug_of[r[0]], slug_of[r[1]] if r[1] is not None else item_slug(r[3], r[2]))
            for r in records.link_relations()]
    conn.executemany("INSERT INTO relations (parent_id, child_id, child_name, child_type, kind, ord, resolved, "
                     "detail_json, parent_slug, child_slug) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rel)
    conn.executemany(
        "INSERT INTO completions (date, item_name, item_type, item_id, scheduled_start, scheduled_end, "
        "actual_start, actual_end, status, quality, logged_at, note, source, quality_label, block_key, origin, "
        "auto, extra_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(c["date"], c["name"], c["type"], records.index.find(c["name"], c["type"]), c["scheduled_start"],
          c["scheduled_end"], c["actual_start"], c["actual_end"], c["status"], c["quality"], c["logged_at"],
          c["note"], c["source"], c["quality_label"], c["key"], c["origin"], c["auto"], c["extra_json"])
         for c in records.completions])
    history = records.habit_history()         # the items' own completion_dates / incident_dates
    conn.executemany("INSERT INTO habit_history (item_id, name, type, date, kind, polarity) VALUES (?, ?, ?, ?, ?, ?)",
                     [(h["item_id"], h["name"], h["type"], h["date"], h["kind"], h["polarity"]) for h in history])
    sched = [(day, path, parent, depth, name, btype, records.index.find(name, btype), start, end, planned,
              to_text(b.get("status")), c and c["actual_start"], c and c["actual_end"],
              c and span(c["actual_start"], c["actual_end"]), c and c["status"])
             for day, path, parent, depth, b, name, btype, start, end, planned, c in records.block_rows()]
    conn.executemany("INSERT INTO schedules (date, block, parent_block, depth, name, type, item_id, start_time, "
                     "end_time, planned_minutes, status, actual_start, actual_end, actual_minutes, "
                     "completion_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", sched)
    ledger = records.points_ledger()
    conn.executemany("INSERT INTO points_ledger (ts, delta, reason, source, tags, balance) "
                     "VALUES (?, ?, ?, ?, ?, ?)", ledger)
    status = [(day, hhmm(s.get("time")), str(dim), to_text(v))
              for day, snaps in sorted(tree.status.items()) for s in snaps if isinstance(s, dict)
              for dim, v in s.items() if dim != "time"]
    conn.executemany("INSERT INTO status_log (date, time, dimension, value) VALUES (?, ?, ?, ?)", status)
    variables = {"points.balance": tree.points.get("balance"),
                 "points.ledger_balance": ledger[-1][-1] if ledger else 0,
                 "status.dimensions": dimensions(tree)}
    variables.update(records.variables())      # status dimensions and levels, quality, current status, timer
    for name, data in tree.settings.items():
        variables[f"settings.{name}"] = data
    conn.executemany("INSERT INTO variables VALUES (?, ?)", [(k, to_json(v)) for k, v in variables.items()])
    timers = records.timer_sessions()         # Timers/sessions/DATE.yml, for the digest's focus time
    conn.executemany("INSERT INTO timer_sessions (date, started, ended, phase, profile, seconds, minutes, bound_type, "
                     "bound_name, item_id, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [(s["date"], s["start"], s["end"], s["phase"], s["profile"], s["seconds"], s["minutes"],
                       s["bound_type"], s["bound_name"], s["item_id"], s["source"]) for s in timers])
    conn.execute(schema.indexes(schema.CORE))     # after the rows: see schema.tables
    return {"items": len(rows), "relations": len(rel), "unresolved_relations": len(records.unresolved),
            "completions": len(records.completions), "habit_history": len(history), "schedules": len(sched),
            "points_ledger": len(ledger), "status_log": len(status), "variables": len(variables),
            "timer_sessions": len(timers)}


def dimensions(tree: UserTree) -> list[str]:
    """The status dimensions Settings/status_settings.yml names, else the known ones."""
    s = tree.settings.get("status_settings") or {}
    dims = s.get("dimensions") if isinstance(s, dict) else None
    return [str(d) for d in dims] if isinstance(dims, list) else list(STATUS_DIMENSIONS)


def mirrored_items(core: Path) -> dict[tuple[str, str], str]:
    """(type, file stem) -> the item as stored (raw_json) in an existing core
    mirror, for comparing with the folder now; empty when it holds none."""
    conn = db.open_readonly(core)
    try:
        return {(t, PurePosixPath(p).stem): raw for t, p, raw in conn.execute("SELECT type, path, raw_json FROM items")}
    except apsw.SQLError:               # control flow: a core mirror without items holds nothing to compare
        return {}
    except apsw.Error as exc:
        raise db.sqlite_error(exc, core, "reading the core mirror") from None
    finally:
        conn.close()
