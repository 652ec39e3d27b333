"""The demo: chronoledger end to end, in a folder of its own.

The core kernels, a recorded, verified and replayed chronicle, the agent
runtime store, a user folder mirrored into SQLite with its metastudy,
YAML-declared tables with governance, and a day of the world simulation,
replayed from its log.  ``chronoledger demo`` prints what :func:`steps`
yields; from Python::

    from chronoledger import demo
    report = demo.run("/tmp/chronoledger-demo", records=20_000, cycles=800)
    report.ok, report.section("chronicle").facts["replayed"], print(report.text())

Each part is checked as it runs (the column files read back and compared bit
for bit, the chronicle verified and replayed, the world run replayed); a part
whose check fails is the last one, with its ``problem`` set.  Every file is
written under the folder named; each run starts its databases afresh.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chronoledger import core, workload
from chronoledger._fsutil import atomic_write_bytes
from chronoledger._version import __version__
from chronoledger.chronicle import Chronicle, CycleRecord, replay as replay_chronicle, verify
from chronoledger.errors import OrderError, ValidationError
from chronoledger.examples import learner
from chronoledger.examples.recording import STEP, record_learner
from chronoledger.runtime import RuntimeMemoryStore
from chronoledger.sequence.sample import write_user_folder
from chronoledger.sequence.sync import sync
from chronoledger.tables import TableRegistry
from chronoledger.world.config import load_config
from chronoledger.world.models import make_model
from chronoledger.world.replay import replay as replay_world
from chronoledger.world.scheduler import RunOptions, run as run_world

_logger = logging.getLogger("chronoledger.demo")

DEFAULT_RECORDS = 200_000
DEFAULT_CYCLES = 5_000


@dataclass
class Section:
    """One part of the demo: its name, what it says (lines for people), the
    figures it measured (for programs), the files it wrote, and, when its
    check failed, why (the demo stops there)."""

    name: str
    lines: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class DemoReport:
    """Every part the demo ran, in order (the first, "start", names the folder)."""

    out_dir: Path
    version: str
    sections: list[Section]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.sections)

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)

    def text(self) -> str:
        """What ``chronoledger demo`` prints: the parts, a blank line between."""
        return "\n\n".join("\n".join(s.lines) for s in self.sections) + "\n"


def run(out_dir: str | Path, *, records: int = DEFAULT_RECORDS, cycles: int = DEFAULT_CYCLES) -> DemoReport:
    """Run the whole demo into ``out_dir`` (created if missing) and return its report."""
    out = Path(out_dir).resolve()
    return DemoReport(out, __version__, list(steps(out, records=records, cycles=cycles)))


def steps(out_dir: str | Path, *, records: int = DEFAULT_RECORDS,
          cycles: int = DEFAULT_CYCLES) -> Iterator[Section]:
    """Run the demo into ``out_dir`` one part at a time, yielding each part's
    :class:`Section` as soon as it is done (a front end prints it meanwhile).
    A part whose check fails is yielded with its ``problem`` and ends it."""
    if not 1 <= records <= 10_000_000:
        raise ValueError(f"records must be 1..10,000,000, got {records}")
    if not 1 <= cycles <= 1_000_000:
        raise ValueError(f"cycles must be 1..1,000,000, got {cycles}")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _logger.info("demo: writing into %s", out)
    yield Section("start", [f"chronoledger {__version__} demo -> {out}"], {"out_dir": str(out), "version": __version__})
    parts = ((_core,), (_codec, out, records), (_append,), (_chronicle, out, cycles), (_runtime, out),
             (_sequence, out), (_tables, out), (_world, out))
    done: list[Section] = []
    for part, *args in parts:
        section = part(*args)
        done.append(section)
        yield section
        if not section.ok:
            _logger.error("demo: %s: %s", section.name, section.problem)
            return
    yield _summary(out, done)


def _summary(out: Path, done: list[Section]) -> Section:
    by = {s.name: s for s in done}
    codec = by["codec"].facts
    files = [out / "manifest.json", out / "columns", by["chronicle"].facts["path"], by["runtime"].facts["database"],
             by["tables"].facts["database"], by["world"].facts["database"], by["sequence"].facts["data"]]
    line = (f"Done. Files: {files[0]}, {files[1]}/ ({len(codec['columns'])} encoded columns, "
            f"{codec['bytes']:,} bytes), {files[2]}, {files[3]}, {files[4]}, {files[5]} and {files[6]}/.")
    user = by["sequence"].facts["user"]
    serve = (f"See it in a browser: chronoledger serve --user {user} --tables {files[4]} --runtime {files[3]} "
             f"--world {files[5]} --runs {out}   (pip install 'chronoledger[server]')")
    return Section("done", [line, serve], {"files": [str(f) for f in files], "serve": serve}, files)


# --- the parts ----------------------------------------------------------------------------

def _core() -> Section:
    """CRC-64/XZ: which path this CPU takes, and how fast."""
    s = Section("core")
    s.lines.append(f"[core] CRC-64/XZ path on this CPU: {core.crc64_impl()} "
                   f"(available: {', '.join(core.crc64_paths())})")
    buf = np.random.default_rng(0).integers(0, 256, 64 << 20, dtype=np.uint8)
    core.crc64(buf.data)
    t0 = time.perf_counter()
    value = core.crc64(buf.data)
    dt = time.perf_counter() - t0
    check = core.crc64(b"123456789")
    s.lines.append(f"[core] crc64 of a 64 MiB buffer = {value:016x} in {dt * 1e3:.1f} ms "
                   f"({buf.nbytes / dt / 1e9:.1f} GB/s); check value of b'123456789' = {check:016x}")
    s.facts = {"crc64_impl": core.crc64_impl(), "crc64_paths": list(core.crc64_paths()),
               "crc64_gb_per_s": buf.nbytes / dt / 1e9, "check_value": f"{check:016x}"}
    return s


def _codec(out: Path, records: int) -> Section:
    """Quantize and encode the standard workload, write each column, then read
    every file back: checksum, decode, compare bit for bit."""
    s = Section("codec")
    cols = workload.generate(records, "ms")
    ints = workload.integer_columns(cols)
    col_dir = out / "columns"
    col_dir.mkdir(exist_ok=True)
    manifest: dict[str, Any] = {"records": records, "workload": "standard cycles, variant ms, seed 12345",
                                "scale": 1e-6, "columns": {}}
    total = 0
    t0 = time.perf_counter()
    encoded = {name: core.encode_column(v) for name, v in ints.items()}
    t_enc = time.perf_counter() - t0
    for name, data in encoded.items():
        atomic_write_bytes(col_dir / f"{name}.col", data)
        manifest["columns"][name] = {"file": f"columns/{name}.col", "bytes": len(data),
                                     "crc64": f"{core.crc64(data):016x}",
                                     "mode": core.column_info(data)["mode"]}
        total += len(data)
    atomic_write_bytes(out / "manifest.json", json.dumps(manifest, indent=2).encode())
    s.files = [out / "manifest.json", *(col_dir / f"{name}.col" for name in encoded)]
    s.facts = {"records": records, "bytes": total, "bytes_per_record": total / records,
               "encode_seconds": t_enc, "columns": {name: len(data) for name, data in encoded.items()}}
    s.lines.append(f"[codec] {records:,} records of the standard workload, {workload.RECORD_BYTES} bytes each raw")
    for name, data in encoded.items():
        info = core.column_info(data)
        s.lines.append(f"[codec]   {name:<12} {len(data) / records:7.3f} B/record  ({info['mode']})")
    s.lines.append(f"[codec] total {total / records:.3f} B/record in the column streams alone "
                   f"({records:,} records, epoch-ms variant; raw {workload.RECORD_BYTES}), "
                   f"encoded in {t_enc * 1e3:.1f} ms")

    for name, meta in manifest["columns"].items():
        data = (out / meta["file"]).read_bytes()
        if f"{core.crc64(data):016x}" != meta["crc64"]:
            s.problem = f"{meta['file']}: CRC-64 mismatch"
            return s
        if not np.array_equal(core.decode_column(data), ints[name]):
            s.problem = f"{meta['file']}: decoded values differ"
            return s
    loss_back = core.dequantize(core.decode_column((col_dir / "loss.col").read_bytes()), dtype=np.float32)
    worst = float(np.max(np.abs(loss_back.astype(np.float64) - cols["loss"])))
    s.facts["max_loss_error"] = worst
    s.lines.append(f"[codec] read back {len(encoded)} column files: CRC-64 verified, integers identical; "
                   f"largest loss error after dequantize {worst:.2e} (scale 1e-6)")
    return s


def _append() -> Section:
    """The ordered append buffer, fed by four threads out of order."""
    windows: list[np.ndarray] = []
    buf = core.AppendBuffer(flush_every=1000, sink=lambda ts, p: windows.append(ts))
    rejected = [0]
    clock = itertools.count()   # a shared clock; each thread's reading jitters a little

    def feed(k: int) -> None:
        rng = np.random.default_rng(k)
        for _ in range(5000):
            try:
                buf.append(next(clock) * 4 + int(rng.integers(0, 12)), k)
            except OrderError:
                rejected[0] += 1

    threads = [threading.Thread(target=feed, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    buf.flush()
    merged = np.concatenate(windows)
    ok = bool(np.all(merged[1:] >= merged[:-1]))
    s = Section("append", facts={"appended": 20_000, "handed_out": int(merged.size), "windows": buf.windows,
                                 "in_order": ok, "refused": rejected[0]})
    s.lines.append(f"[append] 4 threads appended 20,000 jittered records: {merged.size:,} handed out in "
                   f"{buf.windows} windows of <= 1000, in timestamp order: {ok}; "
                   f"{rejected[0]} refused as older than the last flush (OrderError)")
    if not ok:
        s.problem = "append buffer output is out of order"
    return s


def _chronicle(out: Path, cycles: int) -> Section:
    """Record the example learner, verify the file, replay it, query it."""
    s = Section("chronicle")
    run_path = out / "learner.cmeta"
    t0 = time.perf_counter()
    n = record_learner(run_path, cycles)
    t_rec = time.perf_counter() - t0
    size = run_path.stat().st_size
    s.files = [run_path]
    s.lines.append(f"[chronicle] recorded {n:,} dream/train/validate cycles of the example numpy learner to "
                   f"{run_path.name} in {t_rec:.2f} s ({size:,} bytes, {size / n:.1f} B/record with its metrics)")
    report = verify(run_path)
    s.lines.append(f"[chronicle] verify: {'OK' if report.ok else 'FAILED'} "
                   f"({'; '.join(c.name for c in report.checks)})")
    replayed = replay_chronicle(run_path, learner.make_step)
    s.lines.append(f"[chronicle] replay: {replayed.matched:,} of {replayed.records:,} cycles regenerated with "
                   f"identical hashes")
    s.facts = {"path": run_path, "records": n, "bytes": size, "seconds": t_rec, "verified": report.ok,
               "replayed": replayed.matched, "replay_ok": replayed.ok}
    if not (report.ok and replayed.ok):
        s.problem = "the recorded run did not verify or replay"
        return s
    with Chronicle.open(run_path) as ch:
        mid = n // 2
        window = ch.query(mid, mid + 3)
    s.lines.append(f"[chronicle] query {mid}..{mid + 3}: " + "; ".join(
        f"t={r.timestamp} {r.phase} loss={r.loss_value:.4f}" for r in window if isinstance(r, CycleRecord)))
    s.lines.append(f"[chronicle] try: chronoledger chronicle inspect {run_path}")
    s.lines.append(f"[chronicle]      chronoledger chronicle replay {run_path} --step {STEP}")
    return s


def _runtime(out: Path) -> Section:
    """The runtime store: a session, a workflow with events, a full proposal lineage."""
    db_path = out / "runtime.sqlite"
    log_path = out / "runtime-events.cmeta"
    for p in (db_path, log_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        p.unlink(missing_ok=True)          # the demo starts from scratch each time
    with RuntimeMemoryStore(db_path, events_log=log_path) as store:
        store.publish_behavior_profile("tom", {"escalate_above": "high", "style": "concise"}, "demo",
                                       rationale="initial guardrails")
        store.publish_personality_profile("tom", {"tone": "warm", "verbosity": 2}, "demo")
        session = store.start_session("tom", "cli", {"demo": True})
        store.append_turns(session["id"], [
            {"role": "user", "content": "Summarise last night's sync failures."},
            {"role": "assistant", "content": "Two runs failed on a locked file; both retried and succeeded."},
            {"role": "user", "content": "Make the retry automatic."}])
        store.end_session(session["id"])
        run = store.start_workflow_run("nightly-sync", "cron", "oxide", context={"target": "User/"})
        for name in ("scan", "mirror", "report"):
            step = store.start_step(run["id"], name)
            store.append_task_event("info", "low", f"{name} started", workflow_run_id=run["id"], step_id=step["id"])
            store.end_step(step["id"], "succeeded", {"items": 3})
        store.end_workflow_run(run["id"], "succeeded", {"duration_s": 4.2})
        skill = store.record_skill("retry.locked_file", "Retry a sync step when the file is locked",
                                   "conversation", 0.82, source_ref=session["id"])
        prop = store.create_proposal(skill["id"], "oxide", "code_patch", {"file": "sync.py", "retry": 3}, "low",
                                     determinism_score=0.95)
        store.record_validation(prop["id"], "ci", build_pass=True, lint_pass=True, test_pass=True, policy_pass=True)
        store.set_proposal_status(prop["id"], "validated")
        store.record_approval(prop["id"], "alice", "human", "approved", notes="small, reversible")
        store.set_proposal_status(prop["id"], "approved")
        store.record_deploy_outcome(prop["id"], "prod", "succeeded", deployment_id="d-1")
        store.set_proposal_status(prop["id"], "promoted")
        replay = store.session_replay(session["id"])
        wf = store.workflow_replay(run["id"])
        lineage = store.proposal_lineage(prop["id"])
        behaviour = store.latest_behavior_profile("tom")
    if behaviour is None:
        return Section("runtime", files=[db_path, log_path], facts={"database": db_path, "events_log": log_path},
                       problem="tom's behaviour profile, published above, is not in the store")
    s = Section("runtime", files=[db_path, log_path],
                facts={"database": db_path, "events_log": log_path, "session": session["id"],
                       "turns": len(replay["turns"]), "workflow_steps": len(wf["steps"]),
                       "task_events": sum(len(st["events"]) for st in wf["steps"]),
                       "proposal": prop["id"], "proposal_status": lineage["proposal"]["status"],
                       "behaviour_profile_version": behaviour["version"]})
    s.lines.append(f"[runtime] {db_path.name}: session of {len(replay['turns'])} turns, workflow "
                   f"{wf['workflow_name']} with {len(wf['steps'])} steps and "
                   f"{s.facts['task_events']} events (mirrored to {log_path.name}), "
                   f"proposal {lineage['proposal']['status']} after {len(lineage['validations'])} validation, "
                   f"{len(lineage['approvals'])} approval, {len(lineage['deploy_outcomes'])} deploy; "
                   f"tom's behaviour profile v{behaviour['version']}")
    s.lines.append(f"[runtime] try: chronoledger runtime lineage {db_path} --latest")
    s.lines.append(f"[runtime]      chronoledger runtime replay {db_path} {session['id']}")
    return s


def _sequence(out: Path) -> Section:
    """A sample user folder mirrored into SQLite, and its metastudy."""
    root = out / "sequence"
    shutil.rmtree(root, ignore_errors=True)          # a fresh sample each time
    user = write_user_folder(root, items=150, days=60)
    report = sync(user)
    counts = report.built["core"]["counts"]
    s = Section("sequence", facts={"user": user, "data": report.data, "items": report.items, "files": report.files,
                                   "seconds": report.seconds, "counts": dict(counts)},
                files=[report.data])
    s.lines.append(f"[sequence] wrote a sample user folder ({report.items} items, {report.files} YAML files) and "
                   f"mirrored it in {report.seconds:.2f} s: {counts['items']} items, {counts['relations']} "
                   f"relations, {counts['completions']:,} completions, {counts['schedules']:,} schedule blocks")
    digest = (report.data / "tendencies.md").read_text(encoding="utf-8").splitlines()
    for line in digest[4:8]:
        s.lines.append(f"[sequence]   {line}")
    s.lines.append(f"[sequence] try: sequence data \"SELECT type, COUNT(*) FROM items GROUP BY type\" --user {user}")
    return s


def _tables(out: Path) -> Section:
    """The YAML-declared catalogue, a validated write, a refused one, a schema change under governance."""
    db_path = out / "tables.db"
    for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm"), out / "tables.events.cmeta"):
        p.unlink(missing_ok=True)          # from scratch each time
    s = Section("tables", files=[db_path, out / "tables.events.cmeta"], facts={"database": db_path})
    with TableRegistry(db_path, actor="demo") as reg:
        report = reg.load_all_schemas()
        s.facts["tables"] = len(reg.tables())
        s.lines.append(f"[tables] {len(reg.tables())} catalogue tables in {db_path.name} (the governance table "
                       f"with the registry, {len(report.created)} from their schemas)")
        reg.insert_rows("memory_self_healing_playbooks", [
            {"playbook_name": "restart_db_pool", "trigger_conditions": {"error_type": "ConnectionError"},
             "actions": [{"step": 1, "action": "restart_db_pool"}], "successful_runs": 23, "total_runs": 25},
            {"playbook_name": "clear_cache", "trigger_conditions": {"error_type": "Timeout"},
             "successful_runs": 4, "total_runs": 9}])
        reg.recompute_trust("memory_self_healing_playbooks")
        best = reg.query_rows("memory_self_healing_playbooks",
                              {"trigger_conditions": {"error_type": "ConnectionError"}}, limit=1)[0]
        s.lines.append(f"[tables] playbook for ConnectionError: {best['playbook_name']} "
                       f"(trust {best['trust_score']:.2f} from {best['successful_runs']}/{best['total_runs']} runs)")
        try:
            reg.insert_row("memory_self_healing_playbooks", {"playbook_name": "bad", "risk_level": "extreme",
                                                             "success_rate": 1.5})
        except ValidationError as exc:
            s.facts["refused"] = str(exc)
            s.lines.append(f"[tables] refused: {exc}")
        schema = reg.schema("memory_self_healing_playbooks").declared()
        schema["fields"] = [f for f in schema["fields"] if f["name"] != "rollback_actions"]
        proposal = reg.propose_schema(schema, proposed_by="demo", reason="rollback lives in the actions now")
        s.lines.append(f"[tables] dropping a field is {proposal['risk']} risk: proposal {proposal['id']} is "
                       f"{proposal['status']}")
        proposal = reg.approve(proposal["id"], approver="alice", reason="reviewed")
        decisions = reg.count_rows("memory_governance_decisions")
        s.facts.update({"proposal": proposal["id"], "proposal_status": proposal["status"], "decisions": decisions})
        s.lines.append(f"[tables] approved by alice and applied; decisions recorded: {decisions}")
    s.lines.append(f"[tables] try: chronoledger tables --db {db_path} history memory_self_healing_playbooks")
    return s


def _world(out: Path) -> Section:
    """A small day of agents (the offline model), replayed from its log."""
    folder = out / "world"
    shutil.rmtree(folder, ignore_errors=True)          # from scratch each time
    folder.mkdir(parents=True)
    db_path = folder / "world.db"
    result = run_world(db_path, load_config(), make_model("offline"),
                       RunOptions(days=1, agents=12, seed=7, reports_dir=folder / "reports", report_format="both"))
    s = Section("world", files=[db_path, result.chronicle, *result.reports],
                facts={"database": db_path, "agents": result.agents, "agent_ticks": result.agent_ticks,
                       "events": result.events, "conversations": result.conversations,
                       "memories": result.memories, "chronicle": result.chronicle})
    s.lines.append(f"[world] one day of {result.agents} agents ({result.agent_ticks} agent-ticks): {result.events} "
                   f"events, {result.conversations} conversations, {result.memories} new memories")
    report = next(p for p in result.reports if p.suffix == ".md")
    lines = report.read_text(encoding="utf-8").splitlines()
    transcript = next((i for i, ln in enumerate(lines) if ln.startswith("### ")), None)
    if transcript is not None:
        for line in lines[transcript:transcript + 3]:
            s.lines.append(f"[world]   {line}")
    check = replay_world(result.chronicle)
    s.facts["replay_matches"] = check.matches
    if not check.matches:
        s.problem = f"the world run did not replay: {check}"
        return s
    s.lines.append(f"[world] replayed from {result.chronicle.name} without the model: matches")
    s.lines.append(f"[world] try: chronoledger world report --db-url {db_path} --day {report.stem.split('-', 2)[2]}")
    return s


__all__ = ["DEFAULT_CYCLES", "DEFAULT_RECORDS", "DemoReport", "Section", "run", "steps"]
