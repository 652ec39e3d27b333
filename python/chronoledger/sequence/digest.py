"""The digest agents read first: tendencies.md and tendencies.json, a few
ranked findings per theme from the trends (30-day window, with 7 and 90
days for overall completion).  A pure function of the trends: the same
trends give the same bytes.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from chronoledger import sqlite as db
from chronoledger.sequence.trends_builder import WINDOWS

#: The digest's files, in the order they are written.
FILES = ("tendencies.json", "tendencies.md")


def pending_files(data: Path, digest: dict) -> list[db.PendingFile]:
    """``digest`` (what :func:`tendencies` gives) as JSON and Markdown, each
    written beside its file in ``data`` for the caller to put in place."""
    files: list[db.PendingFile] = []
    try:
        for name, text in ((FILES[0], json.dumps(digest, indent=2, ensure_ascii=False, sort_keys=True) + "\n"),
                           (FILES[1], render_markdown(digest))):
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
    return files


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, nd)


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
