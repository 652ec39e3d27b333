"""A Grace user's schema folder, as Grace's own registry reads it (aaron031291/grace_2,
backend/memory_tables/registry.py and schema/*.yaml): the files below are written here in
Grace's form (its relationship syntax, its nullability, its governance table's shape, a
file with ``version: 1`` as two of Grace's have), not copied from Grace."""

import json

import pytest

from chronoledger.errors import SchemaError, ValidationError
from chronoledger.tables import TableRegistry
from chronoledger.tables.schema import parse_schema

from chronoledger.cli import cli

from _cli import invoke
from _tables_data import write_schema

GOVERNANCE = """\
table: memory_governance_decisions
description: Governance decisions, as Grace declares them
fields:
  - {name: id, type: uuid, primary_key: true, generated: true}
  - {name: decision_id, type: string, required: true, unique: true}
  - {name: decision_type, type: string, allowed: [approval, denial, delegation, escalation], required: true}
  - {name: subject, type: string, required: true}
  - {name: context, type: text}
  - {name: policy_references, type: json, default: []}
  - {name: risk_level, type: string, allowed: [low, medium, high, critical], required: true}
  - {name: decision_maker, type: string, required: true}
  - {name: decision_outcome, type: string, required: true, allowed: [approved, denied, deferred, escalated]}
  - {name: reasoning, type: text}
  - {name: conditions, type: json, nullable: true}
  - {name: expiration_date, type: datetime, nullable: true}
  - {name: requires_review, type: boolean, default: false}
  - {name: created_at, type: datetime, required: true}
  - {name: audit_stamp, type: json, required: true}
  - {name: notes, type: text, nullable: true}
indexes:
  - fields: [decision_type]
"""

INCIDENTS = """\
table: memory_incidents
fields:
  - {name: id, type: uuid, primary_key: true, generated: true}
  - {name: title, type: string, required: true}
  - {name: severity, type: string, allowed: [low, high], default: low}
  - {name: tags, type: json, default: []}
  - {name: resolved_at, type: datetime, nullable: true}
relationships:
  - table: memory_execution_logs
    type: one_to_many
    foreign_key: incident_id
    description: Execution logs of this incident
"""

LOGS = """\
table: memory_execution_logs
fields:
  - {name: id, type: uuid, primary_key: true, generated: true}
  - {name: action, type: string, required: true}
  - {name: incident_id, type: uuid, nullable: true}
  - {name: playbook_id, type: uuid, nullable: true}
  - {name: duration_ms, type: integer, default: 0}
relationships:
  - {table: memory_incidents, type: many_to_one, foreign_key: incident_id}
  - {table: memory_playbooks, type: many_to_one, foreign_key: playbook_id, description: The playbook run}
"""

PLAYBOOKS = """\
table: memory_playbooks
description: Two of Grace's files carry a version; Grace's registry reads them like the others
fields:
  - {name: id, type: uuid, primary_key: true, generated: true}
  - {name: name, type: string, required: true, unique: true}
  - {name: can_undo, type: boolean, default: true}
  - {name: confidence, type: float, default: 0.5}
version: 1
"""

DOCUMENTS = """\
table: memory_documents
fields:
  - {name: id, type: uuid, primary_key: true, generated: true}
  - {name: file_path, type: string, required: true, unique: true}
  - {name: authors, type: json, default: []}
"""


@pytest.fixture
def grace(tmp_path):
    folder = tmp_path / "schema"
    for name, text in (("governance.yaml", GOVERNANCE), ("incidents.yaml", INCIDENTS), ("execution_logs.yaml", LOGS),
                       ("playbooks.yaml", PLAYBOOKS), ("documents.yaml", DOCUMENTS)):
        write_schema(folder, name, text)
    return folder


def test_a_folder_you_name_is_what_you_get(grace, tmp_path):
    """Every file loads as its own table, none replaced by the packaged
    catalogue (which is left out when a folder is named), files that refer
    to each other resolve in one load, and a second load changes nothing."""
    with TableRegistry(tmp_path / "g.db", [grace]) as reg:
        report = reg.load_all_schemas()
        assert report.problems == [] and report.notices == []
        assert sorted(reg.tables()) == ["memory_documents", "memory_execution_logs", "memory_governance_decisions",
                                        "memory_incidents", "memory_playbooks"]
        assert [f.name for f in reg.schema("memory_documents").fields] == ["id", "file_path", "authors"]
        assert all(reg.schema(t).source.startswith("schema/") for t in reg.tables()), [
            reg.schema(t).source for t in reg.tables()]
        again = reg.load_all_schemas()
        assert (again.created, again.altered, again.proposed, again.problems) == ([], [], [], [])


