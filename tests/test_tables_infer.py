"""Schema inference and ingest: real files (tests/data/real, see its README)
from a proposal to rows, the risk following the confidence, and every refused
record named by file, line (item, row) and field."""

import csv
import json
from pathlib import Path

import pytest

from chronoledger.cli import cli
from chronoledger.errors import CorruptDataError, ExistsError, NotFoundError, SchemaError
from chronoledger.tables import TableRegistry
from chronoledger.tables.infer import field_name, field_names, infer_files
from chronoledger.tables.ingest import ingest, propose_inference

from _cli import invoke

REAL = Path(__file__).parent / "data" / "real"
PENGUINS = REAL / "penguins.json"
WEATHER = REAL / "seattle-weather.csv"


@pytest.fixture
def reg(tmp_path):
    with TableRegistry(tmp_path / "t.db", [], catalogue=False, events_log=None) as r:
        yield r


def _penguins():
    return json.loads(PENGUINS.read_text())


def _weather():
    with open(WEATHER, newline="") as f:
        return list(csv.DictReader(f))


def test_field_names():
    assert field_name("Beak Length (mm)") == "beak_length_mm"
    assert field_name("2nd try") == "f_2nd_try" and field_name("sqlite_stat") == "f_sqlite_stat"
    assert field_name("***") == "field"
    assert field_names(["a b", "a-b", "A B"]) == {"a b": "a_b", "a-b": "a_b_2", "A B": "a_b_3"}


def test_a_real_json_file_from_proposal_to_rows(reg):
    records = _penguins()
    inference = infer_files([PENGUINS])
    assert inference.table == "penguins" and inference.records == len(records)
    by = {g.key: g for g in inference.fields}
    assert [g.name for g in inference.fields] == ["species", "island", "beak_length_mm", "beak_depth_mm",
                                                  "flipper_length_mm", "body_mass_g", "sex"]
    # integers among the floats widen the field to float; a count stays an integer
    assert by["Beak Length (mm)"].type == "float" and by["Body Mass (g)"].type == "integer"
    for key, g in by.items():
        given = [r[key] for r in records if r.get(key) is not None]
        assert g.values == len(given) and g.nullable == (len(given) < len(records))
        assert g.fitting == len(given)                       # every value of this file fits its field
        assert g.confidence == pytest.approx((len(given) + 1) / (len(given) + 2))
    assert inference.confidence == min(g.confidence for g in inference.fields) and inference.risk == "low"
    proposal = propose_inference(reg, inference)
    assert (proposal["status"], proposal["risk"]) == ("applied", "low")
    assert "confidence 0.99" in proposal["reason"]
    report = ingest(reg, "penguins", [PENGUINS])
    assert (report.read, report.inserted, report.refused) == (len(records), len(records), [])
    assert reg.count_rows("penguins", {"sex": "."}) == sum(1 for r in records if r["Sex"] == ".")
    first = reg.query_rows("penguins", {"body_mass_g": records[0]["Body Mass (g)"],
                                        "beak_length_mm": records[0]["Beak Length (mm)"]})
    assert first[0]["species"] == records[0]["Species"]


def test_a_real_csv_file_from_proposal_to_rows(reg):
    rows = _weather()
    inference = infer_files([WEATHER], "weather")
    assert {g.name: g.type for g in inference.fields} == {
        "date": "date", "precipitation": "float", "temp_max": "float", "temp_min": "float", "wind": "float",
        "weather": "string"}
    assert propose_inference(reg, inference)["status"] == "applied"
    report = ingest(reg, "weather", [WEATHER])
    assert (report.inserted, report.refused) == (len(rows), [])
    got = reg.query_rows("weather", {"date": rows[-1]["date"]})
    assert got[0]["temp_min"] == float(rows[-1]["temp_min"]) and got[0]["weather"] == rows[-1]["weather"]


def test_refused_records_are_named_by_line_and_field(reg, tmp_path):
    """A schema the user tightened (no fog) refuses the fog days, each by its line."""
    schema = infer_files([WEATHER], "weather").schema.declared()
    for f in schema["fields"]:
        if f["name"] == "weather":
            f["allowed"] = ["drizzle", "rain", "sun", "snow"]
    reg.propose_schema(schema)
    rows = _weather()
    fog = [i + 2 for i, r in enumerate(rows) if r["weather"] == "fog"]     # line 1 is the header
    assert fog
    report = ingest(reg, "weather", [WEATHER], batch=100)
    assert [(r.where, r.field) for r in report.refused] == [(f"line {n}", "weather") for n in fog]
    assert all("'fog' is not one of the allowed values" in r.reason and r.file == str(WEATHER)
               for r in report.refused)
    assert report.inserted == len(rows) - len(fog) == reg.count_rows("weather")
    assert reg.count_rows("weather", {"weather": "fog"}) == 0


