"""The world sandbox's own files (CalfCrusher/AI_Agents_Communication:
world_config.yaml, scenarios/*.yaml) read as they are: tests/data/sandbox
holds files written here in the sandbox's form, not copied from it."""

import hashlib
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from chronoledger.cli import cli
from chronoledger.errors import ConfigError
from chronoledger.world.config import load_config, load_scenario, with_scenario

from _cli import invoke

SANDBOX = Path(__file__).parent / "data" / "sandbox"
CONFIG = SANDBOX / "world_config.yaml"
PICNIC = SANDBOX / "picnic.yaml"


def test_the_sandbox_config_reads_as_it_is():
    cfg = load_config(CONFIG)
    # its places are its graph's, with the packaged attributes of the place of that name
    assert list(cfg.locations) == ["Cafe", "Home", "Office", "Park"]
    assert (cfg.locations["Cafe"].kind, cfg.locations["Cafe"].open_hour) == ("cafe", 7)
    # the activities its preferences name are the sandbox's (world-init), at places of their kind
    assert {n: (a.category, a.duration_minutes, a.location) for n, a in cfg.activities.items()} == {
        "coffee_chat": ("social", 30, "Cafe"), "lunch_meeting": ("social", 60, "Cafe"),
        "reflection": ("wellness", 30, "Home"), "team_standup": ("work", 15, "Office"),
        "work_task": ("work", 120, "Office")}
    assert cfg.time_preferences["morning"] == ["team_standup", "coffee_chat"]
    assert cfg.guardrails["max_concurrent_chats"] == 3


def test_the_sandbox_scenario_reads_as_it_is():
    cfg = load_config(CONFIG)
    sc = load_scenario(PICNIC, cfg)
    assert (sc.name, sc.description, sc.days) == ("Picnic", "Two friends meet in the park", 2)
    assert sc.settings["default_hours.start_hour"] == 9 and sc.settings["default_hours.end_hour"] == 17
    assert sc.settings["action_weights.duo_chat"] == 0.4
    assert [(s["hour"], s["activity"], s["location"], s["action"]) for s in sc.schedules["Ava"]] == [
        (9, "coffee_chat", "Cafe", None), (13, "reflection", "Park", None)]
    # a slot naming an action type keeps it; its activity is the place's own, or (the Park has none) the
    # first the hour's part of the day prefers
    assert [(s["activity"], s["location"], s["action"]) for s in sc.schedules["Ben"]] == [
        ("team_standup", "Park", "duo_chat")]
    assert [(e.tick, e.type, e.agents, e.location) for e in sc.events] == [
        (2, "duo_chat", ("Ava", "Ben"), "Cafe"), (5, "group_meeting", ("Ava", "Ben"), "Park")]


def test_the_scenario_sets_the_hours_and_weights_of_its_run():
    cfg, sc = with_scenario(CONFIG, PICNIC)
    assert (cfg.start_hour, cfg.end_hour, cfg.ticks_per_day) == (9, 17, 8)
    assert cfg.action_weights["duo_chat"] == 0.4 and cfg.action_weights["move"] == 0.1
    assert "from " + str(PICNIC) in cfg.source
    # the command line's hours win over the scenario's
    cfg, _ = with_scenario(CONFIG, PICNIC, overrides={"default_hours.end_hour": 18})
    assert (cfg.start_hour, cfg.end_hour) == (9, 18)


def test_every_problem_of_a_config_is_said_at_once(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.read_text().replace("team_standup\n", "team_standp\n")
                   .replace("max_concurrent_chats: 3", "max_concurrent_chats: -1")
                   .replace("move: 0.2", "mvoe: 0.2"))
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    text = str(err.value)
    assert text.startswith(f"{bad}: 3 problems:")
    assert "action_weights.mvoe: not an action type" in text
    assert "time_preferences.morning[0]: 'team_standp' is not an activity" in text
    assert "guardrails.max_concurrent_chats: -1 must be >= 0" in text