def test_the_catalogue_on_request_yields_to_your_files_with_a_note(grace, tmp_path):
    with TableRegistry(tmp_path / "g.db", [grace], catalogue=True) as reg:
        report = reg.load_all_schemas()
        assert report.problems == []
        assert "memory_sop_manuals" in reg.tables()                    # the catalogue's own tables come too
        assert [f.name for f in reg.schema("memory_documents").fields] == ["id", "file_path", "authors"]
        assert reg.schema("memory_governance_decisions").by_name.get("decision_id") is not None
        assert any("schema/documents.yaml declares memory_documents: the packaged catalogue's "
                   "chronoledger/tables/schemas/documents.yaml is left out" in n for n in report.notices), report.notices


def test_grace_nullability_a_field_is_not_null_unless_it_says_nullable(grace, tmp_path):
    with TableRegistry(tmp_path / "g.db", [grace]) as reg:
        reg.load_all_schemas()
        with pytest.raises(ValidationError, match="severity: may not be null"):
            reg.insert_row("memory_incidents", {"title": "disk full", "severity": None})
        with pytest.raises(ValidationError, match="title: required"):
            reg.insert_row("memory_incidents", {"severity": "high"})
        row = reg.insert_row("memory_incidents", {"title": "disk full", "resolved_at": None})
        assert (row["severity"], row["tags"], row["resolved_at"]) == ("low", [], None)
        assert reg.schema("memory_playbooks").by_name["confidence"].nullable is False      # version: 1 too
        log = reg.insert_row("memory_execution_logs", {"action": "restart", "incident_id": row["id"]})
        assert log["playbook_id"] is None and log["duration_ms"] == 0
        tagged = reg.insert_row("memory_incidents", {"title": "slow", "tags": ["db", "latency"]})
        assert [r["id"] for r in reg.query_rows("memory_incidents", {"tags": {"contains": "db"}})] == [tagged["id"]]
    ours, _ = parse_schema({"table": "t", "nullable_rule": "chronoledger", "fields": [{"name": "a", "type": "string"}]},
                           "x")
    grace_form, _ = parse_schema({"table": "t", "fields": [{"name": "a", "type": "string"}]}, "x")
    assert ours is not None and grace_form is not None
    assert (ours.by_name["a"].nullable, grace_form.by_name["a"].nullable) == (True, False)
    _, problems = parse_schema({"table": "t", "nullable_rule": "maybe", "fields": []}, "x")
    assert "nullable_rule: 'maybe' must be one of grace, chronoledger" in str(problems[0])


def test_decisions_are_written_into_your_governance_table_in_its_own_words(grace, tmp_path):
    with TableRegistry(tmp_path / "g.db", [grace], actor="alice") as reg:
        reg.load_all_schemas()
        wider = dict(parse_schema(json.loads(json.dumps(reg.schema("memory_playbooks").declared())), "x")[0]
                     .declared())
        wider["fields"] = [f for f in wider["fields"] if f["name"] != "confidence"]       # dropping: high risk
        proposal = reg.propose_schema(wider, reason="not used")
        reg.reject(proposal["id"], reason="keep it")
        rows = reg.query_rows("memory_governance_decisions", order_by="created_at")
    assert len(rows) == 7                          # the five tables created, the proposal, its rejection
    asked, last = rows[-2], rows[-1]
    assert (asked["decision_type"], asked["decision_outcome"]) == ("escalation", "deferred")    # ours: pending
    assert (last["decision_type"], last["decision_outcome"], last["decision_maker"]) == ("denial", "denied", "alice")
    assert last["subject"] == "schema of memory_playbooks" and json.loads(last["context"])["proposal_id"]
    assert all(r["decision_outcome"] == "approved" and r["decision_id"] and r["created_at"] for r in rows[:-2])
    assert len({r["decision_id"] for r in rows}) == 7
    assert all(isinstance(r["audit_stamp"], str) and len(r["audit_stamp"]) == 64 for r in rows)


def test_grace_relationships_are_checked_against_the_other_side(tmp_path):
    folder = tmp_path / "schema"
    write_schema(folder, "incidents.yaml", INCIDENTS)
    write_schema(folder, "execution_logs.yaml", LOGS.replace("  - {name: incident_id, type: uuid, nullable: true}\n",
                                                             ""))
    with TableRegistry(tmp_path / "g.db", [folder]) as reg:
        report = reg.load_all_schemas()
    said = [str(p) for p in report.problems]
    assert any("relationships[0]: foreign_key 'incident_id' is not a field of this table (many_to_one: the key is "
               "on this side)" in p for p in said), said
    assert any("relationship to unknown table 'memory_execution_logs'" in p for p in said), said
    _, problems = parse_schema({"table": "t", "fields": [{"name": "a", "type": "string"}],
                                "relationships": [{"table": "u", "type": "many_to_many", "foreign_key": "a"}]}, "x")
    assert "type 'many_to_many' is not one of many_to_one, one_to_many" in str(problems[0])
    schema, _ = parse_schema({"table": "t", "fields": [{"name": "a", "type": "string"}],
                              "relationships": [{"table": "u", "type": "one_to_many", "foreign_key": "t_id"}]}, "x")
    assert schema is not None and str(schema.relationships[0]) == "u.t_id -> this table (one to many)"
    assert schema.relationships[0].declared() == {"table": "u", "type": "one_to_many", "foreign_key": "t_id"}


