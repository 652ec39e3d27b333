"""chronoledger.tables: schemas, validation, queries, evolution, governance, events."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import apsw
import pytest

from chronoledger.errors import ChronoledgerError, NotFoundError, QueryError, SchemaError, ValidationError
from chronoledger.tables import TableRegistry, parse_schema, read_schema_file
from chronoledger.tables import query as qb
from chronoledger.tables import values

from _tables_data import CATALOGUE, GOOD, GOV, LOGS, PLAYBOOKS, write_schema


@pytest.fixture
def reg(tmp_path):
    r = TableRegistry(tmp_path / "grace.db", actor="tester")
    r.load_all_schemas()
    yield r
    r.close()


# --- the catalogue ----------------------------------------------------------------

def test_the_catalogue_loads_every_table_with_its_indexes(reg, tmp_path):
    assert reg.tables() == sorted(CATALOGUE)
    assert not reg.problems
    conn = apsw.Connection(str(tmp_path / "grace.db"))
    indexes = {r[0] for r in conn.execute("SELECT tbl_name FROM sqlite_master WHERE type = 'index' "
                                          "AND name LIKE 'ix_%'")}
    assert set(CATALOGUE) <= indexes                       # every table has declared indexes
    assert reg.schema(GOV).immutable
    assert reg.load_all_schemas().created == []             # loading again changes nothing
    # every creation was a decision, written down
    decisions = reg.query_rows(GOV, {"decision_type": "approval"})
    assert {d["table_name"] for d in decisions} == set(CATALOGUE)
    assert all(d["decision_maker"].startswith("registry (automatic") for d in decisions)


def test_the_specification_example_queries_return_the_right_rows(reg):
    now = datetime.now(timezone.utc)
    reg.insert_rows(PLAYBOOKS, [
        {"playbook_name": "restart_pool", "success_rate": 0.95, "total_runs": 40, "trust_score": 0.9},
        {"playbook_name": "flush_cache", "success_rate": 0.80, "total_runs": 10, "trust_score": 0.75},
        {"playbook_name": "untrusted", "success_rate": 0.99, "total_runs": 2, "trust_score": 0.4}])
    reg.insert_rows(LOGS, [
        {"execution_id": "e1", "command_type": "deploy", "component": "api", "status": "failed",
         "started_at": now - timedelta(hours=1), "linked_playbook_id": "restart_pool"},
        {"execution_id": "e2", "command_type": "deploy", "component": "api", "status": "failed",
         "started_at": now - timedelta(hours=2)},
        {"execution_id": "e3", "command_type": "test", "component": "db", "status": "succeeded",
         "started_at": now, "linked_playbook_id": "flush_cache"}])
    reg.insert_rows("memory_coding_work_orders", [
        {"work_order_id": "w1", "title": "Checkout", "task_type": "feature", "status": "deployed",
         "completed_at": now - timedelta(days=2)},
        {"work_order_id": "w2", "title": "Old", "task_type": "feature", "status": "deployed",
         "completed_at": now - timedelta(days=20)},
        {"work_order_id": "w3", "title": "WIP", "task_type": "bugfix", "status": "in_progress"}])
    reg.insert_rows("memory_verification_suites", [
        {"suite_name": "unit-api", "component_under_test": "api", "last_run_status": "fail", "failed_tests": 3},
        {"suite_name": "e2e", "component_under_test": "web", "last_run_status": "fail", "failed_tests": 9},
        {"suite_name": "unit-db", "component_under_test": "db", "last_run_status": "pass"}])
    reg.insert_rows(GOV, [
        {"decision_type": "approval", "subject": "prod deploy", "decision_maker": "ana", "risk_level": "high",
         "reasoning": "window agreed"},
        {"decision_type": "approval", "subject": "typo fix", "decision_maker": "bo", "risk_level": "low"}])
    reg.insert_rows("memory_compliance_reports", [
        {"title": "GDPR audit", "compliance_framework": "GDPR", "report_type": "audit", "compliance_status": "non_compliant",
         "gaps_identified": ["retention"]},
        {"title": "SOC2", "compliance_framework": "SOC2", "report_type": "audit", "compliance_status": "compliant"}])

    def sql(text):
        return reg.execute_sql(text)

    best = sql("SELECT playbook_name, success_rate, total_runs FROM memory_self_healing_playbooks "
               "WHERE trust_score > 0.7 ORDER BY success_rate DESC")
    assert [r["playbook_name"] for r in best] == ["restart_pool", "flush_cache"]
    failed = sql("SELECT * FROM memory_execution_logs WHERE status = 'failed' AND linked_playbook_id IS NOT NULL "
                 "ORDER BY started_at DESC")
    assert [r["execution_id"] for r in failed] == ["e1"]
    deployed = sql("SELECT title, affected_files, deployment_impact FROM memory_coding_work_orders "
                   "WHERE status = 'deployed' AND completed_at > DATE('now', '-7 days')")
    assert [r["title"] for r in deployed] == ["Checkout"]
    failing = sql("SELECT suite_name, component_under_test, failed_tests FROM memory_verification_suites "
                  "WHERE last_run_status = 'fail' ORDER BY failed_tests DESC")
    assert [r["suite_name"] for r in failing] == ["e2e", "unit-api"]
    high = sql("SELECT subject, decision_maker, reasoning FROM memory_governance_decisions "
               "WHERE risk_level = 'high' AND created_at > DATE('now', '-30 days')")
    assert [r["subject"] for r in high] == ["prod deploy"]
    gaps = sql("SELECT compliance_framework, gaps_identified FROM memory_compliance_reports "
               "WHERE compliance_status = 'non_compliant'")
    assert gaps == [{"compliance_framework": "GDPR", "gaps_identified": '["retention"]'}]
    # and the same through query_rows
    assert [r["playbook_name"] for r in reg.query_rows(PLAYBOOKS, {"trust_score": {"gt": 0.7}},
                                                       order_by="-success_rate")] == ["restart_pool", "flush_cache"]
    with pytest.raises(QueryError, match="only reading"):
        sql("DELETE FROM memory_execution_logs")


# --- schema files -----------------------------------------------------------------

@pytest.mark.parametrize("text, field, reason", [
    ("fields:\n  - {name: a, type: strang}\n", "a", "unknown type 'strang'"),
    ("fields:\n  - {name: a, type: string, colour: red}\n", "a", "unknown key 'colour'"),
    ("fields:\n  - {name: a, type: string}\n  - {name: A, type: integer}\n", "A", "duplicate field"),
    ("fields:\n  - {name: a, type: integer, default: lots}\n", "a", "bad default 'lots'"),
    ("fields:\n  - {name: a, type: string, allowed: [x, y], default: z}\n", "a", "not among the allowed"),
    ("fields:\n  - {name: a, type: string}\nindexes:\n  - {fields: [b]}\n", "b", "index on an unknown field"),
    ("fields:\n  - {name: 1a, type: string}\n", None, "not a valid field name"),
    ("fields:\n  - {name: a, type: integer, min: 5, max: 1}\n", "a", "min (5) is greater than max (1)"),
    ("fields:\n  - {name: a, type: string, min: 1}\n", "a", "min: is for integer and float"),
    ("fields:\n  - {name: a, type: string, required: yes please}\n", "a", "must be true or false"),
    ("fields:\n  - {name: a, type: float, primary_key: true}\n", "a", "cannot be the primary key"),
    ("fields:\n  - {name: a, type: string, generated: true}\n", "a", "cannot be generated"),
    ("fields:\n  - {name: a, type: string, nullable: false, default: null}\n", "a", "not nullable"),
    ("fields:\n  - {name: a, type: string, allowed: [x], enum: [y]}\n", "a", "disagree"),
])
def test_every_schema_problem_names_the_file_field_and_reason(tmp_path, text, field, reason):
    p = write_schema(tmp_path, "t.yaml", "table: t\n" + text)
    schema, problems = read_schema_file(p)
    assert schema is None
    assert any(reason in pr.reason and pr.field == field and pr.file == str(p) for pr in problems), problems
    assert str(p) in str(problems[0])


def test_bad_table_names_keys_and_yaml(tmp_path):
    for text, reason in [("table: drop table x\nfields: [{name: a, type: string}]\n", "not a valid table name"),
                         ("table: _registry_x\nfields: [{name: a, type: string}]\n", "reserved"),
                         ("table: t\nfeilds: [{name: a, type: string}]\n", "unknown key 'feilds'"),
                         ("table: t\nfields: [{name: a, type: string\n", "line 3: malformed YAML"),
                         ("- just\n- a list\n", "expected a mapping")]:
        p = write_schema(tmp_path, "x.yaml", text)
        _, problems = read_schema_file(p)
        assert any(reason in str(pr) for pr in problems), (text, problems)


def test_good_schemas_load_beside_bad_ones_and_problems_are_reported(tmp_path):
    mine = tmp_path / "schemas"
    write_schema(mine, "notes.yaml", GOOD)
    write_schema(mine, "broken.yaml", "table: broken\nfields:\n  - {name: a, type: nope}\n")
    write_schema(mine, "dup.yaml", GOOD.replace("description: Notes", "description: again"))
    with TableRegistry(tmp_path / "r.db", [mine], catalogue=False) as r:
        report = r.load_all_schemas()
        assert r.tables() == [GOV, "my_notes"]
        assert "my_notes" in report.created
        text = "\n".join(map(str, report.problems))
        assert "broken.yaml: broken.a: unknown type 'nope'" in text
        assert "also declared in" in text
        # the stored source is not an absolute path
        assert r.schema("my_notes").source == "schemas/dup.yaml" or r.schema("my_notes").source == "schemas/notes.yaml"


def test_a_schema_without_a_primary_key_gets_a_generated_id():
    schema, problems = parse_schema({"table": "t", "fields": [{"name": "a", "type": "string"}]}, "x")
    assert not problems and schema.primary_key.name == "id" and schema.primary_key.generated == "insert"
    _, problems = parse_schema({"table": "t", "fields": [{"name": "id", "type": "string"}]}, "x")
    assert "mark it primary_key" in str(problems[0])


# --- values -------------------------------------------------------------------------

@pytest.mark.parametrize("ftype, given, stored", [
    ("uuid", "0190A5B4-7C1D-7E2F-8A3B-4C5D6E7F8091", "0190a5b4-7c1d-7e2f-8a3b-4c5d6e7f8091"),
    ("string", "héllo", "héllo"),
    ("text", "", ""),
    ("json", {"b": [1, 2.5, None], "a": True}, '{"a":true,"b":[1,2.5,null]}'),
    ("json", "plain text", '"plain text"'),
    ("datetime", "2025-01-02T03:04:05Z", "2025-01-02T03:04:05.000000Z"),
    ("datetime", "2025-01-02T05:04:05.25+02:00", "2025-01-02T03:04:05.250000Z"),
    ("datetime", "2025-01-02 03:04", "2025-01-02T03:04:00.000000Z"),
    ("datetime", datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5))), "2025-01-02T08:04:05.000000Z"),
    ("datetime", date(2025, 1, 2), "2025-01-02T00:00:00.000000Z"),
    ("date", "2025-01-02", "2025-01-02"),
    ("date", date(2025, 1, 2), "2025-01-02"),
    ("float", 3, 3.0),
    ("float", 0.5, 0.5),
    ("integer", 7, 7),
    ("integer", 7.0, 7),
    ("boolean", True, 1),
    ("boolean", 0, 0),
])
def test_every_type_stores_its_values(ftype, given, stored):
    assert values.coerce(ftype, given) == stored


@pytest.mark.parametrize("ftype, bad, why", [
    ("uuid", "not-a-uuid", "not a UUID"), ("uuid", 12, "expected a UUID"),
    ("string", 5, "expected text"), ("text", b"x", "expected text"),
    ("json", float("nan"), "cannot be stored as JSON: NaN and infinity have no JSON form"),
    ("json", {"a": object()}, "cannot be stored as JSON: object is not a JSON value"),
    ("json", {1: "a", "b": 2}, "cannot be stored as JSON: keys must be text, numbers"),
    ("json", {(1, 2): "a"}, "cannot be stored as JSON: keys must be text, numbers"),
    ("datetime", "yesterday", "not an ISO-8601"), ("datetime", 1700000000, "expected an ISO-8601"),
    ("datetime", "2025-02-30T00:00:00Z", "not an ISO-8601"),
    ("date", "2025-13-01", "not an ISO-8601 date"), ("date", datetime(2025, 1, 1), "got a date and time"),
    ("float", "1.5", "expected a number"), ("float", True, "expected a number"), ("float", float("inf"), "finite"),
    ("integer", 1.5, "fraction"), ("integer", "3", "expected an integer"), ("integer", True, "expected an integer"),
    ("integer", 2 ** 63, "64-bit"),
    ("boolean", "true", "expected true or false"), ("boolean", 2, "expected true or false"),
    ("datetime", "2025-01-02T03:04:05.000+01Z", "not an ISO-8601"), ("datetime", "2025-01-02T03:04+01Z", "not an ISO"),
    ("datetime", "0001-01-01T00:00:00+01:00", "outside the years"), ("float", 10 ** 400, "too large for a float"),
    ("string", "a\udcff", "not valid text"), ("json", {"a": "\udcff"}, "not valid text"),
    # too many digits for str(): these raised a plain ValueError from the message itself
    pytest.param("integer", 2 ** 20000, "a 20001-bit integer is outside the 64-bit", id="integer-20001-bits"),
    pytest.param("float", -(2 ** 20000), "a 20001-bit integer is too large for a float", id="float-20001-bits"),
])
def test_every_type_refuses_bad_values(ftype, bad, why):
    with pytest.raises(values.Bad, match=why):
        values.coerce(ftype, bad)


def test_json_is_stored_as_compact_sorted_text_and_a_loop_is_refused():
    stored = values.coerce("json", {"b": [1, None, True], "a": {"z": "héllo", "y": 1e-07}, "c": 2 ** 70})
    assert stored == '{"a":{"y":1e-07,"z":"héllo"},"b":[1,null,true],"c":1180591620717411303424}'
    loop: list = []
    loop.append(loop)
    with pytest.raises(values.Bad, match="cannot be stored as JSON: it contains itself, or nests too deeply"):
        values.coerce("json", loop)


# --- writes -------------------------------------------------------------------------

@pytest.fixture
def notes(tmp_path):
    mine = tmp_path / "schemas"
    write_schema(mine, "notes.yaml", GOOD)
    r = TableRegistry(tmp_path / "n.db", [mine], catalogue=False, actor="tester")
    r.load_all_schemas()
    yield r
    r.close()


def test_insert_fills_defaults_generated_values_and_copies_mutable_defaults(notes):
    a = notes.insert_row("my_notes", {"title": "A", "seen_at": "2025-01-02T03:04:05+01:00"})
    b = notes.insert_row("my_notes", {"title": "B"})
    assert a["mood"] == "good" and a["score"] == 5 and a["done"] is False and a["tags"] == []
    assert a["seen_at"] == "2025-01-02T02:04:05.000000Z"
    assert a["id"] != b["id"] and len(a["id"]) == 36 and a["created_at"] == a["updated_at"]
    a["tags"].append("mutated")
    assert b["tags"] == [] and notes.get_row("my_notes", a["id"])["tags"] == []
    assert notes.get_row("my_notes", a["id"]) == {**a, "tags": []}


def test_an_invalid_row_lists_every_bad_field_and_stores_nothing(notes):
    with pytest.raises(ValidationError) as err:
        notes.insert_row("my_notes", {"mood": "meh", "score": 11, "ratio": "high", "done": "yes", "colour": 1})
    fields = {f for _, f, _ in err.value.problems}
    assert fields == {"title", "mood", "score", "ratio", "done", "colour"}
    for word in ("title: required", "mood: 'meh' is not one of the allowed values (good, bad)",
                 "score: 11 is above the maximum 10", "ratio: expected a number", "colour: unknown field"):
        assert word in str(err.value)
    assert notes.count_rows("my_notes") == 0


def test_a_batch_is_all_or_nothing_and_names_the_bad_rows(notes):
    with pytest.raises(ValidationError) as err:
        notes.insert_rows("my_notes", [{"title": "ok"}, {"title": "bad", "score": -1}, {"title": None}])
    assert [(r, f) for r, f, _ in err.value.problems] == [(1, "score"), (2, "title")]
    assert "row 1: score: -1 is below the minimum 0" in str(err.value)
    with pytest.raises(ValidationError, match="row 2: title: 'x' repeats row 0 of this batch"):
        notes.insert_rows("my_notes", [{"title": "x"}, {"title": "y"}, {"title": "x"}])
    assert notes.count_rows("my_notes") == 0
    notes.insert_row("my_notes", {"title": "x"})
    with pytest.raises(ValidationError, match="title: 'x' is already stored"):
        notes.insert_row("my_notes", {"title": "x"})
    with pytest.raises(ValidationError, match="a row is a mapping"):
        notes.insert_rows("my_notes", ["title"])
    assert notes.count_rows("my_notes") == 1


def test_upsert_update_get_and_delete(notes):
    a = notes.upsert_row("my_notes", {"title": "A", "score": 1})
    again = notes.upsert_row("my_notes", {"title": "A", "score": 2})          # on the unique title
    assert again["id"] == a["id"] and again["score"] == 2 and notes.count_rows("my_notes") == 1
    by_id = notes.upsert_row("my_notes", {"id": a["id"], "body": "text"})
    assert by_id["body"] == "text" and by_id["score"] == 2 and by_id["updated_at"] >= a["updated_at"]
    notes.insert_rows("my_notes", [{"title": f"t{i}", "score": i} for i in range(5)])
    assert notes.update_rows("my_notes", {"score": {"lt": 3}}, {"done": True}) == 4
    assert notes.count_rows("my_notes", {"done": True}) == 4
    with pytest.raises(ValidationError, match="is above the maximum"):
        notes.update_rows("my_notes", {"title": "t4"}, {"score": 99})
    with pytest.raises(ValidationError, match="primary key of a row is never changed"):
        notes.update_rows("my_notes", {"title": "t4"}, {"id": a["id"]})
    with pytest.raises(ValidationError, match="already stored"):
        notes.update_rows("my_notes", {"title": "t4"}, {"title": "t3"})
    with pytest.raises(QueryError, match="all_rows=True"):
        notes.delete_rows("my_notes", {})
    assert notes.delete_rows("my_notes", {"title": {"in": ["t0", "t1"]}}) == 2
    with pytest.raises(NotFoundError):
        notes.get_row("my_notes", "0190a5b4-7c1d-7e2f-8a3b-4c5d6e7f8091")
    assert notes.delete_rows("my_notes", {}, all_rows=True) == 4


def test_governance_decisions_are_immutable(reg, tmp_path):
    row = reg.insert_row(GOV, {"decision_type": "approval", "subject": "x", "decision_maker": "me"})
    with pytest.raises(ValidationError, match="immutable"):
        reg.update_rows(GOV, {"id": row["id"]}, {"reasoning": "changed"})
    with pytest.raises(ValidationError, match="immutable"):
        reg.delete_rows(GOV, {"id": row["id"]})
    with pytest.raises(ValidationError, match="immutable"):
        reg.upsert_row(GOV, {"id": row["id"], "reasoning": "changed"})
    conn = apsw.Connection(str(tmp_path / "grace.db"))          # plain SQL is refused by triggers too
    for sql in (f"UPDATE {GOV} SET reasoning = 'x'", f"DELETE FROM {GOV}"):
        with pytest.raises(apsw.ConstraintError, match="immutable"):
            conn.execute(sql)
    conn.close()
    assert reg.get_row(GOV, row["id"])["reasoning"] is None


# --- queries ------------------------------------------------------------------------

@pytest.fixture
def seeded(reg):
    reg.insert_rows(PLAYBOOKS, [
        {"playbook_name": "db", "trigger_conditions": {"error_type": "ConnectionError", "service": "db"},
         "actions": [{"step": 1, "action": "restart_db_pool"}], "success_rate": 0.9, "risk_level": "low"},
        {"playbook_name": "cache", "trigger_conditions": {"error_type": "Timeout", "tags": ["redis", "prod"]},
         "success_rate": 0.5, "risk_level": "medium", "requires_approval": True},
        {"playbook_name": "disk", "trigger_conditions": {"error_type": "DiskFull"}, "success_rate": 0.7,
         "risk_level": "high", "summary": "frees 50% of /var"},
        {"playbook_name": "nothing", "risk_level": "low"}])
    return reg


def names(rows):
    return sorted(r["playbook_name"] for r in rows)


@pytest.mark.parametrize("filters, expected", [
    ({"risk_level": "low"}, ["db", "nothing"]),
    ({"risk_level": {"eq": "low"}}, ["db", "nothing"]),
    ({"risk_level": {"ne": "low"}}, ["cache", "disk"]),
    ({"success_rate": {"lt": 0.7}}, ["cache", "nothing"]),
    ({"success_rate": {"le": 0.7}}, ["cache", "disk", "nothing"]),
    ({"success_rate": {"gt": 0.7}}, ["db"]),
    ({"success_rate": {"ge": 0.7, "lt": 0.9}}, ["disk"]),
    ({"risk_level": {"in": ["medium", "high"]}}, ["cache", "disk"]),
    ({"risk_level": {"not_in": ["medium", "high"]}}, ["db", "nothing"]),
    ({"summary": {"is_null": False}}, ["disk"]),
    ({"summary": {"is_null": True}}, ["cache", "db", "nothing"]),
    ({"summary": None}, ["cache", "db", "nothing"]),
    ({"playbook_name": {"like": "d%"}}, ["db", "disk"]),
    ({"summary": {"contains": "50%"}}, ["disk"]),
    ({"requires_approval": True}, ["cache"]),
    ({"trigger_conditions": {"error_type": "ConnectionError"}}, ["db"]),                 # the spec's form
    ({"trigger_conditions": {"contains": {"error_type": "Timeout"}}}, ["cache"]),
    ({"trigger_conditions": {"contains": {"tags": ["prod"]}}}, ["cache"]),               # array containment
    ({"trigger_conditions": {"contains": {"tags": "prod"}}}, []),                       # not at depth (as @>)
    ({"actions": {"contains": [{"action": "restart_db_pool"}]}}, ["db"]),
    ({"trigger_conditions": {"contains": {}}}, ["cache", "db", "disk", "nothing"]),
    ({"or": [{"risk_level": "high"}, {"success_rate": {"ge": 0.9}}]}, ["db", "disk"]),
    ({"risk_level": "low", "or": [{"playbook_name": "db"}, {"playbook_name": "disk"}]}, ["db"]),
    ({"playbook_name": "x' OR '1'='1"}, []),                                             # a value, bound
])
def test_every_filter_operator(seeded, filters, expected):
    assert names(seeded.query_rows(PLAYBOOKS, filters)) == expected


def test_array_membership_and_order_limit_offset(seeded):
    seeded.insert_row("memory_documents", {"title": "Shop", "key_topics": ["ecommerce", "sales"]})
    seeded.insert_row("memory_documents", {"title": "HR", "key_topics": ["people"]})
    found = seeded.query_rows("memory_documents", {"key_topics": {"contains": "ecommerce"}})
    assert [r["title"] for r in found] == ["Shop"]
    rows = seeded.query_rows(PLAYBOOKS, order_by=["-success_rate", "playbook_name"], limit=2, offset=1)
    assert [r["playbook_name"] for r in rows] == ["disk", "cache"]
    assert [r["playbook_name"] for r in seeded.query_rows(PLAYBOOKS, order_by="success_rate desc", limit=1)] == \
        ["db"]


@pytest.mark.parametrize("filters, order_by, message", [
    ({"nope": 1}, None, "unknown field 'nope'"),
    ({'risk_level" = 1; DROP TABLE x; --': 1}, None, "unknown field"),
    ({"risk_level": {"approx": 1}}, None, "unknown operator approx"),
    ({"success_rate": {"gt": "high"}}, None, "expected a number"),
    ({"risk_level": {"in": "low"}}, None, "expected a list"),
    ({"actions": {"lt": 1}}, None, "does not apply"),
    ({"or": []}, None, "non-empty list"),
    (None, "success_rate; DROP TABLE x", "order_by"),
    (None, "nope", "unknown field 'nope'"),
])
def test_bad_queries_are_refused_with_the_reason(seeded, filters, order_by, message):
    with pytest.raises(QueryError, match=message):
        seeded.query_rows(PLAYBOOKS, filters, order_by=order_by)
    with pytest.raises(QueryError):
        seeded.query_rows(PLAYBOOKS, limit=-1)


def test_json_containment_follows_postgres_rules():
    cases = [({"a": 1, "b": [1, 2]}, {"a": 1}, True), ({"a": 1}, {"a": 2}, False),
             ({"a": {"b": {"c": 1}, "d": 2}}, {"a": {"b": {}}}, True), ([1, 2, [1, 3]], [1, 3], False),
             ([1, 2, [1, 3]], [[1, 3]], True), ([1, 2], 1, True), ({"a": [1, 2]}, {"a": 1}, False),
             ([True], [1], False), (1, 1, True), ("x", ["x"], False)]
    for doc, needle, want in cases:
        assert qb.json_contains(json.dumps(doc), json.dumps(needle)) == int(want), (doc, needle)
    assert qb.json_contains(None, "{}") == 0 and qb.json_contains("not json", "{}") == 0


# --- evolution and governance -------------------------------------------------------

def test_added_nullable_fields_are_applied_and_riskier_changes_wait(notes, tmp_path):
    mine = tmp_path / "schemas"
    notes.insert_row("my_notes", {"title": "kept", "body": "old"})
    write_schema(mine, "notes.yaml", with_fields(GOOD, "  - {name: colour, type: string}\n"))
    report = notes.load_all_schemas()
    assert report.altered == ["my_notes"] and notes.get_row("my_notes", notes.query_rows("my_notes")[0]["id"])[
        "colour"] is None
    # a required field, a narrower allowed list: medium; waits
    write_schema(mine, "notes.yaml", with_fields(GOOD.replace("enum: [good, bad]", "enum: [good]"),
                 "  - {name: colour, type: string}\n  - {name: owner, type: string, required: true, default: me}\n"))
    report = notes.load_all_schemas()
    assert report.altered == [] and [p["risk"] for p in report.proposed] == ["medium"]
    assert "owner" not in notes.schema("my_notes").by_name
    assert notes.load_all_schemas().proposed[0]["id"] == report.proposed[0]["id"]     # not proposed twice
    approved = notes.approve(report.proposed[0]["id"], approver="lead", reason="ok")
    assert approved["status"] == "applied" and approved["decided_by"] == "lead"
    assert notes.query_rows("my_notes")[0]["owner"] == "me"                           # the default fills old rows
    decisions = notes.query_rows(GOV, {"table_name": "my_notes"}, order_by="created_at")
    assert [(d["decision_type"], d["decision_outcome"]) for d in decisions][-2:] == \
        [("escalation", "pending"), ("approval", "approved")]
    assert decisions[-1]["decision_maker"] == "lead" and decisions[-1]["reasoning"] == "ok"


def test_dropping_or_retyping_a_field_is_high_risk_and_loses_nothing(notes, tmp_path):
    notes.insert_rows("my_notes", [{"title": "a", "body": "first", "score": 3}, {"title": "b", "score": 4}])
    changed = GOOD.replace("  - {name: body, type: text}\n", "").replace(
        "{name: score, type: integer, min: 0, max: 10, default: 5}", "{name: score, type: float, default: 5}")
    p = notes.propose_schema(yaml_load(changed), proposed_by="dev", reason="cleanup")
    assert p["risk"] == "high" and p["status"] == "pending"
    kinds = {(c["kind"], c["field"]) for c in p["changes"]}
    assert ("drop_field", "body") in kinds and ("retype_field", "score") in kinds
    assert "body" in notes.schema("my_notes").by_name                                 # nothing applied yet
    notes.approve(p["id"])
    rows = {r["title"]: r for r in notes.query_rows("my_notes")}
    assert rows["a"]["score"] == 3.0 and isinstance(rows["a"]["score"], float) and "body" not in rows["a"]
    conn = apsw.Connection(str(notes.path))
    archived = conn.execute("SELECT table_name, field, value_json FROM _registry_archive").fetchall()
    assert archived == [("my_notes", "body", '"first"')]
    conn.close()
    assert [e["event"] for e in notes.history("my_notes")][-3:] == \
        ["proposed (change, high risk)", "schema rebuild", "applied"]


def test_a_change_the_stored_rows_cannot_take_is_refused_and_nothing_changes(notes):
    notes.insert_rows("my_notes", [{"title": "a", "mood": "bad"}, {"title": "b", "body": "not a number"}])
    narrowed = GOOD.replace("enum: [good, bad]", "enum: [good]")
    p = notes.propose_schema(yaml_load(narrowed))
    with pytest.raises(ValidationError, match="mood: is not among the allowed values in 1 stored rows"):
        notes.approve(p["id"])
    retyped = GOOD.replace("{name: body, type: text}", "{name: body, type: integer}")
    p2 = notes.propose_schema(yaml_load(retyped))
    with pytest.raises(ValidationError, match="'not a number' cannot become integer"):
        notes.approve(p2["id"])
    assert notes.proposal(p["id"])["status"] == "pending" and notes.count_rows("my_notes") == 2
    assert notes.schema("my_notes").by_name["body"].type == "text"
    rejected = notes.reject(p2["id"], reason="no")
    assert rejected["status"] == "rejected"
    with pytest.raises(SchemaError, match="not pending"):
        notes.approve(p2["id"])
    assert notes.query_rows(GOV, {"decision_type": "denial"})[0]["reasoning"] == "no"


def test_a_proposal_made_stale_by_another_change_is_refused(notes):
    a = notes.propose_schema(yaml_load(GOOD.replace("enum: [good, bad]", "enum: [good]")))
    notes.propose_schema(yaml_load(with_fields(GOOD, "  - {name: extra, type: string}\n")))        # low: applied at once
    with pytest.raises(SchemaError, match="has changed since it was proposed"):
        notes.approve(a["id"])


def test_new_tables_are_low_risk_and_governance_tables_are_high(reg, tmp_path):
    p = reg.propose_schema({"table": "t_new", "fields": [{"name": "a", "type": "string"}]})
    assert (p["risk"], p["status"]) == ("low", "applied") and "t_new" in reg.tables()
    gov = reg.schema(GOV).declared()
    gov["fields"].append({"name": "note", "type": "string"})
    p = reg.propose_schema(gov)
    assert (p["risk"], p["status"]) == ("high", "pending")
    with pytest.raises(SchemaError, match="nothing to change"):
        reg.propose_schema(reg.schema(GOV))


def test_trust_scores_are_recomputed_from_outcomes(reg):
    """Outcome counts are the usage factor (Laplace's rule); the score is the
    weighted sum of the factors explain_trust reports."""
    reg.insert_rows(PLAYBOOKS, [{"playbook_name": "a", "successful_runs": 9, "total_runs": 10},
                                {"playbook_name": "b"}])
    assert reg.recompute_trust(PLAYBOOKS, as_of="2030-01-01T00:00:00Z") == 2
    rows = {r["playbook_name"]: r for r in reg.query_rows(PLAYBOOKS)}
    assert rows["a"]["success_rate"] == pytest.approx(0.9)
    for name, usage in (("a", 10 / 12), ("b", 0.5)):
        ex = reg.explain_trust(PLAYBOOKS, rows[name]["id"], as_of="2030-01-01T00:00:00Z")
        assert ex["factors"]["usage"]["value"] == pytest.approx(usage)
        assert rows[name]["trust_score"] == ex["trust_score"] == pytest.approx(
            sum(f["value"] * f["weight"] for f in ex["factors"].values()), abs=1e-6)
    agent = reg.insert_row("memory_sub_agents", {"agent_id": "x", "agent_name": "X", "tasks_completed": 3,
                                                 "tasks_failed": 1})
    reg.recompute_trust("memory_sub_agents")
    assert reg.explain_trust("memory_sub_agents", agent["id"])["factors"]["usage"]["value"] == pytest.approx(4 / 6)
    with pytest.raises(SchemaError, match="declares no trust_score"):
        reg.recompute_trust("memory_llm_prompts")


def with_fields(text: str, fields: str) -> str:
    """A schema text with more fields at the end of its field list."""
    return text.replace("indexes:", fields + "indexes:")


def yaml_load(text: str) -> dict:
    import yaml

    return yaml.safe_load(text)


# --- events -------------------------------------------------------------------------

def read_events(path: Path) -> list[dict]:
    from chronoledger.chronicle import Chronicle

    ch = Chronicle.open(path)
    try:
        cols = ch.to_numpy()
        return [{"type": t, **json.loads(p)} for t, p in zip(cols["event_type"], cols["payload"])]
    finally:
        ch.close()


def test_every_write_is_published_to_the_event_log(notes, tmp_path):
    a = notes.insert_rows("my_notes", [{"title": "a"}, {"title": "b"}])
    notes.update_rows("my_notes", {"title": "a"}, {"score": 1})
    notes.delete_rows("my_notes", {"title": "b"})
    notes.publish_events()                                   # the publisher thread would, a moment later
    assert notes.pending_events() == 0
    evs = [e for e in read_events(tmp_path / "n.events.cmeta") if e["table"] == "my_notes"]
    assert [(e["type"], e["ids"]) for e in evs] == [
        ("schema_create", [evs[0]["ids"][0]]), ("insert", [a[0]["id"], a[1]["id"]]),
        ("update", [a[0]["id"]]), ("delete", [a[1]["id"]])]
    assert [e["seq"] for e in evs] == sorted(e["seq"] for e in evs)


def test_events_wait_in_the_outbox_while_another_registry_holds_the_log(tmp_path):
    mine = tmp_path / "schemas"
    write_schema(mine, "notes.yaml", GOOD)
    holder = TableRegistry(tmp_path / "n.db", [mine], catalogue=False, log_idle_seconds=60)
    holder.load_all_schemas()
    holder.insert_row("my_notes", {"title": "first"})
    holder.publish_events()                                  # the holder now has the log (and keeps it)
    with TableRegistry(tmp_path / "n.db", actor="other") as other:        # as another process would
        other.insert_row("my_notes", {"title": "while held"})
        assert other.pending_events() >= 1                  # stored, not lost, not yet published
        with pytest.raises(ChronoledgerError, match="another process holds the event log"):
            other.publish_events(wait=False)
    holder.insert_row("my_notes", {"title": "next"})
    holder.publish_events()                                  # the holder publishes everyone's outbox
    assert holder.pending_events() == 0
    holder.close()
    ids = [i for e in read_events(tmp_path / "n.events.cmeta") if e["type"] == "insert" and e["table"] == "my_notes"
           for i in e["ids"]]
    assert len(ids) == len(set(ids)) == 3


def test_an_idle_holder_lets_the_log_go(tmp_path):
    a = TableRegistry(tmp_path / "i.db", catalogue=False, log_idle_seconds=0.05)
    a.propose_schema({"table": "t", "fields": [{"name": "v", "type": "integer"}]})
    a.insert_row("t", {"v": 1})
    b = TableRegistry(tmp_path / "i.db", catalogue=False)
    try:
        b.insert_row("t", {"v": 2})
        b.publish_events()                   # waits at most until a lets go (b's own publisher may beat it to it)
        assert b.pending_events() == 0
    finally:
        b.close()
        a.close()
    evs = [e for e in read_events(tmp_path / "i.events.cmeta") if e["table"] == "t" and e["type"] == "insert"]
    assert len(evs) == 2


def test_a_large_write_is_published_in_parts_that_keep_every_id(tmp_path):
    with TableRegistry(tmp_path / "l.db", catalogue=False) as r:
        r.propose_schema({"table": "t", "fields": [{"name": "v", "type": "integer"}]})
        rows = r.insert_rows("t", [{"v": i} for i in range(2500)])
    evs = [e for e in read_events(tmp_path / "l.events.cmeta") if e["table"] == "t" and e["type"] == "insert"]
    assert [(e["seq"] == evs[0]["seq"], e["part"]) for e in evs] == [(True, 0), (True, 1), (True, 2)]
    unique = {(e["seq"], e["part"]): e["ids"] for e in evs}           # de-duplicated by (seq, part)
    assert sorted(i for ids in unique.values() for i in ids) == sorted(x["id"] for x in rows)


def test_the_registry_refuses_work_once_closed(tmp_path):
    r = TableRegistry(tmp_path / "c.db", catalogue=False)
    r.close()
    with pytest.raises(ChronoledgerError, match="closed"):
        r.query_rows(GOV)


def test_concurrent_writers_in_two_processes_lose_nothing(tmp_path):
    TableRegistry(tmp_path / "c.db").load_all_schemas()
    code = textwrap.dedent(f"""
        import sys
        from chronoledger.tables import TableRegistry
        with TableRegistry({str(tmp_path / 'c.db')!r}) as r:
            for i in range(40):
                r.insert_rows("{LOGS}", [{{"execution_id": f"{{sys.argv[1]}}-{{i}}-{{k}}", "command_type": "t",
                                          "component": "c", "status": "running"}} for k in range(5)])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, tag]) for tag in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with TableRegistry(tmp_path / "c.db") as r:
        assert r.count_rows(LOGS) == 400
        r.publish_events()
        ids = {i for e in read_events(tmp_path / "c.events.cmeta") if e["type"] == "insert" and e["table"] == LOGS
               for i in e["ids"]}
        assert ids == {row["id"] for row in r.query_rows(LOGS)}


