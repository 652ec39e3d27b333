"""chronoledger.world.config: the packaged defaults, a file laid over them,
and every refusal naming the file and the key (world_config.yaml and
scenarios)."""

from __future__ import annotations

import json
import re
from datetime import date

import numpy as np
import pytest
from _world_data import TRAVEL_CONFIG, WEEKEND, write
from chronoledger.errors import ConfigError
from chronoledger.world import config as wconfig
from chronoledger.world.config import ACTIONS, PERIODS

THREE_PLACES = """\
locations:
  home: {kind: home, capacity: 10}
  cafe: {kind: cafe, capacity: 10}
  gym:  {kind: gym, capacity: 10}
activities:
  rest: {location: home}
time_preferences: {}
"""


def refused(path, *parts):
    """load_config(path) raises a ConfigError naming the file and each of ``parts``."""
    with pytest.raises(ConfigError) as exc:
        wconfig.load_config(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: "), msg
    for p in parts:
        assert p in msg, (p, msg)
    return msg


def refused_scenario(path, config, *parts):
    with pytest.raises(ConfigError) as exc:
        wconfig.load_scenario(path, config)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: "), msg
    for p in parts:
        assert p in msg, (p, msg)
    return msg


# --- what loads ---------------------------------------------------------------------

def test_the_packaged_defaults():
    cfg = wconfig.load_config()
    assert cfg.source == "defaults"
    assert (cfg.start_hour, cfg.end_hour, cfg.tick_minutes, cfg.ticks_per_day) == (8, 20, 60, 12)
    assert cfg.start_date == date(2026, 1, 5)
    assert len(cfg.locations) >= 5 and len(cfg.activities) >= 6
    assert cfg.location_names == sorted(cfg.location_names)            # indexed in name order
    assert set(cfg.time_preferences) == set(PERIODS)
    assert set(cfg.action_weights) == set(ACTIONS) and sum(cfg.action_weights.values()) > 0
    assert set(cfg.guardrails) == set(wconfig.GUARDRAILS)
    d = cfg.travel_minutes
    assert (np.diag(d) == 0).all() and (d == d.T).all() and (d[~np.eye(len(d), dtype=bool)] > 0).all()
    i = cfg.location_names.index
    # shortest routes: office -> park has no edge; via the cafe it is 8 + 10
    assert d[i("office"), i("park")] == 18


def test_a_file_of_some_keys_keeps_the_other_defaults(tmp_path):
    path = write(tmp_path / "mine.yaml", """\
        default_hours: {tick_minutes: 30}
        guardrails: {max_concurrent_chats: 3}
        start_date: 2027-03-01
        """)
    cfg = wconfig.load_config(path)
    assert cfg.source == str(path)
    assert (cfg.start_hour, cfg.end_hour, cfg.tick_minutes) == (8, 20, 30)
    assert cfg.guardrails["max_concurrent_chats"] == 3
    assert cfg.guardrails["max_actions_per_agent_per_day"] == 10
    assert cfg.start_date == date(2027, 3, 1)
    assert cfg.locations == wconfig.load_config().locations


def test_overrides_lay_over_the_file(tmp_path):
    path = write(tmp_path / "t.yaml", TRAVEL_CONFIG)
    cfg = wconfig.load_config(path, overrides={"default_hours.tick_minutes": 20,
                                               "guardrails.max_concurrent_chats": 1})
    assert cfg.tick_minutes == 20 and cfg.ticks_per_day == 36
    assert cfg.guardrails["max_concurrent_chats"] == 1
    assert (cfg.travel_ticks()[~np.eye(3, dtype=bool)] == 4).all()            # 80 minutes in 20-minute ticks
    assert sorted(cfg.locations) == ["cafe", "home", "office"]


def test_the_raw_settings_survive_json_and_give_the_same_config_back(tmp_path):
    a = wconfig.load_config()
    # as a run's log and its runs row keep them
    again = wconfig.parse_config(json.loads(json.dumps(a.raw, default=str)), "again")
    assert again.location_names == a.location_names and again.activity_names == a.activity_names
    assert (again.travel_minutes == a.travel_minutes).all() and again.guardrails == a.guardrails


def test_the_example_scenario_loads():
    cfg = wconfig.load_config()
    sc = wconfig.load_scenario(WEEKEND, cfg)
    assert sc.name == "weekend_getaway" and sc.source == str(WEEKEND)
    assert set(sc.schedules) == {"Ava", "Ben", "Cleo"}
    assert sc.schedules["Ava"][0] == {"hour": 8, "activity": "coffee_break", "location": "cafe", "action": None}
    assert [(e.day, e.tick, e.type) for e in sc.events] == [(None, 1, "move"), (1, 3, "group_meeting"),
                                                            (None, 6, "duo_chat"), (2, 9, "solo_reflection")]
    assert sc.events[1].agents == ("Ava", "Ben", "Cleo") and sc.events[1].location == "park"


def test_a_scenario_slot_takes_the_activity_location_by_default(tmp_path):
    cfg = wconfig.load_config()
    sc = wconfig.load_scenario(write(tmp_path / "s.yaml", """\
        schedules:
          Ava: [{hour: 15, activity: reading}, {hour: 9, activity: walk, location: cafe}]
        """), cfg)
    assert sc.schedules["Ava"] == [{"hour": 9, "activity": "walk", "location": "cafe", "action": None},
                                   {"hour": 15, "activity": "reading", "location": "library", "action": None}]
    assert sc.name == "s" and sc.events == []


# --- refusals: world config ---------------------------------------------------------------

def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path / "world.yaml", "default_hours: {tick_minutes: 30}\ncolour: blue\n")
    msg = refused(path, "unknown key 'colour'")
    assert "guardrails" in msg and "time_preferences" in msg           # the keys there are


