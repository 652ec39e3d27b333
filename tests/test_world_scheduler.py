"""chronoledger.world.scheduler: ticks and simulated time, schedules, the
guardrails, travel, capacity and open hours, scripted events, the offline
model's turns, memories and relationships, determinism, replay and the
daily reports -- asserted on the database rows, the run's event log and the
report files."""

from __future__ import annotations

import collections
import itertools
import json
import shutil
from pathlib import Path

import apsw
import numpy as np
import pytest
from _world_data import (
    CAPACITY_CONFIG,
    FRIENDS,
    ONE_PLACE_CONFIG,
    TRAVEL_CONFIG,
    WEEKEND,
    chronicle,
    day_number,
    dump,
    gmin,
    location_ids,
    micros,
    rewrite_chronicle,
    rows,
    run_world,
    seed_friends,
    stamp,
    write,
)
from chronoledger.errors import ConfigError, CorruptDataError
from chronoledger.world import config as wconfig
from chronoledger.world import models, policy, replay, scheduler, store
from chronoledger.world.config import ACTIONS, PERIODS

DAY1, DAY2 = "2026-01-05", "2026-01-06"


# --- shared runs ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    """30 made-up agents, two days of 30-minute ticks, no action cap to speak of, reports in both formats."""
    d = tmp_path_factory.mktemp("basic")
    cfg = wconfig.load_config(overrides={"default_hours.tick_minutes": 30,
                                         "guardrails.max_actions_per_agent_per_day": 1000})
    result = run_world(d / "world.db", cfg, days=2, agents=30, seed=1, report_format="both",
                       reports_dir=d / "reports")
    return cfg, d / "world.db", result


@pytest.fixture(scope="module")
def weekend(tmp_path_factory):
    """Ava, Ben and Cleo (and 5 made-up agents) play the weekend scenario for two days."""
    d = tmp_path_factory.mktemp("weekend")
    cfg = wconfig.load_config()
    scenario = wconfig.load_scenario(WEEKEND, cfg)
    seed_friends(d / "world.db")
    result = run_world(d / "world.db", cfg, days=2, agents=8, seed=2, scenario=scenario)
    return cfg, scenario, d / "world.db", result


def events(db, where="1", args=()):
    return rows(db, "SELECT agent_id, day_label, tick_index, action, location_id, metadata_json, created_at "
                    f"FROM world_events WHERE {where} ORDER BY id", args)


def members_by_conversation(db) -> dict[int, set[int]]:
    out: dict[int, set[int]] = collections.defaultdict(set)
    for conv, agent in rows(db, "SELECT conversation_id, agent_id FROM conversation_turns"):
        out[conv].add(agent)
    return out


# --- ticks and time ---------------------------------------------------------------------

@pytest.mark.parametrize("hours, ticks", [((8, 20, 60), 12), ((8, 20, 30), 24), ((9, 17, 15), 32), ((0, 24, 90), 16)])
def test_ticks_per_day_is_the_day_over_the_tick(hours, ticks):
    start, end, tick = hours
    cfg = wconfig.load_config(overrides={"default_hours.start_hour": start, "default_hours.end_hour": end,
                                         "default_hours.tick_minutes": tick})
    assert cfg.ticks_per_day == (end - start) * 60 // tick == ticks


def test_world_events_carry_day_and_tick_as_columns(basic):
    cfg, db, result = basic
    cols = {r[1]: r[2].upper() for r in rows(db, "PRAGMA table_info(world_events)")}
    assert cols["day_label"] == "TEXT" and cols["tick_index"] == "INTEGER"
    assert cfg.ticks_per_day == 24
    per_day = collections.defaultdict(set)
    for day, tick in rows(db, "SELECT day_label, tick_index FROM world_events"):
        assert isinstance(tick, int)
        per_day[day].add(tick)
    assert sorted(per_day) == [DAY1, DAY2]
    assert all(ticks == set(range(24)) for ticks in per_day.values())
    assert result.agent_ticks == 30 * 2 * 24
    assert result.events == rows(db, "SELECT count(*) FROM world_events")[0][0]


def test_timestamps_are_simulated_time(basic):
    cfg, db, _ = basic
    for _, day, tick, _, _, _, created in events(db):
        assert created == stamp(cfg, day_number(cfg, day), tick)
    assert stamp(cfg, 1, 1) == "2026-01-05T08:30:00.000000Z" and stamp(cfg, 2, 23) == "2026-01-06T19:30:00.000000Z"
    for day, tick, created in rows(db, "SELECT day_label, tick_index, created_at FROM conversations"):
        assert created == stamp(cfg, day_number(cfg, day), tick)
    for meta, created in rows(db, "SELECT metadata_json, created_at FROM memories"):
        m = json.loads(meta)
        assert created == stamp(cfg, day_number(cfg, m["day"]), m["tick"])
    assert rows(db, "SELECT started_at, finished_at, status FROM runs") == \
        [("2026-01-05T08:00:00.000000Z", "2026-01-06T19:30:00.000000Z", "finished")]
    assert rows(db, "SELECT day_label, created_at FROM daily_reports ORDER BY day_label") == \
        [(DAY1, "2026-01-05T19:30:00.000000Z"), (DAY2, "2026-01-06T19:30:00.000000Z")]


def test_the_chronicle_holds_every_event_at_its_simulated_time(basic):
    cfg, db, result = basic
    cols = chronicle(result.chronicle)
    kinds = cols["event_type"]
    assert (kinds == "agent").sum() == 30
    assert set(kinds.tolist()) <= set(ACTIONS) | {"agent", "lm_response", "run_finished"}
    assert kinds[-1] == "run_finished"
    acts = np.isin(kinds, ACTIONS)
    logged = collections.Counter(zip(cols["values.agent"][acts].astype(int).tolist(),
                                     cols["values.day"][acts].astype(int).tolist(),
                                     cols["values.tick"][acts].astype(int).tolist(), kinds[acts].tolist(),
                                     cols["values.location"][acts].astype(int).tolist()))
    stored = collections.Counter((a, day_number(cfg, d), t, act, loc) for a, d, t, act, loc, _, _ in events(db))
    assert logged == stored
    for ts, day, tick in zip(cols["timestamp"][acts], cols["values.day"][acts], cols["values.tick"][acts]):
        assert int(ts) == micros(cfg, int(day), int(tick))
    assert np.all(np.diff(cols["timestamp"].astype(np.int64)) >= 0)
    # conversations in the log are the conversations in the database
    conv = cols["values.conversation"][acts]
    logged_conv = {int(c) for c in conv[~np.isnan(conv)]}
    assert logged_conv == {r[0] for r in rows(db, "SELECT id FROM conversations")}


