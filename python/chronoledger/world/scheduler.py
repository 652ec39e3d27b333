"""The run loop: days of ticks, every agent's action chosen at once per
tick, conversations through the language model, memories and relationship
changes, everything written to SQLite and to the run's chronicle, a
checkpoint after every whole tick, and a report after every day.

A run is four parts (docs/world.md, "Layout"): the world's state between
ticks (:mod:`~chronoledger.world.state`), the tick's policy, which decides
what everyone does (:mod:`~chronoledger.world.policy`, with one class per
action type in :mod:`~chronoledger.world.actions`), the talk through the
model (:mod:`~chronoledger.world.talk`), and the rows and log records a tick
leaves (:mod:`~chronoledger.world.rows`).  :class:`WorldRun` drives them and
keeps the checkpoints; :func:`run` and :func:`resume` are the entry points.

Determinism: one numpy generator (PCG64, from the seed) makes every random
choice, in a fixed order; times are simulated times, never the clock; ids
are assigned by the run.  The same seed, config, scenario and agents give
the same rows and the same chronicle bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator, Mapping

import apsw
import numpy as np
import zstandard

from chronoledger import core
from chronoledger import sqlite as db
from chronoledger.chronicle import Chronicle
from chronoledger.errors import ConfigError, CorruptDataError, NotFoundError
from chronoledger.world import reporting, store
from chronoledger.world.agents import Agents, ensure_agents
from chronoledger.world.channel import ReportChannel
from chronoledger.world.config import Scenario, WorldConfig, parse_config, parse_scenario
from chronoledger.world.environment import Environment
from chronoledger.world.memory import vectors_of
from chronoledger.world.models import LanguageModel
from chronoledger.world.policy import TickPolicy
from chronoledger.world.reporting import DayTally
from chronoledger.world.results import REPORT_FORMATS, RunOptions, RunResult, TickResult
from chronoledger.world.rows import SQL_STAYS, Checkpoint, TickJob, TickRows
from chronoledger.world.state import WorldState
from chronoledger.world.talk import Talk
from chronoledger.world.writer import TickWriter

__all__ = ["REPORT_FORMATS", "RunOptions", "RunResult", "TickResult", "WorldRun", "ensure_agents", "resume", "run"]

_logger = logging.getLogger("chronoledger.world")
_ZSTD_C = zstandard.ZstdCompressor(level=1)      # checkpoints: see WorldRun._checkpoint
_ZSTD_D = zstandard.ZstdDecompressor()


class WorldRun:
    """One run of the world: set up by :func:`run` (or :func:`resume`),
    driven tick by tick; its state, policy, talk and rows are its parts."""

    def __init__(self, conn: apsw.Connection, db_file: Path, config: WorldConfig, scenario: Scenario | None,
                 model: LanguageModel, options: RunOptions, known_vectors: dict[str, np.ndarray] | None = None):
        self.conn, self.db_file, self.model, self.opt = conn, db_file, model, options
        if config.memory.relevance == "embedding" and not model.embedding_model:     # refused before any write
            raise ConfigError(f"{config.source}: memory.relevance is embedding, and the {model.name} model makes "
                              f"no embeddings (give it an embedding model: --embedding-model)")
        self.state = WorldState(conn, db_file, config, scenario, options)
        self.policy = TickPolicy(self.state)
        self.talk = Talk(self.state, model, known_vectors)
        self.rows = TickRows(self.state, self.talk)
        # set by run() and resume() for as long as the run is driven (_drive)
        self.writer: TickWriter[TickJob]
        self.chronicle: Chronicle               # the run's event log
        self.ticks_run = 0                         # by this process (a resumed run counts from its checkpoint)
        self.after_commit: Callable[[], None] = lambda: None
        self.tally = DayTally(len(self.state.agents))   # the day's report figures (each day starts a new one)

    # what the day's report reads of the run
    @property
    def run_id(self) -> int:
        return self.state.run_id

    @run_id.setter
    def run_id(self, value: int) -> None:
        self.state.run_id = value

    @property
    def cfg(self) -> WorldConfig:
        return self.state.cfg

    @property
    def agents(self) -> Agents:
        return self.state.agents

    @property
    def env(self) -> Environment:
        return self.state.env

    @property
    def act_category(self) -> list[str]:
        return self.state.act_category

    def day_label(self, day: int) -> str:
        return self.state.day_label(day)

    def stamp(self, day: int, tick: int) -> tuple[str, int]:
        return self.state.stamp(day, tick)

    def tick(self, day: int, tick: int) -> TickResult:
        """Decide, talk, write: one tick of every agent."""
        d = self.policy.decide(day, tick)
        requests, owners, texts = self.talk.talk(d)
        self.policy.after(d)
        jobs, result = self.rows.write(d, requests, owners, texts, self.chronicle, self.tally)
        self.tally.add(self, tick, result)
        self.writer.submit(TickJob(day, tick, d.label, jobs, *self._snapshot(day, tick)))
        return result

    def commit_tick(self, job: TickJob) -> None:
        """The tick's transaction (on the writer's thread): its rows and the
        checkpoint; then the WAL's upkeep."""
        conn = self.conn
        with db.write_transaction(conn, f"{self.db_file}: tick {job.tick} of {job.label}"):
            db.insert_many(conn, job.jobs)
            self._checkpoint(job.day, job.tick, job.state, job.arrays)
        self.after_commit()

    # --- checkpoints -----------------------------------------------------------
    def restore(self, cp: Checkpoint, arrays: Mapping[str, np.ndarray]) -> DayTally:
        """The state of a checkpoint (see _snapshot; ``arrays`` from
        :func:`_read_checkpoint`); the day's report figures so far."""
        self.state.restore(cp["rng"], cp["next_conv"], cp["slots_done"], cp["totals"], cp["tally"]["memories"], arrays)
        return DayTally.from_state(len(self.state.agents), cp["tally"], arrays)

    def _snapshot(self, day: int, tick: int) -> tuple[Checkpoint, bytes]:
        """The run's state after a whole tick, taken before the next tick
        changes it: the generator and counters (JSON), and the agents' arrays
        with the day's report figures (an uncompressed .npz)."""
        s = self.state
        buf = io.BytesIO()
        tally_arrays, tally_state = self.tally.arrays()
        # ignore: numpy's stub (2.1+) has savez(..., allow_pickle: bool, **kwds) and mypy matches a str-keyed
        # ** against that keyword too; these keys are array names (and numpy 1.26, still supported, has no
        # allow_pickle to pass instead)
        np.savez(buf, **s.arrays(), **tally_arrays)  # type: ignore[arg-type]
        tally_state["memories"] = dict(s.day_memories)
        state: Checkpoint = {"day": day, "tick": tick, "rng": s.rng.bit_generator.state, "next_conv": s.next_conv,
                             "slots_done": s.slot_done.tolist(), "records": len(self.chronicle),
                             "totals": dict(s.totals), "tally": tally_state}
        return state, buf.getvalue()

    def _checkpoint(self, day: int, tick: int, state: Checkpoint, arrays: bytes) -> None:
        """Store a snapshot, in the tick's transaction.  Written after every
        tick, it must cost little beside the tick's rows: fixed-width ints,
        zstd level 1 (four times faster than zlib level 1 here, and smaller)."""
        self.conn.execute("UPDATE runs SET checkpoint_json = ?, checkpoint_state = ? WHERE id = ?",
                          (json.dumps(state, default=int), _ZSTD_C.compress(arrays), self.state.run_id))


