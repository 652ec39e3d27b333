"""``sequence sync`` against the straightforward pipeline, in one process, on
the same generated user folder.

    python benchmarks/bench_sequence.py                      # 20,000 items, two years of logs (~2 min)
    python benchmarks/bench_sequence.py --items 2000 --days 120 --repeat 1

The straightforward pipeline reads every file with PyYAML's pure-Python
loader (``yaml.load(..., SafeLoader)``) and inserts the same rows one
``execute`` at a time through the standard library's sqlite3 (one implicit
transaction per database, its default).  It builds the same six mirrors
with the same row logic (and the same chronicle log and metastudy), so the
figure measures the loader and the way rows reach SQLite.  Both sides'
mirrors are checked to hold the same rows before anything is timed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from chronoledger.sequence import events_builder, metastudy, reader, schema, yamlfile
from chronoledger.sequence import sync as seq
from chronoledger.sequence.registry import mirror_folder
from chronoledger.sequence.sample import write_user_folder
from chronoledger.sequence.values import to_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_peers import Targets, table  # noqa: E402

RESULTS: dict = {}
target = Targets()


class RowByRow:
    """The builders' connection interface over stdlib sqlite3, one execute per row."""

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(path)

    def execute(self, sql: str, params=()):
        if ";" in sql.strip().rstrip(";"):
            self.conn.executescript(sql)
            return self.conn.cursor()
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows) -> None:
        for row in rows:
            self.conn.execute(sql, row)


class PurePythonLoader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, keys lower-cased as ours are."""


def _lower_key_map(loader, node):
    data: dict = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=False)
        data[key.strip().lower() if isinstance(key, str) else key] = loader.construct_object(value_node, deep=False)


PurePythonLoader.add_constructor("tag:yaml.org,2002:map", _lower_key_map)


def naive_sync(user: Path) -> None:
    real = yamlfile.Loader
    yamlfile.Loader = PurePythonLoader
    try:
        tree = reader.read_user_folder(user)
    finally:
        yamlfile.Loader = real
    data = mirror_folder(user)
    data.mkdir(parents=True, exist_ok=True)
    b = seq.Builder(tree)
    for name, fill in (("core", b.core), ("memory", b.memory), ("behavior", b.behavior), ("matrix", b.matrix)):
        p = data / schema.FILES[name]
        p.unlink(missing_ok=True)
        c = RowByRow(p)
        fill(c)
        c.conn.commit()
        c.conn.close()
    p = data / schema.FILES["events"]
    p.unlink(missing_ok=True)
    c = RowByRow(p)
    c.execute(schema.EVENTS)
    events = events_builder.events(b.records)
    c.executemany("INSERT INTO events (ts, event_type, payload_json) VALUES (?, ?, ?)",
                  [(ts, et, to_json(p)) for ts, et, p in events])
    c.executemany("INSERT INTO trigger_log (ts, source_type, source_name, trigger, period, outcome, actions_json, "
                  "detail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  [(t["ts"], t["source_type"], t["source_name"], t["trigger"], t["period"], t["outcome"],
                    to_json(t["actions"]), to_json(t["detail"])) for t in b.records.triggers()])
    c.conn.commit()
    c.conn.close()
    events_builder.pending_event_log(data, events).commit()
    metastudy.build_trends(data)


def counts(data: Path) -> dict:
    out = {}
    for name, f in schema.FILES.items():
        conn = sqlite3.connect(data / f)
        for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            out[f"{name}.{t}"] = conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        conn.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    opt = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_sequence_") as tmp:
        ours_root, naive_root = Path(tmp) / "ours", Path(tmp) / "naive"
        t = time.perf_counter()
        user = write_user_folder(ours_root, opt.items, opt.days)
        t_gen = time.perf_counter() - t
        files = sum(len(f) for _, _, f in os.walk(user))
        naive_user = write_user_folder(naive_root, opt.items, opt.days)
        report = seq.sync(user)                               # warm-up, and the figures to check against
        naive_sync(naive_user)
        ours_counts, naive_counts = counts(mirror_folder(user)), counts(mirror_folder(naive_user))
        ours_counts.pop("events.command_runs", None)
        naive_counts.pop("events.command_runs", None)
        assert ours_counts == naive_counts, {k: (ours_counts.get(k), naive_counts.get(k))
                                             for k in set(ours_counts) | set(naive_counts)
                                             if ours_counts.get(k) != naive_counts.get(k)}
        t_ours, t_naive = [], []
        for _ in range(opt.repeat):
            # a full sync from nothing on both sides: no earlier mirror to reuse
            shutil.rmtree(mirror_folder(user))
            t = time.perf_counter()
            seq.sync(user)
            t_ours.append(time.perf_counter() - t)
            shutil.rmtree(mirror_folder(naive_user))
            t = time.perf_counter()
            naive_sync(naive_user)
            t_naive.append(time.perf_counter() - t)
        a, b = statistics.median(t_ours), statistics.median(t_naive)
        with seq._cycle_collection_paused():                   # as inside a sync
            t = time.perf_counter()
            reader.read_user_folder(user)
            t_read = time.perf_counter() - t
    n = report.items
    rows = [["sequence sync (all six mirrors)", f"{a:.2f}", f"{n / a:,.0f}", f"{files / a:,.0f}", ""],
            ["  of which reading the YAML (libyaml)", f"{t_read:.2f}", "", "", ""],
            ["straightforward pipeline", f"{b:.2f}", f"{n / b:,.0f}", f"{files / b:,.0f}", f"{b / a:.1f}x"]]
    table(f"Full sync of a generated user folder: {n:,} items, {opt.days} days of logs, {files:,} files "
          f"(written in {t_gen:.0f} s); medians of {opt.repeat}",
          ["what", "seconds", "items/s", "files/s", "ours faster by"], rows)
    RESULTS.update({"items": n, "days": opt.days, "files": files, "ours_seconds": a, "naive_seconds": b,
                    "ours_items_per_s": n / a, "naive_items_per_s": n / b, "speedup": b / a,
                    "read_seconds": t_read, "rows": ours_counts})
    target("full sync vs the straightforward pipeline", ">= 5x", f"{b / a:.1f}x ({n / a:,.0f} items/s)", b / a >= 5)
    target.report(RESULTS, opt.json, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
