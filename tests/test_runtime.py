"""The runtime memory store: schema, migrations and adoption, every method,
the state machine, the audit rules, the v1 queries, concurrency."""

import itertools
import json
import multiprocessing
import re
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import apsw
import pytest

from chronoledger import sqlite as db
from chronoledger.errors import CorruptDataError, SchemaError, ValidationError
from chronoledger.runtime import QUERIES, RuntimeMemoryStore
from chronoledger.runtime.core import TABLES
from chronoledger.runtime.vocab import APPEND_ONLY, ENUMS, MOVES, PROPOSAL_TRANSITIONS, ROLLBACK

LATEST = len(db.migrations("chronoledger.runtime"))  # the schema version this package writes

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class _NpInt(int):
    """An integer that is not exactly int (as numpy's are): the turn check's slow path."""


def _deep(n: int) -> dict:
    d: dict = {}
    for _ in range(n):
        d = {"a": d}
    return d


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


@pytest.fixture
def store(tmp_path):
    with RuntimeMemoryStore(tmp_path / "rt.sqlite") as s:
        yield s


def lineage_fixture(s, key="k"):
    skill = s.record_skill(key, "a skill", "doc", 0.5, learned_at=at(0))
    prop = s.create_proposal(skill["id"], "human", "config_change", {"x": 1}, "medium", created_at=at(1))
    return skill, prop


# --- schema and migrations ---------------------------------------------------

