"""The runtime memory store measured in one process against a fair peer.

    python benchmarks/bench_runtime.py                 # everything (about a minute)
    python benchmarks/bench_runtime.py inserts --turns 100000
    python benchmarks/bench_runtime.py queries --json out.json

Sections:

inserts  turns appended with ``append_turns`` (batches of --batch) against
         the fair peer: what a strong engineer writes for the same job with
         Python's sqlite3 -- WAL, synchronous=NORMAL, one BEGIN IMMEDIATE
         transaction per batch that reads the next turn_index and inserts
         the batch with ``executemany``, the same time-ordered ids (our
         uuid7 generator), the same times, and the same schema file (every
         CHECK constraint and index of ours) -- and, for scale, the naive
         adapter (a statement per call in autocommit on SQLite's defaults).
         The two run in turns, best of --repeat each.
queries  each of the five v1 queries, through the store's methods (results
         as dicts), on a store with --store-turns turns (default 1,000,000)
         and --store-proposals proposals (100,000) each with validations, an
         approval and a deploy outcome; p50 and p99 over --samples random keys.

Both sides' results are checked (the rows written, the rows returned) before
anything is timed.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import apsw

from chronoledger import sqlite as db
from chronoledger.runtime import RuntimeMemoryStore
from chronoledger.runtime import values as v

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_peers import Targets, table  # noqa: E402

RESULTS: dict = {}
target = Targets()


def _turns(n: int) -> list[dict]:
    roles = ("user", "assistant")
    return [{"role": roles[i % 2], "content": f"turn {i}: " + "lorem ipsum dolor sit amet " * 3} for i in range(n)]


class NaivePeer:
    """A thin adapter: one statement per call, autocommit, the next turn_index
    read before each insert, SQLite's defaults unless told otherwise."""

    def __init__(self, path: Path, wal: bool = False):
        self.conn = apsw.Connection(str(path))
        self.conn.setbusytimeout(60_000)
        if wal:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(db.migrations("chronoledger.runtime")[0].sql)
        self.session = v.new_id()
        self.conn.execute("INSERT INTO sessions (id, actor, started_at) VALUES (?, 'tom', ?)", (self.session, v.now()))

    def append_turn(self, role: str, content: str) -> None:
        nxt = self.conn.execute("SELECT COALESCE(MAX(turn_index) + 1, 0) FROM conversation_turns WHERE session_id = ?",
                                (self.session,)).fetchall()[0][0]
        self.conn.execute("INSERT INTO conversation_turns (id, session_id, turn_index, role, content, created_at) "
                          "VALUES (?, ?, ?, ?, ?, ?)", (v.new_id(), self.session, nxt, role, content, v.now()))


class FairPeer:
    """Python's sqlite3 as a careful engineer uses it for batches of turns
    (see the module's docstring), on a file our store created (the same
    schema, constraints and indexes)."""

    def __init__(self, path: Path, lib: str = "sqlite3"):
        RuntimeMemoryStore(path).close()
        # apsw: the same SQLite as ours (3.5x), to tell the library's version from the work done
        self.conn = sqlite3.connect(path, isolation_level=None) if lib == "sqlite3" else \
            apsw.Connection(str(path))
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.session = v.new_id()
        self.conn.execute("INSERT INTO sessions (id, actor, started_at) VALUES (?, 'tom', ?)", (self.session, v.now()))

    def append_turns(self, turns: list[dict]) -> None:
        ids = v.new_ids(len(turns))
        now = v.now()
        con = self.conn
        con.execute("BEGIN IMMEDIATE")
        first = con.execute("SELECT COALESCE(MAX(turn_index) + 1, 0) FROM conversation_turns WHERE session_id = ?",
                            (self.session,)).fetchall()[0][0]
        con.executemany("INSERT INTO conversation_turns (id, session_id, turn_index, role, content, token_count, "
                        "created_at, metadata_json) VALUES (?, ?, ?, ?, ?, ?, ?, '{}')",
                        [(ids[k], self.session, first + k, t["role"], t["content"], t.get("token_count"), now)
                         for k, t in enumerate(turns)])
        con.execute("COMMIT")


