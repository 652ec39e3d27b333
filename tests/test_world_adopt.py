"""Adopting the world sandbox's database (chronoledger.world.adopt): refused
untouched until adopted, every row kept, its agents, family, relationships
and memories the world's, and a seeded run of the sandbox's files on it
byte-identical twice and replayable."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from _cli import invoke
from _sandbox_db import make_sandbox_db
from chronoledger.cli import cli
from chronoledger.errors import SchemaError
from chronoledger.world import adopt, models, scheduler, store
from chronoledger.world.config import with_scenario
from chronoledger.world.replay import replay

SANDBOX = Path(__file__).parent / "data" / "sandbox"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def everything(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: conn.execute(f"SELECT * FROM {n} ORDER BY rowid").fetchall() for n in names}
    finally:
        conn.close()


@pytest.fixture
def sandbox(tmp_path):
    return make_sandbox_db(tmp_path / "agents.db")


def test_a_sandbox_database_is_refused_untouched_until_adopted(sandbox):
    before = digest(sandbox)
    for open_it in (lambda: store.connect(sandbox),
                    lambda: scheduler.run(sandbox, with_scenario(SANDBOX / "world_config.yaml",
                                                                 SANDBOX / "picnic.yaml")[0],
                                          models.make_model("offline"), scheduler.RunOptions())):
        with pytest.raises(SchemaError, match=r"the world sandbox's database .*chronoledger world adopt --db-url"):
            open_it()
    assert digest(sandbox) == before
    assert sorted(p.name for p in sandbox.parent.iterdir()) == ["agents.db"]        # no WAL, no journal left
    r = invoke(cli, ["world", "seed-agent", "--db-url", str(sandbox), "--name", "Cy"])
    assert r.exit_code != 0 and "adopt it first" in r.output and digest(sandbox) == before


def test_another_programs_database_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE agents (id INTEGER PRIMARY KEY, handle TEXT)")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(SchemaError, match=r"not a world database \(tables agents, no schema version, and tables of"):
        store.connect(path)
    with pytest.raises(SchemaError, match="not the world sandbox's database"):
        adopt.adopt_sandbox(path)
    assert digest(path) == before


def test_adoption_keeps_every_row_and_makes_them_the_worlds(sandbox):
    original = everything(sandbox)
    checked = adopt.adopt_sandbox(sandbox, check=True)
    assert not checked.done and everything(sandbox) == original        # a check writes nothing
    done = adopt.adopt_sandbox(sandbox)
    assert done.done and done.copied == checked.copied
    after = everything(sandbox)
    for table, rows in original.items():                               # every table whole, under its new name
        assert after[f"sandbox_{table}"] == rows, table
    assert done.kept["sandbox_world_events"] == 20
    conn = store.connect(sandbox)
    try:
        assert conn.execute("SELECT id, name, bio, job, family_json FROM agents").fetchall() == [
            (1, "Ava", "Designer", "UX Designer", "{}"), (2, "Ben", "Developer", "Engineer", "{}")]
        assert conn.execute("SELECT agent_id, tag, score FROM interests").fetchall() == [
            (1, "coffee", 0.8), (2, "cycling", 0.9)]
        mem = conn.execute("SELECT id, agent_id, kind, text, norm_hash, importance FROM memories").fetchall()
        assert [(m[0], m[1], m[3], m[4]) for m in mem] == [
            (r[0], r[1], r[3], r[6]) for r in original["memories"]]
        assert {m[5] for m in mem} == {3}
        assert conn.execute("SELECT name, capacity, open_hours_json FROM locations WHERE name = 'Cafe'").fetchall() \
            == [("Cafe", 15, "[7, 22]")]
        assert conn.execute("PRAGMA journal_mode").fetchall()[0][0] == "wal"
    finally:
        conn.close()
    with pytest.raises(SchemaError, match="already a world database"):
        adopt.adopt_sandbox(sandbox)


def test_a_failed_adoption_leaves_the_file_as_it_was(sandbox, monkeypatch):
    before = digest(sandbox)

    def fail(raw):
        raise SchemaError("the disk went away")
    monkeypatch.setattr(adopt, "_open_hours", fail)
    with pytest.raises(SchemaError, match="the disk went away"):
        adopt.adopt_sandbox(sandbox)
    assert digest(sandbox) == before
    assert sorted(p.name for p in sandbox.parent.iterdir()) == ["agents.db"]


def test_what_the_world_cannot_hold_is_named_and_kept(sandbox):
    conn = sqlite3.connect(sandbox)
    conn.execute("ALTER TABLE agents ADD COLUMN preferred_model VARCHAR(120)")     # the models' newer column
    conn.execute("UPDATE agents SET family_json = '{\"spouse\": \"Ben\"}', preferred_model = 'tinyllama:1.1b' "
                 "WHERE name = 'Ava'")
    conn.execute("UPDATE agents SET family_json = 'my sister', traits_json = '[\"kind\"]' WHERE name = 'Ben'")
    conn.execute("UPDATE interests SET score = 1.5 WHERE agent_id = 2")
    conn.execute("INSERT INTO relationships VALUES (1, 1, 2, 'friend', 0.7, '2025-11-01', NULL)")
    conn.execute("INSERT INTO relationships VALUES (2, 2, NULL, 'pen pal', 0.2, NULL, NULL)")
    conn.execute("INSERT INTO conversations VALUES (1, 'weekend', 'Plan the trip', '2025-11-18 12:00:00')")
    conn.executemany("INSERT INTO turns VALUES (?, 1, 0, 0, ?, ?, 'tinyllama:1.1b', 'assistant', ?, NULL)",
                     [(1, 0, 1, "Let's go to the lake."), (2, 1, 2, "")])
    conn.execute("UPDATE memories SET source_turn_id = 1, metadata_json = 'oops' WHERE id = 1")
    conn.commit()
    conn.close()
    done = adopt.adopt_sandbox(sandbox)
    notes = "\n".join(done.notes)
    assert "agent 2 family_json: 'my sister' is not a JSON object or list" in notes
    assert "agent 2 interest 'cycling': score: 1.5 clamped to 0..1" in notes
    assert "relationship 2: no to_agent_id; left out (kept in sandbox_relationships)" in notes
    assert "turn 2: empty content; left out (kept in sandbox_turns)" in notes
    assert "memory 1 metadata_json: 'oops'" in notes
    got = everything(sandbox)
    assert got["relationships"] == [(1, 2, "friend", 0.7, "2025-11-01")]
    assert got["conversations"] == [(1, None, None, None, "scripted", "weekend", None, "tinyllama:1.1b",
                                     "2025-11-18 12:00:00")]
    assert [t[5] for t in got["conversation_turns"]] == ["Let's go to the lake."]
    assert json.loads(got["agents"][0][5]) == {"preferred_model": "tinyllama:1.1b"}
    assert json.loads(got["agents"][1][5]) == ["kind"]
    assert json.loads(got["memories"][0][6]) == {"source_turn": 1}
    assert got["sandbox_agents"][1][4] == "my sister" and len(got["sandbox_relationships"]) == 2


def test_the_sandbox_files_run_on_its_adopted_database_alike_twice_and_replay(sandbox, tmp_path):
    adopt.adopt_sandbox(sandbox)
    twin = tmp_path / "twin" / "agents.db"
    twin.parent.mkdir()
    shutil.copy(sandbox, twin)
    config, scenario = with_scenario(SANDBOX / "world_config.yaml", SANDBOX / "picnic.yaml")
    logs = []
    for path in (sandbox, twin):
        asked: list[models.ChatRequest] = []

        class Recording(models.OfflineModel):
            def complete(self, requests):
                asked.extend(requests)
                return super().complete(requests)
        result = scheduler.run(path, config, Recording(), scheduler.RunOptions(days=scenario.days, seed=9,
                                                                               report_format="none"), scenario)
        logs.append(result.chronicle)
    assert logs[0].read_bytes() == logs[1].read_bytes()
    assert replay(logs[0]).matches
    # what Ben remembered from the sandbox's own runs reaches the model
    adopted = {"Ben spent time think about goals and aspirations", "Ben spent time contemplate personal growth"}
    assert any(adopted & set(r.memories) for r in asked if r.speaker == "Ben")


def test_adopt_from_the_command_line(sandbox):
    r = invoke(cli, ["world", "adopt", "--db-url", f"sqlite:///{sandbox}", "--check"])
    assert r.exit_code == 0 and "can be adopted (nothing was changed)" in r.output
    assert "memories: 6 row(s)" in r.output
    r = invoke(cli, ["world", "adopt", "--db-url", f"sqlite:///{sandbox}", "--json"])
    assert r.exit_code == 0
    got = json.loads(r.stdout)
    assert got["adopted"] is True and got["copied"]["agents"] == 2 and got["kept"]["sandbox_world_events"] == 20
    r = invoke(cli, ["world", "adopt", "--db-url", f"sqlite:///{sandbox}"])
    assert r.exit_code != 0 and "already a world database" in r.output


# --- found in review -----------------------------------------------------------------------------------

def test_text_that_is_not_utf8_is_named_and_nothing_changes(sandbox):
    conn = sqlite3.connect(sandbox)
    conn.execute("UPDATE agents SET bio = CAST(X'80FE' AS TEXT) WHERE id = 2")
    conn.commit()
    conn.close()
    before = digest(sandbox)
    for check in (True, False):
        with pytest.raises(SchemaError, match=r"table agents, row 2, column bio: not UTF-8 text .*nothing was changed"):
            adopt.adopt_sandbox(sandbox, check=check)
    assert digest(sandbox) == before


def test_rows_the_world_cannot_hold_are_left_out_and_named_alike_checked_or_not(sandbox, tmp_path):
    conn = sqlite3.connect(sandbox)
    conn.execute("UPDATE interests SET score = 'high' WHERE id = 1")
    conn.execute("INSERT INTO interests VALUES (9, 99, 'ghosts', 0.5, NULL)")          # an agent it does not have
    conn.execute("INSERT INTO relationships VALUES (1, 1, 99, 'friend', 0.5, NULL, NULL)")
    conn.execute("UPDATE locations SET capacity = -3, open_hours_json = 'garbage' WHERE name = 'Gym'")
    conn.execute("UPDATE memories SET created_at = 'yesterday' WHERE id = 2")
    conn.commit()
    conn.close()
    twin = tmp_path / "twin.db"
    shutil.copy(sandbox, twin)
    checked = adopt.adopt_sandbox(twin, check=True)
    done = adopt.adopt_sandbox(sandbox)
    assert checked.notes == done.notes and checked.copied == done.copied
    notes = "\n".join(done.notes)
    assert "agent 1 interest 'coffee': score: 'high' is not a number; the world has 0.5" in notes
    assert "interests row" in notes and "points to no agents row; left out" in notes
    assert "relationships row" in notes
    assert "memory 2: created_at 'yesterday' is not a time; it counts as long ago" in notes
    assert "location 'Gym': capacity '-3' is not a number above 0" in notes and "location 'Gym': open hours 'garbage'" in notes
    got = everything(sandbox)
    assert [(a, t, s) for a, t, s in got["interests"]] == [(1, "coffee", 0.5), (2, "cycling", 0.9)]
    assert got["relationships"] == [] and len(got["sandbox_relationships"]) == 1
    assert done.copied["interests"] == 2 and done.copied["relationships"] == 0


def test_a_folder_is_no_database(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(SchemaError, match=r"dir.db: no such database file \(a folder\)"):
        adopt.adopt_sandbox(tmp_path / "dir.db")
