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
import functools
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from chronoledger.sequence import events_builder, metastudy, reader, schema
from chronoledger.sequence import sync as seq
from chronoledger.sequence.records import Problem, rel_path
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


def _lowered(value, depth: int, keep_depth: int, drop: frozenset):
    """A loaded value with its mapping keys stripped and lower-cased (those at
    ``keep_depth`` as written) and the keys in ``drop`` left out, as ours reads them."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and depth != keep_depth:
                k = k.strip().lower()
            if k in drop:
                continue
            out[k] = _lowered(v, depth + 1, keep_depth, drop)
        return out
    if isinstance(value, list):
        return [_lowered(v, depth + 1, keep_depth, drop) for v in value]
    return value


def peer_load_yaml(loader, root, path, expect=None, keep_case=False, drop_keys=frozenset()):
    """A peer's reading of one file: ``yaml.load(f, Loader=loader)``, then the
    keys lower-cased in one walk, with the same problems for bad files."""
    rel = rel_path(root, path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        if not raw or raw.isspace():
            return None, Problem(rel, None, "the file is empty")
        data = yaml.load(raw, Loader=loader)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        return None, Problem(rel, None, f"malformed YAML: {exc}")
    data = _lowered(data, 0, 1 if keep_case else -1, drop_keys)
    if expect is not None and not isinstance(data, dict if expect == "dict" else list):
        return None, Problem(rel, 1, "expected a " + expect)
    return data, None


class Batched:
    """The builders' connection interface over stdlib sqlite3 as a careful
    hand-written pipeline would use it: WAL, one transaction per database,
    ``executemany`` for every batch of rows."""

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("BEGIN")

    def execute(self, sql: str, params=()):
        if ";" in sql.strip().rstrip(";"):
            for stmt in sql.split(";"):       # executescript would commit the open transaction
                if stmt.strip():
                    self.conn.execute(stmt)
            return self.conn.cursor()
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows) -> None:
        self.conn.executemany(sql, rows)

    def commit(self) -> None:
        self.conn.execute("COMMIT")


def naive_sync(user: Path, fair: bool = False) -> None:
    """The straightforward pipeline (pure-Python loader, one execute per row),
    or with ``fair`` the fair peer (C loader, WAL, one transaction, executemany)."""
    real = reader.load_yaml
    reader.load_yaml = functools.partial(peer_load_yaml, yaml.CSafeLoader if fair else yaml.SafeLoader)
    try:
        tree = reader.read_user_folder(user)
    finally:
        reader.load_yaml = real
    conn = Batched if fair else RowByRow
    data = mirror_folder(user)
    data.mkdir(parents=True, exist_ok=True)
    b = seq.Builder(tree)
    for name, fill in (("core", b.core), ("memory", b.memory), ("behavior", b.behavior), ("matrix", b.matrix)):
        p = data / schema.FILES[name]
        p.unlink(missing_ok=True)
        c = conn(p)
        fill(c)
        c.commit() if fair else c.conn.commit()
        c.conn.close()
    p = data / schema.FILES["events"]
    p.unlink(missing_ok=True)
    c = conn(p)
    c.execute(schema.EVENTS)
    events = events_builder.events(b.records)
    c.executemany("INSERT INTO events (ts, event_type, payload_json) VALUES (?, ?, ?)",
                  [(ts, et, to_json(p)) for ts, et, p in events])
    c.executemany("INSERT INTO trigger_log (ts, source_type, source_name, trigger, period, outcome, actions_json, "
                  "detail_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  [(t["ts"], t["source_type"], t["source_name"], t["trigger"], t["period"], t["outcome"],
                    to_json(t["actions"]), to_json(t["detail"])) for t in b.records.triggers()])
    c.commit() if fair else c.conn.commit()
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


def change_files(user: Path, share: float, seed: int) -> int:
    """Edit ``share`` of the folder's YAML files whose top level is a mapping
    (a new key at the end: the file's size, bytes and mtime change), as a
    day's use would; returns how many were changed."""
    paths = sorted(p for p in user.rglob("*.yml") if mirror_folder(user) not in p.parents)
    rng = random.Random(seed)
    rng.shuffle(paths)
    want, done = max(1, round(len(paths) * share)), 0
    for p in paths:
        if done == want:
            break
        text = p.read_text(encoding="utf-8")
        if not text.endswith("\n") or text.lstrip().startswith("-"):
            continue
        p.write_text(f"{text}bench_edit_{seed}: {done}\n", encoding="utf-8")
        done += 1
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-straightforward", action="store_true",
                    help="leave out the straightforward pipeline (the fair peer is always run)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    opt = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_sequence_") as tmp:
        t = time.perf_counter()
        user = write_user_folder(Path(tmp) / "ours", opt.items, opt.days)
        t_gen = time.perf_counter() - t
        files = sum(len(f) for _, _, f in os.walk(user))
        peers = {"fair": write_user_folder(Path(tmp) / "fair", opt.items, opt.days)}
        if not opt.no_straightforward:
            peers["straightforward"] = write_user_folder(Path(tmp) / "naive", opt.items, opt.days)
        report = seq.sync(user)                               # warm-up, and the figures to check against
        ours_counts = counts(mirror_folder(user))
        ours_counts.pop("events.command_runs", None)
        for name, peer_user in peers.items():
            naive_sync(peer_user, fair=name == "fair")
            peer_counts = counts(mirror_folder(peer_user))
            peer_counts.pop("events.command_runs", None)
            assert ours_counts == peer_counts, (name, {k: (ours_counts.get(k), peer_counts.get(k))
                                                       for k in set(ours_counts) | set(peer_counts)
                                                       if ours_counts.get(k) != peer_counts.get(k)})
        t_ours: list[float] = []
        t_peer: dict[str, list[float]] = {name: [] for name in peers}
        for _ in range(opt.repeat):
            # a full sync from nothing on every side: no earlier mirror (or parse cache) to reuse
            shutil.rmtree(mirror_folder(user))
            t = time.perf_counter()
            seq.sync(user)
            t_ours.append(time.perf_counter() - t)
            for name, peer_user in peers.items():
                shutil.rmtree(mirror_folder(peer_user))
                t = time.perf_counter()
                naive_sync(peer_user, fair=name == "fair")
                t_peer[name].append(time.perf_counter() - t)
        # the nightly re-sync: the mirrors (and whatever the last sync kept) are there, 1 % of the files changed
        t_night: list[float] = []
        changed = 0
        for i in range(opt.repeat):
            changed = change_files(user, 0.01, seed=i)
            t = time.perf_counter()
            seq.sync(user)
            t_night.append(time.perf_counter() - t)
        a, night = statistics.median(t_ours), statistics.median(t_night)
        b = {name: statistics.median(v) for name, v in t_peer.items()}
        with seq._cycle_collection_paused():                   # as inside a sync
            t = time.perf_counter()
            reader.read_user_folder(user)
            t_read = time.perf_counter() - t
    n = report.items
    fair = b["fair"]
    rows = [["sequence sync, cold (all six mirrors)", f"{a:.2f}", f"{n / a:,.0f}", f"{files / a:,.0f}",
             f"{fair / a:.2f}x"],
            ["  of which reading the YAML (libyaml)", f"{t_read:.2f}", "", "", ""],
            [f"sequence sync, nightly ({changed} files changed)", f"{night:.2f}", f"{n / night:,.0f}",
             f"{files / night:,.0f}", f"{fair / night:.2f}x"],
            ["fair peer: CSafeLoader, WAL, one transaction, executemany", f"{fair:.2f}", f"{n / fair:,.0f}",
             f"{files / fair:,.0f}", "1.00x"]]
    if "straightforward" in b:
        s = b["straightforward"]
        rows.append(["straightforward: SafeLoader, one execute per row", f"{s:.2f}", f"{n / s:,.0f}",
                     f"{files / s:,.0f}", f"{fair / s:.2f}x"])
    table(f"Sync of a generated user folder: {n:,} items, {opt.days} days of logs, {files:,} files "
          f"(written in {t_gen:.0f} s); medians of {opt.repeat}",
          ["what", "seconds", "items/s", "files/s", "against the fair peer"], rows)
    RESULTS.update({"items": n, "days": opt.days, "files": files, "ours_seconds": a, "nightly_seconds": night,
                    "nightly_changed_files": changed, "fair_seconds": fair,
                    "straightforward_seconds": b.get("straightforward"),
                    "ours_items_per_s": n / a, "speedup_cold": fair / a, "speedup_nightly": fair / night,
                    "read_seconds": t_read, "rows": ours_counts})
    target("cold full sync vs the fair peer", ">= 3x", f"{fair / a:.2f}x ({n / a:,.0f} items/s)", fair / a >= 3)
    target("nightly re-sync (1 % changed) vs the fair peer's full sync", ">= 4x", f"{fair / night:.2f}x",
           fair / night >= 4)
    if "straightforward" in b:
        s = b["straightforward"]
        target("full sync vs the straightforward pipeline", ">= 5x", f"{s / a:.1f}x", s / a >= 5)
    target.report(RESULTS, opt.json, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
