"""The run loop: days of ticks, every agent's action chosen at once per
tick, conversations through the language model, memories and relationship
changes, everything written to SQLite and to the run's chronicle, a
checkpoint after every whole tick, and a report after every day.

Determinism: one numpy generator (PCG64, from the seed) makes every random
choice, in a fixed order; times are simulated times, never the clock; ids
are assigned by the run.  The same seed, config, scenario and agents give
the same rows and the same chronicle bytes.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, TypeAlias, TypedDict

import apsw
import numpy as np
import zstandard

from chronoledger import core
from chronoledger import sqlite as db
from chronoledger.chronicle import Chronicle
from chronoledger.errors import ConfigError, CorruptDataError, NotFoundError
from chronoledger.world import actions as act
from chronoledger.world import recall
from chronoledger.world import reporting
from chronoledger.world import store
from chronoledger.world.config import ACTIONS, PERIOD_ENDS, PERIODS, Scenario, WorldConfig, parse_config, parse_scenario
from chronoledger.world.environment import Environment
from chronoledger.world.memory import MemoryStream, embedding_key, excerpt, importance, norm_hash, signature
from chronoledger.world.models import ChatRequest, LanguageModel, ModelError
from chronoledger.world.reporting import MAX_TRANSCRIPTS, DayTally, TallyState
from chronoledger.world.writer import TickWriter

if TYPE_CHECKING:                      # pragma: no cover
    from chronoledger.world.channel import ReportChannel

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_logger = logging.getLogger("chronoledger.world")
_ACTION_NAMES = np.array(ACTIONS, dtype=object)
_ZSTD_C = zstandard.ZstdCompressor(level=1)      # checkpoints: see WorldRun._checkpoint
_ZSTD_D = zstandard.ZstdDecompressor()


REPORT_FORMATS = ("markdown", "json", "both", "none")

#: A conversation of a tick: its members (positions), its action type (act.DUO or act.GROUP) and the
#: scripted prompt, if a scripted event made it.
Chat: TypeAlias = tuple[np.ndarray, int, str | None]
#: Whose a model request is: (conversation index, or _REFLECTION or _INSIGHT; round; agent position).
_Owner: TypeAlias = tuple[int, int, int]
_REFLECTION, _INSIGHT = -1, -2
#: A stay that ended this tick: (agent position, location index, global minute it began).
_Stay: TypeAlias = tuple[int, int, int]
#: (sql, columns, rows) for db.insert_many.
_InsertJob: TypeAlias = tuple[str, list[Any], int | None]
#: Keys of WorldRun.scripted: (day or None, tick), and ("day", day or None) for a day's events.
_ScriptKey: TypeAlias = tuple[int | str | None, int | None]


class _Scripted(TypedDict):
    """A scripted event as the ticks read it (see _scripted_index)."""
    agents: list[int]               # positions
    type: str                       # an action type
    location: str | None
    prompt: str | None
    activity: str | None
    tick: int


class TickResult(TypedDict):
    """What one tick did (WorldRun.tick): what the day's DayTally adds up."""
    acted: np.ndarray               # the positions of the agents that acted
    action: np.ndarray              # every agent's action code (act.NONE: none)
    activity: np.ndarray            # every agent's activity (index into the config's activities)
    loc: np.ndarray                 # per agent that acted: where it is, or is going
    chats: list[Chat]
    deltas: list[tuple[int, int, float]]        # relationship changes: (position, position, change)
    transcripts: dict[int, list[str]]           # conversation index -> its turns, for the first few only
    conv_base: int                  # the id of the tick's first conversation
    refused: np.ndarray             # every agent: the place (index) that turned it away this tick, or -1
    scripted: list["ScriptedOutcome"]           # what became of the tick's scripted events
    clock: str                      # the tick's time of day, "09:00"


class ScriptedOutcome(TypedDict):
    """What became of one scripted event (a day report lists them)."""
    tick: int
    type: str
    agents: list[str]               # the names the scenario gave
    location: str | None
    prompt: str | None
    held: bool                      # the chat or meeting took place / the move began / the action was taken
    took_part: list[str]            # who took part
    away: list[str]                 # on the way to its place, too late to take part
    busy: list[str]                 # travelling or past the day's cap when it came
    turned_away: list[str]          # a move a full place refused


class Checkpoint(TypedDict):
    """A run's state after a whole tick (runs.checkpoint_json; the arrays are in checkpoint_state)."""
    day: int
    tick: int
    rng: Mapping[str, Any]          # the generator's bit_generator.state
    next_conv: int
    slots_done: list[int]           # the day each scenario slot's action was last done (WorldRun.slot_done)
    records: int                    # records in the event log
    totals: dict[str, int]          # events, conversations, memories
    tally: TallyState


@dataclass
class RunOptions:
    days: int = 1
    agents: int | None = None               # the first N agents (made up, seeded, when the database has fewer)
    seed: int = 0
    chronicle: Path | None = None           # default: beside the database, <its name>-run-<id>.cmeta
    reports_dir: Path | None = None         # default: reports/ beside the database
    report_format: str = "both"             # markdown | json | both | none
    summary_only: bool = False
    progress: Callable[[int, int, int], None] | None = None      # (day, tick, ticks per day)
    first_conversation: int | None = None   # replay: the id the recorded run's conversations started at
    #: make up the agents ``agents`` asks for beyond those the database has (the command line asks with
    #: --invent-agents); they are marked invented and tied only to one another
    invent_agents: bool = True
    #: where each day's JSON report is POSTed (--report-channel), or None
    report_channel: "ReportChannel | None" = None

    def __post_init__(self) -> None:
        def whole(name: str, low: int, none_ok: bool = False) -> None:
            v = getattr(self, name)
            if (v is None and none_ok) or (isinstance(v, int) and not isinstance(v, bool) and low <= v < 2 ** 63):
                return
            raise ConfigError(f"RunOptions.{name}: {v!r} must be a whole number from {low}"
                              + (" (or None)" if none_ok else ""))
        whole("days", 1)
        whole("agents", 1, none_ok=True)
        whole("seed", 0)
        if self.report_format not in REPORT_FORMATS:
            raise ConfigError(f"RunOptions.report_format: {self.report_format!r} is not one of "
                              f"{', '.join(REPORT_FORMATS)}")
        self.chronicle = Path(self.chronicle) if self.chronicle is not None else None
        self.reports_dir = Path(self.reports_dir) if self.reports_dir is not None else None


@dataclass
class RunResult:
    run_id: int
    days: int
    agents: int
    agent_ticks: int
    events: int
    conversations: int
    memories: int
    chronicle: Path
    reports: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    agent_ticks_run: int = 0                # by this call (a resumed run did the rest before it stopped)


class _Agents:
    """The agents of a run, as arrays (index = position, by id)."""

    def __init__(self, conn: apsw.Connection, n: int | None):
        rows = conn.execute("SELECT id, name, bio, job, family_json FROM agents ORDER BY id" +
                            (f" LIMIT {int(n)}" if n else "")).fetchall()
        self.ids = np.array([r[0] for r in rows], dtype=np.int64)
        self.names = [store.as_text(r[1], "agents.name") for r in rows]
        self.index = {name: k for k, name in enumerate(self.names)}       # position by name
        self.bios = [store.as_text(r[2], "agents.bio") for r in rows]
        self.jobs = [store.as_text(r[3], "agents.job") for r in rows]
        self.family = [recall.family_pairs(r[4]) if r[4] not in (None, "{}", "[]") else [] for r in rows]
        self.family_lines = [tuple(f"{role}: {name}" for role, name in f) for f in self.family]
        self.pos = {int(i): k for k, i in enumerate(self.ids)}
        tags: dict[int, list[str]] = {}
        for aid, tag, score in conn.execute("SELECT agent_id, tag, score FROM interests ORDER BY agent_id, score DESC, tag"):
            tags.setdefault(aid, []).append(tag)
        self.interests = [tuple(tags.get(int(i), ())) for i in self.ids]
        self.interest_sets = [frozenset(t) for t in self.interests]      # topics and shared interests, per chat

    def __len__(self) -> int:
        return len(self.ids)

    def family_ties(self) -> list[tuple[int, int, str]]:
        """(from id, to id, role) for each family member an agent's family_json names who is in the run."""
        ids = self.ids.tolist()
        return [(ids[i], ids[j], role) for i, fam in enumerate(self.family) for role, name in fam
                if (j := self.index.get(name)) is not None and j != i]


def ensure_agents(conn: apsw.Connection, n: int, seed: int) -> None:
    """Make up agents (seeded personas, interests, a few relationships) until
    the database holds ``n``: large runs need not be seeded by hand.  They
    are marked ``{"invented": true}`` in their traits, and their relationships
    are with one another only, never with the agents a user seeded."""
    have = store.as_int(conn.execute("SELECT count(*) FROM agents").fetchall()[0][0], "count(agents)")
    if have >= n:
        return
    rng = np.random.default_rng([seed, 7919])
    jobs = np.array(["designer", "developer", "nurse", "teacher", "chef", "analyst", "writer", "mechanic", "student",
                     "lawyer"], dtype=object)
    tags = np.array(["coffee", "cycling", "books", "music", "running", "cooking", "chess", "gardening", "film",
                     "travel", "photography", "climbing", "history", "painting", "yoga", "startups"], dtype=object)
    # columns, not rows of tuples: a million made-up agents are written in seconds, in little memory
    with db.write_transaction(conn, "making up agents"):
        start = store.as_int(conn.execute("SELECT coalesce(max(id), 0) FROM agents").fetchall()[0][0], "agents.id")
        made = np.arange(start + 1, start + 1 + n - have, dtype=np.int64)
        job = jobs[rng.integers(0, len(jobs), len(made))]
        liked = tags[made % len(tags)]
        db.insert_columns(conn, "INSERT INTO agents (id, name, bio, job, family_json, traits_json, created_at) "
                                "VALUES (?, ?, ?, ?, '{}', '{\"invented\": true}', ?)",
                          [made, [f"Agent {i:05d}" for i in made.tolist()],
                           [f"A {j} who likes {t}." for j, t in zip(job.tolist(), liked.tolist())], job.tolist(),
                           store.SEED_TIME])
        picks = rng.integers(0, len(tags), (len(made), 3))
        scores = np.round(rng.uniform(0.3, 1.0, (len(made), 3)), 2)
        db.insert_columns(conn, "INSERT OR IGNORE INTO interests (agent_id, tag, score) VALUES (?, ?, ?)",
                          [np.repeat(made, 3), tags[picks.ravel()].tolist(), scores.ravel()])
        # friends among themselves: the user's agents are left alone
        a = np.repeat(made, 2)
        b = made[rng.integers(0, len(made), (len(made), 2)).ravel()]
        strength = np.round(rng.uniform(0.1, 0.6, len(a)), 2)
        keep = a != b
        a, b, strength = a[keep], b[keep], strength[keep]
        for x, y in ((a, b), (b, a)):
            db.insert_columns(conn, "INSERT OR IGNORE INTO relationships (from_agent_id, to_agent_id, kind, strength, "
                                    "updated_at) VALUES (?, ?, 'friend', ?, ?)", [x, y, strength, store.SEED_TIME])


