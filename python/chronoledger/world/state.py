"""The world as a run has it between ticks: its agents, places and
activities (with their database ids), where everyone is and is going, the
day's plan, relationships, memories, the scenario's schedule and scripted
events, counters, and the run's one random generator -- and the calendar
that turns days and ticks into times.  What a tick does with it is the
policy's (:mod:`chronoledger.world.policy`); what it writes, the rows'
(:mod:`chronoledger.world.rows`)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

import apsw
import numpy as np

from chronoledger.errors import ConfigError
from chronoledger.world import recall, store
from chronoledger.world.actions import NONE, action_names
from chronoledger.world.agents import Agents, check_scenario_agents, ensure_agents, names_of_run
from chronoledger.world.config import PERIOD_ENDS, PERIODS, Scenario, WorldConfig
from chronoledger.world.environment import Environment
from chronoledger.world.memory import MemoryStream, importance, norm_hash, signature
from chronoledger.world.relations import Relationships
from chronoledger.world.results import RunOptions, ScriptKey, Scripted

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class WorldState:
    """One run's world (see the module's notes); built before anything of the
    run is written but the places, activities, made-up agents and family ties
    it needs in the database."""

    #: The per-agent arrays a checkpoint keeps (with the memories' pending importance).
    ARRAYS = ("loc", "dest", "travel_left", "actions_today", "moves_today", "last_chat", "stay_since", "plan",
              "best_friend")

    def __init__(self, conn: apsw.Connection, db_file: Path, config: WorldConfig, scenario: Scenario | None,
                 options: RunOptions):
        self.cfg, self.scenario, self.opt = config, scenario, options
        self.env = Environment(config)
        self.action_names = action_names()
        clash = sorted(set(self.action_names) & set(config.activities))
        if clash:                             # a registered action named as an activity
            raise ConfigError(f"{config.source}: {clash[0]!r} is both an activity and a registered action type; "
                              f"one of them needs another name")
        names = names_of_run(conn, options.agents)
        start = self._start_places(len(names))     # refused, like the rest here, before anything is written
        if scenario:
            check_scenario_agents(scenario, names)
            late = [e for e in scenario.events if e.day is not None and e.day > options.days]
            if late:
                raise ConfigError(f"{scenario.source}: a scripted event on day {late[0].day} would never fire in a "
                                  f"run of {options.days} day(s)")
        store.world_init(conn, config)
        if options.agents:
            ensure_agents(conn, options.agents, options.seed)
        self.agents = Agents(conn, options.agents)
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
        self.loc = start
        self.dest = np.full(n, -1, dtype=np.int64)
        self.travel_left = np.zeros(n, dtype=np.int64)
        self.actions_today = np.zeros(n, dtype=np.int64)
        self.moves_today = np.zeros(n, dtype=np.int64)
        self.last_chat = np.full(n, -10 ** 9, dtype=np.int64)           # global minute of the last duo chat
        self.stay_since = np.zeros(n, dtype=np.int64)                   # global minute the current stay began
        self.plan = np.zeros((n, len(PERIODS)), dtype=np.int64)
        self._load_relationships(conn)
        # each agent's family, for its requests: its relationships of a family kind (both ways: Ben, whom
        # Ava's family_json names her spouse, has her as family too), as the run starts
        fam: dict[int, list[str]] = {}
        for a, b, kind in self.rels.of_kinds_not_in(recall.NOT_FAMILY):
            fam.setdefault(a, []).append(f"{kind.replace('_', ' ')}: {self.agents.names[b]}")
        none: tuple[str, ...] = ()
        self.family_lines = [tuple(fam[a]) if a in fam else none for a in range(n)]
        # what the agents remember, from before the run (and, resuming, from the run so far)
        self.memory = MemoryStream(n, config.memory)
        self.memory.load(store.memories_of(conn, self.agents.pos))
        self.name_sig = [signature(name) for name in self.agents.names]
        #: per place: the memory of being turned away by it (text, hash, importance, location id)
        self.refusals = []
        for name, lid in zip(self.env.names, self.loc_ids.tolist()):
            text = f"{recall.the_place(name)} was full and turned me away."
            self.refusals.append((text, norm_hash(text), importance("refused", text), lid))
        self.scripted = scripted_index(scenario, self.agents) if scenario else {}
        self.overrides = self._schedule_overrides()
        self.run_id = 0
        self.next_conv = options.first_conversation or store.as_int(
            conn.execute("SELECT coalesce(max(id), 0) + 1 FROM conversations").fetchall()[0][0], "conversations.id")
        self.totals = {"events": 0, "conversations": 0, "memories": 0}
        self.memories_total = 0                    # memories kept (not the agent's already)
        self.day_memories: Counter[str] = Counter()
        self._stamps: dict[int, str] = {}

    def _start_places(self, n: int) -> np.ndarray:
        """Where the agents start the run: the home place, up to its capacity;
        the rest, in id order, at the other places of kind home, then at the
        places open at the first hour nearest to it, each up to its capacity.
        A world whose places cannot hold its agents is refused (a ConfigError,
        before anything is written)."""
        env, home = self.env, self.env.home
        first = self.cfg.start_hour
        kinds = [loc.kind.lower() for loc in self.cfg.locations.values()]
        others = sorted((p for p in range(len(env.names))
                         if p != home and (kinds[p] == "home" or env.open_at[first][p])),
                        key=lambda p: (kinds[p] != "home", env.travel_minutes[home, p], env.names[p]))
        out = np.empty(n, dtype=np.int64)
        placed = 0
        for p in [home] + others:
            take = min(int(env.capacity[p]), n - placed)
            out[placed:placed + take] = p
            placed += take
            if placed == n:
                return out
        raise ConfigError(f"{self.cfg.source}: {n:,} agents start the run, and its places hold {placed:,} at "
                          f"{first}:00 ({env.names[home]} {int(env.capacity[home]):,}); raise a capacity or run "
                          f"fewer agents")

    # --- relationships -------------------------------------------------------
    def _load_relationships(self, conn: apsw.Connection) -> None:
        # in the table's order (ordered by the key's index, each row is a lookup: a second a million rows)
        rows = conn.execute("SELECT from_agent_id, to_agent_id, kind, strength FROM relationships").fetchall()
        ids = self.agents.ids
        if rows:
            a_ids, b_ids, kinds, strengths = zip(*rows)
            a_arr, b_arr = np.asarray(a_ids, dtype=np.int64), np.asarray(b_ids, dtype=np.int64)
            pa, pb = (np.minimum(np.searchsorted(ids, x), len(ids) - 1) for x in (a_arr, b_arr))
            ours = np.flatnonzero((ids[pa] == a_arr) & (ids[pb] == b_arr))      # both of the run's agents
            kind_of = np.asarray(kinds, dtype=object)
            self.rels = Relationships(len(ids), pa[ours], pb[ours], kind_of[ours],
                                      np.asarray(strengths, dtype=np.float64)[ours])
        else:
            none = np.zeros(0, dtype=np.int64)
            self.rels = Relationships(len(ids), none, none, [], np.zeros(0))
        self.best_friends()

    def best_friends(self) -> None:
        """Each agent's strongest relationship (ties: the lowest other position), or -1."""
        self.best_friend = self.rels.best_friends()

    # --- days --------------------------------------------------------------
    def day_label(self, day: int) -> str:
        return (self.cfg.start_date + timedelta(days=day - 1)).isoformat()

    def stamp(self, day: int, tick: int) -> tuple[str, int]:
        """(ISO text, microseconds) of a tick's simulated time."""
        t = datetime.combine(self.cfg.start_date, datetime.min.time(), tzinfo=timezone.utc) + \
            timedelta(days=day - 1, minutes=self.cfg.tick_minute_of_day(tick))
        return t.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), int((t - _EPOCH) // timedelta(microseconds=1))

    def clock_of(self, day: int, tick: int) -> str:
        """A tick's time of day: ``09:00``."""
        m = self.cfg.tick_minute_of_day(tick)
        return f"{m // 60:02d}:{m % 60:02d}"

    def gmin(self, day: int, tick: int) -> int:
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
        hours = self.slot_hours()
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
                kind = self.action_names.index(slot["action"]) if slot.get("action") else NONE
                for hour in range(slot["hour"], end):
                    by_hour.setdefault(hour, []).append((i, self.act_names.index(slot["activity"]),
                                                         self.env.index[slot["location"]], kind, n_slots))
                n_slots += 1
        self.slot_done = np.zeros(n_slots, dtype=np.int64)
        out = {}
        for h, rows in by_hour.items():
            out[h] = tuple(np.array(col, dtype=np.int64) for col in zip(*rows))
        return out

    def scripted_activity(self, ev: Scripted, members: np.ndarray, hour: int, planned: np.ndarray) -> np.ndarray:
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

    def slot_hours(self) -> list[tuple[int, int]]:
        """(period index, first hour) of each part of the day that falls within the day's hours."""
        out = []
        for k, end in enumerate(PERIOD_ENDS):
            hour = max(PERIOD_ENDS[k - 1] if k else 0, self.cfg.start_hour)
            if hour < min(end, self.cfg.end_hour):
                out.append((k, hour))
        return out

    def minute_stamp(self, gmin: int) -> str:
        known = self._stamps.get(gmin)
        if known is not None:
            return known
        t = datetime.combine(self.cfg.start_date, datetime.min.time(), tzinfo=timezone.utc) + timedelta(minutes=gmin)
        self._stamps[gmin] = text = t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        return text

    def event_place(self, ev: Scripted) -> int:
        """The place of a scripted move or meeting (parse_scenario makes sure they name one)."""
        where = ev["location"]
        if where is None:
            raise ConfigError(f"a scripted {ev['type']} at tick {ev['tick']} names no location")
        return self.env.index[where]

    # --- checkpoints -------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """The per-agent arrays a checkpoint keeps, as fixed-width ints."""
        out = {name: getattr(self, name).astype(np.int32) for name in self.ARRAYS}
        out["memory_pending"] = self.memory.pending.astype(np.int32)
        return out

    def restore(self, rng: Mapping[str, Any], next_conv: int, slots_done: list[int], totals: dict[str, int],
                day_memories: Mapping[str, int], arrays: Mapping[str, np.ndarray]) -> None:
        """The state a checkpoint kept (see :meth:`arrays`)."""
        self.rng.bit_generator.state = rng
        for name in self.ARRAYS + ("memory_pending",):
            a = arrays[name]
            if a.shape[:1] != (len(self.agents),):
                raise ValueError(f"{name} holds {a.shape[0] if a.ndim else 0} agents, the run {len(self.agents)}")
            if name == "memory_pending":
                self.memory.pending = a.astype(np.int64)
            else:
                setattr(self, name, a.astype(np.int64))
        self.next_conv = next_conv
        done = np.array(slots_done, dtype=np.int64)
        if done.shape != self.slot_done.shape:
            raise ValueError(f"slots_done holds {len(done)} slots, the scenario {len(self.slot_done)}")
        self.slot_done = done
        self.totals = dict(totals)
        self.memories_total = totals["memories"]
        self.day_memories = Counter(day_memories)


def scripted_index(scenario: Scenario, agents: Agents) -> dict[ScriptKey, list[Scripted]]:
    """(day or None, tick) -> scripted events, and ("day", day or None) -> that day's events, agents as
    positions."""
    check_scenario_agents(scenario, agents.names)
    out: dict[ScriptKey, list[Scripted]] = {}
    index = agents.index
    for e in scenario.events:
        ev: Scripted = {"agents": [index[a] for a in e.agents], "type": e.type, "location": e.location,
                         "prompt": e.prompt, "activity": e.activity, "tick": e.tick}
        out.setdefault((e.day, e.tick), []).append(ev)
        out.setdefault(("day", e.day), []).append(ev)
    return out
