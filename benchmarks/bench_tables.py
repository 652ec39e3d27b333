"""TableRegistry's validated batch inserts against plain sqlite3
``executemany`` and sqlite-utils' insert, and an indexed query over a
million rows, in one process.

    python benchmarks/bench_tables.py                 # 100,000 rows in batches of 1,000; 1 M rows queried (~1 min)
    python benchmarks/bench_tables.py --rows 20000 --big 100000

Both sides write the same rows (execution logs: 19 fields, JSON and times)
to a table with the same columns and indexes, in WAL mode with
synchronous=NORMAL, in batches of the same size.  sqlite-utils
(``Table.insert_all``) checks nothing; ours checks every field's type,
allowed values, range and required-ness, fills defaults and generated ids,
and publishes one event per row to the chronicle log.  The plain peer is
what one writes without a library: the rows as tuples (JSON serialised),
``executemany`` in one transaction per batch, nothing checked or logged.
The query is
``query_rows`` with an equality and a range filter on an indexed pair of
fields, ordered, limited to 20 rows, decoded to dicts: the whole call.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_peers import Targets, interleaved_medians, table  # noqa: E402

from chronoledger.tables import TableRegistry  # noqa: E402

RESULTS: dict = {}
target = Targets()
TABLE = "memory_execution_logs"
STATUSES = ["running", "succeeded", "failed", "cancelled", "timed_out"]
COMMANDS = ["deploy", "test", "build", "migrate", "heal", "backup"]


def make_rows(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        day, sec = rnd.randrange(1, 28), rnd.randrange(86400)
        started = f"2026-{rnd.randrange(1, 13):02d}-{day:02d}T{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}Z"
        status = rnd.choice(STATUSES)
        rows.append({
            "execution_id": f"exec-{seed}-{i}",
            "command_type": rnd.choice(COMMANDS),
            "component": f"svc-{rnd.randrange(40)}",
            "status": status,
            "started_at": started,
            "duration_ms": rnd.randrange(5, 90_000),
            "exit_code": 0 if status == "succeeded" else rnd.randrange(1, 3),
            "error_message": None if status == "succeeded" else "connection reset by peer",
            "resource_usage": {"cpu_ms": rnd.randrange(10_000), "rss_mb": rnd.randrange(50, 900)},
            "linked_playbook_id": None if rnd.random() < 0.8 else f"playbook-{rnd.randrange(20)}",
        })
    return rows


def peer_db(path: Path, ddl: str):
    import sqlite_utils

    db = sqlite_utils.Database(str(path))
    db.conn.executescript(ddl)
    db.enable_wal()
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def plain_db(path: Path, ddl: str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level="DEFERRED")
    conn.executescript(ddl)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--big", type=int, default=1_000_000, help="rows in the table the query runs on")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    opt = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = make_rows(opt.rows)
    batches = [rows[i:i + opt.batch] for i in range(0, len(rows), opt.batch)]
    with tempfile.TemporaryDirectory(prefix="bench_tables_") as tmp:
        tmp = Path(tmp)
        # each timed run writes to a database of its own, created and opened beforehand (on both sides)
        fresh: dict[str, list] = {"ours": [], "peer": [], "plain": []}

        def ours():
            reg = fresh["ours"].pop()
            for b in batches:
                reg.insert_all(TABLE, b)
            reg.close()

        with TableRegistry(tmp / "ddl.db", events_log=None) as reg:
            reg.load_all_schemas()
            reg_schema = reg.schema(TABLE)
            ddl = reg_schema.create_sql()
        # the peer is handed the id and times ours generates, ready made
        stamp = "2026-11-21T00:00:00.000000Z"
        peer_batches = [[dict(r, id=f"{i:08d}-0000-7000-8000-{j:012d}", created_at=stamp, updated_at=stamp)
                         for j, r in enumerate(b)] for i, b in enumerate(batches)]

        def peer():
            db = fresh["peer"].pop()
            for b in peer_batches:
                db[TABLE].insert_all(b, batch_size=opt.batch)
            db.conn.close()

        # what a strong engineer writes without a library: the same rows as tuples in column order (JSON
        # serialised, ids and times ready made as above), one executemany per batch in one transaction each,
        # WAL with synchronous=NORMAL; no checks, no event log
        columns = [f.name for f in reg_schema.fields]
        json_cols = {f.name for f in reg_schema.fields if f.type == "json"}
        insert_sql = f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"

        def plain():
            conn = fresh["plain"].pop()
            dumps = json.dumps
            for b in peer_batches:
                tuples = [tuple(dumps(r[c]) if c in json_cols and r.get(c) is not None else r.get(c)
                                for c in columns) for r in b]
                with conn:
                    conn.executemany(insert_sql, tuples)
            conn.close()

        # both sides store the same rows: checked on one batch before timing
        with TableRegistry(tmp / "check.db", events_log=None) as reg:
            reg.load_all_schemas()
            stored = reg.insert_rows(TABLE, batches[0])
        db = peer_db(tmp / "check_peer.db", ddl)
        db[TABLE].insert_all(peer_batches[0])
        for a, b in zip(stored, db[TABLE].rows):
            for k in ("execution_id", "command_type", "component", "status", "duration_ms", "exit_code",
                      "error_message", "linked_playbook_id"):
                assert a[k] == b[k], (k, a[k], b[k])
            assert a["resource_usage"] == json.loads(b["resource_usage"])
            assert a["started_at"][:19] == b["started_at"][:19]
        db.conn.close()

        for i in range(opt.repeat + 1):                  # the warm-up run, then the timed ones
            reg = TableRegistry(tmp / f"ours{i}.db")
            reg.load_all_schemas()
            fresh["ours"].append(reg)
            fresh["peer"].append(peer_db(tmp / f"peer{i}.db", ddl))
            fresh["plain"].append(plain_db(tmp / f"plain{i}.db", ddl))
        t_ours, t_peer, t_plain = interleaved_medians([ours, peer, plain], opt.repeat)
        n = len(rows)
        table(f"Batch inserts: {n:,} rows of {TABLE} in batches of {opt.batch:,}; medians of {opt.repeat}, in turns",
              ["what", "seconds", "rows/s", "ours faster by"],
              [["TableRegistry.insert_all (validated, events logged)", f"{t_ours:.3f}", f"{n / t_ours:,.0f}", ""],
               ["sqlite3 executemany of the same rows (no checks, no log)", f"{t_plain:.3f}", f"{n / t_plain:,.0f}",
                f"{t_plain / t_ours:.2f}x"],
               ["sqlite-utils Table.insert_all (no checks)", f"{t_peer:.3f}", f"{n / t_peer:,.0f}",
                f"{t_peer / t_ours:.2f}x"]])
        RESULTS.update({"rows": n, "batch": opt.batch, "ours_seconds": t_ours, "peer_seconds": t_peer,
                        "plain_seconds": t_plain, "insert_speedup": t_peer / t_ours,
                        "vs_executemany": t_plain / t_ours})
        target("validated, published inserts vs plain executemany", ">= 1.0x", f"{t_plain / t_ours:.2f}x",
               t_plain / t_ours >= 1.0)
        target("validated, published inserts vs sqlite-utils insert", ">= 3x", f"{t_peer / t_ours:.2f}x",
               t_peer / t_ours >= 3)

        # an indexed query over a big table
        big = tmp / "big.db"
        t = time.perf_counter()
        with TableRegistry(big, events_log=None) as reg:
            reg.load_all_schemas()
            left, k = opt.big, 0
            while left > 0:
                chunk = make_rows(min(50_000, left), seed=100 + k)
                reg.insert_rows(TABLE, chunk)
                left -= len(chunk)
                k += 1
        t_fill = time.perf_counter() - t
        with TableRegistry(big, events_log=None) as reg:
            filters = {"status": "failed", "started_at": {"ge": "2026-06-01T00:00:00Z", "lt": "2026-06-08T00:00:00Z"}}
            found = reg.query_rows(TABLE, filters, order_by="-started_at", limit=20)
            assert len(found) == 20 and all(r["status"] == "failed" for r in found)
            plan = reg.execute_sql(f"EXPLAIN QUERY PLAN SELECT * FROM {TABLE} WHERE status = 'failed' AND "
                                   f"started_at >= '2026-06-01' ORDER BY started_at DESC LIMIT 20")
            times = []
            for _ in range(200):
                t = time.perf_counter()
                reg.query_rows(TABLE, filters, order_by="-started_at", limit=20)
                times.append(time.perf_counter() - t)
            q_med = statistics.median(times)
        table(f"Indexed query over {opt.big:,} rows (filled in {t_fill:.0f} s); median of 200",
              ["what", "ms", "plan"],
              [["query_rows(status = failed, a week of started_at, newest first, 20 rows)", f"{q_med * 1e3:.3f}",
                "; ".join(str(p.get("detail")) for p in plan)]])
        RESULTS.update({"query_rows": opt.big, "query_ms": q_med * 1e3})
        target("indexed query over 1 M rows", "< 1 ms", f"{q_med * 1e3:.3f} ms", q_med < 1e-3)
    target.report(RESULTS, opt.json, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
