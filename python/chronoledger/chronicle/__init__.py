"""The chronicle: a checksummed, replayable ``.cmeta`` ledger of cycle records
and event logs.

    from chronoledger.chronicle import Chronicle, CycleRecord

    with Chronicle.open("run.cmeta", "a") as ch:
        ch.append(timestamp=1, phase="train", loss_value=0.9, coherence=0.5, seed_state=42)
    with Chronicle.open("run.cmeta") as ch:
        print(ch.query(0, 10), ch.to_numpy()["loss_value"])

From a training loop, ``Run`` (run.py) turns ``run.log({"loss": ..., "acc": ...},
step=i)`` into one record per step, and resumes a run from a checkpoint.

The functions named in the chronicle specification (``record_cycle``,
``save_chronicle``, ``load_chronicle``, ``query_range``, ``compress_records``,
``replay_cycle``) are here too, over the same objects.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from chronoledger.chronicle.audit import AuditReport, RecoveryReport, audit, recover, verify
from chronoledger.chronicle.chronicle import Chronicle
from chronoledger.chronicle.export import export
from chronoledger.chronicle.reader import ChronicleReader, Damage
from chronoledger.chronicle.records import CycleRecord, EventRecord
from chronoledger.chronicle.replay import (ReplayReport, Step, StepFactory, load_step, normalise, record_hash,
                                           regenerate, replay_records)
from chronoledger.chronicle.run import Run
from chronoledger.chronicle.writer import ChronicleWriter, WriterLockedError

__all__ = [
    "AuditReport", "Chronicle", "ChronicleReader", "ChronicleWriter", "CycleRecord", "Damage", "EventRecord",
    "RecoveryReport", "ReplayReport", "Run", "WriterLockedError", "audit", "compress_records", "export",
    "load_chronicle", "load_step", "normalise", "query_range", "record_cycle", "record_hash", "recover", "regenerate",
    "replay", "replay_cycle", "save_chronicle", "verify",
]


def record_cycle(rec: CycleRecord, chronicle: Chronicle) -> CycleRecord:
    """Append ``rec`` to ``chronicle`` and return it as it will be read back
    (floats as the chronicle's precision stores them)."""
    chronicle.append(rec)
    return normalise(rec, chronicle.precision)


def save_chronicle(chronicle: Chronicle) -> None:
    """Write everything recorded so far to disk: blocks, a footer, fsync."""
    chronicle.save()


def load_chronicle(path: str | os.PathLike[str]) -> Chronicle:
    """Open a chronicle for reading (iterate it, ``query`` it, ``to_numpy`` it)."""
    return Chronicle.open(path, "r")


def query_range(chronicle: Chronicle, start: int, end: int) -> list[CycleRecord | EventRecord]:
    """Records with ``start <= timestamp < end``, in timestamp order."""
    return chronicle.query(start, end)


def compress_records(chronicle: Chronicle) -> dict[str, Any]:
    """Compress everything staged into blocks on disk (delta, fixed point,
    bit-packing, zstd) and report sizes: records, bytes, bytes per record."""
    chronicle.flush()
    reader = chronicle.reader()
    stored = sum(b.end - b.offset for b in reader.blocks)
    n = len(reader)
    return {"records": n, "bytes": stored, "bytes_per_record": stored / n if n else 0.0}


def replay_cycle(record: CycleRecord, step: Step, scale: float = 1e-6) -> CycleRecord:
    """Run ``step(timestamp, phase, seed_state)`` for ``record``'s cycle and
    return the regenerated record, normalised as a chronicle stores it; equal
    (``record_hash``) to the stored record when the step is deterministic."""
    return regenerate(step, record, scale)


def replay(path: str | os.PathLike[str], step_factory: StepFactory, *,
           progress: Callable[[int], None] | None = None) -> ReplayReport:
    """Re-run a whole cycle chronicle through ``step_factory(config,
    initial_seed)`` (both from the header) and compare every record by hash."""
    with ChronicleReader(path) as reader:
        meta = reader.metadata
        return replay_records(reader.records(), step_factory, meta.get("config") or {},
                              reader.initial_seed or 0, reader.precision, progress)