class WorldRun:
    """One run of the world: set up by :func:`run`, driven tick by tick."""

    def __init__(self, conn: apsw.Connection, db_file: Path, config: WorldConfig, scenario: Scenario | None,
                 model: LanguageModel, options: RunOptions):
        self.conn, self.db_file, self.cfg, self.scenario, self.model, self.opt = \
            conn, db_file, config, scenario, model, options
        if config.memory.relevance == "embedding" and not model.embedding_model:     # refused before any write
            raise ConfigError(f"{config.source}: memory.relevance is embedding, and the {model.name} model makes "
                              f"no embeddings (give it an embedding model: --embedding-model)")
        self.env = Environment(config)
        if scenario:                          # refused before anything is written
            _check_scenario_agents(scenario, _names_of_run(conn, options.agents))
        store.world_init(conn, config)
        if options.agents:
            ensure_agents(conn, options.agents, options.seed)
        self.agents = _Agents(conn, options.agents)
        if len(self.agents) == 0:
            raise ConfigError(f"{db_file}: no agents; add some with `chronoledger world seed-agent` or run with --agents N")
        ties = self.agents.family_ties()
        if ties:                              # {"spouse": "Ben"} is a relationship, of that kind
            store.tie_families(conn, ties)
        self.loc_ids = np.array([conn.execute("SELECT id FROM locations WHERE name = ?", (n,)).fetchall()[0][0]
                                 for n in self.env.names], dtype=np.int64)
        self.act_names = config.activity_names
        self.act_ids = np.array([conn.execute("SELECT id FROM activities WHERE name = ?", (n,)).fetchall()[0][0]
                                 for n in self.act_names], dtype=np.int64)
        self.act_loc = np.array([self.env.index[config.activities[a].location] for a in self.act_names], dtype=np.int64)
        self.act_category = [config.activities[a].category for a in self.act_names]
        self.act_social = np.array([c == "social" for c in self.act_category], dtype=bool)
        self.rng = np.random.default_rng(options.seed)
        n = len(self.agents)
        self.loc = np.full(n, self.env.home, dtype=np.int64)
        self.dest = np.full(n, -1, dtype=np.int64)
        self.travel_left = np.zeros(n, dtype=np.int64)
        self.actions_today = np.zeros(n, dtype=np.int64)
        self.moves_today = np.zeros(n, dtype=np.int64)
        self.last_chat = np.full(n, -10 ** 9, dtype=np.int64)           # global minute of the last duo chat
        self.stay_since = np.zeros(n, dtype=np.int64)                   # global minute the current stay began
        self.plan = np.zeros((n, len(PERIODS)), dtype=np.int64)
        self._load_relationships()
        # what the agents remember, from before the run (and, resuming, from the run so far)
        self.memory = MemoryStream(n, config.memory)
        self.memory.load(store.memories_of(conn, self.agents.pos))
        #: with embedding relevance: vectors by text (asked once), and those asked since the log's last tick
        self.embedding = config.memory.relevance == "embedding"
        self._vectors: dict[str, np.ndarray] = {}
        self._embedded: list[tuple[str, np.ndarray]] = []
        if self.embedding:
            self.memory.set_vectors(self._embed(self.memory.texts_held()))
        self.name_sig = [signature(name) for name in self.agents.names]
        #: per place: the memory of being turned away by it (text, hash, importance, location id)
        self._refusals = []
        for name, lid in zip(self.env.names, self.loc_ids.tolist()):
            text = f"{recall.the_place(name)} was full and turned me away."
            self._refusals.append((text, norm_hash(text), importance("refused", text), lid))
        self.scripted = _scripted_index(scenario, self.agents) if scenario else {}
        if scenario:
            late = [e for e in scenario.events if e.day is not None and e.day > options.days]
            if late:
                raise ConfigError(f"{scenario.source}: a scripted event on day {late[0].day} would never fire in a "
                                  f"run of {options.days} day(s)")
        self.overrides = self._schedule_overrides()
        self.run_id = 0
        self.next_conv = options.first_conversation or store.as_int(
            conn.execute("SELECT coalesce(max(id), 0) + 1 FROM conversations").fetchall()[0][0], "conversations.id")
        self.totals = {"events": 0, "conversations": 0, "memories": 0}
        # memories kept (not duplicates): known only once written, so counted by the writer's thread
        self.memories_total = 0
        self.day_memories: Counter[str] = Counter()
        # set by run() and resume() for as long as the run is driven (_drive)
        self.writer: TickWriter[_TickJob]
        self.chronicle: Chronicle               # the run's event log
        self.topics: list[str] = []                # what each of the tick's conversations is about
        self.ticks_run = 0                         # by this process (a resumed run counts from its checkpoint)
        self.after_commit: Callable[[], None] = lambda: None
        self.tally = DayTally(len(self.agents))      # the day's report figures (each day starts a new one)
        self.pending_schedules: list[Any] = []     # the day's agent_schedules columns (plan_day), until its first tick
        self._stamps: dict[int, str] = {}

    # --- relationships -------------------------------------------------------
    def _load_relationships(self) -> None:
        pos = self.agents.pos
        self.rel: dict[tuple[int, int], float] = {}
        self.rel_kind: dict[tuple[int, int], str] = {}
        for a, b, kind, s in self.conn.execute("SELECT from_agent_id, to_agent_id, kind, strength FROM relationships "
                                               "ORDER BY from_agent_id, to_agent_id"):
            if a in pos and b in pos:
                self.rel[(pos[a], pos[b])] = s
                self.rel_kind[(pos[a], pos[b])] = kind
        self._best_friends()

    def _best_friends(self) -> None:
        """Each agent's strongest relationship (ties: the lowest other position), or -1."""
        bf = np.full(len(self.agents), -1, dtype=np.int64)
        if self.rel:
            pairs = np.fromiter((x for k in self.rel for x in k), dtype=np.int64, count=2 * len(self.rel)).reshape(-1, 2)
            strength = np.fromiter(self.rel.values(), dtype=np.float64, count=len(self.rel))
            order = np.lexsort((pairs[:, 1], -strength, pairs[:, 0]))          # by agent, strongest first
            a = pairs[order, 0]
            first = np.ones(len(a), dtype=bool)
            first[1:] = a[1:] != a[:-1]
            bf[a[first]] = pairs[order[first], 1]
        self.best_friend = bf

    # --- days --------------------------------------------------------------
    def day_label(self, day: int) -> str:
        return (self.cfg.start_date + timedelta(days=day - 1)).isoformat()

    def _stamp(self, day: int, tick: int) -> tuple[str, int]:
        """(ISO text, microseconds) of a tick's simulated time."""
        t = datetime.combine(self.cfg.start_date, datetime.min.time(), tzinfo=timezone.utc) + \
            timedelta(days=day - 1, minutes=self.cfg.tick_minute_of_day(tick))
        return t.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), int((t - _EPOCH) // timedelta(microseconds=1))

    def _clock_of(self, day: int, tick: int) -> str:
        """A tick's time of day: ``09:00``."""
        m = self.cfg.tick_minute_of_day(tick)
        return f"{m // 60:02d}:{m % 60:02d}"

    def _gmin(self, day: int, tick: int) -> int:
        return (day - 1) * 1440 + self.cfg.tick_minute_of_day(tick)

    def plan_day(self, day: int) -> list[Any]:
        """Each agent's planned activity per part of the day (time
        preferences), scenario schedules first; the agent_schedules rows, as
        columns for :func:`db.insert_columns`."""
        cfg, n = self.cfg, len(self.agents)
        label = self.day_label(day)
        for k, period in enumerate(PERIODS):
            choices = np.array([self.act_names.index(a) for a in cfg.time_preferences[period]], dtype=np.int64)
            self.plan[:, k] = choices[self.rng.integers(0, len(choices), n)]
        hours = self._slot_hours()
        ids = self.agents.ids
        agent = [np.tile(ids, len(hours))]
        hour = [np.repeat(np.array([h for _, h in hours], dtype=np.int64), n)]
        act_ix = self.plan[:, [k for k, _ in hours]].T.ravel()           # slot by slot, agents in order
        activity = [self.act_ids[act_ix]]
        location = [self.loc_ids[self.act_loc[act_ix]]]
        if self.scenario:
            # the hours a scenario slot covers (from its hour to the agent's next slot) are the scenario's:
            # the generated rows for them are left out
            slot_hours = np.array([h for _, h in hours], dtype=np.int64)
            keep = np.ones(n * len(hours), dtype=bool)
            for name, slots in self.scenario.schedules.items():
                i = self.agents.index.get(name)
                if i is not None:
                    for k, slot in enumerate(slots):
                        end = slots[k + 1]["hour"] if k + 1 < len(slots) else 24
                        covered = (slot_hours >= slot["hour"]) & (slot_hours < end)
                        keep[np.flatnonzero(covered) * n + i] = False
            agent, hour = [agent[0][keep]], [hour[0][keep]]
            activity, location = [activity[0][keep]], [location[0][keep]]
        source = ["generated"] * int(sum(len(a) for a in agent))
        if self.scenario:
            for name, slots in self.scenario.schedules.items():
                i = self.agents.index.get(name)
                if i is None:
                    continue
                for slot in slots:
                    agent.append(ids[i:i + 1])
                    hour.append(np.array([slot["hour"]], dtype=np.int64))
                    activity.append(self.act_ids[[self.act_names.index(slot["activity"])]])
                    location.append(self.loc_ids[[self.env.index[slot["location"]]]])
                    source.append("scenario")
        return [self.run_id, np.concatenate(agent), label, np.concatenate(hour), np.concatenate(activity),
                np.concatenate(location), None, source]

    def _schedule_overrides(self) -> dict[int, tuple[np.ndarray, ...]]:
        """Scenario schedules, by hour: (agents, activities, locations,
        actions, slots).  A slot holds from its hour until the agent's next
        slot; a slot that names an action type (the sandbox's ``duo_chat`` at
        the Park) has it done once a day, at the first tick the agent is at
        the slot's place (its code, else -1; ``slots``: the slot's number)."""
        self.slot_done = np.zeros(0, dtype=np.int64)          # the day each slot's action was last done
        if not self.scenario:
            return {}
        index = self.agents.index
        by_hour: dict[int, list[tuple[int, int, int, int, int]]] = {}
        n_slots = 0
        for name, slots in sorted(self.scenario.schedules.items()):
            i = index[name]
            for k, slot in enumerate(slots):
                end = slots[k + 1]["hour"] if k + 1 < len(slots) else 24
                kind = ACTIONS.index(slot["action"]) if slot.get("action") else act.NONE
                for hour in range(slot["hour"], end):
                    by_hour.setdefault(hour, []).append((i, self.act_names.index(slot["activity"]),
                                                         self.env.index[slot["location"]], kind, n_slots))
                n_slots += 1
        self.slot_done = np.zeros(n_slots, dtype=np.int64)
        out = {}
        for h, rows in by_hour.items():
            out[h] = tuple(np.array(col, dtype=np.int64) for col in zip(*rows))
        return out

    def _scripted_activity(self, ev: _Scripted, members: np.ndarray, hour: int, planned: np.ndarray) -> np.ndarray:
        """What the members of a scripted event are doing: the event's
        activity; else what the scenario's schedule has them do in that
        hour at the event's place; else what happens at that place; else
        their plan."""
        if ev["activity"]:
            return np.full(len(members), self.act_names.index(ev["activity"]), dtype=np.int64)
        out = planned.copy()
        place = self.env.index[ev["location"]] if ev["location"] is not None else -1
        if place >= 0:
            here = np.flatnonzero(self.act_loc == place)
            if len(here):
                out[:] = here[0]
        if hour in self.overrides:
            who, what, where = self.overrides[hour][:3]
            slot_of = {i: a for i, a, w in zip(who.tolist(), what.tolist(), where.tolist()) if place in (-1, w)}
            for k, i in enumerate(members.tolist()):
                if i in slot_of:
                    out[k] = slot_of[i]
        return out

    def _slot_hours(self) -> list[tuple[int, int]]:
        """(period index, first hour) of each part of the day that falls within the day's hours."""
        out = []
        for k, end in enumerate(PERIOD_ENDS):
            hour = max(PERIOD_ENDS[k - 1] if k else 0, self.cfg.start_hour)
            if hour < min(end, self.cfg.end_hour):
                out.append((k, hour))
        return out

    # --- one tick ----------------------------------------------------------
    def tick(self, day: int, tick: int) -> TickResult:
        cfg, env, rng = self.cfg, self.env, self.rng
        n = len(self.agents)
        hour = cfg.tick_hour(tick)
        gmin = self._gmin(day, tick)
        label = self.day_label(day)
        stamp, micros = self._stamp(day, tick)
        rails = cfg.guardrails

        # trips under way advance; arrivals are free this tick
        travelling = self.travel_left > 0
        self.travel_left[travelling] -= 1
        arrived = travelling & (self.travel_left == 0)
        stays: list[_Stay] = []
        if arrived.any():
            a = np.flatnonzero(arrived)
            self.loc[a] = self.dest[a]
            self.dest[a] = -1
            self.stay_since[a] = gmin
        action = np.full(n, act.NONE, dtype=np.int64)
        free = (self.travel_left == 0) & (self.actions_today < rails["max_actions_per_agent_per_day"])
        activity = self.plan[:, PERIODS.index(cfg.period(hour))].copy()
        partner = np.full(n, -1, dtype=np.int64)
        conv_of = np.full(n, -1, dtype=np.int64)
        move_to = np.full(n, -1, dtype=np.int64)
        refused_at = np.full(n, -1, dtype=np.int64)       # a full place that turned the agent away
        self.refused_at = refused_at
        prompts: dict[int, str] = {}

        # appointments: agents due at a scripted meeting's place later today leave in time to be there
        # and, once there, wait for it (they still talk, reflect and work, but do not wander off)
        pinned = np.zeros(n, dtype=bool)
        for ev in self.scripted.get(("day", day), []) + self.scripted.get(("day", None), []):
            if ev["tick"] <= tick or ev["type"] not in ("duo_chat", "group_meeting"):     # chats have a place
                continue
            place = _event_place(env, ev)
            m = np.array(ev["agents"], dtype=np.int64)
            m = m[free[m]]
            pinned[m[self.loc[m] == place]] = True
            away = m[self.loc[m] != place]
            due = away[ev["tick"] - tick <= env.travel_ticks[self.loc[away], place]]
            action[due] = act.MOVE
            move_to[due] = place
            free[due] = False

        # scripted events of this tick go first; what became of each goes to the day's report
        forced_groups: list[tuple[np.ndarray, int, str | None]] = []
        outcomes: list[ScriptedOutcome] = []
        names = self.agents.names
        for ev in self.scripted.get((day, tick), []) + self.scripted.get((None, tick), []):
            members = np.array([i for i in ev["agents"] if free[i]], dtype=np.int64)
            busy = [names[i] for i in ev["agents"] if not free[i]]
            outcome: ScriptedOutcome = {"tick": tick, "type": ev["type"], "agents": [names[i] for i in ev["agents"]],
                                        "location": ev["location"], "prompt": ev["prompt"], "held": False,
                                        "took_part": [], "away": [], "busy": busy, "turned_away": []}
            outcomes.append(outcome)
            if len(members) == 0:
                continue
            kind = ACTIONS.index(ev["type"])
            free[members] = False
            if kind == act.MOVE:                                 # a move has a place (config checks it)
                place = _event_place(env, ev)
                there = self.loc[members] == place
                action[members[there]] = act.TASK                # already there: no trip
                action[members[~there]] = act.MOVE
                move_to[members[~there]] = place
                outcome["held"], outcome["took_part"] = True, [names[i] for i in members.tolist()]
            elif kind in (act.DUO, act.GROUP) and len(members) >= 2:
                # a meeting at its place; who is still elsewhere (late, or turned away) goes there
                place = _event_place(env, ev)
                away = members[self.loc[members] != place]
                action[away] = act.MOVE
                move_to[away] = place
                outcome["away"] = [names[i] for i in away.tolist()]
                members = members[self.loc[members] == place]
                outcome["took_part"] = [names[i] for i in members.tolist()]
                if len(members) >= 2:
                    forced_groups.append((members, kind, ev.get("prompt")))
                    action[members] = kind
                    outcome["held"] = True
                else:
                    action[members] = act.REFLECT
            else:
                outcome["held"], outcome["took_part"] = True, [names[i] for i in members.tolist()]
                action[members] = kind
                for i in members:
                    prompts[int(i)] = ev.get("prompt") or ""
            activity[members] = self._scripted_activity(ev, members, hour, activity[members])

        # planned activity elsewhere: go there (if it is open and the day's travel allows); a scenario's
        # schedule names both the activity and the place
        target = self.act_loc[activity]
        if hour in self.overrides:
            who, what, where, doing, slot = self.overrides[hour]
            keep = free[who]
            activity[who[keep]] = what[keep]
            target[who[keep]] = where[keep]
            # a slot's action type, done once the agent is at the slot's place (a chat or a meeting with
            # whoever else is there for one; alone, it is a reflection), once a day
            now = keep & (doing != act.NONE) & (self.loc[who] == where) & (self.slot_done[slot] != day)
            action[who[now]] = doing[now]
            free[who[now]] = False
            self.slot_done[slot[now]] = day
        can_move = (self.moves_today < rails["max_location_travel_per_day"]) & ~pinned
        goes = free & (self.loc != target) & env.open_at[hour][target] & can_move
        action[goes] = act.MOVE
        move_to[goes] = target[goes]
        free &= ~goes

        # a social activity with company at hand is a conversation: agents at the place of a social
        # activity they have planned, with another such agent there, talk (paired below)
        social_here = free & self.act_social[activity] & (self.loc == target) & \
            (gmin - self.last_chat >= rails["min_cooldown_between_duo_chats_minutes"])
        if social_here.any():
            at = self.loc[social_here]
            company = np.bincount(at, minlength=len(env.names))[at] >= 2
            talkers = np.flatnonzero(social_here)[company]
            action[talkers] = act.DUO
            free[talkers] = False

        # the rest choose by weights, within the guardrails
        rest = np.flatnonzero(free)
        if len(rest):
            allowed = np.ones((len(rest), len(ACTIONS)), dtype=np.float64)
            allowed[:, act.MOVE] = can_move[rest]
            cooled = gmin - self.last_chat[rest] >= rails["min_cooldown_between_duo_chats_minutes"]
            allowed[:, act.DUO] = cooled
            weights = np.array([cfg.action_weights[a] for a in ACTIONS])
            action[rest] = act.choose(rng, weights, allowed)
            movers = rest[action[rest] == act.MOVE]
            if len(movers):                      # somewhere open and elsewhere
                open_now = np.flatnonzero(env.open_at[hour])
                pick = open_now[rng.integers(0, len(open_now), len(movers))]
                stay = pick == self.loc[movers]
                action[movers[stay]] = act.REFLECT
                move_to[movers[~stay]] = pick[~stay]

        # duo chats in pairs at one place, groups of 3-6
        duo = np.flatnonzero(action == act.DUO)
        scripted_members = np.concatenate([g[0] for g in forced_groups]) if forced_groups else np.zeros(0, np.int64)
        duo = np.setdiff1d(duo, scripted_members)
        pairs, single = act.pair_up(rng, duo, self.loc, self.best_friend)
        action[single] = act.REFLECT
        grp = np.setdiff1d(np.flatnonzero(action == act.GROUP), scripted_members)
        groups, lone = act.form_groups(rng, grp, self.loc)
        action[lone] = act.TASK
        chats: list[Chat] = [(g, k, p) for g, k, p in forced_groups] + [(p, act.DUO, None) for p in pairs] + \
            [(g, act.GROUP, None) for g in groups]
        # max_concurrent_chats bounds the model calls in flight (the model's own queue), never what
        # happens: the same seed gives the same world whatever the cap (the plan: "--max-concurrent-chats N
        # to bound simultaneous LLM calls")

        # moves: capacity first come first served, trips take ticks
        movers = np.flatnonzero(action == act.MOVE)
        if len(movers):
            ok = env.admit(movers, move_to, env.occupancy(self.loc, self.dest))
            blocked = movers[~ok]
            action[blocked] = act.TASK
            refused_at[blocked] = move_to[blocked]
            move_to[blocked] = -1                       # turned away: still where it was
            movers = movers[ok]
            origin = self.loc[movers].copy()
            dest = move_to[movers]
            ticks = env.travel_ticks[origin, dest]
            for a, o, s in zip(movers.tolist(), origin.tolist(), self.stay_since[movers].tolist()):
                stays.append((a, o, s))
            self.moves_today[movers] += 1
            now_there = ticks == 0
            self.loc[movers[now_there]] = dest[now_there]
            self.stay_since[movers[now_there]] = gmin
            self.dest[movers[~now_there]] = dest[~now_there]
            self.travel_left[movers[~now_there]] = ticks[~now_there]

        # conversations and reflections through the model
        reflect = np.flatnonzero(action == act.REFLECT)
        self.topics = [_topic(self.agents, members.tolist()) for members, _, _ in chats]
        requests, owners, texts = self._talk(day, tick, chats, reflect, activity, prompts, conv_of, partner)
        for members, kind, _ in chats:
            if kind == act.DUO:
                self.last_chat[members] = gmin
        acted = action != act.NONE
        self.actions_today[acted] += 1
        for outcome in outcomes:                 # a scripted move a full place refused did not happen
            if outcome["type"] == "move":
                outcome["turned_away"] = [n for n in outcome["took_part"] if refused_at[self.agents.index[n]] >= 0]
                outcome["held"] = outcome["held"] and not outcome["turned_away"]
        self.outcomes = outcomes
        return self._write_tick(day, tick, label, stamp, micros, action, activity, move_to, partner, conv_of, chats,
                                reflect, requests, owners, texts, stays)

    def _talk(self, day: int, tick: int, chats: list[Chat], reflect: np.ndarray, activity: np.ndarray,
              prompts: dict[int, str], conv_of: np.ndarray, partner: np.ndarray
              ) -> tuple[list[ChatRequest], list[_Owner], list[str]]:
        """Every turn of the tick's conversations, reflections and (at the
        day's last tick) insights, from the model: round 0 of every chat with
        the reflections and insights in one batch, then round 1 of the duo
        chats, which see round 0 (``history``).  Returns (requests, owners,
        texts) in conversation order, reflections then insights last; owners
        are (conversation index, or REFLECTION or INSIGHT; round; agent)."""
        last = tick == self.cfg.ticks_per_day - 1
        insight = np.flatnonzero(self.memory.pending >= self.cfg.memory.reflect_threshold) if last else reflect[:0]
        first, owners0 = self._requests(day, tick, chats, reflect, insight, activity, prompts, conv_of, partner, 0,
                                        None)
        texts0 = self._complete(first)
        history: dict[int, list[str]] = {}
        for (c, _r, i), text in zip(owners0, texts0):
            if c >= 0:
                history.setdefault(c, []).append(f"{self.agents.names[i]}: {text}")
        second, owners1 = self._requests(day, tick, chats, reflect, insight, activity, prompts, conv_of, partner, 1,
                                         history)
        texts1 = self._complete(second)
        turns: dict[int, list[tuple[ChatRequest, _Owner, str]]] = {}
        for req, owner, text in zip(first + second, owners0 + owners1, texts0 + texts1):
            turns.setdefault(owner[0], []).append((req, owner, text))
        ordered = [t for c in sorted(k for k in turns if k >= 0) for t in turns[c]] + turns.get(_REFLECTION, []) + \
            turns.get(_INSIGHT, [])
        return [t[0] for t in ordered], [t[1] for t in ordered], [t[2] for t in ordered]

    def _complete(self, requests: list[ChatRequest]) -> list[str]:
        texts = self.model.complete(requests) if requests else []
        if len(texts) != len(requests) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ModelError(f"model {self.model.name}: returned {len(texts)} texts for {len(requests)} requests, "
                             f"or an empty one")
        return texts

    def _recall(self, micros: int, chats: list[Chat], reflect: np.ndarray, insight: np.ndarray, place: list[str],
                doing: list[str]) -> dict[tuple[int, int], tuple[str, ...]]:
        """What each speaker of the tick recalls, by (conversation index, or
        REFLECTION or INSIGHT; agent): the memories that best fit who they
        are with, where, doing what, about what; for an insight, the most
        important and recent ones."""
        mem, ag = self.memory, self.agents
        now = micros // 60_000_000
        who: list[int] = []
        query: list[int] = []
        keys: list[tuple[int, int]] = []
        name_sig = self.name_sig
        for c, (group, _kind, _prompt) in enumerate(chats):
            members = group.tolist()
            about = signature(self.topics[c])
            for i in members:
                q = about | signature(place[i]) | signature(doing[i])
                for j in members:
                    if j != i:
                        q |= name_sig[j]
                who.append(i)
                query.append(q)
                keys.append((c, i))
        for i in reflect.tolist():
            interests = ag.interests[i]
            who.append(i)
            query.append(signature(interests[0] if interests else doing[i]) | signature(place[i]) |
                         signature(doing[i]))
            keys.append((_REFLECTION, i))
        query_vecs = None
        if self.embedding and who:
            # what the speaker is about to do, in words, against each memory's words
            asks = [self._query_text(c, i, place, doing) for c, i in keys]
            vecs = self._embed(asks)
            query_vecs = np.stack([vecs[a] for a in asks])
        found = mem.retrieve(np.array(who, dtype=np.int64), np.array(query, dtype=np.uint64), now,
                             query_vecs=query_vecs)
        out = {key: tuple(texts) for key, texts in zip(keys, found)}
        if len(insight):
            deep = mem.retrieve(insight, np.zeros(len(insight), dtype=np.uint64), now,
                                k=self.cfg.memory.reflect_memories, relevance=False)
            out.update({(_INSIGHT, i): tuple(texts) for i, texts in zip(insight.tolist(), deep)})
        return out

    def _query_text(self, c: int, i: int, place: list[str], doing: list[str]) -> str:
        ag = self.agents
        if c == _REFLECTION:
            return f"{ag.interests[i][0] if ag.interests[i] else doing[i]}; {doing[i]} at {place[i]}"
        others = ", ".join(ag.names[j] for j in self._chats[c][0].tolist() if j != i)
        return f"{self.topics[c]}; with {others}; {doing[i]} at {place[i]}"

    def _embed(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The unit vectors of ``texts`` from the model, each text asked once
        in a run; what is asked is logged with the tick (a replay serves it)."""
        vectors = self._vectors
        new = list(dict.fromkeys(t for t in texts if t not in vectors))
        if new:
            got = np.asarray(self.model.embed(new), dtype=np.float32)
            if got.ndim != 2 or got.shape[0] != len(new):
                raise ModelError(f"model {self.model.name}: returned {got.shape[0] if got.ndim else 0} vectors for "
                                 f"{len(new)} texts")
            for text, vec in zip(new, got):
                vectors[text] = vec
                self._embedded.append((text, vec))
        return {t: vectors[t] for t in texts}

    def _relations(self, i: int, members: list[int]) -> tuple[str, ...]:
        names, rel, kinds = self.agents.names, self.rel, self.rel_kind
        return tuple(recall.relation_line(names[j], kinds.get((i, j)), rel.get((i, j))) for j in members if j != i)

    def _requests(self, day: int, tick: int, chats: list[Chat], reflect: np.ndarray, insight: np.ndarray,
                  activity: np.ndarray, prompts: dict[int, str], conv_of: np.ndarray, partner: np.ndarray, rnd: int,
                  history: dict[int, list[str]] | None) -> tuple[list[ChatRequest], list[_Owner]]:
        ag, env = self.agents, self.env
        requests: list[ChatRequest] = []
        owners: list[_Owner] = []
        base = (self.opt.seed * 1_000_003 + day * 10_007 + tick) * 1_000_003
        # plain lists: indexing numpy arrays one element at a time costs more than the rest of a request
        place = [env.names[x] for x in self.loc.tolist()]
        doing = [self.act_names[x] for x in activity.tolist()]
        stamp, micros = self._stamp(day, tick)
        clock = recall.clock_text(datetime.fromisoformat(stamp[:19]))
        if rnd == 0:                # a duo chat's second round recalls what its first did, standing as it did
            self._chats = chats
            self._recalled = self._recall(micros, chats, reflect, insight, place, doing)
            self._stands: dict[tuple[int, int], tuple[str, ...]] = {}
        recalled, stands = self._recalled, self._stands
        family = ag.family_lines
        for c, (group, kind, prompt) in enumerate(chats):
            if rnd == 1 and kind != act.DUO:      # groups speak once; duo chats answer each other
                continue
            conv = self.next_conv + c
            members = group.tolist()
            names = [ag.names[i] for i in members]
            topic = self.topics[c]
            if rnd == 0:
                for i in members:
                    conv_of[i] = conv
                if kind == act.DUO:
                    partner[members[0]], partner[members[1]] = members[1], members[0]
            seen = tuple(history.get(c, ())) if history else ()
            for k, i in enumerate(members):
                if rnd == 0:
                    stands[(c, i)] = relations = self._relations(i, members)
                else:
                    relations = stands[(c, i)]
                req = ChatRequest(ACTIONS[kind] if prompt is None else "scripted", names[k], ag.bios[i],
                                  ag.jobs[i], ag.interests[i], tuple(n for n in names if n != names[k]),
                                  place[i], doing[i], topic, prompt, rnd,
                                  (base + conv * 131 + rnd * 17 + k) & 0xFFFFFFFFFFFFFFFF, seen,
                                  recalled[(c, i)], relations, family[i], clock)
                requests.append(req)
                owners.append((c, rnd, i))
        if rnd == 0:
            for i in reflect.tolist():
                req = ChatRequest("solo_reflection", ag.names[i], ag.bios[i], ag.jobs[i], ag.interests[i], (),
                                  place[i], doing[i], ag.interests[i][0] if ag.interests[i] else doing[i],
                                  prompts.get(i), 0, (base * 7 + i * 2_654_435_761) & 0xFFFFFFFFFFFFFFFF, (),
                                  recalled[(_REFLECTION, i)], (), family[i], clock)
                requests.append(req)
                owners.append((_REFLECTION, 0, i))
            for i in insight.tolist():
                req = ChatRequest("insight", ag.names[i], ag.bios[i], ag.jobs[i], ag.interests[i], (),
                                  place[i], doing[i], ag.interests[i][0] if ag.interests[i] else "the people around me",
                                  None, 0, (base * 11 + i * 2_654_435_761 + 1) & 0xFFFFFFFFFFFFFFFF, (),
                                  recalled[(_INSIGHT, i)], (), family[i], clock)
                requests.append(req)
                owners.append((_INSIGHT, 0, i))
        return requests, owners

    def _write_tick(self, day: int, tick: int, label: str, stamp: str, micros: int, action: np.ndarray,
                    activity: np.ndarray, move_to: np.ndarray, partner: np.ndarray, conv_of: np.ndarray,
                    chats: list[Chat], reflect: np.ndarray, requests: list[ChatRequest], owners: list[_Owner],
                    texts: list[str], stays: list[_Stay]) -> TickResult:
        ag, env = self.agents, self.env
        run, model = self.run_id, self.model.name
        acted = np.flatnonzero(action != act.NONE)
        # conversations, their turns, memories and relationship changes, as columns for
        # db.insert_columns; numpy arrays are read as lists once, since one element at a time
        # they cost more than the work done with them
        conv_rows: list[tuple[int, int, str, int, str, str, int, str, str]] = []
        rel_changes: dict[tuple[int, int], float] = {}
        turn_conv, turn_round, turn_agent, turn_text = [], [], [], []
        transcripts: dict[int, list[str]] = {}
        room = reporting_room(self.tally)              # the report keeps the day's first few transcripts only
        ids, names_of, loc_now = ag.ids.tolist(), ag.names, self.loc.tolist()
        loc_ids, place_names = self.loc_ids.tolist(), env.names
        made = recall.TickMemories()                   # the tick's memories, in the order they are made
        thoughts: list[tuple[int, str]] = []
        insights: list[tuple[int, str]] = []
        said: dict[int, list[tuple[str, str]]] = {}    # conversation index -> (name, text) of its turns
        first_conv = self.next_conv
        for (c, r, i), text in zip(owners, texts):
            if c < 0:
                (thoughts if c == _REFLECTION else insights).append((i, text))
                continue
            turn_conv.append(first_conv + c)
            turn_round.append(r)
            turn_agent.append(ids[i])
            turn_text.append(text)
            said.setdefault(c, []).append((names_of[i], text))
            if c < room:
                transcripts.setdefault(c, []).append(f"{names_of[i]}: {text}")
        n_pairs = sum(len(m) * (len(m) - 1) // 2 for m, _, _ in chats)
        disagree = (self.rng.random(n_pairs) < 0.15).tolist()       # one draw per pair, in chat order
        k_pair = 0
        rel, kinds = self.rel, self.rel_kind
        activity_of = activity.tolist()
        for c, (group, kind, prompt) in enumerate(chats):
            conv = first_conv + c
            members = group.tolist()
            topic = self.topics[c]
            kind_name = "scripted" if prompt is not None else ACTIONS[kind]
            where = loc_now[members[0]]
            conv_rows.append((conv, run, label, tick, kind_name, topic, loc_ids[where], model, stamp))
            names = [names_of[i] for i in members]
            shared = [ag.interest_sets[i] for i in members]
            step = 0.04 if kind == act.DUO else 0.02
            crossed: set[int] = set()                                    # members who disagreed with someone
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    delta = step * (1 + len(shared[x] & shared[y]))
                    if disagree[k_pair]:                                # a disagreement
                        delta = -delta
                        crossed.update((members[x], members[y]))
                    k_pair += 1
                    key = (members[x], members[y])
                    rel_changes[key] = rel_changes.get(key, 0.0) + delta
            # what each member remembers of it: what another said, with whom it was (as they stood before it)
            place = place_names[where]
            meta = f'{{"conversation":{conv},"day":"{label}","tick":{tick}}}'
            turns = said.get(c, [])
            for i in members:
                others = [n for n in names if n != names_of[i]]
                text = recall.chat_memory(kind_name, names_of[i], others, turns, place,
                                          self.act_names[activity_of[i]], topic, prompt)
                was = [(kinds.get((i, j)), rel.get((i, j))) for j in members if j != i]
                mkind, imp = recall.chat_importance(
                    kind_name, text, family=any(k is not None and k not in recall.NOT_FAMILY for k, _ in was),
                    close=any(s is not None and s >= 0.6 for _, s in was),
                    first_meeting=any(s is None for _, s in was), disagreement=i in crossed,
                    scripted=prompt is not None)
                made.add(i, mkind, text, imp, meta)
        rel_from, rel_to, rel_kind, rel_strength = [], [], [], []
        deltas = []
        for (a, b), d in rel_changes.items():                # made in chat order: deterministic
            for x, y in ((a, b), (b, a)):
                v = min(1.0, max(-1.0, rel.get((x, y), 0.0) + d))
                rel[(x, y)] = v
                rel_from.append(ids[x])
                rel_to.append(ids[y])
                known = kinds.get((x, y))
                if known is None:                          # a first meeting: as the database will have it
                    kinds[(x, y)] = known = "acquaintance"
                rel_kind.append(known)
                rel_strength.append(v)
            deltas.append((a, b, d))
        # world events: one per agent that acted, built column by column (most carry no metadata)
        act_col = activity[acted]
        loc_col = np.where(move_to[acted] >= 0, move_to[acted], self.loc[acted])
        meta_col = ["{}"] * len(acted)
        refused = self.refused_at
        special = np.flatnonzero((conv_of[acted] >= 0) | (action[acted] == act.MOVE) | (refused[acted] >= 0))
        who = acted[special]
        for k, i, ref, cv, pt, a, tl in zip(special.tolist(), who.tolist(), refused[who].tolist(), conv_of[who].tolist(),
                                            partner[who].tolist(), action[who].tolist(), self.travel_left[who].tolist()):
            parts = []
            if ref >= 0:
                parts.append(f'"refused_by":{loc_ids[ref]}')
            if cv >= 0:
                parts.append(f'"conversation":{cv}')
            if pt >= 0:
                parts.append(f'"partner":{ids[pt]}')
            if a == act.MOVE:
                parts.append(f'"travel_ticks":{tl}')
            meta_col[k] = "{" + ",".join(parts) + "}"
        n_ev = len(acted)
        stamps = self._minute_stamp
        jobs: list[_InsertJob] = []                  # for db.insert_many, in order
        if self.pending_schedules:                   # a new day's plan commits with its first tick, or not at all
            jobs.append((_SQL_SCHEDULES, self.pending_schedules, None))
            self.pending_schedules = []
        jobs += [
            (_SQL_EVENTS, [run, ag.ids[acted], label, tick, _ACTION_NAMES[action[acted]].tolist(),
                           self.act_ids[act_col], self.loc_ids[loc_col], meta_col, stamp], n_ev),
            (_SQL_CONVERSATIONS, [list(c) for c in zip(*conv_rows)] if conv_rows else [None] * 9, len(conv_rows)),
            (_SQL_TURNS, [turn_conv, turn_round, turn_agent, "agent", turn_text, model], len(turn_conv))]
        jobs += [
            self._remember(made, thoughts, insights, label, tick, stamp, micros),
            (_SQL_RELATIONSHIPS, [rel_from, rel_to, rel_kind, rel_strength, stamp], len(rel_from)),
            (_SQL_STAYS, [run, [ids[a] for a, _, _ in stays], [loc_ids[o] for _, o, _ in stays],
                          [stamps(s) for _, _, s in stays], stamp], len(stays))]
        # the log first: it may run ahead of the database (resume cuts it back), never behind
        self._log_tick(micros, day, tick, acted, action, activity, loc_col, conv_of, chats, owners, requests, texts)
        result: TickResult = {"acted": acted, "action": action, "activity": activity, "loc": loc_col, "chats": chats,
                              "deltas": deltas, "transcripts": transcripts, "conv_base": self.next_conv,
                              "refused": self.refused_at, "scripted": self.outcomes, "clock": self._clock_of(day, tick)}
        self.tally.add(self, tick, result)
        self.next_conv += len(chats)
        self.totals["events"] += n_ev
        self.totals["conversations"] += len(chats)
        self.writer.submit(_TickJob(day, tick, label, jobs, *self._snapshot(day, tick)))
        return result

    def _remember(self, made: recall.TickMemories, thoughts: list[tuple[int, str]], insights: list[tuple[int, str]],
                  label: str, tick: int, stamp: str, micros: int) -> _InsertJob:
        """The tick's memories into the agents' tables, after those of its
        conversations (``made``): the private thoughts, being turned away by
        a full place, and the day's insights.  A memory the agent already
        holds is left out.  Returns the insert for those kept."""
        meta = f'{{"day":"{label}","tick":{tick}}}'
        # a thought, or an insight, is remembered by its first sentences: what the model said of its own, not
        # the memories it was reminded of (which would nest, memory within memory, without end)
        for i, text in thoughts:
            text = excerpt(text, 160)
            made.add(i, "reflection", text, importance("reflection", text), meta)
        refused = self.refused_at
        turned = np.flatnonzero(refused >= 0)
        if len(turned):
            # one memory per place that turned the agent away, made once: most refusals are of agents
            # turned away before, so those are left out before any text is made
            holds = self.memory.holds
            for i, place in zip(turned.tolist(), refused[turned].tolist()):
                text, h, imp, where = self._refusals[place]
                if not holds(i, h):
                    made.add(i, "refused", text, imp, f'{{"day":"{label}","tick":{tick},"location":{where}}}')
        for i, text in insights:
            text = excerpt(text, 200)
            made.add(i, "insight", text, importance("insight", text), meta)
        hashes = [norm_hash(t) for t in made.text]
        vectors = self._embed(made.text) if self.embedding and made.text else None
        kept = self.memory.add(made.agent, made.text, made.importance, micros // 60_000_000, hashes, vectors=vectors)
        if insights:                              # a reflection starts the count again
            self.memory.pending[[i for i, _ in insights]] = 0
        if tick == 0:
            self.day_memories = Counter()
        ids = self.agents.ids
        rows = [k for k, ok in enumerate(kept) if ok]
        kinds = [made.kind[k] for k in rows]
        self.day_memories.update(kinds)
        self.memories_total += len(rows)
        self.totals["memories"] = self.memories_total
        confidence = recall.CONFIDENCE
        return (_SQL_MEMORIES, [ids[[made.agent[k] for k in rows]] if rows else [], kinds,
                                [made.text[k] for k in rows], [confidence[k] for k in kinds],
                                [hashes[k] for k in rows], [made.meta[k] for k in rows], stamp,
                                [made.importance[k] for k in rows]], len(rows))

    def commit_tick(self, job: "_TickJob") -> None:
        """The tick's transaction (on the writer's thread): its rows and the
        checkpoint; then the WAL's upkeep."""
        conn = self.conn
        with db.write_transaction(conn, f"{self.db_file}: tick {job.tick} of {job.label}"):
            db.insert_many(conn, job.jobs)
            self._checkpoint(job.day, job.tick, job.state, job.arrays)
        self.after_commit()

    def _minute_stamp(self, gmin: int) -> str:
        known = self._stamps.get(gmin)
        if known is not None:
            return known
        t = datetime.combine(self.cfg.start_date, datetime.min.time(), tzinfo=timezone.utc) + timedelta(minutes=gmin)
        self._stamps[gmin] = text = t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        return text

    # --- the chronicle and checkpoints ---------------------------------------
    def log_finished(self) -> None:
        """The log's last event: the run went through every tick (what replay checks for first)."""
        micros = self._stamp(self.opt.days, self.cfg.ticks_per_day - 1)[1]
        self.chronicle.extend({"timestamp": np.full(1, micros, dtype=np.uint64),
                               "event_type": np.array(["run_finished"], dtype=object),
                               "payload": np.array([{"days": self.opt.days, "ticks_per_day": self.cfg.ticks_per_day}],
                                                   dtype=object)})
        self.chronicle.flush()

    def log_roster(self) -> None:
        """The agents as the run starts (persona, interests, relationships),
        first in the log: what a replay rebuilds the run from."""
        conn, ids = self.conn, self.agents.ids
        wanted = set(ids.tolist())
        interests: dict[int, list] = {}
        for aid, tag, score in conn.execute("SELECT agent_id, tag, score FROM interests ORDER BY agent_id, tag"):
            if aid in wanted:
                interests.setdefault(aid, []).append([tag, score])
        rels: dict[int, list] = {}
        for a, b, kind, s in conn.execute("SELECT from_agent_id, to_agent_id, kind, strength FROM relationships "
                                          "ORDER BY from_agent_id, to_agent_id"):
            if a in wanted and b in wanted:
                rels.setdefault(a, []).append([b, kind, s])
        memories: dict[int, list] = {}            # from before the run: what its agents can recall from the start
        for aid, kind, text, imp, made, h in conn.execute(
                "SELECT agent_id, kind, text, importance, created_at, norm_hash FROM memories ORDER BY id"):
            if aid in wanted:
                memories.setdefault(aid, []).append([kind, text, imp, made, h])
        payloads = []
        for aid, name, bio, job, family, traits in conn.execute(
                "SELECT id, name, bio, job, family_json, traits_json FROM agents ORDER BY id"):
            if aid in wanted:
                payloads.append({"id": aid, "name": name, "bio": bio, "job": job, "family": json.loads(family),
                                 "traits": json.loads(traits), "interests": interests.get(aid, []),
                                 "relationships": rels.get(aid, []), "memories": memories.get(aid, [])})
        micros = self._stamp(1, 0)[1]
        self.chronicle.extend({"timestamp": np.full(len(payloads), micros, dtype=np.uint64),
                               "event_type": np.array(["agent"] * len(payloads), dtype=object),
                               "payload": np.array(payloads, dtype=object)})
        self.chronicle.flush()

    def _log_tick(self, micros: int, day: int, tick: int, acted: np.ndarray, action: np.ndarray, activity: np.ndarray,
                  loc_col: np.ndarray, conv_of: np.ndarray, chats: list[Chat], owners: list[_Owner],
                  requests: list[ChatRequest], texts: list[str]) -> None:
        ch = self.chronicle
        n = len(acted)
        if n:
            ch.extend({"timestamp": np.full(n, micros, dtype=np.uint64),
                       "event_type": action[acted],            # codes into ACTIONS: no string per event
                       "values.agent": self.agents.ids[acted].astype(np.float64),
                       "values.day": np.full(n, day, dtype=np.float64),
                       "values.tick": np.full(n, tick, dtype=np.float64),
                       "values.activity": self.act_ids[activity[acted]].astype(np.float64),
                       "values.location": self.loc_ids[loc_col].astype(np.float64),
                       "values.conversation": np.where(conv_of[acted] >= 0, conv_of[acted], np.nan).astype(np.float64)},
                      labels={"event_type": ACTIONS})
        by_conv: dict[int, list] = {}
        reflections: list[list[Any]] = []
        insights: list[list[Any]] = []
        ids = self.agents.ids.tolist()
        for (c, r, i), req, text in zip(owners, requests, texts):     # the seed names the request it answers
            if c >= 0:
                by_conv.setdefault(c, []).append([ids[i], r, text, req.seed, req.digest()])
            else:
                (reflections if c == _REFLECTION else insights).append([ids[i], text, req.seed, req.digest()])
        payloads = [{"conversation": self.next_conv + c, "model": self.model.name, "turns": turns}
                    for c, turns in sorted(by_conv.items())]
        if reflections:
            payloads.append({"conversation": None, "model": self.model.name, "reflections": reflections})
        if insights:
            payloads.append({"conversation": None, "model": self.model.name, "insights": insights})
        if self._embedded:                       # what a replay needs to rank memories as this run did
            texts = [t for t, _ in self._embedded]
            vecs = np.stack([v for _, v in self._embedded]).astype("<f4")
            payloads.append({"conversation": None, "model": self.model.name,
                             "embeddings": {"model": self.model.embedding_model, "dim": int(vecs.shape[1]),
                                            "texts": [embedding_key(t) for t in texts],
                                            "vectors": base64.b64encode(vecs.tobytes()).decode("ascii")}})
            self._embedded = []
        if payloads:
            m = len(payloads)
            ch.extend({"timestamp": np.full(m, micros, dtype=np.uint64),
                       "event_type": np.array(["lm_response"] * m, dtype=object),
                       "payload": np.array(payloads, dtype=object),
                       "values.day": np.full(m, day, dtype=np.float64),
                       "values.tick": np.full(m, tick, dtype=np.float64)})
        ch.flush()                               # a tick is whole in the log before its rows commit

    _ARRAYS = ("loc", "dest", "travel_left", "actions_today", "moves_today", "last_chat", "stay_since", "plan",
               "best_friend")

    def restore(self, cp: Checkpoint, arrays: Mapping[str, np.ndarray]) -> DayTally:
        """The state of a checkpoint (see _snapshot; ``arrays`` from
        :func:`_read_checkpoint`); the day's report figures so far."""
        self.rng.bit_generator.state = cp["rng"]
        for name in self._ARRAYS:
            a = arrays[name]
            if a.shape[:1] != (len(self.agents),):
                raise ValueError(f"{name} holds {a.shape[0] if a.ndim else 0} agents, the run {len(self.agents)}")
            setattr(self, name, a.astype(np.int64))
        self.next_conv = cp["next_conv"]
        done = np.array(cp["slots_done"], dtype=np.int64)
        if done.shape != self.slot_done.shape:
            raise ValueError(f"slots_done holds {len(done)} slots, the scenario {len(self.slot_done)}")
        self.slot_done = done
        self.totals = dict(cp["totals"])
        self.memories_total = cp["totals"]["memories"]
        self.day_memories = Counter(cp["tally"]["memories"])
        pending = arrays["memory_pending"]
        if pending.shape != self.memory.pending.shape:
            raise ValueError(f"memory_pending holds {pending.shape[0] if pending.ndim else 0} agents, "
                             f"the run {len(self.agents)}")
        self.memory.pending = pending.astype(np.int64)
        return DayTally.from_state(len(self.agents), cp["tally"], arrays)

    def _snapshot(self, day: int, tick: int) -> tuple[Checkpoint, bytes]:
        """The run's state after a whole tick, taken before the next tick
        changes it: the generator and counters (JSON), and the agents' arrays
        with the day's report figures (an uncompressed .npz)."""
        buf = io.BytesIO()
        tally_arrays, tally_state = self.tally.arrays()
        # ignore: numpy's stub (2.1+) has savez(..., allow_pickle: bool, **kwds) and mypy matches a str-keyed
        # ** against that keyword too; these keys are array names (and numpy 1.26, still supported, has no
        # allow_pickle to pass instead)
        np.savez(buf, **{name: getattr(self, name).astype(np.int32) for name in self._ARRAYS},
                 memory_pending=self.memory.pending.astype(np.int32), **tally_arrays)  # type: ignore[arg-type]
        tally_state["memories"] = dict(self.day_memories)
        state: Checkpoint = {"day": day, "tick": tick, "rng": self.rng.bit_generator.state, "next_conv": self.next_conv,
                             "slots_done": self.slot_done.tolist(), "records": len(self.chronicle), "totals": dict(self.totals), "tally": tally_state}
        return state, buf.getvalue()

    def _checkpoint(self, day: int, tick: int, state: Checkpoint, arrays: bytes) -> None:
        """Store a snapshot, in the tick's transaction.  Written after every
        tick, it must cost little beside the tick's rows: fixed-width ints,
        zstd level 1 (four times faster than zlib level 1 here, and smaller)."""
        self.conn.execute("UPDATE runs SET checkpoint_json = ?, checkpoint_state = ? WHERE id = ?",
                          (json.dumps(state, default=int), _ZSTD_C.compress(arrays), self.run_id))


@dataclass
class _TickJob:
    """What the writer commits for one tick (see WorldRun.commit_tick)."""
    day: int
    tick: int
    label: str
    jobs: list[_InsertJob]          # (sql, columns, rows) for db.insert_many
    state: Checkpoint
    arrays: bytes


_SQL_SCHEDULES = ("INSERT INTO agent_schedules (run_id, agent_id, day_label, slot_hour, planned_activity_id, "
                  "location_id, partner_agent_id, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_SQL_EVENTS = ("INSERT INTO world_events (run_id, agent_id, day_label, tick_index, action, activity_id, location_id, "
               "metadata_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_SQL_CONVERSATIONS = ("INSERT INTO conversations (id, run_id, day_label, tick_index, kind, topic, location_id, model, "
                      "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_SQL_TURNS = ("INSERT INTO conversation_turns (conversation_id, round, agent_id, role, content, model) "
              "VALUES (?, ?, ?, ?, ?, ?)")
_SQL_MEMORIES = ("INSERT OR IGNORE INTO memories (agent_id, kind, text, confidence, norm_hash, metadata_json, "
                 "created_at, importance) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_SQL_RELATIONSHIPS = ("INSERT INTO relationships (from_agent_id, to_agent_id, kind, strength, updated_at) "
                      "VALUES (?, ?, ?, ?, ?) ON CONFLICT (from_agent_id, to_agent_id) DO UPDATE SET "
                      "strength = excluded.strength, updated_at = excluded.updated_at")
_SQL_STAYS = "INSERT INTO agent_locations (run_id, agent_id, location_id, since_ts, until_ts) VALUES (?, ?, ?, ?, ?)"


def reporting_room(tally: DayTally | None) -> int:
    """How many of this tick's conversations the day's report can still show."""
    return max(0, MAX_TRANSCRIPTS - len(tally.transcripts)) if tally is not None else 0


def _topic(agents: _Agents, members: list[int]) -> str:
    """What a conversation is about: an interest the members share, else the first one's."""
    sets = agents.interest_sets
    common = sets[members[0]].intersection(*[sets[i] for i in members[1:]])
    if common:
        return min(common)
    first = agents.interests[members[0]]
    return first[0] if first else "the day"


def _names_of_run(conn: apsw.Connection, n: int | None) -> list[str]:
    """The names of the agents a run of ``n`` agents will take (the first n
    by id, with those ensure_agents would make up), read without writing."""
    rows = conn.execute("SELECT id, name FROM agents ORDER BY id").fetchall()
    names = [store.as_text(name, "agents.name") for _, name in rows]
    if n and len(names) < n:
        top = store.as_int(rows[-1][0], "agents.id") if rows else 0
        names += [f"Agent {i:05d}" for i in range(top + 1, top + 1 + n - len(names))]
    return names[:n] if n else names


def _check_scenario_agents(scenario: Scenario, names: list[str]) -> None:
    known = set(names)
    for e in scenario.events:
        missing = [a for a in e.agents if a not in known]
        if missing:
            raise ConfigError(f"{scenario.source}: scripted_events: no agent named {missing[0]!r} in this run")
    for name in scenario.schedules:
        if name not in known:
            raise ConfigError(f"{scenario.source}: schedules: no agent named {name!r} in this run")


def _scripted_index(scenario: Scenario, agents: _Agents) -> dict[_ScriptKey, list[_Scripted]]:
    """(day or None, tick) -> scripted events, and ("day", day or None) -> that day's events, agents as
    positions."""
    _check_scenario_agents(scenario, agents.names)
    out: dict[_ScriptKey, list[_Scripted]] = {}
    index = agents.index
    for e in scenario.events:
        ev: _Scripted = {"agents": [index[a] for a in e.agents], "type": e.type, "location": e.location,
                         "prompt": e.prompt, "activity": e.activity, "tick": e.tick}
        out.setdefault((e.day, e.tick), []).append(ev)
        out.setdefault(("day", e.day), []).append(ev)
    return out


def _event_place(env: Environment, ev: _Scripted) -> int:
    """The place of a scripted move or meeting (parse_scenario makes sure they name one)."""
    where = ev["location"]
    if where is None:
        raise ConfigError(f"a scripted {ev['type']} at tick {ev['tick']} names no location")
    return env.index[where]


def run(db_url: str | os.PathLike[str], config: WorldConfig, model: LanguageModel, options: RunOptions,
        scenario: Scenario | None = None) -> RunResult:
    """Run the world for ``options.days`` days and return what it did."""
    started = time.perf_counter()
    db_file = store.db_path(db_url)
    if options.agents and not options.invent_agents:      # refused before anything is made or written
        have = store.count_agents(db_file)
        if have < options.agents:
            raise ConfigError(f"{db_file}: {have} agents, and {options.agents} asked for: seed the others with "
                              f"`chronoledger world seed-agent`, or make them up with --invent-agents")
    if options.chronicle is not None and not Path(options.chronicle).parent.is_dir():
        raise ConfigError(f"{options.chronicle}: the folder of the event log does not exist")
    with _opened(db_url) as (conn, checkpointer):
        w = WorldRun(conn, db_file, config, scenario, model, options)
        w.after_commit = checkpointer.after_commit
        with db.write_transaction(conn, f"{db_file}: starting a run"):
            conn.execute("INSERT INTO runs (seed, days, agents, model, config_json, scenario_json, status, started_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, 'running', ?)",
                         (options.seed, options.days, len(w.agents), model.name, json.dumps(config.raw, default=str),
                          json.dumps(scenario.raw, default=str) if scenario else None, w._stamp(1, 0)[0]))
            w.run_id = store.as_int(conn.execute("SELECT max(id) FROM runs").fetchall()[0][0], "runs.id")
        log_path = options.chronicle or db_file.with_name(f"{db_file.stem}-run-{w.run_id}.cmeta")
        meta = {"source": "chronoledger world", "seed": options.seed, "days": options.days, "agents": len(w.agents),
                "model": model.name, "config": config.raw, "scenario": scenario.raw if scenario else None,
                "first_conversation": w.next_conv, "embedding_model": model.embedding_model,
                "locations": dict(zip(w.env.names, w.loc_ids.tolist())),
                "activities": dict(zip(w.act_names, w.act_ids.tolist()))}
        # the log's salt follows from the run, so the same seed gives the same log bytes
        salt = core.crc64(f"chronoledger world run {options.seed} {w.run_id}".encode())
        with Chronicle.open(log_path, "w", schema="event", metadata=json.loads(json.dumps(meta, default=str)),
                            block_records=65536, salt=salt) as ch:
            w.chronicle = ch
            w.log_roster()
            conn.execute("UPDATE runs SET chronicle = ? WHERE id = ?", (os.path.relpath(log_path, db_file.parent),
                                                                         w.run_id))
            reports = _drive(w, 1, 0, None)
        return _finish(w, log_path, reports, started)


@contextlib.contextmanager
def _opened(db_url: str | os.PathLike[str]) -> Iterator[tuple[apsw.Connection, db.BackgroundCheckpointer]]:
    """The run's connection, with its WAL copied back from a thread of its own;
    SQLite's errors met while it is open are the package's, naming the file."""
    db_file = store.db_path(db_url)
    conn = store.connect(db_url)
    try:
        with db.sqlite_errors(db_file):
            conn.execute("PRAGMA cache_size = -65536")          # 64 MB: a large run's indexes stay in memory
            checkpointer = db.BackgroundCheckpointer(conn, db_file)     # WAL copies off the run's commits
    except BaseException:
        conn.close()
        raise
    try:
        with db.sqlite_errors(db_file):
            yield conn, checkpointer
    finally:
        checkpointer.close()
        conn.close()


def _drive(w: WorldRun, first_day: int, first_tick: int, tally: DayTally | None,
           reports: list[Path] | None = None) -> list[Path]:
    """The days and ticks from (first_day, first_tick) on, their rows
    committed by a writer thread, then the log's last event; the reports
    written (after ``reports``)."""
    w.writer = TickWriter(w.commit_tick)
    try:
        reports = (reports or []) + _days(w, first_day, first_tick, tally)
    finally:
        w.writer.close()
    w.log_finished()
    return reports


def _days(w: WorldRun, first_day: int, first_tick: int, tally: DayTally | None) -> list[Path]:
    conn, cfg, options = w.conn, w.cfg, w.opt
    reports: list[Path] = []
    try:
        for day in range(first_day, options.days + 1):
            start = first_tick if day == first_day else 0
            if start == 0:                       # a fresh day: counters, friendships, the plan
                w.actions_today[:] = 0
                w.moves_today[:] = 0
                w._best_friends()
                w.pending_schedules = w.plan_day(day)       # stored with the day's first tick, in its transaction
                tally = reporting.DayTally(len(w.agents))
            elif tally is None:                  # only a fresh day starts without one (resume passes its own)
                raise ValueError(f"day {day} resumed at tick {start} without its report figures")
            w.tally = tally
            for tick in range(start, cfg.ticks_per_day):
                w.writer.check()                 # a failed write stops the run before more work (or model calls)
                w.tick(day, tick)
                w.ticks_run += 1
                if options.progress:
                    options.progress(day, tick, cfg.ticks_per_day)
            w.writer.drain()                     # the day's memory counts, and the connection, are the writer's
            tally.memories = Counter(w.day_memories)
            reports += reporting.write_day(w, day, tally, options)
    except BaseException as exc:
        # Ctrl-C or a failure: what was submitted commits (waiting through more Ctrl-C, since the
        # connection is the writer's until then), and the run is stopped, resumable from its checkpoint
        failed = w.writer.settle()
        if failed is not None and failed is not exc:       # a note as add_note() makes one (Python 3.10 has none)
            setattr(exc, "__notes__", [*getattr(exc, "__notes__", ()), f"the run's writer failed as well: {failed!r}"])
        try:
            conn.execute("UPDATE runs SET status = 'stopped' WHERE id = ?", (w.run_id,))
        except apsw.Error:      # kept: best effort on the way out; the failure being raised is the one to report
            pass
        raise
    return reports


def _finish(w: WorldRun, log_path: Path, reports: list[Path], started: float) -> RunResult:
    conn, cfg, options = w.conn, w.cfg, w.opt
    w.totals["memories"] = w.memories_total
    final_stamp = w._stamp(options.days, cfg.ticks_per_day - 1)[0]
    last = w._gmin(options.days, cfg.ticks_per_day - 1)
    with db.write_transaction(conn, f"{w.db_file}: finishing run {w.run_id}"):
        conn.executemany(_SQL_STAYS,          # the stays still open (until NULL)
                         [(w.run_id, int(w.agents.ids[i]), int(w.loc_ids[w.loc[i]]), w._minute_stamp(int(s)), None)
                          for i, s in enumerate(w.stay_since.tolist()) if w.dest[i] < 0] +
                         # an agent still on its way: its next stay, from when it arrives
                         [(w.run_id, int(w.agents.ids[i]), int(w.loc_ids[w.dest[i]]),
                           w._minute_stamp(last + int(w.travel_left[i]) * cfg.tick_minutes), None)
                          for i in np.flatnonzero(w.dest >= 0).tolist()])
        conn.execute("UPDATE runs SET status = 'finished', finished_at = ? WHERE id = ?", (final_stamp, w.run_id))
    n = len(w.agents)
    result = RunResult(w.run_id, options.days, n, n * options.days * cfg.ticks_per_day, w.totals["events"],
                       w.totals["conversations"], w.totals["memories"], log_path, reports,
                       time.perf_counter() - started, n * w.ticks_run)
    _logger.info("%s: run %d finished: %d day(s) of %d agents, %d events, %d conversations, %d new memories "
                 "in %.1f s; log %s", w.db_file, w.run_id, options.days, n, result.events, result.conversations,
                 result.memories, result.seconds, log_path.name)
    return result


def resume(db_url: str | os.PathLike[str], model: LanguageModel, run_id: int | None = None, *,
           reports_dir: Path | None = None, report_format: str = "both", summary_only: bool = False,
           progress: Callable[[int, int, int], None] | None = None) -> RunResult:
    """Continue a stopped run (the latest unfinished one by default) from
    its last whole tick: the state and the generator as they were then,
    the event log cut back to that tick.  Resuming two copies of a stopped
    run gives two runs that share nothing and go on alike."""
    started = time.perf_counter()
    db_file = store.db_path(db_url)
    with _opened(db_url) as (conn, checkpointer):
        sql = ("SELECT id, seed, days, agents, config_json, scenario_json, chronicle, checkpoint_json, "
               "checkpoint_state, model FROM runs WHERE status IN ('running', 'stopped') "
               "AND (checkpoint_json IS NOT NULL OR ? IS NOT NULL)")
        rows = conn.execute(sql + (" AND id = ?" if run_id is not None else "") + " ORDER BY id DESC LIMIT 1",
                            (run_id, run_id) if run_id is not None else (None,)).fetchall()
        if not rows:
            raise NotFoundError(f"{db_file}: no unfinished run" + (f" {run_id}" if run_id is not None else ""))
        row_id, seed, days, n_agents, config_json, scenario_json, log_rel, cp_json, cp_blob, made_with = rows[0]
        rid = store.as_int(row_id, "runs.id")
        if not cp_json:
            raise NotFoundError(f"{db_file}: run {rid} stopped before its first tick; start it again")
        if made_with != model.name:          # its log and replay would mix two models
            raise ConfigError(f"{db_file}: run {rid} was made with the {made_with} model; resume it with that one")
        cp, arrays = _read_checkpoint(db_file, rid, cp_json, cp_blob)
        taken = conn.execute("SELECT min(run_id) FROM conversations WHERE id >= ? AND run_id <> ?",
                             (cp["next_conv"], rid)).fetchall()[0][0]
        if taken is not None:
            raise ConfigError(f"{db_file}: run {taken} has taken the conversation ids run {rid} would go on with; "
                              f"resume run {rid} in a copy of the database made before run {taken}")
        config = parse_config(json.loads(store.as_text(config_json, "runs.config_json")),
                              f"{db_file}: run {rid} (recorded config)")
        scenario = parse_scenario(json.loads(store.as_text(scenario_json, "runs.scenario_json")),
                                  f"{db_file}: run {rid} (recorded scenario)", config) if scenario_json else None
        log_path = db_file.parent / store.as_text(log_rel, "runs.chronicle")
        options = RunOptions(days=store.as_int(days, "runs.days"), agents=store.as_int(n_agents, "runs.agents"),
                             seed=store.as_int(seed, "runs.seed"), chronicle=log_path, reports_dir=reports_dir,
                             report_format=report_format, summary_only=summary_only, progress=progress)
        w = WorldRun(conn, db_file, config, scenario, model, options)
        w.after_commit = checkpointer.after_commit
        w.run_id = rid
        with _damaged_checkpoint(db_file, rid):
            tally = w.restore(cp, arrays)
        _cut_log(log_path, cp["records"])
        day, tick = cp["day"], cp["tick"] + 1
        _logger.info("%s: resuming run %d at day %d, tick %d", db_file, rid, day, tick)
        with Chronicle.open(log_path, "a", schema="event", block_records=65536) as ch:
            w.chronicle = ch
            conn.execute("UPDATE runs SET status = 'running' WHERE id = ?", (rid,))
            reports: list[Path] = []
            if tick == config.ticks_per_day:     # the day's last tick was done: its report, then the next day
                w.tally = tally
                reports += reporting.write_day(w, day, tally, options)
                day, tick = day + 1, 0
            reports = _drive(w, day, tick, tally, reports)
        return _finish(w, log_path, reports, started)


@contextlib.contextmanager
def _damaged_checkpoint(db_file: Path, rid: int) -> Iterator[None]:
    try:
        yield
    except (ValueError, KeyError, TypeError, OSError, zstandard.ZstdError, zipfile.BadZipFile) as exc:
        raise CorruptDataError(f"{db_file}: run {rid}: its checkpoint (runs.checkpoint_json and checkpoint_state) "
                               f"is damaged ({type(exc).__name__}: {exc}); nothing was changed") from None


def _read_checkpoint(db_file: Path, rid: int, cp_json: apsw.SQLiteValue, blob: apsw.SQLiteValue
                     ) -> tuple[Checkpoint, dict[str, np.ndarray]]:
    """A stopped run's checkpoint (runs.checkpoint_json and checkpoint_state):
    its JSON state and its arrays, or a CorruptDataError naming the run."""
    with _damaged_checkpoint(db_file, rid):
        if not isinstance(cp_json, (str, bytes)) or not isinstance(blob, bytes):
            raise TypeError(f"{type(cp_json).__name__} and {type(blob).__name__} stored, not text and bytes")
        cp = json.loads(cp_json)
        for key in ("day", "tick", "rng", "next_conv", "slots_done", "records", "totals", "tally"):
            cp[key]
        with np.load(io.BytesIO(_ZSTD_D.decompress(blob))) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return cp, arrays


def _cut_log(path: Path, records: int) -> None:
    """Cut the event log back to the checkpoint's ``records``: a tick logged
    but never committed (a kill between the two) is dropped, to be run again."""
    with Chronicle.open(path) as ch:
        blocks = ch.reader().blocks
    total, cut = 0, None
    for b in blocks:
        if total == records:
            cut = b.offset
            break
        total += b.records
    if cut is None:
        if total == records:
            return                               # nothing past the checkpoint
        raise CorruptDataError(f"{path}: the log holds {total} records, the checkpoint {records}, and no block ends "
                               f"there; it cannot be cut back to the checkpoint")
    _logger.info("%s: cut back to the checkpoint's %d records (%d bytes of ticks logged but never committed)",
                 path, records, path.stat().st_size - cut)
    os.truncate(path, cut)