def bench_inserts(opt, work: Path) -> None:
    n, batch = opt.turns, opt.batch
    turns = _turns(n)

    def ours() -> float:
        p = work / "ours.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{p}{suffix}").unlink(missing_ok=True)
        with RuntimeMemoryStore(p) as s:
            sid = s.start_session("tom")["id"]
            t0 = time.perf_counter()
            for i in range(0, n, batch):
                s.append_turns(sid, turns[i:i + batch])
            dt = time.perf_counter() - t0
            idx = [r[0] for r in s._conn.execute("SELECT turn_index FROM conversation_turns WHERE session_id = ? "
                                                 "ORDER BY turn_index", (sid,))]
        assert idx == list(range(n)), "ours: turn indexes"
        return dt

    def peer(wal: bool, count: int) -> float:
        p = work / f"peer-{wal}.sqlite"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{p}{suffix}").unlink(missing_ok=True)
        peer_ = NaivePeer(p, wal)
        t0 = time.perf_counter()
        for t in turns[:count]:
            peer_.append_turn(t["role"], t["content"])
        dt = time.perf_counter() - t0
        got = peer_.conn.execute("SELECT COUNT(*), MAX(turn_index) FROM conversation_turns").fetchall()[0]
        assert got == (count, count - 1), "peer: rows"
        peer_.conn.close()
        return dt

    def fair(lib: str = "sqlite3") -> float:
        p = work / f"fair-{lib}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{p}{suffix}").unlink(missing_ok=True)
        peer_ = FairPeer(p, lib)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            peer_.append_turns(turns[i:i + batch])
        dt = time.perf_counter() - t0
        got = tuple(peer_.conn.execute("SELECT COUNT(*), MAX(turn_index) FROM conversation_turns").fetchall()[0])
        assert got == (n, n - 1), "fair peer: rows"
        peer_.conn.close()
        return dt

    ours()                                      # warm-up
    fair()
    t_ours, t_fair, t_apsw = [], [], []
    for _ in range(opt.repeat):                 # in turns: a slow moment of the machine falls on all
        t_ours.append(ours())
        t_fair.append(fair())
        t_apsw.append(fair("apsw"))
    best_ours, best_fair, best_apsw = min(t_ours), min(t_fair), min(t_apsw)
    n_def = min(n, opt.peer_turns)
    t_def = statistics.median(peer(False, n_def) for _ in range(3))
    ours_rate, fair_rate, def_rate = n / best_ours, n / best_fair, n_def / t_def
    ratio = ours_rate / fair_rate
    rows = [
        [f"RuntimeMemoryStore.append_turns, batches of {batch:,} ({n:,} turns)", f"{best_ours / n * 1e6:.2f}",
         f"{ours_rate:,.0f}", ""],
        [f"fair peer: sqlite3, WAL, a transaction and executemany per batch ({n:,} turns)",
         f"{best_fair / n * 1e6:.2f}", f"{fair_rate:,.0f}", f"{ratio:.2f}x"],
        [f"the same peer on apsw (our SQLite, {apsw.sqlite_lib_version()}; sqlite3 has {sqlite3.sqlite_version})",
         f"{best_apsw / n * 1e6:.2f}", f"{n / best_apsw:,.0f}", f"{best_apsw / best_ours:.2f}x"],
        [f"naive peer, SQLite defaults, autocommit per row ({n_def:,} turns)", f"{t_def / n_def * 1e6:.1f}",
         f"{def_rate:,.0f}", f"{ours_rate / def_rate:,.0f}x"],
    ]
    table("Appending conversation turns (each side assigns turn_index; the same uuid7 ids, ISO-8601 UTC times, "
          "schema and CHECK constraints)", ["what", "us/turn", "turns/s", "ours faster by"], rows)
    RESULTS["inserts"] = {"ours_turns_per_s": ours_rate, "fair_peer_turns_per_s": fair_rate,
                          "peer_default_turns_per_s": def_rate, "ratio_vs_fair": ratio,
                          "fair_apsw_turns_per_s": n / best_apsw, "ours_s": t_ours, "fair_s": t_fair,
                          "fair_apsw_s": t_apsw, "batch": batch, "turns": n}
    target("batched turn inserts vs the fair peer (every rule enforced)", ">= 1.3x", f"{ratio:.2f}x", ratio >= 1.3)


