"""A database made by Grace's own registry (tests/data/grace_registry.db, made
by tools/make_grace_db.py running aaron031291/grace_2's
backend/memory_tables/registry.py on the Grace-form files of
tests/data/grace_folder): refused untouched until adopted, then adopted with
every row as Grace stored it, and written on in forms Grace's code reads."""

import hashlib
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from chronoledger.cli import cli
from chronoledger.errors import SchemaError, ValidationError
from chronoledger.tables import TableRegistry

from _cli import invoke

DATA = Path(__file__).parent / "data"
FOLDER = DATA / "grace_folder"
#: SQLAlchemy's SQLite DATETIME storage format (what Grace's registry writes and parses).
SQLALCHEMY_DATETIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\Z")
INCIDENT = "0f8e3a9c5b1d4c7e9a2f6d4b8c1e7a35"


def _raw(path, sql, params=()):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def grace_db(tmp_path):
    path = tmp_path / "memory_tables.db"
    shutil.copyfile(DATA / "grace_registry.db", path)
    return path


@pytest.fixture
def folder(tmp_path):
    out = tmp_path / "schema"
    shutil.copytree(FOLDER, out)
    return out


def test_a_grace_database_is_refused_untouched_until_adopted(grace_db, folder):
    before = _digest(grace_db)
    with pytest.raises(SchemaError, match=r"another program made this database .*memory_documents.* adopt it"):
        TableRegistry(grace_db, [folder])
    assert _digest(grace_db) == before
    assert sorted(p.name for p in grace_db.parent.iterdir()) == ["memory_tables.db", "schema"]   # no -wal, no log


def test_adopting_keeps_every_row_as_grace_stored_it(grace_db, folder):
    tables = ["memory_documents", "memory_execution_logs", "memory_governance_decisions", "memory_incidents"]
    before = {t: _raw(grace_db, f"SELECT * FROM {t} ORDER BY rowid") for t in tables}
    with TableRegistry(grace_db, [folder], adopt=True) as reg:
        assert reg.adoption.tables == {"memory_documents": 2, "memory_execution_logs": 1,
                                       "memory_governance_decisions": 1, "memory_incidents": 1}
        assert reg.adoption.problems == [] and reg.adoption.unmanaged == []
        assert sorted(reg.tables()) == tables
        assert all(reg.schema(t).stored_form == "grace" for t in tables)
        docs = {d["file_path"]: d for d in reg.query_rows("memory_documents")}
        a, b = docs["docs/a.md"], docs["docs/b.md"]
        assert re.fullmatch(r"[0-9a-f]{32}", a["id"])
        assert a["authors"] == ["ada", "grace"] and a["is_public"] is True
        assert a["last_synced_at"] == "2025-03-04 05:06:07.891011"
        assert a["governance_stamp"] == {"approver": "ops", "policies": ["p1"]}
        assert b["governance_stamp"] == 3                 # a JSON number in a column of numeric affinity
        decisions = reg.query_rows("memory_governance_decisions", {"decision_id": {"ne": "d-1"}})
        assert sorted(d["subject"] for d in decisions) == [f"schema of {t}" for t in tables]
        assert all("adopted from memory_tables.db" in d["reasoning"] for d in decisions)
        assert reg.load_all_schemas().created == []
    for t in tables:                                       # no row Grace wrote was rewritten
        after = _raw(grace_db, f"SELECT * FROM {t} ORDER BY rowid")
        assert after[:len(before[t])] == before[t]
    with TableRegistry(grace_db, [folder]) as reg:         # adopted once: opened as the registry's own
        assert reg.count_rows("memory_documents") == 2