def test_a_writer_killed_midway_leaves_whole_batches(tmp_path):
    TableRegistry(tmp_path / "k.db").load_all_schemas()
    code = textwrap.dedent(f"""
        from chronoledger.tables import TableRegistry
        r = TableRegistry({str(tmp_path / 'k.db')!r})
        i = 0
        while True:
            r.insert_rows("{LOGS}", [{{"execution_id": f"{{i}}-{{k}}", "command_type": "t", "component": "c",
                                      "status": "running"}} for k in range(50)])
            i += 1
            print(i, flush=True)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    for _ in range(5):
        p.stdout.readline()
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    with TableRegistry(tmp_path / "k.db") as r:
        n = r.count_rows(LOGS)
        assert n >= 250 and n % 50 == 0
        r.publish_events()
        ids = [i for e in read_events(tmp_path / "k.events.cmeta") if e["type"] == "insert" and e["table"] == LOGS
               for i in e["ids"]]
        assert set(ids) == {row["id"] for row in r.query_rows(LOGS)}       # every stored row was published


def test_an_unknown_table_or_proposal_is_a_clear_error(reg):
    with pytest.raises(NotFoundError, match="no table 'nope'"):
        reg.query_rows("nope")
    with pytest.raises(NotFoundError, match="no proposal"):
        reg.approve("p-none")
    with pytest.raises(NotFoundError, match="no history"):
        reg.history("nope")


def test_a_database_another_program_made_is_refused_untouched_unless_adopted(tmp_path):
    path = tmp_path / "o.db"
    conn = apsw.Connection(str(path))
    conn.execute("CREATE TABLE memory_media (id TEXT, other TEXT); INSERT INTO memory_media VALUES ('1', 'kept');"
                 "CREATE TABLE their_own (x INTEGER)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(SchemaError, match="another program made this database"):
        TableRegistry(path)
    # adopting checks the declared table against the catalogue's memory_media: it does not match
    with pytest.raises(SchemaError, match=r"not adopted, nothing was written:(.|\n)*memory_media.other: a column of "
                                          r"the table \(TEXT\) that the schema does not declare"):
        TableRegistry(path, adopt=True)
    assert path.read_bytes() == before
    conn = apsw.Connection(str(path))
    conn.execute("DROP TABLE memory_media")
    conn.close()
    with TableRegistry(path, adopt=True) as r:          # a table no schema declares is left alone
        assert r.adoption.unmanaged == ["their_own"] and r.adoption.tables == {}
        report = r.load_all_schemas()
        assert report.problems == [] and len(r.tables()) == len(CATALOGUE)
    conn = apsw.Connection(str(path))
    assert conn.execute("SELECT count(*) FROM their_own").fetchall() == [(0,)]
    conn.close()


def test_an_event_log_in_a_missing_folder_is_refused_at_once(tmp_path):
    from chronoledger.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        TableRegistry(tmp_path / "e.db", events_log=tmp_path / "nope" / "e.cmeta")


# --- regressions found in review -----------------------------------------------------

def test_nothing_declared_in_a_schema_becomes_code(tmp_path):
    marker = tmp_path / "ran"
    evil = f"x' + str(__import__('os').system('touch {marker}')) + '"
    schema = {"table": "t", "version": 1, "nullable_rule": "chronoledger", "fields": [{"name": "s", "type": "string", "allowed": [evil, "won't fix"]},
                                                    {"name": "n", "type": "float", "max": 1}]}
    with TableRegistry(tmp_path / "x.db", catalogue=False) as r:
        r.propose_schema(schema)
        assert r.insert_row("t", {"s": "won't fix"})["s"] == "won't fix"
        with pytest.raises(ValidationError, match="not one of the allowed values"):
            r.insert_row("t", {"s": "other"})
    assert not marker.exists()
    _, problems = parse_schema({"table": "t", "fields": [{"name": "n", "type": "float", "max": float("inf")}]}, "x")
    assert "must be a finite number" in str(problems[0])
    _, problems = parse_schema({"table": "t", "fields": [{"name": "a\n", "type": "string"}]}, "x")
    assert "not a valid field name" in str(problems[0])


def test_unique_rules_hold_whatever_the_names(tmp_path):
    with TableRegistry(tmp_path / "u.db", catalogue=False) as r:
        r.propose_schema({"table": "a", "fields": [{"name": "b_c", "type": "string", "unique": True}]})
        r.propose_schema({"table": "a_b", "fields": [{"name": "c", "type": "string", "unique": True}]})
        for table, field in (("a", "b_c"), ("a_b", "c")):
            r.insert_row(table, {field: "same"})
            with pytest.raises(ValidationError, match="already stored"):
                r.insert_row(table, {field: "same"})
        # a named index that becomes unique is rebuilt as unique
        base = {"table": "n", "fields": [{"name": "k", "type": "string"}], "indexes": [{"fields": ["k"], "name": "ix_k"}]}
        r.propose_schema(base)
        p = r.propose_schema({**base, "indexes": [{"fields": ["k"], "name": "ix_k", "unique": True}]})
        r.approve(p["id"])
        r.insert_row("n", {"k": "v"})
        with pytest.raises(ValidationError, match="already stored"):
            r.insert_row("n", {"k": "v"})
    mine = tmp_path / "s"
    write_schema(mine, "a.yaml", "table: Foo\nfields: [{name: a, type: string}]\n")
    write_schema(mine, "b.yaml", "table: foo\nfields: [{name: a, type: string}]\n")
    with TableRegistry(tmp_path / "f.db", [mine], catalogue=False) as r:
        report = r.load_all_schemas()
        assert "Foo" in r.tables() and "foo" not in r.tables()
        assert any("also declared in" in str(p) for p in report.problems)


def test_decisions_made_elsewhere_are_seen_and_a_failed_approval_changes_nothing(notes, tmp_path):
    notes.insert_row("my_notes", {"title": "a", "score": 7})
    p = notes.propose_schema(yaml_load(GOOD.replace("max: 10", "max: 8")))
    with TableRegistry(tmp_path / "n.db", actor="other") as other:
        other.reject(p["id"], reason="no")
    with pytest.raises(SchemaError, match="is rejected, not pending"):
        notes.approve(p["id"])
    p2 = notes.propose_schema(yaml_load(GOOD.replace("max: 10", "max: 8")))
    with pytest.raises(ValidationError):
        notes.approve(p2["id"], reason=42)              # fails inside the transaction: rolled back
    assert notes.schema("my_notes").by_name["score"].max == 10 and notes.proposal(p2["id"])["status"] == "pending"
    notes.insert_row("my_notes", {"title": "b", "score": 9})          # the cache still follows the database
    with TableRegistry(tmp_path / "n.db", actor="other") as other:
        other.delete_rows("my_notes", {"score": {"gt": 5}})
        other.approve(p2["id"])
    with pytest.raises(ValidationError, match="above the maximum 8"):  # the rule approved elsewhere applies here
        notes.insert_row("my_notes", {"title": "c", "score": 9})


def test_a_changed_schema_file_supersedes_its_earlier_proposal(notes, tmp_path):
    mine = tmp_path / "schemas"
    write_schema(mine, "notes.yaml", GOOD.replace("max: 10", "max: 9"))
    first = notes.load_all_schemas().proposed[0]
    write_schema(mine, "notes.yaml", GOOD.replace("max: 10", "max: 8"))
    second = notes.load_all_schemas().proposed[0]
    assert second["id"] != first["id"] and notes.proposal(first["id"])["status"] == "superseded"
    assert [p["id"] for p in notes.proposals(status="pending")] == [second["id"]]


def test_a_rebuild_changes_only_what_the_proposal_changes(notes, tmp_path):
    notes.insert_rows("my_notes", [{"title": "a", "mood": None, "score": 3},
                                   {"title": "b", "tags": None}])
    dropped = GOOD.replace("  - {name: body, type: text}\n", "")
    notes.approve(notes.propose_schema(yaml_load(dropped))["id"])
    rows = {r["title"]: r for r in notes.query_rows("my_notes")}
    assert rows["a"]["mood"] is None and rows["b"]["tags"] is None          # nulls stay null, not the default
    with TableRegistry(tmp_path / "p.db", catalogue=False) as r:
        r.propose_schema({"table": "t", "fields": [{"name": "n", "type": "integer"}]})
        r.insert_row("t", {"n": 2 ** 53 + 1})
        p = r.propose_schema({"table": "t", "fields": [{"name": "n", "type": "float"}]})
        with pytest.raises(ValidationError, match="lose precision"):
            r.approve(p["id"])


def test_a_field_with_a_default_of_now_can_join_an_immutable_table(reg):
    reg.insert_row(GOV, {"decision_type": "approval", "subject": "x", "decision_maker": "me"})
    gov = reg.schema(GOV).declared()
    gov["fields"].append({"name": "reviewed_at", "type": "datetime", "default": "now"})
    p = reg.propose_schema(gov)
    assert p["risk"] == "high"
    reg.approve(p["id"])
    assert all(r["reviewed_at"] for r in reg.query_rows(GOV))


def test_updates_leave_generated_fields_alone_and_inserts_return_what_is_stored(notes):
    a = notes.insert_row("my_notes", {"title": "a", "tags": {1: "x"}})
    assert a["tags"] == {"1": "x"}                       # JSON keys are text, as stored
    for field in ("created_at", "updated_at"):
        with pytest.raises(ValidationError, match="generated"):
            notes.update_rows("my_notes", {"title": "a"}, {field: None})
    again = notes.upsert_row("my_notes", {**a, "body": "b"})   # a whole row back: its generated fields ignored
    assert again["created_at"] == a["created_at"] and again["body"] == "b"


def test_integer_keys_are_never_given_twice(tmp_path):
    with TableRegistry(tmp_path / "i.db", catalogue=False) as r:
        r.propose_schema({"table": "t", "fields": [{"name": "n", "type": "integer", "primary_key": True,
                                                    "generated": True}, {"name": "v", "type": "string"}]})
        first = [x["n"] for x in r.insert_rows("t", [{"v": "a"}, {"v": "b"}])]
        r.delete_rows("t", {"n": first[-1]})
        assert r.insert_row("t", {"v": "c"})["n"] == first[-1] + 1


def test_the_event_log_stays_small_and_two_writers_never_repeat_an_event(tmp_path):
    TableRegistry(tmp_path / "g.db", catalogue=False).close()
    a = TableRegistry(tmp_path / "g.db", catalogue=False)
    b = TableRegistry(tmp_path / "g.db", catalogue=False)
    a.propose_schema({"table": "t", "fields": [{"name": "v", "type": "integer"}]})
    for i in range(300):
        (a if i % 2 else b).insert_row("t", {"v": i})
    b.close()
    a.close()
    evs = [e for e in read_events(tmp_path / "g.events.cmeta") if e["table"] == "t" and e["type"] == "insert"]
    assert len(evs) == 300 and len({e["seq"] for e in evs}) == 300
    assert (tmp_path / "g.events.cmeta").stat().st_size < 300 * 2000


def test_the_registry_is_reachable_from_the_package():
    import chronoledger as cl

    assert cl.TableRegistry is TableRegistry and "TableRegistry" in cl.__all__


def test_every_decision_is_recorded_from_the_first_open(tmp_path):
    with TableRegistry(tmp_path / "g.db", catalogue=False) as r:       # no load_all_schemas first
        r.propose_schema({"table": "t", "fields": [{"name": "v", "type": "integer"}]})
        made = r.query_rows(GOV, {"table_name": "t"})
        assert [(d["decision_type"], d["decision_outcome"]) for d in made] == [("approval", "approved")]
        from chronoledger.tables import governance

        assert all(d["audit_stamp"] == governance.audit_stamp(d) for d in r.query_rows(GOV))
        with pytest.raises(ValidationError, match="created_at: set by the registry"):
            r.insert_row(GOV, {"decision_type": "approval", "subject": "x", "decision_maker": "me",
                               "created_at": "2000-01-01T00:00:00Z"})
    conn = apsw.Connection(str(tmp_path / "f.db"))
    conn.execute(f"CREATE TABLE {GOV} (id TEXT)")
    conn.close()
    with pytest.raises(SchemaError, match="another program made this database"):
        TableRegistry(tmp_path / "f.db")
    with pytest.raises(SchemaError, match=r"memory_governance_decisions.id: declared the primary key but the "
                                          r"table's primary key is not this column"):
        TableRegistry(tmp_path / "f.db", adopt=True)


def test_the_decisions_table_only_gains_fields(reg):
    bare = {"table": GOV, "immutable": False, "fields": [{"name": "v", "type": "string"}]}
    with pytest.raises(SchemaError, match="can only gain fields and indexes; refused: .*drop_field"):
        reg.propose_schema(bare)
    assert reg.schema(GOV).immutable and "decision_maker" in reg.schema(GOV).by_name


def test_a_schema_with_a_broken_relationship_is_skipped(tmp_path):
    mine = tmp_path / "s"
    write_schema(mine, "e.yaml", "table: t_e\nfields:\n  - {name: parent, type: string}\n"
                                 "relationships:\n  - {field: parent, table: nosuch, references: id}\n")
    with TableRegistry(tmp_path / "r.db", [mine], catalogue=False) as r:
        report = r.load_all_schemas()
        assert "t_e" not in r.tables()
        assert any("relationship to unknown table 'nosuch'" in str(p) for p in report.problems)
    from chronoledger.cli import cli

    from _cli import invoke

    out = invoke(cli, ["tables", "validate", str(mine)])
    assert out.exit_code == 1 and "relationship to unknown table 'nosuch'" in out.output and "ok " not in out.output


def test_a_refused_field_is_not_reported_again_by_its_index():
    schema, problems = parse_schema({"table": "t", "fields": [{"name": "n", "type": "integer", "min": 0,
                                                                "default": -1}],
                                     "indexes": [{"fields": ["n"]}]}, "x")
    assert [p.reason for p in problems] == ["default -1 is outside min/max"]


def test_table_view_and_index_names_share_one_namespace_that_ignores_case(tmp_path):
    """SQLite refuses a table and an index (or a view) of one name: each clash
    is a SchemaError naming the file, the table and the name, before any SQL
    runs (it was an unhandled apsw.SQLError), and nothing changes."""
    mine = tmp_path / "s"
    a = write_schema(mine, "a.yaml", "table: a\nfields:\n  - {name: v, type: integer}\n"
                                     "indexes:\n  - {name: b, fields: [v]}\n")
    with TableRegistry(tmp_path / "n.db", [mine], catalogue=False) as r:
        r.propose_schema(a)
        r.insert_row("a", {"v": 1})
        conn = apsw.Connection(str(tmp_path / "n.db"))
        conn.execute("CREATE VIEW Some_View AS SELECT v FROM a")
        conn.close()
        before = sorted(r.tables())
        for name, text, why in [
            ("b.yaml", "table: b\nfields:\n  - {name: w, type: integer}\n", "table name b is taken by index b of table a"),
            ("B2.yaml", "table: B\nfields:\n  - {name: w, type: integer}\n", "table name B is taken by index b of table a"),
            ("c.yaml", "table: c\nfields:\n  - {name: w, type: integer}\nindexes:\n  - {name: A, fields: [w]}\n",
             "index name A is taken by table a"),
            ("d.yaml", "table: d\nfields:\n  - {name: w, type: integer}\nindexes:\n  - {name: D, fields: [w]}\n",
             "index name D is the table's own name"),
            ("e.yaml", "table: e\nfields:\n  - {name: w, type: integer}\nindexes:\n  - {name: some_view, fields: [w]}\n",
             "index name some_view is taken by view Some_View"),
            ("v.yaml", "table: SOME_VIEW\nfields:\n  - {name: w, type: integer}\n",
             "table name SOME_VIEW is taken by view Some_View"),
        ]:
            f = write_schema(mine, name, text)
            table = text.split("\n")[0].split(": ")[1]
            with pytest.raises(SchemaError, match=re.escape(f"{f}: table {table}: {why}")):
                r.propose_schema(f)
            assert sorted(r.tables()) == before
        # a schema file loaded with the others: the problem names the file and the table once
        report = r.load_all_schemas()
        assert any(str(p).endswith("c.yaml: c: index name A is taken by table a (SQLite keeps table, view and "
                                   "index names in one namespace that ignores case)") for p in report.problems)
        # a change to the table keeps its own index
        r.propose_schema({"table": "a", "fields": [{"name": "v", "type": "integer"},
                                                   {"name": "n", "type": "string", "nullable": True}],
                          "indexes": [{"name": "b", "fields": ["v"]}]})
        assert [f.name for f in r.schema("a").fields] == ["id", "v", "n"]


def test_a_name_taken_between_proposal_and_approval_or_sql_refusing_the_change_is_a_schema_error(tmp_path):
    with TableRegistry(tmp_path / "n.db", catalogue=False) as r:
        r.propose_schema({"table": "t", "fields": [{"name": "v", "type": "integer"}]})
        r.propose_schema({"table": "u", "fields": [{"name": "w", "type": "integer"}]})
        r.insert_row("t", {"v": 1})
        retyped = {"table": "t", "fields": [{"name": "v", "type": "string"}],
                   "indexes": [{"name": "ix_new", "fields": ["v"]}]}
        p = r.propose_schema(retyped)
        assert p["status"] == "pending"
        conn = apsw.Connection(str(tmp_path / "n.db"))
        conn.execute("CREATE INDEX IX_NEW ON u (w)")               # another tool takes the name meanwhile
        with pytest.raises(SchemaError, match=r"<proposal>: table t: index name ix_new is taken by index IX_NEW "
                                              r"of table u"):
            r.approve(p["id"])
        conn.execute("DROP INDEX IX_NEW")
        conn.execute("CREATE VIEW vt AS SELECT v FROM t")         # SQLite then refuses the rebuild's rename
        conn.close()
        with pytest.raises(SchemaError, match=r"n\.db: <proposal>: table t: the change cannot be applied: \S"):
            r.approve(p["id"])                                    # SQLite's own reason follows
        assert r.proposal(p["id"])["status"] == "pending" and r.schema("t").by_name["v"].type == "integer"
        assert r.query_rows("t")[0]["v"] == 1
