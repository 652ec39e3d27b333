"""`chronoledger runtime ...` from the command line, with its exit codes."""

import json

import pytest

from chronoledger import sqlite as db
from chronoledger.cli import cli
from chronoledger.runtime import RuntimeMemoryStore

from _cli import invoke


def run(*args):
    return invoke(cli, [str(a) for a in args])


@pytest.fixture
def seeded(tmp_path):
    p = tmp_path / "rt.sqlite"
    with RuntimeMemoryStore(p) as s:
        sess = s.start_session("tom", "sdk", started_at="2026-01-01T00:00:00Z")
        s.append_turns(sess["id"], [{"role": "user", "content": "hello there"},
                                    {"role": "assistant", "content": "hi"}])
        run_ = s.start_workflow_run("sync", "cron", "oxide", started_at="2026-01-01T00:01:00Z")
        step = s.start_step(run_["id"], "scan")
        s.append_task_event("error", "high", "disk full", workflow_run_id=run_["id"], step_id=step["id"])
        s.end_step(step["id"], "failed")
        s.end_workflow_run(run_["id"], "failed")
        skill = s.record_skill("k", "desc", "doc", 0.7)
        prop = s.create_proposal(skill["id"], "oxide", "policy_change", {"p": 1}, "high")
        s.record_validation(prop["id"], "oxide", build_pass=True, lint_pass=False, test_pass=True, policy_pass=True)
        s.publish_behavior_profile("tom", {"mode": "careful"}, "ops", effective_from="2026-01-01T00:00:00Z")
    return p, sess["id"], run_["id"], prop["id"]


def test_init_creates_and_reports(tmp_path):
    p = tmp_path / "new.sqlite"
    r = run("runtime", "init", p)
    assert r.exit_code == 0, r.output
    latest = len(db.migrations("chronoledger.runtime"))
    assert f"schema version {latest} (applied {', '.join(f'{m:04d}' for m in range(1, latest + 1))})" in r.output
    assert "up to date" in run("runtime", "init", p).output


def test_listing_replay_workflow_lineage_profile(seeded):
    p, sid, rid, pid = seeded
    r = run("runtime", "sessions", p)
    assert r.exit_code == 0 and sid in r.output and "sdk" in r.output
    assert json.loads(run("runtime", "sessions", p, "--json").output)["sessions"][0]["turn_count"] == 2
    r = run("runtime", "replay", p, sid)
    assert r.exit_code == 0 and "[0] user: hello there" in r.output and "[1] assistant: hi" in r.output
    r = run("runtime", "workflow", p, rid)
    assert "step 0 scan: failed" in r.output and "error/high: disk full" in r.output
    assert json.loads(run("runtime", "workflow", p, rid, "--json").output)["steps"][0]["events"][0]["message"] == \
        "disk full"
    for args in ((pid,), ("--latest",)):
        r = run("runtime", "lineage", p, *args)
        assert r.exit_code == 0, r.output
        assert "policy_change by oxide, risk high, status drafted" in r.output and "lint FAIL" in r.output
    lin = json.loads(run("runtime", "lineage", p, "--latest", "--json").output)
    assert lin["proposal"]["id"] == pid and len(lin["validations"]) == 1
    r = run("runtime", "profile", p, "tom")
    assert r.exit_code == 0 and "behavior profile tom v1" in r.output and '"mode": "careful"' in r.output
    assert run("runtime", "profile", p, "tom", "--as-of", "2025-12-31T00:00:00Z").exit_code == 5


def test_export_jsonl_to_a_file(seeded, tmp_path):
    p = seeded[0]
    out = tmp_path / "dump.jsonl"
    r = run("runtime", "export", p, "--format", "jsonl", "-o", out)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert {x["table"] for x in rows} >= {"sessions", "conversation_turns", "task_events", "behavior_profiles"}
    # 1 session, 2 turns, run, step, event, skill, proposal, validation, profile; the policy's 4 risk levels and
    # the proposal's decision (created)
    assert len(rows) == 10 + 4 + 1


def test_errors_and_exit_codes(seeded, tmp_path):
    p = seeded[0]
    assert run("runtime", "replay", p, "no-such-session").exit_code == 5
    assert run("runtime", "lineage", p).exit_code == 2                     # neither an id nor --latest
    assert run("runtime", "lineage", p, "x", "--latest").exit_code == 2
    assert run("runtime", "sessions", tmp_path / "missing.sqlite").exit_code == 2   # click: no such file
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"x" * 4096)
    r = run("runtime", "sessions", junk)
    assert r.exit_code == 3 and "not an SQLite database" in r.output
    empty = tmp_path / "empty.sqlite"
    run("runtime", "init", empty)
    r = run("runtime", "lineage", empty, "--latest")
    assert r.exit_code == 5 and "no proposals" in r.output


def test_bad_values_exit_2_and_adopted_rows_do_not_crash_the_cli(seeded, tmp_path):
    p = seeded[0]
    r = run("runtime", "profile", p, "tom", "--as-of", "yesterday")
    assert r.exit_code == 2 and "is not an ISO-8601 time" in r.output
    assert run("runtime", "sessions", p, "--cursor", "!!").exit_code == 2
    import apsw

    con = apsw.Connection(str(p))          # values another tool wrote, past the CHECK constraints
    con.execute("PRAGMA ignore_check_constraints = ON")
    con.execute("UPDATE sessions SET metadata_json = 'not json'")
    con.execute("UPDATE conversation_turns SET role = 'narrator', metadata_json = '[1, 2]' WHERE turn_index = 0")
    con.close()
    r = run("runtime", "replay", p, seeded[1], "--json")
    assert r.exit_code == 0 and json.loads(r.output)["metadata_json"] == "not json"
    assert [(t["role"], t["metadata_json"]) for t in json.loads(r.output)["turns"]] == [("narrator", [1, 2]),
                                                                                      ("assistant", {})]
    r = run("runtime", "replay", p, seeded[1])
    assert r.exit_code == 0 and "[0] narrator: hello there" in r.output
    assert run("runtime", "export", p).exit_code == 0