def test_runs_make_up_agents_when_the_database_has_fewer(tmp_path):
    db = tmp_path / "world.db"
    seed_friends(db)
    result = run_world(db, wconfig.load_config(), agents=8, seed=5)
    assert result.agents == 8
    names = [r[0] for r in rows(db, "SELECT name FROM agents ORDER BY id")]
    assert names[:3] == ["Ava", "Ben", "Cleo"] and len(names) == 8
    assert all(n.startswith("Agent ") for n in names[3:])
    assert rows(db, "SELECT count(DISTINCT agent_id) FROM interests")[0][0] == 8
    # a second, smaller run takes the first agents and makes none up
    result = run_world(db, wconfig.load_config(), agents=2, seed=5)
    assert result.agents == 2 and rows(db, "SELECT count(*) FROM agents")[0][0] == 8
    assert {r[0] for r in rows(db, "SELECT agent_id FROM world_events WHERE run_id = 2")} <= {1, 2}


def test_a_run_without_agents_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no agents"):
        run_world(tmp_path / "world.db", wconfig.load_config())


# --- schedules ---------------------------------------------------------------------------

def test_schedules_one_row_per_agent_per_part_of_the_day(basic):
    cfg, db, _ = basic
    acts = {i: (n, loc) for i, n, loc in rows(db, "SELECT id, name, location_id FROM activities")}
    sched = rows(db, "SELECT agent_id, day_label, slot_hour, planned_activity_id, location_id, partner_agent_id, "
                     "source FROM agent_schedules")
    assert len(sched) == 30 * 2 * 4
    hours = collections.defaultdict(list)
    for agent, day, hour, activity, loc, partner, source in sched:
        hours[(agent, day)].append(hour)
        name, where = acts[activity]
        assert name in cfg.time_preferences[cfg.period(hour)], (hour, name)
        assert loc == where and partner is None and source == "generated"
    assert len(hours) == 60 and all(sorted(h) == [8, 11, 14, 18] for h in hours.values())
    # the plans differ between agents and between days
    assert len({r[3] for r in sched if r[2] == 8}) > 1
    by_day = {d: [r[3] for r in sched if r[1] == d] for d in (DAY1, DAY2)}
    assert by_day[DAY1] != by_day[DAY2]


def test_schedules_only_for_the_parts_of_the_day_within_the_hours(tmp_path):
    cfg = wconfig.load_config(overrides={"default_hours.start_hour": 9, "default_hours.end_hour": 13})
    db = tmp_path / "world.db"
    run_world(db, cfg, agents=5, seed=1)
    got = rows(db, "SELECT agent_id, slot_hour, a.name FROM agent_schedules s "
                   "JOIN activities a ON a.id = s.planned_activity_id ORDER BY agent_id, slot_hour")
    assert [(a, h) for a, h, _ in got] == [(a, h) for a in range(1, 6) for h in (9, 11)]
    for _, hour, name in got:
        assert name in cfg.time_preferences["morning" if hour == 9 else "midday"]


def test_scenario_schedules_are_added_with_source_scenario(weekend):
    _cfg, scenario, db, _ = weekend
    ids = dict(rows(db, "SELECT name, id FROM agents"))
    got = sorted(rows(db, "SELECT s.agent_id, s.day_label, s.slot_hour, a.name, l.name FROM agent_schedules s "
                          "JOIN activities a ON a.id = s.planned_activity_id JOIN locations l ON l.id = s.location_id "
                          "WHERE source = 'scenario'"))
    want = sorted((ids[n], d, slot["hour"], slot["activity"], slot["location"])
                  for n, slots in scenario.schedules.items() for slot in slots for d in (DAY1, DAY2))
    assert got == want and len(got) == 12
    # the generated plan's rows, less the parts of the day a scenario slot covers (from its hour to the
    # agent's next slot): Ava's and Ben's slots cover all four parts, Cleo's (11, 18) three of them
    assert rows(db, "SELECT count(*) FROM agent_schedules WHERE source = 'generated'")[0][0] == (8 * 4 - 4 - 4 - 3) * 2
    assert rows(db, "SELECT count(*) FROM (SELECT 1 FROM agent_schedules GROUP BY agent_id, day_label, slot_hour "
                    "HAVING count(*) > 1)") == [(0,)]


def test_scenario_schedules_override_the_generated_plan(tmp_path):
    cfg = wconfig.load_config()
    scenario = wconfig.load_scenario(write(tmp_path / "morning.yaml", """\
        schedules:
          Ava: [{hour: 8, activity: coffee_break, location: cafe}]
          Ben: [{hour: 8, activity: coffee_break, location: cafe}]
          Cleo: [{hour: 8, activity: coffee_break, location: cafe}]
        """), cfg)
    db = tmp_path / "world.db"
    seed_friends(db)
    run_world(db, cfg, seed=0, scenario=scenario)
    first = rows(db, "SELECT g.name, e.action, l.name, a.name FROM world_events e JOIN agents g ON g.id = e.agent_id "
                     "JOIN locations l ON l.id = e.location_id JOIN activities a ON a.id = e.activity_id "
                     "WHERE tick_index = 0 ORDER BY g.id")
    assert first == [(n, "move", "cafe", "coffee_break") for n in ("Ava", "Ben", "Cleo")]


# --- guardrails ---------------------------------------------------------------------------

RAILS = {"max_actions_per_agent_per_day": 6, "min_cooldown_between_duo_chats_minutes": 90,
         "max_location_travel_per_day": 2, "max_concurrent_chats": 2}


@pytest.fixture(scope="module")
def railed(tmp_path_factory):
    d = tmp_path_factory.mktemp("railed")
    overrides = {"default_hours.tick_minutes": 30, "action_weights.duo_chat": 0.6, "action_weights.group_meeting": 0.3}
    overrides.update({f"guardrails.{k}": v for k, v in RAILS.items()})
    cfg = wconfig.load_config(overrides=overrides)
    run_world(d / "world.db", cfg, days=2, agents=60, seed=3)
    return cfg, d / "world.db"


