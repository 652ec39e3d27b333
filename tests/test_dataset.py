"""Many chronicles as one table (issue 20, first part): the rows and values
of every file exactly as each file reads alone, the run's header as columns,
pushdown of time ranges, phases and columns, DuckDB over it, and damage."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pytest

from chronoledger.chronicle import Chronicle
from chronoledger.dataset import dataset
from chronoledger.errors import ConfigError, CorruptDataError, MissingFileError, QueryError

from _chronicle_util import cycle_fields


def make_runs(folder, n_runs=4, n=950, block=128):
    """Runs under folder/seed=K/run.cmeta, each with its own config, seed, tags, and metrics."""
    paths = []
    for k in range(n_runs):
        p = folder / f"seed={k}" / "run.cmeta"
        p.parent.mkdir(parents=True, exist_ok=True)
        with Chronicle.open(p, "w", block_records=block, config={"lr": 0.1 * (k + 1), "agents": 100 * k,
                                                                  "name": f"r{k}"}, initial_seed=k) as ch:
            for i in range(n):
                f = cycle_fields(i)
                if k == 2:
                    f["metrics"] = dict(f["metrics"], extra=float(i))     # a metric only one run has
                ch.append(**f)
            ch.tag(f"k{k}", "sweep")
        paths.append(p)
    return paths


def alone(path):
    return Chronicle.open(path).to_arrow()


def test_the_dataset_is_every_file_as_it_reads_alone_with_the_run_header(tmp_path):
    paths = make_runs(tmp_path)
    ds = dataset(tmp_path)
    assert ds.runs == [f"seed={k}/run" for k in range(4)]
    table = ds.to_table()
    assert table.num_rows == 4 * 950
    for k, p in enumerate(paths):
        mine = table.filter(pa.compute.equal(table["run"].cast(pa.string()), f"seed={k}/run"))
        ref = alone(p)
        for name in ref.column_names:
            got = mine[name]
            want = ref[name].cast(got.type)
            assert got.to_pylist() == want.to_pylist(), (k, name)
        assert set(mine["seed"].to_pylist()) == {k}
        assert mine["tags"][0].as_py() == [f"k{k}", "sweep"]
        assert mine["config.lr"].to_pylist() == pytest.approx([0.1 * (k + 1)] * 950)
        assert set(mine["config.name"].to_pylist()) == {f"r{k}"}
        extra = mine["metrics.extra"].to_pylist()
        assert (extra[:3] == [0.0, 1.0, 2.0]) if k == 2 else set(extra) == {None}
    assert ds.schema.field("config.agents").type == pa.int64()
    assert ds.schema.field("phase").type == pa.dictionary(pa.int32(), pa.string())


def test_a_time_range_and_phases_are_pushed_down_and_cut_exactly(tmp_path):
    make_runs(tmp_path, n_runs=2)
    ds = dataset(tmp_path)
    everything = ds.to_table()
    got = ds.filter(start=300, end=701, phases=["train", "dream"]).to_table()
    ts = everything["timestamp"].to_numpy()
    ph = everything["phase"].cast(pa.string()).to_pylist()
    want = sum(1 for t, p in zip(ts, ph) if 300 <= t < 701 and p in ("train", "dream"))
    assert got.num_rows == want
    assert set(got["phase"].cast(pa.string()).to_pylist()) == {"train", "dream"}
    assert got["timestamp"].to_numpy().min() >= 300 and got["timestamp"].to_numpy().max() <= 700
    # blocks wholly outside the range are not decoded: no batch comes from them
    batches = list(ds.filter(start=300, end=400).to_batches())
    assert sum(b.num_rows for b in batches) == 2 * 100 and len(batches) <= 2 * 2
    assert dataset(tmp_path).filter(phases="nothing such").to_table().num_rows == 0


def test_only_the_columns_asked_for(tmp_path):
    make_runs(tmp_path, n_runs=2)
    t = dataset(tmp_path).select(["run", "loss_value", "config.lr"]).to_table()
    assert t.column_names == ["run", "loss_value", "config.lr"] and t.num_rows == 1900
    with pytest.raises(QueryError, match=r"no column 'loss'; the columns are run, seed, tags"):
        dataset(tmp_path).select(["loss"])


def test_duckdb_reads_the_dataset_as_a_table(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    paths = make_runs(tmp_path)
    ds = dataset(tmp_path)
    assert len(ds.runs) == 4                    # DuckDB finds `ds` among the caller's variables
    rows = duckdb.sql("SELECT run, min(loss_value) AS best, count(*) AS n FROM ds GROUP BY run ORDER BY run").fetchall()
    assert [r[0] for r in rows] == [f"seed={k}/run" for k in range(4)] and {r[2] for r in rows} == {950}
    ref = alone(paths[0])["loss_value"].to_numpy()
    assert rows[0][1] == pytest.approx(float(np.min(ref)))
    by_lr = duckdb.sql('SELECT "config.lr", avg(coherence) FROM ds WHERE phase = \'train\' GROUP BY 1 ORDER BY 1'
                       ).fetchall()
    assert len(by_lr) == 4


def test_a_glob_a_list_and_run_names(tmp_path):
    paths = make_runs(tmp_path, n_runs=3)
    assert dataset(str(tmp_path / "**" / "*.cmeta")).runs == ["seed=0/run", "seed=1/run", "seed=2/run"]
    with pytest.raises(ConfigError, match="two files would be run 'run'"):
        dataset([paths[2], paths[0]]).runs
    assert dataset([paths[1]]).runs == ["run"]
    with pytest.raises(MissingFileError, match="no such file or folder"):
        dataset(tmp_path / "nope")


def test_a_damaged_run_is_refused_or_skipped_never_a_wrong_row(tmp_path):
    paths = make_runs(tmp_path, n_runs=3)
    raw = bytearray(paths[1].read_bytes())
    raw[len(raw) // 2] ^= 0xFF                     # a flipped byte inside a block in the middle
    paths[1].write_bytes(bytes(raw))
    with pytest.raises(CorruptDataError, match="seed=1"):
        dataset(tmp_path).to_table()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = dataset(tmp_path, on_damage="skip")
        t = ds.to_table()
    assert ds.runs == ["seed=0/run", "seed=2/run"] and t.num_rows == 2 * 950
    assert [r for r, _ in ds.skipped] == ["seed=1/run"]
    assert any("is damaged and left out" in str(w.message) for w in caught)
    with pytest.raises(ConfigError, match="on_damage: 'ignore' is not one of raise, skip"):
        dataset(tmp_path, on_damage="ignore")


# --- the shell, and Parquet for other engines ----------------------------------------------------------

def test_query_from_the_shell_decodes_only_what_the_sql_names(tmp_path):
    import json
    from chronoledger.cli import cli
    from chronoledger.dataset.sql import needed_columns

    from _cli import invoke
    make_runs(tmp_path, n_runs=3)
    r = invoke(cli, ["query", "SELECT run, count(*) AS n, min(loss_value) AS best FROM runs GROUP BY run ORDER BY run",
                     str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [(x["run"], x["n"]) for x in rows] == [(f"seed={k}/run", 950) for k in range(3)]
    r = invoke(cli, ["query", 'SELECT "config.agents" AS agents, count(*) AS n FROM runs GROUP BY 1 ORDER BY 1',
                     str(tmp_path), "--phase", "train", "--start", "0", "--end", "70", "--csv"])
    assert r.exit_code == 0, r.output
    n = sum(1 for i in range(70) if cycle_fields(i)["phase"] == "train")
    assert r.stdout.splitlines() == ["agents,n", f"0,{n}", f"100,{n}", f"200,{n}"]
    names = ["run", "seed", "loss_value", "config.lr", "coherence"]
    assert needed_columns('SELECT run, "config.lr" FROM runs WHERE Loss_Value > 1', names) == ["run", "loss_value",
                                                                                                 "config.lr"]
    assert needed_columns("SELECT * FROM runs", names) is None
    r = invoke(cli, ["query", "SELECT nonsense FROM runs", str(tmp_path)])
    assert r.exit_code == 2 and "query:" in r.stderr


def test_export_dataset_is_hive_parquet_that_duckdb_and_pyarrow_read_back(tmp_path):
    import pyarrow.dataset as pads
    duckdb = pytest.importorskip("duckdb")
    from chronoledger.cli import cli

    from _cli import invoke
    runs = tmp_path / "runs"
    make_runs(runs, n_runs=3)
    out = tmp_path / "pq"
    r = invoke(cli, ["chronicle", "export-dataset", str(runs), str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == [f"run=seed%3D{k}%2Frun" for k in range(3)]
    back = duckdb.sql(f"SELECT run, count(*), min(loss_value) FROM read_parquet('{out}/*/*.parquet', "
                      f"hive_partitioning = true) GROUP BY run ORDER BY run").fetchall()
    mine = dataset(runs).to_table()
    assert [(x[0], x[1]) for x in back] == [(f"seed={k}/run", 950) for k in range(3)]
    t = pads.dataset(out, format="parquet", partitioning="hive").to_table()
    assert t.num_rows == mine.num_rows and set(t.column_names) == set(mine.column_names)
    r = invoke(cli, ["chronicle", "export-dataset", str(runs), str(out)])
    assert r.exit_code == 2 and "exists" in r.stderr
    assert invoke(cli, ["chronicle", "export-dataset", str(runs), str(out), "--force"]).exit_code == 0


def test_the_python_examples_of_docs_datasets_run(tmp_path, monkeypatch):
    """Every Python example of docs/datasets.md, in order, as written, against moto's S3 server on 127.0.0.1
    where the examples name theirs (its address and keys put in their place)."""
    import re
    from pathlib import Path
    boto3 = pytest.importorskip("boto3")
    doc = Path(__file__).resolve().parents[1] / "docs" / "datasets.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 6
    pytest.importorskip("moto.server")
    from _moto import start_s3
    srv, endpoint = start_s3()
    try:
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="minio", aws_secret_access_key="minio-secret",
                     region_name="us-east-1").create_bucket(Bucket="lab")
        monkeypatch.chdir(tmp_path)
        ns: dict = {}
        for block in blocks:
            exec(compile(block.replace("http://127.0.0.1:9000", endpoint), str(doc), "exec"), ns)
    finally:
        srv.stop()
    assert ns["best"][0][0] == "lr=0.1/run"
    assert ns["rows"] == [("lr=0.01/run", 5000), ("lr=0.03/run", 5000), ("lr=0.1/run", 5000)]
    assert ns["remote"].runs == ["lr=0.01/run", "lr=0.03/run", "lr=0.1/run"]
    assert ns["df"].npartitions == 3
    assert [a for a, _ in ns["talks"]] == [10.0, 20.0] and len(ns["kinds"]) == 4


# --- review: values, names and outputs that must be handled ------------------------------------------------

def _tiny(path, config):
    path.parent.mkdir(parents=True, exist_ok=True)
    with Chronicle.open(path, "w", config=config) as ch:
        for i in range(3):
            ch.append(**cycle_fields(i))


def test_config_values_every_run_can_hold_and_null_as_missing(tmp_path):
    _tiny(tmp_path / "a.cmeta", {"seed": 0xDEADBEEFCAFEF00D, "x": 2 ** 60, "opt": None, "lr": 1})
    _tiny(tmp_path / "b.cmeta", {"seed": 1, "x": 0.5, "opt": 3, "lr": 0.5})
    t = dataset(tmp_path).to_table()
    assert t["config.seed"].to_pylist()[::3] == [str(0xDEADBEEFCAFEF00D), "1"]     # past int64: text, exact
    assert t["config.x"].to_pylist()[::3] == [str(2 ** 60), "0.5"]                 # a float cannot hold 2**60
    assert t["config.opt"].to_pylist()[::3] == [None, 3]
    assert t["config.lr"].to_pylist()[::3] == [1.0, 0.5]


def test_sql_with_aliases_and_count_star(tmp_path):
    from chronoledger.dataset.sql import query
    make_runs(tmp_path, n_runs=2)
    got = query(dataset(tmp_path), "SELECT r.run, max(r.loss_value) AS m FROM runs r GROUP BY r.run ORDER BY 1")
    assert got.num_rows == 2 and got.column_names == ["run", "m"]
    assert query(dataset(tmp_path), "SELECT count(*) AS n FROM runs").to_pylist() == [{"n": 1900}]


def test_nothing_to_read_is_said_not_an_empty_answer(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match="holds no .cmeta file"):
        dataset(tmp_path / "empty")
    with pytest.raises(MissingFileError, match="the glob matches no file"):
        dataset(str(tmp_path / "*.cmet"))
    odd = tmp_path / "lr[0.1].cmeta"
    _tiny(odd, {})
    assert dataset(odd).runs == ["lr[0.1]"]
    with pytest.raises(ConfigError, match="sources are a path, a glob, a URL or a list of them, got int"):
        dataset(5)


def test_export_dataset_never_removes_what_it_reads(tmp_path):
    from chronoledger.dataset.export import export_dataset
    from chronoledger.errors import ExistsError
    make_runs(tmp_path / "src", n_runs=1)
    with pytest.raises(ConfigError, match="holds the run"):
        export_dataset(dataset(tmp_path / "src"), tmp_path / "src", force=True)
    with pytest.raises(ConfigError, match="holds the run"):
        export_dataset(dataset(tmp_path / "src"), tmp_path, force=True)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ExistsError, match="is a file, not a folder"):
        export_dataset(dataset(tmp_path / "src"), tmp_path / "afile", force=True)
    with pytest.raises(ConfigError, match="the output is a local folder"):
        export_dataset(dataset(tmp_path / "src"), "s3://bucket/out", force=True)
    assert len(list((tmp_path / "src").rglob("*.cmeta"))) == 1 and (tmp_path / "afile").read_text() == "x"


def test_dask_declares_the_types_its_partitions_hold(tmp_path):
    pytest.importorskip("dask.dataframe")
    import chronoledger.dask as cdask
    make_runs(tmp_path, n_runs=2)
    with Chronicle.open(tmp_path / "noseed.cmeta", "w") as ch:          # a run without a seed: a null there
        ch.append(**cycle_fields(0))
    df = cdask.read_chronicles(str(tmp_path))
    got = df.compute(scheduler="synchronous")
    assert dict(df.dtypes) == dict(got.dtypes)
    assert str(got["seed"].dtype) == "uint64[pyarrow]" and got["seed"].isna().sum() == 1
    first = got[got["run"].astype(str) == "seed=0/run"]
    assert list(first["tags"].iloc[0]) == ["k0", "sweep"] and list(got["tags"].iloc[0]) == []   # noseed sorts first