def test_an_action_type_used_as_an_activity(tmp_path):
    path = write(tmp_path / "world.yaml", "time_preferences:\n  morning: [deep_work, move]\n")
    refused(path, "time_preferences.morning[1]", "'move' is an action type, not an activity")


def test_an_unknown_activity_in_time_preferences(tmp_path):
    path = write(tmp_path / "world.yaml", "time_preferences:\n  evening: [knitting]\n")
    refused(path, "time_preferences.evening[0]", "'knitting' is not an activity")


def test_an_unknown_part_of_the_day(tmp_path):
    path = write(tmp_path / "world.yaml", "time_preferences:\n  night: [walk]\n")
    refused(path, "time_preferences.night", "not a part of the day")


def test_an_activity_named_like_an_action_type(tmp_path):
    path = write(tmp_path / "world.yaml", "activities:\n  duo_chat: {location: home}\n")
    refused(path, "activities.duo_chat", "is an action type")


def test_an_activity_at_an_unknown_location(tmp_path):
    path = write(tmp_path / "world.yaml", "activities:\n  swim: {category: wellness, location: pool}\n")
    refused(path, "activities.swim.location", "'pool' is not a location")


def test_a_location_missing_from_the_graph(tmp_path):
    path = write(tmp_path / "world.yaml", THREE_PLACES + "location_graph:\n  home: {cafe: 5}\n")
    refused(path, "location_graph", "'gym' is missing from the graph")


def test_a_graph_in_two_parts(tmp_path):
    text = THREE_PLACES.replace("  gym:  {kind: gym, capacity: 10}\n",
                                "  gym:  {kind: gym, capacity: 10}\n  park: {kind: park, capacity: 10}\n")
    path = write(tmp_path / "world.yaml", text + "location_graph:\n  home: {cafe: 5}\n  gym: {park: 5}\n")
    msg = refused(path, "location_graph", "falls in parts")
    assert re.search(r"no route from \w+ to \w+", msg)


def test_an_unknown_location_in_the_graph(tmp_path):
    places = "locations:\n  home: {kind: home, capacity: 9}\n"
    path = write(tmp_path / "world.yaml", places + "location_graph:\n  home: {mars: 5}\n")
    refused(path, "location_graph.home.mars", "'mars' is not a location")
    path = write(tmp_path / "world2.yaml", places + "location_graph:\n  moon: {home: 5}\n")
    refused(path, "location_graph.moon", "'moon' is not a location")


def test_a_graph_without_locations_declares_its_places(tmp_path):
    """The world sandbox's form: its places are the graph's; a packaged place of the same name (any case)
    lends its attributes, and the packaged activities that have a place here stay."""
    path = write(tmp_path / "world.yaml", "location_graph:\n  Home: {Mars: 5}\n")
    cfg = wconfig.load_config(path)
    assert list(cfg.locations) == ["Home", "Mars"]
    assert (cfg.locations["Home"].kind, cfg.locations["Mars"].kind) == ("home", "mars")
    assert {a: x.location for a, x in cfg.activities.items()} == {"family_dinner": "Home"}


