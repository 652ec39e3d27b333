"""Configs, scenarios and helpers shared by the world tests (test_world_scheduler.py,
test_world_config.py, test_cli_world.py)."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import apsw
import numpy as np
from chronoledger.chronicle import Chronicle
from chronoledger.world import models, scheduler, store

ROOT = Path(__file__).resolve().parent.parent
WEEKEND = ROOT / "examples" / "scenarios" / "weekend_getaway.yaml"
FRIENDS = {"Ava": "coffee:0.8,hiking:0.6", "Ben": "cycling:0.9,coffee:0.4", "Cleo": "cooking:0.9,hiking:0.5"}
TABLES = ("agents", "interests", "relationships", "conversations", "conversation_turns", "memories", "locations",
          "activities", "runs", "agent_locations", "agent_schedules", "world_events", "daily_reports")

#: Three places, every trip 80 minutes: with 30-minute ticks a trip takes 3 ticks.
TRAVEL_CONFIG = """\
default_hours: {start_hour: 8, end_hour: 20, tick_minutes: 30}
locations:
  home:   {kind: home, capacity: 1000, open_hours: [0, 24]}
  office: {kind: office, capacity: 1000, open_hours: [0, 24]}
  cafe:   {kind: cafe, capacity: 1000, open_hours: [0, 24]}
location_graph:
  home: {office: 80, cafe: 80}
  office: {cafe: 80}
activities:
  work:   {category: work, location: office}
  coffee: {category: social, location: cafe}
  rest:   {category: family, location: home}
time_preferences:
  morning: [work, coffee]
  midday: [coffee, rest]
  afternoon: [work, coffee]
  evening: [rest, coffee]
guardrails: {max_actions_per_agent_per_day: 100, max_location_travel_per_day: 100}
"""

#: The same world with a cafe that holds one agent.
CAPACITY_CONFIG = TRAVEL_CONFIG.replace("cafe:   {kind: cafe, capacity: 1000", "cafe:   {kind: cafe, capacity: 1")

#: One place, one activity, nothing but duo chats: the same two agents talk at the same place every tick.
ONE_PLACE_CONFIG = """\
default_hours: {start_hour: 8, end_hour: 12, tick_minutes: 60}
locations:
  home: {kind: home, capacity: 10}
location_graph: {}
activities:
  chat: {category: social, location: home}
time_preferences: {}
action_weights: {move: 0, solo_reflection: 0, duo_chat: 1, group_meeting: 0, task_update: 0}
guardrails: {min_cooldown_between_duo_chats_minutes: 0}
"""


def write(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def rows(db: Path, sql: str, args=()) -> list[tuple]:
    conn = apsw.Connection(str(db))
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def dump(db: Path) -> dict[str, list[tuple]]:
    """Every row of every world table, in rowid order."""
    return {t: rows(db, f"SELECT * FROM {t} ORDER BY rowid") for t in TABLES}


def seed_friends(db: Path, names=("Ava", "Ben", "Cleo")) -> None:
    conn = store.connect(db)
    try:
        for n in names:
            store.seed_agent(conn, n, bio=f"{n} from the weekend", interests=FRIENDS[n])
    finally:
        conn.close()


def run_world(db: Path, config, *, days: int = 1, agents: int | None = None, seed: int = 0, scenario=None,
              **options) -> scheduler.RunResult:
    options.setdefault("report_format", "none")
    opts = scheduler.RunOptions(days=days, agents=agents, seed=seed, **options)
    return scheduler.run(db, config, models.make_model("offline"), opts, scenario)


def stamp(cfg, day: int, tick: int) -> str:
    """The simulated time of a tick, as the database writes it."""
    t = datetime.combine(cfg.start_date, datetime.min.time(), tzinfo=timezone.utc) + \
        timedelta(days=day - 1, minutes=cfg.start_hour * 60 + tick * cfg.tick_minutes)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def micros(cfg, day: int, tick: int) -> int:
    t = datetime.combine(cfg.start_date, datetime.min.time(), tzinfo=timezone.utc) + \
        timedelta(days=day - 1, minutes=cfg.start_hour * 60 + tick * cfg.tick_minutes)
    return int((t - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1))


def day_number(cfg, label: str) -> int:
    return (datetime.fromisoformat(label).date() - cfg.start_date).days + 1


def gmin(cfg, label: str, tick: int) -> int:
    """Minutes since the run's first midnight."""
    return (day_number(cfg, label) - 1) * 1440 + cfg.start_hour * 60 + tick * cfg.tick_minutes


def location_ids(db: Path) -> dict[str, int]:
    return dict(rows(db, "SELECT name, id FROM locations"))


def chronicle(path: Path) -> dict[str, np.ndarray]:
    with Chronicle.open(path) as ch:
        return ch.to_numpy()


def rewrite_chronicle(src: Path, dst: Path, edit=None) -> None:
    """Copy a run's event log record by record, block by block (the same
    blocks, so an unedited copy is the same log), after ``edit(columns)``."""
    with Chronicle.open(src) as ch:
        meta = ch.metadata["user"]
        cols = ch.to_numpy()
        counts = [b.records for b in ch.reader().blocks]
    if edit is not None:
        edit(cols)
    with Chronicle.open(dst, "w", schema="event", metadata=meta, block_records=65536) as out:
        start = 0
        for n in counts:
            part = {}
            for k, v in cols.items():
                v = v[start:start + n]
                if k.startswith("values.") and np.isnan(v).all():
                    continue
                part[k] = v
            part["payload"] = np.array([json.loads(p) if p else p for p in part["payload"]], dtype=object)
            out.extend(part)
            out.flush()
            start += n


def seed_family(db: Path, ava_interests: str = "chess:0.9") -> None:
    """Ava (a designer, whose family_json names Ben her spouse) and Ben (a developer), both into chess."""
    conn = store.connect(db)
    try:
        store.seed_agent(conn, "Ava", job="designer", interests=ava_interests, family={"spouse": "Ben"})
        store.seed_agent(conn, "Ben", job="developer", interests="chess:0.8")
    finally:
        conn.close()
