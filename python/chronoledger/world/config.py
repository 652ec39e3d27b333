"""The world a run happens in (world_config.yaml) and the scenarios played
in it: read, checked, and turned into arrays the scheduler indexes.

Every problem is a ConfigError naming the file and the key
(``world.yaml: time_preferences.morning[2]: 'move' is an action type, not an
activity``).  A file of your own may give any subset of the keys; the rest
come from the packaged defaults (defaults/world_config.yaml).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Callable, TypedDict

import numpy as np
import yaml

from chronoledger.errors import ConfigError

# libyaml's loader when PyYAML was built with it (the union: either class may be bound)
_Loader: type[yaml.SafeLoader | yaml.CSafeLoader]
try:
    from yaml import CSafeLoader as _Loader
except ImportError:                                   # pragma: no cover - PyYAML without libyaml
    from yaml import SafeLoader as _Loader

#: The action types, in the order the scheduler numbers them.
ACTIONS = ("move", "solo_reflection", "duo_chat", "group_meeting", "task_update")
PERIODS = ("morning", "midday", "afternoon", "evening")
#: The hour at which each period ends (evening runs to midnight).
PERIOD_ENDS = (11, 14, 18, 24)
CONFIG_KEYS = frozenset({"default_hours", "start_date", "action_weights", "locations", "location_graph", "activities",
                         "time_preferences", "guardrails"})
GUARDRAILS = ("max_actions_per_agent_per_day", "max_concurrent_chats", "min_cooldown_between_duo_chats_minutes",
              "max_location_travel_per_day")
SCENARIO_KEYS = frozenset({"name", "description", "schedules", "scripted_events"})
EVENT_KEYS = frozenset({"tick", "day", "type", "agents", "location", "prompt", "activity"})


@dataclass(frozen=True)
class Location:
    name: str
    kind: str
    capacity: int
    open_hour: int
    close_hour: int

    def is_open(self, hour: int) -> bool:
        return self.open_hour <= hour < self.close_hour


@dataclass(frozen=True)
class Activity:
    name: str
    category: str
    duration_minutes: int
    location: str
    prompt_template: str


@dataclass
class WorldConfig:
    """A checked world configuration."""
    start_hour: int
    end_hour: int
    tick_minutes: int
    start_date: date
    action_weights: dict[str, float]
    locations: dict[str, Location]
    activities: dict[str, Activity]
    time_preferences: dict[str, list[str]]
    guardrails: dict[str, int]
    travel_minutes: np.ndarray                   # [from, to], shortest routes, in location order
    source: str = "defaults"
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def location_names(self) -> list[str]:
        return list(self.locations)

    @property
    def activity_names(self) -> list[str]:
        return list(self.activities)

    @property
    def ticks_per_day(self) -> int:
        return (self.end_hour - self.start_hour) * 60 // self.tick_minutes

    def tick_hour(self, tick: int) -> int:
        return self.start_hour + (tick * self.tick_minutes) // 60

    def tick_minute_of_day(self, tick: int) -> int:
        return self.start_hour * 60 + tick * self.tick_minutes

    def period(self, hour: int) -> str:
        for name, end in zip(PERIODS, PERIOD_ENDS):
            if hour < end:
                return name
        return PERIODS[-1]

    def travel_ticks(self) -> np.ndarray:
        """Whole ticks each trip takes (a trip of 0 minutes takes none)."""
        return np.ceil(self.travel_minutes / self.tick_minutes).astype(np.int32)


@dataclass(frozen=True)
class ScriptedEvent:
    day: int | None          # None: every day
    tick: int
    type: str                # an action type
    agents: tuple[str, ...]
    location: str | None
    prompt: str | None
    activity: str | None


class ScheduleSlot(TypedDict):
    """One slot of an agent's scenario schedule: from ``hour``, ``activity`` at ``location``."""
    hour: int
    activity: str
    location: str


@dataclass
class Scenario:
    name: str
    schedules: dict[str, list[ScheduleSlot]]      # agent name -> slots, by hour
    events: list[ScriptedEvent]
    source: str = ""
    raw: dict = field(default_factory=dict, repr=False)


#: Makes the ConfigError of a key: bad(key, why).
_Bad = Callable[[str, str], ConfigError]


# --- reading --------------------------------------------------------------------

