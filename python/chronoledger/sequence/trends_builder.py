"""chronos_trends.db: the memory mirror's facts digested into rolling
windows of 7, 30 and 90 days ending on ``as_of`` (per item, type, day of the
week, status dimension, commitment or reward); and, for the digest, the
metrics Chronos computes from the items themselves (habit streaks from
``completion_dates`` / ``incident_dates``, goal progress from milestones,
timer sessions), what the folder holds and which logs it has.

A pure function of the facts, the folder's items and ``as_of``; the
metastudy loads them (:func:`chronoledger.sequence.metastudy.load_facts`,
:func:`~chronoledger.sequence.metastudy.load_folder`) and writes the result.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import apsw

from chronoledger.sequence import schema
from chronoledger.sequence.schema import STATUS_DIMENSIONS
from chronoledger.sequence.values import iso_date, to_num

#: The windows, in days, each ending on as_of.
WINDOWS = (7, 30, 90)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: Status values with an order, low to high (others are only counted), for a
#: dimension the folder's settings give no levels for (``Folder.status_levels``).
ORDINAL = {
    "energy": ("low", "medium", "high"), "focus": ("scattered", "ok", "sharp"), "health": ("sick", "ok", "great"),
    "emotion": ("sad", "neutral", "happy"), "vibe": ("flat", "good", "electric"),
    "mind_state": ("anxious", "busy", "calm"),
}


@dataclass
class Fact:
    date: str
    weekday: int
    name: str
    type: str | None
    status: str
    start: int | None          # actual start, minutes after midnight
    delay: float | None
    planned: float | None
    actual: float | None


#: A log's size and span: rows, distinct days, first and last day (None when empty).
LOG_KEYS = ("entries", "days", "first", "last")
#: Timer phases that are breaks (Chronos's timer writes focus, short_break, long_break).
BREAK_PHASES = ("short_break", "long_break", "break")


@dataclass
class Folder:
    """What the digest says beyond the behaviour logs, read from the core
    mirror: each item as (type, name, status, the whole item as read), each
    log's size and span (``LOG_KEYS``, by log name), and the timer sessions
    (dicts with date, phase, profile, seconds; None when the mirror holds no
    table of them), each status dimension's levels, worst to best and
    lower-cased, from Chronos's settings (the core mirror's ``status.levels``),
    and each completion as (date, its quality label, its custom properties:
    the fields Chronos's trends count beside its own).  ``core`` is False
    when there was no core mirror to read."""
    items: list[tuple[str, str, str | None, dict]] = field(default_factory=list)
    logs: dict[str, dict[str, Any]] = field(default_factory=dict)
    timer_sessions: list[dict[str, Any]] | None = None
    core: bool = True
    status_levels: dict[str, list[str]] = field(default_factory=dict)
    completions: list[tuple[str, str | None, tuple[str, ...]]] = field(default_factory=list)


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _streaks(by_day: dict[str, bool]) -> tuple[int, int]:
    """(current, best) runs of scheduled days that were done, in date order."""
    cur = best = 0
    for day in sorted(by_day):
        cur = cur + 1 if by_day[day] else 0
        best = max(best, cur)
    return cur, best


def _clock_stats(minutes: list[int]) -> tuple[float | None, float | None]:
    """Mean and spread of times of day, around the clock: 23:50 and 00:10
    average to 00:00 with a spread of 10 minutes, not to 12:00."""
    if not minutes:
        return None, None
    angles = [2 * math.pi * m / 1440 for m in minutes]
    mean = math.atan2(sum(map(math.sin, angles)) / len(angles), sum(map(math.cos, angles)) / len(angles))
    centre = (mean * 1440 / (2 * math.pi)) % 1440
    offsets = [(m - centre + 720) % 1440 - 720 for m in minutes]     # each start's distance from the mean
    spread = math.sqrt(sum(o * o for o in offsets) / len(offsets)) if len(offsets) > 1 else None
    return centre, spread


def _group_stats(facts: list[Fact]) -> dict:
    done = [f for f in facts if f.status == "completed"]
    starts = [f.start for f in facts if f.start is not None]
    avg_start, spread = _clock_stats(starts)
    half = len(starts) // 2
    drift = None
    if half >= 2:
        a, _ = _clock_stats(starts[:half])
        b, _ = _clock_stats(starts[half:])
        if a is not None and b is not None:     # both halves hold starts
            drift = (b - a + 720) % 1440 - 720
    both = [(f.planned, f.actual) for f in facts if f.planned is not None and f.actual is not None]   # like with like
    return {"scheduled": len(facts), "completed": len(done),
            "completion_rate": len(done) / len(facts) if facts else None,
            "avg_start_minute": avg_start, "start_stddev_minutes": spread, "start_drift_minutes": drift,
            "avg_delay_minutes": _mean([f.delay for f in facts if f.delay is not None]),
            "planned_minutes": _mean([planned for planned, _ in both]),
            "actual_minutes": _mean([actual for _, actual in both])}


def status_levels(folder: Folder | None) -> dict[str, tuple[str, ...]]:
    """Each status dimension's levels, worst to best, lower-cased: the
    folder's own (Chronos's ``<dimension>_settings.yml``) where it has two or
    more, else :data:`ORDINAL`'s."""
    out: dict[str, tuple[str, ...]] = dict(ORDINAL)
    for dim, levels in (folder.status_levels if folder is not None else {}).items():
        if isinstance(levels, list) and len(levels) >= 2:
            out[str(dim)] = tuple(str(v).strip().lower() for v in levels)
    return out