def test_filters_read_grace_forms(grace_db, folder):
    with TableRegistry(grace_db, [folder], adopt=True) as reg:
        # a uuid as Python writes it finds Grace's 32 hex digits
        hit = reg.query_rows("memory_incidents", {"id": "0f8e3a9c-5b1d-4c7e-9a2f-6d4b8c1e7a35"})
        assert [r["id"] for r in hit] == [INCIDENT]
        assert [r["id"] for r in reg.query_rows("memory_incidents", {"id": {"like": "0f8e3a9c-5b1d%"}})] == [INCIDENT]
        assert reg.get_row("memory_incidents", "0f8e3a9c-5b1d-4c7e-9a2f-6d4b8c1e7a35")["title"] == "disk full"
        assert [r["action"] for r in reg.query_rows("memory_execution_logs", {"incident_id": INCIDENT})] == \
            ["clean tmp"]
        # times in ISO form against Grace's naive text
        assert [r["file_path"] for r in reg.query_rows(
            "memory_documents", {"last_synced_at": {"gt": "2025-03-04T05:06:07Z"}})] == ["docs/a.md"]
        assert reg.query_rows("memory_documents", {"last_synced_at": {"ge": "2025-03-05T00:00:00+00:00"}}) == []
        # JSON as Grace wrote it (spaces after separators) is equal to the same value
        assert [r["file_path"] for r in reg.query_rows(
            "memory_documents", {"governance_stamp": {"policies": ["p1"], "approver": "ops"}})] == ["docs/a.md"]
        assert [r["file_path"] for r in reg.query_rows(
            "memory_documents", {"governance_stamp": {"eq": {"policies": ["p1"], "approver": "ops"}}})] == \
            ["docs/a.md"]
        assert [r["file_path"] for r in reg.query_rows("memory_documents", {"governance_stamp": {"eq": 3}})] == \
            ["docs/b.md"]
        assert [r["file_path"] for r in reg.query_rows(
            "memory_documents", {"governance_stamp": {"ne": 3}})] == ["docs/a.md"]
        assert [r["file_path"] for r in reg.query_rows("memory_documents", {"authors": {"contains": "ada"}})] == \
            ["docs/a.md"]


def test_new_rows_are_written_as_grace_writes_them(grace_db, folder):
    with TableRegistry(grace_db, [folder], adopt=True) as reg:
        row = reg.insert_row("memory_incidents", {"title": "net down", "opened_at": "2025-06-01T12:00:00+02:00",
                                                  "tags": {"a": 1}})
        assert re.fullmatch(r"[0-9a-f]{32}", row["id"])
        assert row["opened_at"] == "2025-06-01 10:00:00.000000"       # UTC, as naive text
        log = reg.insert_row("memory_execution_logs", {"action": "restart",
                                                       "incident_id": "0f8e3a9c-5b1d-4c7e-9a2f-6d4b8c1e7a35"})
        assert log["incident_id"] == INCIDENT
        doc = reg.insert_row("memory_documents", {"file_path": "docs/c.md", "title": "C"})
        assert doc["authors"] == [] and doc["last_synced_at"] is None
        n = reg.update_rows("memory_incidents", {"id": row["id"]}, {"resolved_at": "2025-06-02T00:00:00Z"})
        assert n == 1
    raw = _raw(grace_db, "SELECT id, opened_at, resolved_at, tags FROM memory_incidents WHERE title = 'net down'")
    rid, opened, resolved, tags = raw[0]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert SQLALCHEMY_DATETIME.match(opened) and SQLALCHEMY_DATETIME.match(resolved)
    assert json.loads(tags) == {"a": 1}
    decided = _raw(grace_db, "SELECT created_at FROM memory_governance_decisions")
    assert all(SQLALCHEMY_DATETIME.match(c) for (c,) in decided)


