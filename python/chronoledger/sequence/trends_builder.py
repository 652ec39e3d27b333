"""chronos_trends.db: the memory mirror's facts digested into rolling
windows of 7, 30 and 90 days ending on ``as_of`` (per item, type, day of the
week, status dimension, commitment or reward).

A pure function of the facts and ``as_of``; the metastudy loads the facts
(:func:`chronoledger.sequence.metastudy.load_facts`) and writes the result.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

import apsw

from chronoledger.sequence import schema
from chronoledger.sequence.schema import STATUS_DIMENSIONS

#: The windows, in days, each ending on as_of.
WINDOWS = (7, 30, 90)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: Status values with an order, low to high (others are only counted).
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


def compute(facts: list[Fact], snaps: list[tuple], reinf: list[tuple], as_of: date) -> dict:
    """The trends for every window ending on ``as_of`` (inclusive)."""
    out: dict = {"as_of": as_of.isoformat(), "windows": list(WINDOWS), "items": {}, "types": {}, "weekdays": {},
                 "status": {}, "reinforcements": {}}
    end = as_of.isoformat()
    dims = STATUS_DIMENSIONS          # the columns of status_snapshots, in their order
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
            levels = ORDINAL.get(dim)
            nums = [levels.index(v) / (len(levels) - 1) for v in vals if levels and v in levels]
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
    return {"item_trends": len(items), "type_trends": len(types), "weekday_trends": len(wd),
            "status_trends": len(st), "reinforcement_trends": len(re_)}


def latest_log_date(facts: list[Fact], snaps: list[tuple]) -> date | None:
    days = [f.date for f in facts] + [s[0] for s in snaps]
    return date.fromisoformat(max(days)) if days else None
