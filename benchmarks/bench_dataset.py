"""Many chronicles as one dataset against DuckDB's own Parquet reader, and a
world sweep on a cluster against one process.

    python benchmarks/bench_dataset.py                        # 1,000 runs of 100,000 records (about 4 GB of files)
    python benchmarks/bench_dataset.py scan --runs 100 --records 100000
    python benchmarks/bench_dataset.py sweep                  # 8 runs of 2,000 agents x 1 day, twice
    python benchmarks/bench_dataset.py remote                 # a one-hour range of a 10 M-record file in S3

sweep: ``chronoledger.world.sweep`` of the same runs in one process and on
a ``distributed.LocalCluster`` of 2 worker processes (started before the
clock), each run's figures compared.

scan:
ours: ``duckdb`` answering ``SELECT run, min(loss_value), avg(coherence)
FROM runs GROUP BY run`` over ``chronoledger.dataset(folder)`` (the way
``chronoledger query`` runs it: only the columns the SQL names are
decoded).  The peer: the same query by DuckDB's own Parquet reader
(``read_parquet(..., hive_partitioning = true)``, its parallel scan) over
the same records exported as Hive-partitioned Parquet by
``chronicle export-dataset``, once zstd and once Snappy, the faster of the
two counting.  Each side's answer is checked against the other's; they run
in turns, best of --repeat, with the files in the page cache (each side
reads everything once first).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_peers import Targets, table  # noqa: E402

from chronoledger import workload  # noqa: E402
from chronoledger.chronicle import Chronicle  # noqa: E402
from chronoledger.dataset import dataset  # noqa: E402
from chronoledger.dataset.export import export_dataset  # noqa: E402
from chronoledger.dataset.sql import query  # noqa: E402

RESULTS: dict = {}
target = Targets()
SQL = "SELECT run, min(loss_value) AS best, avg(coherence) AS mean_coherence FROM runs GROUP BY run ORDER BY run"


def build(folder: Path, runs: int, records: int) -> None:
    base = workload.generate(records, seed=7)
    labels = {"phase": list(workload.PHASES)}
    for k in range(runs):
        p = folder / f"run{k:05d}.cmeta"
        cols = {"timestamp": base["timestamp"], "phase": base["phase"], "loss_value": base["loss"] * (1 + k / runs),
                "coherence": base["coherence"], "tensor_signature": base["tensor_signature"],
                "action_code": np.where(base["action_present"], base["action_code"].astype(np.int16), np.int16(-1)),
                "seed_state": base["seed_state"]}
        with Chronicle.open(p, "w", config={"k": k, "lr": 0.001 * (k % 7 + 1)}, initial_seed=k) as ch:
            ch.extend(cols, labels=labels)


def _warm() -> None:
    """Import what every run imports first, on a worker."""
    import importlib
    importlib.import_module("chronoledger.world.sweep")


def bench_sweep(opt, work: Path) -> None:
    """A world sweep in one process against a LocalCluster of 2 worker processes (the same runs)."""
    import distributed

    from chronoledger.world.sweep import sweep
    params = {"agents": [opt.sweep_agents]}
    seeds = list(range(opt.sweep_runs))
    t = time.perf_counter()
    one = sweep(work / "one", params, seeds, processes=1)
    t_one = time.perf_counter() - t
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        client.run(_warm)                    # the workers are up, the world imported, before the clock starts
        t = time.perf_counter()
        two = sweep(work / "two", params, seeds, scheduler=client)
        t_two = time.perf_counter() - t
    assert [r["conversations"] for r in one.runs] == [r["conversations"] for r in two.runs], "sweep: runs differ"
    ratio = t_one / t_two
    table(f"A world sweep: {len(seeds)} runs of {opt.sweep_agents:,} agents x 1 day",
          ["what", "seconds", "faster by"],
          [["one process", f"{t_one:.1f}", ""], ["LocalCluster, 2 worker processes", f"{t_two:.1f}", f"{ratio:.2f}x"]])
    RESULTS["sweep"] = {"runs": len(seeds), "agents": opt.sweep_agents, "one_s": t_one, "cluster_s": t_two,
                        "ratio": ratio}
    target("a sweep on a LocalCluster of 2 workers vs one process", ">= 1.7x", f"{ratio:.2f}x", ratio >= 1.7)


def bench_remote(opt, work: Path) -> None:
    """A one-hour time range of a large chronicle in S3 (moto's server on 127.0.0.1): the bytes fetched."""
    import logging
    import socket

    import boto3
    import s3fs
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    n = opt.remote_records
    rng = np.random.default_rng(3)
    path = work / "big.cmeta"
    cols = {"timestamp": np.arange(n, dtype=np.uint64) * 1_000_000, "phase": np.array(["train"] * n, dtype=object),
            "loss_value": (1 / (1 + np.arange(n)) + rng.random(n) * 1e-3).astype(np.float32),
            "coherence": rng.random(n).astype(np.float32), "tensor_signature": rng.random((n, 3)).astype(np.float32),
            "action_code": np.full(n, -1, np.int16), "seed_state": rng.integers(0, 2 ** 63, n, dtype=np.uint64)}
    with Chronicle.open(path, "w") as ch:
        ch.extend(cols)
    with socket.socket() as sock:               # a free port (moto 5.0 cannot say which one it took for port 0)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    try:
        options = {"key": "k", "secret": "s", "endpoint_url": f"http://127.0.0.1:{port}"}
        boto3.client("s3", endpoint_url=options["endpoint_url"], aws_access_key_id="k", aws_secret_access_key="s",
                     region_name="us-east-1").create_bucket(Bucket="bench")
        s3fs.S3FileSystem(**options).put(str(path), "bench/big.cmeta")
        mid = n // 2 * 1_000_000
        t = time.perf_counter()
        hour = dataset("s3://bench/big.cmeta", storage_options=options).filter(start=mid, end=mid + 3600 * 1_000_000)
        rows = hour.to_table().num_rows
        dt = time.perf_counter() - t
    finally:
        srv.stop()
    size = path.stat().st_size
    share = hour.bytes_fetched / size
    assert rows == 3600, "remote: rows"
    table(f"A one-hour range of a {n:,}-record chronicle in S3 (moto on 127.0.0.1)",
          ["file bytes", "fetched", "share", "requests", "seconds"],
          [[f"{size:,}", f"{hour.bytes_fetched:,}", f"{share:.3%}", f"{hour.requests}", f"{dt:.2f}"]])
    RESULTS["remote"] = {"records": n, "file_bytes": size, "fetched": hour.bytes_fetched, "share": share,
                         "requests": hour.requests}
    target("a one-hour range of a 10 M-record remote file", "< 1 % of its bytes", f"{share:.3%}", share < 0.01)


def main(argv: list[str] | None = None) -> int:
    import duckdb
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sections", nargs="*", choices=["scan", "sweep", "remote", []], default=[])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sweep-runs", type=int, default=8, help="runs of the sweep (seeds)")
    ap.add_argument("--sweep-agents", type=int, default=2000, help="agents of each run of the sweep")
    ap.add_argument("--remote-records", type=int, default=10_000_000, help="records of the remote file")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    opt = ap.parse_args(argv)
    t0 = time.perf_counter()
    sections = opt.sections or ["scan", "sweep", "remote"]
    if "remote" in sections:
        with tempfile.TemporaryDirectory(prefix="bench_remote_") as tmp:
            bench_remote(opt, Path(tmp))
    if "sweep" in sections:
        with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
            bench_sweep(opt, Path(tmp))
    if "scan" not in sections:
        target.report(RESULTS, opt.json, t0)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_dataset_") as tmp:
        work = Path(tmp)
        runs = work / "runs"
        runs.mkdir()
        t = time.perf_counter()
        build(runs, opt.runs, opt.records)
        t_build = time.perf_counter() - t
        ds = dataset(runs)
        pq = {}
        for codec in ("zstd", "snappy"):
            t = time.perf_counter()
            export_dataset(ds, work / f"pq-{codec}", compression=codec)
            pq[codec] = time.perf_counter() - t
        size_ours = sum(p.stat().st_size for p in runs.iterdir())
        size_pq = {c: sum(p.stat().st_size for p in (work / f"pq-{c}").rglob("*.parquet")) for c in pq}

        def ours():
            return query(dataset(runs), SQL).to_pylist()

        def peer(codec):
            def run():
                return duckdb.sql(SQL.replace("FROM runs", f"FROM read_parquet('{work}/pq-{codec}/*/*.parquet', "
                                                           f"hive_partitioning = true)")).fetchall()
            return run

        want = ours()
        for codec in pq:
            got = peer(codec)()
            assert [r[0] for r in got] == [w["run"] for w in want], "peer: runs"
            assert np.allclose([r[1] for r in got], [w["best"] for w in want]), "peer: minimum"
            assert np.allclose([r[2] for r in got], [w["mean_coherence"] for w in want]), "peer: mean"
        times: dict[str, list[float]] = {"ours": [], "zstd": [], "snappy": []}
        for _ in range(opt.repeat):
            for name, fn in (("ours", ours), ("zstd", peer("zstd")), ("snappy", peer("snappy"))):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        best = {k: min(v) for k, v in times.items()}
        peer_best = min(best["zstd"], best["snappy"])
        n = opt.runs * opt.records
        ratio = peer_best / best["ours"]
        rows = [["chronoledger.dataset -> DuckDB (2 columns decoded)", f"{best['ours']:.3f}",
                 f"{n / best['ours'] / 1e6:,.0f}", f"{size_ours / 1e9:.2f}", ""],
                [f"DuckDB read_parquet, zstd (exported in {pq['zstd']:.0f} s)", f"{best['zstd']:.3f}",
                 f"{n / best['zstd'] / 1e6:,.0f}", f"{size_pq['zstd'] / 1e9:.2f}", f"{best['zstd'] / best['ours']:.2f}x"],
                [f"DuckDB read_parquet, Snappy (exported in {pq['snappy']:.0f} s)", f"{best['snappy']:.3f}",
                 f"{n / best['snappy'] / 1e6:,.0f}", f"{size_pq['snappy'] / 1e9:.2f}",
                 f"{best['snappy'] / best['ours']:.2f}x"]]
        table(f"{SQL!r} over {opt.runs:,} runs of {opt.records:,} records ({n:,}; built in {t_build:.0f} s), "
              f"best of {opt.repeat}", ["what", "seconds", "M records/s", "GB", "ours faster by"], rows)
        RESULTS["scan"] = {"runs": opt.runs, "records": opt.records, "times": times, "ratio": ratio,
                           "bytes_ours": size_ours, "bytes_parquet": size_pq}
        target("scan into a DuckDB aggregation vs DuckDB's Parquet reader", ">= 0.8x", f"{ratio:.2f}x", ratio >= 0.8)
    target.report(RESULTS, opt.json, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
