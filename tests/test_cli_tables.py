"""`chronoledger tables ...` from the command line, with its exit codes
(0 ok, 1 problems found, 2 bad usage or a refused row/filter, 3 unreadable
database or a change that cannot be applied, 5 not found)."""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from chronoledger.cli import cli, tables_cmds

from _cli import invoke
from _tables_data import CATALOGUE, GOOD, GOV, LOGS, PLAYBOOKS

LOG_ROWS = [
    {"execution_id": "e1", "command_type": "deploy", "component": "api", "status": "failed", "duration_ms": 150,
     "started_at": "2025-01-01T01:00:00Z"},
    {"execution_id": "e2", "command_type": "deploy", "component": "42", "status": "failed", "duration_ms": 500,
     "started_at": "2025-01-01T03:00:00Z"},
    {"execution_id": "e3", "command_type": "test", "component": "db", "status": "failed", "duration_ms": 50,
     "started_at": "2025-01-01T04:00:00Z"},
    {"execution_id": "e4", "command_type": "test", "component": "api", "status": "succeeded", "duration_ms": 900,
     "started_at": "2025-01-01T05:00:00Z"},
    {"execution_id": "e5", "command_type": "build", "component": "web", "status": "failed", "duration_ms": 100,
     "started_at": "2025-01-01T02:00:00Z"},
]


def run(*args, input=None, env=None):
    return invoke(cli, [str(a) for a in args], input=input, env=env)


def tables(db, *args, **kw):
    return run("tables", "--db", db, *args, **kw)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(autouse=True)
