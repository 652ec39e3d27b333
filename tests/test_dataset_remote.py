"""Chronicles in object storage (issue 20): a real S3 API server (moto's, on
127.0.0.1) holds the runs; the dataset reads them through fsspec by ranges,
the same rows as the local files, and a time range of a large file fetches
a small part of it."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from chronoledger.chronicle import Chronicle
from chronoledger.dataset import dataset

from _moto import start_s3

pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")
boto3 = pytest.importorskip("boto3")


@pytest.fixture(scope="module")
def s3():
    srv, endpoint = start_s3()
    # moto keeps one store for every server of the process: a bucket of these tests' own
    bucket = f"lab-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s",
                 region_name="us-east-1").create_bucket(Bucket=bucket)
    options = {"key": "k", "secret": "s", "endpoint_url": endpoint}
    yield s3fs.S3FileSystem(**options), options, bucket
    srv.stop()


def write(path, n, block=8192, seconds=1_000_000, k=0):
    """n records one second apart (timestamps in microseconds), blocks of ``block``."""
    ts = np.arange(n, dtype=np.uint64) * seconds
    noise = np.random.default_rng(k).random(n).astype(np.float32)       # what a real loss looks like to a codec
    cols = {"timestamp": ts, "phase": np.array(["train", "eval"], dtype=object)[(np.arange(n) // 100) % 2],
            "loss_value": (1.0 / (1 + np.arange(n) + k) + noise * 1e-3).astype(np.float32),
            "coherence": np.full(n, 0.5, np.float32), "tensor_signature": np.zeros((n, 3), np.float32),
            "action_code": np.full(n, -1, np.int16), "seed_state": np.arange(n, dtype=np.uint64)}
    with Chronicle.open(path, "w", block_records=block, config={"k": k}, initial_seed=k) as ch:
        ch.extend(cols)


def test_runs_in_s3_read_as_the_same_table_as_the_local_files(tmp_path, s3):
    fs, options, bucket = s3
    local = tmp_path / "runs"
    for k in range(3):
        (local / f"k={k}").mkdir(parents=True)
        write(local / f"k={k}" / "run.cmeta", 30_000 + k, k=k)
    fs.put(str(local), f"{bucket}/exp1/runs", recursive=True)
    remote = dataset(f"s3://{bucket}/exp1/runs/", storage_options=options)
    assert remote.runs == ["k=0/run", "k=1/run", "k=2/run"]
    got, want = remote.to_table(), dataset(local).to_table()
    assert got.num_rows == want.num_rows == 90_003
    for name in want.column_names:
        assert got[name].to_pylist() == want[name].to_pylist(), name
    glob = dataset(f"s3://{bucket}/exp1/runs/**/*.cmeta", storage_options=options)
    assert glob.runs == remote.runs


def test_a_time_range_of_a_large_remote_file_fetches_a_small_part_of_it(tmp_path, s3):
    fs, options, bucket = s3
    big = tmp_path / "big.cmeta"
    write(big, 2_000_000, block=8192)
    fs.put(str(big), f"{bucket}/big/run.cmeta")
    size = fs.size(f"{bucket}/big/run.cmeta")
    hour = dataset(f"s3://{bucket}/big/run.cmeta", storage_options=options).filter(start=500_000 * 10 ** 6,
                                                                            end=(500_000 + 3600) * 10 ** 6)
    t = hour.to_table()
    assert t.num_rows == 3600 and t["timestamp"].to_numpy()[0] == 500_000 * 10 ** 6
    assert hour.bytes_fetched < 0.02 * size, (hour.bytes_fetched, size)
    ref = dataset(big).filter(start=500_000 * 10 ** 6, end=(500_000 + 3600) * 10 ** 6).to_table()
    assert t["loss_value"].to_pylist() == ref["loss_value"].to_pylist()


def test_a_damaged_remote_run_is_refused_or_skipped(tmp_path, s3):
    import warnings
    from chronoledger.errors import CorruptDataError
    fs, options, bucket = s3
    for k in range(2):
        p = tmp_path / f"r{k}.cmeta"
        write(p, 20_000, k=k)
        raw = bytearray(p.read_bytes())
        if k == 1:
            raw[len(raw) // 3] ^= 0x55
        fs.pipe(f"{bucket}/dmg/r{k}.cmeta", bytes(raw))
    with pytest.raises(CorruptDataError, match="r1"):
        dataset(f"s3://{bucket}/dmg/", storage_options=options).to_table()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dataset(f"s3://{bucket}/dmg/", storage_options=options, on_damage="skip")
        assert ds.to_table().num_rows == 20_000 and [r for r, _ in ds.skipped] == ["r1"]


def test_dask_reads_runs_from_s3_on_a_local_cluster(tmp_path, s3):
    distributed = pytest.importorskip("distributed")
    import chronoledger.dask as cdask
    fs, options, bucket = s3
    for k in range(2):
        p = tmp_path / f"r{k}.cmeta"
        write(p, 10_000, k=k)
        fs.put(str(p), f"{bucket}/dask/r{k}.cmeta")
    df = cdask.read_chronicles(f"s3://{bucket}/dask/", columns=["run", "loss_value"], storage_options=options)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
            distributed.Client(lc):
        best = df.groupby("run", observed=True).loss_value.min().compute().sort_index()
    assert list(best.index.astype(str)) == ["r0", "r1"]
    want = [dataset(tmp_path / f"r{k}.cmeta").to_table()["loss_value"].to_numpy().min() for k in range(2)]
    assert np.allclose(best.to_numpy(), want)


def test_a_chronicle_written_to_s3_is_uploaded_whole_when_closed(s3):
    from chronoledger.dataset import open_remote
    from chronoledger.errors import ExistsError
    fs, options, bucket = s3
    url = f"s3://{bucket}/written/run.cmeta"
    with open_remote(url, config={"lr": 0.1}, initial_seed=5, storage_options=options) as ch:
        for i in range(1000):
            ch.append(timestamp=i, phase="train", loss_value=1.0 / (i + 1), coherence=0.5,
                      tensor_signature=(0.0, 0.0, 0.0), action_code=None, seed_state=i, metrics={})
        assert not fs.exists(f"{bucket}/written/run.cmeta")      # nothing in storage until it is whole
    t = dataset(url, storage_options=options).to_table()
    assert t.num_rows == 1000 and t["seed"][0].as_py() == 5 and t["config.lr"][0].as_py() == 0.1
    with pytest.raises(ExistsError, match="exists"):
        with open_remote(url, "x", storage_options=options):
            pass
    with pytest.raises(RuntimeError, match="stopped"):
        with open_remote(f"s3://{bucket}/written/failed.cmeta", storage_options=options) as ch:
            raise RuntimeError("stopped")
    assert not fs.exists(f"{bucket}/written/failed.cmeta")


def test_the_shell_reads_urls(tmp_path, s3, monkeypatch):
    import json
    from chronoledger.cli import cli

    from _cli import invoke
    fs, options, bucket = s3
    write(tmp_path / "r.cmeta", 5_000)
    fs.put(str(tmp_path / "r.cmeta"), f"{bucket}/cli/r.cmeta")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_ENDPOINT_URL", options["endpoint_url"])     # s3fs (botocore) reads it
    r = invoke(cli, ["query", "SELECT run, count(*) AS n FROM runs GROUP BY run", f"s3://{bucket}/cli/", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [{"run": "r", "n": 5000}]
    r = invoke(cli, ["query", "SELECT 1 FROM runs", f"s3://{bucket}/nothing-here/"])
    assert r.exit_code == 3 and "no such file or folder" in r.stderr