def test_json_records_are_named_by_item(reg):
    schema = infer_files([PENGUINS]).schema.declared()
    for f in schema["fields"]:
        if f["name"] == "sex":
            f["allowed"] = ["MALE", "FEMALE"]
    reg.propose_schema(schema)
    records = _penguins()
    odd = [i + 1 for i, r in enumerate(records) if r["Sex"] not in ("MALE", "FEMALE", None)]
    report = ingest(reg, "penguins", [PENGUINS])
    assert [(r.where, r.field) for r in report.refused] == [(f"item {n}", "sex") for n in odd]
    assert report.inserted == len(records) - len(odd)


def test_atomic_ingest_inserts_nothing_unless_all_pass(reg):
    schema = infer_files([PENGUINS]).schema.declared()
    schema["fields"] = [dict(f, allowed=["MALE", "FEMALE"]) if f["name"] == "sex" else f for f in schema["fields"]]
    reg.propose_schema(schema)
    report = ingest(reg, "penguins", [PENGUINS], atomic=True)
    assert report.refused and report.inserted == 0 and reg.count_rows("penguins") == 0
    assert "(atomic: nothing inserted)" in str(report)


def test_doubtful_fields_make_a_proposal_wait(reg, tmp_path):
    f = tmp_path / "people.csv"
    f.write_text("id,First Name,age,joined,active,tags\n"
                 "1,Ada,36,2025-01-02,yes,\"[\"\"a\"\"]\"\n"
                 "2,Grace,n/a,2025-02-03T04:05:06Z,no,[]\n"
                 "3,Linus,54,2025-03-04,true,\"{\"\"k\"\": 1}\"\n")
    inference = infer_files([f])
    by = {g.name: g for g in inference.fields}
    assert by["id"].primary_key and by["id"].type == "integer"
    assert (by["age"].type, by["age"].fitting, by["age"].values) == ("integer", 2, 3)
    assert by["age"].misfits == [(f"{f}: line 3", "n/a")]
    assert by["joined"].type == "datetime"                 # dates and a date-time: date-times
    assert (by["active"].type, by["tags"].type) == ("boolean", "json")
    assert by["age"].confidence == pytest.approx(3 / 5) and inference.risk == "high"
    proposal = propose_inference(reg, inference)
    assert (proposal["status"], proposal["risk"]) == ("pending", "high")
    with pytest.raises(NotFoundError):
        ingest(reg, "people", [f])
    reg.approve(proposal["id"])
    report = ingest(reg, "people", [f])
    assert [(r.where, r.field) for r in report.refused] == [("line 3", "age")]
    assert "'n/a' is not an integer" in report.refused[0].reason
    assert reg.get_row("people", 3)["tags"] == {"k": 1} and reg.get_row("people", 1)["active"] is True


def test_keys_the_table_lacks_and_repeated_keys_are_refused(reg, tmp_path):
    f = tmp_path / "notes.jsonl"
    f.write_text('{"id": 1, "text": "a"}\n\n{"id": 2, "text": "b"}\n')
    reg.propose_schema(infer_files([f]).schema)
    g = tmp_path / "more.jsonl"
    g.write_text('{"id": 3, "text": "c", "mood": "ok"}\n{"id": 1, "text": "again"}\n{"id": 4, "text": "d"}\n')
    assert ingest(reg, "notes", [f]).inserted == 2
    report = ingest(reg, "notes", [g])
    assert [(r.where, r.field) for r in report.refused] == [("line 1", "mood"), ("line 2", "id")]
    assert "already stored" in report.refused[1].reason
    assert report.inserted == 1 and reg.count_rows("notes") == 3


def test_an_id_that_repeats_cannot_be_the_key(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("id,v\n7,a\n8,b\n7,c\n")
    with pytest.raises(SchemaError, match=r"field id cannot be the primary key: '7' is the id of .*x.csv: line 2 "
                                          r"and of .*x.csv: line 4"):
        infer_files([f])


def test_yaml_and_parquet_records(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    from datetime import datetime, timezone

    y = tmp_path / "t.yaml"
    y.write_text("rows:\n  - {name: a, when: 2025-01-02T03:04:05Z, n: 1}\n  - {name: b, n: 2.5}\n")
    inference = infer_files([y])
    assert {g.name: (g.type, g.nullable) for g in inference.fields} == {
        "name": ("string", False), "when": ("datetime", True), "n": ("float", False)}
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"at": [datetime(2025, 1, 1, tzinfo=timezone.utc), None], "k": [1, 2]}), p)
    inference = infer_files([p])
    assert {g.name: g.type for g in inference.fields} == {"at": "datetime", "k": "integer"}
    assert [g.values for g in inference.fields] == [1, 2]


