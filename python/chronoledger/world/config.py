"""The world a run happens in (world_config.yaml) and the scenarios played
in it: read, checked, and turned into arrays the scheduler indexes.

Every problem is a ConfigError naming the file and the key
(``world.yaml: time_preferences.morning[2]: 'move' is an action type, not an
activity``).  A file of your own may give any subset of the keys; the rest
come from the packaged defaults (defaults/world_config.yaml).
"""

from __future__ import annotations

import contextlib
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
from chronoledger.world.actions import BUILT_IN, action_names, registered
from chronoledger.world.memory import MemorySettings
from chronoledger.world.memory import parse_settings as parse_memory

# libyaml's loader when PyYAML was built with it (the union: either class may be bound)
_Loader: type[yaml.SafeLoader | yaml.CSafeLoader]
try:
    from yaml import CSafeLoader as _Loader
except ImportError:                                   # pragma: no cover - PyYAML without libyaml
    from yaml import SafeLoader as _Loader

#: The plan's five action types, in the order the scheduler numbers them (with any registered after them:
#: actions.action_names()).
ACTIONS = BUILT_IN
PERIODS = ("morning", "midday", "afternoon", "evening")
#: The hour at which each period ends (evening runs to midnight).
PERIOD_ENDS = (11, 14, 18, 24)
CONFIG_KEYS = frozenset({"default_hours", "start_date", "action_weights", "locations", "location_graph", "activities",
                         "time_preferences", "guardrails", "memory"})
GUARDRAILS = ("max_actions_per_agent_per_day", "max_concurrent_chats", "min_cooldown_between_duo_chats_minutes",
              "max_location_travel_per_day")
SCENARIO_KEYS = frozenset({"name", "description", "schedules", "scripted_events",
                           # the world sandbox's form (scenarios/weekend_getaway.yaml)
                           "scenario", "events", "action_weights"})
#: The sandbox's ``scenario:`` block.
SCENARIO_BLOCK_KEYS = ("name", "description", "duration_days", "start_hour", "end_hour")
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
    memory: MemorySettings = field(default_factory=MemorySettings)

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
    """One slot of an agent's scenario schedule: from ``hour``, ``activity`` at ``location``.
    ``action``: the action type the slot names where the file gives one instead of an
    activity (the sandbox's ``activity: duo_chat``), else None; ``activity`` is then the
    place's own (the first by name that happens there)."""
    hour: int
    activity: str
    location: str
    action: str | None


@dataclass
class Scenario:
    name: str
    schedules: dict[str, list[ScheduleSlot]]      # agent name -> slots, by hour
    events: list[ScriptedEvent]
    source: str = ""
    raw: dict = field(default_factory=dict, repr=False)
    description: str = ""
    days: int | None = None                       # how many days it lasts (duration_days), if it says
    #: what the scenario sets of the world config, as "section.key": value ("default_hours.start_hour",
    #: "action_weights.move"...); laid over the config by :func:`with_scenario`
    settings: dict = field(default_factory=dict)


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


def load_config(path: str | Path | None = None, *, overrides: dict | None = None,
                scenario: tuple[str, dict] | None = None) -> WorldConfig:
    """The packaged defaults, with the keys of the file at ``path`` (if any),
    then what a scenario sets (``(its file, {"section.key": value})``), then
    ``overrides`` (e.g. hours from the command line) laid over them."""
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
            raise ConfigError(f"{source}: unknown key{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(map(repr, unknown))} (the keys are {', '.join(sorted(CONFIG_KEYS))})")
        for key, value in mine.items():
            if key in ("default_hours", "guardrails", "action_weights", "memory") and isinstance(value, dict) \
                    and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}          # a partial section keeps the other defaults
            else:
                data[key] = value
        packaged = default_config_data()
        if "location_graph" in mine and "locations" not in mine:
            # the sandbox's form: the places are the graph's own (attributes from the packaged place of that
            # name, any case)
            data["locations"] = _places_of_graph(mine["location_graph"], packaged["locations"])
        if "activities" not in mine:
            if "time_preferences" in mine:
                # the activities the preferences name, from those this package knows (its own, the sandbox's)
                data["activities"] = _named_activities(mine["time_preferences"], packaged["activities"])
            elif "locations" not in mine and "location_graph" in mine:
                # the packaged activities that have a place in this world, and the preferences for them
                data["activities"] = kept = _placed(packaged["activities"], data["locations"])
                data["time_preferences"] = {p: [n for n in names if n in kept]
                                            for p, names in packaged["time_preferences"].items()}
    layers = [(scenario[1], f"from {scenario[0]}")] if scenario else []
    for layer, said in layers + [(overrides or {}, "from the command line")]:
        for key, value in layer.items():
            section, _, name = key.partition(".")
            if not isinstance(data.setdefault(section, {}), dict):
                raise ConfigError(f"{source}: {section}: must be a mapping, found {type(data[section]).__name__}")
            data[section][name] = value
    if scenario and scenario[1]:
        source += f" with {', '.join(f'{k}={v}' for k, v in scenario[1].items())} from {scenario[0]}"
    if overrides:
        source += f" with {', '.join(f'{k}={v}' for k, v in overrides.items())} from the command line"
    return parse_config(data, source)