def test_every_problem_of_a_scenario_is_said_at_once(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(PICNIC.read_text().replace('location: "Park"\n\nevents:', 'location: "Mars"\n\nevents:')
                   .replace("tick: 5", "tick: 50").replace('"coffee_chat"', '"coffe_chat"'))
    with pytest.raises(ConfigError) as err:
        with_scenario(CONFIG, bad)
    text = str(err.value)
    assert text.startswith(f"{bad}: 3 problems:"), text
    assert "schedules[0].slots[0].activity: 'coffe_chat' is not an activity" in text
    assert "schedules[1].slots[0].location: 'Mars' is not a location" in text
    assert "events[1].tick: 50 is outside the day's ticks 0..7" in text


def test_the_sandbox_files_run_unchanged(tmp_path):
    db = tmp_path / "world.db"
    url = f"sqlite:///{db}"
    for name in ("Ava", "Ben"):
        r = invoke(cli, ["world", "seed-agent", "--db-url", url, "--name", name, "--bio", "Friend",
                         "--interests", "picnics:0.9"])
        assert r.exit_code == 0, r.output
    r = invoke(cli, ["world", "run", "--db-url", url, "--config", str(CONFIG), "--scripted-events", str(PICNIC),
                     "--seed", "3", "--json", "--reports-dir", str(tmp_path / "reports")])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert (result["days"], result["agents"], result["agent_ticks"]) == (2, 2, 2 * 2 * 8)   # duration_days, 9-17
    con = sqlite3.connect(db)
    hours = con.execute("SELECT min(slot_hour), max(slot_hour) FROM agent_schedules WHERE source = 'scenario'"
                        ).fetchall()
    con.close()
    assert hours == [(9, 13)]
    shutil.rmtree(tmp_path / "reports")


def test_the_sandbox_database_url_makes_its_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke(cli, ["world", "seed-agent", "--db-url", "sqlite:///./data/agents.db", "--name", "Ava"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "data" / "agents.db").is_file()


def test_in_the_sandbox_world_agents_start_at_home_and_talk_over_coffee(tmp_path):
    """Its Home is where agents start (not the first place by name, the Cafe); two agents planned for
    coffee at the Cafe at the same hour talk."""
    from chronoledger.world import scheduler, models

    db = tmp_path / "w.db"
    cfg, sc = with_scenario(CONFIG, PICNIC)
    opts = scheduler.RunOptions(days=1, seed=1, report_format="none")
    for name in ("Ava", "Ben"):
        conn = scheduler.store.connect(f"sqlite:///{db}")
        scheduler.store.seed_agent(conn, name, interests="picnics:0.9")
        conn.close()
    coffee = sc.__class__(sc.name, {"Ava": [{"hour": 9, "activity": "coffee_chat", "location": "Cafe",
                                            "action": None}],
                                    "Ben": [{"hour": 9, "activity": "coffee_chat", "location": "Cafe",
                                             "action": None}]}, [], sc.source)
    scheduler.run(db, cfg, models.make_model("offline"), opts, coffee)
    con = sqlite3.connect(db)
    chats = con.execute("SELECT count(*) FROM conversations c JOIN locations l ON l.id = c.location_id "
                        "WHERE l.name = 'Cafe'").fetchall()[0][0]
    first = con.execute("SELECT min(since_ts) FROM agent_locations").fetchall()
    homes = con.execute("SELECT DISTINCT l.name FROM agent_locations a JOIN locations l ON l.id = a.location_id "
                        "WHERE a.since_ts = ?", first[0]).fetchall()
    con.close()
    assert homes == [("Home",)]
    assert chats >= 1


def test_a_seeded_run_of_the_sandbox_files_is_the_same_twice_and_replays(tmp_path, monkeypatch):
    logs = []
    for k in (1, 2):
        (tmp_path / str(k)).mkdir()
        monkeypatch.chdir(tmp_path / str(k))
        for name in ("Ava", "Ben"):
            assert invoke(cli, ["world", "seed-agent", "--db-url", "sqlite:///./data/agents.db", "--name",
                                name]).exit_code == 0
        r = invoke(cli, ["world", "run", "--db-url", "sqlite:///./data/agents.db", "--config", str(CONFIG),
                         "--scripted-events", str(PICNIC), "--seed", "5", "--report-format", "none"])
        assert r.exit_code == 0, r.output
        logs.append((tmp_path / str(k) / "data" / "agents-run-1.cmeta").read_bytes())
    assert logs[0] == logs[1]
    r = invoke(cli, ["world", "replay", str(tmp_path / "2" / "data" / "agents-run-1.cmeta")])
    assert r.exit_code == 0 and r.stdout.rstrip().endswith("matches"), r.output


# --- found in review -----------------------------------------------------------------------------

def test_slots_and_events_are_checked_against_the_hours_the_run_has():
    with pytest.raises(ConfigError) as err:
        with_scenario(CONFIG, PICNIC, overrides={"default_hours.start_hour": 12, "default_hours.end_hour": 15})
    text = str(err.value)
    assert "schedules[0].slots[0].hour: 9 is outside the day (12-15)" in text
    assert "events[1].tick: 5 is outside the day's ticks 0..2" in text


@pytest.mark.parametrize("block, message", [
    ("{start_hour: 20, end_hour: 30}", "scenario.end_hour: 30 must be an hour from 1 to 24"),
    ("{start_hour: 18, end_hour: 10}", "scenario.end_hour: 10 must come after start_hour 18"),
    ("{start_hour: x}", "scenario.start_hour: 'x' must be a whole number"),
])
def test_a_scenarios_own_hours_are_named_when_wrong(tmp_path, block, message):
    f = tmp_path / "s.yaml"
    f.write_text(f"scenario: {block}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{f}: {message}")):
        with_scenario(CONFIG, f)


def test_a_scenarios_action_weights_lay_over_the_configs(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("action_weights: {duo_chat: 0.9, move: 0}\n")
    cfg, _ = with_scenario(CONFIG, f)
    base = load_config(CONFIG).action_weights
    assert cfg.action_weights == {**base, "duo_chat": 0.9, "move": 0.0}


def test_places_that_differ_only_in_case_are_refused(tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text(CONFIG.read_text().replace("location_graph:\n", "location_graph:\n  home: {Home: 5}\n"))
    with pytest.raises(ConfigError, match=r"locations.home: 'home' and 'Home' differ only in case"):
        load_config(f)


def test_an_agent_given_twice_in_the_schedules_is_refused(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("schedules:\n  - {agent_name: Ava, slots: [{hour: 9, activity: coffee_chat, location: Cafe}]}\n"
                 "  - {agent_name: Ava, slots: [{hour: 10, activity: work_task, location: Office}]}\n")
    with pytest.raises(ConfigError, match=r"schedules\[1\].agent_name: 'Ava' is given twice"):
        with_scenario(CONFIG, f)


def test_one_cause_is_said_once(tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text("activities:\n  a: {duration_minutes: '5', location: home}\n"
                 "time_preferences: {morning: [a], midday: [a]}\n")
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert str(err.value) == f"{f}: activities.a.duration_minutes: '5' must be a whole number"


def test_a_refused_run_writes_nothing(tmp_path, monkeypatch):
    db = tmp_path / "w.db"
    assert invoke(cli, ["world", "seed-agent", "--db-url", f"sqlite:///{db}", "--name", "Ava"]).exit_code == 0
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    r = invoke(cli, ["world", "run", "--db-url", f"sqlite:///{db}", "--config", str(CONFIG), "--agents", "5"])
    assert r.exit_code == 2 and "1 agents, and 5 asked for" in r.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    monkeypatch.chdir(tmp_path)
    r = invoke(cli, ["world", "run", "--db-url", "sqlite:///./new/agents.db", "--agents", "3"])
    assert r.exit_code == 2 and not (tmp_path / "new").exists()


def test_a_dry_run_at_the_sandbox_url_makes_the_folder_of_its_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke(cli, ["world", "run", "--db-url", "sqlite:///./d3/agents.db", "--agents", "3", "--invent-agents",
                     "--dry-run", "--report-format", "none"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "d3" / "agents-dry-run.cmeta").is_file() and not (tmp_path / "d3" / "agents.db").exists()


# --- slots of an action type, scripted activities, the hours a slot covers -------------------------------

def _two_friends(db):
    from chronoledger.world import store
    conn = store.connect(db)
    for name in ("Ava", "Ben"):
        store.seed_agent(conn, name, interests="picnics:0.9")
    conn.close()


def _events(db, sql_where=""):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT g.name, e.tick_index, e.action, a.name, l.name FROM world_events e "
                           "JOIN agents g ON g.id = e.agent_id JOIN activities a ON a.id = e.activity_id "
                           "JOIN locations l ON l.id = e.location_id " + sql_where + " ORDER BY e.id").fetchall()
    finally:
        con.close()


def test_a_slot_of_an_action_type_is_that_action_at_its_place(tmp_path):
    """The sandbox's slot {hour: 10, activity: duo_chat, location: Park}: at ten, at the Park, the agent
    chats with whoever is there for it, and reflects if no one is."""
    from chronoledger.world import models, scheduler

    cfg, sc = with_scenario(CONFIG, PICNIC)
    slot = {"hour": 10, "activity": sc.schedules["Ben"][0]["activity"], "location": "Park", "action": "duo_chat"}
    for both in (True, False):
        db = tmp_path / f"{both}.db"
        _two_friends(db)
        plan = {"Ben": [dict(slot)]} | ({"Ava": [dict(slot)]} if both else {})
        scenario = sc.__class__(sc.name, plan, [], sc.source)
        scheduler.run(db, cfg, models.make_model("offline"), scheduler.RunOptions(days=1, seed=2,
                                                                                  report_format="none"), scenario)
        ben = [e for e in _events(db) if e[0] == "Ben" and e[1] >= 10 - cfg.start_hour]
        # at ten Ben goes to the Park (the slot's place); the first tick he is there, he does what it says
        assert ben[0][2] == "move" and ben[0][4] == "Park"
        there = next(e for e in ben[1:] if e[2] != "move")
        assert there[4] == "Park" and there[2] == ("duo_chat" if both else "solo_reflection"), ben
        # once a day: afterwards he does as anyone would
        assert sum(e[2] == there[2] and e[1] == there[1] for e in ben) == 1


def test_a_scripted_chat_does_what_the_scenario_says(tmp_path):
    """A scripted chat at the Cafe is the Cafe's activity (or the agent's slot in that hour), not
    whatever the generated plan had the agent doing elsewhere."""
    from chronoledger.world import models, scheduler

    cfg, sc = with_scenario(CONFIG, PICNIC)
    db = tmp_path / "w.db"
    _two_friends(db)
    scheduler.run(db, cfg, models.make_model("offline"), scheduler.RunOptions(days=1, seed=4, report_format="none"),
                  sc)
    chat = [e for e in _events(db) if e[1] == 2 and e[2] == "duo_chat"]
    assert {e[0] for e in chat} == {"Ava", "Ben"}
    # the Cafe's activity: Ava's slot (coffee_chat from nine on) and the place's own agree
    assert {e[3] for e in chat} == {"coffee_chat"} and {e[4] for e in chat} == {"Cafe"}
    meeting = [e for e in _events(db) if e[1] == 5 and e[2] == "group_meeting"]
    # at the Park: Ava's slot from one o'clock is a reflection at the Park; Ben's slot's activity is the
    # Park's own
    assert {e[4] for e in meeting} <= {"Park"}


def test_the_hours_a_slot_covers_are_the_scenarios(tmp_path):
    """Ava's coffee_chat slot holds from nine to one: the generated plan's rows for eleven (midday) are
    left out, as well as the hours her slots start."""
    from chronoledger.world import models, scheduler

    cfg, sc = with_scenario(CONFIG, PICNIC)
    db = tmp_path / "w.db"
    _two_friends(db)
    scheduler.run(db, cfg, models.make_model("offline"), scheduler.RunOptions(days=1, seed=4, report_format="none"),
                  sc)
    con = sqlite3.connect(db)
    got = con.execute("SELECT g.name, s.slot_hour, s.source FROM agent_schedules s JOIN agents g ON g.id = s.agent_id "
                      "ORDER BY g.name, s.slot_hour").fetchall()
    con.close()
    assert [(h, src) for n, h, src in got if n == "Ava"] == [(9, "scenario"), (13, "scenario")]
    # Ben's slot holds from ten to the end of the day: only the morning (nine) is the generated plan's
    assert [(h, src) for n, h, src in got if n == "Ben"] == [(9, "generated"), (10, "scenario")]


def test_the_start_is_checked_against_capacity(tmp_path):
    """Agents start at home up to its capacity, the rest at the nearest places open at the first hour;
    a world that cannot hold them all is refused before anything is written."""
    from _world_data import TRAVEL_CONFIG, rows, run_world, write

    small = TRAVEL_CONFIG.replace("home:   {kind: home, capacity: 1000", "home:   {kind: home, capacity: 3") \
        .replace("office: {kind: office, capacity: 1000", "office: {kind: office, capacity: 2")
    from chronoledger.world import config as wconfig
    cfg = wconfig.load_config(write(tmp_path / "small.yaml", small))
    db = tmp_path / "w.db"
    run_world(db, cfg, agents=6, seed=1, invent_agents=True)
    first = rows(db, "SELECT a.agent_id, l.name FROM agent_locations a JOIN locations l ON l.id = a.location_id "
                     "WHERE a.since_ts = (SELECT min(since_ts) FROM agent_locations) ORDER BY a.agent_id, a.id")
    starts = {}
    for agent, place in first:
        starts.setdefault(agent, place)
    # home for the first three by id; then the cafe and the office, both 80 minutes away (by name: cafe)
    assert [starts[a] for a in sorted(starts)] == ["home"] * 3 + ["cafe"] * 3
    crowded = small.replace("cafe:   {kind: cafe, capacity: 1000", "cafe:   {kind: cafe, capacity: 1")
    cfg = wconfig.load_config(write(tmp_path / "crowded.yaml", crowded))
    with pytest.raises(ConfigError, match=r"7 agents start the run, and its places hold 6 at 8:00") as err:
        run_world(tmp_path / "x.db", cfg, agents=7, seed=1, invent_agents=True)
    assert "home 3" in str(err.value)
    assert rows(tmp_path / "x.db", "SELECT (SELECT count(*) FROM agents) + (SELECT count(*) FROM locations)") == [(0,)]