def run(db_url: str | os.PathLike[str], config: WorldConfig, model: LanguageModel, options: RunOptions,
        scenario: Scenario | None = None) -> RunResult:
    """Run the world for ``options.days`` days and return what it did."""
    started = time.perf_counter()
    db_file = store.db_path(db_url)
    if options.agents and not options.invent_agents:      # refused before anything is made or written
        have = store.count_agents(db_file)
        if have < options.agents:
            raise ConfigError(f"{db_file}: {have} agents, and {options.agents} asked for: seed the others with "
                              f"`chronoledger world seed-agent`, or make them up with --invent-agents")
    if options.chronicle is not None and not Path(options.chronicle).parent.is_dir():
        raise ConfigError(f"{options.chronicle}: the folder of the event log does not exist")
    with _opened(db_url) as (conn, checkpointer):
        w = WorldRun(conn, db_file, config, scenario, model, options)
        s = w.state
        w.after_commit = checkpointer.after_commit
        with db.write_transaction(conn, f"{db_file}: starting a run"):
            conn.execute("INSERT INTO runs (seed, days, agents, model, config_json, scenario_json, status, started_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, 'running', ?)",
                         (options.seed, options.days, len(s.agents), model.name, json.dumps(config.raw, default=str),
                          json.dumps(scenario.raw, default=str) if scenario else None, s.stamp(1, 0)[0]))
            w.run_id = store.as_int(conn.execute("SELECT max(id) FROM runs").fetchall()[0][0], "runs.id")
        log_path = options.chronicle or db_file.with_name(f"{db_file.stem}-run-{w.run_id}.cmeta")
        meta = {"source": "chronoledger world", "seed": options.seed, "days": options.days, "agents": len(s.agents),
                "model": model.name, "config": config.raw, "scenario": scenario.raw if scenario else None,
                "first_conversation": s.next_conv, "embedding_model": model.embedding_model,
                "actions": list(s.action_names),
                "locations": dict(zip(s.env.names, s.loc_ids.tolist())),
                "activities": dict(zip(s.act_names, s.act_ids.tolist()))}
        # the log's salt follows from the run, so the same seed gives the same log bytes
        salt = core.crc64(f"chronoledger world run {options.seed} {w.run_id}".encode())
        with Chronicle.open(log_path, "w", schema="event", metadata=json.loads(json.dumps(meta, default=str)),
                            block_records=65536, salt=salt) as ch:
            w.chronicle = ch
            w.rows.log_roster(conn, ch)
            conn.execute("UPDATE runs SET chronicle = ? WHERE id = ?", (os.path.relpath(log_path, db_file.parent),
                                                                         w.run_id))
            reports = _drive(w, 1, 0, None)
        return _finish(w, log_path, reports, started)