def test_guardrail_max_actions_per_agent_per_day(railed):
    _cfg, db = railed
    per = collections.Counter((a, d) for a, d, *_ in events(db))
    assert len(per) == 120
    assert max(per.values()) == RAILS["max_actions_per_agent_per_day"]       # reached, never passed
    # the cap resets each day: every agent acts on day 2 as well
    assert {a for a, d in per if d == DAY2} == set(range(1, 61))


def test_guardrail_cooldown_between_duo_chats(railed):
    cfg, db = railed
    chats = collections.defaultdict(list)
    for a, d, t, *_ in events(db, "action = 'duo_chat'"):
        chats[a].append(gmin(cfg, d, t))
    gaps = [b - a for times in chats.values() for a, b in itertools.pairwise(times)]
    assert gaps, "no agent had two duo chats: the test proves nothing"
    assert min(gaps) >= RAILS["min_cooldown_between_duo_chats_minutes"]
    # the partner of each chat also respects it: every duo chat has exactly two members
    for conv, members in members_by_conversation(db).items():
        kind = rows(db, "SELECT kind FROM conversations WHERE id = ?", (conv,))[0][0]
        if kind == "duo_chat":
            assert len(members) == 2


def test_guardrail_max_location_travel_per_day(railed):
    _cfg, db = railed
    moves = collections.Counter((a, d) for a, d, *_ in events(db, "action = 'move'"))
    assert max(moves.values()) == RAILS["max_location_travel_per_day"]
    stays = collections.Counter((a, until[:10]) for a, until in
                                rows(db, "SELECT agent_id, until_ts FROM agent_locations WHERE until_ts IS NOT NULL"))
    assert max(stays.values()) <= RAILS["max_location_travel_per_day"]


def test_the_chat_cap_bounds_model_calls_not_the_world(tmp_path):
    """max_concurrent_chats bounds the model calls in flight: the same seed gives the same world,
    conversation for conversation, whatever the cap (it used to drop the chats past it)."""
    worlds = []
    for cap in (1, 2, 1000):
        cfg = wconfig.load_config(overrides={"guardrails.max_concurrent_chats": cap,
                                             "action_weights.duo_chat": 0.6})
        db = tmp_path / f"cap{cap}.db"
        run_world(db, cfg, agents=60, seed=3)
        worlds.append((rows(db, "SELECT day_label, tick_index, kind, location_id FROM conversations ORDER BY id"),
                       rows(db, "SELECT agent_id, day_label, tick_index, action, location_id FROM world_events "
                                "ORDER BY id")))
    assert worlds[0] == worlds[1] == worlds[2]
    per_tick = collections.Counter((d, t) for d, t, _k, _l in worlds[0][0])
    assert max(per_tick.values()) > 2                        # more chats at once than the smaller caps


def test_a_travel_guardrail_at_zero_stops_moves(tmp_path):
    cfg = wconfig.load_config(overrides={"guardrails.max_location_travel_per_day": 0})
    db = tmp_path / "world.db"
    run_world(db, cfg, agents=20, seed=1)
    assert rows(db, "SELECT DISTINCT action FROM world_events WHERE action = 'move'") == []
    assert {r[0] for r in rows(db, "SELECT DISTINCT location_id FROM world_events")} == {location_ids(db)["home"]}


# --- travel, capacity, open hours ------------------------------------------------------------

@pytest.fixture(scope="module")
def travel(tmp_path_factory):
    d = tmp_path_factory.mktemp("travel")
    cfg = wconfig.load_config(write(d / "travel.yaml", TRAVEL_CONFIG))
    run_world(d / "world.db", cfg, days=2, agents=12, seed=4)
    return cfg, d / "world.db"


def test_a_trip_of_80_minutes_takes_three_30_minute_ticks(travel):
    cfg, db = travel
    assert cfg.tick_minutes == 30 and cfg.ticks_per_day == 24
    assert (cfg.travel_ticks() == 3 * (1 - np.eye(3, dtype=int))).all()
    moves = events(db, "action = 'move'")
    assert len(moves) > 20
    assert {json.loads(m)["travel_ticks"] for *_, m, _ in moves} == {3}


def test_no_events_while_travelling_and_no_teleporting(travel):
    cfg, db = travel
    tpd = cfg.ticks_per_day
    timeline = collections.defaultdict(list)          # agent -> [(global tick, action, location)]
    for a, d, t, action, loc, _, _ in events(db):
        timeline[a].append(((day_number(cfg, d) - 1) * tpd + t, action, loc))
    checked = 0
    for a, evs in timeline.items():
        for (g, action, dest), nxt in zip(evs, evs[1:] + [None]):
            if action != "move":
                continue
            if nxt is None:
                continue
            g2, action2, loc2 = nxt
            assert g2 >= g + 3, f"agent {a} acted at tick {g2} while travelling (left at {g})"
            if action2 != "move":
                assert loc2 == dest, f"agent {a} left for {dest} at {g} and was at {loc2} at {g2}"
            checked += 1
    assert checked > 20