def test_fresh_database_has_the_v1_tables_indexes_and_version(store):
    conn = store._conn
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert set(TABLES) <= names
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    for ix in ("idx_turns_session_created", "idx_workflow_runs_status", "idx_skills_key_state",
               "idx_proposals_status_risk", "idx_behavior_effective", "idx_personality_effective"):
        assert ix in indexes
    assert store.schema_version == db.user_version(conn) == len(db.migrations("chronoledger.runtime"))
    assert conn.execute("PRAGMA journal_mode").fetchall()[0][0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchall()[0][0] == 1


def test_spec_sql_runs_unchanged_with_the_stdlib_driver(tmp_path):
    """Another tool (here Python's sqlite3) reads and writes our file with the spec's SQL."""
    p = tmp_path / "rt.sqlite"
    with RuntimeMemoryStore(p) as s:
        sess = s.start_session("tom", "api")
        s.append_turns(sess["id"], [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
    con = sqlite3.connect(p)
    rows = con.execute("SELECT role, content FROM conversation_turns WHERE session_id = ? ORDER BY turn_index",
                       (sess["id"],)).fetchall()
    assert rows == [("user", "hi"), ("assistant", "yo")]
    with pytest.raises(sqlite3.IntegrityError, match="role must be one of"):
        con.execute("INSERT INTO conversation_turns (id, session_id, turn_index, role, content, created_at) "
                    "VALUES ('x', ?, 9, 'narrator', 'no', '2026-01-01T00:00:00Z')", (sess["id"],))
    con.close()


def test_generated_migrations_are_up_to_date():
    import subprocess
    import sys

    tool = Path(__file__).parents[1] / "tools" / "gen_runtime_enforcement.py"
    r = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _one_of_each(s):
    sess = s.start_session("tom")
    s.append_turn(sess["id"], "user", "x")
    run = s.start_workflow_run("w", "api", "me")
    step = s.start_step(run["id"], "s")
    s.append_task_event("info", "low", "m", workflow_run_id=run["id"], step_id=step["id"])
    skill = s.record_skill("key.x", "d", "doc", 0.5)
    prop = s.create_proposal(skill["id"], "human", "code_patch", {}, "low")
    s.record_validation(prop["id"], "ci", build_pass=1, lint_pass=1, test_pass=1, policy_pass=1)
    s.record_approval(prop["id"], "a", "ops", "approved")
    s.record_deploy_outcome(prop["id"], "prod", "failed")
    s.publish_behavior_profile("tom", {}, "ops")
    s.publish_personality_profile("tom", {}, "ops")


def test_every_rule_is_a_check_constraint_on_new_and_a_trigger_on_adopted_databases(tmp_path):
    """The same bad value is refused with the same message either way, for
    every rule: a copy of a valid row with one column made bad."""
    from chronoledger.runtime.vocab import FLAG_COLUMNS, JSON_OBJECT_COLUMNS

    con = _plain_v1(tmp_path / "legacy.sqlite")
    con.close()
    rules = [(t, c, "'bogus'", f"{t}.{c} must be one of") for (t, c) in ENUMS] + \
            [(t, c, bad, f"{t}.{c} must be a JSON object") for t, c in JSON_OBJECT_COLUMNS
             for bad in ("'[1]'", "'{bad'", "'\"text\"'")] + \
            [(t, c, "2", f"{t}.{c} must be 0 or 1") for t, c in FLAG_COLUMNS]
    for path in (tmp_path / "fresh.sqlite", tmp_path / "legacy.sqlite"):
        with RuntimeMemoryStore(path) as store:
            _one_of_each(store)
            names = {r[0] for r in store._conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            assert any(n.startswith("chk_conversation_turns_role") for n in names) == (path.name == "legacy.sqlite")
            for table, column, bad, msg in rules:
                cols = db.table_columns(store._conn, table)
                picks = ", ".join("'copy-' || id" if c == "id" else bad if c == column else c for c in cols)
                with pytest.raises(apsw.ConstraintError, match=re.escape(msg)):
                    store._conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {picks} FROM {table} "
                                        f"ORDER BY rowid DESC LIMIT 1")
            # good JSON with blanks before the brace is an object
            store._conn.execute("UPDATE sessions SET metadata_json = ' \n {\"a\": 1}'")


def _plain_v1(path: Path) -> apsw.Connection:
    """A database made by another tool from the specification's DDL, with rows
    our triggers would now refuse (kept: adoption never loses a row)."""
    con = apsw.Connection(str(path))
    from chronoledger.runtime.enforcement import spec_ddl

    con.execute(spec_ddl())
    con.execute("INSERT INTO sessions VALUES ('s1', 'tom', 'telegram', '2025-01-01T00:00:00Z', NULL, 'open', '{}')")
    con.execute("INSERT INTO conversation_turns VALUES ('t1', 's1', 0, 'narrator', 'once', NULL, "
                "'2025-01-01T00:00:01Z', '{}')")
    con.execute("INSERT INTO conversation_turns VALUES ('t2', 's1', 1, 'user', 'hello', 3, '2025-01-01T00:00:02Z', '{}')")
    con.execute("INSERT INTO skills_learned VALUES ('k1', 'key', 'd', 'doc', NULL, 0.9, '2025-01-01T00:00:00Z', "
                "'active', '{}')")
    con.execute("INSERT INTO skill_to_logic_proposals VALUES ('p1', 'k1', 'oxide', 'code_patch', '{}', NULL, 'low', "
                "'drafted', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z')")
    con.execute("INSERT INTO validation_results VALUES ('v1', 'p1', 'ci', 1, 1, 1, 1, '{}', '2025-01-01T00:00:00Z')")
    con.execute("INSERT INTO behavior_profiles VALUES ('b1', 'tom', 1, '{\"a\": 1}', NULL, NULL, "
                "'2025-01-01T00:00:00Z', NULL, '2025-01-01T00:00:00Z', 'ops')")
    return con


def test_plain_v1_database_is_adopted_without_losing_a_row(tmp_path):
    p = tmp_path / "legacy.sqlite"
    con = _plain_v1(p)
    before = {t: con.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
    con.close()
    with RuntimeMemoryStore(p) as s:
        assert s.migrations_applied == list(range(1, LATEST + 1)) and s.schema_version == LATEST
        after = {t: s._conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
        assert after == before
        assert [t["content"] for t in s.session_replay("s1")["turns"]] == ["once", "hello"]
        assert s.proposal_lineage("p1")["validations"][0]["validator"] == "ci"
        s.append_turn("s1", "assistant", "adopted")       # the other tool's ids are used as they are
        assert s.session_replay("s1")["turns"][-1]["turn_index"] == 2
        assert s.latest_behavior_profile("tom")["behavior_json"] == {"a": 1}
        with pytest.raises(apsw.ConstraintError, match="append-only"):
            s._conn.execute("DELETE FROM validation_results")
        with pytest.raises(apsw.ConstraintError, match="role must be one of"):
            s._conn.execute("INSERT INTO conversation_turns VALUES ('t3', 's1', 2, 'narrator', 'x', NULL, "
                            "'2025-01-01T00:00:03Z', '{}')")
    with RuntimeMemoryStore(p) as s:                      # reopening applies nothing more
        assert s.migrations_applied == []


def test_a_database_that_is_not_v1_is_refused_untouched(tmp_path):
    p = tmp_path / "other.sqlite"
    con = apsw.Connection(str(p))
    con.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY, user TEXT)")
    con.close()
    before = p.read_bytes()
    with pytest.raises(SchemaError, match="sessions lacks the v1 column.*actor"):
        RuntimeMemoryStore(p)
    assert p.read_bytes() == before                    # not even switched to WAL
    con = apsw.Connection(str(p))
    assert db.user_version(con) == 0
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["sessions", "sqlite_autoindex_sessions_1"]


def test_other_applications_databases_are_refused_untouched(tmp_path):
    p = tmp_path / "mirror.sqlite"
    con = apsw.Connection(str(p))
    con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY); PRAGMA user_version = 1")
    con.close()
    before = p.read_bytes()
    for readonly in (True, False):
        with pytest.raises(SchemaError, match="not a runtime memory database .*items at schema version 1"):
            RuntimeMemoryStore(p, readonly=readonly)
    assert p.read_bytes() == before
    other = tmp_path / "other.sqlite"
    con = apsw.Connection(str(other))
    con.execute("CREATE TABLE notes (x)")
    con.close()
    with pytest.raises(SchemaError, match="not a runtime memory database"):
        RuntimeMemoryStore(other)


def test_newer_schema_and_non_database_files_are_refused(tmp_path):
    p = tmp_path / "new.sqlite"
    RuntimeMemoryStore(p).close()
    con = apsw.Connection(str(p))
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(SchemaError, match="newer than this chronoledger knows"):
        RuntimeMemoryStore(p)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(CorruptDataError, match="not an SQLite database"):       # bytes that are not a database
        RuntimeMemoryStore(junk)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RuntimeMemoryStore(tmp_path / "missing" / "x.sqlite")


# --- sessions and turns ------------------------------------------------------

def test_sessions_and_turns(store):
    s = store.start_session("tom", "cli", {"a": {"b": 1}}, started_at=at(0))
    assert s["status"] == "active" and s["metadata_json"] == {"a": {"b": 1}} and s["started_at"].endswith("Z")
    t = store.append_turn(s["id"], "user", "hello", token_count=2, metadata={"lang": "en"}, created_at=at(1))
    assert t["turn_index"] == 0 and t["metadata_json"] == {"lang": "en"} and t["token_count"] == 2
    batch = store.append_turns(s["id"], [{"role": "assistant", "content": "hi"},
                                         {"role": "tool", "content": "", "created_at": at(2)}])
    assert batch["first_turn_index"] == 1 and batch["count"] == 2 and len(set(batch["ids"])) == 2
    ended = store.end_session(s["id"], metadata={"a": {"c": 2}, "z": None}, ended_at=at(5))
    assert ended["status"] == "ended" and ended["metadata_json"] == {"a": {"b": 1, "c": 2}, "z": None}
    replay = store.session_replay(s["id"])
    assert [x["turn_index"] for x in replay["turns"]] == [0, 1, 2]
    assert [x["role"] for x in replay["turns"]] == ["user", "assistant", "tool"]
    with pytest.raises(ValidationError, match="turns are appended to open sessions only"):
        store.append_turn(s["id"], "user", "late")
    with pytest.raises(ValidationError, match="already ended"):
        store.end_session(s["id"])


@pytest.mark.parametrize("call, match", [
    (lambda s, sid: s.append_turn(sid, "narrator", "x"), r"conversation_turns.role: 'narrator' is not allowed; "
                                                          r"use one of: system, user, assistant, tool, agent"),
    (lambda s, sid: s.append_turn(sid, "user", 5), r"content: expected a string"),
    (lambda s, sid: s.append_turn(sid, "user", "x", token_count=-1), r"token_count: must be >= 0"),
    (lambda s, sid: s.append_turn(sid, "user", "x", metadata=[1]), r"metadata: must be a JSON object"),
    (lambda s, sid: s.append_turn(sid, "user", "x", metadata="{bad"), r"metadata: not valid JSON"),
    (lambda s, sid: s.append_turn(sid, "user", "x", metadata={"f": float("nan")}), r"cannot be stored as JSON"),
    (lambda s, sid: s.append_turn(sid, "user", "x", created_at="2026-01-01T00:00:00"), r"has no time zone"),
    (lambda s, sid: s.append_turn(sid, "user", "x", created_at="yesterday"), r"is not an ISO-8601 time"),
    (lambda s, sid: s.append_turn(None, "user", "x"), r"session_id: expected an id"),
    (lambda s, sid: s.start_session("tom", id="not-a-uuid"), r"id: 'not-a-uuid' is not a UUID"),
    (lambda s, sid: s.append_turn("6f1c5f4e-0000-4000-8000-000000000000", "user", "x"), r"no session with id"),
    (lambda s, sid: s.append_turns(sid, [{"role": "user", "content": "ok"}, {"role": "user", "text": "x"}]),
     r"turns\[1\]: unknown field\(s\) text"),
    (lambda s, sid: s.start_session("", "cli"), r"sessions.actor: must not be empty"),
    (lambda s, sid: s.start_session("tom", "telegram"), r"sessions.channel: 'telegram' is not allowed"),
    (lambda s, sid: s.end_session(sid, "active"), r"sessions.status: 'active' is not allowed; use one of: ended, aborted"),
    (lambda s, sid: s.end_session(sid, "ended", ended_at=at(-10)), r"before the session started"),
    # each of these raised a raw UnicodeEncodeError, OverflowError or TypeError
    (lambda s, sid: s.append_turn(sid, "user", "\ud800"), r"turns\[0\]\.content: not valid text"),
    (lambda s, sid: s.append_turns(sid, [{"role": "user", "content": "ok"}, {"role": "user", "content": "é\udfff"}]),
     r"turns\[1\]\.content: not valid text \(.+ at character 1\)"),   # the codec's reason between
    (lambda s, sid: s.start_session("tom", metadata={"a": "\ud800"}),
     r"sessions\.metadata_json: cannot be stored as JSON: a string in it is not valid text"),
    (lambda s, sid: s.append_turn(sid, "user", "x", metadata={"\ud800": 1}), r"turns\[0\]\.metadata: cannot be stored"),
    (lambda s, sid: s.append_task_event("info", "low", "m", {"x": "\ud800"}), r"events\[0\]\.payload: cannot be stored"),
    (lambda s, sid: s.append_task_event("info", "low", "m", '{"x": "\\ud800"}'), r"events\[0\]\.payload: cannot be"),
    (lambda s, sid: s.end_session(sid, metadata={"x": "\ud800"}), r"sessions\.metadata_json: cannot be stored"),
    (lambda s, sid: s.start_session("tom", metadata=_deep(100_000)), r"metadata_json: cannot be stored as JSON: it "),
    (lambda s, sid: s.append_turn(sid, "user", "x", token_count=2**70),
     r"turns\[0\]\.token_count: 1180591620717411303424 is outside the 64-bit integer range"),
    (lambda s, sid: s.append_turn(sid, "user", "x", token_count=2**63), r"token_count: .* outside the 64-bit"),
    (lambda s, sid: s.append_turns(sid, [{"role": "user", "content": "x", "token_count": _NpInt(2**64)}]),
     r"turns\[0\]\.token_count: .* outside the 64-bit"),
    (lambda s, sid: s.list_sessions(limit=2**20000), r"limit: a 20001-bit integer is outside the 64-bit"),
    (lambda s, sid: s.append_turns(sid, 5), r"turns: expected an iterable of turn dicts, got int"),
    (lambda s, sid: s.append_turns(sid, None), r"turns: expected an iterable of turn dicts, got NoneType"),
    (lambda s, sid: s.append_turns(sid, {"role": "user", "content": "x"}), r"turns: .* got a single dict"),
    (lambda s, sid: s.append_task_events(5), r"events: expected an iterable of event dicts, got int"),
    (lambda s, sid: s.append_turn("\ud800", "user", "x"), r"session_id: not valid text"),
    (lambda s, sid: s.session_replay("\ud800"), r"session_id: not valid text"),
])
def test_bad_input_names_the_field_and_stores_nothing(store, call, match):
    sid = store.start_session("tom", started_at=at(0))["id"]
    store.append_turn(sid, "user", "kept")
    counts = {t: store._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchall()[0][0] for t in TABLES}
    with pytest.raises(ValidationError, match=match):
        call(store, sid)
    assert {t: store._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchall()[0][0] for t in TABLES} == counts


def test_times_are_normalised_to_utc_text(store):
    s = store.start_session("tom", started_at="2026-03-04T05:06:07+02:00")
    assert s["started_at"] == "2026-03-04T03:06:07.000000Z"
    s2 = store.start_session("tom", started_at=datetime(2026, 3, 4, 3, 6, 7, 5, tzinfo=timezone.utc))
    assert s2["started_at"] == "2026-03-04T03:06:07.000005Z"


# --- workflows and events ----------------------------------------------------

def test_workflow_steps_events_and_merged_context(store):
    run = store.start_workflow_run("sync", "cron", "oxide", context={"a": {"x": 1}, "keep": True}, started_at=at(0))
    s0 = store.start_step(run["id"], "scan", started_at=at(1))
    s1 = store.start_step(run["id"], "copy", started_at=at(2), details={"n": 1})
    assert (s0["step_index"], s1["step_index"]) == (0, 1)
    store.append_task_event("info", "low", "run begins", workflow_run_id=run["id"], created_at=at(0.5))
    e = store.append_task_event("warn", "high", "slow", {"ms": 900}, step_id=s1["id"], created_at=at(3))
    assert e["workflow_run_id"] == run["id"]               # filled in from the step
    store.append_task_events([{"event_type": "info", "event_level": "low", "message": f"m{i}",
                               "workflow_run_id": run["id"], "step_id": s0["id"], "created_at": at(1 + i / 10)}
                              for i in range(3)])
    store.end_step(s1["id"], "failed", {"n": 2, "err": "x"}, finished_at=at(4))
    store.end_step(s0["id"], "succeeded", finished_at=at(4))
    done = store.end_workflow_run(run["id"], "failed", {"a": {"y": 2}}, finished_at=at(5))
    assert done["context_json"] == {"a": {"x": 1, "y": 2}, "keep": True}
    replay = store.workflow_replay(run["id"])
    assert [s["step_name"] for s in replay["steps"]] == ["scan", "copy"]
    assert [e["message"] for e in replay["steps"][0]["events"]] == ["m0", "m1", "m2"]
    assert [e["message"] for e in replay["steps"][1]["events"]] == ["slow"]
    assert replay["steps"][1]["details_json"] == {"n": 2, "err": "x"}
    assert [e["message"] for e in replay["events"]] == ["run begins"]
    with pytest.raises(ValidationError, match="workflow run .* already ended"):
        store.end_workflow_run(run["id"], "succeeded")
    with pytest.raises(ValidationError, match="no new steps"):
        store.start_step(run["id"], "late")
    other = store.start_workflow_run("x", "api", "me")
    with pytest.raises(ValidationError, match=f"belongs to run {run['id']}"):
        store.append_task_event("info", "low", "m", workflow_run_id=other["id"], step_id=s0["id"])
    with pytest.raises(ValidationError, match=r"task_events.event_level: 'urgent' is not allowed; use one of: "
                                              r"low, medium, high, critical"):
        store.append_task_event("info", "urgent", "m")
    with pytest.raises(ValidationError, match=r"workflow_runs.status: 'done' is not allowed"):
        store.end_workflow_run(other["id"], "done")


def test_run_listing_filters_and_cursor_paging(store):
    made = []
    for i in range(23):
        r = store.start_workflow_run(f"w{i}", ("cron", "api")[i % 2], "me", started_at=at(i // 2))
        if i % 3 == 0:
            store.end_workflow_run(r["id"], "succeeded", finished_at=at(30))
        made.append(store._get("workflow_runs", r["id"], "id"))
    expect = sorted(made, key=lambda r: (r["started_at"], r["id"]), reverse=True)
    seen, cursor = [], None
    while True:
        page = store.list_workflow_runs(limit=7, cursor=cursor)
        seen += page["runs"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [r["id"] for r in seen] == [r["id"] for r in expect]
    got = store.list_workflow_runs(status="succeeded", trigger_source="cron", since=at(2), until=at(9), limit=100)
    want = [r["id"] for r in expect if r["status"] == "succeeded" and r["trigger_source"] == "cron"
            and at(2) <= r["started_at"].replace("Z", "+00:00") < at(9)]
    assert [r["id"] for r in got["runs"]] == want and want
    with pytest.raises(ValidationError, match="cursor"):
        store.list_workflow_runs(cursor="%%%")


# --- skills, proposals, audit -------------------------------------------------

def test_full_lineage_and_the_state_machine(store):
    skill, prop = lineage_fixture(store)
    assert prop["status"] == "drafted"
    store.record_validation(prop["id"], "ci", build_pass=True, lint_pass=True, test_pass=False, policy_pass=True,
                            details={"failed": ["t1"]}, validated_at=at(2))
    store.record_validation(prop["id"], "ci", build_pass=True, lint_pass=True, test_pass=True, policy_pass=True,
                            validated_at=at(3))
    store.set_proposal_status(prop["id"], "validated")
    store.record_approval(prop["id"], "alice", "human", "approved", notes="ok", decided_at=at(4))
    store.set_proposal_status(prop["id"], "approved")
    store.record_deploy_outcome(prop["id"], "prod", "rolled_back", metrics={"err": 3}, deployed_at=at(5))
    store.record_deploy_outcome(prop["id"], "prod", "succeeded", deployment_id="d2", deployed_at=at(6))
    store.set_proposal_status(prop["id"], "promoted")
    lin = store.proposal_lineage(prop["id"])
    assert lin["skill"]["id"] == skill["id"] and lin["skill"]["skill_key"] == "k"
    assert lin["proposal"]["status"] == "promoted" and lin["proposal"]["proposal_json"] == {"x": 1}
    assert [v["test_pass"] for v in lin["validations"]] == [0, 1]
    assert lin["validations"][0]["details_json"] == {"failed": ["t1"]}
    assert [a["decision"] for a in lin["approvals"]] == ["approved"]
    assert [d["status"] for d in lin["deploy_outcomes"]] == ["rolled_back", "succeeded"]
    assert store.latest_proposal_id() == prop["id"]
    assert [(d["from_status"], d["to_status"]) for d in lin["decisions"]] == [
        (None, "drafted"), ("drafted", "validated"), ("validated", "approved"), ("approved", "promoted")]
    assert lin["status_lacks"] == []


def _back(store, pid, target):
    """Record what a medium-risk proposal needs to move to ``target``."""
    if target == "validated":
        store.record_validation(pid, "ci", build_pass=True, lint_pass=True, test_pass=True, policy_pass=True)
    elif target == "approved":
        store.record_approval(pid, "alice", "human", "approved")
    elif target == "promoted":
        store.record_deploy_outcome(pid, "prod", "succeeded")
    elif target == "rejected":
        store.record_approval(pid, "bob", "security", "rejected")


@pytest.mark.parametrize("start, target", list(itertools.product(PROPOSAL_TRANSITIONS, ENUMS[
    ("skill_to_logic_proposals", "status")])))
def test_every_transition_is_allowed_or_refused_as_the_machine_says(store, start, target):
    _, prop = lineage_fixture(store)
    path = {"drafted": [], "validated": ["validated"], "approved": ["validated", "approved"],
            "promoted": ["validated", "approved", "promoted"], "rejected": ["rejected"]}[start]
    for st in path:
        _back(store, prop["id"], st)
        store.set_proposal_status(prop["id"], st)
    if (start, target) == ROLLBACK:             # recording the rollback is what moves it
        store.record_deploy_outcome(prop["id"], "prod", "rolled_back")
        assert store._get("skill_to_logic_proposals", prop["id"], "id")["status"] == target
    elif target in MOVES[start]:
        _back(store, prop["id"], target)
        assert store.set_proposal_status(prop["id"], target)["status"] == target
    else:
        with pytest.raises(ValidationError, match=f"{start} -> {target} is not allowed"):
            store.set_proposal_status(prop["id"], target)
        if target != start:       # the database refuses it too, whoever writes
            with pytest.raises(apsw.ConstraintError, match="illegal transition"):
                store._conn.execute("UPDATE skill_to_logic_proposals SET status = ? WHERE id = ?",
                                    (target, prop["id"]))
        assert store._get("skill_to_logic_proposals", prop["id"], "id")["status"] == (path[-1] if path else "drafted")


def test_audit_tables_are_append_only_and_protect_what_they_refer_to(store):
    skill, prop = lineage_fixture(store)
    store.record_validation(prop["id"], "human", build_pass=1, lint_pass=0, test_pass=1, policy_pass=1)
    store.record_approval(prop["id"], "bob", "ops", "rejected")
    store.record_deploy_outcome(prop["id"], "staging", "failed")
    run = store.start_workflow_run("w", "manual", "me")
    step = store.start_step(run["id"], "s")
    store.append_task_event("policy", "critical", "blocked", workflow_run_id=run["id"], step_id=step["id"])
    conn = store._conn
    for table in APPEND_ONLY:
        with pytest.raises(apsw.ConstraintError, match=f"{table} is an append-only audit table: rows cannot be updated"):
            conn.execute(f"UPDATE {table} SET id = id")
        with pytest.raises(apsw.ConstraintError, match=f"{table} is an append-only audit table: rows cannot be deleted"):
            conn.execute(f"DELETE FROM {table}")
    with pytest.raises(apsw.ConstraintError, match="this proposal has validation, approval or deploy rows"):
        conn.execute("DELETE FROM skill_to_logic_proposals WHERE id = ?", (prop["id"],))
    with pytest.raises(apsw.ConstraintError, match="the skill cannot be deleted"):
        conn.execute("DELETE FROM skills_learned WHERE id = ?", (skill["id"],))
    with pytest.raises(apsw.ConstraintError, match="this run has task_events"):
        conn.execute("DELETE FROM workflow_runs WHERE id = ?", (run["id"],))
    with pytest.raises(apsw.ConstraintError, match="this step has task_events"):
        conn.execute("DELETE FROM workflow_steps WHERE id = ?", (step["id"],))
    # without audit rows, deleting cascades as the specification's foreign keys say
    lone_skill, lone = lineage_fixture(store, "lone")
    conn.execute("DELETE FROM skills_learned WHERE id = ?", (lone_skill["id"],))
    assert conn.execute("SELECT COUNT(*) FROM skill_to_logic_proposals WHERE id = ?", (lone["id"],)).fetchall() == [(0,)]
    assert conn.execute("SELECT COUNT(*) FROM validation_results").fetchall() == [(1,)]


def test_proposal_and_skill_input_checks(store):
    skill, prop = lineage_fixture(store)
    for call, match in [
        (lambda: store.record_skill("k", "d", "web", 0.5), r"skills_learned.source_type: 'web' is not allowed; "
                                                           r"use one of: conversation, doc, external"),
        (lambda: store.record_skill("k", "d", "doc", 1.5), r"confidence: expected a number from 0 to 1"),
        (lambda: store.record_skill("k", "again", "doc", 0.5, learned_at=at(0)),
         r"record_skill: .*\(a row with these values exists already\)$"),
        (lambda: store.create_proposal(skill["id"], "robot", "code_patch", {}, "low"), r"proposed_by: 'robot'"),
        (lambda: store.create_proposal(skill["id"], "oxide", "code_patch", None, "low"), r"a JSON object is required"),
        (lambda: store.create_proposal(skill["id"], "oxide", "code_patch", {}, "extreme"), r"risk_level"),
        (lambda: store.create_proposal("6f1c5f4e-0000-4000-8000-000000000000", "oxide", "code_patch", {}, "low"),
         r"skill_id: no skill with id"),
        (lambda: store.record_validation(prop["id"], "bot", build_pass=1, lint_pass=1, test_pass=1, policy_pass=1),
         r"validator: 'bot' is not allowed; use one of: ci, oxide, human"),
        (lambda: store.record_validation(prop["id"], "ci", build_pass=2, lint_pass=1, test_pass=1, policy_pass=1),
         r"build_pass: expected True/False"),
        (lambda: store.record_approval(prop["id"], "a", "human", "maybe"), r"decision: 'maybe' is not allowed"),
        (lambda: store.record_deploy_outcome(prop["id"], "prod", "ok"), r"deploy_outcomes.status: 'ok'"),
        (lambda: store.record_approval("6f1c5f4e-0000-4000-8000-000000000000", "a", "human", "approved"),
         r"proposal_id: no proposal with id"),
    ]:
        with pytest.raises(ValidationError, match=match):
            call()


# --- profiles ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["behavior", "personality"])
def test_profiles_version_and_close_windows(store, kind):
    publish = getattr(store, f"publish_{kind}_profile")
    v1 = publish("tom", {"v": 1}, "ops", effective_from=at(0))
    v2 = publish("tom", {"v": 2}, "ops", rationale="tuned", effective_from=at(10))
    publish("ana", {"v": 9}, "ops", effective_from=at(5))
    assert (v1["version"], v2["version"]) == (1, 2)
    rows = store._rows(f"SELECT version, effective_from, effective_to FROM {kind}_profiles "
                       "WHERE profile_name = 'tom' ORDER BY version")
    assert rows[0]["effective_to"] == v2["effective_from"] and rows[1]["effective_to"] is None
    body = f"{kind}_json"
    assert store.profile_as_of("tom", at(-1), kind) is None
    assert store.profile_as_of("tom", at(5), kind)[body] == {"v": 1}
    assert store.profile_as_of("tom", at(10), kind)[body] == {"v": 2}
    latest = getattr(store, f"latest_{kind}_profile")
    assert latest("tom")[body] == {"v": 2} and latest("ana")[body] == {"v": 9} and latest("nobody") is None
    with pytest.raises(ValidationError, match="before version 2's window starts"):
        publish("tom", {"v": 3}, "ops", effective_from=at(9))
    future = publish("tom", {"v": 3}, "ops", effective_from=(datetime.now(timezone.utc) + timedelta(days=1)))
    assert latest("tom")[body] == {"v": 2}             # not in effect yet
    assert store.profile_as_of("tom", future["effective_from"], kind)[body] == {"v": 3}


def test_queries_are_the_documented_sql(store):
    assert set(QUERIES) >= {"latest_behavior_profile", "latest_personality_profile", "session_replay",
                            "workflow_replay_steps", "workflow_replay_events", "proposal_lineage_proposal"}
    for sql in QUERIES.values():                 # every one runs as written, with named parameters
        store._conn.execute("EXPLAIN " + sql, {"name": "tom", "at": at(0), "session_id": "x", "run_id": "x",
                                               "proposal_id": "x"}).fetchall()
    docs = (Path(__file__).parents[1] / "docs" / "runtime.md").read_text(encoding="utf-8")
    for name, sql in QUERIES.items():
        assert sql in docs, f"docs/runtime.md does not show the SQL of {name} as the code runs it"


# --- the chronicle mirror, export --------------------------------------------

def test_task_events_are_mirrored_to_a_chronicle(tmp_path):
    from chronoledger.chronicle import Chronicle

    log = tmp_path / "events.cmeta"
    with RuntimeMemoryStore(tmp_path / "rt.sqlite", events_log=log) as s:
        run = s.start_workflow_run("w", "agent", "oxide")
        ids = s.append_task_events([{"event_type": "info", "event_level": "low", "message": f"e{i}",
                                     "workflow_run_id": run["id"], "payload": {"i": i}} for i in range(5)])["ids"]
    with Chronicle.open(log) as ch:
        events = list(ch)
    assert [e.payload["id"] for e in events] == ids
    assert [e.payload["payload"]["i"] for e in events] == list(range(5)) and events[0].event_type == "info"


def test_export_jsonl_has_every_row(store, tmp_path):
    import io

    sess = store.start_session("tom")
    store.append_turns(sess["id"], [{"role": "user", "content": f"{i}"} for i in range(4)])
    lineage_fixture(store)
    buf = io.StringIO()
    n = store.export_jsonl(buf)
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    total = sum(store._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchall()[0][0] for t in TABLES)
    assert total == 7
    # and the governance audit: the policy's four risk levels, the proposal's one decision (created)
    assert n == len(lines) == total + 4 + 1
    assert {x["table"] for x in lines} == {"sessions", "conversation_turns", "skills_learned",
                                           "skill_to_logic_proposals", "_runtime_promotion_policy",
                                           "_runtime_proposal_decisions"}


# --- concurrency ----------------------------------------------------------------

def _append_worker(path: str, session_ids: list[str], worker: int, rounds: int, errors) -> None:
    try:
        with RuntimeMemoryStore(path) as s:
            for i in range(rounds):
                sid = session_ids[(worker + i) % len(session_ids)]
                if i % 5 == 4:
                    s.append_turns(sid, [{"role": "agent", "content": f"w{worker}-{i}-{k}"} for k in range(3)])
                else:
                    s.append_turn(sid, "user", f"w{worker}-{i}")
                s.append_task_event("info", "low", f"w{worker}-{i}")
    except BaseException as exc:   # noqa: BLE001 - reported to the parent
        errors.put(f"worker {worker}: {type(exc).__name__}: {exc}")


def test_processes_appending_to_the_same_sessions_lose_nothing(tmp_path):
    path = str(tmp_path / "rt.sqlite")
    with RuntimeMemoryStore(path) as s:
        sessions = [s.start_session("tom")["id"] for _ in range(3)]
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_append_worker, args=(path, sessions, w, 60, errors)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    assert errors.empty(), errors.get()
    with RuntimeMemoryStore(path) as s:
        total = 0
        for sid in sessions:
            idx = [t["turn_index"] for t in s.session_replay(sid)["turns"]]
            assert idx == list(range(len(idx)))                # no gap, no duplicate
            total += len(idx)
        contents = [r[0] for r in s._conn.execute("SELECT content FROM conversation_turns")]
        events = s._conn.execute("SELECT COUNT(*) FROM task_events").fetchall()[0][0]
    per_worker = 48 + 12 * 3
    assert total == len(contents) == len(set(contents)) == 4 * per_worker
    assert events == 4 * 60


def test_threads_share_one_store(store):
    sid = store.start_session("tom")["id"]

    def work(k):
        for i in range(40):
            store.append_turn(sid, "user", f"{k}-{i}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    idx = [t["turn_index"] for t in store.session_replay(sid)["turns"]]
    assert idx == list(range(160))


def test_ids_are_uuid7_with_the_current_millisecond():
    import time
    import uuid

    from chronoledger.runtime import values

    before = time.time_ns() // 1_000_000
    ids = values.new_ids(500) + [values.new_id() for _ in range(5)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids) and values.new_ids(0) == []
    for x in ids:
        u = uuid.UUID(x)
        assert str(u) == x and u.version == 7 and u.variant == uuid.RFC_4122
        assert before <= u.int >> 80 <= after


# --- what a review found: races, REPLACE, adopted values, ids, lifecycle --------

def _open_and_append(path: str, k: int, errors) -> None:
    try:
        with RuntimeMemoryStore(path) as s:
            sid = s.start_session(f"p{k}")["id"]
            s.append_turns(sid, [{"role": "user", "content": str(i)} for i in range(20)])
    except BaseException as exc:   # noqa: BLE001 - reported to the parent
        errors.put(f"{k}: {type(exc).__name__}: {exc}")


def test_processes_creating_one_new_database_at_once(tmp_path):
    path = str(tmp_path / "new.sqlite")
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_open_and_append, args=(path, k, errors)) for k in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert errors.empty(), errors.get()
    with RuntimeMemoryStore(path) as s:
        assert s.schema_version == LATEST
        assert s._conn.execute("SELECT COUNT(*) FROM conversation_turns").fetchall() == [(160,)]


def test_threads_mirroring_events_keep_sqlite_and_the_chronicle_equal(tmp_path):
    from chronoledger.chronicle import Chronicle

    log = tmp_path / "ev.cmeta"
    with RuntimeMemoryStore(tmp_path / "rt.sqlite", events_log=log) as s:
        sid = s.start_session("tom")["id"]

        def work(k):
            for i in range(50):
                s.append_task_event("info", "low", f"{k}-{i}")
                s.append_turn(sid, "user", f"{k}-{i}")

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sql_ids = [r[0] for r in s._conn.execute("SELECT id FROM task_events ORDER BY rowid")]
        stamps = [t["created_at"] for t in s.session_replay(sid)["turns"]]
    assert stamps == sorted(stamps)                      # default times follow commit order
    with Chronicle.open(log) as ch:
        assert [e.payload["id"] for e in ch] == sql_ids


def test_a_bad_events_log_fails_at_open_before_anything_is_stored(tmp_path):
    with pytest.raises(FileNotFoundError):
        RuntimeMemoryStore(tmp_path / "rt.sqlite", events_log=tmp_path / "missing" / "ev.cmeta")
    from chronoledger.chronicle import Chronicle

    cyc = tmp_path / "cycles.cmeta"
    with Chronicle.open(cyc, "w") as ch:
        ch.append(timestamp=1, phase="train", loss_value=0.0, coherence=0.0)
    from chronoledger.errors import ConfigError

    with pytest.raises(ConfigError, match="is a cycle chronicle, not event"):
        RuntimeMemoryStore(tmp_path / "rt.sqlite", events_log=cyc)
    with RuntimeMemoryStore(tmp_path / "rt.sqlite") as s:
        assert s._conn.execute("SELECT COUNT(*) FROM task_events").fetchall() == [(0,)]


def test_replace_cannot_rewrite_audit_rows_or_jump_the_state_machine(tmp_path):
    p = tmp_path / "rt.sqlite"
    with RuntimeMemoryStore(p) as s:
        _, prop = lineage_fixture(s)
        val = s.record_validation(prop["id"], "ci", build_pass=0, lint_pass=0, test_pass=0, policy_pass=0)
        appr = s.record_approval(prop["id"], "a", "human", "rejected")
        ev = s.append_task_event("info", "low", "original")
    con = sqlite3.connect(p)
    for sql, args in [
        ("INSERT OR REPLACE INTO validation_results (id, proposal_id, validator, build_pass, lint_pass, test_pass, "
         "policy_pass, validated_at) VALUES (?, ?, 'ci', 1, 1, 1, 1, ?)", (val["id"], prop["id"], at(9))),
        ("REPLACE INTO approvals (id, proposal_id, approver, approval_type, decision, decided_at) "
         "VALUES (?, ?, 'a', 'human', 'approved', ?)", (appr["id"], prop["id"], at(9))),
        ("INSERT OR REPLACE INTO task_events (id, event_type, event_level, message, created_at) "
         "VALUES (?, 'info', 'low', 'edited', 'x')", (ev["id"],)),
        ("INSERT OR REPLACE INTO skill_to_logic_proposals (id, skill_id, proposed_by, proposal_type, proposal_json, "
         "risk_level, status, created_at, updated_at) VALUES (?, ?, 'oxide', 'code_patch', '{}', 'low', "
         "'promoted', 'x', 'x')", (prop["id"], prop["skill_id"])),
    ]:
        with pytest.raises(sqlite3.IntegrityError, match="INSERT OR REPLACE would rewrite it"):
            con.execute(sql, args)
    con.close()
    with RuntimeMemoryStore(p) as s:
        lin = s.proposal_lineage(prop["id"])
        assert lin["proposal"]["status"] == "drafted" and lin["validations"][0]["build_pass"] == 0
        assert lin["approvals"][0]["decision"] == "rejected"


def test_values_other_tools_left_are_handled_not_trusted(tmp_path):
    p = tmp_path / "legacy.sqlite"
    con = _plain_v1(p)
    con.execute("INSERT INTO sessions VALUES ('s2', 'tom', NULL, '2025-01-01T00:00:00Z', NULL, 'open', 'not json')")
    con.execute("INSERT INTO sessions VALUES ('s3', 'tom', NULL, '2025-01-01T00:00:00Z', NULL, 'open', '[1, 2]')")
    con.execute("INSERT INTO skill_to_logic_proposals VALUES ('p2', 'k1', 'oxide', 'code_patch', '{}', NULL, 'low', "
                "'pending', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z')")
    con.execute("INSERT INTO personality_profiles VALUES ('q1', 'tom', 1, '{}', NULL, NULL, "
                "'2025-06-01T12:00:00+02:00', NULL, '2025-06-01T10:00:00Z', 'ops')")
    con.close()
    with RuntimeMemoryStore(p) as s:
        assert s.session_replay("s2")["metadata_json"] == "not json"
        with pytest.raises(ValidationError, match="is not a JSON object, so nothing can be merged"):
            s.end_session("s3", metadata={"a": 1})
        with pytest.raises(ValidationError, match="status 'pending'.*does not know"):
            s.set_proposal_status("p2", "validated")
        # 12:00+02:00 is 10:00Z: in effect at 10:30Z, and a later version may follow it
        assert s.profile_as_of("tom", "2025-06-01T10:30:00Z", "personality")["version"] == 1
        assert s.profile_as_of("tom", "2025-06-01T09:30:00Z", "personality") is None
        v2 = s.publish_personality_profile("tom", {"b": 2}, "ops", effective_from="2025-06-01T11:00:00Z")
        assert v2["version"] == 2
        assert s.profile_as_of("tom", "2025-06-01T10:30:00Z", "personality")["version"] == 1
        assert sum(1 for _ in s.iter_rows()) > 5


def test_ids_resolve_in_any_uuid_spelling_and_odd_times_are_refused_clearly(store):
    import uuid

    u = uuid.uuid4()
    s = store.start_session("tom", id=u.hex)
    assert s["id"] == str(u)
    assert store.append_turn(u.hex.upper(), "user", "x")["session_id"] == str(u)
    assert store.start_session("tom", started_at="0999-01-02T03:04:05Z")["started_at"] == "0999-01-02T03:04:05.000000Z"
    with pytest.raises(ValidationError, match="outside the years"):
        store.start_session("tom", started_at="0001-01-01T00:00:00+01:00")
    with pytest.raises(ValidationError, match="conversation_turns.role: \\['user'\\] is not allowed"):
        store.append_turn(str(u), ["user"], "x")
    import numpy as np

    assert store.append_turn(str(u), "user", "x", token_count=np.int64(3))["token_count"] == 3
    with pytest.raises(ValidationError, match="events\\[0\\].workflow_run_id: no workflow run with id"):
        store.append_task_event("info", "low", "m", workflow_run_id=str(uuid.uuid4()))


def test_events_naming_only_a_step_are_replayed_with_it(store):
    run = store.start_workflow_run("w", "api", "me")
    step = store.start_step(run["id"], "s")
    store._conn.execute("INSERT INTO task_events (id, step_id, event_type, event_level, message, created_at) "
                        "VALUES ('e1', ?, 'info', 'low', 'by another tool', '2026-01-01T00:00:00Z')", (step["id"],))
    replay = store.workflow_replay(run["id"])
    assert [e["message"] for e in replay["steps"][0]["events"]] == ["by another tool"]


def test_sessions_page_and_iteration_does_not_hold_the_store(store):
    made = [store.start_session("tom", started_at=at(i % 5)) for i in range(12)]
    seen, cursor = [], None
    while True:
        page = store.list_sessions(limit=5, cursor=cursor)
        seen += [x["id"] for x in page["sessions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(m["id"] for m in made) and len(seen) == len(set(seen))
    it = store.iter_rows(["sessions"], page=4)
    next(it)
    store.append_turn(made[0]["id"], "user", "written while iterating")      # no "transaction within a transaction"
    assert sum(1 for _ in it) == 11


def test_read_only_stores_refuse_writes_and_dropped_stores_release_everything(tmp_path):
    import gc

    p = tmp_path / "rt.sqlite"
    RuntimeMemoryStore(p).close()
    with RuntimeMemoryStore(p, readonly=True) as ro:
        with pytest.raises(Exception, match="opened read-only"):
            ro.start_session("tom")
    before = {t.name for t in threading.enumerate()}
    s = RuntimeMemoryStore(p)
    assert any(t.name.startswith("sqlite-checkpoint") for t in threading.enumerate())
    del s
    gc.collect()
    assert {t.name for t in threading.enumerate()} <= before


def test_events_committed_but_never_mirrored_reach_the_log_at_the_next_open(tmp_path, monkeypatch):
    from chronoledger.chronicle import Chronicle

    log, db = tmp_path / "ev.cmeta", tmp_path / "rt.sqlite"
    ev = {"event_type": "info", "event_level": "low", "message": "m"}
    with RuntimeMemoryStore(db, events_log=log) as s:
        run = s.start_workflow_run("w", "cron", "me")
        first = s.append_task_events([dict(ev, workflow_run_id=run["id"])] * 3)["ids"]
        monkeypatch.setattr(RuntimeMemoryStore, "_mirror", lambda self, rows: None)   # a crash after the commit
        lost = s.append_task_events([dict(ev, workflow_run_id=run["id"])] * 2)["ids"]
        monkeypatch.undo()
    with RuntimeMemoryStore(db, events_log=log):
        pass
    with Chronicle.open(log) as ch:
        ids = [json.loads(p)["id"] for p in ch.to_numpy(["payload"])["payload"]]
    assert ids == first + lost
    other = tmp_path / "other.sqlite"          # another database's log is not written into
    with RuntimeMemoryStore(other, events_log=log):
        pass
    with Chronicle.open(log) as ch:
        assert len(ch) == 5


@pytest.mark.parametrize("call, why", [
    (lambda s, r: s.append_task_events([{"event_type": "info", "event_level": "low", "message": "m",
                                         "workflow_run_id": 0}]), "workflow_run_id: expected an id"),
    (lambda s, r: s.append_task_events([1]), "an event is a mapping"),
    (lambda s, r: s.profile_as_of(5), "name: expected a string"),
    (lambda s, r: s.start_session("a\ud800", "cli"), "not valid text"),
])
def test_bad_values_that_used_to_slip_through(tmp_path, call, why):
    with RuntimeMemoryStore(tmp_path / "rt.sqlite") as s:
        with pytest.raises(ValidationError, match=why):
            call(s, None)


def test_damaged_newer_and_closed_databases_say_so(tmp_path):
    from chronoledger.errors import ChronoledgerError, CorruptDataError

    with RuntimeMemoryStore(tmp_path / "rt.sqlite") as s:
        s.start_session("tom", "cli")
    conn = apsw.Connection(str(tmp_path / "rt.sqlite"))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")           # every page in the file itself
    conn.close()
    data = (tmp_path / "rt.sqlite").read_bytes()
    (tmp_path / "cut.sqlite").write_bytes(data[:len(data) // 2])
    with pytest.raises((CorruptDataError, SchemaError), match="cut.sqlite"):
        RuntimeMemoryStore(tmp_path / "cut.sqlite")
    (tmp_path / "new.sqlite").write_bytes(data)
    conn = apsw.Connection(str(tmp_path / "new.sqlite"))
    conn.execute("PRAGMA journal_mode = DELETE").fetchall()
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = (tmp_path / "new.sqlite").read_bytes()
    with pytest.raises(SchemaError, match="newer than this chronoledger"):
        RuntimeMemoryStore(tmp_path / "new.sqlite")
    assert (tmp_path / "new.sqlite").read_bytes() == before and not (tmp_path / "new.sqlite-wal").exists()
    s = RuntimeMemoryStore(tmp_path / "rt.sqlite")
    s.close()
    with pytest.raises(ChronoledgerError, match="the store is closed"):
        s.start_session("tom", "cli")


def test_non_ascii_text_and_the_64_bit_extremes_are_stored(store):
    sid = store.start_session("tóm", metadata={"ключ": "значение ✓"})["id"]
    t = store.append_turn(sid, "user", "héllo ✓ 𝄞", token_count=2**63 - 1, metadata={"é": "ü"})
    assert (t["content"], t["token_count"], t["metadata_json"]) == ("héllo ✓ 𝄞", 2**63 - 1, {"é": "ü"})
    run = store.start_workflow_run("w", "manual", "tom")["id"]
    assert store.start_step(run, "s", step_index=2**63 - 1)["step_index"] == 2**63 - 1
    ev = store.append_task_event("info", "low", "m", {"x": "ü"}, workflow_run_id=run)
    assert ev["payload_json"] == {"x": "ü"}
    assert store.append_turns(sid, iter([{"role": "user", "content": "from a generator"}]))["count"] == 1
