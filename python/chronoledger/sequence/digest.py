"""The digest agents read first: tendencies.md and tendencies.json.

It always says what the folder holds (items per type, habits, commitments,
goals and their milestones, which logs exist and the days they cover), what
cannot be said and why (``missing``), and then a few ranked findings per
theme from the trends (30-day window, with 7 and 90 days for overall
completion), with Chronos's own metrics (habit streaks, goal progress from
milestones, timer sessions).  It never contradicts itself: an item is
strongest or weakest, not both, and only when their rates differ and each
has enough scheduled; days of the week tie rather than being best and worst
at once; a heading always has lines under it.

The JSON holds the facts and the Markdown is written from the JSON alone,
so the two say the same.  A pure function of the trends: the same trends
give the same bytes.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

from chronoledger import sqlite as db
from chronoledger.sequence.trends_builder import WINDOWS

#: The digest's files, in the order they are written.
FILES = ("tendencies.json", "tendencies.md")
#: The window most findings are for, in days.
WINDOW = 30
#: The logs the digest names, in the order it names them: (key, label); each with its
#: entries (blocks, snapshots, ledger rows...), the days they fall on, first and last.
LOGS = (("completions", "completions"), ("schedules", "schedule blocks"), ("status", "status snapshots"),
        ("narratives", "narratives"), ("points_ledger", "points ledger entries"),
        ("timer_sessions", "timer sessions"))
#: A day of the week is compared with the others only with at least this many scheduled.
MIN_DAY_SAMPLE = 3


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


def _n(x: int, one: str, many: str | None = None) -> str:
    return f"{x:,} {one if x == 1 else many or one + 's'}"


def _span(first: str | None, last: str | None) -> str:
    if not first:
        return ""
    return f"on {first}" if first == last else f"{first} to {last}"


# --- the facts -------------------------------------------------------------------------

def _ranked(items: list[tuple[str, dict]], top: int) -> tuple[list, int, list, int]:
    """Strongest and weakest items by completion rate, each with how many
    more share the last rate listed.  Items of one rate go to one side or
    none: whole groups of equal rates are taken from the top and from the
    bottom while they fit in ``top`` and in half the items (a first group
    larger than that is cut, and the rest counted), so every strongest
    item's rate is above every weakest one's and no item is both."""
    k = min(top, len(items) // 2)
    groups: dict[float, list[tuple[str, dict]]] = {}
    for x in sorted(items, key=lambda x: (-(x[1]["completion_rate"] or 0), -x[1]["scheduled"], x[0])):
        groups.setdefault(x[1]["completion_rate"] or 0, []).append(x)
    if k == 0 or len(groups) < 2:
        return [], 0, [], 0

    def take(ordered: list[list]) -> tuple[list, int]:
        if len(ordered[0]) > k:
            return ordered[0][:k], len(ordered[0]) - k
        out: list = []
        for g in ordered:
            if len(out) + len(g) > k:
                break
            out += g
        return out, 0

    ordered = list(groups.values())
    strongest, more_strong = take(ordered)
    weakest, more_weak = take([sorted(g, key=lambda x: (x[1]["completion_rate"] or 0, -x[1]["scheduled"], x[0]))
                               for g in reversed(ordered)])
    return strongest, more_strong, weakest, more_weak


def _weekdays(t: dict, w: int) -> dict:
    """Completion per day of the week; the best and worst days only when
    their rates differ (days tied at the top or bottom are listed together),
    and only among days with at least MIN_DAY_SAMPLE scheduled."""
    days = [{"day": d, "completion_rate": _r(ws[w]["completion_rate"]), "scheduled": ws[w]["scheduled"],
             "completed": ws[w]["completed"]} for d, ws in t["weekdays"].items() if ws[w]["scheduled"]]
    days.sort(key=lambda x: (-(x["completion_rate"] or 0), x["day"]))
    compared = [x for x in days if x["scheduled"] >= MIN_DAY_SAMPLE]
    out: dict[str, Any] = {"days": days, "best": [], "worst": [], "tie": None, "min_scheduled": MIN_DAY_SAMPLE}
    if len(compared) >= 2:
        rates = [x["completion_rate"] or 0 for x in compared]
        if max(rates) == min(rates):
            out["tie"] = max(rates)
        else:
            out["best"] = [x["day"] for x in compared if (x["completion_rate"] or 0) == max(rates)]
            out["worst"] = [x["day"] for x in compared if (x["completion_rate"] or 0) == min(rates)]
    return out


def _log_facts(folder: dict | None) -> dict[str, dict]:
    logs = dict((folder or {}).get("logs") or {})
    timers = (folder or {}).get("timers") or {}
    if timers.get("source") == "timer sessions":
        logs["timer_sessions"] = {"entries": timers["sessions_all"], "days": timers["days"],
                                  "first": timers["first"], "last": timers["last"]}
    return logs


def _missing(d: dict, t: dict, w: int) -> list[str]:
    """What the digest cannot say, and why, one sentence each."""
    out = []
    folder, logs, as_of = d["folder"], d["folder"]["logs"], d["as_of"]
    if not folder["core"]:
        out.append("no core mirror (chronos_core.db) to read: the items, habits, goals and commitments are not "
                   "available; run `sequence sync`")
    done = logs.get("completions", {}).get("entries") or 0
    planned = logs.get("schedules", {}).get("entries") or 0
    facts_any = any(c["scheduled"] for c in d["completion"].values()) or done or planned
    if not done and not planned:
        out.append("no completion logs found (schedules/completions/YYYY-MM-DD.yml) and no schedules: completion "
                   "rates, streaks from logs, timing and days of the week cannot be computed")
    elif not done:
        out.append(f"schedules exist ({_n(logs['schedules'].get('days') or 0, 'day')}) but no completion was "
                   f"logged: every scheduled block counts as not done")
    if facts_any and not d["completion"][str(w)]["scheduled"]:
        spans = [(v.get("first"), v.get("last")) for k, v in logs.items() if k in ("completions", "schedules")
                 and v.get("first")]
        cover = f" (they cover {min(a for a, _ in spans)} to {max(b for _, b in spans)})" if spans else ""
        out.append(f"nothing was scheduled or logged in the {w} days ending {as_of}{cover}: the {w}-day findings "
                   f"are empty")
    elif facts_any:
        if not (d["latest_starts"] or d["most_variable_starts"] or d["start_drift"]):
            out.append(f"no item with at least {d['ranking']['min_scheduled']} scheduled in the last {w} days has "
                       f"logged actual start times: timing cannot be computed")
        if not d["planned_vs_actual"]:
            out.append(f"no block in the last {w} days has both planned and actual minutes: planned vs actual "
                       f"cannot be computed")
    snaps = logs.get("status", {})
    if not snaps.get("entries"):
        out.append("no status logs found (logs/status_YYYY-MM-DD.yml): state cannot be described")
    elif not d["status"]:
        out.append(f"no status was logged in the {w} days ending {as_of} (status logs end {snaps.get('last')}): "
                   f"state cannot be described")
    h = d["habits"]
    if h and h["habits_total"] and not h["habits_with_history"]:
        out.append(f"none of the {_n(h['habits_total'], 'habit')} has completion_dates, incident_dates or a "
                   f"recorded streak: habit streaks cannot be computed")
    g = d["goals"]
    if g and g["goals_total"] and not g["goals_with_milestones"]:
        out.append("no milestone names a goal (goal:) or is named in a goal's milestones: goal progress cannot be "
                   "computed")
    tm = d["timers"]
    if tm is not None and tm["source"] is None:
        out.append("no timer sessions found (Timers/sessions/YYYY-MM-DD.yml, or timer sessions on items): focus "
                   "time not available")
    active = [c for c in d["commitments"] if c["status"] == "active"]
    if active and not any(c["judged"] for c in active):
        out.append(f"none of the {_n(len(active), 'active commitment')} was judged in the {w} days ending "
                   f"{as_of}: judging needs logged days of their targets")
    return out


def _habits(h: dict | None, top: int) -> dict | None:
    if h is None:
        return None
    good = [x for x in h["habits"] if x["polarity"] == "good"]
    current = sorted((x for x in good if x["current_streak"]),
                     key=lambda x: (-x["current_streak"], -(x["longest_streak"] or 0), x["name"]))
    ended = sorted((x for x in good if not x["current_streak"] and x["longest_streak"]),
                   key=lambda x: (-x["longest_streak"], x["name"]))
    avoiding = sorted((x for x in h["habits"] if x["polarity"] == "bad" and x["source"] is not None),
                      key=lambda x: (x["current_streak"] or 0, x["name"]))

    def one(x: dict) -> dict:
        return {k: x[k] for k in ("name", "current_streak", "longest_streak", "source", "in_window")}

    keys = ("habits_total", "habits_bad", "habits_with_history", "habits_with_dates", "habits_with_streak",
            "habits_longest_streak", "habits_done_on_as_of", "window_days")
    return {**{k: h[k] for k in keys}, "good_with_history": sum(x["source"] is not None for x in good),
            "habits_avg_streak": _r(h["habits_avg_streak"], 1),
            "habits_completion_today": _r(h["habits_completion_today"], 1),
            "bad_habits_avg_clean_days": _r(h["bad_habits_avg_clean_days"], 1),
            "current_streaks": [one(x) for x in current[:3]], "ended_streaks": [one(x) for x in ended[:3]],
            "avoiding": [one(x) for x in avoiding[:top]]}


def _goals(g: dict | None, top: int) -> dict | None:
    if g is None:
        return None
    with_ms = sorted((x for x in g["goals"] if x["progress"] is not None), key=lambda x: (-x["progress"], x["name"]))
    without = sorted(x["name"] for x in g["goals"] if x["progress"] is None)
    keys = ("goals_total", "goals_with_milestones", "goals_in_progress", "goals_completed", "milestones_total",
            "milestones_linked", "milestones_completed", "milestones_in_progress", "milestones_pending",
            "milestones_completed_week")
    return {**{k: g[k] for k in keys}, "goals_avg_progress": _r(g["goals_avg_progress"], 1),
            "progress": [{"name": x["name"], "status": x["status"], "progress": _r(x["progress"], 1),
                          "milestones": x["milestones"], "milestones_completed": x["milestones_completed"]}
                         for x in with_ms[:top]],
            "without_milestones": without}


def _commitments(folder: dict | None, t: dict, w: int) -> tuple[list[dict], list[dict]]:
    """Each commitment with its verdicts in the window; and the other
    reinforcements (rewards redeemed, commitments no item holds any more)."""
    verdicts = {n: ws[w] for n, ws in t["reinforcements"].items() if w in ws}
    out = []
    for c in (folder or {}).get("commitments") or []:
        v = verdicts.pop(c["name"], None)
        out.append({**c, "judged": v["fired"] if v else 0, "met": v["met"] if v else 0,
                    "violated": v["violated"] if v else 0})
    out.sort(key=lambda x: (x["status"] != "active", -x["violated"], -x["judged"], x["name"]))
    other = [{"source": n, "kind": s["kind"], "fired": s["fired"], "met": s["met"], "violated": s["violated"]}
             for n, s in verdicts.items()]
    other.sort(key=lambda x: (-x["violated"], -x["fired"], x["source"]))
    return out, other


def tendencies(t: dict, top: int = 4, min_scheduled: int = 4, as_of_basis: str = "given") -> dict:
    """The digest, as JSON-ready facts: what the folder holds, what is
    missing and why, and a few ranked findings per theme from the 30-day
    window (compared with 7 and 90 days where that says something).
    ``as_of_basis`` says where the date came from ("given", "last log",
    "today (no logs)")."""
    w = WINDOW
    items = [(n, ws[w]) for n, ws in t["items"].items() if w in ws and ws[w]["scheduled"] >= min_scheduled]
    strongest, more_strong, weakest, more_weak = _ranked(items, top)
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
    over = []
    for ty, ws in t["types"].items():
        s = ws.get(w)
        if s and s["planned_minutes"] and s["actual_minutes"]:
            over.append((ty, s["actual_minutes"] / s["planned_minutes"] - 1, s))
    over.sort(key=lambda x: (-abs(x[1]), x[0]))
    status = []
    scales = t.get("status_levels") or {}
    for dim, ws in t["status"].items():
        s = ws.get(w)
        if s and s["samples"]:
            scale = scales.get(dim) if s["mean_level"] is not None else None
            status.append({"dimension": dim, "most_common": s["most_common"], "mean_level": _r(s["mean_level"]),
                           "scale": [scale[0], scale[-1]] if scale else None,
                           "drift": _r(s["drift"]), "samples": s["samples"]})
    status.sort(key=lambda x: (-abs(x["drift"] or 0), x["dimension"]))
    folder = t.get("folder")
    commitments, reinf = _commitments(folder, t, w)

    def item(n, s):
        return {"item": n, "type": s["type"], "completion_rate": _r(s["completion_rate"]),
                "scheduled": s["scheduled"], "completed": s["completed"], "current_streak": s["current_streak"],
                "best_streak": s["best_streak"], "avg_start": _clock(s["avg_start_minute"]),
                "avg_delay_minutes": _r(s["avg_delay_minutes"], 1),
                "start_stddev_minutes": _r(s["start_stddev_minutes"], 1),
                "start_drift_minutes": _r(s["start_drift_minutes"], 1)}

    timers = (folder or {}).get("timers")
    d = {
        "as_of": t["as_of"], "as_of_basis": as_of_basis, "window_days": w,
        "folder": {"core": bool(folder and folder["core"]), "items": (folder or {}).get("items", 0),
                   "types": (folder or {}).get("types", {}), "logs": _log_facts(folder)},
        "completion": {str(k): {"rate": _r(v["completion_rate"]), "completed": v["completed"],
                                "scheduled": v["scheduled"]} for k, v in overall.items()},
        "ranking": {"min_scheduled": min_scheduled, "eligible": len(items), "strongest_more": more_strong,
                    "weakest_more": more_weak,
                    "all_at": _r(items[0][1]["completion_rate"]) if len(items) >= 2 and not strongest
                    and len({x[1]["completion_rate"] for x in items}) == 1 else None},
        "strongest": [item(n, s) for n, s in strongest],
        "weakest": [item(n, s) for n, s in weakest],
        "streaks": [item(n, s) for n, s in streaks[:top]],
        "latest_starts": [item(n, s) for n, s in late[:top]],
        "most_variable_starts": [item(n, s) for n, s in variable[:top]],
        "start_drift": [item(n, s) for n, s in drifting[:top]],
        "weekdays": _weekdays(t, w),
        "planned_vs_actual": [{"type": ty, "over_planned": _r(ratio), "planned_minutes": _r(s["planned_minutes"], 1),
                               "actual_minutes": _r(s["actual_minutes"], 1)} for ty, ratio, s in over[:top]],
        "habits": _habits(folder["habits"] if folder and folder["core"] else None, top),
        "goals": _goals(folder["goals"] if folder and folder["core"] else None, top),
        "timers": dict(timers, focus_minutes=_r(timers["focus_minutes"], 1)) if timers and folder
        and folder["core"] else None,
        "status": status,
        "commitments": commitments,
        "reinforcements": reinf[:top],
    }
    d["missing"] = _missing(d, t, w)
    return d


# --- the Markdown ------------------------------------------------------------------------

def _folder_lines(d: dict) -> list[str]:
    f = d["folder"]
    if not f["core"]:
        return []
    types = list(f["types"].items())
    kinds = ", ".join(f"{ty} {n:,}" for ty, n in types[:10])
    if len(types) > 10:
        kinds += f" and {len(types) - 10} more types ({_n(sum(n for _, n in types[10:]), 'item')})"
    lines = [f"- {_n(f['items'], 'item')}{': ' + kinds if kinds else ''}."]
    active = [c for c in d["commitments"] if c["status"] == "active"]
    g = d["goals"]
    parts = []
    if d["commitments"]:
        parts.append(f"{_n(len(d['commitments']), 'commitment')} ({len(active)} active)")
    if g and (g["goals_total"] or g["milestones_total"]):
        parts.append(f"{_n(g['goals_total'], 'goal')} with {_n(g['milestones_linked'], 'milestone')} linked"
                     + (f" ({g['milestones_total']:,} in all)" if g["milestones_total"] != g["milestones_linked"]
                        else ""))
    if parts:
        lines.append("- " + "; ".join(parts) + ".")
    logs = f["logs"]
    present = [(key, label, logs[key]) for key, label in LOGS if (logs.get(key) or {}).get("entries")]
    none = [label for key, label in LOGS if not (logs.get(key) or {}).get("entries")]
    spans = Counter((e.get("first"), e.get("last")) for _, _, e in present)
    # the span most logs share is said once, the others with their log
    common = spans.most_common(1)[0][0] if len(present) > 1 and spans.most_common(1)[0][1] > 1 else None
    have = []
    for key, label, e in present:
        days = f" on {_n(e['days'], 'day')}" if e.get("days") and key != "narratives" else ""
        span = (e.get("first"), e.get("last"))
        have.append(f"{label} {e['entries']:,}{days}" + ("" if span == common else f" ({_span(*span)})"))
    h = d["habits"]
    if h and h["habits_with_dates"]:
        have.append(f"habit dates on {h['habits_with_dates']} of {_n(h['habits_total'], 'habit')}")
    head = f"- Logs ({_span(*common)} unless said): " if common else "- Logs: "
    lines.append(head + ("; ".join(have) if have else "none") + (f". None: {', '.join(none)}." if none and have
                                                                  else "."))
    return lines


def _completion_lines(d: dict) -> list[str]:
    c, w = d["completion"], d["window_days"]
    if not any(v["scheduled"] for v in c.values()):
        return []

    def rate(k: str) -> str:
        v = c[k]
        return f"{_pct(v['rate'])} ({v['completed']}/{v['scheduled']})" if v["scheduled"] else "nothing scheduled"

    lines = [f"- Overall: {rate(str(w))}; last 7 days {rate('7')}, last 90 days {rate('90')}."]
    r = d["ranking"]
    for title, key in (("Strongest", "strongest"), ("Weakest", "weakest")):
        if d[key]:
            more = r[f"{key}_more"]
            lines.append(f"- {title}: " + "; ".join(f"{x['item']} {_pct(x['completion_rate'])}"
                                                    f" ({x['completed']}/{x['scheduled']})" for x in d[key])
                         + (f"; and {more} more at {_pct(d[key][-1]['completion_rate'])}" if more else "") + ".")
    if r["all_at"] is not None:
        lines.append(f"- All {r['eligible']} items with at least {r['min_scheduled']} scheduled are at "
                     f"{_pct(r['all_at'])}: none is stronger or weaker.")
    elif not d["strongest"] and c[str(w)]["scheduled"]:
        lines.append(f"- Too few items to rank: {_n(r['eligible'], 'item')} with at least {r['min_scheduled']} "
                     f"scheduled in the last {w} days (2 needed).")
    if d["streaks"]:
        lines.append("- Current runs of scheduled days done: " + "; ".join(
            f"{x['item']} {x['current_streak']} (best {x['best_streak']})" for x in d["streaks"][:3]) + ".")
    return lines


def _timing_lines(d: dict) -> list[str]:
    lines = []
    if d["latest_starts"]:
        lines.append("- Starts latest vs plan: " + "; ".join(
            f"{x['item']} {x['avg_delay_minutes']:+.0f} min (avg {x['avg_start']})" for x in d["latest_starts"][:3])
            + ".")
    if d["most_variable_starts"]:
        lines.append("- Least regular start: " + "; ".join(
            f"{x['item']} ±{x['start_stddev_minutes']:.0f} min" for x in d["most_variable_starts"][:3]) + ".")
    if d["start_drift"]:
        lines.append("- Start drift (later half vs earlier half): " + "; ".join(
            f"{x['item']} {x['start_drift_minutes']:+.0f} min" for x in d["start_drift"][:3]) + ".")
    return lines


def _weekday_lines(d: dict) -> list[str]:
    wd = d["weekdays"]
    if not wd["days"]:
        return []
    every = ", ".join(f"{x['day']} {_pct(x['completion_rate'])}" for x in wd["days"])
    if wd["best"]:
        rate = {x["day"]: x["completion_rate"] for x in wd["days"]}
        head = (f"Best {', '.join(wd['best'])} {_pct(rate[wd['best'][0]])}; worst {', '.join(wd['worst'])} "
                f"{_pct(rate[wd['worst'][0]])}")
    elif wd["tie"] is not None:
        head = f"Every day with at least {wd['min_scheduled']} scheduled at {_pct(wd['tie'])}"
    else:
        head = f"Too few days with at least {wd['min_scheduled']} scheduled to compare"
    return [f"- {head}: {every}."]


def _habit_lines(h: dict | None) -> list[str]:
    if not h or not h["habits_total"]:
        return []
    good = h["habits_total"] - h["habits_bad"]
    lines = [f"- {_n(h['habits_total'], 'habit')} ({good} to build, {h['habits_bad']} to avoid); "
             f"{h['habits_with_history']} with completion or incident dates or a recorded streak."]
    if h["current_streaks"]:
        lines.append("- Current streaks (days in a row): " + "; ".join(
            f"{x['name']} {x['current_streak']} (longest {x['longest_streak']})"
            for x in h["current_streaks"]) + f"; {h['habits_with_streak']} in all, mean "
            f"{h['habits_avg_streak']} days.")
    elif h["good_with_history"]:
        lines.append(f"- No habit to build has a current streak ({h['good_with_history']} with a history).")
    if h["ended_streaks"]:
        lines.append("- Streaks that ended: " + "; ".join(f"{x['name']} (longest {x['longest_streak']})"
                                                          for x in h["ended_streaks"]) + ".")
    shown = [x["longest_streak"] or 0 for x in h["current_streaks"] + h["ended_streaks"]]
    if h["habits_longest_streak"] and h["habits_longest_streak"] > max(shown, default=0):
        lines.append(f"- Longest streak of any habit to build: {_n(h['habits_longest_streak'], 'day')}.")
    if h["habits_with_dates"]:
        lines.append(f"- Done on the as-of day: {h['habits_done_on_as_of']} of {h['habits_total']} "
                     f"({h['habits_completion_today']:.0f}%).")
    if h["avoiding"]:
        def clean(x: dict) -> str:
            why = {"creation_date": ", no incident since it was created", "recorded": ", as recorded"}.get(
                x["source"], f", {_n(x['in_window'], 'incident')} in {h['window_days']} days" if x["in_window"] else "")
            return f"{x['name']} {_n(x['current_streak'], 'day')} (longest {x['longest_streak']}{why})"

        lines.append("- Habits to avoid, clean for: " + "; ".join(map(clean, h["avoiding"])) + ".")
    return lines


def _goal_lines(g: dict | None) -> list[str]:
    if not g or not (g["goals_total"] or g["milestones_total"]):
        return []
    lines = [f"- {_n(g['goals_total'], 'goal')}; {_n(g['milestones_total'], 'milestone')}: "
             f"{g['milestones_completed']} completed ({g['milestones_completed_week']} in the last 7 days), "
             f"{g['milestones_in_progress']} in progress, {g['milestones_pending']} pending."]
    if g["progress"]:
        lines.append("- Progress from milestones: " + "; ".join(
            f"{x['name']} {x['progress']:.0f}% ({x['milestones_completed']} of {x['milestones']} done"
            f"{'' if x['status'] in (None, 'active', 'in_progress') else ', ' + str(x['status'])})"
            for x in g["progress"]) + f"; mean {g['goals_avg_progress']:.0f}% over "
            f"{_n(g['goals_with_milestones'], 'goal')}.")
    if g["without_milestones"] and g["goals_with_milestones"]:
        names = g["without_milestones"]
        lines.append(f"- No milestone linked: {', '.join(names[:5])}"
                     f"{f' and {len(names) - 5} more' if len(names) > 5 else ''}.")
    return lines


def _timer_lines(tm: dict | None) -> list[str]:
    if not tm or tm["source"] is None:
        return []
    w = tm["window_days"]
    if not tm["sessions_total"]:
        return [f"- No timer session in the last {w} days ({tm['sessions_all']:,} in all, "
                f"{_span(tm['first'], tm['last'])})."]
    if tm["source"] == "items":
        return [f"- {_n(tm['sessions_total'], 'timer focus session')} logged on items in the last {w} days, "
                f"{tm['focus_minutes']:.0f} minutes (break time and profiles not available: no timer session "
                f"logs)."]
    usage = ", ".join(f"{p} {n}" for p, n in list(tm["profile_usage"].items())[:3])
    return [f"- {_n(tm['sessions_total'], 'timer session')} in the last {w} days: {tm['focus_minutes']:.0f} focus "
            f"minutes, {tm['break_minutes']:,} break minutes{'; profiles: ' + usage if usage else ''}."]


def _versus(over: float) -> str:
    pct = abs(round(100 * over))
    return "as long as planned" if pct == 0 else f"{pct}% {'longer' if over > 0 else 'shorter'} than planned"


def _state_lines(d: dict) -> list[str]:
    """The dimensions that moved most: the most common value, and for one
    whose values have an order its mean level on its scale (0 the worst
    level, 1 the best: ``level 0.49 (exhausted→high)``) and how it moved,
    last third against first (``up +0.29``, ``steady``)."""
    lines = []
    for x in d["status"][:4]:
        trend = "" if x["drift"] is None else f", {'up' if x['drift'] > 0 else 'down'} {x['drift']:+.2f}" \
            if abs(x["drift"]) >= 0.05 else ", steady"
        level = "" if x["mean_level"] is None or not x.get("scale") else \
            f"; level {x['mean_level']:.2f} ({x['scale'][0]}→{x['scale'][1]})"
        lines.append(f"- {x['dimension']}: mostly {x['most_common']}{level}{trend}.")
    return lines


def _commitment_lines(d: dict) -> list[str]:
    w = d["window_days"]
    lines = []
    shown = [c for c in d["commitments"] if c["status"] == "active"][:3]
    for c in shown:
        targets = f": {', '.join(c['targets'][:3])}" if c["targets"] else ""
        verdict = f"met {c['met']} of {c['judged']} periods" if c["judged"] else f"not judged in these {w} days"
        recorded = [f"{word} {c[k]}" for k, word in (("last_met", "met"), ("last_violation", "violated")) if c[k]]
        lines.append(f"- {c['name']} ({c['rule']}{targets}): {verdict}"
                     f"{'; Chronos recorded it last ' + ' and last '.join(recorded) if recorded else ''}.")
    rest = Counter(c["status"] for c in d["commitments"] if c not in shown)
    if rest:
        lines.append(f"- {_n(sum(rest.values()), 'more commitment')}: "
                     + ", ".join(f"{n} {status}" for status, n in sorted(rest.items())) + ".")
    fired = [x for x in d["reinforcements"] if x["kind"] == "commitment"]
    for x in fired:
        lines.append(f"- {x['source']}: met {x['met']} of {x['fired']} periods.")
    others = [x for x in d["reinforcements"] if x["kind"] != "commitment"]
    if others:
        lines.append("- Fired in the last " + f"{w} days: " + "; ".join(
            f"{x['source']} ({x['kind']}) {_n(x['fired'], 'time')}" for x in others) + ".")
    return lines


def render_markdown(d: dict) -> str:
    """tendencies.md, written from the digest's JSON alone: short, ranked,
    meant to be read by an agent in few tokens; a heading only with lines under it."""
    w = d["window_days"]
    basis = {"given": "the date asked for", "last log": "the last day the logs cover",
             "today (no logs)": "today: there are no logs"}.get(d["as_of_basis"], d["as_of_basis"])
    lines = [f"# Tendencies as of {d['as_of']}", "",
             "Read this before advising; query the mirrors (`sequence data`) only when asked. "
             f"Figures are for the {w} days ending {d['as_of']} ({basis}) unless said otherwise."]
    sections = (("What the folder holds", _folder_lines(d)),
                ("Missing, and why", [f"- {m[0].upper()}{m[1:]}." for m in d["missing"]]),
                ("Completion", _completion_lines(d)),
                ("Timing", _timing_lines(d)),
                ("Days of the week", _weekday_lines(d)),
                ("Planned vs actual", [
                    f"- {x['type']}: {_versus(x['over_planned'])} ({x['actual_minutes']} vs "
                    f"{x['planned_minutes']} min)." for x in d["planned_vs_actual"][:2]]),
                ("Habits", _habit_lines(d["habits"])),
                ("Goals", _goal_lines(d["goals"])),
                ("Focus time", _timer_lines(d["timers"])),
                ("State", _state_lines(d)),
                ("Commitments and rewards", _commitment_lines(d)))
    for title, body in sections:
        if body:
            lines += ["", f"## {title}", *body]
    return "\n".join(lines) + "\n"
