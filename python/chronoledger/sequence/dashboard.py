"""What a dashboard reads of the mirrors: Chronos's trend metrics in the
shape its dashboard widget reads, and a user's completions and habit streaks
as series to chart.  Read-only: the mirrors are opened ``mode=ro``.

``trends_metrics`` answers as Chronos's ``GET /api/trends/metrics`` does
(utilities/dashboard/server.py of Jeetski/Chronos_Engine): ``{"ok": true,
"metrics": {"blocks_total", "blocks_completed", "quality_counts",
"habit_stats", "goal_stats", "timer_stats", "adherence_stats"}}``, with
Chronos's key names, and ``{"ok": true, "metrics": {}}`` before the first
metastudy.  Two things Chronos loses are kept: its widget reads
``goal_stats.milestones_completed_this_week``, which Chronos never sends
(the widget always shows 0), and the metrics whose names Chronos's grouping
does not match (the blocks' completion rate and mean variance, the bad
habits' clean days, pending milestones, the custom completion fields) are
dropped there; here they are added under keys the widget does not read.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import NotFoundError, QueryError
from chronoledger.sequence import schema
from chronoledger.sequence.query import run_query

__all__ = ["ITEM_COLUMNS", "completion_series", "find_items", "habit_streaks", "item_detail", "mirror_files",
           "mirror_tables", "trends_metrics"]

#: the item columns a lookup gives (the core mirror's own names)
ITEM_COLUMNS = ("id", "slug", "name", "type", "category", "status", "priority", "due_date", "duration_minutes",
                "points", "tags", "path")

# our metric -> (group, Chronos's key); a group of None is a top-level key
_RENAMES: dict[str, tuple[str | None, str]] = {
    "blocks_total": (None, "blocks_total"), "blocks_completed": (None, "blocks_completed"),
    "blocks_completion_rate": (None, "blocks_completion_rate"),
    "blocks_avg_variance_minutes": (None, "blocks_avg_variance_minutes"),
    "habits_total": ("habit_stats", "total_habits"),
    "habits_with_streak": ("habit_stats", "habits_with_current_streak"),
    "habits_avg_streak": ("habit_stats", "avg_streak"),
    "habits_longest_streak": ("habit_stats", "longest_streak_overall"),
    "habits_completion_today": ("habit_stats", "completion_rate_today"),
    "bad_habits_avg_clean_days": ("habit_stats", "bad_habits_avg_clean_days"),
    "goals_total": ("goal_stats", "total_goals"), "goals_in_progress": ("goal_stats", "goals_in_progress"),
    "milestones_completed_week": ("goal_stats", "milestones_completed_this_week"),
    "milestones_pending": ("goal_stats", "milestones_pending"),
    "timer_sessions_total": ("timer_stats", "sessions_total"), "timer_focus_minutes": ("timer_stats", "focus_minutes"),
    "timer_break_minutes": ("timer_stats", "break_minutes"), "timer_profile_usage": ("timer_stats", "profile_usage"),
    "adherence_on_time": ("adherence_stats", "on_time_count"), "adherence_late": ("adherence_stats", "late_count"),
    "adherence_percentage": ("adherence_stats", "adherence_percentage"),
    "adherence_avg_delay": ("adherence_stats", "avg_delay"),
}
_INTEGERS = {"blocks_total", "blocks_completed"}


def _connect(data: Path, which: str) -> apsw.Connection | None:
    path = data / schema.FILES[which]
    if not path.is_file():
        return None
    return db.open_readonly(path, db.DEFAULT_BUSY_TIMEOUT_MS)        # a sync may be writing it


def trends_metrics(data: Path) -> dict[str, Any]:
    """The trend metrics of the mirrors' folder ``data`` as Chronos's
    dashboard endpoint gives them (see the module's docstring)."""
    conn = _connect(data, "trends")
    if conn is None:
        return {"ok": True, "metrics": {}}
    try:
        path = data / schema.FILES["trends"]
        with db.named_damage(path, "reading its metrics"):
            rows = conn.execute("SELECT metric, value, extra_json FROM metrics ORDER BY id").fetchall()
    finally:
        conn.close()
    metrics: dict[str, Any] = {}
    goals_avg = None
    for name, value, extra in rows:
        metric = str(name)
        extra_value = None
        if isinstance(extra, str) and extra:
            try:
                extra_value = json.loads(extra)
            except ValueError:
                extra_value = None
        if metric == "completion_quality_counts":
            metrics["quality_counts"] = extra_value if isinstance(extra_value, dict) else {}
            continue
        if metric == "completion_custom_property_counts":
            metrics["custom_property_counts"] = extra_value if isinstance(extra_value, dict) else {}
            continue
        if metric == "goals_avg_progress":
            goals_avg = value
            continue
        group, key = _RENAMES.get(metric, (None, metric))
        v = int(value) if metric in _INTEGERS and value is not None else value
        if group is None:
            metrics[key] = v
        else:
            metrics.setdefault(group, {})[key] = v
        if metric == "timer_profile_usage" and isinstance(extra_value, dict):
            metrics["timer_stats"]["profile_usage_by_profile"] = extra_value
    if goals_avg is not None:
        # Chronos sends the sum of the goals' progress (its widget divides by total_goals)
        goal = metrics.setdefault("goal_stats", {})
        goal["total_progress"] = float(goals_avg) * float(goal.get("total_goals") or 0)
    return {"ok": True, "metrics": metrics}


def completion_series(data: Path) -> dict[str, Any]:
    """Completions per day by status: ``{"dates": [...], "statuses":
    {status: [count per date]}}``, every day from the first to the last
    logged one (a day with none counts 0)."""
    conn = _connect(data, "core")
    if conn is None:
        return {"dates": [], "statuses": {}}
    try:
        with db.named_damage(data / schema.FILES["core"], "reading its completions"):
            rows = conn.execute("SELECT date, status, count(*) FROM completions GROUP BY date, status").fetchall()
    finally:
        conn.close()
    found: list[tuple[date, str, int]] = []
    for d, status, n in rows:
        day = _day(d) if isinstance(d, str) else None
        if day is not None and isinstance(n, int):
            found.append((day, str(status), n))
    if not found:
        return {"dates": [], "statuses": {}}
    first = min(f[0] for f in found)
    last = max(f[0] for f in found)
    dates = [(first + timedelta(days=k)).isoformat() for k in range((last - first).days + 1)]
    statuses: dict[str, list[int]] = {}
    for day, status, n in found:
        statuses.setdefault(status, [0] * len(dates))[(day - first).days] += n
    return {"dates": dates, "statuses": dict(sorted(statuses.items()))}


def habit_streaks(data: Path, top: int = 8) -> dict[str, Any]:
    """Each habit to build's streak of consecutive days done, day by day:
    ``{"dates": [...], "habits": [{"name", "current", "longest", "streak":
    [length per date]}]}``, the ``top`` habits by longest streak (then by
    name); ``current`` is the streak on the last logged day."""
    conn = _connect(data, "core")
    if conn is None:
        return {"dates": [], "habits": []}
    try:
        with db.named_damage(data / schema.FILES["core"], "reading its habit history"):
            rows = conn.execute("SELECT name, date FROM habit_history WHERE kind = 'completion' "
                                "AND polarity = 'good' ORDER BY name, date").fetchall()
    finally:
        conn.close()
    done: dict[str, set[date]] = {}
    for name, d in rows:
        day = _day(d) if isinstance(d, str) else None
        if day is not None:
            done.setdefault(str(name), set()).add(day)
    if not done:
        return {"dates": [], "habits": []}
    first = min(min(s) for s in done.values())
    last = max(max(s) for s in done.values())
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    habits: list[dict[str, Any]] = []
    for name, got in done.items():
        run, series = 0, []
        for day in days:
            run = run + 1 if day in got else 0
            series.append(run)
        habits.append({"name": name, "current": series[-1], "longest": max(series), "streak": series})
    habits.sort(key=lambda h: (-h["longest"], h["name"]))
    return {"dates": [d.isoformat() for d in days], "habits": habits[:top]}


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def mirror_files(data: Path) -> list[dict[str, Any]]:
    """Each mirror of the folder ``data``: ``{"name", "file", "exists", "size", "modified"}``."""
    out = []
    for name, fname in schema.FILES.items():
        p = data / fname
        st = p.stat() if p.is_file() else None
        out.append({"name": name, "file": fname, "exists": st is not None, "size": st.st_size if st else None,
                    "modified": st.st_mtime if st else None})
    return out


def mirror_tables(data: Path, which: str = "core", timeout: float | None = None) -> list[dict[str, Any]]:
    """The tables of mirror ``which``: ``{"name", "rows", "columns": [{"name", "type"}]}`` (read through
    :func:`run_query`, as ``sequence data`` reads)."""
    if which not in schema.FILES:
        raise QueryError(f"no mirror {which!r}; the mirrors are {', '.join(schema.FILES)}")
    _, rows = run_query(data, "SELECT name FROM main.sqlite_master WHERE type = 'table' "
                              "AND name NOT LIKE 'sqlite_%' ORDER BY name", which, timeout=timeout)
    out = []
    for (name,) in rows:
        _, info = run_query(data, "SELECT name, type FROM pragma_table_info(?, 'main')", which, params=(name,))
        quoted = '"' + str(name).replace('"', '""') + '"'
        _, count = run_query(data, f"SELECT count(*) FROM main.{quoted}", which, timeout=timeout)
        out.append({"name": name, "rows": count[0][0], "columns": [{"name": n, "type": t} for n, t in info]})
    return out


def find_items(data: Path, *, type: str | None = None, text: str | None = None, limit: int = 100,
               offset: int = 0, timeout: float | None = None) -> tuple[list[dict[str, Any]], bool]:
    """Items of the core mirror of one ``type`` and whose name contains
    ``text`` (as text: % and _ match themselves), by type and name, ``limit``
    from ``offset``; and whether there are more."""
    where, params = [], []
    if type:
        where.append("type = ?")
        params.append(type)
    if text:
        where.append("name LIKE ? ESCAPE '\\'")
        params.append("%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    sql = f"SELECT {', '.join(ITEM_COLUMNS)} FROM items" + (" WHERE " + " AND ".join(where) if where else "") + \
        " ORDER BY type, name, id"
    names, rows = run_query(data, sql, "core", limit=limit + 1, params=params, offset=offset, timeout=timeout)
    return [dict(zip(names, r)) for r in rows[:limit]], len(rows) > limit


def item_detail(data: Path, key: str) -> dict[str, Any]:
    """One item of the core mirror by its slug or id: its columns, its YAML
    as ``data``, its relations and its completions; NotFoundError if none."""
    names, rows = run_query(data, f"SELECT {', '.join(ITEM_COLUMNS)}, raw_json FROM items WHERE slug = ? OR "
                                  "CAST(id AS TEXT) = ? LIMIT 1", "core", params=(key, key))
    if not rows:
        raise NotFoundError(f"item {key!r}: no item has that slug or id")
    found: dict[str, Any] = dict(zip(names, rows[0]))
    raw = found.pop("raw_json", None)
    try:
        found["data"] = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        found["data"] = raw
    rn, rr = run_query(data, "SELECT kind, child_name, child_type, ord, resolved FROM relations "
                             "WHERE parent_id = ? ORDER BY kind, ord", "core", params=(found["id"],))
    cn, cr = run_query(data, "SELECT date, status, scheduled_start, actual_start, actual_end FROM completions "
                             "WHERE item_id = ? ORDER BY date, id", "core", params=(found["id"],))
    return {"item": found, "relations": [dict(zip(rn, r)) for r in rr], "completions": [dict(zip(cn, r)) for r in cr]}