def test_agent_locations_since_and_until_follow_the_trips(travel):
    cfg, db = travel
    tpd = cfg.ticks_per_day
    stays = collections.defaultdict(list)
    for a, loc, since, until in rows(db, "SELECT agent_id, location_id, since_ts, until_ts FROM agent_locations "
                                         "ORDER BY id"):
        stays[a].append((loc, since, until))
    home = location_ids(db)["home"]
    for a, d, t, action, dest, _, _ in events(db, "action = 'move'"):
        g = (day_number(cfg, d) - 1) * tpd + t
        left = stamp(cfg, day_number(cfg, d), t)
        origin = [s for s in stays[a] if s[2] == left]
        assert len(origin) == 1, (a, d, t, stays[a])
        if g + 3 < 2 * tpd:                                       # arrives within the run
            arrival = stamp(cfg, (g + 3) // tpd + 1, (g + 3) % tpd)
            there = [s for s in stays[a] if s[1] == arrival]
            assert there and there[0][0] == dest, (a, d, t, stays[a])
    # everyone starts at home, at the first midnight
    for a, s in stays.items():
        assert s[0][0] == home and s[0][1] == "2026-01-05T00:00:00.000000Z"
        # every closed stay ends no earlier than it began
        assert all(u is None or since <= u for _, since, u in s)


def test_the_open_agent_location_is_where_the_agent_went(tmp_path):
    cfg = wconfig.load_config(write(tmp_path / "travel.yaml", TRAVEL_CONFIG))
    db = tmp_path / "world.db"
    run_world(db, cfg, agents=10, seed=9)
    last_move = {a: loc for a, _, _, _, loc, _, _ in events(db, "action = 'move'")}
    late = events(db, "action = 'move' AND tick_index > ?", (cfg.ticks_per_day - 4,))
    assert late, "nobody was on the way when the run ended: the test proves nothing"
    stays = collections.defaultdict(list)
    for a, loc, since, until in rows(db, "SELECT agent_id, location_id, since_ts, until_ts FROM agent_locations "
                                         "ORDER BY id"):
        stays[a].append((loc, since, until))
    for a, s in stays.items():
        open_rows = [x for x in s if x[2] is None]
        assert len(open_rows) == 1
        assert open_rows[0][0] == last_move[a], (a, s)
        assert len({(loc, since) for loc, since, _ in s}) == len(s), (a, s)


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    """A cafe for one: at most one agent in it or on the way to it, watched after every tick."""
    d = tmp_path_factory.mktemp("crowded")
    cfg = wconfig.load_config(write(d / "crowded.yaml", CAPACITY_CONFIG))
    seen = []
    original = scheduler.WorldRun.tick

    def watched(self, day, tick):
        out = original(self, day, tick)
        s = self.state
        where = np.where(s.dest >= 0, s.dest, s.loc)
        seen.append(np.bincount(where, minlength=len(s.env.names)))
        return out

    mp = pytest.MonkeyPatch()
    mp.setattr(scheduler.WorldRun, "tick", watched)
    try:
        run_world(d / "world.db", cfg, days=2, agents=10, seed=4)
    finally:
        mp.undo()
    return cfg, d / "world.db", np.array(seen)


def test_capacity_is_never_exceeded(crowded):
    cfg, db, seen = crowded
    names = cfg.location_names
    assert seen.shape == (2 * cfg.ticks_per_day, len(names))
    cafe = names.index("cafe")
    assert seen[:, cafe].max() == 1                                  # full at times, never over
    assert (seen <= np.array([cfg.locations[n].capacity for n in names])).all()
    # the same from agent_locations: stays at the cafe never overlap
    cafe_id = location_ids(db)["cafe"]
    stays = rows(db, "SELECT since_ts, coalesce(until_ts, '9999') FROM agent_locations WHERE location_id = ? "
                     "ORDER BY since_ts", (cafe_id,))
    assert len(stays) > 3
    for (s1, u1), (s2, u2) in itertools.pairwise(stays):
        assert u1 <= s2, (s1, u1, s2, u2)


def test_events_happen_where_the_agent_is(crowded):
    _cfg, db, _ = crowded
    cafe_id = location_ids(db)["cafe"]
    at_cafe = collections.Counter((d, t) for _, d, t, action, loc, _, _ in events(db)
                                  if loc == cafe_id and action != "move")
    assert max(at_cafe.values()) <= 1


def test_moves_only_into_open_locations(tmp_path):
    cfg = wconfig.load_config(overrides={"default_hours.tick_minutes": 30, "default_hours.start_hour": 6,
                                         "default_hours.end_hour": 22,
                                         "guardrails.max_actions_per_agent_per_day": 1000,
                                         "guardrails.max_location_travel_per_day": 1000})
    db = tmp_path / "world.db"
    run_world(db, cfg, agents=40, seed=5)
    hours = {i: (n, json.loads(h)) for i, n, h in rows(db, "SELECT id, name, open_hours_json FROM locations")}
    moves = events(db, "action = 'move'")
    assert len(moves) > 100
    seen_closed = set()
    for a, d, t, _, loc, _, _ in moves:
        name, (opens, closes) = hours[loc]
        assert opens <= cfg.tick_hour(t) < closes, f"agent {a} moved into the {name} at {cfg.tick_hour(t)}h"
    # the day runs from 6 to 22, and the library (9-19) and office (7-20) are closed part of it
    for t in range(cfg.ticks_per_day):
        h = cfg.tick_hour(t)
        seen_closed |= {n for n, (o, c) in hours.values() if not o <= h < c}
    assert {"library", "office", "park"} <= seen_closed
    library = location_ids(db)["library"]
    assert [m for m in moves if m[4] == library and not 9 <= cfg.tick_hour(m[2]) < 19] == []


# --- scripted events ------------------------------------------------------------------------------

def test_scripted_group_meeting_fires_at_its_tick(weekend):
    _cfg, _, db, result = weekend
    ids = dict(rows(db, "SELECT name, id FROM agents"))
    friends = {ids[n] for n in ("Ava", "Ben", "Cleo")}
    scripted = rows(db, "SELECT id, day_label, tick_index FROM conversations WHERE kind = 'scripted' ORDER BY id")
    meeting = [c for c in scripted if c[1:] == (DAY1, 3)]
    assert len(meeting) == 1
    conv = meeting[0][0]
    turns = rows(db, "SELECT agent_id, round, content FROM conversation_turns WHERE conversation_id = ? ORDER BY id",
                 (conv,))
    assert sorted(a for a, _, _ in turns) == sorted(friends) and {r for _, r, _ in turns} == {0}
    assert all(text.strip() for *_, text in turns)
    got = {a: (action, json.loads(meta)) for a, _, _, action, _, meta, _ in events(db, "day_label = ? AND "
                                                                                   "tick_index = 3", (DAY1,))}
    for a in friends:
        assert got[a] == ("group_meeting", {"conversation": conv})
    # only on day 1; and the day-2 tick 3 has no scripted meeting
    assert not [c for c in scripted if c[1:] == (DAY2, 3)]
    # the event log holds the meeting's turns
    assert db.parent / rows(db, "SELECT chronicle FROM runs")[0][0] == result.chronicle
    cols = chronicle(result.chronicle)
    lm = [json.loads(p) for e, p in zip(cols["event_type"], cols["payload"]) if e == "lm_response"]
    logged = [p for p in lm if p.get("conversation") == conv]
    # each turn: agent, round, text, and the seed of the request it answered
    assert len(logged) == 1 and sorted(t[0] for t in logged[0]["turns"]) == sorted(friends)


def test_scripted_moves_send_the_named_agents(weekend):
    _cfg, _, db, _ = weekend
    ids = dict(rows(db, "SELECT name, id FROM agents"))
    park = location_ids(db)["park"]
    for day in (DAY1, DAY2):
        got = events(db, "day_label = ? AND tick_index = 1 AND agent_id IN (?, ?, ?)",
                     (day, ids["Ava"], ids["Ben"], ids["Cleo"]))
        assert got and all(action == "move" and loc == park for _, _, _, action, loc, _, _ in got)


def test_scripted_meeting_takes_place_at_its_location(weekend):
    _cfg, _, db, _ = weekend
    park = location_ids(db)["park"]
    assert rows(db, "SELECT location_id FROM conversations WHERE kind = 'scripted' AND day_label = ? AND "
                    "tick_index = 3", (DAY1,)) == [(park,)]
    ids = dict(rows(db, "SELECT name, id FROM agents"))
    got = {loc for a, _, _, _, loc, _, _ in events(db, "day_label = ? AND tick_index = 3", (DAY1,))
           if a in (ids["Ava"], ids["Ben"], ids["Cleo"])}
    assert got == {park}


def test_scenario_with_an_unknown_agent_is_refused_naming_the_file(tmp_path):
    cfg = wconfig.load_config()
    db = tmp_path / "world.db"
    seed_friends(db)
    path = write(tmp_path / "stranger.yaml", """\
        scripted_events:
          - {tick: 2, type: duo_chat, agents: [Ava, Zed], location: cafe}
        """)
    with pytest.raises(ConfigError) as exc:
        run_world(db, cfg, scenario=wconfig.load_scenario(path, cfg))
    assert str(path) in str(exc.value) and "'Zed'" in str(exc.value)
    path = write(tmp_path / "stranger2.yaml", """\
        schedules:
          Zoe: [{hour: 9, activity: walk}]
        """)
    with pytest.raises(ConfigError) as exc:
        run_world(db, cfg, scenario=wconfig.load_scenario(path, cfg))
    assert str(path) in str(exc.value) and "'Zoe'" in str(exc.value)
    with pytest.raises(ConfigError, match="'Zoe'"):          # nor made up: 5 agents are Ava, Ben, Cleo, Agent 00004, 5
        run_world(db, cfg, agents=5, scenario=wconfig.load_scenario(path, cfg))
    # refused before anything was written: no places, no made-up agents, no run
    assert rows(db, "SELECT (SELECT count(*) FROM locations), (SELECT count(*) FROM agents), "
                    "(SELECT count(*) FROM runs)") == [(0, 3, 0)]
    path = write(tmp_path / "made_up.yaml", """\
        schedules:
          Agent 00005: [{hour: 9, activity: walk}]
        """)
    assert run_world(db, cfg, agents=5, scenario=wconfig.load_scenario(path, cfg)).agents == 5


# --- the offline model's turns -----------------------------------------------------------------------

def test_offline_turns_vary_and_are_never_empty(basic):
    _, db, _result = basic
    texts = [r[0] for r in rows(db, "SELECT content FROM conversation_turns")]
    assert len(texts) > 100
    assert all(t.strip() for t in texts)
    assert len(set(texts)) >= 0.9 * len(texts)
    openings = {t.split()[0] for t in texts}
    assert len(openings) >= 10
    assert rows(db, "SELECT DISTINCT model FROM conversation_turns") == [("offline",)]
    reflections = [r[0] for r in rows(db, "SELECT text FROM memories WHERE kind = 'reflection'")]
    assert len(reflections) > 50 and len(set(reflections)) >= 0.9 * len(reflections)
    # every conversation has turns from each member, duo chats two rounds
    for conv, kind in rows(db, "SELECT id, kind FROM conversations"):
        turns = rows(db, "SELECT round, agent_id FROM conversation_turns WHERE conversation_id = ?", (conv,))
        members = {a for _, a in turns}
        assert {r for r, _ in turns} == ({0, 1} if kind == "duo_chat" else {0})
        assert len(turns) == len(members) * (2 if kind == "duo_chat" else 1)
        assert len(members) == 2 if kind == "duo_chat" else 3 <= len(members) <= 6


# --- memories and relationships -------------------------------------------------------------------------

def test_memories_quote_what_was_said_and_are_kept_once(tmp_path):
    cfg = wconfig.load_config(write(tmp_path / "one.yaml", ONE_PLACE_CONFIG))
    db = tmp_path / "world.db"
    conn = store.connect(db)
    for n in ("Ava", "Ben"):
        store.seed_agent(conn, n, interests="chess:0.9")
    conn.close()
    result = run_world(db, cfg, days=2, seed=1, report_format="json", reports_dir=tmp_path / "reports")
    assert rows(db, "SELECT count(*) FROM conversations")[0][0] == 2 * cfg.ticks_per_day == 8
    names = dict(rows(db, "SELECT id, name FROM agents"))
    mem = rows(db, "SELECT agent_id, kind, text, importance, metadata_json FROM memories ORDER BY id")
    said = [m for m in mem if m[1] == "conversation"]
    # each of the two remembers each of the eight conversations, unless it heard the very same words before
    assert 12 <= len(said) <= 16
    assert {json.loads(m[4])["conversation"] for m in said} == {c for (c,) in rows(db, "SELECT id FROM conversations")}
    for agent, _kind, text, imp, meta in said:
        conv = json.loads(meta)["conversation"]
        other = rows(db, "SELECT content FROM conversation_turns WHERE conversation_id = ? AND agent_id <> ? "
                         "ORDER BY round", (conv, agent))[0][0]
        quoted = text.split(': "', 1)[1].rstrip('"').removesuffix("...")
        # what the other said, from its own words (its first sentences), and who said it
        assert other.startswith(quoted) and len(quoted) >= 20, (text, other)
        assert text.startswith(f"{names[3 - agent]} told me at home about chess")
        assert 1 <= imp <= 10
    # a first meeting matters more than the talks after it
    assert said[0][3] > said[-1][3]
    # nothing is kept twice, and what is kept is what the run and its reports count
    assert len({(a, t) for a, _k, t, _i, _m in mem}) == len(mem) == result.memories
    day1 = json.loads((tmp_path / "reports" / f"run-1-{DAY1}.json").read_text())
    day2 = json.loads((tmp_path / "reports" / f"run-1-{DAY2}.json").read_text())
    assert sum(day1["new_memories_by_kind"].values()) + sum(day2["new_memories_by_kind"].values()) == len(mem)
    # the relationship moved by the sum of the day's changes (it did not exist before)
    strength = rows(db, "SELECT strength, kind, updated_at FROM relationships WHERE from_agent_id = 1")
    change = sum(p["change"] for d in (day1, day2) for p in d["relationships_strengthened"] +
                 d["relationships_weakened"])
    assert strength[0][0] == pytest.approx(change) and strength[0][0] != 0
    assert strength[0][1:] == ("acquaintance", "2026-01-06T11:00:00.000000Z")
    assert rows(db, "SELECT strength FROM relationships WHERE from_agent_id = 2") == [(strength[0][0],)]
    # the database itself refuses a second copy of a memory
    conn = apsw.Connection(str(db))
    try:
        agent, norm = conn.execute("SELECT agent_id, norm_hash FROM memories LIMIT 1").fetchall()[0]
        with pytest.raises(apsw.ConstraintError):
            conn.execute("INSERT INTO memories (agent_id, kind, text, confidence, norm_hash, created_at) "
                         "VALUES (?, 'conversation', 'talked with ben at the home about chess', 0.8, ?, 'x')",
                         (agent, norm))
    finally:
        conn.close()


def test_relationships_change_after_chats(basic):
    _cfg, db, result = basic
    cols = chronicle(result.chronicle)
    before = {}
    for e, p in zip(cols["event_type"], cols["payload"]):
        if e == "agent":
            a = json.loads(p)
            for b, kind, s in a["relationships"]:
                before[(a["id"], b)] = s
    last_chat: dict[tuple[int, int], str] = {}
    for conv, members in members_by_conversation(db).items():
        created = rows(db, "SELECT created_at FROM conversations WHERE id = ?", (conv,))[0][0]
        for a in members:
            for b in members:
                if a != b:
                    last_chat[(a, b)] = max(last_chat.get((a, b), ""), created)
    after = {(a, b): (s, kind, u) for a, b, kind, s, u in
             rows(db, "SELECT from_agent_id, to_agent_id, kind, strength, updated_at FROM relationships")}
    assert set(before) <= set(after)
    changed = 0
    for pair, (s, kind, updated) in after.items():
        if pair in last_chat:
            assert updated == last_chat[pair]
            if pair not in before:
                assert kind == "acquaintance"
            changed += s != before.get(pair, 0.0)
        else:
            assert (s, updated) == (before[pair], store.SEED_TIME)
        assert after[(pair[1], pair[0])][0] == s                # both ways alike
    assert changed > 20


# --- determinism --------------------------------------------------------------------------------------------

def _weekend_run(d: Path, seed: int):
    cfg = wconfig.load_config(overrides={"default_hours.tick_minutes": 30})
    d.mkdir()
    seed_friends(d / "world.db")
    return run_world(d / "world.db", cfg, days=2, agents=12, seed=seed,
                     scenario=wconfig.load_scenario(WEEKEND, cfg), report_format="both")


def test_same_seed_same_rows_and_same_log_bytes(tmp_path):
    a = _weekend_run(tmp_path / "a", 7)
    b = _weekend_run(tmp_path / "b", 7)
    da, db_ = dump(tmp_path / "a" / "world.db"), dump(tmp_path / "b" / "world.db")
    assert da["world_events"] and da["conversation_turns"] and da["agent_schedules"]
    for table in da:
        assert da[table] == db_[table], table
    assert a.chronicle.name == b.chronicle.name
    assert a.chronicle.read_bytes() == b.chronicle.read_bytes()
    assert [p.name for p in a.reports] == [p.name for p in b.reports] and len(a.reports) == 4
    for pa, pb in zip(a.reports, b.reports):
        assert pa.read_bytes() == pb.read_bytes()
    assert (a.events, a.conversations, a.memories) == (b.events, b.conversations, b.memories)


def test_another_seed_another_run(tmp_path):
    a = _weekend_run(tmp_path / "a", 7)
    c = _weekend_run(tmp_path / "c", 8)
    da, dc = dump(tmp_path / "a" / "world.db"), dump(tmp_path / "c" / "world.db")
    assert da["world_events"] != dc["world_events"]
    assert da["conversation_turns"] != dc["conversation_turns"]
    assert a.chronicle.read_bytes() != c.chronicle.read_bytes()
    assert da["locations"] == dc["locations"] and da["activities"] == dc["activities"]


# --- replay ----------------------------------------------------------------------------------------------------

def test_replay_of_a_finished_run_matches(basic, weekend):
    _, _, result = basic
    report = replay.replay(result.chronicle)
    assert report.matches and report.detail == ""
    assert report.responses > 100 and report.records == len(chronicle(result.chronicle)["event_type"])
    assert "matches" in str(report)
    report = replay.replay(weekend[3].chronicle)                     # with a scenario and seeded agents
    assert report.matches, report.detail


def test_replay_of_a_second_run_in_the_same_database_matches(travel, tmp_path):
    cfg, db = travel
    d = tmp_path / "copy"
    d.mkdir()
    shutil.copy(db, d / "world.db")
    result = run_world(d / "world.db", cfg, agents=12, seed=11)
    assert result.run_id == 2
    assert replay.replay(result.chronicle).matches


@pytest.mark.parametrize("damage", ["cut 30%", "cut 60%", "cut 95%", "last 10 bytes cut", "footer byte flipped",
                                    "payload byte flipped"])
def test_replay_of_a_damaged_log_names_the_damage(basic, tmp_path, damage):
    _, _, result = basic
    data = bytearray(result.chronicle.read_bytes())
    if damage.startswith("cut "):
        data = data[:int(len(data) * int(damage[4:-1]) / 100)]
    elif damage == "last 10 bytes cut":
        data = data[:-10]
    else:
        at = len(data) - 20 if damage.startswith("footer") else len(data) // 2
        data[at] ^= 0x40
    bad = tmp_path / "bad.cmeta"
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="the event log is damaged") as err:
        replay.replay(bad)
    assert str(bad) in str(err.value) and "did not finish" not in str(err.value)


