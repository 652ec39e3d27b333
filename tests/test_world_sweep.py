"""World parameter sweeps (issue 20): every combination for every seed, in
this process, in worker processes and on a Dask LocalCluster, a seed giving
the same run wherever it ran; the summary and the runs read as datasets."""

from __future__ import annotations

import hashlib
import json

import pytest

from chronoledger.cli import cli
from chronoledger.dataset import dataset
from chronoledger.errors import ConfigError, ExistsError
from chronoledger.world.sweep import parse_param, parse_seeds, plan, sweep

from _cli import invoke


def logs(out):
    return {p.relative_to(out / "runs").as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((out / "runs").rglob("run.cmeta"))}


def test_parameters_and_seeds_are_read_and_refused_clearly():
    assert parse_param("agents=100,1000") == ("agents", [100, 1000])
    assert parse_param("memory.retrieve=0,3") == ("memory.retrieve", [0, 3])
    assert parse_param("model.name=a,b") == ("model.name", ["a", "b"])
    assert parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("1,5") == [1, 5] and parse_seeds("7") == [7]
    for bad, msg in [("agents", "write NAME=VALUE"), ("agents=0", "at least 1"), ("agents=5,5", "given twice")]:
        with pytest.raises(ConfigError, match=msg):
            parse_param(bad)
    for bad in ("3-1", "x", "1,1", "-2"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)
    runs = plan({"agents": [10, 20], "memory.retrieve": [0, 3]}, [0, 1])
    assert len(runs) == 8 and runs[0].folder == "agents=10/memory.retrieve=0/seed=0"


def test_a_seed_gives_the_same_run_here_in_processes_and_on_a_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    params = {"agents": [12, 24], "memory.retrieve": [0, 3]}
    here = sweep(tmp_path / "here", params, [0, 1], processes=1)
    pooled = sweep(tmp_path / "pooled", params, [0, 1], processes=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        clustered = sweep(tmp_path / "cluster", params, [0, 1], scheduler=client)
    assert len(here.runs) == 8
    assert logs(tmp_path / "here") == logs(tmp_path / "pooled") == logs(tmp_path / "cluster")
    assert [r["folder"] for r in pooled.runs] == [r["folder"] for r in here.runs]
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in here.runs]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in clustered.runs]
    assert len(set(logs(tmp_path / "here").values())) == 8        # and every run differs from the others


def test_the_summary_and_the_runs_are_datasets(tmp_path):
    done = sweep(tmp_path, {"agents": [10, 20]}, [0, 1, 2], processes=1)
    summary = dataset(done.summary).to_table().to_pylist()
    assert [(json.loads(r["payload"])["folder"], r["values.agents"], r["values.seed"]) for r in summary] == [
        (f"agents={a}/seed={s}", float(a), float(s)) for a in (10, 20) for s in (0, 1, 2)]
    assert [r["values.conversations"] for r in summary] == [float(r["conversations"]) for r in done.runs]
    runs = dataset(tmp_path / "runs")
    assert runs.runs == [f"agents={a}/seed={s}/run" for a in (10, 20) for s in (0, 1, 2)]
    with pytest.raises(ExistsError, match="holds a sweep already"):
        sweep(tmp_path, {"agents": [10]}, [0], processes=1)
    again = sweep(tmp_path, {"agents": [10]}, [0], processes=1, force=True)
    assert len(again.runs) == 1


def test_sweep_from_the_shell(tmp_path):
    out = tmp_path / "s"
    r = invoke(cli, ["world", "sweep", "--param", "agents=10,15", "--seeds", "0-1", "--out", str(out), "--processes",
                     "1", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert [x["folder"] for x in got["runs"]] == ["agents=10/seed=0", "agents=10/seed=1", "agents=15/seed=0",
                                                 "agents=15/seed=1"]
    r = invoke(cli, ["query", 'SELECT count(*) AS n FROM runs', str(out / "summary.cmeta"), "--csv"])
    assert r.stdout.splitlines() == ["n", "4"]
    r = invoke(cli, ["world", "sweep", "--param", "agents=0", "--out", str(tmp_path / "t")])
    assert r.exit_code == 2 and "at least 1" in r.stderr
    r = invoke(cli, ["world", "sweep", "--param", "memory.nonsense=1", "--out", str(tmp_path / "u"), "--processes", "1"])
    assert r.exit_code == 2 and "nonsense" in r.stderr


def test_a_sweep_run_again_is_that_sweep_only_and_every_value_is_checked_first(tmp_path):
    sweep(tmp_path, {"agents": [10, 12]}, [0, 1], processes=1)
    sweep(tmp_path, {"agents": [11]}, [5], processes=1, force=True)
    assert dataset(tmp_path / "runs").runs == ["agents=11/seed=5/run"]
    with pytest.raises(ConfigError, match="abc"):
        sweep(tmp_path / "v", {"memory.retrieve": [0, "abc"]}, [0], processes=1)
    assert not (tmp_path / "v" / "runs").exists()
    with pytest.raises(ConfigError, match="would both run in"):
        plan({"model.name": ["a b", "a_b"]}, [0])
    with pytest.raises(ConfigError, match="not a parameter's name"):
        parse_param("../../x=1")
    for bad in ({"processes": 0}, {"processes": -1}):
        with pytest.raises(ConfigError, match="processes"):
            sweep(tmp_path / "p", {"agents": [10]}, [0], **bad)
    with pytest.raises(ConfigError, match="seeds are whole numbers"):
        sweep(tmp_path / "s", {"agents": [10]}, [-1], processes=1)
