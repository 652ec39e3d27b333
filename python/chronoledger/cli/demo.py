"""``chronoledger demo``: exercise the library end to end and say what it did."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import click
import numpy as np

from chronoledger import __version__, core, workload
from chronoledger._fsutil import atomic_write_bytes
from chronoledger.errors import OrderError


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("chronoledger-demo"), show_default=True,
              help="Folder to write the demo's files into (created if missing).")
@click.option("--records", type=click.IntRange(1, 10_000_000), default=200_000, show_default=True,
              help="Records of the standard workload to generate.")
@click.option("--cycles", type=click.IntRange(1, 1_000_000), default=5_000, show_default=True,
              help="Cycles of the example learner to record into a chronicle.")
def demo(out_dir: Path, records: int, cycles: int) -> None:
    """Run chronoledger end to end: the core kernels, a recorded, verified and replayed chronicle, the
    agent runtime store, a user folder mirrored into SQLite with its metastudy, YAML-declared tables with
    governance, and a day of the world simulation, replayed from its log."""
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    click.echo(f"chronoledger {__version__} demo -> {out_dir}")

    # 1. CRC-64/XZ
    click.echo(f"\n[core] CRC-64/XZ path on this CPU: {core.crc64_impl()} "
               f"(available: {', '.join(core.crc64_paths())})")
    buf = np.random.default_rng(0).integers(0, 256, 64 << 20, dtype=np.uint8)
    core.crc64(buf)
    t0 = time.perf_counter()
    value = core.crc64(buf)
    dt = time.perf_counter() - t0
    click.echo(f"[core] crc64 of a 64 MiB buffer = {value:016x} in {dt * 1e3:.1f} ms "
               f"({buf.nbytes / dt / 1e9:.1f} GB/s); check value of b'123456789' = "
               f"{core.crc64(b'123456789'):016x}")

    # 2. quantize + encode the standard workload, then prove the round trip
    cols = workload.generate(records, "ms")
    ints = workload.integer_columns(cols)
    col_dir = out_dir / "columns"
    col_dir.mkdir(exist_ok=True)
    manifest = {"records": records, "workload": "standard cycles, variant ms, seed 12345",
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
    atomic_write_bytes(out_dir / "manifest.json", json.dumps(manifest, indent=2).encode())
    click.echo(f"\n[codec] {records:,} records of the standard workload, {workload.RECORD_BYTES} bytes each raw")
    for name, data in encoded.items():
        info = core.column_info(data)
        click.echo(f"[codec]   {name:<12} {len(data) / records:7.3f} B/record  ({info['mode']})")
    click.echo(f"[codec] total {total / records:.3f} B/record in the column streams alone "
               f"({records:,} records, epoch-ms variant; raw {workload.RECORD_BYTES}), encoded in {t_enc * 1e3:.1f} ms")

    # read everything back from disk: checksum, decode, compare bit for bit
    for name, meta in manifest["columns"].items():
        data = (out_dir / meta["file"]).read_bytes()
        if f"{core.crc64(data):016x}" != meta["crc64"]:
            raise click.ClickException(f"{meta['file']}: CRC-64 mismatch")
        if not np.array_equal(core.decode_column(data), ints[name]):
            raise click.ClickException(f"{meta['file']}: decoded values differ")
    loss_back = core.dequantize(core.decode_column((col_dir / "loss.col").read_bytes()), dtype=np.float32)
    worst = float(np.max(np.abs(loss_back.astype(np.float64) - cols["loss"])))
    click.echo(f"[codec] read back {len(encoded)} column files: CRC-64 verified, integers identical; "
               f"largest loss error after dequantize {worst:.2e} (scale 1e-6)")

    # 3. the ordered append buffer, fed by four threads out of order
    windows: list[np.ndarray] = []
    buf_ = core.AppendBuffer(flush_every=1000, sink=lambda ts, p: windows.append(ts))
    rejected = [0]
    clock = itertools.count()   # a shared clock; each thread's reading jitters a little

    def feed(k: int) -> None:
        rng = np.random.default_rng(k)
        for _ in range(5000):
            try:
                buf_.append(next(clock) * 4 + int(rng.integers(0, 12)), k)
            except OrderError:
                rejected[0] += 1

    threads = [threading.Thread(target=feed, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    buf_.flush()
    merged = np.concatenate(windows)
    ok = bool(np.all(merged[1:] >= merged[:-1]))
    click.echo(f"\n[append] 4 threads appended 20,000 jittered records: {merged.size:,} handed out in "
               f"{buf_.windows} windows of <= 1000, in timestamp order: {ok}; "
               f"{rejected[0]} refused as older than the last flush (OrderError)")
    if not ok:
        raise click.ClickException("append buffer output is out of order")

    # 4. the chronicle: record the example learner, verify it, replay it
    from chronoledger import chronicle
    from chronoledger.examples import learner
    from chronoledger.examples.recording import STEP, record_learner

    run_path = out_dir / "learner.cmeta"
    t0 = time.perf_counter()
    n = record_learner(run_path, cycles)
    t_rec = time.perf_counter() - t0
    size = run_path.stat().st_size
    click.echo(f"\n[chronicle] recorded {n:,} dream/train/validate cycles of the example numpy learner to "
               f"{run_path.name} in {t_rec:.2f} s ({size:,} bytes, {size / n:.1f} B/record with its metrics)")
    report = chronicle.verify(run_path)
    click.echo(f"[chronicle] verify: {'OK' if report.ok else 'FAILED'} "
               f"({'; '.join(c.name for c in report.checks)})")
    replayed = chronicle.replay(run_path, learner.make_step)
    click.echo(f"[chronicle] replay: {replayed.matched:,} of {replayed.records:,} cycles regenerated with "
               f"identical hashes")
    if not (report.ok and replayed.ok):
        raise click.ClickException("the recorded run did not verify or replay")
    with chronicle.Chronicle.open(run_path) as ch:
        mid = n // 2
        window = ch.query(mid, mid + 3)
    click.echo(f"[chronicle] query {mid}..{mid + 3}: " + "; ".join(
        f"t={r.timestamp} {r.phase} loss={r.loss_value:.4f}" for r in window))
    click.echo(f"[chronicle] try: chronoledger chronicle inspect {run_path}")
    click.echo(f"[chronicle]      chronoledger chronicle replay {run_path} --step {STEP}")

    # 5. the runtime store: a session, a workflow with events, a full proposal lineage
    db_path = _runtime_demo(out_dir)

    # 6. sequence: a sample user folder mirrored into SQLite, and its metastudy
    user = _sequence_demo(out_dir)

    # 7. tables: the YAML-declared catalogue, a validated write, a refused one, a schema change under governance
    tables_db = _tables_demo(out_dir)

    # 8. world: a small day of agents, replayed from its log
    world_db = _world_demo(out_dir)

    click.echo(f"\nDone. Files: {out_dir / 'manifest.json'}, {col_dir}/ "
               f"({len(encoded)} encoded columns, {total:,} bytes), {run_path}, {db_path}, {tables_db}, {world_db} "
               f"and {user}/Data/.")


def _world_demo(out_dir: Path) -> Path:
    from chronoledger.world.config import load_config
    from chronoledger.world.models import make_model
    from chronoledger.world.replay import replay
    from chronoledger.world.scheduler import RunOptions, run

    folder = out_dir / "world"
    import shutil

    shutil.rmtree(folder, ignore_errors=True)          # from scratch each time
    folder.mkdir(parents=True)
    db_path = folder / "world.db"
    result = run(db_path, load_config(), make_model("offline"),
                 RunOptions(days=1, agents=12, seed=7, reports_dir=folder / "reports", report_format="both"))
    click.echo(f"\n[world] one day of {result.agents} agents ({result.agent_ticks} agent-ticks): {result.events} events, "
               f"{result.conversations} conversations, {result.memories} new memories")
    report = next(p for p in result.reports if p.suffix == ".md")
    lines = report.read_text(encoding="utf-8").splitlines()
    transcript = next((i for i, ln in enumerate(lines) if ln.startswith("### ")), None)
    if transcript is not None:
        for line in lines[transcript:transcript + 3]:
            click.echo(f"[world]   {line}")
    check = replay(result.chronicle)
    if not check.matches:
        raise click.ClickException(f"the world run did not replay: {check}")
    click.echo(f"[world] replayed from {result.chronicle.name} without the model: matches")
    click.echo(f"[world] try: chronoledger world report --db-url {db_path} --day {report.stem.split('-', 2)[2]}")
    return db_path


def _tables_demo(out_dir: Path) -> Path:
    from chronoledger.errors import ValidationError
    from chronoledger.tables import TableRegistry

    db_path = out_dir / "tables.db"
    for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm"), out_dir / "tables.events.cmeta"):
        p.unlink(missing_ok=True)          # from scratch each time
    with TableRegistry(db_path, actor="demo") as reg:
        report = reg.load_all_schemas()
        click.echo(f"\n[tables] {len(reg.tables())} catalogue tables in {db_path.name} (the governance table "
                   f"with the registry, {len(report.created)} from their schemas)")
        reg.insert_rows("memory_self_healing_playbooks", [
            {"playbook_name": "restart_db_pool", "trigger_conditions": {"error_type": "ConnectionError"},
             "actions": [{"step": 1, "action": "restart_db_pool"}], "successful_runs": 23, "total_runs": 25},
            {"playbook_name": "clear_cache", "trigger_conditions": {"error_type": "Timeout"},
             "successful_runs": 4, "total_runs": 9}])
        reg.recompute_trust("memory_self_healing_playbooks")
        best = reg.query_rows("memory_self_healing_playbooks",
                              {"trigger_conditions": {"error_type": "ConnectionError"}}, limit=1)[0]
        click.echo(f"[tables] playbook for ConnectionError: {best['playbook_name']} "
                   f"(trust {best['trust_score']:.2f} from {best['successful_runs']}/{best['total_runs']} runs)")
        try:
            reg.insert_row("memory_self_healing_playbooks", {"playbook_name": "bad", "risk_level": "extreme",
                                                             "success_rate": 1.5})
        except ValidationError as exc:
            click.echo(f"[tables] refused: {exc}")
        schema = reg.schema("memory_self_healing_playbooks").declared()
        schema["fields"] = [f for f in schema["fields"] if f["name"] != "rollback_actions"]
        p = reg.propose_schema(schema, proposed_by="demo", reason="rollback lives in the actions now")
        click.echo(f"[tables] dropping a field is {p['risk']} risk: proposal {p['id']} is {p['status']}")
        p = reg.approve(p["id"], approver="alice", reason="reviewed")
        click.echo(f"[tables] approved by alice and applied; decisions recorded: "
                   f"{reg.count_rows('memory_governance_decisions')}")
    click.echo(f"[tables] try: chronoledger tables --db {db_path} history memory_self_healing_playbooks")
    return db_path


def _sequence_demo(out_dir: Path) -> Path:
    import shutil

    from chronoledger.sequence.sample import write_user_folder
    from chronoledger.sequence.sync import sync

    root = out_dir / "sequence"
    shutil.rmtree(root, ignore_errors=True)          # a fresh sample each time
    user = write_user_folder(root, items=150, days=60)
    report = sync(user)
    counts = report.built["core"]["counts"]
    click.echo(f"\n[sequence] wrote a sample user folder ({report.items} items, {report.files} YAML files) and "
               f"mirrored it in {report.seconds:.2f} s: {counts['items']} items, {counts['relations']} relations, "
               f"{counts['completions']:,} completions, {counts['schedules']:,} schedule blocks")
    digest = (user / "Data" / "tendencies.md").read_text(encoding="utf-8").splitlines()
    for line in digest[4:8]:
        click.echo(f"[sequence]   {line}")
    click.echo(f"[sequence] try: sequence data \"SELECT type, COUNT(*) FROM items GROUP BY type\" --user {user}")
    return user


def _runtime_demo(out_dir: Path) -> Path:
    from chronoledger.runtime import RuntimeMemoryStore

    db_path = out_dir / "runtime.sqlite"
    log_path = out_dir / "runtime-events.cmeta"
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
    click.echo(f"\n[runtime] {db_path.name}: session of {len(replay['turns'])} turns, workflow "
               f"{wf['workflow_name']} with {len(wf['steps'])} steps and "
               f"{sum(len(s['events']) for s in wf['steps'])} events (mirrored to {log_path.name}), "
               f"proposal {lineage['proposal']['status']} after {len(lineage['validations'])} validation, "
               f"{len(lineage['approvals'])} approval, {len(lineage['deploy_outcomes'])} deploy; "
               f"tom's behaviour profile v{behaviour['version']}")
    click.echo(f"[runtime] try: chronoledger runtime lineage {db_path} --latest")
    click.echo(f"[runtime]      chronoledger runtime replay {db_path} {session['id']}")
    return db_path