def _read_yaml(path: str | Path) -> Any:
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot be read: {exc.strerror or exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{p}: malformed YAML{line}: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: malformed YAML: {exc}") from None
    except (ValueError, OverflowError) as exc:   # a value PyYAML cannot build, e.g. the date 2026-13-01
        raise ConfigError(f"{p}: a value cannot be read: {exc} (quote it if it is meant as text)") from None


def default_config_data() -> dict:
    with resources.as_file(resources.files("chronoledger.world").joinpath("defaults").joinpath("world_config.yaml")) as p:
        return _read_yaml(p)


def load_config(path: str | Path | None = None, *, overrides: dict | None = None) -> WorldConfig:
    """The packaged defaults, with the keys of the file at ``path`` (if any)
    and then ``overrides`` (e.g. hours from the command line) laid over them."""
    data = default_config_data()
    source = "defaults"
    if path is not None:
        mine = _read_yaml(path)
        source = str(path)
        if mine is None:
            mine = {}
        if not isinstance(mine, dict):
            raise ConfigError(f"{source}: expected a mapping of settings, found {type(mine).__name__}")
        unknown = sorted(set(map(str, mine)) - CONFIG_KEYS)
        if unknown:
            raise ConfigError(f"{source}: unknown key {unknown[0]!r} (the keys are {', '.join(sorted(CONFIG_KEYS))})")
        for key, value in mine.items():
            if key in ("default_hours", "guardrails", "action_weights") and isinstance(value, dict) \
                    and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}          # a partial section keeps the other defaults
            else:
                data[key] = value
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        if not isinstance(data.setdefault(section, {}), dict):
            raise ConfigError(f"{source}: {section}: must be a mapping, found {type(data[section]).__name__}")
        data[section][name] = value
    if overrides:
        source += f" with {', '.join(f'{k}={v}' for k, v in overrides.items())} from the command line"
    return parse_config(data, source)


def parse_config(data: dict, source: str) -> WorldConfig:
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {why}")

    hours = _mapping(data.get("default_hours"), "default_hours", bad)
    start, end, tick = (_int(hours.get(k), f"default_hours.{k}", bad) for k in ("start_hour", "end_hour",
                                                                               "tick_minutes"))
    if not 0 <= start < end <= 24:
        raise bad("default_hours", f"start_hour {start} and end_hour {end} must satisfy 0 <= start < end <= 24")
    if tick <= 0 or ((end - start) * 60) % tick:
        raise bad("default_hours.tick_minutes", f"{tick} must be positive and divide the day's "
                                                f"{(end - start) * 60} minutes")
    start_date = data.get("start_date", date(2026, 1, 5))
    if isinstance(start_date, str):
        try:
            start_date = date.fromisoformat(start_date)
        except ValueError:
            raise bad("start_date", f"{start_date!r} is not a date (YYYY-MM-DD)") from None
    if not isinstance(start_date, date):
        raise bad("start_date", "must be a date (YYYY-MM-DD)")

    weights = _mapping(data.get("action_weights"), "action_weights", bad)
    for k, v in weights.items():
        if k not in ACTIONS:
            raise bad(f"action_weights.{k}", f"not an action type (the action types are {', '.join(ACTIONS)})")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise bad(f"action_weights.{k}", f"{v!r} must be a number >= 0")
    weights = {a: float(weights.get(a, 0.0)) for a in ACTIONS}
    if sum(weights.values()) <= 0:
        raise bad("action_weights", "at least one weight must be above 0")

    locations: dict[str, Location] = {}
    for name, spec in _mapping(data.get("locations"), "locations", bad).items():
        key = f"locations.{name}"
        spec = _section(spec, key, ("kind", "capacity", "open_hours"), bad)
        cap = _int(spec.get("capacity"), f"{key}.capacity", bad)
        oh = spec.get("open_hours", [0, 24])
        if not (isinstance(oh, list) and len(oh) == 2 and all(isinstance(h, int) and not isinstance(h, bool)
                                                                for h in oh) and 0 <= oh[0] < oh[1] <= 24):
            raise bad(f"{key}.open_hours", f"{oh!r} must be [open, close] hours with 0 <= open < close <= 24")
        if cap <= 0:
            raise bad(f"{key}.capacity", f"{cap} must be above 0")
        locations[str(name)] = Location(str(name), str(spec.get("kind", name)), cap, oh[0], oh[1])
    if len(locations) < 1:
        raise bad("locations", "at least one location is needed")

    activities: dict[str, Activity] = {}
    for name, spec in _mapping(data.get("activities"), "activities", bad).items():
        key = f"activities.{name}"
        if name in ACTIONS:
            raise bad(key, f"{name!r} is an action type; an activity needs another name")
        spec = _section(spec, key, ("category", "duration_minutes", "location", "prompt_template"), bad)
        loc = _check_location(spec.get("location"), f"{key}.location", locations, bad)
        minutes = _int(spec.get("duration_minutes", 60), f"{key}.duration_minutes", bad)
        if minutes <= 0:
            raise bad(f"{key}.duration_minutes", f"{minutes} must be above 0")
        activities[str(name)] = Activity(str(name), str(spec.get("category", "other")), minutes, loc,
                                         str(spec.get("prompt_template", "{agent} does " + str(name) + ".")))
    if not activities:
        raise bad("activities", "at least one activity is needed")

    prefs = _mapping(data.get("time_preferences"), "time_preferences", bad)
    time_preferences = {}
    for period in prefs:
        if period not in PERIODS:
            raise bad(f"time_preferences.{period}", f"not a part of the day (they are {', '.join(PERIODS)})")
    for period in PERIODS:
        names = prefs.get(period, [])
        if not isinstance(names, list):
            raise bad(f"time_preferences.{period}", "must be a list of activity names")
        for i, n in enumerate(names):
            _check_activity(n, f"time_preferences.{period}[{i}]", activities, bad)
        time_preferences[period] = list(names) or sorted(activities)      # name order, as below

    rails = _mapping(data.get("guardrails"), "guardrails", bad)
    for k in rails:
        if k not in GUARDRAILS:
            raise bad(f"guardrails.{k}", f"unknown guardrail (they are {', '.join(GUARDRAILS)})")
    guardrails = {}
    for k in GUARDRAILS:
        v = _int(rails.get(k), f"guardrails.{k}", bad)
        if v < 0:
            raise bad(f"guardrails.{k}", f"{v} must be >= 0")
        guardrails[k] = v

    # Name order, not the file's: the simulation indexes places and activities by position, and a
    # config stored as JSON with sorted keys (a run's log) must give the same run.
    locations = dict(sorted(locations.items()))
    activities = dict(sorted(activities.items()))
    travel = _travel_matrix(data.get("location_graph"), list(locations), bad)
    raw = copy.deepcopy({k: data.get(k) for k in sorted(CONFIG_KEYS)})
    return WorldConfig(start, end, tick, start_date, weights, locations, activities, time_preferences, guardrails,
                       travel, source, raw)