def _level(value: Any, levels: tuple[str, ...] | None) -> float | None:
    """Where a status value lies on its dimension's levels, 0 (worst) to 1
    (best), compared lower-cased; None when it is not one of them."""
    if not levels or not isinstance(value, str):
        return None
    v = value.strip().lower()
    return levels.index(v) / (len(levels) - 1) if v in levels else None


def compute(facts: list[Fact], snaps: list[tuple], reinf: list[tuple], as_of: date,
            folder: Folder | None = None) -> dict:
    """The trends for every window ending on ``as_of`` (inclusive), and what
    the folder holds (:func:`folder_stats`; None without ``folder``).  Status
    values are placed on the levels :func:`status_levels` gives."""
    end = as_of.isoformat()
    dims = STATUS_DIMENSIONS          # the columns of status_snapshots, in their order
    levels_of = status_levels(folder)
    out: dict = {"as_of": end, "windows": list(WINDOWS), "items": {}, "types": {}, "weekdays": {},
                 "status": {}, "reinforcements": {},
                 "status_levels": {dim: list(levels_of[dim]) for dim in dims if dim in levels_of},
                 "folder": folder_stats(folder, as_of) if folder is not None else None}
    for w in WINDOWS:
        start = (as_of - timedelta(days=w - 1)).isoformat()
        window = [f for f in facts if start <= f.date <= end]
        by_item: dict[str, list[Fact]] = defaultdict(list)
        for f in window:
            by_item[f.name].append(f)
        for name, fs in by_item.items():
            days: dict[str, bool] = {}
            for f in fs:
                days[f.date] = days.get(f.date, False) or f.status == "completed"
            cur, best = _streaks(days)
            st = _group_stats(fs)
            st.update({"type": fs[0].type, "current_streak": cur, "best_streak": best})
            out["items"].setdefault(name, {})[w] = st
        by_type: dict[str, list[Fact]] = defaultdict(list)
        for f in window:
            by_type[f.type or "unknown"].append(f)
        for t, fs in by_type.items():
            out["types"].setdefault(t, {})[w] = _group_stats(fs)
        by_weekday: dict[int, list[Fact]] = defaultdict(list)
        for f in window:
            by_weekday[f.weekday].append(f)
        for wd in range(7):
            fs = by_weekday[wd]
            out["weekdays"].setdefault(WEEKDAYS[wd], {})[w] = {
                "scheduled": len(fs), "completed": sum(f.status == "completed" for f in fs),
                "completion_rate": (sum(f.status == "completed" for f in fs) / len(fs)) if fs else None}
        wsnaps = [s for s in snaps if start <= s[0] <= end]
        for i, dim in enumerate(dims):
            vals = [s[2 + i] for s in wsnaps if s[2 + i] is not None]
            levels = levels_of.get(dim)
            nums = [n for n in (_level(v, levels) for v in vals) if n is not None]
            third = len(nums) // 3
            drift = (statistics.fmean(nums[-third:]) - statistics.fmean(nums[:third])) if third >= 2 else None
            out["status"].setdefault(dim, {})[w] = {
                "samples": len(vals), "most_common": Counter(vals).most_common(1)[0][0] if vals else None,
                "mean_level": _mean(nums), "drift": drift}
        by_source: dict[str, list[tuple]] = defaultdict(list)
        for r in reinf:
            if start <= r[0][:10] <= end:
                by_source[r[2]].append(r)
        for n in sorted(by_source):
            rs = by_source[n]
            out["reinforcements"].setdefault(n, {})[w] = {
                "kind": rs[0][1], "fired": len(rs), "met": sum(r[3] == "met" for r in rs),
                "violated": sum(r[3] == "violated" for r in rs)}
    upto = [f for f in facts if f.date <= end]        # every activity up to as_of, for Chronos's block metrics
    out["activities"] = {"total": len(upto), "completed": sum(f.status == "completed" for f in upto),
                         "delays": [f.delay for f in upto if f.delay is not None]}
    logged = [c for c in (folder.completions if folder is not None else ()) if c[0] <= end]
    out["completion_properties"] = {"quality": dict(Counter(label for _, label, _ in logged if label)),
                                    "custom": dict(Counter(k for _, _, keys in logged for k in keys))}
    return out