def test_replay_of_an_edited_log_does_not_match(basic, tmp_path):
    _, _, result = basic
    same = tmp_path / "same.cmeta"
    rewrite_chronicle(result.chronicle, same)
    assert replay.replay(same).matches                           # the copy is a faithful copy

    def move_someone(cols):
        k = int(np.flatnonzero(cols["event_type"] == "task_update")[5])
        cols["values.location"][k] = cols["values.location"][k] % 6 + 1
    edited = tmp_path / "edited.cmeta"
    rewrite_chronicle(result.chronicle, edited, move_someone)
    report = replay.replay(edited)
    assert not report.matches and "block" in report.detail

    def drop_a_reply(cols):
        k = int(np.flatnonzero(cols["event_type"] == "lm_response")[3])
        p = json.loads(cols["payload"][k])
        key = "turns" if p.get("turns") else "reflections"
        p[key] = p[key][:-1]
        cols["payload"][k] = json.dumps(p)
    edited = tmp_path / "short.cmeta"
    rewrite_chronicle(result.chronicle, edited, drop_a_reply)
    assert not replay.replay(edited).matches


def test_replay_notices_a_request_that_differs_from_the_recorded_one(basic, monkeypatch):
    _, _, result = basic
    monkeypatch.setattr(policy, "topic", lambda agents, members: "something else")
    report = replay.replay(result.chronicle)
    assert not report.matches and "was asked something else than in the recorded run" in report.detail


