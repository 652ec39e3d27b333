"""chronoledger.server: every endpoint over the demo's files, answered as
the library functions the CLI calls answer (Starlette's test client)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from chronoledger.chronicle import Chronicle
from chronoledger.chronicle.series import run_series
from chronoledger.cli import cli
from chronoledger.runtime import RuntimeMemoryStore
from chronoledger.sequence import dashboard
from chronoledger.sequence.query import run_query
from chronoledger.sequence.registry import mirror_folder
from chronoledger.server import ServeConfig, create_app
from chronoledger.tables import TableRegistry
from chronoledger.world.reporting import agent_day
from chronoledger.world.timeline import day_timeline

from _cli import invoke
from _server import TOKEN, make_demo

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BI = "memory_business_intelligence"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def client(files):
    cfg = ServeConfig(user=files.user, tables=files.tables, runtime=files.runtime, world=files.world,
                      runs=files.out, token=TOKEN)
    with TestClient(create_app(cfg)) as c:
        yield c


def get(client, url, status=200):
    r = client.get(url)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["ok"] is (status < 400)
    return body


# --- /api/data and /api/trends ---------------------------------------------------------------

def test_the_mirrors_their_tables_and_items(client, files):
    data = mirror_folder(files.user)
    dbs = get(client, "/api/data")["databases"]
    assert [d["name"] for d in dbs] == ["core", "events", "memory", "behavior", "matrix", "trends"]
    assert all(d["exists"] and d["size"] > 0 for d in dbs)
    tables = {t["name"]: t for t in get(client, "/api/data/tables?db=core")["tables"]}
    assert tables["items"]["rows"] == run_query(data, "SELECT count(*) FROM items")[1][0][0]
    assert "slug" in [c["name"] for c in tables["items"]["columns"]]
    habits = get(client, "/api/data/items?type=habit&limit=5")
    assert len(habits["items"]) == 5 and {i["type"] for i in habits["items"]} == {"habit"}
    assert habits["next_offset"] == 5
    page2 = get(client, "/api/data/items?type=habit&limit=5&offset=5")["items"]
    assert not {i["id"] for i in page2} & {i["id"] for i in habits["items"]}
    one = habits["items"][0]
    found = get(client, f"/api/data/items/{one['slug']}")
    assert found["item"]["id"] == one["id"] and isinstance(found["item"]["data"], dict)
    assert len(found["completions"]) == run_query(data, "SELECT count(*) FROM completions WHERE item_id = ?",
                                                  params=(one["id"],))[1][0][0]
    assert get(client, f"/api/data/items/{one['id']}")["item"]["slug"] == one["slug"]
    # a name search with LIKE's wildcards in it finds them as text
    assert get(client, "/api/data/items?q=%25")["items"] == []


def test_read_only_sql_with_paging_and_the_trend_metrics_in_chronos_shape(client, files):
    data = mirror_folder(files.user)
    total = run_query(data, "SELECT count(*) FROM completions")[1][0][0]
    first = get(client, "/api/data/query?sql=SELECT+id+FROM+completions+ORDER+BY+id&limit=100")
    assert first["columns"] == ["id"] and first["row_count"] == 100 and first["next_offset"] == 100
    rest = client.post("/api/data/query", json={"sql": "SELECT id FROM completions ORDER BY id", "limit": 10_000,
                                                "offset": 100}).json()
    assert rest["next_offset"] is None and len(rest["rows"]) == total - 100
    ids = [r[0] for r in first["rows"] + rest["rows"]]
    assert ids == sorted(ids) and len(set(ids)) == total
    bound = client.post("/api/data/query", json={"sql": "SELECT count(*) FROM items WHERE type = ?",
                                                 "params": ["habit"]}).json()
    assert bound["rows"] == [[run_query(data, "SELECT count(*) FROM items WHERE type = 'habit'")[1][0][0]]]
    trends = get(client, "/api/trends/metrics")
    assert trends == dashboard.trends_metrics(data)
    m = trends["metrics"]
    # the keys Chronos's trends widget reads (utilities/dashboard/widgets/trends/index.js)
    for group, keys in {"habit_stats": ["total_habits", "habits_with_current_streak", "longest_streak_overall",
                                        "completion_rate_today"],
                        "goal_stats": ["total_goals", "total_progress", "milestones_completed_this_week"],
                        "timer_stats": ["sessions_total", "focus_minutes"],
                        "adherence_stats": ["adherence_percentage", "on_time_count", "late_count"]}.items():
        assert all(isinstance(m[group][k], (int, float)) for k in keys), group
    assert isinstance(m["blocks_total"], int) and isinstance(m["quality_counts"], dict)
    digest = get(client, "/api/data/digest")["digest"]
    assert digest == json.loads((data / "tendencies.json").read_text())
    series = get(client, "/api/data/series")
    assert sum(sum(v) for v in series["completions"]["statuses"].values()) == total
    assert series["streaks"] == dashboard.habit_streaks(data)


# --- /api/tables ---------------------------------------------------------------------------------

def test_table_rows_listed_filtered_inserted_and_updated(client, files):
    tables = {t["table"]: t for t in get(client, "/api/tables")["tables"]}
    before = tables[BI]["rows"]
    r = client.post(f"/api/tables/{BI}/rows", json={"dashboard_name": "api-one", "category": "ops"}, headers=AUTH)
    assert r.status_code == 201, r.text
    row = r.json()["row"]
    assert row["dashboard_name"] == "api-one" and row["refresh_cadence"] == "daily"       # the table's default
    many = client.post(f"/api/tables/{BI}/rows", json=[{"dashboard_name": f"api-{k}"} for k in range(3)],
                       headers=AUTH)
    assert many.status_code == 201 and len(many.json()["rows"]) == 3
    assert get(client, f"/api/tables/{BI}")["schema"]["rows"] == before + 4
    where = json.dumps({"dashboard_name": {"like": "api-%"}})
    listed = get(client, f"/api/tables/{BI}/rows?where={where}&order_by=-dashboard_name&limit=3")
    assert [x["dashboard_name"] for x in listed["rows"]] == ["api-one", "api-2", "api-1"]
    assert listed["next_offset"] == 3
    assert get(client, f"/api/tables/{BI}/rows/{row['id']}")["row"] == row
    changed = client.patch(f"/api/tables/{BI}/rows/{row['id']}", json={"category": "finance"}, headers=AUTH)
    assert changed.status_code == 200 and changed.json()["row"]["category"] == "finance"
    with TableRegistry(files.tables) as reg:      # what the library reads is what the API wrote
        assert reg.get_row(BI, row["id"])["category"] == "finance"


def test_a_refused_row_names_every_bad_field_and_nothing_is_written(client):
    before = get(client, f"/api/tables/{BI}")["schema"]["rows"]
    r = client.post(f"/api/tables/{BI}/rows", json={"category": "nope", "refresh_cadence": "sometimes"},
                    headers=AUTH)
    assert r.status_code == 422
    body = r.json()
    assert body["ok"] is False and body["kind"] == "ValidationError"
    assert {p["field"] for p in body["problems"]} == {"dashboard_name", "category", "refresh_cadence"}
    batch = client.post(f"/api/tables/{BI}/rows", json=[{"dashboard_name": "fine"}, {"dashboard_name": "x",
                                                                                      "category": "bad"}],
                        headers=AUTH)
    assert batch.status_code == 422 and [p["row"] for p in batch.json()["problems"]] == [1]
    assert get(client, f"/api/tables/{BI}")["schema"]["rows"] == before          # not even the good row


def test_inference_on_an_upload_and_a_proposal_approved_and_rejected(client, files):
    csv = "species,bill_mm,mass_g\nAdelie,39.1,3750\nGentoo,46.1,5000\nChinstrap,46.5,3500\n"
    dry = client.post("/api/tables/infer?filename=penguins.csv&table=penguins", content=csv)
    assert dry.status_code == 200, dry.text
    inf = dry.json()["inference"]
    assert inf["table"] == "penguins" and inf["records"] == 3 and "proposal" not in inf
    assert client.post("/api/tables/infer?filename=penguins.csv&propose=1", content=csv).status_code == 401
    made = client.post("/api/tables/infer?filename=penguins.csv&table=penguins&propose=1", content=csv, headers=AUTH)
    assert made.status_code == 200, made.text
    proposal = made.json()["inference"]["proposal"]
    assert proposal["status"] == "pending" and proposal["risk"] == "medium"      # 3 records: not applied at once
    assert proposal["source"] == "penguins.csv (uploaded)" and "penguins.csv (uploaded)" in proposal["reason"]
    listed = get(client, "/api/tables/proposals?table=penguins")["proposals"]
    assert [p["id"] for p in listed] == [proposal["id"]]
    assert "penguins" not in [t["table"] for t in get(client, "/api/tables")["tables"]]
    done = client.post(f"/api/tables/proposals/{proposal['id']}/approve", json={"approver": "alice"}, headers=AUTH)
    assert done.status_code == 200, done.text
    assert done.json()["proposal"]["status"] == "applied" and done.json()["proposal"]["decided_by"] == "alice"
    assert "penguins" in [t["table"] for t in get(client, "/api/tables")["tables"]]
    # a second proposal for the same table (one record: high risk), rejected
    wider = "species,bill_mm,mass_g,island\nAdelie,39.1,3750,Torgersen\n"
    second = client.post("/api/tables/infer?filename=penguins.csv&table=penguins&propose=1&by=carol",
                         content=wider, headers=AUTH).json()["inference"]["proposal"]
    assert second["status"] == "pending" and second["proposed_by"] == "carol"
    rej = client.post(f"/api/tables/proposals/{second['id']}/reject", json={"approver": "bob", "reason": "no"},
                      headers=AUTH)
    assert rej.status_code == 200 and rej.json()["proposal"]["status"] == "rejected"
    assert get(client, f"/api/tables/proposals/{second['id']}")["proposal"]["status"] == "rejected"
    events = [(h["proposal_id"], h["event"].split()[0]) for h in get(client, "/api/tables/penguins/history")["history"]]
    assert (proposal["id"], "proposed") in events and (second["id"], "rejected") in events
    # a body sent in chunks (no Content-Length) is read as any other: the log names who decided
    third = client.post("/api/tables/infer?filename=birds.csv&table=birds&propose=1", content="kind,n\nowl,2\n",
                        headers=AUTH).json()["inference"]["proposal"]

    def chunks():
        yield b'{"approver": "chunky", '
        yield b'"reason": "sent in chunks"}'
    chunked = client.post(f"/api/tables/proposals/{third['id']}/reject", content=chunks(), headers=AUTH)
    assert chunked.status_code == 200, chunked.text
    assert chunked.json()["proposal"]["decided_by"] == "chunky"
    assert chunked.json()["proposal"]["decision_reason"] == "sent in chunks"
    again = client.post(f"/api/tables/proposals/{second['id']}/approve", json={}, headers=AUTH)
    assert again.status_code == 400 and "is rejected, not pending" in again.json()["error"]


# --- /api/runtime ----------------------------------------------------------------------------------

def test_runtime_sessions_replay_workflow_lineage_and_profile(client, files):
    with RuntimeMemoryStore(files.runtime, readonly=True) as s:
        page = s.list_sessions(limit=50)
        sid = page["sessions"][0]["id"]
        replay = s.session_replay(sid)
        runs = s.list_workflow_runs(limit=50)
        run = s.workflow_replay(runs["runs"][0]["id"])
        lineage = s.proposal_lineage(s.latest_proposal_id())
    got = get(client, "/api/runtime/sessions")
    assert got["sessions"] == page["sessions"] and got["next_cursor"] == page["next_cursor"]
    assert get(client, f"/api/runtime/sessions/{sid}")["session"] == replay
    paged = get(client, f"/api/runtime/sessions/{sid}?limit=1")["session"]
    assert paged["turns"] == replay["turns"][:1]
    assert get(client, "/api/runtime/workflows")["runs"] == runs["runs"]
    assert get(client, f"/api/runtime/workflows/{run['id']}")["run"] == run
    assert get(client, "/api/runtime/lineage/latest")["lineage"] == lineage
    assert get(client, f"/api/runtime/lineage/{lineage['proposal']['id']}")["lineage"] == lineage
    assert get(client, "/api/runtime/proposals")["proposals"][0]["id"] == lineage["proposal"]["id"]
    missing = get(client, "/api/runtime/profiles/nobody", status=404)
    assert "no behavior profile 'nobody'" in missing["error"]
    assert get(client, "/api/runtime/sessions/no-such-session", status=404)["kind"] == "NotFoundError"


# --- /api/runs and /api/world --------------------------------------------------------------------

def test_runs_listed_charted_thinned_with_extremes_and_verified(client, files):
    runs = {r["run"]: r for r in get(client, "/api/runs")["runs"]}
    assert {"learner.cmeta", "world/world-run-1.cmeta"} <= set(runs)
    with Chronicle.open(files.out / "learner.cmeta") as ch:
        loss = np.asarray(ch.to_numpy(["loss_value"])["loss_value"], dtype=np.float64)
        assert runs["learner.cmeta"]["records"] == len(ch) == len(loss)
        assert runs["learner.cmeta"]["config"] == ch.config
    s = get(client, "/api/runs/learner.cmeta/series?metrics=loss_value&points=100")["series"]
    y = s["metrics"]["loss_value"]["y"]
    assert len(y) <= 100 and s["thinned"] is True and s["records"] == len(loss)
    assert min(y) == pytest.approx(loss.min()) and max(y) == pytest.approx(loss.max())     # extremes kept
    want = run_series(files.out / "learner.cmeta", ["loss_value"], 100)
    del want["path"]
    assert s == {**json.loads(json.dumps(want)), "run": "learner.cmeta"}
    full = get(client, "/api/runs/learner.cmeta/series?metrics=loss_value&full=1")["series"]
    assert len(full["metrics"]["loss_value"]["y"]) == len(loss) and full["thinned"] is False
    assert full["phases"][0][2] in ("train", "validate", "dream")
    v = get(client, "/api/runs/learner.cmeta/verify")["verify"]
    assert v["ok"] is True and v["path"] == "learner.cmeta" and v["checks"]
    bad = get(client, "/api/runs/learner.cmeta/series?metrics=no_such", status=400)
    assert "no column 'no_such'" in bad["error"]


def test_world_runs_timeline_and_one_agents_day(client, files):
    runs = get(client, "/api/world/runs")["runs"]
    assert runs[0]["days"] == ["2026-01-05"]
    tl = get(client, "/api/world/timeline")["timeline"]
    assert tl == json.loads(json.dumps(day_timeline(files.world)))
    assert len(tl["moves"]) == len(tl["agents"]) == runs[0]["agents"]
    name = tl["agents"][0]["name"]
    day = get(client, f"/api/world/agents/{name}?day=2026-01-05")["day"]
    assert day == json.loads(json.dumps(agent_day(files.world, "2026-01-05", name)))
    assert "its days: 2026-01-05" in get(client, "/api/world/timeline?day=2030-01-01", status=404)["error"]
    assert "day: which day" in get(client, f"/api/world/agents/{name}", status=400)["error"]


def test_the_openapi_description_covers_every_endpoint(client):
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "chronoledger"
    api = sorted({r.path.replace(":path}", "}") for r in client.app.routes
                  if getattr(r, "path", "").startswith("/api/")})
    assert sorted(spec["paths"]) == api
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), f"{method.upper()} {path} has no summary"
    validate(spec)                          # a valid OpenAPI 3 document (openapi-spec-validator)
    rows_post = spec["paths"]["/api/tables/{table}/rows"]["post"]
    assert rows_post["security"] == [{"token": []}] and "201" in rows_post["responses"]
    series = spec["paths"]["/api/runs/{run}/series"]["get"]
    assert {p["name"] for p in series["parameters"]} == {"run", "metrics", "points", "full"}
    page = client.get("/docs")
    assert page.status_code == 200 and "/api/trends/metrics" in page.text


def test_the_serve_command_says_what_it_needs(tmp_path):
    result = invoke(cli, ["serve", "--world", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "none.db" in result.stderr
    result = invoke(cli, ["serve", "--token", "short", "--port", "1"])
    assert result.exit_code == 2 and "at least 8 characters" in result.stderr
