"""Replay: re-run a deterministic step function and compare every record by hash."""

from __future__ import annotations

import importlib
import importlib.util
import math
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chronoledger import core
from chronoledger.chronicle.records import CycleRecord, EventRecord
from chronoledger.errors import ConfigError

#: A step function: (timestamp, phase, seed_state) -> {"loss_value", "coherence",
#: "tensor_signature", "action_code", "metrics"}.
Step = Callable[[int, str, int], dict[str, Any]]
#: Makes a fresh step function from a run's (config, initial seed).
StepFactory = Callable[[dict[str, Any], int], Step]


def _norm32(v: float, scale: float) -> float:
    return float(core.dequantize(core.quantize([v], scale), scale, dtype=np.float32)[0])


def _norm64(v: float, scale: float) -> float:
    return float(core.dequantize(core.quantize([v], scale), scale)[0])


def normalise(record: CycleRecord, scale: float) -> CycleRecord:
    """The record exactly as a chronicle at ``scale`` stores and reads it back."""
    sig0, sig1, sig2 = record.tensor_signature
    return CycleRecord(
        timestamp=int(record.timestamp), phase=record.phase,
        loss_value=_norm32(record.loss_value, scale), coherence=_norm32(record.coherence, scale),
        tensor_signature=(_norm32(sig0, scale), _norm32(sig1, scale), _norm32(sig2, scale)),
        action_code=None if record.action_code is None else int(record.action_code),
        seed_state=int(record.seed_state),
        metrics={k: _norm64(v, scale) for k, v in record.metrics.items()},
    )


def record_hash(record: CycleRecord) -> int:
    """CRC-64 of a canonical byte form of a (normalised) record."""
    parts = [struct.pack("<Q", record.timestamp), record.phase.encode(), b"\0",
             struct.pack("<5d", record.loss_value, record.coherence, *record.tensor_signature),
             struct.pack("<hQ", -1 if record.action_code is None else record.action_code, record.seed_state)]
    for k in sorted(record.metrics):
        parts.append(k.encode() + b"\0" + struct.pack("<d", record.metrics[k]))
    return core.crc64(b"".join(parts))


def load_step(spec: str) -> StepFactory:
    """Import a step factory named ``module:function`` or ``path/to/file.py:function``."""
    if ":" not in spec:
        raise ConfigError(f"--step {spec!r}: expected module:function or file.py:function")
    target, _, func = spec.rpartition(":")
    try:
        if target.endswith(".py") or "/" in target or "\\" in target:
            path = Path(target).resolve()
            if not path.is_file():
                raise ConfigError(f"--step {spec!r}: {path} is not a file")
            mod_name = f"_chronoledger_step_{path.stem}"
            loader_spec = importlib.util.spec_from_file_location(mod_name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ConfigError(f"--step {spec!r}: {path} cannot be imported as a Python module")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[mod_name] = module
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ImportError as exc:
        raise ConfigError(f"--step {spec!r}: cannot import {target!r}: {exc}") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ConfigError(f"--step {spec!r}: {target!r} has no callable {func!r}")
    return fn


def regenerate(step: Step, stored: CycleRecord, scale: float) -> CycleRecord:
    """Run ``step`` for the cycle ``stored`` describes and return the record it gives, normalised."""
    out = step(stored.timestamp, stored.phase, stored.seed_state)
    try:
        rec = CycleRecord(timestamp=stored.timestamp, phase=stored.phase, loss_value=out["loss_value"],
                          coherence=out["coherence"],
                          tensor_signature=tuple(out.get("tensor_signature", (0.0, 0.0, 0.0))),
                          action_code=out.get("action_code"), seed_state=stored.seed_state,
                          metrics=dict(out.get("metrics") or {}))
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"the step function must return a dict with loss_value, coherence, "
                          f"tensor_signature, action_code, metrics: {exc}") from None
    for v in (rec.loss_value, rec.coherence, *rec.tensor_signature, *rec.metrics.values()):
        if not math.isfinite(v):
            raise ConfigError(f"the step function returned a non-finite value {v!r} at timestamp {stored.timestamp}")
    return normalise(rec, scale)


@dataclass
class Divergence:
    index: int
    timestamp: int
    fields: list[str]
    stored: CycleRecord
    replayed: CycleRecord

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "timestamp": self.timestamp, "fields": self.fields,
                "stored": _fields(self.stored), "replayed": _fields(self.replayed)}


def _fields(r: CycleRecord) -> dict[str, object]:
    return {"loss_value": r.loss_value, "coherence": r.coherence, "tensor_signature": list(r.tensor_signature),
            "action_code": r.action_code, "metrics": r.metrics}


@dataclass
class ReplayReport:
    records: int = 0
    matched: int = 0
    first_divergence: Divergence | None = None
    divergences: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.divergences == 0 and self.records > 0

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "records": self.records, "matched": self.matched, "divergences": self.divergences,
                "first_divergence": self.first_divergence.as_dict() if self.first_divergence else None}


def _diff(a: CycleRecord, b: CycleRecord) -> list[str]:
    names = [n for n in ("loss_value", "coherence", "tensor_signature", "action_code")
             if getattr(a, n) != getattr(b, n)]
    if a.metrics != b.metrics:
        keys = sorted(set(a.metrics) | set(b.metrics))
        names += [f"metrics.{k}" for k in keys if a.metrics.get(k) != b.metrics.get(k)]
    return names


def replay_records(records: Iterable[CycleRecord | EventRecord], step_factory: StepFactory, config: dict[str, Any],
                   initial_seed: int, scale: float,
                   progress: Callable[[int], None] | None = None) -> ReplayReport:
    """Replay ``records`` (stored CycleRecords, in order) through a fresh step function."""
    step = step_factory(config, initial_seed)
    report = ReplayReport()
    for i, stored in enumerate(records):
        if not isinstance(stored, CycleRecord):
            raise ConfigError(f"replay needs cycle records; record {i} is an {type(stored).__name__}")
        again = regenerate(step, stored, scale)
        report.records += 1
        if record_hash(again) == record_hash(stored):
            report.matched += 1
        else:
            report.divergences += 1
            if report.first_divergence is None:
                report.first_divergence = Divergence(i, stored.timestamp, _diff(stored, again), stored, again)
        if progress is not None:
            progress(1)
    return report