def test_replay_uses_the_recorded_texts_not_the_model(tmp_path, monkeypatch):
    """A run whose model said something else: the replay serves the recorded
    texts, so it still matches (replay checks the simulation, not the model)."""
    original = models.OfflineModel.complete

    def other(self, requests):
        texts = original(self, requests)
        return ["Something else entirely." if i == 0 else t for i, t in enumerate(texts)]
    monkeypatch.setattr(models.OfflineModel, "complete", other)
    result = run_world(tmp_path / "world.db", wconfig.load_config(), agents=10, seed=1)
    monkeypatch.undo()
    said = [r[0] for r in rows(tmp_path / "world.db", "SELECT content FROM conversation_turns")]
    assert "Something else entirely." in said
    report = replay.replay(result.chronicle)
    assert report.matches, report.detail


def test_replay_refuses_a_log_that_is_not_a_world_run(tmp_path):
    from chronoledger.chronicle import Chronicle

    p = tmp_path / "other.cmeta"
    with Chronicle.open(p, "w", schema="event", metadata={"source": "someone else"}) as ch:
        ch.append(timestamp=1, event_type="x", payload={"a": 1})
    with pytest.raises(CorruptDataError, match="not the event log of a world run"):
        replay.replay(p)


# --- reports ------------------------------------------------------------------------------------------------------