def build_store(path: Path, n_turns: int, n_props: int, seed: int = 7) -> dict:
    """A store of n_turns turns (sessions of 100), n_props proposals with
    audit rows, 2,000 workflow runs of 5 steps with events, and profiles.
    The bulk rows go in through executemany in a few transactions: the
    methods are measured elsewhere; this is the fixture."""
    rng = random.Random(seed)
    keys: dict = {"sessions": [], "runs": [], "proposals": []}
    with RuntimeMemoryStore(path) as s:
        per = 100
        for i in range(n_turns // per):
            sid = s.start_session("tom" if i % 2 else "ana", "api")["id"]
            keys["sessions"].append(sid)
            s.append_turns(sid, _turns(per))
        conn = s._conn
        for _ in range(2000):
            run = s.start_workflow_run("nightly", rng.choice(("cron", "api")), "oxide")
            keys["runs"].append(run["id"])
            for k in range(5):
                st = s.start_step(run["id"], f"s{k}")
                s.append_task_events([{"event_type": "info", "event_level": "low", "message": f"e{j}",
                                       "workflow_run_id": run["id"], "step_id": st["id"]} for j in range(2)])
                s.end_step(st["id"], "succeeded")
            s.end_workflow_run(run["id"], "succeeded")
        stamp = v.now()
        chunk = 10_000
        for start in range(0, n_props, chunk):
            m = min(chunk, n_props - start)
            skills = v.new_ids(m)
            props = v.new_ids(m)
            with db.write_transaction(conn):
                conn.executemany("INSERT INTO skills_learned (id, skill_key, description, source_type, confidence, "
                                 "learned_at) VALUES (?, ?, 'd', 'doc', 0.5, ?)",
                                 [(sk, f"skill.{start + i}", stamp) for i, sk in enumerate(skills)])
                conn.executemany("INSERT INTO skill_to_logic_proposals (id, skill_id, proposed_by, proposal_type, "
                                 "proposal_json, risk_level, status, created_at, updated_at) VALUES "
                                 "(?, ?, 'oxide', 'code_patch', '{\"n\":1}', 'low', 'drafted', ?, ?)",
                                 [(p, sk, stamp, stamp) for p, sk in zip(props, skills)])
                conn.executemany("INSERT INTO validation_results (id, proposal_id, validator, build_pass, lint_pass, "
                                 "test_pass, policy_pass, validated_at) VALUES (?, ?, 'ci', 1, 1, 1, 1, ?)",
                                 [(x, p, stamp) for x, p in zip(v.new_ids(2 * m), props + props)])
                conn.executemany("INSERT INTO approvals (id, proposal_id, approver, approval_type, decision, "
                                 "decided_at) VALUES (?, ?, 'alice', 'human', 'approved', ?)",
                                 [(x, p, stamp) for x, p in zip(v.new_ids(m), props)])
                conn.executemany("INSERT INTO deploy_outcomes (id, proposal_id, deployment_target, status, "
                                 "deployed_at) VALUES (?, ?, 'prod', 'succeeded', ?)",
                                 [(x, p, stamp) for x, p in zip(v.new_ids(m), props)])
            keys["proposals"] += props
        for i in range(200):
            s.publish_behavior_profile("tom" if i % 2 else f"agent{i}", {"v": i}, "ops")
            s.publish_personality_profile("tom" if i % 2 else f"agent{i}", {"v": i}, "ops")
        conn.execute("ANALYZE")
    return keys


def bench_queries(opt, work: Path) -> None:
    path = work / "big.sqlite"
    t0 = time.perf_counter()
    keys = build_store(path, opt.store_turns, opt.store_proposals)
    t_build = time.perf_counter() - t0
    rng = random.Random(1)
    out = {}
    rows = []
    with RuntimeMemoryStore(path) as s:
        n_turns = s._conn.execute("SELECT COUNT(*) FROM conversation_turns").fetchall()[0][0]
        n_props = s._conn.execute("SELECT COUNT(*) FROM skill_to_logic_proposals").fetchall()[0][0]
        assert n_turns >= opt.store_turns - 100 and n_props == opt.store_proposals
        checks = {
            "1 latest behavior profile (tom)": (lambda k: s.latest_behavior_profile("tom"), [None],
                                                lambda r: r["version"] == 100),
            "2 latest personality profile (tom)": (lambda k: s.latest_personality_profile("tom"), [None],
                                                   lambda r: r["version"] == 100),
            "3 session replay (100 turns)": (s.session_replay, keys["sessions"],
                                             lambda r: [t["turn_index"] for t in r["turns"]] == list(range(100))),
            "4 workflow replay (5 steps, 10 events)": (s.workflow_replay, keys["runs"],
                                                      lambda r: len(r["steps"]) == 5 and
                                                      sum(len(x["events"]) for x in r["steps"]) == 10),
            "5 proposal lineage (2 validations, approval, deploy)": (
                s.proposal_lineage, keys["proposals"],
                lambda r: len(r["validations"]) == 2 and len(r["approvals"]) == 1 and len(r["deploy_outcomes"]) == 1),
        }
        for name, (fn, pool, ok) in checks.items():
            sample = [rng.choice(pool) for _ in range(opt.samples)]
            for k in sample[:20]:
                assert ok(fn(k)), name
            lat = []
            for k in sample:
                t = time.perf_counter()
                fn(k)
                lat.append(time.perf_counter() - t)
            lat.sort()
            p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]
            out[name] = {"p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3}
            rows.append([name, f"{p50 * 1e3:.3f}", f"{p99 * 1e3:.3f}"])
            target(f"query {name}", "< 1 ms (p50 and p99)", f"p50 {p50 * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms",
                   p99 < 1e-3)
    size = path.stat().st_size
    table(f"The v1 queries through the store's methods, on {n_turns:,} turns and {n_props:,} proposals "
          f"({size / 1e6:.0f} MB, built in {t_build:.0f} s); {opt.samples:,} random keys each",
          ["query", "p50 ms", "p99 ms"], rows)
    RESULTS["queries"] = out


SECTIONS = {"inserts": bench_inserts, "queries": bench_queries}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sections", nargs="*", choices=[*SECTIONS, []], default=[])
    ap.add_argument("--turns", type=int, default=200_000, help="turns appended by ours")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each side, in turns (best counts)")
    ap.add_argument("--peer-turns", type=int, default=2000, help="turns appended by the peer on SQLite's defaults")
    ap.add_argument("--store-turns", type=int, default=1_000_000)
    ap.add_argument("--store-proposals", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    opt = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_runtime_") as tmp:
        for name in opt.sections or SECTIONS:
            SECTIONS[name](opt, Path(tmp))
    target.report(RESULTS, opt.json, t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