def run(*args):
    return invoke(cli, [str(a) for a in args])


def test_the_commands_on_a_grace_folder(grace, tmp_path):
    db = tmp_path / "g.db"
    r = run("tables", "--db", db, "--schemas", grace, "create")
    assert r.exit_code == 0 and "5 schemas loaded" in r.stdout and "0 problems" in r.stdout, r.output
    r = run("tables", "validate", grace)
    assert r.exit_code == 0 and "5 good, 0 problems" in r.stdout, r.output
    r = run("tables", "--db", db, "show", "memory_incidents")
    assert r.exit_code == 0 and "memory_execution_logs.incident_id -> this table (one to many)" in r.stdout, r.output
    with pytest.raises(SchemaError):
        with TableRegistry(db, [grace]) as reg:
            reg.propose_schema({"table": "memory_governance_decisions", "fields": [{"name": "id", "type": "uuid",
                                                                                   "primary_key": True}]})


def test_a_table_stored_before_the_rule_keeps_its_nullable_fields_until_a_change_is_approved(tmp_path):
    """A registry of an earlier chronoledger stored schemas without
    nullable_rule, made under chronoledger's rule: they keep it; loading the
    same file now (Grace's rule) proposes the stricter fields for approval."""
    import apsw
    folder = tmp_path / "schema"
    write_schema(folder, "notes.yaml", "table: notes\nfields:\n  - {name: title, type: string, required: true}\n"
                                       "  - {name: body, type: text}\n")
    db = tmp_path / "old.db"
    with TableRegistry(db, catalogue=False) as reg:
        reg.propose_schema({"table": "notes", "nullable_rule": "chronoledger",
                            "fields": [{"name": "title", "type": "string", "required": True},
                                       {"name": "body", "type": "text"}]})
    conn = apsw.Connection(str(db))                 # as the earlier release stored it: no nullable_rule
    text = conn.execute("SELECT schema_json FROM _registry_tables WHERE table_name = 'notes'").fetchall()[0][0]
    old = json.loads(text)
    old.pop("nullable_rule")
    conn.execute("UPDATE _registry_tables SET schema_json = ? WHERE table_name = 'notes'", (json.dumps(old),))
    conn.close()
    with TableRegistry(db, [folder]) as reg:
        assert reg.schema("notes").by_name["body"].nullable is True
        assert reg.insert_row("notes", {"title": "t"})["body"] is None
        report = reg.load_all_schemas()
        assert [p["table_name"] for p in report.proposed] == ["notes"], report
        assert reg.schema("notes").by_name["body"].nullable is True            # until approved


def test_iter_rows_reads_every_matching_row_once_in_key_order_a_batch_at_a_time(grace, tmp_path):
    with TableRegistry(tmp_path / "g.db", [grace]) as reg:
        reg.load_all_schemas()
        made = reg.insert_rows("memory_incidents", [{"title": f"t{i}", "severity": "high" if i % 3 else "low",
                                                     "tags": ["x"] if i % 2 else []} for i in range(25)])
        ids = sorted(r["id"] for r in made)
        assert [r["id"] for r in reg.iter_rows("memory_incidents", batch=4)] == ids
        either = {"or": [{"severity": "low"}, {"tags": {"contains": "x"}}]}      # an OR: bracketed before the key
        want = sorted(r["id"] for r in made if r["severity"] == "low" or r["tags"] == ["x"])
        assert [r["id"] for r in reg.iter_rows("memory_incidents", either, batch=3)] == want
        with pytest.raises(ValueError, match="batch must be at least 1"):
            next(reg.iter_rows("memory_incidents", batch=0))


