"""A generator of Chronos user folders, laid out as real ones are, for the
examples, the tests and the benchmarks (front end: tools/gen_user.py).

``write_user_folder(root, items=300, days=120, seed=7)`` writes ``root/User``
with one YAML file per item under plural-type folders (some in lower or
upper case, keys in mixed case, every duration form), daily schedules with
nested blocks, completions keyed ``name@HH:MM``, a points ledger, status
snapshots with narratives, reviews and settings.  The same arguments always
write the same files.
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

_Dumper: type[yaml.CSafeDumper] | type[yaml.SafeDumper]
try:                                   # the C emitter when PyYAML has it
    from yaml import CSafeDumper as _Dumper
except ImportError:                    # pragma: no cover - PyYAML without libyaml
    from yaml import SafeDumper as _Dumper

# plural folder -> item type; the folder spelling varies as it does in real folders
TYPES = {
    "Habits": "habit", "Tasks": "task", "Routines": "routine", "Subroutines": "subroutine",
    "Microroutines": "microroutine", "Goals": "goal", "Milestones": "milestone", "Commitments": "commitment",
    "Rewards": "reward", "Achievements": "achievement", "Days": "day", "Weeks": "week", "Projects": "project",
    "Notes": "note", "Reminders": "reminder", "Alarms": "alarm", "Timeblocks": "timeblock",
    "Inventories": "inventory", "Inventory_Items": "inventory_item", "Rituals": "ritual",
}
FOLDER_SPELLING = {"Habits": "habits", "Notes": "notes", "Alarms": "ALARMS", "Inventory_Items": "inventory_items"}
WEIGHTS = {"habit": 14, "task": 22, "routine": 5, "subroutine": 6, "microroutine": 6, "goal": 5, "milestone": 8,
           "commitment": 4, "reward": 4, "achievement": 3, "day": 2, "week": 2, "project": 4, "note": 6,
           "reminder": 3, "alarm": 2, "timeblock": 2, "inventory": 1, "inventory_item": 3, "ritual": 1}
CATEGORIES = ("health", "work", "learning", "home", "social", "finance", "creative", "mind")
STATUSES = ("active", "active", "active", "pending", "paused", "completed")
PRIORITIES = ("low", "medium", "high", "critical")
WORDS = ("morning run stretch read journal plan review inbox water walk meditate practice guitar code "
         "study spanish cook clean budget call family write sketch garden sleep wind down deep work "
         "email standup lunch break focus sprint tidy desk laundry groceries podcast yoga breathe "
         "gratitude reflect outline draft edit publish learn piano pushups squats floss vitamins").split()
DIMENSIONS = ("health", "place", "energy", "mind_state", "focus", "emotion", "vibe")
LEVELS = {"energy": ("low", "medium", "high"), "focus": ("scattered", "ok", "sharp"),
          "health": ("sick", "ok", "great"), "place": ("home", "office", "outside", "travel"),
          "mind_state": ("calm", "busy", "anxious"), "emotion": ("sad", "neutral", "happy"),
          "vibe": ("flat", "good", "electric")}


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _duration(rng: random.Random, minutes: int) -> str | int:
    """The same length in one of the forms real files use."""
    form = rng.randrange(4)
    if form == 0:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"
    if form == 1:
        return f"{minutes}m"
    if form == 2 and minutes % 60 == 0:
        return f"{minutes // 60}h"
    return minutes


def _key(rng: random.Random, key: str) -> str:
    r = rng.random()
    return key.capitalize() if r < 0.15 else key.upper() if r < 0.18 else key


def _dump(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        yaml.dump(data, fh, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


def _names(rng: random.Random, n: int, kind: str, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        words = rng.sample(WORDS, rng.choice((1, 2, 2, 3)))
        name = " ".join(words).title()
        if kind in ("day", "week"):
            name = f"{name} {kind.title()}"
        if name in taken:
            name = f"{name} {len(taken)}"
        taken.add(name)
        out.append(name)
    return out


def write_user_folder(root: str | Path, items: int = 300, days: int = 120, seed: int = 7,
                      start: date = date(2025, 1, 1)) -> Path:
    """Write a user folder under ``root`` (``root/User``) and return its path."""
    rng = random.Random(seed)
    user = Path(root) / "User"
    total_w = sum(WEIGHTS.values())
    counts = {t: max(1, round(items * w / total_w)) for t, w in WEIGHTS.items()}
    taken: set[str] = set()
    names = {t: _names(rng, n, t, taken) for t, n in counts.items()}
    folder_of = {v: FOLDER_SPELLING.get(k, k) for k, v in TYPES.items()}
    items_out: dict[str, list[dict[str, Any]]] = {t: [] for t in names}   # YAML documents

    def base(t: str, name: str) -> dict[str, Any]:
        d: dict[str, Any] = {_key(rng, "name"): name, _key(rng, "type"): t, "category": rng.choice(CATEGORIES),
                             "status": rng.choice(STATUSES), "priority": rng.choice(PRIORITIES)}
        if rng.random() < 0.6:
            d["tags"] = rng.sample(("daily", "focus", "quick", "energy", "evening", "weekend", "core"), 2)
        if rng.random() < 0.3:
            d["notes"] = f"Keep {name.lower()} simple."
        return d

    for t, ns in names.items():
        for name in ns:
            d = base(t, name)
            if t in ("habit", "task", "routine", "subroutine", "microroutine", "timeblock", "ritual"):
                d[_key(rng, "duration")] = _duration(rng, rng.choice((5, 10, 15, 20, 30, 45, 60, 90, 120)))
                d["points"] = rng.choice((1, 2, 3, 5, 8))
            if t == "habit":
                d["frequency"] = {"times": rng.choice((1, 1, 3, 5)), "period": rng.choice(("day", "week"))}
            if t == "task" and rng.random() < 0.7:
                d["due_date"] = (start + timedelta(days=rng.randrange(days + 60))).isoformat()
            if t in ("goal", "project") and rng.random() < 0.8:
                d["due_date"] = (start + timedelta(days=rng.randrange(30, days + 200))).isoformat()
                d[_key(rng, "duration")] = f"{rng.choice((30, 60, 90, 180))}d"
            if t == "reminder":
                d["duration"] = f"{rng.choice((1, 12, 24, 48))}h"
            items_out[t].append(d)

    def ref(t: str) -> dict[str, str]:
        return {"name": rng.choice(names[t]), "type": t}

    for d in items_out["routine"]:
        d["children"] = [ref("subroutine") for _ in range(rng.randint(1, 3))] + [ref("habit")]
    for d in items_out["subroutine"]:
        d["children"] = [ref("microroutine") for _ in range(rng.randint(1, 2))] + [ref("task")]
    for d in items_out["ritual"]:
        d["children"] = [{"name": "A Step Nobody Wrote Down", "type": "microroutine"}]   # unresolved on purpose
    for d in items_out["goal"]:
        ms = rng.sample(names["milestone"], min(len(names["milestone"]), rng.randint(1, 3)))
        d["milestones"] = [m if rng.random() < 0.5 else {"name": m, "criteria": {"count": rng.randint(3, 20)}}
                           for m in ms]
    for d in items_out["project"]:
        d["children"] = [ref("task") for _ in range(rng.randint(2, 5))]
    for d in items_out["commitment"]:
        h = rng.choice(items_out["habit"])
        hname = next(v for k, v in h.items() if k.lower() == "name")
        d["targets"] = [{"name": hname, "type": "habit"}]
        d["rule"] = {"kind": "frequency", "times": rng.choice((1, 2, 3)), "period": "week"}
        d["triggers"] = {"on_met": [{"action": "award_points", "points": 10}],
                         "on_violation": [{"action": "log", "message": f"Missed {hname}"}]}
    for d in items_out["reward"]:
        d["points"] = rng.choice((20, 50, 100))
        d["triggers"] = {"on_complete": [{"action": "spend_points", "points": d["points"]}]}
    for d in items_out["achievement"]:
        d["status_requirements"] = {"energy": "high"} if rng.random() < 0.5 else {"focus": "sharp"}
        d["rewards"] = [rng.choice(names["reward"])]
    for d in items_out["inventory"]:
        d["children"] = [ref("inventory_item") for _ in range(rng.randint(2, 4))]

    for t, ds in items_out.items():
        folder = user / folder_of[t]
        for d in ds:
            name = next(v for k, v in d.items() if k.lower() == "name")
            _dump(folder / f"{slugify(name)}.yml", d)

    _dump(user / "Settings" / "status_settings.yml", {"dimensions": list(DIMENSIONS)})
    _dump(user / "Settings" / "Sequence.yml", {"listener": {"sync_time": "00:00"}})

    # daily schedules, completions, points, status
    habit_items = [d for d in items_out["habit"] if d.get("status") == "active"] or items_out["habit"]
    routines = items_out["routine"]
    skill = {id(d): rng.uniform(0.45, 0.95) for d in habit_items + routines}
    balance = 0
    ledger: list[dict[str, Any]] = []
    for k in range(days):
        day = start + timedelta(days=k)
        weekend = day.weekday() >= 5
        blocks: list[dict[str, Any]] = []
        entries: dict[str, str | dict[str, Any]] = {}      # "name@HH:MM" -> a status or a mapping
        todays = rng.sample(habit_items, min(len(habit_items), rng.randint(3, 8)))
        todays_routines = rng.sample(routines, min(len(routines), 2))
        minute = 6 * 60 + rng.choice((0, 15, 30))
        for d in todays_routines + todays:
            name = next(v for kk, v in d.items() if kk.lower() == "name")
            length = rng.choice((15, 20, 30, 45, 60))
            block: dict[str, Any] = {"name": name, "type": d.get("type", d.get("Type", d.get("TYPE"))),
                                     "start_time": f"{minute // 60:02d}:{minute % 60:02d}",
                                     "end_time": f"{(minute + length) // 60:02d}:{(minute + length) % 60:02d}",
                                     "duration": _duration(rng, length), "status": "planned"}
            if d in todays_routines:
                kids = [c["name"] for c in d["children"][:2]]
                block["children"] = [{"name": c, "type": "subroutine", "start_time": block["start_time"],
                                      "duration": length // 2,
                                      "children": [{"name": f"{c} prep", "type": "microroutine", "duration": 5}]}
                                     for c in kids]
            blocks.append(block)
            p = skill[id(d)] - (0.15 if weekend else 0.0)
            r = rng.random()
            status = "completed" if r < p else "partial" if r < p + 0.08 else "skipped" if r < p + 0.2 else "missed"
            key = f"{name}@{block['start_time']}"
            if rng.random() < 0.25 and status in ("completed", "skipped"):
                entries[key] = status
            else:
                delay = int(rng.gauss(6 + (10 if weekend else 0), 8))
                actual = max(0, minute + delay)
                took = max(1, int(length * rng.uniform(0.6, 1.4)))
                e: dict[str, Any] = {"status": status, "scheduled_start": block["start_time"],
                                     "scheduled_end": block["end_time"], "name": name, "type": block["type"]}
                if status in ("completed", "partial"):
                    e.update({"actual_start": f"{actual // 60:02d}:{actual % 60:02d}",
                              "actual_end": f"{(actual + took) // 60 % 24:02d}:{(actual + took) % 60:02d}",
                              "quality": rng.randint(1, 5)})
                e["logged_at"] = f"{day.isoformat()} {min(23, (actual + took) // 60):02d}:{(actual + took) % 60:02d}:00"
                if rng.random() < 0.1:
                    e["note"] = "felt heavy" if status != "completed" else "good session"
                entries[key] = e
            if status == "completed":
                pts = int(d.get("points", 1))
                balance += pts
                ledger.append({"date": f"{day.isoformat()} {(minute + length) // 60:02d}:{(minute + length) % 60:02d}:00",
                               "delta": pts, "reason": f"completed {name}", "source": "completion",
                               "tags": ["auto"]})
            minute += length + rng.choice((0, 5, 10, 30))
        if k % 9 == 8 and items_out["reward"]:
            rw = rng.choice(items_out["reward"])
            rname = next(v for kk, v in rw.items() if kk.lower() == "name")
            if balance >= rw["points"]:
                balance -= rw["points"]
                ledger.append({"date": f"{day.isoformat()} 20:00:00", "delta": -rw["points"],
                               "reason": f"redeemed {rname}", "source": "reward", "tags": ["reward"]})
        _dump(user / "Schedules" / f"{day.isoformat()}.yml", blocks)
        _dump(user / "Schedules" / "completions" / f"{day.isoformat()}.yml", {"entries": entries})
        snaps = []
        for hour in (8, 13, 21):
            s = {"time": f"{hour:02d}:{rng.randrange(60):02d}"}
            for dim in rng.sample(DIMENSIONS, 4):
                s[dim] = rng.choice(LEVELS[dim])
            snaps.append(s)
        _dump(user / "Logs" / "status" / f"{day.isoformat()}.yml", snaps)
        if k % 4 == 0:
            (user / "Logs" / "narratives").mkdir(parents=True, exist_ok=True)
            (user / "Logs" / "narratives" / f"{day.isoformat()}.md").write_text(
                f"# {day.isoformat()}\n\nStarted {'late' if weekend else 'on time'}; "
                f"{rng.choice(('energy dipped after lunch', 'focus held all morning', 'a scattered day'))}.\n",
                encoding="utf-8")
        if day.weekday() == 6:
            iso = day.isocalendar()
            _dump(user / "Reviews" / "weekly" / f"{iso[0]}-W{iso[1]:02d}.yml",
                  {"week": f"{iso[0]}-W{iso[1]:02d}", "highlights": ["kept the morning routine"],
                   "lowlights": ["skipped workouts midweek"], "lessons": ["plan the evening"],
                   "next_week": ["earlier bedtime"]})
        if (day + timedelta(days=1)).day == 1:
            _dump(user / "Reviews" / "monthly" / f"{day.strftime('%Y-%m')}.yml",
                  {"month": day.strftime("%Y-%m"), "highlights": ["consistency up"], "lessons": ["fewer tasks"]})
    _dump(user / "Rewards" / "points.yml", {"balance": balance, "ledger": ledger})
    return user