@contextlib.contextmanager
def _opened(db_url: str | os.PathLike[str]) -> Iterator[tuple[apsw.Connection, db.BackgroundCheckpointer]]:
    """The run's connection, with its WAL copied back from a thread of its own;
    SQLite's errors met while it is open are the package's, naming the file."""
    db_file = store.db_path(db_url)
    conn = store.connect(db_url)
    try:
        with db.sqlite_errors(db_file):
            conn.execute("PRAGMA cache_size = -65536")          # 64 MB: a large run's indexes stay in memory
            checkpointer = db.BackgroundCheckpointer(conn, db_file)     # WAL copies off the run's commits
    except BaseException:
        conn.close()
        raise
    try:
        with db.sqlite_errors(db_file):
            yield conn, checkpointer
    finally:
        checkpointer.close()
        conn.close()


def _drive(w: WorldRun, first_day: int, first_tick: int, tally: DayTally | None,
           reports: list[Path] | None = None) -> list[Path]:
    """The days and ticks from (first_day, first_tick) on, their rows
    committed by a writer thread, then the log's last event; the reports
    written (after ``reports``)."""
    w.writer = TickWriter(w.commit_tick)
    try:
        reports = (reports or []) + _days(w, first_day, first_tick, tally)
    finally:
        w.writer.close()
    w.rows.log_finished(w.chronicle)
    return reports


def _days(w: WorldRun, first_day: int, first_tick: int, tally: DayTally | None) -> list[Path]:
    conn, cfg, options, s = w.conn, w.cfg, w.opt, w.state
    reports: list[Path] = []
    try:
        for day in range(first_day, options.days + 1):
            start = first_tick if day == first_day else 0
            if start == 0:                       # a fresh day: counters, friendships, the plan
                s.actions_today[:] = 0
                s.moves_today[:] = 0
                s.best_friends()
                w.rows.pending_schedules = s.plan_day(day)   # stored with the day's first tick, in its transaction
                tally = reporting.DayTally(len(s.agents))
            elif tally is None:                  # only a fresh day starts without one (resume passes its own)
                raise ValueError(f"day {day} resumed at tick {start} without its report figures")
            w.tally = tally
            for tick in range(start, cfg.ticks_per_day):
                w.writer.check()                 # a failed write stops the run before more work (or model calls)
                w.tick(day, tick)
                w.ticks_run += 1
                if options.progress:
                    options.progress(day, tick, cfg.ticks_per_day)
            w.writer.drain()                     # the day's memory counts, and the connection, are the writer's
            tally.memories = Counter(s.day_memories)
            reports += reporting.write_day(w, day, tally, options)
    except BaseException as exc:
        # Ctrl-C or a failure: what was submitted commits (waiting through more Ctrl-C, since the
        # connection is the writer's until then), and the run is stopped, resumable from its checkpoint
        failed = w.writer.settle()
        if failed is not None and failed is not exc:       # a note as add_note() makes one (Python 3.10 has none)
            setattr(exc, "__notes__", [*getattr(exc, "__notes__", ()), f"the run's writer failed as well: {failed!r}"])
        try:
            conn.execute("UPDATE runs SET status = 'stopped' WHERE id = ?", (w.run_id,))
        except apsw.Error:      # kept: best effort on the way out; the failure being raised is the one to report
            pass
        raise
    return reports


