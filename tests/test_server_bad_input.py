"""chronoledger.server refuses bad input with a 4xx JSON error naming the
problem, and writes nothing: malformed JSON, unknown tables and fields, SQL
that writes, huge bodies, path traversal, a missing or wrong token."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from chronoledger.sequence.registry import mirror_folder
from chronoledger.server import ServeConfig, create_app
from chronoledger.cli import cli
from chronoledger.errors import ConfigError

from _cli import invoke
from _server import TOKEN, make_demo

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BI = "memory_business_intelligence"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("demo"))


def digest(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


@pytest.fixture()
def client(files):
    cfg = ServeConfig(user=files.user, tables=files.tables, runtime=files.runtime, world=files.world,
                      runs=files.out, token=TOKEN, max_body=4096, sql_timeout=0.5)
    with TestClient(create_app(cfg), raise_server_exceptions=False) as c:
        yield c


def refused(r, status: int, *words: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["ok"] is False and isinstance(body["error"], str)
    for w in words:
        assert w in body["error"], body["error"]
    return body


def count(client) -> int:
    return client.get(f"/api/tables/{BI}").json()["schema"]["rows"]


def test_malformed_json_and_bodies_that_are_not_rows(client):
    before = count(client)
    post = lambda body, **kw: client.post(f"/api/tables/{BI}/rows", content=body, headers=AUTH, **kw)  # noqa: E731
    refused(post(b'{"dashboard_name": "a",,}'), 400, "the row: not JSON", "line 1, column 24")
    refused(post(b""), 400, "the row is empty")
    refused(post(b"\xff\xfe{}"), 400, "not UTF-8", "byte 0")
    refused(post(b'"just text"'), 400, "a JSON object (one row) or a list of them")
    refused(post(b'[{"dashboard_name": "a"}, 3]'), 400, "a JSON list of objects")
    refused(client.patch(f"/api/tables/{BI}/rows/x", content=b"[1]", headers=AUTH), 400, "a JSON object of the fields")
    refused(client.post("/api/data/query", content=b"{", headers=AUTH), 400, "the body: not JSON")
    deep = b"[" * 2000 + b"]" * 2000          # past Python's recursion limit, inside the 4 KB body limit
    refused(post(deep), 400, "the row: JSON nested too deeply")
    refused(client.get(f"/api/tables/{BI}/rows", params={"where": "[" * 2000 + "]" * 2000}), 400,
            "where: JSON nested too deeply")
    refused(client.post("/api/data/query", json={"sql": "SELECT 1", "colour": 1}), 400, "unknown field(s) colour")
    assert count(client) == before


def test_unknown_tables_fields_rows_and_names(client):
    before = count(client)
    body = refused(client.get("/api/tables/no_such_table/rows"), 404, "no table 'no_such_table'", BI)
    assert body["kind"] == "NotFoundError"
    refused(client.post("/api/tables/no_such_table/rows", json={"a": 1}, headers=AUTH), 404, "no table")
    refused(client.get("/api/tables/x;DROP TABLE y/rows"), 404, "no such name")
    bad = refused(client.post(f"/api/tables/{BI}/rows", json={"dashboard_name": "ok", "colour": "red",
                                                              "category": "nope"}, headers=AUTH), 422, "colour")
    assert {p["field"] for p in bad["problems"]} == {"colour", "category"}
    refused(client.get(f"/api/tables/{BI}/rows/00000000-0000-0000-0000-000000000000"), 404, "no row")
    refused(client.patch(f"/api/tables/{BI}/rows/00000000-0000-0000-0000-000000000000", json={"owner": "x"},
                         headers=AUTH), 404, "no row")
    refused(client.get(f"/api/tables/{BI}/rows?where=" + '{"colour": {"eq": 1}}'), 400, "colour")
    refused(client.get(f"/api/tables/{BI}/rows?where=[1]"), 400, "a JSON object of filters")
    refused(client.get(f"/api/tables/{BI}/rows?limit=abc"), 400, "limit: 'abc' is not a whole number")
    refused(client.get(f"/api/tables/{BI}/rows?limit=0"), 400, "limit: 0 is outside 1..1000")
    refused(client.get("/api/data/tables?db=nope"), 400, "no mirror 'nope'")
    refused(client.get(f"/api/tables/{BI}/rows?offset=99999999999999999999999"), 400, "offset")
    refused(client.get("/api/tables/proposals?status=bogus"), 400, "status: 'bogus' is not one of pending")
    refused(client.get("/api/tables/infer"), 405, "POST the file")
    refused(client.get("/api/runtime/profiles/x?kind=mood"), 400, "kind: 'mood'")
    refused(client.get("/api/world/timeline?run=99"), 404, "no run 99")
    refused(client.get("/api/nothing/here"), 404, "no such endpoint: GET /api/nothing/here")
    refused(client.delete("/api/tables"), 405, "DELETE is not allowed on /api/tables")
    assert count(client) == before


def test_sql_that_writes_or_runs_away_is_refused_and_the_mirrors_stay_byte_identical(client, files):
    mirrors = sorted(mirror_folder(files.user).glob("*.db"))
    before = digest(mirrors)
    for sql in ("DELETE FROM items", "UPDATE items SET name = 'x'", "DROP TABLE items", "CREATE TABLE t (a)",
                "INSERT INTO items (slug) VALUES ('x')", "ATTACH DATABASE '/tmp/evil.db' AS evil",
                "PRAGMA user_version = 7", "SELECT 1; DROP TABLE items", "SELECT load_extension('x')"):
        refused(client.post("/api/data/query", json={"sql": sql}), 400)
    refused(client.get("/api/data/query", params={"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                                                         "FROM c) SELECT count(*) FROM c"}),
            400, "longer than its time limit of 0.5 s")
    refused(client.get("/api/data/query"), 400, "sql: one SQL statement that reads")
    refused(client.post("/api/data/query", json={"sql": "SELECT 1", "limit": 10_001}), 400, "limit")
    refused(client.post("/api/data/query", json={"sql": "SELECT ?", "params": 3}), 400, "params")
    for body in ({"sql": "SELECT 1", "db": ["core"]}, {"sql": "SELECT ?", "params": [[1]]},
                 {"sql": "SELECT ?", "params": [{"a": 1}]}, {"sql": "SELECT ?", "params": [10 ** 30]}):
        refused(client.post("/api/data/query", json=body), 400)
    refused(client.post("/api/data/query", json={"sql": "SELECT :a", "params": {"b": 1}}), 400, "cannot be used")
    refused(client.post("/api/data/query", content=b'{"sql": "SELECT \'\\ud800\'"}'), 400)     # a lone surrogate
    # answers are bounded in bytes as in rows: a value SQLite would make a gigabyte of is refused
    refused(client.get("/api/data/query", params={"sql": "SELECT zeroblob(1000000000)"}), 422, "too large")
    refused(client.post("/api/data/query", json={"sql": "SELECT zeroblob(20000000) FROM items LIMIT 3",
                                                 "limit": 3}), 400, "bytes of text and blobs")
    assert digest(mirrors) == before
    assert not Path("/tmp/evil.db").exists() or Path("/tmp/evil.db").stat().st_size == 0


def test_huge_bodies_are_refused_before_they_are_read_whole(client):
    before = count(client)
    big = b'{"dashboard_name": "' + b"x" * 10_000 + b'"}'
    refused(client.post(f"/api/tables/{BI}/rows", content=big, headers=AUTH), 413, "10,0", "at most 4,096")

    def chunks():                       # no Content-Length: refused as the stream passes the limit
        for _ in range(10):
            yield b"x" * 1000
    refused(client.post(f"/api/tables/{BI}/rows", content=chunks(), headers=AUTH), 413, "over 4,096 bytes")
    refused(client.post("/api/tables/infer?filename=a.csv", content=b"a\n" + b"1\n" * 5000), 413)
    refused(client.post(f"/api/tables/{BI}/rows", content=b"{}", headers={**AUTH, "Content-Length": "nope"}), 400,
            "Content-Length")
    assert count(client) == before


def test_path_traversal_in_every_path_parameter(client, files, tmp_path):
    outside = tmp_path / "secret.cmeta"
    outside.write_bytes(b"not yours")
    link = files.out / "link.cmeta"
    os.symlink(outside, link)
    try:
        for run in ("%2e%2e/secret.cmeta", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a/%2e%2e/%2e%2e/x.cmeta",
                    "a//b.cmeta", ".%2Flearner.cmeta"):
            for tail in ("", "/series", "/verify"):
                body = refused(client.get(f"/api/runs/{run}{tail}"), 400)
                assert "runs folder" in body["error"]
        refused(client.get("/api/runs/link.cmeta/series"), 400, "leaves the runs folder")
        refused(client.get("/api/runs/manifest.json"), 404, "not a chronicle")
        refused(client.get("/api/runs/nothing.cmeta"), 404, "no chronicle 'nothing.cmeta'")
        # the static files and the other path parameters
        assert client.get("/static/%2e%2e/app.py").status_code == 404
        assert client.get("/static/..%2Fapp.py").status_code == 404
        refused(client.get("/api/tables/..%2F..%2Fetc/rows"), 404)
        refused(client.get("/api/data/items/..%2F..%2Fetc%2Fpasswd"), 404)
        refused(client.get("/api/data/items/..%5C..%5Cetc"), 404, "no item")
        refused(client.get("/api/world/agents/..%2F..?day=2026-01-05"), 404)
        refused(client.get("/api/world/agents/%2e%2e?day=2026-01-05"), 404, "no agent '..'")
        refused(client.get("/api/runtime/sessions/..%2F..%2Fetc"), 404)
        listed = client.get("/api/runs").json()
        assert "link.cmeta" not in [r["run"] for r in listed["runs"] + listed["unreadable"]]    # never read
        (files.out / "folder.cmeta").mkdir()
        (files.out / "damaged.cmeta").write_bytes(b"CLMT" + b"\0" * 100)
        listed = client.get("/api/runs").json()
        assert "learner.cmeta" in [r["run"] for r in listed["runs"]]
        assert [r["run"] for r in listed["unreadable"]] == ["damaged.cmeta"]
        assert str(files.out) not in listed["unreadable"][0]["error"]
        refused(client.get("/api/runs/folder.cmeta"), 404, "no chronicle")
        for tail in ("", "/series"):            # named by the run, not by the server's own path
            body = refused(client.get(f"/api/runs/damaged.cmeta{tail}"), 500, "damaged.cmeta: not a chronicle")
            assert str(files.out) not in body["error"] and body["kind"] == "CorruptDataError"
        checks = client.get("/api/runs/damaged.cmeta/verify").json()["verify"]
        assert checks["ok"] is False and str(files.out) not in json.dumps(checks)
        refused(client.get("/api/runs/" + "a" * 300 + ".cmeta"), 404, "no chronicle")
    finally:
        link.unlink()
        for leftover in ("folder.cmeta", "damaged.cmeta"):
            p = files.out / leftover
            if p.is_dir():
                p.rmdir()
            elif p.exists():
                p.unlink()
    assert outside.read_bytes() == b"not yours"


def test_writes_need_the_right_token_and_a_server_without_one_is_read_only(client, files):
    before = count(client)
    row = {"dashboard_name": "token-check"}
    refused(client.post(f"/api/tables/{BI}/rows", json=row), 401, "needs the server's token")
    assert client.post(f"/api/tables/{BI}/rows", json=row).headers["www-authenticate"] == "Bearer"
    refused(client.post(f"/api/tables/{BI}/rows", json=row, headers={"Authorization": "Bearer wrong-token-xx"}), 401,
            "the token is wrong")
    refused(client.post(f"/api/tables/{BI}/rows", json=row, headers={"Authorization": f"Basic {TOKEN}"}), 401,
            "the token is wrong")
    proposal = client.get("/api/tables/proposals").json()["proposals"][0]["id"]
    refused(client.post(f"/api/tables/proposals/{proposal}/approve", json={}), 401)
    refused(client.post(f"/api/tables/proposals/{proposal}/approve", json={"approver": ["a"]}, headers=AUTH), 400,
            "both text")
    assert count(client) == before
    with TestClient(create_app(ServeConfig(tables=files.tables))) as ro:
        refused(ro.post(f"/api/tables/{BI}/rows", json=row, headers=AUTH), 403, "read-only", "--token")
        assert ro.get(f"/api/tables/{BI}/rows").status_code == 200          # reads need nothing
        refused(ro.get("/api/world/runs"), 404, "started without --world DB")
        assert "started without" in ro.get("/world").text
    assert count(client) == before


def test_a_configuration_that_cannot_serve_is_refused_before_it_starts(tmp_path):
    with pytest.raises(ConfigError, match="--world: .*no such database file"):
        ServeConfig(world=tmp_path / "none.db")
    with pytest.raises(ConfigError, match="--runs: .*no such folder"):
        ServeConfig(runs=tmp_path / "none")
    with pytest.raises(ConfigError, match="at least 8 characters"):
        ServeConfig(token="short")
    with pytest.raises(ConfigError, match="no spaces"):
        ServeConfig(token="        spaced")


def test_a_store_that_is_not_what_its_option_says_is_refused_when_the_server_starts(files):
    for option, path, words in (("--world", files.out / "learner.cmeta", "not a world database"),
                                ("--runtime", files.out / "learner.cmeta", "cannot be served"),
                                ("--tables", files.out / "learner.cmeta", "cannot be served"),
                                ("--user", files.out / "world", "neither it nor a folder in it")):
        r = invoke(cli, ["serve", option, str(path), "--port", "1"])
        assert r.exit_code == 2 and option in r.stderr and words in r.stderr, r.stderr


def test_uploads_that_cannot_be_read_are_422_naming_the_upload(client):
    for name, body in (("bad.json", b"{bad"), ("list.json", b"[1, 2, 3]"), ("bad.csv", b"\xff\xfe,a\n1,2\n"),
                       ("bad.yaml", b"a: [1"), ("bad.parquet", b"not parquet")):
        r = client.post(f"/api/tables/infer?filename={name}", content=body)
        body_ = refused(r, 422, f"{name} (uploaded)")
        assert "chronoledger-infer" not in body_["error"]
    refused(client.post("/api/tables/infer?filename=a%00.csv", content=b"a\n1\n"), 400, "filename")
    refused(client.post("/api/tables/infer?filename=../a.csv", content=b"a\n1\n"), 400, "no folders")


def test_series_parameters_are_checked(client):
    refused(client.get("/api/runs/learner.cmeta/series?metrics=,,,"), 400, "name at least one metric")
    refused(client.get("/api/runs/learner.cmeta/series?full=2"), 400, "full: '2' is not yes or no")
    refused(client.get("/api/runs/learner.cmeta/series?full=1&points=abc"), 400, "points")