@pytest.mark.parametrize("edge", ["-5", "1e9", "true", "soon"])
def test_bad_travel_minutes(tmp_path, edge):
    path = write(tmp_path / "world.yaml", f"location_graph:\n  home: {{office: {edge}}}\n")
    refused(path, "location_graph.home.office", "must be minutes")


@pytest.mark.parametrize("hours, key", [
    ("{start_hour: 20, end_hour: 8}", "default_hours: start_hour 20 and end_hour 8"),
    ("{start_hour: 9, end_hour: 9}", "default_hours: start_hour 9 and end_hour 9"),
    ("{start_hour: 8, end_hour: 25}", "default_hours: start_hour 8 and end_hour 25"),
    ("{start_hour: -1}", "default_hours: start_hour -1"),
    ("{tick_minutes: 7}", "default_hours.tick_minutes: 7 must be positive and divide the day's 720 minutes"),
    ("{tick_minutes: 0}", "default_hours.tick_minutes: 0"),
    ("{tick_minutes: -30}", "default_hours.tick_minutes: -30"),
    ("{start_hour: 9, end_hour: 10, tick_minutes: 45}", "default_hours.tick_minutes: 45"),
    ("{tick_minutes: 30.5}", "default_hours.tick_minutes: 30.5 must be a whole number"),
    ("{start_hour: '8'}", "default_hours.start_hour: '8' must be a whole number"),
])
def test_bad_hours(tmp_path, hours, key):
    path = write(tmp_path / "world.yaml", f"default_hours: {hours}\n")
    refused(path, key)


def test_bad_hours_from_overrides_name_the_key():
    with pytest.raises(ConfigError, match=r"^defaults with default_hours.tick_minutes=7 from the command line: "
                                          r"default_hours.tick_minutes: 7 must"):
        wconfig.load_config(overrides={"default_hours.tick_minutes": 7})


@pytest.mark.parametrize("section, text, key", [
    ("action_weights", "{duo_chat: -1}", "action_weights.duo_chat: -1 must be a number >= 0"),
    ("action_weights", "{move: .nan}", "action_weights.move"),
    ("action_weights", "{move: lots}", "action_weights.move: 'lots' must be a number"),
    ("action_weights", "{move: 0, solo_reflection: 0, duo_chat: 0, group_meeting: 0, task_update: 0}",
     "action_weights: at least one weight must be above 0"),
    ("action_weights", "{dance: 1}", "action_weights.dance: not an action type"),
    ("guardrails", "{max_concurrent_chats: -1}", "guardrails.max_concurrent_chats: -1 must be >= 0"),
    ("guardrails", "{max_chats: 3}", "guardrails.max_chats: unknown guardrail"),
    ("guardrails", "{max_location_travel_per_day: 2.5}", "guardrails.max_location_travel_per_day: 2.5"),
])
def test_bad_weights_and_guardrails(tmp_path, section, text, key):
    path = write(tmp_path / "world.yaml", f"{section}: {text}\n")
    refused(path, key)


@pytest.mark.parametrize("spec, key", [
    ("{kind: home, capacity: 0}", "locations.home.capacity: 0 must be above 0"),
    ("{kind: home, capacity: -3}", "locations.home.capacity: -3"),
    ("{kind: home}", "locations.home.capacity: None must be a whole number"),
    ("{kind: home, capacity: 5, open_hours: [9, 9]}", "locations.home.open_hours"),
    ("{kind: home, capacity: 5, open_hours: [9]}", "locations.home.open_hours"),
    ("{kind: home, capacity: 5, open_hours: [0, 25]}", "locations.home.open_hours"),
    ("{kind: home, capacity: 5, seats: 3}", "locations.home.seats: unknown key"),
])
def test_bad_locations(tmp_path, spec, key):
    path = write(tmp_path / "world.yaml", f"locations:\n  home: {spec}\nlocation_graph: {{}}\n"
                                          "activities:\n  rest: {location: home}\ntime_preferences: {}\n")
    refused(path, key)


def test_malformed_yaml_names_the_line(tmp_path):
    path = write(tmp_path / "world.yaml", "default_hours:\n  start_hour: 8\n   end_hour: [\n")
    refused(path, "malformed YAML (line 3)")
    path = write(tmp_path / "world2.yaml", "guardrails: {max_concurrent_chats: 3\nlocations: {}\n")
    msg = refused(path, "malformed YAML")
    assert re.search(r"\(line \d+\)", msg)