def fill(conn: apsw.Connection, t: dict) -> dict[str, int]:
    """chronos_trends.db's tables, from what :func:`compute` gives."""
    conn.execute(schema.TRENDS)
    a = t["as_of"]
    items = [(n, w_st["type"], w, a, w_st["scheduled"], w_st["completed"], w_st["completion_rate"],
              w_st["current_streak"], w_st["best_streak"], w_st["avg_start_minute"], w_st["start_stddev_minutes"],
              w_st["start_drift_minutes"], w_st["avg_delay_minutes"], w_st["planned_minutes"], w_st["actual_minutes"])
             for n, ws in t["items"].items() for w, w_st in ws.items()]
    conn.executemany("INSERT INTO item_trends VALUES (" + ",".join("?" * 15) + ")", items)
    types = [(ty, w, a, s["scheduled"], s["completed"], s["completion_rate"], s["planned_minutes"],
              s["actual_minutes"]) for ty, ws in t["types"].items() for w, s in ws.items()]
    conn.executemany("INSERT INTO type_trends VALUES (?, ?, ?, ?, ?, ?, ?, ?)", types)
    wd = [(WEEKDAYS.index(d), w, a, s["scheduled"], s["completed"], s["completion_rate"])
          for d, ws in t["weekdays"].items() for w, s in ws.items()]
    conn.executemany("INSERT INTO weekday_trends VALUES (?, ?, ?, ?, ?, ?)", wd)
    st = [(d, w, a, s["samples"], s["most_common"], s["mean_level"], s["drift"])
          for d, ws in t["status"].items() for w, s in ws.items()]
    conn.executemany("INSERT INTO status_trends VALUES (?, ?, ?, ?, ?, ?, ?)", st)
    re_ = [(n, w, a, s["fired"], s["met"], s["violated"]) for n, ws in t["reinforcements"].items()
           for w, s in ws.items()]
    conn.executemany("INSERT INTO reinforcement_trends VALUES (?, ?, ?, ?, ?, ?)", re_)
    metrics = chronos_metrics(t)
    conn.executemany("INSERT INTO metrics (metric, value, unit, extra_json, generated_at) VALUES (?, ?, ?, ?, ?)",
                     [(*m, a) for m in metrics])
    return {"item_trends": len(items), "type_trends": len(types), "weekday_trends": len(wd),
            "status_trends": len(st), "reinforcement_trends": len(re_), "metrics": len(metrics)}