def _no_db_from_the_environment(monkeypatch):
    monkeypatch.delenv("CHRONOLEDGER_TABLES_DB", raising=False)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A registry with the catalogue, created once; each test gets a copy."""
    d = tmp_path_factory.mktemp("template")
    r = run("tables", "--db", d / "grace.db", "create")
    assert r.exit_code == 0, r.output
    return d


@pytest.fixture
def db(template, tmp_path):
    d = tmp_path / "reg"
    shutil.copytree(template, d)
    return d / "grace.db"


@pytest.fixture
def logs_db(db):
    r = tables(db, "insert", LOGS, json.dumps(LOG_ROWS))
    assert r.exit_code == 0, r.output
    return db


def ids(result, key="execution_id"):
    assert result.exit_code == 0, result.output
    return [row[key] for row in json.loads(result.stdout)]


# --- create, list, show -----------------------------------------------------------

def test_create_loads_the_catalogue_and_a_second_create_changes_nothing(tmp_path):
    db = tmp_path / "new.db"
    r = tables(db, "create")
    assert r.exit_code == 0, r.output
    # the governance table is made when the registry first opens; the other 17 by create
    assert r.stdout.splitlines()[0] == ("18 schemas loaded; 17 tables created, 0 altered, "
                                        "0 changes waiting for approval, 0 problems")
    assert db.exists()
    r = tables(db, "create")
    assert r.exit_code == 0, r.output
    assert "18 schemas loaded; 0 tables created, 0 altered" in r.stdout


def test_create_with_a_bad_user_schema_exits_1_and_loads_the_rest(tmp_path):
    mine = tmp_path / "mine"
    write(mine / "notes.yaml", GOOD)
    bad = write(mine / "broken.yaml", "table: broken\nfields:\n  - {name: a, type: nope}\n")
    r = tables(tmp_path / "r.db", "--schemas", mine, "--catalogue", "create")
    assert r.exit_code == 1, r.output
    assert "19 schemas loaded; 18 tables created" in r.stdout and "1 problems" in r.stdout
    assert f"{bad}: broken.a: unknown type 'nope'" in r.stdout
    listed = json.loads(tables(tmp_path / "r.db", "list", "--json").stdout)
    assert "my_notes" in [t["table"] for t in listed] and "broken" not in [t["table"] for t in listed]


def test_list_shows_every_catalogue_table_with_its_row_count(db):
    assert tables(db, "insert", PLAYBOOKS, '{"playbook_name": "p1"}').exit_code == 0
    r = tables(db, "list")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["table", "rows", "fields", "version", "pending", "description"]
    assert set(lines[1]) == {"-", " "}
    body = {ln.split()[0]: ln.split()[1:] for ln in lines[2:]}
    assert sorted(body) == sorted(CATALOGUE)
    assert body[PLAYBOOKS][:4] == ["1", "17", "1", "0"]          # rows, fields, version, pending
    assert body[GOV][0] == "18"                                   # one decision per table created
    assert body[LOGS][:2] == ["0", "19"]
    assert "Audit trail of executed operations" in r.stdout


def test_list_json(db):
    assert tables(db, "insert", PLAYBOOKS, '[{"playbook_name": "a"}, {"playbook_name": "b"}]').exit_code == 0
    r = tables(db, "list", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [t["table"] for t in rows] == sorted(CATALOGUE)
    by = {t["table"]: t for t in rows}
    assert by[PLAYBOOKS] == {"table": PLAYBOOKS, "rows": 2, "fields": 17, "version": 1, "immutable": False,
                             "pending": 0, "description": by[PLAYBOOKS]["description"]}
    assert by[PLAYBOOKS]["description"].startswith("Self-healing playbooks")
    assert by[GOV]["immutable"] is True and by[GOV]["rows"] == 18
    assert all(t["rows"] == 0 for name, t in by.items() if name not in (PLAYBOOKS, GOV))


def test_show_prints_fields_types_rules_and_indexes(db):
    r = tables(db, "show", PLAYBOOKS)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == f"{PLAYBOOKS}: Self-healing playbooks: remediation scripts, triggers and success metrics"
    assert re.fullmatch(r"version 1, 0 rows, schema [0-9a-f]{12}", lines[1])
    assert lines[3].split() == ["field", "type", "rules", "description"]
    rows = {ln.split()[0]: ln for ln in lines[5:] if ln and not ln.startswith("index on")}
    assert list(rows)[:3] == ["id", "playbook_name", "summary"] and len(rows) == 17
    assert rows["id"].split()[1:4] == ["uuid", "primary_key", "generated"]
    assert rows["playbook_name"].split()[1:4] == ["string", "required", "unique"]
    assert rows["success_rate"].split()[1:5] == ["float", "default=0.0", "min=0.0", "max=1.0"]
    assert rows["trigger_conditions"].split()[1:4] == ["json", "nullable=false", "default={}"]
    assert 'allowed=["low", "medium"' in rows["risk_level"] and 'default="low"' in rows["risk_level"]
    assert 'generated="update"' in rows["updated_at"]
    assert [ln for ln in lines if ln.startswith("index on")] == [
        "index on risk_level", "index on trust_score", "index on success_rate", "index on last_used_at"]

    r = tables(db, "show", LOGS)
    assert "index on status, started_at" in r.stdout
    assert r.stdout.rstrip().endswith("linked_playbook_id -> memory_self_healing_playbooks.playbook_name")
    r = tables(db, "show", GOV)
    assert r.stdout.splitlines()[1].endswith(", immutable")


def test_show_json(db):
    assert tables(db, "insert", PLAYBOOKS, '{"playbook_name": "p1"}').exit_code == 0
    text = tables(db, "show", PLAYBOOKS).stdout
    r = tables(db, "show", PLAYBOOKS, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["table"] == PLAYBOOKS and s["version"] == 1 and s["rows"] == 1
    assert re.fullmatch(r"[0-9a-f]{64}", s["schema_hash"]) and f"schema {s['schema_hash'][:12]}" in text
    fields = {f["name"]: f for f in s["fields"]}
    assert len(s["fields"]) == 17 and s["fields"][0]["name"] == "id"
    assert fields["risk_level"]["allowed"] == ["low", "medium", "high", "critical"]
    assert fields["risk_level"]["type"] == "string" and fields["risk_level"]["default"] == "low"
    assert fields["playbook_name"]["required"] is True and fields["playbook_name"]["unique"] is True
    assert fields["success_rate"]["min"] == 0.0 and fields["success_rate"]["max"] == 1.0
    assert fields["enabled"]["default"] is True
    assert [ix["fields"] for ix in s["indexes"]] == [["risk_level"], ["trust_score"], ["success_rate"],
                                                    ["last_used_at"]]
    rel = json.loads(tables(db, "show", LOGS, "--json").stdout)["relationships"]
    assert rel == [{"field": "linked_playbook_id", "table": PLAYBOOKS, "references": "playbook_name"}]


def test_show_prints_a_true_default_with_its_value(db):
    r = tables(db, "show", PLAYBOOKS)
    enabled = next(ln for ln in r.stdout.splitlines() if ln.startswith("enabled "))
    assert "default=true" in enabled


@pytest.mark.parametrize("args", [("show", "nosuch"), ("query", "nosuch"), ("insert", "nosuch", "{}")])
def test_an_unknown_table_exits_5(db, args):
    r = tables(db, *args)
    assert "no table 'nosuch'" in r.stderr
    assert r.exit_code == 5


def test_an_unknown_table_is_refused_and_named(db):
    r = tables(db, "show", "nosuch")
    assert r.exit_code == 5 and "no table 'nosuch'" in r.stderr and PLAYBOOKS in r.stderr
    r = tables(db, "history", "nosuch")
    assert r.exit_code == 5 and "no history for table 'nosuch'" in r.stderr


# --- validate -----------------------------------------------------------------------

def test_validate_reports_the_bad_file_field_and_reason_and_the_good_one(tmp_path):
    folder = tmp_path / "schemas"
    write(folder / "good.yaml", GOOD)
    bad = write(folder / "bad.yaml", "table: broken\nfields:\n  - {name: a, type: nope}\n"
                                     "  - {name: b, type: integer, min: 5, max: 1}\n")
    r = run("tables", "validate", folder)                   # no --db needed
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    assert "ok    good.yaml: table my_notes, 12 fields, 1 indexes" in lines
    assert any(ln.startswith(f"error {bad}: broken.a: unknown type 'nope'") for ln in lines), lines
    assert f"error {bad}: broken.b: min (5) is greater than max (1)" in lines
    assert lines[-1] == "1 good, 2 problems"
    assert not (tmp_path / "schemas" / "good.db").exists()


def test_validate_an_all_good_folder_exits_0(tmp_path):
    folder = tmp_path / "schemas"
    write(folder / "notes.yaml", GOOD)
    write(folder / "other.yaml", "table: other\nfields:\n  - {name: a, type: string}\n")
    r = run("tables", "validate", folder)
    assert r.exit_code == 0, r.output
    assert "ok    notes.yaml: table my_notes, 12 fields, 1 indexes" in r.stdout
    assert "ok    other.yaml: table other, 2 fields, 0 indexes" in r.stdout     # the generated id
    assert r.stdout.splitlines()[-1] == "2 good, 0 problems"
    r = run("tables", "validate", tmp_path / "missing")
    assert r.exit_code == 2 and str(tmp_path / "missing") in r.stderr and r.stdout == ""


def test_validate_finds_a_table_declared_in_two_files(tmp_path):
    folder = tmp_path / "schemas"
    write(folder / "a.yaml", GOOD)
    write(folder / "b.yaml", GOOD.replace("description: Notes", "description: again"))
    created = tables(tmp_path / "r.db", "--schemas", folder, "create")
    assert created.exit_code == 1 and "also declared in" in created.stdout
    r = run("tables", "validate", folder)
    assert r.exit_code == 1 and "also declared in" in r.stdout


# --- insert -------------------------------------------------------------------------

def test_insert_prints_the_stored_row(db):
    r = tables(db, "insert", PLAYBOOKS,
               '{"playbook_name": "p1", "trigger_conditions": {"error_type": "ConnectionError"}}', "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert uuid.UUID(row["id"])                                    # generated
    assert row["playbook_name"] == "p1" and row["trigger_conditions"] == {"error_type": "ConnectionError"}
    assert row["summary"] is None and row["actions"] == [] and row["rollback_actions"] == []
    assert row["trust_score"] == 0.5 and row["success_rate"] == 0.0 and row["total_runs"] == 0
    assert row["risk_level"] == "low" and row["enabled"] is True and row["requires_approval"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", row["created_at"])
    assert row["updated_at"] == row["created_at"]
    stored = json.loads(tables(db, "query", PLAYBOOKS, "--where", "playbook_name=p1", "--json").stdout)
    assert stored == [row]


def test_insert_a_list_of_rows_from_an_argument_a_file_and_stdin(db, tmp_path):
    r = tables(db, "insert", PLAYBOOKS, '[{"playbook_name": "a"}, {"playbook_name": "b", "total_runs": 3}]', "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [x["playbook_name"] for x in rows] == ["a", "b"] and rows[1]["total_runs"] == 3
    assert len({x["id"] for x in rows}) == 2

    f = tmp_path / "rows.json"
    f.write_text(json.dumps([{"playbook_name": "c"}, {"playbook_name": "d"}]))
    r = tables(db, "insert", PLAYBOOKS, f"@{f}", "--json")
    assert r.exit_code == 0, r.output
    assert [x["playbook_name"] for x in json.loads(r.stdout)] == ["c", "d"]

    r = tables(db, "insert", PLAYBOOKS, "-", "--json", input='{"playbook_name": "e", "risk_level": "high"}')
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["risk_level"] == "high"

    names = ids(tables(db, "query", PLAYBOOKS, "--order-by", "playbook_name", "--json"), "playbook_name")
    assert names == ["a", "b", "c", "d", "e"]
    assert tables(db, "insert", PLAYBOOKS, "[]", "--json").stdout.strip() == "[]"


def test_a_bad_row_exits_2_naming_every_bad_field_and_stores_nothing(db):
    r = tables(db, "insert", PLAYBOOKS, '{"playbook_name": 5, "success_rate": 2, "bogus": 1}')
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    err = r.stderr
    assert err.startswith(f"error: {PLAYBOOKS}: insert refused")
    assert "bogus: unknown field" in err
    assert "playbook_name: expected text, got int" in err
    assert "success_rate: 2 is above the maximum 1.0" in err

    # a batch: every bad field of every row, by index, and none of the rows stored
    r = tables(db, "insert", PLAYBOOKS,
               '[{"playbook_name": "ok1"}, {"success_rate": -1}, {"playbook_name": "x", "risk_level": "extreme"}]')
    assert r.exit_code == 2, r.output
    assert "row 1: playbook_name: required" in r.stderr
    assert "row 1: success_rate: -1 is below the minimum 0.0" in r.stderr
    assert "row 2: risk_level: 'extreme' is not one of the allowed values" in r.stderr
    assert json.loads(tables(db, "query", PLAYBOOKS, "--json").stdout) == []

    assert tables(db, "insert", PLAYBOOKS, '{"playbook_name": "dup"}').exit_code == 0
    r = tables(db, "insert", PLAYBOOKS, '{"playbook_name": "dup"}')
    assert r.exit_code == 2 and "playbook_name: 'dup' is already stored (unique)" in r.stderr

    r = tables(db, "insert", PLAYBOOKS, "5")
    assert r.exit_code == 2 and "a row is a mapping" in r.stderr


def test_bad_json_exits_2(db):
    r = tables(db, "insert", PLAYBOOKS, "{bad")
    assert r.exit_code == 2
    assert r.stderr.startswith("error: ROW is not JSON:") and r.stdout == ""
    r = tables(db, "insert", PLAYBOOKS, "-", input="")
    assert r.exit_code == 2 and "ROW is not JSON" in r.stderr
    r = tables(db, "insert", PLAYBOOKS)
    assert r.exit_code == 2 and "Missing argument 'ROW'" in r.output     # required


def test_insert_from_a_missing_file_is_bad_usage(db, tmp_path):
    r = tables(db, "insert", PLAYBOOKS, f"@{tmp_path / 'missing.json'}")
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert r.exit_code == 2 and "missing.json" in r.stderr


# --- query --------------------------------------------------------------------------

def test_query_where_order_limit_json(logs_db):
    r = tables(logs_db, "query", LOGS, "--where", "status=failed", "--where", "duration_ms>=100",
               "--order-by", "-started_at", "--limit", "2", "--json")
    rows = json.loads(r.stdout)
    assert ids(r) == ["e2", "e5"]
    assert rows[0]["started_at"] == "2025-01-01T03:00:00.000000Z" and rows[0]["duration_ms"] == 500
    r = tables(logs_db, "query", LOGS, "--where", "status=failed", "--order-by", "started_at",
               "--limit", "2", "--offset", "1", "--json")
    assert ids(r) == ["e5", "e2"]
    r = tables(logs_db, "query", LOGS, "--where", "duration_ms>=100", "--where", "duration_ms<=150", "--json")
    assert sorted(ids(r)) == ["e1", "e5"]                   # the same field twice: both hold
    r = tables(logs_db, "query", LOGS, "--where", "component!=api", "--order-by", "execution_id", "--json")
    assert ids(r) == ["e2", "e3", "e5"]
    r = tables(logs_db, "query", LOGS, "--where", "started_at<2025-01-01T02:30:00Z", "--order-by", "started_at",
               "--json")
    assert ids(r) == ["e1", "e5"]


def test_query_prints_a_table_without_json(logs_db):
    r = tables(logs_db, "query", LOGS, "--where", "command_type=build")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:5] == ["id", "execution_id", "command_type", "component", "status"]
    assert len(lines) == 3 and lines[2].split()[1:5] == ["e5", "build", "web", "failed"]
    r = tables(logs_db, "query", LOGS, "--where", "command_type=nothing")
    assert r.exit_code == 0 and r.stdout.strip() == "(none)"


def test_query_json_filter_like_and_contains(db):
    rows = [{"playbook_name": "conn", "trigger_conditions": {"error_type": "ConnectionError", "retries": 3}},
            {"playbook_name": "disk", "trigger_conditions": {"error_type": "DiskFull"}},
            {"playbook_name": "connect_again", "trigger_conditions": {}}]
    assert tables(db, "insert", PLAYBOOKS, json.dumps(rows)).exit_code == 0
    r = tables(db, "query", PLAYBOOKS, "--where", '{"trigger_conditions": {"error_type": "ConnectionError"}}',
               "--json")
    assert ids(r, "playbook_name") == ["conn"]
    r = tables(db, "query", PLAYBOOKS, "--where", 'trigger_conditions@>{"error_type": "DiskFull"}', "--json")
    assert ids(r, "playbook_name") == ["disk"]
    r = tables(db, "query", PLAYBOOKS, "--where", "playbook_name~conn%", "--order-by", "playbook_name", "--json")
    assert ids(r, "playbook_name") == ["conn", "connect_again"]
    r = tables(db, "query", PLAYBOOKS, "--where", "playbook_name~%s%", "--where",
               '{"or": [{"playbook_name": "disk"}, {"playbook_name": "conn"}]}', "--json")
    assert ids(r, "playbook_name") == ["disk"]


def test_query_on_logs_with_like(logs_db):
    r = tables(logs_db, "query", LOGS, "--where", "component~a%", "--order-by", "execution_id", "--json")
    assert ids(r) == ["e1", "e4"]
    r = tables(logs_db, "query", LOGS, "--where", "command_type~%e%", "--where", "status=failed",
               "--order-by", "execution_id", "--json")
    assert ids(r) == ["e1", "e2", "e3"]


def test_a_text_field_compared_with_a_number_looking_value_matches_the_text(logs_db):
    r = tables(logs_db, "query", LOGS, "--where", "component=42", "--json")
    assert ids(r) == ["e2"]
    r = tables(logs_db, "query", LOGS, "--where", 'component="42"', "--json")
    assert ids(r) == ["e2"]
    r = tables(logs_db, "query", LOGS, "--where", "duration_ms=500", "--json")       # a number for integers
    assert ids(r) == ["e2"]


def test_bad_filters_exit_2_and_say_why(logs_db):
    r = tables(logs_db, "query", LOGS, "--where", "nosuch=1")
    assert r.exit_code == 2 and "unknown field 'nosuch'" in r.stderr and r.stdout == ""
    r = tables(logs_db, "query", LOGS, "--where", "nosuch~x%")
    assert r.exit_code == 2 and "'nosuch'" in r.stderr
    r = tables(logs_db, "query", LOGS, "--where", '{"nosuch": 1}')
    assert r.exit_code == 2 and "'nosuch'" in r.stderr
    r = tables(logs_db, "query", LOGS, "--where", "duration_ms=abc")
    assert r.exit_code == 2 and "duration_ms" in r.stderr
    r = tables(logs_db, "query", LOGS, "--where", "just some words")
    assert r.exit_code == 2 and "write FIELD=VALUE" in r.stderr
    r = tables(logs_db, "query", LOGS, "--where", "{oops")
    assert r.exit_code == 2 and "--where is not JSON" in r.stderr
    r = tables(logs_db, "query", LOGS, "--order-by", "-nosuch")
    assert r.exit_code == 2 and "unknown field 'nosuch'" in r.stderr
    r = tables(logs_db, "query", LOGS, "--limit", "-1")
    assert r.exit_code == 2


# --- governance: propose, proposals, approve, reject, history --------------------------

def proposal_id(result):
    assert result.exit_code == 0, result.output
    m = re.match(r"proposal (p-[0-9a-f-]+): ", result.stdout)
    assert m, result.stdout
    return m.group(1)


def test_propose_approve_reject_and_history(tmp_path):
    mine = tmp_path / "mine"
    write(mine / "notes.yaml", GOOD)
    db = tmp_path / "r.db"

    def t(*args):
        return run("tables", "--db", db, "--schemas", mine, "--catalogue", "--actor", "alice", *args)

    r = t("create")
    assert r.exit_code == 0 and "19 schemas loaded; 18 tables created" in r.stdout, r.output

    dropped = write(tmp_path / "dropped.yaml", GOOD.replace("  - {name: body, type: text}\n", ""))
    r = t("propose", dropped, "--reason", "body is unused")
    high = proposal_id(r)
    assert r.stdout.splitlines() == [f"proposal {high}: change my_notes, high risk, pending",
                                     "  changes: drop_field body (high)"]
    tighter = write(tmp_path / "tighter.yaml", GOOD.replace("max: 10", "max: 5"))
    r = t("propose", tighter)
    medium = proposal_id(r)
    assert "change my_notes, medium risk, pending" in r.stdout

    r = t("proposals", "--status", "pending")
    assert r.exit_code == 0
    assert [ln.split(":")[0] for ln in r.stdout.splitlines() if ln.startswith("proposal")] == \
        [f"proposal {high}", f"proposal {medium}"]
    assert "applied" not in r.stdout
    assert json.loads(t("list", "--json").stdout)[-1] == {
        "table": "my_notes", "rows": 0, "fields": 12, "version": 2, "immutable": False, "pending": 2,
        "description": "Notes"}
    r = t("proposals", "--status", "applied", "--table", "my_notes")
    assert r.stdout.count("proposal ") == 1 and "create my_notes, low risk, applied by registry" in r.stdout

    r = t("approve", high, "--reason", "ok")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"proposal {high}: change my_notes, high risk, applied by alice")
    fields = [f["name"] for f in json.loads(t("show", "my_notes", "--json").stdout)["fields"]]
    assert "body" not in fields and len(fields) == 11

    # the other proposal was made against the old table: it cannot be applied now
    r = t("approve", medium)
    assert r.exit_code == 3 and "has changed since it was proposed" in r.stderr
    r = t("reject", medium, "--reason", "too strict")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"proposal {medium}: change my_notes, medium risk, rejected by alice")
    assert t("proposals", "--status", "pending").stdout.strip() == "(none)"

    r = t("approve", high)
    assert r.exit_code == 3 and f"proposal {high} is applied, not pending" in r.stderr
    for cmd in ("approve", "reject"):
        r = t(cmd, "p-nope", "--reason", "x")
        assert r.exit_code == 5 and "no proposal 'p-nope'" in r.stderr

    # a low-risk change (a nullable field added) is applied at once
    added = write(tmp_path / "added.yaml", GOOD.replace("  - {name: body, type: text}\n",
                                                        "  - {name: extra, type: string}\n"))
    r = t("propose", added)
    low = proposal_id(r)
    assert f"proposal {low}: change my_notes, low risk, applied by registry (automatic" in r.stdout

    r = t("history", "my_notes")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    events = [(ln.split("  ")[1], ln) for ln in lines]
    assert events[0][0].startswith("proposed (create, low risk) by schema file")
    assert any(e.startswith("proposed (change, high risk) by alice") and high in ln for e, ln in events)
    assert any(e == "applied by alice" and high in ln and ln.endswith("ok") for e, ln in events)
    assert any(e == "rejected by alice" and medium in ln and ln.endswith("too strict") for e, ln in events)
    assert any(e.startswith("schema ") and high in ln for e, ln in events)
    assert any(e.startswith("applied by registry") and low in ln for e, ln in events)
    assert [e for e, _ in events].index("applied by alice") > \
        [e for e, _ in events].index("proposed (change, high risk) by alice")
    hist = json.loads(t("history", "my_notes", "--json").stdout)
    assert {e["proposal_id"] for e in hist} >= {high, medium, low}
    assert [e["event"] for e in hist if e["proposal_id"] == medium] == ["proposed (change, medium risk)", "rejected"]


def test_propose_a_bad_or_unchanged_schema_is_refused(tmp_path):
    mine = tmp_path / "mine"
    notes = write(mine / "notes.yaml", GOOD)
    db = tmp_path / "r.db"
    r = run("tables", "--db", db, "--schemas", mine, "create")
    assert r.exit_code == 0, r.output
    r = tables(db, "propose", notes)
    assert r.exit_code == 3 and "nothing to change" in r.stderr
    bad = write(tmp_path / "bad.yaml", "table: my_notes\nfields:\n  - {name: a, type: nope}\n")
    r = tables(db, "propose", bad)
    assert r.exit_code == 3 and "unknown type 'nope'" in r.stderr
    r = tables(db, "propose", tmp_path / "missing.yaml")
    assert r.exit_code == 2 and str(tmp_path / "missing.yaml") in r.stderr and r.stdout == ""


def test_propose_a_table_named_like_an_index_exits_3_naming_the_file_table_and_name(tmp_path):
    # SQLite keeps table and index names in one namespace: this was an unhandled SQL error
    a = write(tmp_path / "s" / "a.yaml", "table: a\nfields:\n  - {name: v, type: integer}\n"
                                         "indexes:\n  - {name: b, fields: [v]}\n")
    b = write(tmp_path / "s" / "b.yaml", "table: b\nfields:\n  - {name: w, type: integer}\n")
    c = write(tmp_path / "s" / "c.yaml", "table: c\nfields:\n  - {name: w, type: integer}\n"
                                         "indexes:\n  - {name: A, fields: [w]}\n")
    db = tmp_path / "r.db"
    assert tables(db, "propose", a).exit_code == 0
    r = tables(db, "propose", b)
    assert r.exit_code == 3, r.output
    assert f"error: {b}: table b: table name b is taken by index b of table a" in r.stderr
    assert "Traceback" not in r.output and "cannot be used" not in r.stderr
    r = tables(db, "propose", c)
    assert r.exit_code == 3 and f"error: {c}: table c: index name A is taken by table a" in r.stderr
    r = tables(db, "list", "--json")
    assert [t["table"] for t in json.loads(r.stdout) if t["table"] in ("a", "b", "c")] == ["a"]


# --- --db and the environment ---------------------------------------------------------

@pytest.mark.parametrize("args", [("list",), ("show", PLAYBOOKS), ("create",), ("query", PLAYBOOKS),
                                  ("insert", PLAYBOOKS, "{}"), ("proposals",), ("history", PLAYBOOKS)])
def test_a_missing_db_exits_2_naming_the_option(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("tables", *args)
    assert r.exit_code == 2, r.output
    assert "--db" in r.stderr and "CHRONOLEDGER_TABLES_DB" in r.stderr
    assert list(tmp_path.iterdir()) == []                        # nothing created


def test_the_environment_variable_names_the_db(db):
    env = {"CHRONOLEDGER_TABLES_DB": str(db)}
    r = run("tables", "insert", PLAYBOOKS, '{"playbook_name": "from-env"}', env=env)
    assert r.exit_code == 0, r.output
    r = run("tables", "list", "--json", env=env)
    assert r.exit_code == 0, r.output
    assert {t["table"]: t["rows"] for t in json.loads(r.stdout)}[PLAYBOOKS] == 1
    assert ids(tables(db, "query", PLAYBOOKS, "--json"), "playbook_name") == ["from-env"]
    # --db wins over the environment
    other = db.parent / "other.db"
    r = run("tables", "--db", other, "list", "--json", env=env)
    assert r.exit_code == 0 and [t["table"] for t in json.loads(r.stdout)] == [GOV]      # a new database


def test_an_unreadable_db_exits_3(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    r = tables(junk, "list")
    assert r.exit_code == 3 and "junk.db" in r.stderr and "not an SQLite database" in r.stderr
    r = tables(tmp_path / "no" / "such" / "x.db", "list")
    assert r.exit_code == 2 and r.stderr.startswith("error: ")              # no such folder: usage
    r = tables(tmp_path, "list")                                  # a folder: refused as bad usage, named
    assert r.exit_code == 2 and str(tmp_path) in r.stderr and r.stdout == ""


# --- serve ----------------------------------------------------------------------------

def fake_datasette(folder, code, then=""):
    """A datasette that records its arguments and its --metadata file, then ``then`` (shell), then exits."""
    exe = folder / "datasette"
    exe.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{folder / "argv.txt"}"\n'
                   f'while [ "$#" -gt 0 ]; do [ "$1" = --metadata ] && cp "$2" "{folder / "meta.json"}"; shift; done\n'
                   f'{then}\nexit {code}\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


@pytest.fixture
def no_datasette_module(monkeypatch):
    """This interpreter without Datasette (whatever the developer's environment holds)."""
    real = tables_cmds.importlib.util.find_spec
    monkeypatch.setattr(tables_cmds.importlib.util, "find_spec",
                        lambda name, *a: None if name == "datasette" else real(name, *a))


def served_argv(bin_dir):
    argv = (bin_dir / "argv.txt").read_text().splitlines()
    assert argv[-2] == "--metadata"
    return argv[:-2]


def test_serve_without_datasette_exits_3_with_the_install_hint(db, monkeypatch, no_datasette_module):
    asked = []
    monkeypatch.setattr(tables_cmds.shutil, "which", lambda name, *a, **k: asked.append(name))
    r = run("tables", "serve", db)
    assert r.exit_code == 3, r.output
    assert asked == ["datasette"]
    assert "Datasette is not installed" in r.stderr and "pip install 'chronoledger[ui]'" in r.stderr
    assert f"datasette {db}" in r.stderr


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for datasette")
def test_serve_runs_datasette_and_exits_with_its_code(db, tmp_path, monkeypatch, no_datasette_module):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = fake_datasette(bin_dir, 7)
    monkeypatch.setattr(tables_cmds.shutil, "which", lambda name, *a, **k: str(exe) if name == "datasette" else None)
    r = run("tables", "serve", db, "--port", 9123, "--host", "0.0.0.0")
    assert r.exit_code == 7, r.output
    assert served_argv(bin_dir) == ["serve", str(db), "--host", "0.0.0.0", "--port", "9123"]
    assert f"{exe} serve {db} --host 0.0.0.0 --port 9123 --metadata " in r.stderr
    hidden = json.loads((bin_dir / "meta.json").read_text())["databases"][db.stem]["tables"]
    assert "_registry_tables" in hidden and "_registry_proposals" in hidden and all(
        v == {"hidden": True} for v in hidden.values())
    assert not any(name.startswith("memory_") for name in hidden)


@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for datasette")
def test_serve_finds_datasette_on_path_with_the_default_host_and_port(db, tmp_path, monkeypatch,
                                                                      no_datasette_module):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_datasette(bin_dir, 0)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    r = run("tables", "serve", db)
    assert r.exit_code == 0, r.output
    assert served_argv(bin_dir) == ["serve", str(db), "--host", "127.0.0.1", "--port", "8001"]
    r = run("tables", "serve", tmp_path / "missing.db")
    assert r.exit_code == 2 and str(tmp_path / "missing.db") in r.stderr
    assert "missing.db" not in (bin_dir / "argv.txt").read_text()              # datasette was not run for it


def test_serve_takes_datasette_from_this_interpreter_without_an_activated_environment(db, tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "datasette"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(f"import sys\nopen({str(tmp_path / 'argv.txt')!r}, 'w').write("
                                     f"'\\n'.join(sys.argv[1:]))\nsys.exit(4)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(tables_cmds.shutil, "which", lambda *a, **k: None)      # nothing on PATH
    r = run("tables", "serve", db)
    assert r.exit_code == 4, r.output
    assert f"{sys.executable} -m datasette serve {db}" in r.stderr
    assert (tmp_path / "argv.txt").read_text().splitlines()[:2] == ["serve", str(db)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_stopping_serve_stops_datasette(db, tmp_path, stop):
    """Killing chronoledger (even with SIGKILL) does not leave Datasette serving."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = bin_dir / "pid"
    fake_datasette(bin_dir, 0, then=f'echo $$ > "{pid_file}"\nexec sleep 60')
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from chronoledger.cli import main; "
                             "sys.argv = ['chronoledger', 'tables', 'serve', sys.argv[1]]; main()", str(db)],
                            env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        server = int(pid_file.read_text())
        proc.send_signal(stop)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(server), f"datasette ({server}) still runs after chronoledger got {stop.name}"
    finally:
        proc.kill()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:                                     # a zombie (not yet reaped by init) is not serving
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
    return True


def _damaged_copy(src, dst, how):
    shutil.copy(src, dst)
    size = os.path.getsize(dst)
    if how == "truncated":
        os.truncate(dst, size // 2)
    else:                                   # the page-type byte of every page of the last quarter flipped
        with open(dst, "r+b") as f:          # (SQLite has no page checksums: a flip inside a value goes unseen)
            for page in range(size * 3 // 4 // 4096, size // 4096):
                f.seek(page * 4096)
                b = f.read(1)
                f.seek(page * 4096)
                f.write(bytes([b[0] ^ 0xFF]))
    return dst


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_a_damaged_database_is_exit_3_naming_the_file(tmp_path, how):
    db = tmp_path / "good.db"
    assert tables(db, "create").exit_code == 0
    rows = json.dumps([{"title": f"doc {i}", "key_topics": ["a", "b"], "summary": "x" * 200} for i in range(2000)])
    assert tables(db, "insert", "memory_documents", rows).exit_code == 0
    run("tables", "--db", db, "list")                        # the WAL copied back: the damage hits the file
    bad = _damaged_copy(db, tmp_path / "bad.db", how)
    before = bad.read_bytes()
    for args in (["list"], ["query", "memory_documents", "--limit", "5000"]):
        r = tables(bad, *args)
        if how == "flipped" and args == ["list"] and r.exit_code == 0:
            continue                                          # the schema pages are intact: counts still read
        assert r.exit_code == 3, (args, r.output)
        assert f"{bad}" in r.output and "Traceback" not in r.output
    assert bad.read_bytes() == before                         # left as it was