def test_a_file_that_is_not_a_mapping_or_not_there(tmp_path):
    path = write(tmp_path / "world.yaml", "- just\n- a list\n")
    refused(path, "expected a mapping of settings, found list")
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=re.escape(f"{missing}: cannot be read")):
        wconfig.load_config(missing)


def test_a_bad_start_date(tmp_path):
    path = write(tmp_path / "world.yaml", "start_date: '2026-13-40'\n")
    refused(path, "start_date", "is not a date")
    path = write(tmp_path / "unquoted.yaml", "start_date: 2026-13-01\n")      # YAML makes it a date: no such day
    refused(path, "a value cannot be read: ", "(quote it if it is meant as text)")


@pytest.mark.parametrize("text, key", [
    ("activities:\n  walk: {location: [park]}\n", "activities.walk.location"),
    ("time_preferences: {morning: [[walk]]}\n", "time_preferences.morning[0]"),
    ("activities:\n  walk: {location: {park: 1}}\n", "activities.walk.location"),
])
def test_a_list_or_mapping_where_a_name_is_wanted_is_refused_naming_the_key(tmp_path, text, key):
    refused(write(tmp_path / "world.yaml", text), key)


def test_a_section_that_is_not_a_mapping_is_refused_even_with_command_line_hours(tmp_path):
    path = write(tmp_path / "world.yaml", "default_hours: 5\n")
    with pytest.raises(ConfigError, match="default_hours: must be a mapping") as err:
        wconfig.load_config(path, overrides={"default_hours.tick_minutes": 30})
    assert str(path) in str(err.value)


def test_an_empty_file_is_the_defaults(tmp_path):
    path = write(tmp_path / "world.yaml", "# nothing here\n")
    cfg = wconfig.load_config(path)
    assert cfg.locations == wconfig.load_config().locations and cfg.source == str(path)


# --- refusals: scenarios ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cfg():
    return wconfig.load_config()


def test_an_activity_used_as_a_scripted_event_type(tmp_path, cfg):
    path = write(tmp_path / "s.yaml", "scripted_events:\n  - {tick: 1, type: coffee_break, agents: [Ava]}\n")
    refused_scenario(path, cfg, "scripted_events[0].type", "'coffee_break' is an activity, not an action type")


def test_an_unknown_scripted_event_type(tmp_path, cfg):
    path = write(tmp_path / "s.yaml", "scripted_events:\n  - {tick: 1, type: dance, agents: [Ava]}\n")
    refused_scenario(path, cfg, "scripted_events[0].type", "'dance' is not an action type")


def test_a_scenario_slot_hour_outside_the_day(tmp_path, cfg):
    path = write(tmp_path / "s.yaml", "schedules:\n  Ava:\n    - {hour: 9, activity: walk}\n"
                                      "    - {hour: 21, activity: walk}\n")
    refused_scenario(path, cfg, "schedules.Ava[1].hour", "21 is outside the day (8-20)")
    path = write(tmp_path / "s2.yaml", "schedules:\n  Ava: [{hour: 7, activity: walk}]\n")
    refused_scenario(path, cfg, "schedules.Ava[0].hour", "7 is outside the day")
    # the last hour of the day is end_hour - 1
    path = write(tmp_path / "s3.yaml", "schedules:\n  Ava: [{hour: 20, activity: walk}]\n")
    refused_scenario(path, cfg, "schedules.Ava[0].hour")
    path = write(tmp_path / "s4.yaml", "schedules:\n  Ava: [{hour: 19, activity: walk}]\n")
    assert wconfig.load_scenario(path, cfg).schedules["Ava"][0]["hour"] == 19


def test_an_unknown_location_in_a_scenario(tmp_path, cfg):
    path = write(tmp_path / "s.yaml", "schedules:\n  Ava: [{hour: 9, activity: walk, location: moon}]\n")
    refused_scenario(path, cfg, "schedules.Ava[0].location", "'moon' is not a location")
    path = write(tmp_path / "s2.yaml", "scripted_events:\n  - {tick: 1, type: move, agents: [Ava], location: moon}\n")
    refused_scenario(path, cfg, "scripted_events[0].location", "'moon' is not a location")


