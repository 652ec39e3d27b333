"""A generator of Chronos user folders, laid out and written as Chronos
(Jeetski/Chronos_Engine) lays out and writes them, for the examples, the
tests and the benchmarks (front end: tools/gen_user.py).

``plan_user_folder(root, items=300, days=120, seed=7)`` decides everything a
folder holds (a :class:`Plan`: the items as documents, and per day the
schedule, the completions entries, the status history, the timer sessions);
``write_plan(plan)`` writes it; ``write_user_folder(...)`` does both and
returns ``root/User``.  The same arguments always give the same files.

What is written, and by which Chronos command it would be:

- one YAML file per item under plural-type folders, most in Title Case (as
  Chronos's example folder), some lower case (as its code writes them);
  habits with ``completion_dates``, ``incident_dates`` (habits to avoid),
  streaks; commitments in today's shape and the older ones; milestones with
  ``goal:``; day templates with ``sequence:`` windows; rewards with a cost;
- ``schedules/schedule_DATE.yml`` (``today``: Kairos blocks with datetimes,
  nested to any depth, buffers; every tenth day the legacy scheduler's, with
  its recursive ``parent:`` aliases), with the Kairos shadow files and
  manual modifications beside it and older versions in ``archive/``;
- ``schedules/completions/DATE.yml`` as ``complete``, ``did`` (whose entries
  are keyed by their last property), ``mark``, the Kairos cut and the
  dashboard's auto-miss write them, quality as Chronos's labels;
- ``logs/status_DATE.yml`` (``status``: ``{date, entries: [{at, status}]}``),
  some days in ``profile/Status/`` (Chronos's second place), and
  ``current_status.yml``;
- ``Rewards/points.yml`` (``complete:<type>``, ``timer:focus:<profile>``,
  ``redeem:<reward>``), beside the ``rewards/`` items;
- ``Timers/`` (state, day plan, sessions), ``scripts/`` with macros,
  ``Reviews/`` as the review command names them (``weekly/2025-03.yml``),
  ``Settings/`` with Chronos's status, quality and timer settings and a
  dashboard link token, and chronoledger's own ``logs/narratives/``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
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
    "Inventories": "inventory", "Inventory_Items": "inventory_item", "Rituals": "ritual", "People": "person",
    "Journal_Entries": "journal_entry",
}
#: Folders written in another case than Title Case: as Chronos's code writes them
#: (lower case; rewards/ beside the Rewards/ of the points ledger), and one odd one.
FOLDER_SPELLING = {"Habits": "habits", "Notes": "notes", "Alarms": "ALARMS", "Inventory_Items": "inventory_items",
                   "Rewards": "rewards", "People": "people", "Journal_Entries": "journal_entries"}
WEIGHTS = {"habit": 14, "task": 22, "routine": 5, "subroutine": 6, "microroutine": 6, "goal": 5, "milestone": 8,
           "commitment": 4, "reward": 4, "achievement": 3, "day": 2, "week": 2, "project": 4, "note": 6,
           "reminder": 3, "alarm": 2, "timeblock": 2, "inventory": 1, "inventory_item": 3, "ritual": 1,
           "person": 2, "journal_entry": 2}
CATEGORIES = ("health", "work", "learning", "home", "social", "finance", "creative", "mind")
STATUSES = ("active", "active", "active", "pending", "paused", "completed")
PRIORITIES = ("low", "medium", "high", "critical")
WORDS = ("morning run stretch read journal plan review inbox water walk meditate practice guitar code "
         "study spanish cook clean budget call family write sketch garden sleep wind down deep work "
         "email standup lunch break focus sprint tidy desk laundry groceries podcast yoga breathe "
         "gratitude reflect outline draft edit publish learn piano pushups squats floss vitamins").split()
#: Chronos's status dimensions (settings/status_settings.yml, by rank) and each one's
#: options with their values (settings/<dimension>_settings.yml: 1 is the best).
DIMENSIONS = ("health", "place", "energy", "mind_state", "focus", "emotion", "vibe")
DIMENSION_NAMES = {"health": "Health", "place": "Place", "energy": "Energy", "mind_state": "Mind State",
                   "focus": "Focus", "emotion": "Emotion", "vibe": "Vibe"}
LEVELS = {"health": {"Excellent": 1, "Good": 2, "Fair": 3, "Poor": 4, "Critical": 5},
          "place": {"At Home": 1, "At School": 2, "At Work": 3, "Travel": 4, "On The Go": 5, "On Holiday": 6},
          "energy": {"High": 1, "Medium": 2, "Low": 3, "Exhausted": 4},
          "mind_state": {"Clear": 1, "Neutral": 2, "Distracted": 3, "Overwhelmed": 4},
          "focus": {"Laser": 1, "Good": 2, "Scattered": 3, "Absent": 4},
          "emotion": {"Positive": 1, "Neutral": 2, "Negative": 3},
          "vibe": {"Great": 1, "Okay": 2, "Bad": 3}}
#: settings/quality_settings.yml: the labels ``did``, ``complete`` and ``mark`` write, 4 the best.
QUALITY = {"Excellent": 4, "Good": 3, "Okay": 2, "Poor": 1}
#: settings/points_settings.yml ``earn:``, what ``complete`` awards per type.
EARN = {"task": 10, "routine": 5, "subroutine": 4, "microroutine": 2, "habit": 5, "milestone": 15, "goal": 100}
TIMER_PROFILE = "deep_work_50_10"
#: A fake dashboard link token (Settings/link_settings.yml): a sync must leave it out of the mirrors.
LINK_TOKEN = "sample-token-not-a-secret-3f9c2a"


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def name_of(d: dict[str, Any]) -> str:
    """An item document's name, whatever the case of its key."""
    return next(v for k, v in d.items() if k.lower() == "name")


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