SECTIONS = ["## Actions", "## Activities per category", "## Locations visited", "## Relationships strengthened",
            "## Relationships weakened", "## New memories by kind", "## Busiest agents"]
KEYS = {"day_label", "events", "agents_active", "agents", "conversations", "actions", "activities_per_category",
        "locations_visited", "relationships_strengthened", "relationships_weakened", "new_memories_by_kind",
        "busiest_agents"}


def test_reports_per_day_in_markdown_and_json(basic):
    _cfg, db, result = basic
    folder = db.parent / "reports"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"run-1-{d}.{x}" for d in (DAY1, DAY2)
                                                              for x in ("md", "json"))
    assert sorted(result.reports) == sorted(folder.iterdir())
    cats = {n: c for n, c in rows(db, "SELECT id, category FROM activities")}
    loc_names = dict(rows(db, "SELECT id, name FROM locations"))
    for day in (DAY1, DAY2):
        md = (folder / f"run-1-{day}.md").read_text()
        m = json.loads((folder / f"run-1-{day}.json").read_text())
        assert md.startswith(f"# World report: {day}\n")
        positions = [md.index(s) for s in SECTIONS]
        assert positions == sorted(positions)
        assert "## Transcripts" in md and "transcripts" in m
        assert KEYS <= set(m) and m["day_label"] == day
        evs = events(db, "day_label = ?", (day,))
        assert m["events"] == len(evs) and f"{len(evs):,} events" in md
        assert m["agents_active"] == len({e[0] for e in evs}) and m["agents"] == 30
        assert m["conversations"] == rows(db, "SELECT count(*) FROM conversations WHERE day_label = ?", (day,))[0][0]
        assert m["actions"] == dict(collections.Counter(e[3] for e in evs))
        acts = rows(db, "SELECT activity_id FROM world_events WHERE day_label = ?", (day,))
        assert m["activities_per_category"] == dict(collections.Counter(cats[a] for a, in acts))
        assert m["locations_visited"] == dict(collections.Counter(loc_names[e[4]] for e in evs))
        kinds = collections.Counter(k for k, in rows(db, "SELECT kind FROM memories WHERE created_at LIKE ?",
                                                         (day + "%",)))
        assert {k: v for k, v in m["new_memories_by_kind"].items() if v} == dict(kinds)
        assert all(p["change"] > 0 for p in m["relationships_strengthened"])
        assert all(p["change"] < 0 for p in m["relationships_weakened"])
        assert 0 < len(m["relationships_strengthened"]) <= 5 and len(m["busiest_agents"]) == 5
        per_agent = collections.Counter(e[0] for e in evs)
        assert [b["actions"] for b in m["busiest_agents"]] == sorted(per_agent.values(), reverse=True)[:5]
        # the transcripts are the conversations' turns
        turns = {r[0] for r in rows(db, "SELECT content FROM conversation_turns t JOIN conversations c ON "
                                        "c.id = t.conversation_id WHERE c.day_label = ?", (day,))}
        shown = {line.split(": ", 1)[1] for t in m["transcripts"] for line in t["turns"]}
        assert shown and shown <= turns
        assert next(iter(shown)) in md