@pytest.mark.parametrize("name, text, message", [
    ("ragged.csv", "a,b,c\n1,2,3\n1,2\n", r"ragged.csv: line 3: 2 values for 3 columns"),
    ("dup.csv", "a,b,a\n1,2,3\n", r"dup.csv: line 1: the header names 'a' more than once"),
    ("bad.json", '[{"a": 1},\n {"a": }]', r"bad.json: line 2, column 8: not JSON"),
    ("scalar.json", "[1, 2]", r"scalar.json: item 1: a record is a mapping, found a number"),
    ("two.json", '{"a": [], "b": []}', r"two.json: expected a list of records, or an object with one list"),
    ("bad.jsonl", '{"a": 1}\n[1]\n', r"bad.jsonl: line 2: a record is a JSON object, found a list"),
    ("open.csv", 'a,b\n1,"2\n3,4\n', r"open.csv: lines 2-3: unexpected end of data"),
    ("quote.csv", 'a,b\n1,"x"y\n', r"quote.csv: line 2: ',' expected after"),
    ("bad.yaml", "- a: [1\n", r"bad.yaml: line 2, column 1: not YAML"),
    ("notes.txt", "x", r"notes.txt: cannot tell what kind of file this is"),
])
def test_files_that_cannot_be_read_say_where(tmp_path, name, text, message):
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(CorruptDataError, match=message):
        infer_files([f])
    assert f.read_text() == text


def test_an_empty_file_has_nothing_to_infer(tmp_path):
    f = tmp_path / "empty.csv"
    f.write_text("a,b\n")
    with pytest.raises(SchemaError, match="no records to infer a schema from"):
        infer_files([f])