def test_export_writes_csv_jsonl_and_parquet_and_never_replaces_a_file_unasked(grace, tmp_path):
    import csv
    import pyarrow.parquet as pq
    db = tmp_path / "g.db"
    with TableRegistry(db, [grace]) as reg:
        reg.load_all_schemas()
        reg.insert_rows("memory_incidents", [{"title": "disk, full", "tags": ["a", "é"]},
                                             {"title": "slow", "severity": "high", "resolved_at": "2026-01-02T03:04:05Z"}])
        stored = sorted(reg.query_rows("memory_incidents"), key=lambda r: r["id"])
    out = tmp_path / "inc.csv"
    r = run("tables", "--db", db, "export", "memory_incidents", "--format", "csv", "-o", out)
    assert r.exit_code == 0 and "exported 2 rows" in r.stdout, r.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [x["title"] for x in rows] == [x["title"] for x in stored]
    assert json.loads(rows[0]["tags"]) == stored[0]["tags"] and rows[0]["resolved_at"] in ("", stored[0]["resolved_at"])
    before = out.read_bytes()
    r = run("tables", "--db", db, "export", "memory_incidents", "--format", "csv", "-o", out)
    assert r.exit_code == 2 and "exists; --force replaces it" in r.stderr and out.read_bytes() == before
    r = run("tables", "--db", db, "export", "memory_incidents", "--format", "jsonl", "-o", "-", "--where", "severity=high")
    assert r.exit_code == 0 and [json.loads(x)["title"] for x in r.stdout.splitlines()] == ["slow"], r.output
    pq_out = tmp_path / "inc.parquet"
    r = run("tables", "--db", db, "export", "memory_incidents", "--format", "parquet", "-o", pq_out, "--force")
    assert r.exit_code == 0, r.output
    got = pq.read_table(pq_out).to_pylist()
    assert [g["id"] for g in got] == [s["id"] for s in stored]
    assert [json.loads(g["tags"]) for g in got] == [s["tags"] for s in stored]
    r = run("tables", "--db", db, "export", "no_such_table", "--format", "csv", "-o", tmp_path / "n.csv")
    assert r.exit_code != 0 and "no table 'no_such_table'" in r.stderr and not (tmp_path / "n.csv").exists()


def test_a_proposal_pending_when_an_earlier_release_stored_it_can_still_be_approved(tmp_path):
    """Schemas under chronoledger's rule hash as earlier releases hashed
    them (nullable_rule is not part of that hash), so a proposal stored
    then still matches the table it changes."""
    import apsw
    db = tmp_path / "old.db"
    base = {"table": "notes", "nullable_rule": "chronoledger",
            "fields": [{"name": "title", "type": "string", "required": True}]}
    with TableRegistry(db, catalogue=False) as reg:
        reg.propose_schema(base)
        wider = {**base, "fields": base["fields"] + [{"name": "body", "type": "text", "required": True,
                                                      "default": ""}]}
        pid = reg.propose_schema(wider)["id"]
        assert reg.proposal(pid)["status"] == "pending"
    conn = apsw.Connection(str(db))                 # both stored as the earlier release stored them
    for table, col, key in (("_registry_tables", "schema_json", "table_name"),
                            ("_registry_proposals", "schema_json", "id")):
        for k, text in conn.execute(f"SELECT {key}, {col} FROM {table}").fetchall():
            form = json.loads(text)
            if form.get("table") == "notes":
                form.pop("nullable_rule", None)
                conn.execute(f"UPDATE {table} SET {col} = ? WHERE {key} = ?", (json.dumps(form), k))
    conn.close()
    with TableRegistry(db, catalogue=False) as reg:
        assert reg.approve(pid)["status"] == "applied"
        assert [f.name for f in reg.schema("notes").fields] == ["id", "title", "body"]


def test_a_schema_that_is_not_text_where_names_go_is_a_problem_not_a_crash():
    _, problems = parse_schema({"table": "t", "fields": [{"name": ["a"], "type": "string"}],
                                "indexes": [{"fields": ["a"]}]}, "x")
    assert problems and "not a valid field name" in str(problems[0])


def test_export_to_a_place_it_cannot_write_is_a_storage_error_and_loses_nothing(grace, tmp_path):
    from chronoledger.errors import ExistsError, StorageError
    from chronoledger.tables.export import export_table
    with TableRegistry(tmp_path / "g.db", [grace]) as reg:
        reg.load_all_schemas()
        reg.insert_row("memory_incidents", {"title": "x"})
        with pytest.raises(StorageError, match="export of memory_incidents: .*missing"):
            export_table(reg, "memory_incidents", tmp_path / "missing" / "x.csv", "csv")
        with pytest.raises(StorageError, match="is a folder"):
            export_table(reg, "memory_incidents", tmp_path, "jsonl")
        (tmp_path / "x.csv").write_text("kept")
        with pytest.raises(ExistsError):
            export_table(reg, "memory_incidents", tmp_path / "x.csv", "csv")
        assert (tmp_path / "x.csv").read_text() == "kept"
        assert reg.count_rows("memory_incidents") == 1
    r = run("tables", "--db", tmp_path / "g.db", "export", "memory_incidents", "--format", "csv",
            "-o", tmp_path / "missing" / "x.csv")
    assert r.exit_code == 3 and "missing" in r.stderr and "Traceback" not in r.output, r.output