def known_activities(packaged: dict) -> dict:
    """Every activity a config may name without declaring it: the packaged
    ones, then the world sandbox's (defaults/sandbox_activities.yaml)."""
    with resources.as_file(resources.files("chronoledger.world").joinpath("defaults")
                           .joinpath("sandbox_activities.yaml")) as p:
        sandbox = _read_yaml(p)
    return {**sandbox, **(packaged if isinstance(packaged, dict) else {})}


def _named_activities(prefs: Any, packaged: dict) -> dict:
    known = known_activities(packaged)
    names: list[str] = []
    if isinstance(prefs, dict):
        for v in prefs.values():
            if isinstance(v, list):
                names += [n for n in v if isinstance(n, str) and n not in names]
    # a name nobody knows is left out here and named by parse_config's check of the preferences
    return {n: known[n] for n in names if n in known} or known


def _placed(activities: dict, places: dict) -> dict:
    """The activities whose place (by name or kind, any case) is among ``places``."""
    names = {str(n).lower() for n in places} | {str(p.get("kind", n)).lower() for n, p in places.items()
                                                if isinstance(p, dict)}
    return {a: spec for a, spec in activities.items()
            if isinstance(spec, dict) and str(spec.get("location", "")).lower() in names}


def _places_of_graph(graph: Any, packaged: dict) -> dict:
    names: list[str] = []
    if isinstance(graph, dict):
        for a, edges in graph.items():
            for n in [a, *(edges if isinstance(edges, dict) else [])]:
                if isinstance(n, str) and n not in names:
                    names.append(n)
    by_lower = {str(k).lower(): v for k, v in (packaged or {}).items()}
    out = {}
    for n in names:
        spec = by_lower.get(n.lower())
        out[n] = dict(spec) if isinstance(spec, dict) else {"kind": n.lower(), "capacity": 100_000,
                                                           "open_hours": [0, 24]}
    return out


class _Listed(ConfigError):
    """The problems of a file, said at once (a ConfigError)."""


