"""The metastudy: the behaviour logs (chronos_memory.db) digested into
rolling-window trends (chronos_trends.db) and a short, ranked digest for AI
agents (tendencies.md and tendencies.json).

Everything is a pure function of the memory database and ``as_of``: the same
logs and the same date give the same files, byte for byte.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import ConfigError
from chronoledger.sequence import schema
from chronoledger.sequence.datafolder import now_text, read_registry, sync_lock, write_registry
from chronoledger.sequence.layout import minutes_of
from chronoledger.sequence.schema import STATUS_DIMENSIONS

_logger = logging.getLogger("chronoledger.sequence")

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


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, nd)


def load_facts(memory_db: Path) -> tuple[list[Fact], list[tuple], list[tuple]]:
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


def _fill_trends(conn: apsw.Connection, t: dict) -> dict[str, int]:
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
    files = [db.build_pending(data / schema.FILES["trends"], lambda c: _fill_trends(c, trends),
                              user_version=schema.VERSIONS["trends"])]
    digest = tendencies(trends)
    try:
        for name, text in (("tendencies.json", json.dumps(digest, indent=2, ensure_ascii=False, sort_keys=True)
                            + "\n"), ("tendencies.md", render_markdown(digest))):
            tmp = db.building_path(data / name)
            with open(tmp, "wb") as fh:
                fh.write(text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            files.append(db.PendingFile(tmp, data / name))
    except BaseException:
        for f in files:
            f.discard()
        raise
    return files[0].result, files


def _registered(data: Path, counts: dict) -> None:
    """databases.yml says what the trends mirror now holds (a metastudy rebuilt it)."""
    reg = read_registry(data)
    entry = reg["databases"].setdefault("trends", {})
    entry.pop("error", None)
    stamp = now_text()
    entry.update({"file": schema.FILES["trends"], "schema_version": schema.VERSIONS["trends"], "counts": counts,
                  "last_sync": stamp, "last_attempt": stamp, "status": "ok"})
    write_registry(data, reg)


# --- the digest ---------------------------------------------------------------

def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{round(100 * x)}%"


def _clock(m: float | None) -> str:
    if m is None:
        return "n/a"
    m = int(round(m)) % (24 * 60)
    return f"{m // 60:02d}:{m % 60:02d}"


def tendencies(t: dict, top: int = 5, min_scheduled: int = 4) -> dict:
    """The digest: a few ranked findings per theme, from the 30-day window
    (compared with 7 and 90 days where that says something)."""
    w = 30
    items = [(n, ws[w]) for n, ws in t["items"].items() if w in ws and ws[w]["scheduled"] >= min_scheduled]
    ranked = sorted(items, key=lambda x: (-(x[1]["completion_rate"] or 0), -x[1]["scheduled"], x[0]))
    overall = {}
    for win in WINDOWS:
        sched = sum(ws[win]["scheduled"] for ws in t["types"].values() if win in ws)
        done = sum(ws[win]["completed"] for ws in t["types"].values() if win in ws)
        overall[win] = {"scheduled": sched, "completed": done, "completion_rate": done / sched if sched else None}
    late = sorted((x for x in items if x[1]["avg_delay_minutes"] is not None),
                  key=lambda x: (-x[1]["avg_delay_minutes"], x[0]))
    variable = sorted((x for x in items if x[1]["start_stddev_minutes"] is not None),
                      key=lambda x: (-x[1]["start_stddev_minutes"], x[0]))
    drifting = sorted((x for x in items if x[1]["start_drift_minutes"] is not None),
                      key=lambda x: (-abs(x[1]["start_drift_minutes"]), x[0]))
    streaks = sorted(((n, s) for n, s in items if s["current_streak"] > 0),
                     key=lambda x: (-x[1]["current_streak"], -x[1]["best_streak"], x[0]))
    days = [(d, ws[w]) for d, ws in t["weekdays"].items() if ws[w]["scheduled"]]
    days.sort(key=lambda x: (-(x[1]["completion_rate"] or 0), x[0]))
    over = []
    for ty, ws in t["types"].items():
        s = ws.get(w)
        if s and s["planned_minutes"] and s["actual_minutes"]:
            over.append((ty, s["actual_minutes"] / s["planned_minutes"] - 1, s))
    over.sort(key=lambda x: (-abs(x[1]), x[0]))
    status = []
    for dim, ws in t["status"].items():
        s = ws.get(w)
        if s and s["samples"]:
            status.append({"dimension": dim, "most_common": s["most_common"], "mean_level": _r(s["mean_level"]),
                           "drift": _r(s["drift"]), "samples": s["samples"]})
    status.sort(key=lambda x: (-abs(x["drift"] or 0), x["dimension"]))
    reinf = []
    for n, ws in t["reinforcements"].items():
        s = ws.get(w)
        if s:
            reinf.append({"source": n, "kind": s["kind"], "fired": s["fired"], "met": s["met"],
                          "violated": s["violated"]})
    reinf.sort(key=lambda x: (-x["violated"], -x["fired"], x["source"]))

    def item(n, s):
        return {"item": n, "type": s["type"], "completion_rate": _r(s["completion_rate"]),
                "scheduled": s["scheduled"], "completed": s["completed"], "current_streak": s["current_streak"],
                "best_streak": s["best_streak"], "avg_start": _clock(s["avg_start_minute"]),
                "avg_delay_minutes": _r(s["avg_delay_minutes"], 1),
                "start_stddev_minutes": _r(s["start_stddev_minutes"], 1),
                "start_drift_minutes": _r(s["start_drift_minutes"], 1)}

    return {
        "as_of": t["as_of"], "window_days": w,
        "completion": {str(k): {"rate": _r(v["completion_rate"]), "completed": v["completed"],
                                "scheduled": v["scheduled"]} for k, v in overall.items()},
        "strongest": [item(n, s) for n, s in ranked[:top]],
        "weakest": [item(n, s) for n, s in list(reversed(ranked))[:top]],
        "streaks": [item(n, s) for n, s in streaks[:top]],
        "latest_starts": [item(n, s) for n, s in late[:top]],
        "most_variable_starts": [item(n, s) for n, s in variable[:top]],
        "start_drift": [item(n, s) for n, s in drifting[:top]],
        "weekdays": [{"day": d, "completion_rate": _r(s["completion_rate"]), "scheduled": s["scheduled"]}
                     for d, s in days],
        "planned_vs_actual": [{"type": ty, "over_planned": _r(ratio), "planned_minutes": _r(s["planned_minutes"], 1),
                               "actual_minutes": _r(s["actual_minutes"], 1)} for ty, ratio, s in over[:top]],
        "status": status,
        "reinforcements": reinf[:top],
    }


def render_markdown(d: dict) -> str:
    """tendencies.md: short, ranked, meant to be read by an agent in few tokens."""
    c = d["completion"]
    lines = [f"# Tendencies as of {d['as_of']}", "",
             "Read this before advising; query the mirrors in User/Data/ only when asked. "
             f"Figures are for the last {d['window_days']} days unless said otherwise.", "",
             "## Completion",
             f"- Overall: {_pct(c['30']['rate'])} ({c['30']['completed']}/{c['30']['scheduled']}); last 7 days "
             f"{_pct(c['7']['rate'])}, last 90 days {_pct(c['90']['rate'])}."]
    if d["strongest"]:
        lines.append("- Strongest: " + "; ".join(f"{x['item']} {_pct(x['completion_rate'])}"
                                                 for x in d["strongest"]) + ".")
    if d["weakest"]:
        lines.append("- Weakest: " + "; ".join(f"{x['item']} {_pct(x['completion_rate'])}"
                                               f" ({x['completed']}/{x['scheduled']})" for x in d["weakest"]) + ".")
    if d["streaks"]:
        lines.append("- Current streaks: " + "; ".join(f"{x['item']} {x['current_streak']} (best "
                                                       f"{x['best_streak']})" for x in d["streaks"]) + ".")
    lines += ["", "## Timing"]
    if d["latest_starts"]:
        lines.append("- Starts latest vs plan: " + "; ".join(
            f"{x['item']} {x['avg_delay_minutes']:+.0f} min (avg {x['avg_start']})" for x in d["latest_starts"]) + ".")
    if d["most_variable_starts"]:
        lines.append("- Least regular start: " + "; ".join(
            f"{x['item']} ±{x['start_stddev_minutes']:.0f} min" for x in d["most_variable_starts"][:3]) + ".")
    if d["start_drift"]:
        lines.append("- Start drift (later half vs earlier half): " + "; ".join(
            f"{x['item']} {x['start_drift_minutes']:+.0f} min" for x in d["start_drift"][:3]) + ".")
    if d["weekdays"]:
        best, worst = d["weekdays"][0], d["weekdays"][-1]
        lines += ["", "## Days of the week",
                  f"- Best {best['day']} {_pct(best['completion_rate'])}, worst {worst['day']} "
                  f"{_pct(worst['completion_rate'])}: " + ", ".join(f"{x['day']} {_pct(x['completion_rate'])}"
                                                                      for x in d["weekdays"]) + "."]
    if d["planned_vs_actual"]:
        lines += ["", "## Planned vs actual"]
        for x in d["planned_vs_actual"][:3]:
            word = "longer" if x["over_planned"] > 0 else "shorter"
            lines.append(f"- {x['type']}: {abs(round(100 * x['over_planned']))}% {word} than planned "
                         f"({x['actual_minutes']} vs {x['planned_minutes']} min).")
    if d["status"]:
        lines += ["", "## State"]
        for x in d["status"][:4]:
            trend = "" if x["drift"] is None else f", drifting {'up' if x['drift'] > 0 else 'down'} " \
                                                  f"({x['drift']:+.2f})" if abs(x["drift"]) >= 0.05 else ", steady"
            lines.append(f"- {x['dimension']}: mostly {x['most_common']}{trend}.")
    if d["reinforcements"]:
        lines += ["", "## Commitments and rewards"]
        for x in d["reinforcements"]:
            if x["kind"] == "commitment":
                lines.append(f"- {x['source']}: met {x['met']} of {x['fired']} periods.")
            else:
                lines.append(f"- {x['source']}: {x['kind']} fired {x['fired']} times.")
    return "\n".join(lines) + "\n"