def _travel_matrix(graph: Any, names: list[str], bad: _Bad) -> np.ndarray:
    """Shortest travel minutes between every pair (Floyd-Warshall over the
    listed edges, taken as two-way)."""
    graph = _mapping(graph, "location_graph", bad)
    index = {n: i for i, n in enumerate(names)}
    n = len(names)
    d = np.full((n, n), np.inf)
    np.fill_diagonal(d, 0)
    for a, edges in graph.items():
        if a not in index:
            raise bad(f"location_graph.{a}", f"{a!r} is not a location (the locations are {', '.join(names)})")
        for b, minutes in _mapping(edges, f"location_graph.{a}", bad).items():
            if b not in index:
                raise bad(f"location_graph.{a}.{b}", f"{b!r} is not a location (the locations are {', '.join(names)})")
            if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 <= minutes < 10_000:
                raise bad(f"location_graph.{a}.{b}", f"{minutes!r} must be minutes, 0 to 10000")
            i, j = index[a], index[b]
            d[i, j] = d[j, i] = min(d[i, j], float(minutes))
    linked = np.isfinite(d).sum(axis=1) > 1
    for i, name in enumerate(names):
        if n > 1 and not linked[i]:
            raise bad("location_graph", f"{name!r} is missing from the graph (no travel time to any other location)")
    for k in range(n):
        d = np.minimum(d, d[:, k:k + 1] + d[k:k + 1, :])
    unreachable = np.argwhere(np.isinf(d))
    if len(unreachable):
        i, j = unreachable[0]
        raise bad("location_graph", f"no route from {names[i]} to {names[j]}: the graph falls in parts")
    return d                                  # minutes as given (12.5 stays 12.5): ticks round up


def _check_location(name: Any, key: str, locations: dict[str, Location], bad: _Bad) -> str:
    if not isinstance(name, str) or name not in locations:
        raise bad(key, f"{name!r} is not a location (the locations are {', '.join(locations)})")
    return name


def _check_activity(name: Any, key: str, activities: dict[str, Activity], bad: _Bad) -> None:
    if not isinstance(name, str):
        raise bad(key, f"{name!r} is not an activity name (the activities are {', '.join(activities)})")
    if name in ACTIONS:
        raise bad(key, f"{name!r} is an action type, not an activity (the activities are {', '.join(activities)})")
    if name not in activities:
        raise bad(key, f"{name!r} is not an activity (the activities are {', '.join(activities)})")