class _Problems:
    """Every problem of a file, said at once (``ConfigError`` listing them)."""

    def __init__(self, source: str):
        self.source = source
        self.found: list[str] = []

    def __call__(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {why}")

    @contextlib.contextmanager
    def section(self):
        """A part of the file checked on its own: its first problem is noted and the rest go on."""
        try:
            yield
        except ConfigError as exc:
            self.found.append(str(exc))

    def raise_any(self) -> None:
        if len(self.found) == 1:
            raise _Listed(self.found[0])
        if self.found:
            raise _Listed(f"{self.source}: {len(self.found)} problems:\n  " + "\n  ".join(
                f[len(self.source) + 2:] if f.startswith(self.source + ": ") else f for f in self.found))


def parse_config(data: dict, source: str) -> WorldConfig:
    bad = _Problems(source)
    try:
        return _parse_config(data, source, bad)
    except _Listed:
        raise
    except ConfigError as exc:                         # a problem that stops the check (the day's hours)
        bad.found.append(str(exc))
    bad.raise_any()
    raise AssertionError("unreachable")                  # pragma: no cover - raise_any raised


def _parse_config(data: dict, source: str, bad: _Problems) -> WorldConfig:
    """The checked config; each section's first problem is noted and the
    other sections still checked, so that a file's problems are said at once."""
    hours = _mapping(data.get("default_hours"), "default_hours", bad)
    start, end, tick = (_int(hours.get(k), f"default_hours.{k}", bad) for k in ("start_hour", "end_hour",
                                                                               "tick_minutes"))
    if not 0 <= start < end <= 24:
        raise bad("default_hours", f"start_hour {start} and end_hour {end} must satisfy 0 <= start < end <= 24")
    if tick <= 0 or ((end - start) * 60) % tick:
        raise bad("default_hours.tick_minutes", f"{tick} must be positive and divide the day's "
                                                f"{(end - start) * 60} minutes")
    start_date = date(2026, 1, 5)
    with bad.section():
        start_date = _start_date(data.get("start_date", start_date), bad)
    weights = {a: 1.0 for a in action_names()}
    with bad.section():
        weights = _action_weights(data.get("action_weights"), "action_weights", bad)

    locations: dict[str, Location] = {}
    for name, spec in _mapping(data.get("locations"), "locations", bad).items():
        with bad.section():
            locations[str(name)] = _location(name, spec, bad)
    if not locations and not bad.found:
        raise bad("locations" if data.get("locations") or "location_graph" not in data else "location_graph",
                  "at least one location is needed")
    lower: dict[str, str] = {}
    for n in sorted(locations):
        if n.lower() in lower:                  # names are found in any case: two would be one
            bad.found.append(str(bad(f"locations.{n}", f"{n!r} and {lower[n.lower()]!r} differ only in case")))
        lower.setdefault(n.lower(), n)

    activities: dict[str, Activity] = {}
    refused: set[str] = set()                    # declared, with a problem already said
    declared_activities: dict = {}
    with bad.section():
        declared_activities = _mapping(data.get("activities"), "activities", bad)
    for name, spec in declared_activities.items():
        with bad.section():
            refused.add(str(name))
            activities[str(name)] = _activity(name, spec, locations, bad)
            refused.discard(str(name))
    if not activities and not bad.found:
        raise bad("activities", "at least one activity is needed")

    prefs: dict = {}
    with bad.section():
        prefs = _mapping(data.get("time_preferences"), "time_preferences", bad)
    time_preferences: dict[str, list[str]] = {}
    for period in prefs:
        if period not in PERIODS:
            bad.found.append(str(bad(f"time_preferences.{period}",
                                     f"not a part of the day (they are {', '.join(PERIODS)})")))
    for period in PERIODS:
        names = prefs.get(period, [])
        if not isinstance(names, list):
            bad.found.append(str(bad(f"time_preferences.{period}", "must be a list of activity names")))
            names = []
        for i, n in enumerate(names):
            if isinstance(n, str) and n in refused:
                continue                         # its own problem is said where it is declared
            with bad.section():
                _check_activity(n, f"time_preferences.{period}[{i}]", activities, bad)
        time_preferences[period] = [n for n in names if isinstance(n, str) and n in activities] \
            or sorted(activities)                                                     # name order

    guardrails = {}
    with bad.section():
        guardrails = _guardrails(data.get("guardrails"), bad)
    memory = MemorySettings()
    with bad.section():
        memory = parse_memory(data.get("memory"), bad)

    # Name order, not the file's: the simulation indexes places and activities by position, and a
    # config stored as JSON with sorted keys (a run's log) must give the same run.
    locations = dict(sorted(locations.items()))
    activities = dict(sorted(activities.items()))
    travel = np.zeros((len(locations), len(locations)))
    with bad.section():
        travel = _travel_matrix(data.get("location_graph"), list(locations), bad)
    bad.raise_any()
    raw = copy.deepcopy({k: data.get(k) for k in sorted(CONFIG_KEYS)})
    declared = raw.get("activities")
    for name, a in activities.items():           # the place as found (Cafe for cafe), which a replay reads
        spec = declared.get(name) if isinstance(declared, dict) else None
        if isinstance(spec, dict):
            spec["location"] = a.location
    return WorldConfig(start, end, tick, start_date, weights, locations, activities, time_preferences, guardrails,
                       travel, source, raw, memory)


def _start_date(v: Any, bad: _Bad) -> date:
    if isinstance(v, str):
        try:
            v = date.fromisoformat(v)
        except ValueError:
            raise bad("start_date", f"{v!r} is not a date (YYYY-MM-DD)") from None
    if not isinstance(v, date):
        raise bad("start_date", "must be a date (YYYY-MM-DD)")
    # a run's times are microseconds since 1970 in its log, and minutes since 1970 in its memories (int32)
    if not date(1970, 1, 1) <= v <= date(5999, 12, 31):
        raise bad("start_date", f"{v.isoformat()} is outside 1970-01-01..5999-12-31")
    return v


def _action_weights(v: Any, key: str, bad: _Bad) -> dict[str, float]:
    weights = _mapping(v, key, bad)
    names = action_names()
    for k, w in weights.items():
        if k not in names:
            raise bad(f"{key}.{k}", f"not an action type (the action types are {', '.join(names)}; register one "
                                    f"of your own with chronoledger.world.actions.register_action)")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise bad(f"{key}.{k}", f"{w!r} must be a number >= 0")
    out = {a.name: float(weights.get(a.name, a.default_weight if a.name not in BUILT_IN else 0.0))
           for a in registered()}
    if sum(out.values()) <= 0:
        raise bad(key, "at least one weight must be above 0")
    return out


def _location(name: Any, spec: Any, bad: _Bad) -> Location:
    key = f"locations.{name}"
    spec = _section(spec, key, ("kind", "capacity", "open_hours"), bad)
    cap = _int(spec.get("capacity"), f"{key}.capacity", bad)
    oh = spec.get("open_hours", [0, 24])
    if not (isinstance(oh, list) and len(oh) == 2 and all(isinstance(h, int) and not isinstance(h, bool)
                                                            for h in oh) and 0 <= oh[0] < oh[1] <= 24):
        raise bad(f"{key}.open_hours", f"{oh!r} must be [open, close] hours with 0 <= open < close <= 24")
    if cap <= 0:
        raise bad(f"{key}.capacity", f"{cap} must be above 0")
    return Location(str(name), str(spec.get("kind", name)), cap, oh[0], oh[1])


def _activity(name: Any, spec: Any, locations: dict[str, Location], bad: _Bad) -> Activity:
    key = f"activities.{name}"
    if name in action_names():
        raise bad(key, f"{name!r} is an action type; an activity needs another name")
    spec = _section(spec, key, ("category", "duration_minutes", "location", "prompt_template"), bad)
    loc = _place(spec.get("location"), f"{key}.location", locations, bad)
    minutes = _int(spec.get("duration_minutes", 60), f"{key}.duration_minutes", bad)
    if minutes <= 0:
        raise bad(f"{key}.duration_minutes", f"{minutes} must be above 0")
    return Activity(str(name), str(spec.get("category", "other")), minutes, loc,
                    str(spec.get("prompt_template", "{agent} does " + str(name) + ".")))


def _place(name: Any, key: str, locations: dict[str, Location], bad: _Bad) -> str:
    """The location ``name`` names: by name, else by name in any case, else the first (by name) of
    that kind: an activity known by the kind of its place (``office``) finds a config's ``Office``."""
    if isinstance(name, str) and name not in locations:
        same = sorted(n for n in locations if n.lower() == name.lower()) or \
            sorted(n for n, loc in locations.items() if loc.kind.lower() == name.lower())
        if same:
            return same[0]
    return _check_location(name, key, locations, bad)


def _guardrails(v: Any, bad: _Bad) -> dict[str, int]:
    rails = _mapping(v, "guardrails", bad)
    for k in rails:
        if k not in GUARDRAILS:
            raise bad(f"guardrails.{k}", f"unknown guardrail (they are {', '.join(GUARDRAILS)})")
    out = {}
    for k in GUARDRAILS:
        n = _int(rails.get(k), f"guardrails.{k}", bad)
        if n < 0:
            raise bad(f"guardrails.{k}", f"{n} must be >= 0")
        out[k] = n
    return out


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
    if name in action_names():
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
    checked against ``config``.  The world sandbox's form is read as it is:
    a ``scenario:`` block (name, description, duration_days, start_hour,
    end_hour), ``events:``, ``action_weights:`` and schedules as a list of
    ``agent_name`` and ``slots``.  Every problem is said at once."""
    source = str(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with schedules: and scripted_events:, "
                          f"found {type(data).__name__}")
    return parse_scenario(data, source, config)


def with_scenario(config_path: str | Path | None, scenario_path: str | Path, *,
                  overrides: dict | None = None) -> tuple[WorldConfig, Scenario]:
    """The world config with what the scenario sets of it (its hours, its
    action weights) laid over it, ``overrides`` (the command line's) over
    both, and the scenario checked against the result (its slots and events
    against the hours the run will have)."""
    source = str(scenario_path)
    data = _read_yaml(scenario_path)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with schedules: and scripted_events:, "
                          f"found {type(data).__name__}")
    settings = scenario_settings(data, source)
    config = load_config(config_path, overrides=overrides, scenario=(source, settings) if settings else None)
    return config, parse_scenario(data, source, config)


def scenario_settings(data: dict, source: str) -> dict[str, Any]:
    """What a scenario sets of the world config, as "section.key": value:
    its ``scenario:`` block's hours and the action weights it gives (only
    those: the config's others stay)."""
    bad = _Problems(source)
    out: dict[str, Any] = {}
    block = data.get("scenario")
    if isinstance(block, dict):
        hours = {}
        for k in ("start_hour", "end_hour"):
            if k in block:
                with bad.section():
                    hours[k] = _int(block[k], f"scenario.{k}", bad)
        first, last = hours.get("start_hour"), hours.get("end_hour")
        if first is not None and not 0 <= first < 24:
            bad.found.append(str(bad("scenario.start_hour", f"{first} must be an hour from 0 to 23")))
        elif last is not None and not 0 < last <= 24:
            bad.found.append(str(bad("scenario.end_hour", f"{last} must be an hour from 1 to 24")))
        elif first is not None and last is not None and first >= last:
            bad.found.append(str(bad("scenario.end_hour", f"{last} must come after start_hour {first}")))
        out.update({f"default_hours.{k}": v for k, v in hours.items()})
    weights = data.get("action_weights")
    if weights is not None:
        with bad.section():
            given = _mapping(weights, "action_weights", bad)
            checked = _action_weights({**{a: 1.0 for a in action_names()}, **given}, "action_weights", bad)
            out.update({f"action_weights.{a}": checked[a] for a in given})
    bad.raise_any()
    return out


def parse_scenario(data: dict, source: str, config: WorldConfig) -> Scenario:
    bad = _Problems(source)
    for k in data:
        if k not in SCENARIO_KEYS:
            bad.found.append(str(bad(str(k), f"unknown key (the keys are {', '.join(sorted(SCENARIO_KEYS))})")))
    block: dict = {}
    days = None
    with bad.section():
        block = _section(data.get("scenario"), "scenario", SCENARIO_BLOCK_KEYS, bad)
        if "duration_days" in block:
            days = _int(block["duration_days"], "scenario.duration_days", bad)
            if days < 1:
                raise bad("scenario.duration_days", f"{days} must be 1 or more")
        for k in ("name", "description"):
            if k in block and not isinstance(block[k], str):
                raise bad(f"scenario.{k}", "must be text")
    settings: dict[str, Any] = {}
    with bad.section():
        settings = scenario_settings(data, source)
    # slots and events are checked against the hours the run has (with_scenario lays the scenario's on it)
    first, last = config.start_hour, config.end_hour

    schedules: dict[str, list[ScheduleSlot]] = {}
    for agent, slots, key in _schedule_entries(data.get("schedules"), bad):
        out: list[ScheduleSlot] = []
        for i, slot in enumerate(slots):
            with bad.section():
                out.append(_slot(slot, f"{key}[{i}]", config, first, last, bad))
        schedules[agent] = sorted(out, key=lambda s: s["hour"])

    events = []
    if data.get("scripted_events") is not None and data.get("events") is not None:
        bad.found.append(str(bad("events", "give scripted events as scripted_events: or events:, not both")))
    ev_key = "events" if data.get("events") is not None else "scripted_events"
    raw_events = data.get(ev_key) or []
    ticks = ((last - first) * 60) // config.tick_minutes
    if not isinstance(raw_events, list):
        bad.found.append(str(bad(ev_key, "must be a list of {tick, type, agents, location, prompt}")))
        raw_events = []
    for i, ev in enumerate(raw_events):
        with bad.section():
            events.append(_event(ev, f"{ev_key}[{i}]", config, ticks, bad))
    bad.raise_any()
    name = block.get("name") or data.get("name") or Path(source).stem
    description = block.get("description") or data.get("description") or ""
    return Scenario(str(name), schedules, events, source, copy.deepcopy(data), str(description), days, settings)


def _schedule_entries(v: Any, bad: _Problems) -> list[tuple[str, list, str]]:
    """(agent, slots, key) of either form: a mapping of agent name to slots, or the sandbox's list
    of {agent_name, slots}."""
    out: list[tuple[str, list, str]] = []
    if isinstance(v, list):
        for i, entry in enumerate(v):
            key = f"schedules[{i}]"
            with bad.section():
                entry = _section(entry, key, ("agent_name", "slots"), bad)
                agent = entry.get("agent_name")
                if not isinstance(agent, str) or not agent:
                    raise bad(f"{key}.agent_name", "must be the agent's name")
                slots = entry.get("slots") or []
                if not isinstance(slots, list):
                    raise bad(f"{key}.slots", "must be a list of {hour, activity, location}")
                if any(a == agent for a, _s, _k in out):
                    raise bad(f"{key}.agent_name", f"{agent!r} is given twice; give all its slots in one entry")
                out.append((agent, slots, f"{key}.slots"))
        return out
    try:
        entries = _mapping(v, "schedules", bad)
    except ConfigError as exc:
        bad.found.append(str(exc))
        entries = {}
    for agent, slots in entries.items():
        if not isinstance(slots, list):
            bad.found.append(str(bad(f"schedules.{agent}", "must be a list of {hour, activity, location}")))
            continue
        out.append((str(agent), slots, f"schedules.{agent}"))
    return out


def _slot(slot: Any, key: str, config: WorldConfig, first: int, last: int, bad: _Bad) -> ScheduleSlot:
    slot = _section(slot, key, ("hour", "activity", "location"), bad)
    hour = _int(slot.get("hour"), f"{key}.hour", bad)
    if not first <= hour < last:
        raise bad(f"{key}.hour", f"{hour} is outside the day ({first}-{last})")
    what = slot.get("activity")
    action = None
    if isinstance(what, str) and what in action_names() and what not in config.activities:
        # the sandbox's slot of an action type: the agent is at the place, doing what happens there
        action = what
        if slot.get("location") is None:
            raise bad(f"{key}.location", f"a slot of the action type {what!r} needs the location where it happens")
        where = _place(slot.get("location"), f"{key}.location", config.locations, bad)
        here = sorted(n for n, a in config.activities.items() if a.location == where)
        what = here[0] if here else config.time_preferences[config.period(hour)][0]
    else:
        _check_activity(what, f"{key}.activity", config.activities, bad)
        where = _place(slot.get("location", config.activities[what].location), f"{key}.location",
                       config.locations, bad)
    return {"hour": hour, "activity": what, "location": where, "action": action}


def _event(ev: Any, key: str, config: WorldConfig, ticks: int, bad: _Bad) -> ScriptedEvent:
    ev = _section(ev, key, tuple(sorted(EVENT_KEYS)), bad)
    tick = _int(ev.get("tick"), f"{key}.tick", bad)
    if not 0 <= tick < ticks:
        raise bad(f"{key}.tick", f"{tick} is outside the day's ticks 0..{ticks - 1}")
    day = ev.get("day")
    if day is not None and (_int(day, f"{key}.day", bad) < 1):
        raise bad(f"{key}.day", f"{day} must be 1 or more (the first day is 1)")
    etype = ev.get("type")
    names = action_names()
    if not isinstance(etype, str):
        raise bad(f"{key}.type", f"{etype!r} is not an action type (the action types are {', '.join(names)})")
    if etype in config.activities:
        raise bad(f"{key}.type", f"{etype!r} is an activity, not an action type (the action types are "
                                 f"{', '.join(names)})")
    if etype not in names:
        raise bad(f"{key}.type", f"{etype!r} is not an action type (the action types are {', '.join(names)})")
    agents = ev.get("agents") or []
    if not isinstance(agents, list) or not agents or not all(isinstance(a, str) for a in agents):
        raise bad(f"{key}.agents", "must be a non-empty list of agent names")
    if len(set(agents)) != len(agents):
        raise bad(f"{key}.agents", "names an agent twice")
    if etype == "duo_chat" and len(agents) != 2:
        raise bad(f"{key}.agents", f"a duo_chat is two agents, not {len(agents)}")
    if etype == "group_meeting" and len(agents) < 2:
        raise bad(f"{key}.agents", f"a group_meeting is 2 agents or more, not {len(agents)}")
    where = ev.get("location")
    if where is not None:
        where = _place(where, f"{key}.location", config.locations, bad)
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
    return ScriptedEvent(day, tick, etype, tuple(agents), where, prompt, act)