@pytest.mark.parametrize("event, key, why", [
    ("{tick: 12, type: move, agents: [Ava], location: park}", "scripted_events[0].tick", "outside the day's ticks"),
    ("{tick: -1, type: move, agents: [Ava], location: park}", "scripted_events[0].tick", "outside the day's ticks"),
    ("{tick: 1, day: 0, type: move, agents: [Ava], location: park}", "scripted_events[0].day", "must be 1 or more"),
    ("{tick: 1, type: move, agents: [], location: park}", "scripted_events[0].agents", "non-empty list"),
    ("{tick: 1, type: move, agents: Ava, location: park}", "scripted_events[0].agents", "non-empty list"),
    ("{tick: 1, type: move, agents: [Ava], when: now}", "scripted_events[0].when", "unknown key"),
    ("{tick: 1, type: solo_reflection, agents: [Ava], activity: move}", "scripted_events[0].activity",
     "'move' is an action type, not an activity"),
    ("{tick: 1, type: solo_reflection, agents: [Ava], prompt: [1]}", "scripted_events[0].prompt", "must be text"),
])
def test_bad_scripted_events(tmp_path, cfg, event, key, why):
    path = write(tmp_path / "s.yaml", f"scripted_events:\n  - {event}\n")
    refused_scenario(path, cfg, key, why)


def test_scenario_ticks_follow_the_config(tmp_path):
    half = wconfig.load_config(overrides={"default_hours.tick_minutes": 30})
    path = write(tmp_path / "s.yaml", "scripted_events:\n  - {tick: 20, type: move, agents: [Ava], location: park}\n")
    assert wconfig.load_scenario(path, half).events[0].tick == 20
    refused_scenario(path, wconfig.load_config(), "scripted_events[0].tick", "0..11")


@pytest.mark.parametrize("text, key", [
    ("plot: twist\n", "plot: unknown key"),
    ("schedules:\n  Ava: {hour: 9}\n", "schedules.Ava: must be a list"),
    ("schedules:\n  Ava: [{hour: 9, activity: walk, with: Ben}]\n", "schedules.Ava[0].with: unknown key"),
    ("schedules:\n  Ava: [{hour: 9, activity: move}]\n", "schedules.Ava[0].location: a slot of the action type 'move' needs the location"),
    ("scripted_events: {tick: 1}\n", "scripted_events: must be a list"),
    ("- a list\n", "expected a mapping"),
    ("schedules: [\n", "malformed YAML (line 2)"),
])
def test_bad_scenarios(tmp_path, cfg, text, key):
    path = write(tmp_path / "s.yaml", text)
    refused_scenario(path, cfg, key)


@pytest.mark.parametrize("minutes", [-30, 0])
def test_a_negative_activity_duration(tmp_path, minutes):
    path = write(tmp_path / "world.yaml", f"activities:\n  walk: {{location: park, duration_minutes: {minutes}}}\n"
                                          "time_preferences: {}\n")
    refused(path, "activities.walk.duration_minutes")


@pytest.mark.parametrize("event, why", [
    ("{tick: 1, type: move, agents: [Ava]}", "a scripted move needs the location"),
    ("{tick: 1, type: group_meeting, agents: [Ava, Ava]}", "names an agent twice"),
    ("{tick: 1, type: duo_chat, agents: [Ava, Ben, Cleo]}", "a duo_chat is two agents, not 3"),
    ("{tick: 1, type: duo_chat, agents: [Ava, Ben]}", "a scripted duo_chat needs the location where they meet"),
    ("{tick: 1, type: group_meeting, agents: [Ava, Ben, Cleo]}", "a scripted group_meeting needs the location"),
    ("{tick: 1, type: group_meeting, agents: [Ava], location: park}", "a group_meeting is 2 agents or more"),
    ("{tick: 1, type: [move], agents: [Ava], location: park}", r"\['move'\] is not an action type"),
    ("{tick: 1, type: move, agents: [Ava], location: [park]}", r"\['park'\] is not a location"),
])
def test_scripted_events_that_could_not_happen_are_refused(tmp_path, event, why):
    p = tmp_path / "s.yaml"
    p.write_text(f"scripted_events:\n  - {event}\n")
    with pytest.raises(ConfigError, match=why) as err:
        wconfig.load_scenario(p, wconfig.load_config())
    assert str(p) in str(err.value) and "scripted_events[0]" in str(err.value)