#: Starts within this many minutes of the plan are on time (Chronos's adherence threshold).
ON_TIME_MINUTES = 5


def chronos_metrics(t: dict) -> list[tuple[str, float, str, str | None]]:
    """The rows of Chronos's ``metrics`` table, which its dashboard's trends
    API reads (metric, value, unit, extra JSON), from what :func:`compute`
    gives, in Chronos's order and with its names and units.

    blocks_* and adherence_* count the activities the trends count (blocks,
    and completions logged for no block) up to ``as_of``: a start's variance
    is its delay against the plan, and an activity without an actual start
    has none (Chronos counts it as 0 minutes, so on time).
    completion_quality_counts (the completions per quality label, ``{label:
    n}``, the value their sum) and completion_custom_property_counts (the
    completions per field outside Chronos's own, the value how many fields)
    count every completion logged up to ``as_of``, and are given, as Chronos
    gives them, only when there is something to count.  The habit, goal
    and timer rows are the folder's figures (:func:`folder_stats`) as of
    ``as_of``, where Chronos takes the clock's today; goals_avg_progress is
    the sum of the goals' progress over all goals, as Chronos divides it.
    Without the folder's figures only the block and adherence rows are given."""
    act = t.get("activities") or {"total": 0, "completed": 0, "delays": []}
    total, done, delays = act["total"], act["completed"], act["delays"]
    rows: list[tuple[str, float, str, str | None]] = [
        ("blocks_total", total, "count", None),
        ("blocks_completed", done, "count", None),
        ("blocks_completion_rate", round(100 * done / total, 1) if total else 0.0, "percent", None),
        ("blocks_avg_variance_minutes", statistics.fmean(delays) if delays else 0.0, "minutes", None)]
    props = t.get("completion_properties") or {}
    quality, custom = props.get("quality") or {}, props.get("custom") or {}
    if quality:                         # as Chronos: only when there are any
        rows.append(("completion_quality_counts", sum(quality.values()), "count",
                     json.dumps(quality, ensure_ascii=False, sort_keys=True)))
    if custom:
        rows.append(("completion_custom_property_counts", len(custom), "count",
                     json.dumps(custom, ensure_ascii=False, sort_keys=True)))
    f = t.get("folder")
    if f:
        h, g, tm = f.get("habits") or {}, f.get("goals") or {}, f.get("timers") or {}
        rows += [("habits_total", h.get("habits_total") or 0, "count", None),
                 ("habits_with_streak", h.get("habits_with_streak") or 0, "count", None),
                 ("habits_avg_streak", h.get("habits_avg_streak") or 0.0, "days", None),
                 ("habits_longest_streak", h.get("habits_longest_streak") or 0, "days", None),
                 ("habits_completion_today", h.get("habits_completion_today") or 0.0, "percent", None),
                 ("bad_habits_avg_clean_days", h.get("bad_habits_avg_clean_days") or 0.0, "days", None)]
        goals = g.get("goals") or []
        progress = sum(x.get("progress") or 0.0 for x in goals)
        rows += [("goals_total", len(goals), "count", None),
                 ("goals_in_progress", g.get("goals_in_progress") or 0, "count", None),
                 ("goals_avg_progress", progress / len(goals) if goals else 0.0, "percent", None),
                 ("milestones_completed_week", g.get("milestones_completed_week") or 0, "count", None),
                 ("milestones_pending", g.get("milestones_pending") or 0, "count", None)]
        rows += [("timer_sessions_total", tm.get("sessions_total") or 0, "count", None),
                 ("timer_focus_minutes", tm.get("focus_minutes") or 0, "minutes", None),
                 ("timer_break_minutes", tm.get("break_minutes") or 0, "minutes", None)]
        if tm.get("profile_usage"):
            rows.append(("timer_profile_usage", len(tm["profile_usage"]), "count",
                         json.dumps(tm["profile_usage"], ensure_ascii=False, sort_keys=True)))
    on_time = sum(abs(d) <= ON_TIME_MINUTES for d in delays)
    late = len(delays) - on_time
    rows += [("adherence_on_time", on_time, "count", None),
             ("adherence_late", late, "count", None),
             ("adherence_percentage", 100 * on_time / len(delays) if delays else 0.0, "percent", None),
             ("adherence_avg_delay", sum(d for d in delays if d > 0) / late if late else 0.0, "minutes", None)]
    return rows