def test_fields_a_table_lacks_are_proposed_after_adoption(grace_db, folder):
    """Grace's registry never adds a column to a table that exists: a field
    added to a file later is missing from the table.  Adopted without it, then
    proposed as one change of the table, waiting for approval (a NOT NULL
    field is medium risk); approved, the rows Grace wrote take the default."""
    text = (folder / "incidents.yaml").read_text()
    text = text.replace("relationships:", "  - {name: owner, type: string, default: ops}\n"
                                          "  - {name: note, type: text, nullable: true}\nrelationships:")
    (folder / "incidents.yaml").write_text(text)
    with TableRegistry(grace_db, [folder], adopt=True) as reg:
        assert reg.adoption.missing == {"memory_incidents": ["owner", "note"]}
        assert "note" not in reg.schema("memory_incidents").by_name
        report = reg.load_all_schemas()
        assert report.altered == []
        [proposal] = report.proposed
        assert (proposal["table_name"], proposal["risk"]) == ("memory_incidents", "medium")
        assert sorted(c["field"] for c in proposal["changes"]) == ["note", "owner"]
        reg.approve(proposal["id"])
        row = reg.get_row("memory_incidents", INCIDENT)
        assert (row["owner"], row["note"], row["title"]) == ("ops", None, "disk full")
        assert reg.schema("memory_incidents").stored_form == "grace"


def test_tables_created_after_adoption_keep_grace_forms(grace_db, folder):
    (folder / "notes.yaml").write_text("table: memory_notes\nfields:\n"
                                       "  - {name: id, type: uuid, primary_key: true, generated: true}\n"
                                       "  - {name: at, type: datetime, generated: true}\n")
    with TableRegistry(grace_db, [folder], adopt=True) as reg:
        assert reg.load_all_schemas().created == ["memory_notes"]
        assert reg.schema("memory_notes").stored_form == "grace"
        row = reg.insert_row("memory_notes", {})
        assert re.fullmatch(r"[0-9a-f]{32}", row["id"]) and SQLALCHEMY_DATETIME.match(row["at"])


def test_a_table_that_does_not_match_is_refused_with_every_problem(grace_db, folder):
    text = (folder / "documents.yaml").read_text()
    (folder / "documents.yaml").write_text(text.replace("  - {name: is_public, type: boolean, default: false}\n", "")
                                           .replace("{name: token_count, type: integer", "{name: token_count, "
                                                                                         "type: json"))
    (folder / "incidents.yaml").write_text((folder / "incidents.yaml").read_text().replace(
        "{name: id, type: uuid, primary_key: true, generated: true}",
        "{name: key, type: uuid, primary_key: true, generated: true}\n  - {name: id, type: uuid}"))
    before = _digest(grace_db)
    with pytest.raises(SchemaError) as err:
        TableRegistry(grace_db, [folder], adopt=True)
    text = str(err.value)
    assert "not adopted, nothing was written" in text
    assert "memory_documents.is_public: a column of the table (BOOLEAN) that the schema does not declare" in text
    # an integer column would turn JSON text that spells a number into a number: refused by affinity
    assert "memory_documents.token_count: declared json but the column is INTEGER" in text
    assert "memory_incidents.key: the declared primary key (uuid) is not a column of the table" in text
    assert "memory_incidents.id: the table's primary key, but not declared primary_key" in text
    assert _digest(grace_db) == before


def test_a_decisions_table_no_file_declares_is_checked_against_the_packaged_one(grace_db, folder):
    (folder / "governance.yaml").unlink()
    with pytest.raises(SchemaError, match=r"memory_governance_decisions.decision_id: a column of the table "
                                          r"\(VARCHAR\) that the schema does not declare"):
        TableRegistry(grace_db, [folder], adopt=True)


def test_tables_no_file_declares_are_left_alone(grace_db, folder):
    (folder / "incidents.yaml").unlink()
    text = (folder / "execution_logs.yaml").read_text()
    (folder / "execution_logs.yaml").write_text(text.split("relationships:")[0])
    with TableRegistry(grace_db, [folder], adopt=True) as reg:
        assert reg.adoption.unmanaged == ["memory_incidents"]
        assert "memory_incidents" not in reg.tables()
    assert _raw(grace_db, "SELECT id FROM memory_incidents") == [(INCIDENT,)]