def _mapping(v: Any, key: str, bad: _Bad) -> dict[Any, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise bad(key, f"must be a mapping, found {type(v).__name__}")
    return v


def _section(v: Any, key: str, keys: tuple[str, ...], bad: _Bad) -> dict[Any, Any]:
    """A mapping whose keys must be among ``keys``."""
    out = _mapping(v, key, bad)
    for k in out:
        if k not in keys:
            raise bad(f"{key}.{k}", f"unknown key (the keys are {', '.join(keys)})")
    return out


def _int(v: Any, key: str, bad: _Bad) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise bad(key, f"{v!r} must be a whole number")
    return v


# --- scenarios --------------------------------------------------------------------

def load_scenario(path: str | Path, config: WorldConfig) -> Scenario:
    """A scenario file: schedules (per agent name, slots of hour, activity,
    location) and scripted events (tick, type, agents, location, prompt),
    checked against ``config``."""
    source = str(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with schedules: and scripted_events:, "
                          f"found {type(data).__name__}")
    return parse_scenario(data, source, config)


def parse_scenario(data: dict, source: str, config: WorldConfig) -> Scenario:
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {why}")

    for k in data:
        if k not in SCENARIO_KEYS:
            raise bad(str(k), f"unknown key (the keys are {', '.join(sorted(SCENARIO_KEYS))})")
    schedules: dict[str, list[ScheduleSlot]] = {}
    for agent, slots in _mapping(data.get("schedules"), "schedules", bad).items():
        if not isinstance(slots, list):
            raise bad(f"schedules.{agent}", "must be a list of {hour, activity, location}")
        out: list[ScheduleSlot] = []
        for i, slot in enumerate(slots):
            key = f"schedules.{agent}[{i}]"
            slot = _section(slot, key, ("hour", "activity", "location"), bad)
            hour = _int(slot.get("hour"), f"{key}.hour", bad)
            if not config.start_hour <= hour < config.end_hour:
                raise bad(f"{key}.hour", f"{hour} is outside the day ({config.start_hour}-{config.end_hour})")
            _check_activity(slot.get("activity"), f"{key}.activity", config.activities, bad)
            loc = _check_location(slot.get("location", config.activities[slot["activity"]].location),
                                  f"{key}.location", config.locations, bad)
            out.append({"hour": hour, "activity": slot["activity"], "location": loc})
        schedules[str(agent)] = sorted(out, key=lambda s: s["hour"])
    events = []
    raw_events = data.get("scripted_events") or []
    if not isinstance(raw_events, list):
        raise bad("scripted_events", "must be a list of {tick, type, agents, location, prompt}")
    for i, ev in enumerate(raw_events):
        key = f"scripted_events[{i}]"
        ev = _section(ev, key, tuple(sorted(EVENT_KEYS)), bad)
        tick = _int(ev.get("tick"), f"{key}.tick", bad)
        if not 0 <= tick < config.ticks_per_day:
            raise bad(f"{key}.tick", f"{tick} is outside the day's ticks 0..{config.ticks_per_day - 1}")
        day = ev.get("day")
        if day is not None and (_int(day, f"{key}.day", bad) < 1):
            raise bad(f"{key}.day", f"{day} must be 1 or more (the first day is 1)")
        etype = ev.get("type")
        if not isinstance(etype, str):
            raise bad(f"{key}.type", f"{etype!r} is not an action type (the action types are {', '.join(ACTIONS)})")
        if etype in config.activities:
            raise bad(f"{key}.type", f"{etype!r} is an activity, not an action type (the action types are "
                                     f"{', '.join(ACTIONS)})")
        if etype not in ACTIONS:
            raise bad(f"{key}.type", f"{etype!r} is not an action type (the action types are {', '.join(ACTIONS)})")
        agents = ev.get("agents") or []
        if not isinstance(agents, list) or not agents or not all(isinstance(a, str) for a in agents):
            raise bad(f"{key}.agents", "must be a non-empty list of agent names")
        if len(set(agents)) != len(agents):
            raise bad(f"{key}.agents", "names an agent twice")
        if etype == "duo_chat" and len(agents) != 2:
            raise bad(f"{key}.agents", f"a duo_chat is two agents, not {len(agents)}")
        if etype == "group_meeting" and len(agents) < 3:
            raise bad(f"{key}.agents", f"a group_meeting is 3 agents or more, not {len(agents)} (two is a duo_chat)")
        where = ev.get("location")
        if where is not None:
            _check_location(where, f"{key}.location", config.locations, bad)
        if etype == "move" and where is None:
            raise bad(f"{key}.location", "a scripted move needs the location to go to")
        if etype in ("duo_chat", "group_meeting") and where is None:
            # agents elsewhere need ticks to get there: the place is what lets them leave in time
            raise bad(f"{key}.location", f"a scripted {etype} needs the location where they meet")
        act = ev.get("activity")
        if act is not None:
            _check_activity(act, f"{key}.activity", config.activities, bad)
        prompt = ev.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise bad(f"{key}.prompt", "must be text")
        events.append(ScriptedEvent(day, tick, etype, tuple(agents), where, prompt, act))
    return Scenario(str(data.get("name") or Path(source).stem), schedules, events, source,
                    copy.deepcopy(data))