# --- the commands of issue 19: reading more, and what an operator does by hand ---------------------------

def test_an_operator_takes_a_proposal_through_from_the_shell(seeded):
    p, sid, run_id, prop = seeded            # a high-risk proposal with a failing oxide validation
    r = run("runtime", "set-status", p, prop, "validated")
    assert r.exit_code == 2 and "drafted -> validated needs a passing latest validation" in r.stderr
    with RuntimeMemoryStore(p) as s:
        s.record_validation(prop, "ci", build_pass=True, lint_pass=True, test_pass=True, policy_pass=True)
    r = run("runtime", "set-status", p, prop, "validated")
    assert r.exit_code == 0, r.output
    r = run("runtime", "approve", p, prop, "--approver", "alice", "--type", "security")
    assert r.exit_code == 0 and "to approve it still needs a human approval" in r.stdout
    r = run("runtime", "approve", p, prop, "--approver", "bob", "--type", "human", "--notes", "ok")
    assert r.exit_code == 0 and "the proposal may be approved now" in r.stdout
    assert run("runtime", "set-status", p, prop, "approved").exit_code == 0
    listed = json.loads(run("runtime", "proposals", p, "--status", "approved", "--json").stdout)["proposals"]
    assert [x["id"] for x in listed] == [prop]
    assert json.loads(run("runtime", "proposals", p, "--risk", "low", "--json").stdout)["proposals"] == []
    lin = run("runtime", "lineage", p, prop)
    assert "decision at" in lin.stdout and "validated -> approved" in lin.stdout and "NOT BACKED" not in lin.stdout
    pol = json.loads(run("runtime", "policy", p, "--json").stdout)
    assert pol["high"]["validators"] == ["ci"]


def test_end_session_and_skill_state_from_the_shell(seeded):
    p, sid, _, prop = seeded
    r = run("runtime", "end-session", p, sid, "--status", "completed")
    assert r.exit_code == 0 and "completed" in r.stdout
    r = run("runtime", "end-session", p, sid)
    assert r.exit_code == 2 and "already ended" in r.stderr
    with RuntimeMemoryStore(p, readonly=True) as s:
        skill = s.proposal_lineage(prop)["skill"]["id"]
    assert run("runtime", "skill-state", p, skill, "retired").exit_code == 0
    r = run("runtime", "skill-state", p, skill, "active")
    assert r.exit_code == 2 and "a retired skill stays retired" in r.stderr
    assert run("runtime", "end-session", p, "no-such-session").exit_code == 5


def test_search_recent_replay_pages_and_profiles_from_the_shell(seeded):
    p, sid, _, _ = seeded
    r = run("runtime", "search", p, "HELLO")          # a read: the index is behind, the turns are scanned
    assert r.exit_code == 0 and "[0] user: hello there" in r.stdout
    r = run("runtime", "search", p, "hel*", "--fts5")
    assert r.exit_code == 2 and "the search index is not up to date" in r.stderr
    r = run("runtime", "index", p)
    assert r.exit_code == 0 and "2 turn(s) indexed" in r.stdout
    r = run("runtime", "search", p, "hel*", "--fts5", "--json")
    assert [t["content"] for t in json.loads(r.stdout)["turns"]] == ["hello there"]
    r = run("runtime", "recent", p, sid, "--last", "1", "--json")
    assert [t["content"] for t in json.loads(r.stdout)["turns"]] == ["hi"]
    assert run("runtime", "recent", p, sid).exit_code == 2
    r = run("runtime", "replay", p, sid, "--limit", "1")
    assert "[0] user: hello there" in r.stdout and "more: --after 0" in r.stdout
    r = run("runtime", "replay", p, sid, "--limit", "1", "--after", "0", "--json")
    page = json.loads(r.stdout)
    assert [t["turn_index"] for t in page["turns"]] == [1] and page["next_after"] is None
    r = run("runtime", "profiles", p, "tom", "--json")
    assert [v["version"] for v in json.loads(r.stdout)["versions"]] == [1]


def test_export_a_table_as_csv_jsonl_and_parquet(seeded, tmp_path):
    import csv
    import pyarrow.parquet as pq
    p, sid, _, _ = seeded
    out = tmp_path / "turns.csv"
    r = run("runtime", "export", p, "--table", "conversation_turns", "--format", "csv", "-o", out)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(out.open()))
    assert [(x["turn_index"], x["content"], x["metadata_json"]) for x in rows] == [("0", "hello there", "{}"),
                                                                                 ("1", "hi", "{}")]
    pq_out = tmp_path / "turns.parquet"
    assert run("runtime", "export", p, "--table", "conversation_turns", "--format", "parquet", "-o",
               pq_out).exit_code == 0
    t = pq.read_table(pq_out)
    assert t.column("turn_index").to_pylist() == [0, 1] and str(t.schema.field("turn_index").type) == "int64"
    r = run("runtime", "export", p, "--table", "task_events", "--format", "jsonl")
    assert [json.loads(x)["payload_json"] for x in r.stdout.splitlines()] == [{}]
    r = run("runtime", "export", p, "--table", "conversation_turns", "--format", "csv", "-o", out)
    assert r.exit_code == 2 and "exists; --force replaces it" in r.stderr
    r = run("runtime", "export", p, "--format", "csv", "-o", tmp_path / "all.csv")
    assert r.exit_code == 2 and "--format csv writes one table: name it with --table" in r.stderr