def test_cli_adopt(grace_db, folder):
    r = invoke(cli, ["tables", "--db", str(grace_db), "list"])
    assert r.exit_code == 3 and "tables --db" in r.output and "adopt" in r.output
    r = invoke(cli, ["tables", "--db", str(grace_db), "adopt"])
    assert r.exit_code == 2 and "--schemas" in r.output
    r = invoke(cli, ["tables", "--db", str(grace_db), "--schemas", str(folder), "adopt", "--json"])
    assert r.exit_code == 0, r.output
    found = json.loads(r.stdout)
    assert found["adopted"]["memory_documents"] == 2 and found["problems"] == []
    r = invoke(cli, ["tables", "--db", str(grace_db), "--schemas", str(folder), "adopt"])
    assert r.exit_code == 0 and "the registry's own database already" in r.stdout
    r = invoke(cli, ["tables", "--db", str(grace_db), "--schemas", str(folder), "list", "--json"])
    assert {t["table"]: t["rows"] for t in json.loads(r.stdout)}["memory_documents"] == 2


# --- found in review -------------------------------------------------------------------

def test_a_rules_change_leaves_an_adopted_table_as_it_is(grace_db, folder):
    before = _raw(grace_db, "SELECT * FROM memory_documents ORDER BY rowid")
    ddl = _raw(grace_db, "SELECT sql FROM sqlite_master WHERE name = 'memory_documents'")
    with TableRegistry(grace_db, [folder], adopt=True) as reg:
        declared = reg.schema("memory_documents").declared()
        declared["trust"] = {"weights": {"source": 2}}
        p = reg.propose_schema(declared)
        assert (p["status"], [c["kind"] for c in p["changes"]]) == ("applied", ["rules"])
        assert reg.history("memory_documents")[-2]["event"] == "schema alter"
    assert _raw(grace_db, "SELECT * FROM memory_documents ORDER BY rowid") == before
    assert _raw(grace_db, "SELECT sql FROM sqlite_master WHERE name = 'memory_documents'") == ddl


def test_a_field_added_to_an_adopted_table_fills_rows_in_graces_form(grace_db, folder):
    with TableRegistry(grace_db, [folder], adopt=True) as reg:
        declared = reg.schema("memory_incidents").declared()
        declared["fields"] += [{"name": "seen_at", "type": "datetime", "default": "now"},
                               {"name": "ref", "type": "uuid", "default": "0f8e3a9c-5b1d-4c7e-9a2f-6d4b8c1e7a35"}]
        reg.approve(reg.propose_schema(declared)["id"])
        row = reg.get_row("memory_incidents", INCIDENT)
        assert SQLALCHEMY_DATETIME.match(row["seen_at"]) and row["ref"] == INCIDENT
        assert len(reg.query_rows("memory_incidents", {"ref": "0f8e3a9c-5b1d-4c7e-9a2f-6d4b8c1e7a35"})) == 1


def test_in_and_not_in_compare_graces_json_as_values(grace_db, folder):
    with TableRegistry(grace_db, [folder], adopt=True) as reg:
        stamp = {"approver": "ops", "policies": ["p1"]}
        assert [r["file_path"] for r in reg.query_rows("memory_documents", {"governance_stamp": {"in": [stamp]}})] \
            == ["docs/a.md"]
        assert [r["file_path"] for r in reg.query_rows("memory_documents",
                                                       {"governance_stamp": {"not_in": [stamp]}})] == ["docs/b.md"]
        assert [r["file_path"] for r in reg.query_rows("memory_documents", {"authors": {"in": [["ada", "grace"]]}})] \
            == ["docs/a.md"]