def _dump(path: Path, data: object, sort_keys: bool = True) -> None:
    """As Chronos writes its files: ``yaml.dump`` (keys sorted unless the
    command passes ``sort_keys=False``), block style, Unicode as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        yaml.dump(data, fh, Dumper=_Dumper, sort_keys=sort_keys, allow_unicode=True, default_flow_style=False)


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


def _hm(t: datetime | None) -> str | None:
    return None if t is None else f"{t.hour:02d}:{t.minute:02d}"


@dataclass
class DayPlan:
    """One day of logs, as the files hold them."""
    day: date
    #: the blocks of schedules/schedule_DATE.yml (legacy ones hold `parent` cycles); None: no schedule that day
    schedule: list[dict[str, Any]] | None = None
    legacy: bool = False
    #: schedules/completions/DATE.yml's entries, by key, as the file holds them (a later ``did``
    #: keyed by the same last property replaced the earlier entry, as in Chronos)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    sorted_entries: bool = False            # the last writer dumped with sorted keys
    #: the status history entries ({at, status}); where Chronos wrote them
    status: list[dict[str, Any]] = field(default_factory=list)
    status_in_profile: bool = False         # profile/Status/status_DATE.yml (no logs/ file that day)
    status_copy_in_profile: bool = False    # also a stale copy there, which Chronos does not read
    timer: list[dict[str, Any]] = field(default_factory=list)
    shadow: bool = False                    # a schedule_DATE_kairos_v2_shadow.yml beside it
    manual: bool = False                    # a manual_modifications_DATE.yml beside it
    narrative: str | None = None


@dataclass
class Plan:
    """Everything a generated folder holds; the tests compute what a sync
    must give from it, without reading the files."""
    user: Path
    start: date
    items: dict[str, list[dict[str, Any]]]      # type -> the documents as written
    folders: dict[str, str]                     # type -> its folder
    days: list[DayPlan]
    ledger: list[dict[str, Any]]
    balance: int
    current_status: dict[str, str]
    stale_current_status: dict[str, str]        # profile/current_status.yml: Chronos reads user/'s first
    settings: dict[str, Any]                    # file name -> document, under Settings/
    reviews: dict[str, dict[str, Any]]          # path under Reviews/ -> document
    other: dict[str, Any]                       # path -> document (or text): scripts, archive, examples, Timers...


def plan_user_folder(root: str | Path, items: int = 300, days: int = 120, seed: int = 7,
                     start: date = date(2025, 1, 1)) -> Plan:
    """Everything a folder of about ``items`` items and ``days`` days of logs holds."""
    rng = random.Random(seed)
    user = Path(root) / "User"
    total_w = sum(WEIGHTS.values())
    counts = {t: max(1, round(items * w / total_w)) for t, w in WEIGHTS.items()}
    counts["habit"] = max(counts["habit"], 4)
    taken: set[str] = set()
    names = {t: _names(rng, n, t, taken) for t, n in counts.items()}
    folder_of = {v: FOLDER_SPELLING.get(k, k) for k, v in TYPES.items()}
    docs: dict[str, list[dict[str, Any]]] = {t: [] for t in names}

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
                d["frequency"] = rng.choice(("daily", "daily", "weekly", "weekdays",
                                             {"times": rng.choice((1, 3, 5)), "period": "week"}))
                d["polarity"] = "good"
                d["creation_date"] = (start - timedelta(days=rng.randrange(5, 60))).isoformat()
                d["completion_dates"] = []
            if t == "task" and rng.random() < 0.7:
                d["due_date"] = (start + timedelta(days=rng.randrange(days + 60))).isoformat()
            if t in ("goal", "project") and rng.random() < 0.8:
                d["due_date"] = (start + timedelta(days=rng.randrange(30, days + 200))).isoformat()
                d[_key(rng, "duration")] = f"{rng.choice((30, 60, 90, 180))}d"
            if t == "reminder":
                d["duration"] = f"{rng.choice((1, 12, 24, 48))}h"
            if t == "person":
                d["relationship"] = rng.choice(("friend", "family", "colleague"))
            if t == "journal_entry":
                d["date"] = (start + timedelta(days=rng.randrange(days))).isoformat()
                d["content"] = f"Thoughts on {name.lower()}."
            docs[t].append(d)

    habits = docs["habit"]
    # habits to avoid: Chronos records an incident in both completion_dates and incident_dates
    bad = habits[-max(1, len(habits) // 12):]
    for d in bad:
        d["polarity"] = "bad"
        d["status"] = "active"
        d["incident_dates"] = []
        d["last_incident"] = None
        d["clean_current_streak"] = 0
        d["clean_longest_streak"] = 0
    good = [d for d in habits if d not in bad]
    for d in good[:3]:
        d["status"] = "active"                 # the commitments' targets

    def ref(t: str) -> dict[str, str]:
        return {"name": rng.choice(names[t]), "type": t}

    for d in docs["routine"]:
        d["children"] = [ref("subroutine") for _ in range(rng.randint(1, 3))] + [ref("habit")]
    for d in docs["subroutine"]:
        d["children"] = [ref("microroutine") for _ in range(rng.randint(1, 2))] + [ref("task")]
    for d in docs["ritual"]:
        d["children"] = [{"name": "A Step Nobody Wrote Down", "type": "microroutine"}]   # unresolved on purpose
    for d in docs["goal"]:
        ms = rng.sample(names["milestone"], min(len(names["milestone"]), rng.randint(1, 3)))
        d["milestones"] = [m if rng.random() < 0.5 else {"name": m, "criteria": {"count": rng.randint(3, 20)}}
                           for m in ms]
    for d in docs["milestone"]:
        d["goal"] = rng.choice(names["goal"])
        d["weight"] = rng.choice((1, 1, 2))
        target = rng.randint(3, 12)
        current = rng.randint(0, target)
        d["criteria"] = {"count": {"of": {"type": "habit", "name": name_of(rng.choice(good))},
                                   "times": target, "period": "all"}}
        d["progress"] = {"current": current, "target": target, "percent": round(100 * current / target, 1)}
        d["status"] = "completed" if current == target else rng.choice(("pending", "in-progress"))
    for d in docs["project"]:
        d["children"] = [ref("task") for _ in range(rng.randint(2, 5))]
    for d in docs["day"]:
        d["duration"] = "24h"
        d["days"] = rng.sample(["monday", "tuesday", "wednesday", "thursday", "friday"], 2)
        d["children"] = [ref("routine"), ref("task")]
        window = rng.choice(names["microroutine"])
        d["sequence"] = [{"name": window, "type": "microroutine", "window": True, "start": "09:00", "end": "11:30",
                          "filters": {"tags": ["focus"]}},
                         {"name": f"{name_of(d)} Admin Window", "type": "microroutine", "window": True,
                          "start": "14:00", "end": "15:00", "filters": {"tags": ["quick"]}}]
    rewards = docs["reward"]
    for d in rewards:
        d["cost"] = {"points": rng.choice((20, 50, 100))}
        d["target"] = {"type": "note", "name": f"{name_of(d)} enjoyed", "mode": "instantiate"}
        d["redemptions"] = 0
    for d in docs["achievement"]:
        d["status_requirements"] = {"energy": "High"} if rng.random() < 0.5 else {"focus": "Laser"}
        d["rewards"] = [rng.choice(names["reward"])]
    for d in docs["inventory"]:
        d["children"] = [ref("inventory_item") for _ in range(rng.randint(2, 4))]
    for i, d in enumerate(docs["commitment"]):
        d["status"] = "active"
        on_met = [{"type": "reward", "name": rng.choice(names["reward"])}]
        on_violation = [{"type": "achievement", "name": f"{name_of(d)} Recovery"}]
        shape = i % 5
        if shape in (0, 3):                    # today's shape: n times a week
            h = good[i % len(good[:3])]
            d["rule"] = {"kind": "frequency", "times": rng.choice((2, 3, 4)), "period": "week"}
            d["targets"] = [{"type": "habit", "name": name_of(h)}]
            if shape == 3 and len(good) > 3:   # two targets, each with its own count
                d["targets"] = [{"type": "habit", "name": name_of(good[0]), "count": 2},
                                {"type": "habit", "name": name_of(good[1]), "count": 1}]
        elif shape == 1:                       # never, today's shape
            d["rule"] = {"kind": "never", "period": "day"}
            d["targets"] = [{"type": "habit", "name": name_of(bad[i % len(bad)])}]
        elif shape == 2:                       # the older frequency shape
            d["frequency"] = {"times": 2, "period": "week",
                              "of": {"type": "habit", "name": name_of(good[1 % len(good)])}}
        else:                                  # the older never shape
            d["never"] = True
            d["forbidden_items"] = [{"type": "habit", "name": name_of(bad[0])}]
        d["triggers"] = {"on_met": on_met, "on_violation": on_violation}
        if i == 2:
            d["created"] = (start + timedelta(days=min(days - 1, 20))).isoformat()
        if i == 5:
            d["status"] = "paused"             # not judged

    # --- the days ---------------------------------------------------------------------
    routines = docs["routine"]
    by_name = {(name_of(d), str(d.get("type", d.get("Type", d.get("TYPE"))))): d for t in docs for d in docs[t]}
    skill = {id(d): rng.uniform(0.45, 0.95) for d in habits + routines}
    ledger: list[dict[str, Any]] = []
    balance = 0
    status_now = {dim: next(iter(LEVELS[dim])) for dim in DIMENSIONS}
    plans: list[DayPlan] = []
    tasks = docs["task"]

    def award(when: datetime, delta: int, reason: str, source: str | None = None) -> None:
        nonlocal balance
        balance += delta
        e: dict[str, Any] = {"date": when.strftime("%Y-%m-%d %H:%M:%S"), "delta": delta, "reason": reason}
        if source is not None:
            e["source"] = source
        ledger.append(e)

    def done(d: dict[str, Any], day: date, incident: bool = False) -> None:
        """What ``complete`` and tracking write into the item."""
        s = day.isoformat()
        if "completion_dates" in d and s not in d["completion_dates"]:
            d["completion_dates"].append(s)
        if incident and s not in d["incident_dates"]:
            d["incident_dates"].append(s)
            d["last_incident"] = s

    for k in range(days):
        day = start + timedelta(days=k)
        weekend = day.weekday() >= 5
        dp = DayPlan(day=day, legacy=k % 10 == 9, shadow=k % 3 == 0, manual=k % 7 == 3)
        entries = dp.entries
        stamp_of = {"n": 0}

        def logged_at(at: datetime) -> str:
            stamp_of["n"] += 1
            return (at + timedelta(minutes=5, seconds=stamp_of["n"])).strftime("%Y-%m-%dT%H:%M:%S")

        blocks: list[dict[str, Any]] = []
        todays = rng.sample(good, min(len(good), rng.randint(3, 8)))
        todays_routines = rng.sample(routines, min(len(routines), 2))
        minute = 6 * 60 + rng.choice((0, 15, 30))
        share = k % 5 == 0                      # a child starts on its parent's datetime object: an anchor
        for d in todays_routines + todays:
            name = name_of(d)
            itype = "routine" if d in todays_routines else "habit"
            length = rng.choice((15, 20, 30, 45, 60))
            st = datetime.combine(day, time(minute // 60 % 24, minute % 60))
            en = st + timedelta(minutes=length)
            block: dict[str, Any] = {"name": name, "type": itype, "start_time": st, "end_time": en,
                                     "duration": length, "status": "pending", "children": []}
            if d in todays_routines:
                kids = [c["name"] for c in d["children"][:2]]
                block["children"] = [{"name": c, "type": "subroutine", "start_time": st if share else
                                      datetime.combine(day, st.time()), "duration": length // 2,
                                      "end_time": st + timedelta(minutes=length // 2), "status": "pending",
                                      "children": [{"name": f"{c} prep", "type": "microroutine", "duration": 5,
                                                    "start_time": st + timedelta(minutes=1),
                                                    "end_time": st + timedelta(minutes=6), "status": "pending",
                                                    "children": []}]}
                                     for c in kids]
            blocks.append(block)
            p = skill[id(d)] - (0.15 if weekend else 0.0)
            r = rng.random()
            outcome = ("completed" if r < p else "partial" if r < p + 0.08 else "skipped" if r < p + 0.2
                       else "missed" if r < p + 0.3 else "unlogged")
            key = f"{name}@{_hm(st)}"
            delay = int(rng.gauss(6 + (10 if weekend else 0), 8))
            actual = st + timedelta(minutes=delay)
            took = max(1, int(length * rng.uniform(0.6, 1.4)))
            astart, aend = actual, actual + timedelta(minutes=took)
            sched = {"scheduled_start": _hm(st), "scheduled_end": _hm(en)}
            if outcome == "completed":
                writer = rng.choice(("complete", "complete", "did", "did", "mark"))
                if writer == "complete":
                    e: dict[str, Any] = {"name": name, "status": "completed", **sched, "logged_at": logged_at(en)}
                    if rng.random() < 0.4:
                        e["quality"] = rng.choice(tuple(QUALITY))
                    entries[key] = e
                    done(d, day)
                    award(en, EARN.get(itype, 5), f"complete:{itype}", name)
                elif writer == "did":
                    props = rng.choice(((), ("quality",), ("actual_start", "actual_end"), ("quality", "note"),
                                        ("status", "quality")))
                    e = {"actual_end": _hm(aend), "actual_start": _hm(astart), "logged_at": logged_at(aend),
                         "name": name, **sched, "status": "completed"}
                    if "quality" in props:
                        e["quality"] = rng.choice(tuple(QUALITY))
                    if "note" in props:
                        e["note"] = "good session"
                    # Chronos's did: keyed by its last property when it is given any
                    entries[props[-1] if props else key] = dict(sorted(e.items()))
                    dp.sorted_entries = True
                    award(aend, EARN.get(itype, 5), f"complete:{itype}", name)
                else:                          # mark "Name":Completed, status as typed; tracked on the item
                    entries[key] = {"name": name, "status": "Completed", **sched, "logged_at": logged_at(en)}
                    done(d, day)
                    dp.sorted_entries = False
            elif outcome == "partial":         # did "Name" status:partial quality:Poor note:"..."
                entries["note"] = dict(sorted({"actual_end": _hm(aend), "actual_start": _hm(astart),
                                               "logged_at": logged_at(aend), "name": name, "note": "stopped early",
                                               "quality": rng.choice(("Okay", "Poor")), **sched,
                                               "status": "partial"}.items()))
                dp.sorted_entries = True
            elif outcome == "skipped":
                if rng.random() < 0.5:         # mark "Name":Skipped
                    entries[key] = {"name": name, "status": "Skipped", **sched, "logged_at": logged_at(st)}
                else:                          # cut by the Kairos scheduler
                    entries[key] = {"name": name, "status": "skipped", **sched, "logged_at": logged_at(st),
                                    "source": "kairos_cut", "auto_skipped": True, "reason": "over capacity",
                                    "type": itype, "block_id": f"{itype}::{slugify(name)}@{_hm(st)}"}
                dp.sorted_entries = False
            elif outcome == "missed":          # the dashboard's check-in of yesterday, auto-miss
                entries[key] = {"auto_missed": True, "logged_at": logged_at(en + timedelta(hours=12)),
                                "name": name, **sched, "source": "auto_miss_yesterday", "status": "missed"}
                dp.sorted_entries = True
            if itype == "routine" and outcome == "completed" and block["children"]:
                c = block["children"][0]
                entries[f"{c['name']}@{_hm(c['start_time'])}"] = {
                    "name": c["name"], "status": "completed", "scheduled_start": _hm(c["start_time"]),
                    "scheduled_end": _hm(c["end_time"]), "logged_at": logged_at(c["end_time"])}
            minute += length
            if rng.random() < 0.3:             # free time the scheduler left: a buffer block
                bs = datetime.combine(day, time(minute // 60 % 24, minute % 60))
                blocks.append({"name": "Dynamic Buffer", "start_time": bs, "end_time": bs + timedelta(minutes=10),
                               "duration": 10, "is_buffer": True, "buffer_type": "dynamic"})
                minute += 10
            minute += rng.choice((0, 5, 30))
        if rng.random() < 0.5 and tasks:       # complete task X, with no block: Name@unscheduled
            task = rng.choice(tasks)
            at = datetime.combine(day, time(19, rng.randrange(60)))
            entries[f"{name_of(task)}@unscheduled"] = {"name": name_of(task), "status": "completed",
                                                       "scheduled_start": None, "scheduled_end": None,
                                                       "logged_at": logged_at(at)}
            task.setdefault("completion_dates", [])
            done(task, day)
            award(at, EARN["task"], "complete:task", name_of(task))
        if rng.random() < 0.2:                 # an incident of a habit to avoid: complete habit X
            b = rng.choice(bad)
            at = datetime.combine(day, time(21, rng.randrange(60)))
            entries[f"{name_of(b)}@unscheduled"] = {"name": name_of(b), "status": "completed",
                                                    "scheduled_start": None, "scheduled_end": None,
                                                    "logged_at": logged_at(at)}
            done(b, day, incident=True)
        if rng.random() < 0.15:                # ticked on the dashboard: in the item's history only
            done(rng.choice(good[:3]), day)
        if k % 9 == 8 and rewards:             # redeem a reward: redeem:<name>, no source
            rw = rng.choice(rewards)
            cost = rw["cost"]["points"]
            if balance >= cost:
                award(datetime.combine(day, time(20, 0)), -cost, f"redeem:{name_of(rw)}")
                rw["redemptions"] += 1
                rw["last_redeemed"] = f"{day.isoformat()} 20:00:00"
        if k % 4 == 1:                         # a focus sprint on the timer, bound to a task
            t0 = datetime.combine(day, time(10, 0))
            bound = {"name": name_of(rng.choice(tasks)), "type": "task"} if tasks else None
            for phase, minutes in (("focus", 50), ("short_break", 10), ("focus", 50)):
                dp.timer.append({"bound_item": bound, "end": (t0 + timedelta(minutes=minutes)).strftime(
                    "%Y-%m-%d %H:%M:%S.%f"), "phase": phase, "profile": TIMER_PROFILE, "seconds": minutes * 60,
                    "start": t0.strftime("%Y-%m-%d %H:%M:%S.%f")})
                t0 += timedelta(minutes=minutes)
                if phase == "focus":
                    award(t0, 10, f"timer:focus:{TIMER_PROFILE}")
        if dp.legacy:
            blocks = _legacy(blocks, by_name)
        dp.schedule = blocks if k % 17 != 16 else None          # now and then a day with no schedule
        # the status history: each change appends the whole status after it
        for hour in (8, 13, 21):
            changes = rng.sample(DIMENSIONS, rng.randint(1, 3))
            for minute_, dim in zip(sorted(rng.sample(range(60), len(changes))), changes):
                status_now[dim] = rng.choice(tuple(LEVELS[dim]))
                dp.status.append({"at": f"{hour:02d}:{minute_:02d}:{rng.randrange(60):02d}",
                                  "status": dict(status_now)})
        dp.status_in_profile = k % 13 == 5
        dp.status_copy_in_profile = k % 29 == 3 and not dp.status_in_profile
        if k % 4 == 0:
            mood = rng.choice(("energy dipped after lunch", "focus held all morning", "a scattered day"))
            dp.narrative = f"# {day.isoformat()}\n\nStarted {'late' if weekend else 'on time'}; {mood}.\n"
        plans.append(dp)

    ledger.sort(key=lambda e: e["date"])        # Chronos appends as things happen
    for d in habits:                           # the streak fields Chronos keeps beside the dates
        ds = sorted(d["completion_dates"])
        d["completion_dates"] = ds
        d["last_completed"] = ds[-1] if ds else None
        run = best = 0
        prev = None
        for s in ds:
            cur = date.fromisoformat(s)
            run = run + 1 if prev is not None and (cur - prev).days == 1 else 1
            best = max(best, run)
            prev = cur
        d["current_streak"], d["longest_streak"] = run, best
        if d["polarity"] == "bad":
            d["incident_dates"] = sorted(d["incident_dates"])

    settings: dict[str, Any] = {
        "status_settings.yml": {"Status_Settings": [{"Name": DIMENSION_NAMES[dim], "Rank": i + 1,
                                                     "Description": f"{DIMENSION_NAMES[dim]} right now."}
                                                    for i, dim in enumerate(DIMENSIONS)]},
        "quality_settings.yml": {"Quality_Settings": {q: {"value": v, "description": f"{q} work."}
                                                      for q, v in QUALITY.items()}},
        "points_settings.yml": {"earn": dict(EARN)},
        "link_settings.yml": {"link_id": "link-5a1e", "token": LINK_TOKEN},
        "timer_profiles.yml": {TIMER_PROFILE: {"focus_minutes": 50, "short_break_minutes": 10,
                                               "long_break_minutes": 20, "long_break_every": 4,
                                               "points_per_focus": 10, "type": "pomodoro"}},
        "Timer_Profiles.yml": {"classic_pomodoro": {"focus_minutes": 25, "short_break_minutes": 5}},
        "Sequence.yml": {"listener": {"sync_time": "00:00"}},
        "console_themes/blue_skies_theme.yml": {"background": "blue"},
    }
    for dim in DIMENSIONS:
        settings[f"{dim}_settings.yml"] = {f"{DIMENSION_NAMES[dim].replace(' ', '_')}_Settings":
                                           {o: {"value": v, "description": f"{o}."} for o, v in LEVELS[dim].items()}}

    reviews: dict[str, dict[str, Any]] = {}
    for dp in plans:
        day = dp.day
        if day.weekday() == 6:                 # review weekly: Reviews/weekly/<isoyear>-<isoweek>.yml, no W
            iso = day.isocalendar()
            week = [p for p in plans if day - timedelta(days=6) <= p.day <= day]
            reviews[f"weekly/{iso[0]}-{iso[1]:02d}.yml"] = {
                "generated_at": f"{day.isoformat()} 21:30:00",
                "period": {"type": "weekly", "start": (day - timedelta(days=6)).isoformat(), "end": day.isoformat()},
                "sections": {"habits": {"completions": sum(len(p.entries) for p in week), "incidents": 0},
                             "points": {"earned": 0, "spent": 0, "net": 0}}}
        if (day + timedelta(days=1)).day == 1:
            reviews[f"monthly/{day.strftime('%Y-%m')}.yml"] = {
                "generated_at": f"{day.isoformat()} 22:00:00",
                "period": {"type": "monthly", "start": day.replace(day=1).isoformat(), "end": day.isoformat()}}
        if day.day == 15:
            reviews[f"daily/{day.isoformat()}.yml"] = {
                "generated_at": f"{day.isoformat()} 22:00:00",
                "period": {"type": "daily", "start": day.isoformat(), "end": day.isoformat()}}
    first_week = start.isocalendar()
    reviews[f"{first_week[0]}-W{first_week[1]:02d}_example.yml"] = {   # hand-written, as Chronos's example
        "name": f"Weekly Review {first_week[0]}-W{first_week[1]:02d}", "type": "review",
        "week": f"{first_week[0]}-W{first_week[1]:02d}", "highlights": ["kept the morning routine"],
        "lowlights": ["skipped workouts midweek"], "lessons": ["plan the evening"], "next_week": ["earlier bedtime"]}

    last_day = start + timedelta(days=days - 1)
    other: dict[str, Any] = {
        "scripts/macros_example.yml": {"enable_macros": False, "default_timeout_ms": 15000, "before_command": {},
                                       "after_command": {}},
        "scripts/Macros/macros.yml": {"enable_macros": True, "default_timeout_ms": 15000, "before_command": {},
                                      "after_command": {"new": [{"cli": "register settings items"}]}},
        "scripts/Macros/startup_sequence.chs": "echo starting the day\ntoday\n",
        "Timers/state.yml": {"auto_advance": True, "bound_item": None, "confirm_completion": False,
                             "current_block": None, "current_phase": None, "cycle_index": 0, "cycles_goal": None,
                             "last_tick": f"{last_day.isoformat()} 11:50:00.000000", "mode": "profile",
                             "pending_confirmation": None, "phase_start": None,
                             "profile": {"focus_minutes": 50, "points_per_focus": 10, "type": "pomodoro"},
                             "profile_name": TIMER_PROFILE, "remaining_seconds": 0, "schedule_state": None,
                             "status": "idle", "waiting_for_anchor_start": False},
        "Timers/state.lock": "",
        "Timers/start_day_plan.yml": {"date": last_day.isoformat(), "blocks": [{"name": "Deep Work", "minutes": 50}]},
        "logs/kairos_v2_decision_log_latest.md": "# Kairos v2 decision log\n\nNothing unusual.\n",
        "logs/conflict_log_20250101_063000.yml": [{"item": "Deep Work", "conflict": "overlap"}],
        "profile/profile.yml": {"nickname": "Sample", "welcome_message": "Good morning"},
    }
    for dp in plans[:2]:
        if dp.schedule is not None:
            other[f"archive/schedules/schedule_{dp.day.isoformat()}_{dp.day.strftime('%Y%m%d')}_063000.yml"] = \
                [{"name": "An earlier plan", "type": "habit", "duration": 10}]
    for t in ("habit", "task"):
        d = docs[t][0]
        other[f"examples/{folder_of[t].title()}/{slugify(name_of(d))}_example.yml"] = dict(d)

    stale = {dim: next(iter(LEVELS[dim])) for dim in DIMENSIONS}
    return Plan(user=user, start=start, items=docs, folders=folder_of, days=plans, ledger=ledger, balance=balance,
                current_status=dict(status_now), stale_current_status=stale, settings=settings, reviews=reviews,
                other=other)


def _legacy(blocks: list[dict[str, Any]], by_name: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """The same day as Chronos's legacy scheduler writes it: each block with
    ``parent`` (the block that holds it: a recursive alias once dumped),
    ``original_item_data``, ideal times; its buffers with ``is_buffer``."""
    def convert(b: dict[str, Any], parent: dict[str, Any] | None) -> dict[str, Any]:
        out = {k: v for k, v in b.items() if k != "children"}
        out.update({"parent": parent, "ideal_start_time": b.get("start_time"), "ideal_end_time": b.get("end_time"),
                    "depends_on": [], "is_parallel_item": False, "essential": False})
        item = by_name.get((str(b.get("name")), str(b.get("type"))))
        if item is not None:
            out["original_item_data"] = {"name": name_of(item), "duration": b.get("duration")}
        out["children"] = [convert(c, out) for c in b.get("children") or []]
        return out
    return [convert(b, None) for b in blocks]


def write_plan(plan: Plan) -> Path:
    """Write the folder a plan describes; returns its path."""
    user = plan.user
    for t, ds in plan.items.items():
        folder = user / plan.folders[t]
        for doc in ds:
            _dump(folder / f"{slugify(name_of(doc))}.yml", doc, sort_keys=False)
    for dp in plan.days:
        d = dp.day.isoformat()
        if dp.schedule is not None:
            _dump(user / "schedules" / f"schedule_{d}.yml", dp.schedule)
            if dp.shadow:
                _dump(user / "schedules" / f"schedule_{d}_kairos_v2_shadow.yml",
                      {"engine": "kairos_v2", "target_date": d, "generated_at": f"{d}T05:00:00",
                       "schedule": {"conceptual_schedule": {"conceptual_blocks": len(dp.schedule)}}})
            if dp.manual:
                _dump(user / "schedules" / f"manual_modifications_{d}.yml",
                      [{"action": "trim", "item_name": str(dp.schedule[0].get("name")), "amount": 5}])
        if dp.entries:
            _dump(user / "schedules" / "completions" / f"{d}.yml", {"entries": dp.entries},
                  sort_keys=dp.sorted_entries)
        history = {"date": d, "entries": dp.status}
        _dump(user / ("profile/Status" if dp.status_in_profile else "logs") / f"status_{d}.yml", history)
        if dp.status_copy_in_profile:
            _dump(user / "profile" / "Status" / f"status_{d}.yml", {"date": d, "entries": dp.status[:1]})
        if dp.timer:
            _dump(user / "Timers" / "sessions" / f"{d}.yml", {"entries": dp.timer})
        if dp.narrative is not None:
            (user / "logs" / "narratives").mkdir(parents=True, exist_ok=True)
            (user / "logs" / "narratives" / f"{d}.md").write_text(dp.narrative, encoding="utf-8")
    _dump(user / "Rewards" / "points.yml", {"balance": plan.balance, "ledger": plan.ledger})
    _dump(user / "current_status.yml", plan.current_status)
    _dump(user / "profile" / "current_status.yml", plan.stale_current_status)
    for name, doc in plan.settings.items():
        _dump(user / "Settings" / name, doc, sort_keys=False)
    for name, doc in plan.reviews.items():
        _dump(user / "Reviews" / name, doc)
    for name, doc in plan.other.items():
        path = user / name
        if isinstance(doc, str):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(doc, encoding="utf-8")
        else:
            _dump(path, doc)
    return user


def write_user_folder(root: str | Path, items: int = 300, days: int = 120, seed: int = 7,
                      start: date = date(2025, 1, 1)) -> Path:
    """Write a user folder under ``root`` (``root/User``) and return its path."""
    return write_plan(plan_user_folder(root, items, days, seed, start))