def test_cli_infer_and_ingest(tmp_path):
    db = str(tmp_path / "t.db")
    r = invoke(cli, ["tables", "infer", str(PENGUINS), "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["risk"] == "low" and "proposal" not in json.loads(r.stdout)
    out = tmp_path / "penguins.yaml"
    r = invoke(cli, ["tables", "--db", db, "infer", str(PENGUINS), "--schema-out", str(out)])
    assert r.exit_code == 0, r.output
    assert "create penguins, low risk, applied" in r.stdout and "beak_length_mm" in r.stdout
    assert out.read_text().startswith("# Inferred by chronoledger from penguins.json")
    r = invoke(cli, ["tables", "--db", db, "infer", str(PENGUINS), "--dry-run", "--schema-out", str(out)])
    assert r.exit_code != 0 and "exists" in r.output
    text = out.read_text().replace("name: sex\n  type: string", "name: sex\n  type: string\n  allowed: [MALE, "
                                                                   "FEMALE]")
    strict = tmp_path / "strict.yaml"
    strict.write_text(text.replace("table: penguins", "table: strict_penguins"))
    assert invoke(cli, ["tables", "--db", db, "propose", str(strict)]).exit_code == 0
    r = invoke(cli, ["tables", "--db", db, "ingest", str(PENGUINS), "--table", "strict_penguins", "--json"])
    assert r.exit_code == 1
    found = json.loads(r.stdout)
    assert found["refused_records"] == 1 and found["refused"][0]["field"] == "sex"
    r = invoke(cli, ["tables", "--db", db, "ingest", str(PENGUINS), "--table", "penguins"])
    assert r.exit_code == 0 and "344 inserted, 0 refused" in r.stdout


def test_existing_schema_out_is_left_as_it_was(tmp_path):
    out = tmp_path / "s.yaml"
    out.write_text("mine")
    with pytest.raises(ExistsError):
        infer_files([PENGUINS]).write_schema(out)
    assert out.read_text() == "mine"


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".yaml"])
def test_any_bytes_give_records_a_schema_or_our_error(tmp_path, suffix):
    """Whatever a file holds, inference ends in a schema or in one of our errors."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    from chronoledger.errors import ChronoledgerError

    seeds = {".csv": b"a,b\n1,x\n", ".json": b'[{"a": 1}]', ".jsonl": b'{"a": 1}\n', ".yaml": b"- {a: 1}\n"}

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.binary(max_size=200), st.integers(0, 40))
    def run(noise, cut):
        f = tmp_path / f"f{suffix}"
        data = seeds[suffix][:cut] + noise + seeds[suffix][cut:]
        f.write_bytes(data)
        try:
            infer_files([f])
        except ChronoledgerError:
            pass
        assert f.read_bytes() == data

    run()


def test_columns_are_named_as_inference_named_them_and_nothing_is_lost(reg, tmp_path):
    """Name and name are two fields; a zip code keeps its zeros; a number past 64 bits keeps its digits."""
    f = tmp_path / "people.csv"
    f.write_text("Name,name,zip,big\nAda,Lovelace,00501,123456789012345678901234\n"
                 "Grace,Hopper,02134,18446744073709551615\nAlan,,10001,1\n")
    inference = infer_files([f])
    assert {g.key: (g.name, g.type) for g in inference.fields} == {
        "Name": ("name", "string"), "name": ("name_2", "string"), "zip": ("zip", "string"),
        "big": ("big", "string")}
    reg.approve(propose_inference(reg, inference)["id"])          # 3 records: medium risk, waits
    report = ingest(reg, "people", [f])
    assert (report.inserted, report.refused) == (3, [])
    got = {r["name"]: r for r in reg.query_rows("people")}
    assert got["Ada"]["name_2"] == "Lovelace" and got["Alan"]["name_2"] is None
    assert got["Ada"]["zip"] == "00501" and got["Grace"]["big"] == "18446744073709551615"


def test_json_numbers_past_64_bits_are_kept_exactly(reg, tmp_path):
    f = tmp_path / "n.jsonl"
    f.write_bytes(b'\xef\xbb\xbf{"n": 12345678901234567890123}\n{"n": 5}\n')      # with a BOM, as some tools write
    inference = infer_files([f])
    assert [g.type for g in inference.fields] == ["json"]
    reg.approve(propose_inference(reg, inference)["id"])
    assert ingest(reg, "n", [f]).inserted == 2
    assert sorted(r["n"] for r in reg.query_rows("n")) == [5, 12345678901234567890123]


def test_parquet_values_that_are_not_json_are_ingested_as_text(reg, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    from datetime import time, timedelta
    from decimal import Decimal

    p = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"at": [time(9, 30), time(17, 0)], "took": [timedelta(seconds=90), None],
                             "blob": [b"abc", b"d"], "money": pa.array([Decimal("1.50"), Decimal("2.25")],
                                                                       pa.decimal128(10, 2)),
                             "count": pa.array([Decimal("3"), Decimal("4")], pa.decimal128(38, 0))}), p)
    inference = infer_files([p])
    assert {g.name: g.type for g in inference.fields} == {"at": "string", "took": "string", "blob": "string",
                                                         "money": "string", "count": "integer"}
    reg.approve(propose_inference(reg, inference)["id"])
    assert ingest(reg, "odd", [p]).refused == []
    rows = sorted(reg.query_rows("odd"), key=lambda r: r["count"])
    assert [(r["at"], r["took"], r["blob"], r["money"], r["count"]) for r in rows] == [
        ("09:30:00", "0:01:30", "abc", "1.50", 3), ("17:00:00", None, "d", "2.25", 4)]


def test_parquet_with_a_column_named_twice_is_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4])], names=["a", "a"]), p)
    with pytest.raises(CorruptDataError, match=r"dup.parquet: the columns 'a' are named more than once"):
        infer_files([p])
    g = tmp_path / "garbage.parquet"
    g.write_bytes(b"PAR1 not really")
    with pytest.raises(CorruptDataError, match="garbage.parquet: not a Parquet file"):
        infer_files([g])


def test_csv_ids_and_times_with_spaces_around_them_are_read(reg, tmp_path):
    f = tmp_path / "ids.csv"
    f.write_text("ref,at\n 0f8e3a9c-5b1d-4c7e-9a2f-6d4b8c1e7a35 , 2025-01-02T03:04:05Z\n")
    inference = infer_files([f])
    assert [g.type for g in inference.fields] == ["uuid", "datetime"]
    reg.approve(propose_inference(reg, inference)["id"])
    assert ingest(reg, "ids", [f]).refused == []


def test_a_report_shows_values_json_cannot_hold(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("rows:\n- {a: x}\n- {a: y}\n- {a: z}\n- &x {a: [*x]}\n- {a: .inf}\n- {a: .nan}\n")
    r = invoke(cli, ["tables", "infer", str(f), "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    field = json.loads(r.stdout)["fields"][0]
    assert (field["type"], field["values"], field["fitting"]) == ("string", 5, 3)      # NaN: no value
    assert [m["value"] for m in field["misfits"]] == ["[{'a': [...]}]", "inf"]