@pytest.mark.parametrize("value", [1.0, -0.0, 12345678901234567890123, 2 ** 63])
def test_numbers_graces_json_columns_would_change_are_refused(grace_db, folder, value):
    with TableRegistry(grace_db, [folder], adopt=True) as reg:
        with pytest.raises(ValidationError, match="numeric affinity"):
            reg.insert_row("memory_incidents", {"title": "x", "opened_at": "2025-01-01T00:00:00Z", "tags": value})
        kept = reg.insert_row("memory_incidents", {"title": "y", "opened_at": "2025-01-01T00:00:00Z",
                                                   "tags": [value]})
        assert reg.get_row("memory_incidents", kept["id"])["tags"] == [value]
        for fine in (7, 2.5):
            row = reg.insert_row("memory_incidents", {"title": f"z{fine}", "opened_at": "2025-01-01T00:00:00Z",
                                                      "tags": fine})
            assert reg.get_row("memory_incidents", row["id"])["tags"] == fine


def test_rows_that_break_a_declared_unique_rule_stop_adoption_untouched(grace_db, folder):
    (folder / "incidents.yaml").write_text((folder / "incidents.yaml").read_text().replace(
        "relationships:", "indexes:\n  - {fields: [title], unique: true}\nrelationships:"))
    con = sqlite3.connect(grace_db)
    con.execute("INSERT INTO memory_incidents VALUES ('11112222333344445555666677778888', 'disk full', 'low', '[]', "
                "'2025-01-03 00:00:00.000000', NULL)")
    con.commit()
    con.close()
    before = _digest(grace_db)
    with pytest.raises(SchemaError, match=r"memory_incidents.title: declared unique, but 2 rows hold 'disk full'"):
        TableRegistry(grace_db, [folder], adopt=True)
    assert _digest(grace_db) == before


def test_text_that_is_not_json_stops_adoption_and_is_named_on_reading(grace_db, folder, tmp_path):
    con = sqlite3.connect(grace_db)
    con.execute("INSERT INTO memory_incidents VALUES ('aaaabbbbccccddddeeeeffff00001111', 't', 'low', 'notjson', "
                "'yesterday', NULL)")
    con.commit()
    con.close()
    with pytest.raises(SchemaError, match=r"memory_incidents.tags: declared json, but 1 rows hold text that is not "
                                          r"JSON \(rowid 2: 'notjson'\)"):
        TableRegistry(grace_db, [folder], adopt=True)
    # a row another program writes after adoption is named where it is read
    con = sqlite3.connect(grace_db)
    con.execute("UPDATE memory_incidents SET tags = '[]' WHERE title = 't'")
    con.commit()
    con.close()
    with TableRegistry(grace_db, [folder], adopt=True) as reg:
        con = sqlite3.connect(grace_db)
        con.execute("UPDATE memory_incidents SET tags = '{oops' WHERE title = 't'")
        con.commit()
        con.close()
        from chronoledger.errors import CorruptDataError
        with pytest.raises(CorruptDataError, match=r"memory_incidents: the row id = 'aaaabbbbccccddddeeeeffff00001111'"
                                                   r": tags: the stored text is not JSON"):
            reg.query_rows("memory_incidents")


def test_cli_adopt_needs_an_existing_database(tmp_path, folder):
    r = invoke(cli, ["tables", "--db", str(tmp_path / "nope.db"), "--schemas", str(folder), "adopt"])
    assert r.exit_code == 2 and "no such database to adopt" in r.output
    assert not (tmp_path / "nope.db").exists()


def test_names_another_program_chose_do_not_stop_adoption(grace_db, folder):
    """An index or a table of the database named as SQL allows but a schema could not be
    (by-title, odd name) is read, not refused."""
    con = sqlite3.connect(grace_db)
    con.execute('CREATE INDEX "by-title" ON memory_incidents (title)')
    con.execute('CREATE TABLE "odd name" (x)')
    con.commit()
    con.close()
    with TableRegistry(grace_db, [folder], adopt=True) as reg:
        assert reg.adoption.unmanaged == ["odd name"]
        assert reg.count_rows("memory_incidents") == 1
