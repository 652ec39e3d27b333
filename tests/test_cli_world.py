"""`chronoledger world ...` from the command line, with its exit codes (0 ok,
2 bad usage or a bad config/scenario, 3 unreadable, 4 a replay that does not
match, 5 no such run or day)."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile

import numpy as np
import pytest
from _cli import invoke
from _world_data import WEEKEND, rows, write
from chronoledger.cli import cli


def run(*args, env=None):
    return invoke(cli, [str(a) for a in args], env=env)


def world(*args, **kw):
    return run("world", *args, **kw)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("CHRONOLEDGER_WORLD_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    # --no-persist copies the database under the temporary folder: keep it inside the test's own
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "world.db"
    r = world("init", "--db-url", f"sqlite:///{path}")
    assert r.exit_code == 0, r.output
    return path


def url(path):
    return f"sqlite:///{path}"


def seed(db, name, *extra):
    r = world("seed-agent", "--db-url", url(db), "--name", name, *extra)
    assert r.exit_code == 0, r.output
    return r


# --- init, seed-agent, world-init ---------------------------------------------------------------

def test_init_creates_the_database(tmp_path):
    path = tmp_path / "sub" / "w.db"
    path.parent.mkdir()
    r = world("init", "--db-url", url(path))
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"ready: {path}"
    tables = {t for t, in rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"agents", "world_events", "agent_schedules", "daily_reports", "memories"} <= tables
    assert world("init", "--db-url", url(path)).exit_code == 0                 # again: nothing to do
    # a plain path works too, and the environment variable stands in for --db-url
    r = world("init", env={"CHRONOLEDGER_WORLD_DB": str(tmp_path / "env.db")})
    assert r.exit_code == 0 and (tmp_path / "env.db").exists()


def test_seed_agent_with_interests_and_family(db):
    r = seed(db, "Ava", "--bio", "Designer", "--job", "designer", "--interests", "coffee:0.8,cycling:0.9",
             "--family", '{"spouse": "Ben", "kids": 2}', "--traits", '{"curious": true}')
    assert r.stdout.strip() == "agent 1: Ava"
    assert rows(db, "SELECT name, bio, job, family_json, traits_json FROM agents") == \
        [("Ava", "Designer", "designer", '{"kids": 2, "spouse": "Ben"}', '{"curious": true}')]
    assert sorted(rows(db, "SELECT tag, score FROM interests")) == [("coffee", 0.8), ("cycling", 0.9)]
    # seeding the name again updates the agent and replaces its interests
    r = seed(db, "Ava", "--interests", "chess")
    assert r.stdout.strip() == "agent 1: Ava"
    assert rows(db, "SELECT tag, score FROM interests") == [("chess", 0.5)]
    assert rows(db, "SELECT count(*) FROM agents") == [(1,)]


@pytest.mark.parametrize("args, msg", [
    (["--interests", "coffee:1.8"], "the score 1.8 must be a number 0..1"),
    (["--interests", "coffee:x"], "the score must be a number 0..1"),
    (["--interests", "coffee:0.5,,chess"], "an empty tag"),
    (["--interests", "coffee:-0.1"], "must be a number 0..1"),
    (["--family", "{nope"], "--family is not JSON"),
    (["--family", '"a string"'], "--family is a JSON object"),
    (["--family", "[1, 2]"], "--family is a JSON object"),
    (["--family", '[{"relation": "brother"}]'], '--family is a JSON object ({"spouse": "Ben"}) or list'),
    (["--traits", "[1, 2"], "--traits is not JSON"),
])
def test_seed_agent_refuses_bad_values(db, args, msg):
    r = world("seed-agent", "--db-url", url(db), "--name", "Bad", *args)
    assert r.exit_code == 2, r.output
    assert msg in r.stderr
    assert rows(db, "SELECT count(*) FROM agents") == [(0,)]


def test_seed_agent_needs_a_name(db):
    r = world("seed-agent", "--db-url", url(db), "--name", "  ")
    assert r.exit_code == 2 and "an agent needs a name" in r.stderr


def test_world_init_seeds_locations_and_activities(db):
    r = world("world-init", "--db-url", url(db))
    assert r.exit_code == 0, r.output
    n_loc, n_act = (int(x) for x in r.stdout.split()[::3][:2])
    assert r.stdout.strip() == f"{n_loc} locations and {n_act} activities"
    assert n_loc >= 5 and n_act >= 6
    assert rows(db, "SELECT count(*) FROM locations") == [(n_loc,)]
    assert rows(db, "SELECT count(*) FROM activities") == [(n_act,)]
    # every activity is at a known location; running it again changes nothing
    assert rows(db, "SELECT count(*) FROM activities WHERE location_id NOT IN (SELECT id FROM locations)") == [(0,)]
    assert world("world-init", "--db-url", url(db)).stdout == r.stdout


def test_world_init_with_a_config(db, tmp_path):
    cfg = write(tmp_path / "small.yaml", """\
        locations:
          home: {kind: home, capacity: 10}
          shed: {kind: shed, capacity: 2, open_hours: [9, 17]}
        location_graph: {home: {shed: 5}}
        activities:
          tinker: {category: hobby, location: shed}
        time_preferences: {}
        """)
    r = world("world-init", "--db-url", url(db), "--config", cfg)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "2 locations and 1 activities"
    assert rows(db, "SELECT name, capacity, open_hours_json FROM locations WHERE name = 'shed'") == \
        [("shed", 2, "[9, 17]")]


# --- run ---------------------------------------------------------------------------------------

def test_run_dry_run_with_reports(db, tmp_path):
    r = world("run", "--db-url", url(db), "--days", 1, "--agents", 5, "--invent-agents", "--dry-run", "--persist", "--seed", 3,
              "--report-format", "both")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("run 1: 1 days, 5 agents, 60 agent-ticks, ")
    log = tmp_path / "world-run-1.cmeta"
    assert f"event log: {log}" in lines
    md, js = tmp_path / "reports" / "run-1-2026-01-05.md", tmp_path / "reports" / "run-1-2026-01-05.json"
    assert f"report: {md}" in lines and f"report: {js}" in lines
    assert log.exists() and md.exists() and json.loads(js.read_text())["agents"] == 5
    events = rows(db, "SELECT count(*) FROM world_events")[0][0]
    assert f"{events} events" in lines[0]
    assert rows(db, "SELECT seed, days, agents, model, status, chronicle FROM runs") == \
        [(3, 1, 5, "offline", "finished", "world-run-1.cmeta")]


def test_run_options_reach_the_run(db, tmp_path):
    r = world("run", "--db-url", url(db), "--agents", 6, "--invent-agents", "--dry-run", "--persist", "--tick-minutes", 30, "--start-hour", 9,
              "--end-hour", 13, "--max-concurrent-chats", 1, "--report-format", "json", "--summary-only",
              "--reports-dir", tmp_path / "out", "--chronicle", tmp_path / "log.cmeta")
    assert r.exit_code == 0, r.output
    assert "6 agents, 48 agent-ticks" in r.stdout                      # 8 ticks of 30 minutes, 6 agents
    assert rows(db, "SELECT min(tick_index), max(tick_index) FROM world_events") == [(0, 7)]
    assert rows(db, "SELECT max(n) FROM (SELECT count(*) AS n FROM conversations GROUP BY tick_index)")[0][0] <= 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["run-1-2026-01-05.json"]
    assert "transcripts" not in json.loads((tmp_path / "out" / "run-1-2026-01-05.json").read_text())
    assert (tmp_path / "log.cmeta").exists() and f"event log: {tmp_path / 'log.cmeta'}" in r.stdout
    assert rows(db, "SELECT min(created_at) FROM world_events") == [("2026-01-05T09:00:00.000000Z",)]


def test_run_the_weekend_scenario(db):
    for name, interests in (("Ava", "coffee:0.8,hiking:0.6"), ("Ben", "cycling:0.9,coffee:0.4"),
                            ("Cleo", "cooking:0.9,hiking:0.5")):
        seed(db, name, "--interests", interests)
    r = world("run", "--db-url", url(db), "--days", 2, "--dry-run", "--persist", "--scripted-events", WEEKEND)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("run 1: 2 days, 3 agents, 72 agent-ticks")
    assert rows(db, "SELECT count(*) FROM conversations WHERE kind = 'scripted' AND day_label = '2026-01-05' "
                    "AND tick_index = 3") == [(1,)]
    assert rows(db, "SELECT count(*) FROM agent_schedules WHERE source = 'scenario'") == [(12,)]
    assert json.loads(rows(db, "SELECT scenario_json FROM runs")[0][0])["name"] == "weekend_getaway"


def test_run_the_scenario_without_its_agents(db):
    r = world("run", "--db-url", url(db), "--agents", 3, "--invent-agents", "--dry-run", "--persist", "--scripted-events", WEEKEND)
    assert r.exit_code == 2, r.output
    assert str(WEEKEND) in r.stderr and "no agent named 'Ava'" in r.stderr


def test_run_with_a_bad_config(db, tmp_path):
    bad = write(tmp_path / "bad.yaml", "guardrails:\n  max_chats: 3\n")
    r = world("run", "--db-url", url(db), "--agents", 3, "--invent-agents", "--dry-run", "--persist", "--config", bad)
    assert r.exit_code == 2, r.output
    assert f"{bad}: guardrails.max_chats: unknown guardrail" in r.stderr
    bad = write(tmp_path / "bad2.yaml", "time_preferences:\n  morning: [move]\n")
    r = world("run", "--db-url", url(db), "--agents", 3, "--invent-agents", "--dry-run", "--persist", "--config", bad)
    assert r.exit_code == 2 and f"{bad}: time_preferences.morning[0]: 'move' is an action type" in r.stderr
    r = world("run", "--db-url", url(db), "--agents", 3, "--invent-agents", "--dry-run", "--persist", "--tick-minutes", 7)
    assert r.exit_code == 2 and "default_hours.tick_minutes: 7" in r.stderr
    assert rows(db, "SELECT count(*) FROM runs") == [(0,)]


def test_run_without_agents(db):
    r = world("run", "--db-url", url(db), "--dry-run", "--persist")
    assert r.exit_code == 2 and "no agents" in r.stderr


def test_no_persist_leaves_the_database_unchanged(db, tmp_path):
    assert world("run", "--db-url", url(db), "--agents", 4, "--invent-agents", "--dry-run", "--persist", "--report-format", "none").exit_code == 0
    before = {t: rows(db, f"SELECT count(*) FROM {t}")[0][0]
              for t in ("runs", "world_events", "conversations", "memories", "agents", "daily_reports")}
    r = world("run", "--db-url", url(db), "--agents", 6, "--invent-agents", "--dry-run", "--no-persist", "--seed", 9)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("run 2: 1 days, 6 agents")
    after = {t: rows(db, f"SELECT count(*) FROM {t}")[0][0] for t in before}
    assert after == before and before["world_events"] > 0
    # the event log and the reports are still written, beside the database; the reports apart from those of the
    # next real run, which takes the same id
    assert (tmp_path / "world-dry-run.cmeta").exists() and list((tmp_path / "reports" / "dry-run").glob("run-2-*.md"))
    assert world("run", "--db-url", url(db), "--agents", 6, "--invent-agents", "--dry-run", "--persist").exit_code == 0
    assert list((tmp_path / "reports").glob("run-2-*.md")) and list((tmp_path / "reports" / "dry-run").glob("run-2-*"))


def test_agents_are_made_up_only_when_asked_and_never_tied_to_yours(db):
    assert world("seed-agent", "--db-url", url(db), "--name", "Ava").exit_code == 0
    r = world("run", "--db-url", url(db), "--agents", 5)
    assert r.exit_code == 2 and "1 agents, and 5 asked for" in r.stderr and "--invent-agents" in r.stderr
    assert rows(db, "SELECT count(*) FROM agents") == [(1,)]
    assert world("run", "--db-url", url(db), "--agents", 30, "--invent-agents").exit_code == 0
    ava = rows(db, "SELECT id FROM agents WHERE name = 'Ava'")[0][0]
    assert rows(db, "SELECT count(*) FROM relationships WHERE updated_at = (SELECT min(updated_at) FROM "
                    "relationships) AND (from_agent_id = ? OR to_agent_id = ?)", (ava, ava)) == [(0,)]
    invented = rows(db, "SELECT count(*) FROM agents WHERE json_extract(traits_json, '$.invented')")
    assert invented == [(29,)]


def test_a_dry_run_writes_to_the_database_only_with_persist(db, tmp_path):
    """The plan: --dry-run logs what it plans without calling a model; the database is written only
    with --persist (it was written by every dry run)."""
    assert world("run", "--db-url", url(db), "--agents", 4, "--invent-agents", "--persist", "--report-format", "none").exit_code == 0
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    r = world("run", "--db-url", url(db), "--agents", 4, "--invent-agents", "--dry-run", "--seed", 2)
    assert r.exit_code == 0, r.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert (tmp_path / "world-dry-run.cmeta").exists()
    assert world("run", "--db-url", url(db), "--agents", 4, "--invent-agents", "--dry-run", "--persist").exit_code == 0
    assert rows(db, "SELECT count(*) FROM runs")[0][0] == 2


# --- replay and report ---------------------------------------------------------------------------------

def test_replay_a_run(db, tmp_path):
    assert world("run", "--db-url", url(db), "--agents", 5, "--invent-agents", "--days", 2, "--dry-run", "--persist", "--seed", 4,
                 "--report-format", "none").exit_code == 0
    log = tmp_path / "world-run-1.cmeta"
    r = world("replay", log)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{log}: replayed ") and r.stdout.strip().endswith(": matches")
    # half a log is damage, named with its offsets: exit 3
    cut = tmp_path / "cut.cmeta"
    data = log.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    r = world("replay", cut)
    assert r.exit_code == 3 and "the event log is damaged" in r.stderr and "offset" in r.stderr, r.output
    # a whole log of another run (an event moved elsewhere): exit 4
    from _world_data import rewrite_chronicle

    def move_someone(cols):
        k = int(np.flatnonzero(cols["event_type"] == "task_update")[3])
        cols["values.location"][k] = cols["values.location"][k] % 6 + 1
    edited = tmp_path / "edited.cmeta"
    rewrite_chronicle(log, edited, move_someone)
    r = world("replay", edited)
    assert r.exit_code == 4 and "DOES NOT MATCH" in r.stdout, r.output


def test_replay_of_something_else(tmp_path):
    junk = tmp_path / "junk.cmeta"
    junk.write_bytes(b"not a chronicle at all")
    r = world("replay", junk)
    assert r.exit_code == 3 and "error:" in r.stderr
    r = world("replay", tmp_path / "missing.cmeta")
    assert r.exit_code == 2


def test_report_for_a_day(db):
    assert world("run", "--db-url", url(db), "--agents", 5, "--invent-agents", "--days", 2, "--dry-run", "--persist",
                 "--report-format", "none").exit_code == 0
    r = world("report", "--db-url", url(db), "--day", "2026-01-05")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("# World report: 2026-01-05\n")
    for section in ("## Activities per category", "## Locations visited", "## Relationships strengthened",
                    "## Relationships weakened", "## New memories by kind", "## Busiest agents"):
        assert section in r.stdout
    events = rows(db, "SELECT count(*) FROM world_events WHERE day_label = '2026-01-05'")[0][0]
    assert f"{events} events; 5 of 5 agents active" in r.stdout
    r = world("report", "--db-url", url(db), "--day", "2026-01-06", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["day_label"] == "2026-01-06"
    r = world("report", "--db-url", url(db), "--day", "2026-01-07")
    assert r.exit_code == 5 and "no report for day '2026-01-07'" in r.stderr
    r = world("report", "--db-url", url(db), "--day", "2026-01-05", "--run", 9)
    assert r.exit_code == 5 and "in run 9" in r.stderr


@pytest.mark.parametrize("command", [["init"], ["world-init"], ["seed-agent", "--name", "Ava"],
                                     ["run", "--agents", "2", "--invent-agents", "--dry-run", "--persist"], ["report", "--day", "2026-01-05"]])
def test_a_database_url_that_is_not_sqlite(command):
    r = world(*command, "--db-url", "postgres://x")
    assert r.exit_code == 2, r.output
    assert "postgres://x: not a database URL this build reads (write sqlite:///path/to/world.db" in r.stderr


def test_database_url_options_are_refused_not_taken_as_a_file_name(tmp_path):
    r = world("init", "--db-url", f"sqlite:///{tmp_path / 'w.db'}?mode=ro")
    assert r.exit_code == 2 and "without options" in r.stderr and not list(tmp_path.glob("w.db*"))


def test_no_temporary_copies_left_behind(db, tmp_path):
    assert world("run", "--db-url", url(db), "--agents", 2, "--invent-agents", "--dry-run", "--no-persist").exit_code == 0
    leftovers = list((tmp_path / "tmp").iterdir())
    shutil.rmtree(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    assert leftovers == [], leftovers


def test_no_persist_never_touches_the_database_file(tmp_path):
    import apsw

    plain = tmp_path / "plain.db"
    conn = apsw.Connection(str(plain))
    conn.execute("CREATE TABLE notes (x); INSERT INTO notes VALUES (1)")
    conn.close()
    before = plain.read_bytes()
    r = world("run", "--db-url", url(plain), "--agents", 3, "--invent-agents", "--dry-run", "--no-persist", "--report-format", "none")
    assert r.exit_code == 0, r.output
    assert plain.read_bytes() == before and not (tmp_path / "plain.db-wal").exists()
    r = world("run", "--db-url", url(plain), "--resume", "--no-persist")
    assert r.exit_code == 2 and "cannot be combined with --no-persist" in r.stderr


def test_a_model_that_cannot_be_reached_fails_fast_and_leaves_the_run_resumable(db, tmp_path):
    r = world("run", "--db-url", url(db), "--agents", 4, "--invent-agents", "--model", "ollama", "--model-url", "http://127.0.0.1:1",
              "--model-name", "tiny", "--model-timeout", 0.5, "--model-retries", 0, "--report-format", "none")
    assert r.exit_code == 3, r.output
    assert "127.0.0.1:1" in r.stderr and "--resume --run-id 1" in r.stderr      # tick 0 (all moving) was stored
    assert rows(db, "SELECT status, model FROM runs") == [("stopped", "ollama:tiny")]
    r = world("replay", tmp_path / "world-run-1.cmeta")
    assert r.exit_code == 3 and "did not finish" in r.stderr


def test_a_scripted_event_after_the_last_day_is_refused(db, tmp_path):
    for name in ("Ava", "Ben"):
        seed(db, name)
    p = write(tmp_path / "late.yaml", "scripted_events:\n  - {tick: 1, day: 5, type: duo_chat, agents: [Ava, Ben], location: cafe}\n")
    r = world("run", "--db-url", url(db), "--days", 2, "--dry-run", "--persist", "--scripted-events", p)
    assert r.exit_code == 2 and "day 5 would never fire in a run of 2 day(s)" in r.stderr


def test_bad_seeds_and_run_ids_are_usage_errors(db):
    for args in (["--seed", -5], ["--seed", 2 ** 64], ["--resume", "--run-id", 0]):
        r = world("run", "--db-url", url(db), "--agents", 3, "--invent-agents", *args)
        assert r.exit_code == 2, (args, r.output)
    assert rows(db, "SELECT count(*) FROM runs") == [(0,)]


def test_report_reads_only_and_names_a_missing_database(tmp_path):
    r = world("report", "--db-url", url(tmp_path / "typo.db"), "--day", "2026-01-05")
    assert r.exit_code == 5 and "typo.db: no such world database" in r.stderr
    assert not (tmp_path / "typo.db").exists()


def test_a_failure_before_any_run_gives_no_resume_hint(tmp_path):
    (tmp_path / "adir.db").mkdir()
    r = world("run", "--db-url", url(tmp_path / "adir.db"), "--agents", 3, "--invent-agents", "--report-format", "none")
    assert r.exit_code == 3 and "note:" not in r.stderr and "Traceback" not in r.output
    assert f"error: {tmp_path / 'adir.db'}: " in r.stderr                  # the file named, whatever SQLite said


def test_a_stopped_run_gets_the_resume_hint_and_a_damaged_checkpoint_is_named(db, tmp_path, monkeypatch):
    from chronoledger.world import scheduler

    original = scheduler.WorldRun.tick

    def stop(self, d, t):
        if (d, t) == (1, 4):
            raise KeyboardInterrupt
        return original(self, d, t)
    monkeypatch.setattr(scheduler.WorldRun, "tick", stop)
    r = world("run", "--db-url", url(db), "--agents", 5, "--invent-agents", "--report-format", "none")
    monkeypatch.undo()
    assert r.exit_code != 0
    assert "note: run 1 is stopped at its last whole tick" in r.stderr and "--resume --run-id 1" in r.stderr
    good = rows(db, "SELECT checkpoint_state, checkpoint_json FROM runs")[0]
    import apsw

    for blob, text in ((good[0][:-7], good[1]), (good[0], good[1][:-20]), (good[0], '{"day": 1}')):
        conn = apsw.Connection(str(db))
        conn.execute("UPDATE runs SET checkpoint_state = ?, checkpoint_json = ?", (blob, text))
        conn.close()
        before = rows(db, "SELECT count(*) FROM world_events")
        r = world("run", "--db-url", url(db), "--resume")
        assert r.exit_code == 3, r.output
        assert "run 1: its checkpoint (runs.checkpoint_json and checkpoint_state) is damaged" in r.stderr
        assert "Traceback" not in r.output and rows(db, "SELECT count(*) FROM world_events") == before


def test_seed_agent_takes_family_as_a_list(db):
    r = world("seed-agent", "--db-url", url(db), "--name", "Dee", "--family", '[{"name": "Cy", "relation": "brother"}]')
    assert r.exit_code == 0, r.output
    assert rows(db, "SELECT family_json FROM agents WHERE name = 'Dee'") == [('[{"name": "Cy", "relation": "brother"}]',)]