def _finish(w: WorldRun, log_path: Path, reports: list[Path], started: float) -> RunResult:
    conn, cfg, options, s = w.conn, w.cfg, w.opt, w.state
    s.totals["memories"] = s.memories_total
    final_stamp = s.stamp(options.days, cfg.ticks_per_day - 1)[0]
    last = s.gmin(options.days, cfg.ticks_per_day - 1)
    with db.write_transaction(conn, f"{w.db_file}: finishing run {w.run_id}"):
        conn.executemany(SQL_STAYS,           # the stays still open (until NULL)
                         [(s.run_id, int(s.agents.ids[i]), int(s.loc_ids[s.loc[i]]), s.minute_stamp(int(since)), None)
                          for i, since in enumerate(s.stay_since.tolist()) if s.dest[i] < 0] +
                         # an agent still on its way: its next stay, from when it arrives
                         [(s.run_id, int(s.agents.ids[i]), int(s.loc_ids[s.dest[i]]),
                           s.minute_stamp(last + int(s.travel_left[i]) * cfg.tick_minutes), None)
                          for i in np.flatnonzero(s.dest >= 0).tolist()])
        conn.execute("UPDATE runs SET status = 'finished', finished_at = ? WHERE id = ?", (final_stamp, w.run_id))
    n = len(s.agents)
    result = RunResult(s.run_id, options.days, n, n * options.days * cfg.ticks_per_day, s.totals["events"],
                       s.totals["conversations"], s.totals["memories"], log_path, reports,
                       time.perf_counter() - started, n * w.ticks_run)
    _logger.info("%s: run %d finished: %d day(s) of %d agents, %d events, %d conversations, %d new memories "
                 "in %.1f s; log %s", w.db_file, s.run_id, options.days, n, result.events, result.conversations,
                 result.memories, result.seconds, log_path.name)
    return result


def resume(db_url: str | os.PathLike[str], model: LanguageModel, run_id: int | None = None, *,
           reports_dir: Path | None = None, report_format: str = "both", summary_only: bool = False,
           progress: Callable[[int, int, int], None] | None = None,
           report_channel: ReportChannel | None = None) -> RunResult:
    """Continue a stopped run (the latest unfinished one by default) from
    its last whole tick: the state and the generator as they were then,
    the event log cut back to that tick.  Resuming two copies of a stopped
    run gives two runs that share nothing and go on alike."""
    started = time.perf_counter()
    db_file = store.db_path(db_url)
    with _opened(db_url) as (conn, checkpointer):
        sql = ("SELECT id, seed, days, agents, config_json, scenario_json, chronicle, checkpoint_json, "
               "checkpoint_state, model FROM runs WHERE status IN ('running', 'stopped') "
               "AND (checkpoint_json IS NOT NULL OR ? IS NOT NULL)")
        rows = conn.execute(sql + (" AND id = ?" if run_id is not None else "") + " ORDER BY id DESC LIMIT 1",
                            (run_id, run_id) if run_id is not None else (None,)).fetchall()
        if not rows:
            early = conn.execute("SELECT max(id) FROM runs WHERE status IN ('running', 'stopped')").fetchall()[0][0]
            if early is not None:           # unfinished, but stopped before its first tick was stored
                raise NotFoundError(f"{db_file}: run {early} stopped before its first tick; start it again")
            raise NotFoundError(f"{db_file}: no unfinished run" + (f" {run_id}" if run_id is not None else ""))
        row_id, seed, days, n_agents, config_json, scenario_json, log_rel, cp_json, cp_blob, made_with = rows[0]
        rid = store.as_int(row_id, "runs.id")
        if not cp_json:
            raise NotFoundError(f"{db_file}: run {rid} stopped before its first tick; start it again")
        if made_with != model.name:          # its log and replay would mix two models
            raise ConfigError(f"{db_file}: run {rid} was made with the {made_with} model; resume it with that one")
        cp, arrays = _read_checkpoint(db_file, rid, cp_json, cp_blob)
        taken = conn.execute("SELECT min(run_id) FROM conversations WHERE id >= ? AND run_id <> ?",
                             (cp["next_conv"], rid)).fetchall()[0][0]
        if taken is not None:
            raise ConfigError(f"{db_file}: run {taken} has taken the conversation ids run {rid} would go on with; "
                              f"resume run {rid} in a copy of the database made before run {taken}")
        config = parse_config(json.loads(store.as_text(config_json, "runs.config_json")),
                              f"{db_file}: run {rid} (recorded config)")
        scenario = parse_scenario(json.loads(store.as_text(scenario_json, "runs.scenario_json")),
                                  f"{db_file}: run {rid} (recorded scenario)", config) if scenario_json else None
        log_path = db_file.parent / store.as_text(log_rel, "runs.chronicle")
        options = RunOptions(days=store.as_int(days, "runs.days"), agents=store.as_int(n_agents, "runs.agents"),
                             seed=store.as_int(seed, "runs.seed"), chronicle=log_path, reports_dir=reports_dir,
                             report_format=report_format, summary_only=summary_only, progress=progress,
                             report_channel=report_channel)
        # the vectors the run's log holds up to the checkpoint: asked for again they would be logged again
        known = _logged_vectors(log_path, cp["records"]) if config.memory.relevance == "embedding" else None
        w = WorldRun(conn, db_file, config, scenario, model, options, known)
        w.after_commit = checkpointer.after_commit
        w.run_id = rid
        with _damaged_checkpoint(db_file, rid):
            tally = w.restore(cp, arrays)
        _cut_log(log_path, cp["records"])
        day, tick = cp["day"], cp["tick"] + 1
        _logger.info("%s: resuming run %d at day %d, tick %d", db_file, rid, day, tick)
        with Chronicle.open(log_path, "a", schema="event", block_records=65536) as ch:
            w.chronicle = ch
            conn.execute("UPDATE runs SET status = 'running' WHERE id = ?", (rid,))
            reports: list[Path] = []
            if tick == config.ticks_per_day:     # the day's last tick was done: its report, then the next day
                w.tally = tally
                reports += reporting.write_day(w, day, tally, options)
                day, tick = day + 1, 0
            reports = _drive(w, day, tick, tally, reports)
        return _finish(w, log_path, reports, started)