def test_daily_reports_rows_one_per_run_and_day(basic):
    _cfg, db, _ = basic
    got = rows(db, "SELECT run_id, day_label, summary_text, metrics_json FROM daily_reports ORDER BY id")
    assert [(r[0], r[1]) for r in got] == [(1, DAY1), (1, DAY2)]
    for _, day, summary, metrics in got:
        assert summary.startswith(f"# World report: {day}") and "## Transcripts" not in summary
        assert all(s in summary for s in SECTIONS)
        assert json.loads(metrics) == {k: v for k, v in json.loads(
            (db.parent / "reports" / f"run-1-{day}.json").read_text()).items() if k != "transcripts"}
    conn = apsw.Connection(str(db))
    try:
        with pytest.raises(apsw.ConstraintError):
            conn.execute("INSERT INTO daily_reports (run_id, day_label, summary_text, metrics_json, created_at) "
                         "VALUES (1, ?, 'x', '{}', 'x')", (DAY1,))
    finally:
        conn.close()


def test_summary_only_leaves_the_transcripts_out(tmp_path):
    db = tmp_path / "world.db"
    result = run_world(db, wconfig.load_config(), agents=10, seed=1, report_format="both", summary_only=True,
                       reports_dir=tmp_path / "r")
    md = (tmp_path / "r" / f"run-1-{DAY1}.md").read_text()
    m = json.loads((tmp_path / "r" / f"run-1-{DAY1}.json").read_text())
    assert result.conversations > 0
    assert "Transcripts" not in md and "transcripts" not in m
    assert all(s in md for s in SECTIONS)
    some_turn = rows(db, "SELECT content FROM conversation_turns LIMIT 1")[0][0]
    assert some_turn not in md and some_turn not in json.dumps(m)


@pytest.mark.parametrize("fmt, suffixes", [("markdown", [".md"]), ("json", [".json"]), ("none", [])])
def test_report_formats(tmp_path, fmt, suffixes):
    result = run_world(tmp_path / "world.db", wconfig.load_config(), agents=5, seed=1, report_format=fmt,
                       reports_dir=tmp_path / "r")
    assert [p.suffix for p in result.reports] == suffixes
    assert rows(tmp_path / "world.db", "SELECT count(*) FROM daily_reports")[0][0] == 1
    if not suffixes:
        assert not (tmp_path / "r").exists()


def test_periods_cover_the_day():
    cfg = wconfig.load_config()
    assert [cfg.period(h) for h in (0, 10, 11, 13, 14, 17, 18, 23)] == \
        ["morning", "morning", "midday", "midday", "afternoon", "afternoon", "evening", "evening"]
    assert set(cfg.time_preferences) == set(PERIODS)


def test_friends_interests_reach_the_run(weekend):
    _, _, db, _ = weekend
    got = collections.defaultdict(dict)
    for name, tag, score in rows(db, "SELECT a.name, i.tag, i.score FROM interests i JOIN agents a ON a.id = "
                                     "i.agent_id"):
        got[name][tag] = score
    for name, spec in FRIENDS.items():
        assert got[name] == store.parse_interests(spec)


def test_memory_hashes_keep_letters_of_every_script():
    from chronoledger.world.memory import norm_hash as _norm_hash

    texts = ["Talked with Zoë at the café.", "Talked with Zoé at the café.", "Talked with Zo at the café.",
             "カフェで話した", "公园散步"]
    assert len({_norm_hash(t) for t in texts}) == len(texts)
    assert _norm_hash("Hello,   World!") == _norm_hash("hello world")


def test_a_partial_config_replays(tmp_path):
    from chronoledger.world.replay import replay

    cfg = wconfig.load_config(write(tmp_path / "c.yaml", "time_preferences:\n  morning: [walk]\n"))
    result = run_world(tmp_path / "w.db", cfg, agents=20, seed=2)
    assert replay(result.chronicle).matches


def test_an_agent_turned_away_says_so(tmp_path):
    cfg = wconfig.load_config(write(tmp_path / "crowded.yaml", CAPACITY_CONFIG))
    run_world(tmp_path / "w.db", cfg, agents=10, seed=4)
    refused = [json.loads(m) for (m,) in rows(tmp_path / "w.db", "SELECT metadata_json FROM world_events "
                                                                  "WHERE metadata_json LIKE '%refused_by%'")]
    cafe = location_ids(tmp_path / "w.db")["cafe"]
    assert refused and all(m["refused_by"] == cafe for m in refused)


def test_the_second_round_of_a_duo_chat_sees_the_first(tmp_path, monkeypatch):
    seen = []
    original = models.OfflineModel.complete

    def spy(self, requests):
        seen.extend(requests)
        return original(self, requests)
    monkeypatch.setattr(models.OfflineModel, "complete", spy)
    run_world(tmp_path / "w.db", wconfig.load_config(), agents=30, seed=3)
    second = [r for r in seen if r.kind == "duo_chat" and r.round == 1]
    assert second and all(len(r.history) == 2 for r in second)
    assert all(h.split(": ", 1)[0] in (r.speaker, *r.others) for r in second for h in r.history)
    assert all(r.history == () for r in seen if r.round == 0)


def test_scripted_chats_take_place_with_everyone_in_one_place(weekend):
    _cfg, _, db, _ = weekend
    convs = rows(db, "SELECT id, day_label, tick_index, location_id FROM conversations WHERE kind = 'scripted'")
    assert convs
    for conv, day, tick, where in convs:
        members = {a for (a,) in rows(db, "SELECT DISTINCT agent_id FROM conversation_turns WHERE conversation_id = ?",
                                      (conv,))}
        places = {loc for a, d, t, action, loc, meta, _ in events(db, "day_label = ? AND tick_index = ?", (day, tick))
                  if a in members}
        assert places == {where}, (conv, places, where)


def test_the_python_api_from_the_package(tmp_path):
    import chronoledger as cl

    w = cl.world
    result = w.run(tmp_path / "w.db", w.load_config(), w.make_model("offline"),
                   w.RunOptions(days=1, agents=6, seed=3, report_format="none"))
    assert result.agents == 6 and result.events > 0 and result.agent_ticks_run == result.agent_ticks
    assert w.replay.replay(result.chronicle).matches
    with pytest.raises(ConfigError, match="RunOptions.days"):
        w.RunOptions(days=0)
    with pytest.raises(ConfigError, match="RunOptions.report_format"):
        w.RunOptions(report_format="pdf")
    with pytest.raises(ConfigError, match="RunOptions.agents"):
        w.RunOptions(agents=-3)