def latest_log_date(facts: list[Fact], snaps: list[tuple], folder: Folder | None = None) -> date | None:
    """The last day the logs cover: activity facts, status snapshots, and
    (with ``folder``) the habits' completion and incident dates and the timer
    sessions; None when there are no logs."""
    days = [f.date for f in facts] + [s[0] for s in snaps]
    if folder is not None:
        for itype, _, _, d in folder.items:
            if itype == "habit":
                days += _dates(d.get("completion_dates")) + _dates(d.get("incident_dates"))
        days += [s["date"] for s in folder.timer_sessions or () if s.get("date")]
    return date.fromisoformat(max(days)) if days else None


# --- what the folder holds: Chronos's metrics from the items themselves ---------------

def _dates(value: Any) -> list[str]:
    """The distinct days of a list of dates (text, dates or datetimes), sorted; others ignored."""
    if not isinstance(value, list):
        return []
    return sorted({d for d in map(iso_date, value) if d is not None})


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) runs, from sorted distinct days."""
    runs: list[tuple[date, date]] = []
    for d in days:
        if runs and (d - runs[-1][1]).days == 1:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def _count(value: Any) -> int | None:
    n = to_num(value)
    return int(n) if n is not None and n >= 0 else None


def _habit(name: str, d: dict, as_of: date, start: date) -> dict:
    """One habit's streak, as of ``as_of``.  A habit to build: its current
    streak is the run of days in ``completion_dates`` that ends on ``as_of``
    or the day before (else 0), its longest the longest run.  A habit to
    avoid (``polarity: bad``): its clean streak is the days since its last
    incident (``incident_dates``, else ``completion_dates``, where Chronos
    also writes them), or since ``creation_date`` when it has none.  Without
    dates, the streak fields Chronos keeps in the item are taken as recorded
    (a current streak whose ``last_completed`` is older than the day before
    ``as_of`` has ended)."""
    bad = str(d.get("polarity") or "good").strip().lower() == "bad"
    written = (_dates(d.get("incident_dates")) if bad else []) or _dates(d.get("completion_dates"))
    dates = [date.fromisoformat(x) for x in written if x <= as_of.isoformat()]
    out: dict[str, Any] = {"name": name, "polarity": "bad" if bad else "good", "status": d.get("status"),
                           "dates": len(dates), "in_window": sum(start <= x for x in dates),
                           "done_on_as_of": bool(dates) and dates[-1] == as_of,
                           "current_streak": None, "longest_streak": None, "source": None}
    if not bad:
        if dates:
            runs = _runs(dates)
            last = runs[-1]
            out.update(current_streak=(last[1] - last[0]).days + 1 if (as_of - last[1]).days <= 1 else 0,
                       longest_streak=max((b - a).days + 1 for a, b in runs), source="completion_dates")
        else:
            cur, longest = _count(d.get("current_streak")), _count(d.get("longest_streak"))
            last_done = iso_date(d.get("last_completed"))
            if cur and last_done is not None and (as_of - date.fromisoformat(last_done)).days > 1:
                cur = 0                          # recorded, but not kept up since
            if cur or longest:
                out.update(current_streak=cur or 0, longest_streak=max(longest or 0, cur or 0), source="recorded")
        return out
    created = iso_date(d.get("creation_date")) or iso_date(d.get("created"))
    if dates:
        gaps = [(b - a).days - 1 for a, b in zip(dates, dates[1:])]
        if created is not None and date.fromisoformat(created) <= dates[0]:
            gaps.append((dates[0] - date.fromisoformat(created)).days)
        cur = (as_of - dates[-1]).days
        out.update(current_streak=cur, longest_streak=max([cur, *gaps]), source="incident_dates")
    elif created is not None and date.fromisoformat(created) <= as_of:
        cur = (as_of - date.fromisoformat(created)).days + 1
        out.update(current_streak=cur, longest_streak=cur, source="creation_date")
    else:
        cur, longest = _count(d.get("clean_current_streak")), _count(d.get("clean_longest_streak"))
        if cur or longest:
            out.update(current_streak=cur or 0, longest_streak=max(longest or 0, cur or 0), source="recorded")
    return out


def habit_stats(items: list[tuple[str, str, str | None, dict]], as_of: date, window: int = 30) -> dict:
    """Every habit's streak (:func:`_habit`) and Chronos's habit metrics as
    of ``as_of``: habits_total, habits_with_streak (habits to build with a
    current streak), habits_avg_streak (their mean), habits_longest_streak,
    habits_completion_today (the share done on ``as_of``, percent) and
    bad_habits_avg_clean_days; plus how many have any history at all."""
    start = as_of - timedelta(days=window - 1)
    habits = [_habit(name, d, as_of, start) for itype, name, _, d in items if itype == "habit"]
    good = [h for h in habits if h["polarity"] == "good"]
    bad = [h for h in habits if h["polarity"] == "bad"]
    streaks = [h["current_streak"] for h in good if h["current_streak"]]
    longest = [h["longest_streak"] for h in good if h["longest_streak"] is not None]
    clean = [h["current_streak"] for h in bad if h["current_streak"] is not None]
    return {"habits": habits, "window_days": window,
            "habits_total": len(habits), "habits_bad": len(bad),
            "habits_with_history": sum(h["source"] is not None for h in habits),
            "habits_with_dates": sum(h["dates"] > 0 for h in habits),
            "habits_with_streak": len(streaks),
            "habits_avg_streak": statistics.fmean(streaks) if streaks else None,
            "habits_longest_streak": max(longest) if longest else None,
            "habits_done_on_as_of": sum(h["done_on_as_of"] for h in habits),
            "habits_completion_today": 100 * sum(h["done_on_as_of"] for h in habits) / len(habits) if habits else None,
            "bad_habits_avg_clean_days": statistics.fmean(clean) if clean else None}


def _names(value: Any) -> list[str]:
    """The names in a list of references (text, or mappings with a name)."""
    if not isinstance(value, list):
        return []
    out = []
    for r in value:
        n = r.get("name") if isinstance(r, dict) else r
        if isinstance(n, str) and n.strip():
            out.append(n.strip())
    return out


def _milestone(name: str, d: dict, week_start: date, as_of: date) -> dict:
    status = str(d.get("status") or "pending").strip().lower().replace("-", "_")
    progress = d.get("progress")
    percent = to_num(progress.get("percent")) if isinstance(progress, dict) else None
    if status == "completed":
        percent = 100.0
    percent = min(max(percent or 0.0, 0.0), 100.0)
    weight = to_num(d.get("weight"))
    done_on = iso_date(d.get("completed")) or iso_date(d.get("completed_date"))
    return {"name": name, "status": status, "percent": percent,
            "weight": weight if weight is not None and weight > 0 else 1.0,
            "completed_this_week": status == "completed" and done_on is not None
            and week_start.isoformat() <= done_on <= as_of.isoformat()}


def goal_stats(items: list[tuple[str, str, str | None, dict]], as_of: date) -> dict:
    """Each goal's progress from its milestones, as Chronos computes it: the
    mean of their ``progress.percent`` weighted by ``weight`` (1 by default),
    a completed milestone counting 100.  A milestone belongs to the goal its
    ``goal:`` names, or to a goal whose ``milestones:`` list names it (in any
    case).  Also Chronos's goal metrics: goals_total, goals_in_progress (0 <
    progress < 100), goals_avg_progress (over the goals with milestones),
    milestones_pending, milestones_completed_week (completed in the 7 days
    ending ``as_of``, by their ``completed`` time)."""
    week_start = as_of - timedelta(days=6)
    goals = [(name, status, d) for itype, name, status, d in items if itype == "goal"]
    ms_items = [(name, d) for itype, name, _, d in items if itype == "milestone"]
    stones = [_milestone(name, d, week_start, as_of) for name, d in ms_items]     # two may share a name
    by_name: dict[str, list[int]] = defaultdict(list)
    for i, (name, _) in enumerate(ms_items):
        by_name[name.lower()].append(i)
    goal_of = [str(d.get("goal")).strip().lower() if d.get("goal") else None for _, d in ms_items]
    out_goals = []
    linked: set[int] = set()
    for name, status, d in goals:
        mine = {i for i, g in enumerate(goal_of) if g == name.strip().lower()}
        mine |= {i for n in _names(d.get("milestones")) for i in by_name.get(n.lower(), ())}
        linked |= mine
        ms = [stones[i] for i in sorted(mine)]
        weight = sum(m["weight"] for m in ms)
        out_goals.append({"name": name, "status": status, "milestones": len(ms),
                          "milestones_completed": sum(m["status"] == "completed" for m in ms),
                          "progress": sum(m["percent"] * m["weight"] for m in ms) / weight if ms else None})
    with_ms = [g["progress"] for g in out_goals if g["progress"] is not None]
    all_ms = stones
    return {"goals": out_goals, "goals_total": len(goals), "goals_with_milestones": len(with_ms),
            "goals_in_progress": sum(0 < p < 100 for p in with_ms),
            "goals_completed": sum(p >= 100 for p in with_ms),
            "goals_avg_progress": statistics.fmean(with_ms) if with_ms else None,
            "milestones_total": len(all_ms), "milestones_linked": len(linked),
            "milestones_completed": sum(m["status"] == "completed" for m in all_ms),
            "milestones_in_progress": sum(m["status"] == "in_progress" for m in all_ms),
            "milestones_pending": sum(m["status"] not in ("completed", "in_progress") for m in all_ms),
            "milestones_completed_week": sum(m["completed_this_week"] for m in all_ms)}


def timer_stats(folder: Folder, as_of: date, window: int = 30) -> dict:
    """Timer sessions in the ``window`` days ending ``as_of``, as Chronos
    counts them: sessions, focus and break minutes (each session at least
    one minute) and the sessions per profile.  From the timer's session
    logs when the core mirror holds them; else from the focus sessions the
    timer writes into the items it was bound to (``sessions:`` entries with
    ``source: timer``, minutes only); ``source`` is None when there are none."""
    start = (as_of - timedelta(days=window - 1)).isoformat()
    end = as_of.isoformat()
    out: dict[str, Any] = {"window_days": window, "source": None, "sessions_all": 0, "sessions_total": 0,
                           "focus_minutes": 0, "break_minutes": None, "profile_usage": {}, "days": 0,
                           "first": None, "last": None}
    if folder.timer_sessions:
        days = sorted(s["date"] for s in folder.timer_sessions if s.get("date"))
        out.update(source="timer sessions", sessions_all=len(folder.timer_sessions), break_minutes=0,
                   days=len(set(days)), first=days[0] if days else None, last=days[-1] if days else None)
        usage: Counter[str] = Counter()
        for s in folder.timer_sessions:
            if not (s.get("date") and start <= s["date"] <= end):
                continue
            out["sessions_total"] += 1
            minutes = max(1, int(to_num(s.get("seconds")) or 0) // 60)
            phase = str(s.get("phase") or "focus").strip().lower()
            if phase == "focus":
                out["focus_minutes"] += minutes
            elif phase in BREAK_PHASES:
                out["break_minutes"] += minutes
            if s.get("profile"):
                usage[str(s["profile"])] += 1
        out["profile_usage"] = dict(sorted(usage.items(), key=lambda x: (-x[1], x[0])))
        return out
    on_items = []
    for _, name, _, d in folder.items:
        sessions = d.get("sessions")
        for e in sessions if isinstance(sessions, list) else ():
            day = iso_date(e.get("date")) if isinstance(e, dict) else None
            if day is not None and str(e.get("source") or "").strip().lower() == "timer":
                on_items.append((day, to_num(e.get("minutes")) or 0.0, name))
    if on_items:
        days = sorted(x[0] for x in on_items)
        inside = [x for x in on_items if start <= x[0] <= end]
        out.update(source="items", sessions_all=len(on_items), sessions_total=len(inside),
                   focus_minutes=round(sum(x[1] for x in inside)), days=len(set(days)), first=days[0], last=days[-1])
    return out


def commitment_facts(items: list[tuple[str, str, str | None, dict]]) -> list[dict]:
    """Each commitment: its status, its rule in words (``3 times a week``,
    ``never, per day``), what it targets, and the periods Chronos last
    recorded it met or violated (``last_met``, ``last_violation``)."""
    out = []
    for itype, name, status, d in items:
        if itype != "commitment":
            continue
        rule = d.get("rule") if isinstance(d.get("rule"), dict) else d.get("frequency")
        rule = rule if isinstance(rule, dict) else {}
        kind = str(rule.get("kind") or ("never" if d.get("never") else "frequency")).strip().lower()
        period = str(rule.get("period") or ("day" if kind == "never" else "week")).strip().lower()
        period = {"daily": "day", "weekly": "week", "monthly": "month"}.get(period, period)
        if kind == "never":
            words = f"never, per {period}"
        else:
            times = _count(rule.get("times")) or 1
            words = f"{'once' if times == 1 else 'twice' if times == 2 else f'{times} times'} a {period}"
        targets = _names(d.get("targets")) or _names(d.get("associated_items")) or _names(d.get("forbidden_items"))
        if not targets and isinstance(d.get("linked_habit"), str):
            targets = [d["linked_habit"]]
        out.append({"name": name, "status": str(status or "active").strip().lower(), "rule": words,
                    "targets": targets, "last_met": _period_text(d.get("last_met")),
                    "last_violation": _period_text(d.get("last_violation"))})
    return out


def _period_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return iso_date(value) if not isinstance(value, str) else value.strip() or None


def folder_stats(folder: Folder, as_of: date) -> dict:
    """What the folder holds, for the digest: items per type, each log's size
    and span, and the habit, goal, timer and commitment metrics above."""
    types = Counter(itype for itype, _, _, _ in folder.items)
    return {"core": folder.core, "items": len(folder.items),
            "types": dict(sorted(types.items(), key=lambda x: (-x[1], x[0]))),
            "logs": folder.logs,
            "habits": habit_stats(folder.items, as_of),
            "goals": goal_stats(folder.items, as_of),
            "timers": timer_stats(folder, as_of),
            "commitments": commitment_facts(folder.items)}