@contextlib.contextmanager
def _damaged_checkpoint(db_file: Path, rid: int) -> Iterator[None]:
    try:
        yield
    except (ValueError, KeyError, TypeError, OSError, zstandard.ZstdError, zipfile.BadZipFile) as exc:
        raise CorruptDataError(f"{db_file}: run {rid}: its checkpoint (runs.checkpoint_json and checkpoint_state) "
                               f"is damaged ({type(exc).__name__}: {exc}); nothing was changed") from None


def _read_checkpoint(db_file: Path, rid: int, cp_json: apsw.SQLiteValue, blob: apsw.SQLiteValue
                     ) -> tuple[Checkpoint, dict[str, np.ndarray]]:
    """A stopped run's checkpoint (runs.checkpoint_json and checkpoint_state):
    its JSON state and its arrays, or a CorruptDataError naming the run."""
    with _damaged_checkpoint(db_file, rid):
        if not isinstance(cp_json, (str, bytes)) or not isinstance(blob, bytes):
            raise TypeError(f"{type(cp_json).__name__} and {type(blob).__name__} stored, not text and bytes")
        cp = json.loads(cp_json)
        for key in ("day", "tick", "rng", "next_conv", "slots_done", "records", "totals", "tally"):
            cp[key]
        with np.load(io.BytesIO(_ZSTD_D.decompress(blob))) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return cp, arrays


def _logged_vectors(path: Path, records: int) -> dict[str, np.ndarray]:
    """The embedding vectors of a run's log, in its first ``records`` records (by text key)."""
    out: dict[str, np.ndarray] = {}
    with Chronicle.open(path) as ch:
        cols = ch.to_numpy(["event_type", "payload"])
    for etype, payload in zip(cols["event_type"][:records], cols["payload"][:records]):
        if etype == "lm_response" and '"embeddings"' in payload:
            try:
                out.update(vectors_of(json.loads(payload).get("embeddings")))
            except ValueError as exc:
                raise CorruptDataError(f"{path}: {exc}; the run cannot go on from its log") from None
    return out


def _cut_log(path: Path, records: int) -> None:
    """Cut the event log back to the checkpoint's ``records``: a tick logged
    but never committed (a kill between the two) is dropped, to be run again."""
    with Chronicle.open(path) as ch:
        blocks = ch.reader().blocks
    total, cut = 0, None
    for b in blocks:
        if total == records:
            cut = b.offset
            break
        total += b.records
    if cut is None:
        if total == records:
            return                               # nothing past the checkpoint
        raise CorruptDataError(f"{path}: the log holds {total} records, the checkpoint {records}, and no block ends "
                               f"there; it cannot be cut back to the checkpoint")
    _logger.info("%s: cut back to the checkpoint's %d records (%d bytes of ticks logged but never committed)",
                 path, records, path.stat().st_size - cut)
    os.truncate(path, cut)
