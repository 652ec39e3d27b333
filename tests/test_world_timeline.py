"""chronoledger.world.timeline: a day of a run to replay, checked against
what the simulation wrote in another table (world_events)."""

from __future__ import annotations

import hashlib
import json

import pytest

from _world_data import TRAVEL_CONFIG, rows, run_world, seed_friends, write
from chronoledger.errors import NotFoundError
from chronoledger.world import config as wconfig
from chronoledger.world.timeline import day_timeline, world_runs


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    db = folder / "world.db"
    seed_friends(db)
    cfg = wconfig.load_config(write(folder / "travel.yaml", TRAVEL_CONFIG))
    run_world(db, cfg, days=2, seed=3)
    return db, cfg


def test_where_each_agent_is_agrees_with_what_it_did_there(world):
    db, cfg = world
    tl = day_timeline(db)
    assert tl["run_id"] == 1 and tl["day_label"] == tl["days"][0] and len(tl["days"]) == 2
    assert len(tl["ticks"]) == cfg.ticks_per_day and tl["ticks"][0] == "08:00" and tl["ticks"][1] == "08:30"
    names = {p["id"]: p["name"] for p in tl["places"]}
    assert sorted(names.values()) == ["cafe", "home", "office"]
    index = {a["id"]: k for k, a in enumerate(tl["agents"])}

    def place(k: int, tick: int) -> int | None:
        here = None
        for t, p in tl["moves"][k]:
            if t > tick:
                break
            here = p
        return here

    checked = 0
    for aid, tick, action, loc in rows(db, "SELECT agent_id, tick_index, action, location_id FROM world_events "
                                           "WHERE run_id = 1 AND day_label = ? AND action != 'move'",
                                       (tl["day_label"],)):
        assert place(index[aid], tick) == loc, (aid, tick, action)
        checked += 1
    assert checked > 10
    # an 80-minute trip with 30-minute ticks: on the way for whole ticks in between
    assert any(p is None for moves in tl["moves"] for t, p in moves if t > 0)
    # the changes are changes: no two in a row say the same place
    for moves in tl["moves"]:
        assert all(a[1] != b[1] and a[0] < b[0] for a, b in zip(moves, moves[1:]))


def test_conversations_relationships_and_the_runs(world):
    db, _ = world
    tl = day_timeline(db, json.loads(json.dumps(world_runs(db)))[0]["days"][1], run_id=1)
    held = rows(db, "SELECT count(*) FROM conversations WHERE run_id = 1 AND day_label = ?", (tl["day_label"],))[0][0]
    assert tl["conversations_total"] == held == len(tl["conversations"])
    for c in tl["conversations"]:
        assert c["turns"] and set(c["agents"]) == {t["agent"] for t in c["turns"]}
    report = json.loads(rows(db, "SELECT metrics_json FROM daily_reports WHERE run_id = 1 AND day_label = ?",
                             (tl["day_label"],))[0][0])
    assert tl["relationships"]["strengthened"] == report["relationships_strengthened"]
    assert tl["relationships"]["weakened"] == report["relationships_weakened"]
    runs = world_runs(db)
    assert [(r["id"], r["agents"], r["status"]) for r in runs] == [(1, 3, "finished")]


def test_what_does_not_exist_is_named_and_the_file_is_never_written(world, tmp_path):
    db, _ = world
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(NotFoundError, match=r"no day '2031-01-01' \(its days: "):
        day_timeline(db, "2031-01-01")
    with pytest.raises(NotFoundError, match=r"no run 7 \(runs: 1\)"):
        day_timeline(db, run_id=7)
    with pytest.raises(NotFoundError, match="no such world database"):
        day_timeline(tmp_path / "none.db")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_damaged_recorded_config_is_named_not_a_builtin_error(world, tmp_path):
    import shutil
    from chronoledger.errors import CorruptDataError
    db, _ = world
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    for suffix in ("-wal", "-shm"):
        if db.with_name(db.name + suffix).exists():
            shutil.copy(db.with_name(db.name + suffix), copy.with_name(copy.name + suffix))
    rows(copy, "UPDATE runs SET config_json = '{not json' WHERE id = 1")
    with pytest.raises(CorruptDataError, match="run 1: its recorded config is not JSON"):
        day_timeline(copy)
