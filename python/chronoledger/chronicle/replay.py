"""Replay: re-run a deterministic step function and compare every record by hash."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import struct
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chronoledger import core
from chronoledger.chronicle.precision import Precision
from chronoledger.chronicle.records import CycleRecord, EventRecord
from chronoledger.errors import ConfigError, StepError

#: A step function: (timestamp, phase, seed_state) -> {"loss_value", "coherence",
#: "tensor_signature", "action_code", "metrics"}.
Step = Callable[[int, str, int], dict[str, Any]]
#: Makes a fresh step function from a run's (config, initial seed).
StepFactory = Callable[[dict[str, Any], int], Step]


def _norm32(v: float, scale: float | None) -> float:
    """A float32 field as stored: its float32 value, or fixed point at ``scale`` (non-finite kept)."""
    if scale is None or not math.isfinite(v):
        return float(np.float32(v))
    return float(core.dequantize(core.quantize([v], scale), scale, dtype=np.float32)[0])


def _norm64(v: float, scale: float | None) -> float:
    if scale is None or not math.isfinite(v):
        return float(v)
    return float(core.dequantize(core.quantize([v], scale), scale)[0])


def normalise(record: CycleRecord, precision: Precision | float | None) -> CycleRecord:
    """The record exactly as a chronicle with this precision (or one scale,
    as format 1 has) stores and reads it back."""
    pr = precision if isinstance(precision, Precision) else Precision.parse(precision, "cycle")
    sig0, sig1, sig2 = record.tensor_signature
    return CycleRecord(
        timestamp=int(record.timestamp), phase=record.phase,
        loss_value=_norm32(record.loss_value, pr.field("loss_value")),
        coherence=_norm32(record.coherence, pr.field("coherence")),
        tensor_signature=(_norm32(sig0, pr.field("tensor_signature.0")), _norm32(sig1, pr.field("tensor_signature.1")),
                          _norm32(sig2, pr.field("tensor_signature.2"))),
        action_code=None if record.action_code is None else int(record.action_code),
        seed_state=int(record.seed_state),
        metrics={k: _norm64(v, pr.of(k)) for k, v in record.metrics.items()},
    )


def record_hash(record: CycleRecord) -> int:
    """CRC-64 of a canonical byte form of a (normalised) record."""
    parts = [struct.pack("<Q", record.timestamp), record.phase.encode(), b"\0",
             struct.pack("<5d", record.loss_value, record.coherence, *record.tensor_signature),
             struct.pack("<hQ", -1 if record.action_code is None else record.action_code, record.seed_state)]
    for k in sorted(record.metrics):
        parts.append(k.encode() + b"\0" + struct.pack("<d", record.metrics[k]))
    return core.crc64(b"".join(parts))


@contextlib.contextmanager
def _importable_from(folder: Path) -> Iterator[None]:
    """``folder`` first on the import path while the step is imported (as
    ``python -m`` puts the current folder, and ``python FILE`` the file's),
    so the step's module finds its neighbours; put back afterwards."""
    entry = str(folder)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()           # a module written since the last import is found
    try:
        yield
    finally:
        try:
            sys.path.remove(entry)
        except ValueError:                  # the step's import took it out itself
            pass


def load_step(spec: str) -> StepFactory:
    """Import a step factory named ``module:function`` or ``path/to/file.py:function``.

    A module is looked for as ``python -m`` would: in the current folder
    first, then on the import path (``mystep:make_step`` finds
    ``./mystep.py``); a file is imported with its own folder on the import
    path.  Any failure is a :class:`ConfigError` that says what and why."""
    if ":" not in spec:
        raise ConfigError(f"--step {spec!r}: expected module:function or file.py:function")
    target, _, func = spec.rpartition(":")
    if not target or not func:
        raise ConfigError(f"--step {spec!r}: expected module:function or file.py:function")
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
            with _importable_from(path.parent):
                loader_spec.loader.exec_module(module)
        else:
            with _importable_from(Path.cwd()):
                module = importlib.import_module(target)
    except ConfigError:
        raise
    except ImportError as exc:
        raise ConfigError(f"--step {spec!r}: cannot import {target!r}: {exc}") from exc
    except Exception as exc:             # noqa: BLE001 - the step's module failed while it was imported
        raise ConfigError(f"--step {spec!r}: importing {target!r} raised {describe(exc)}") from exc
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ConfigError(f"--step {spec!r}: {target!r} has no callable {func!r}")
    return fn


def describe(exc: BaseException) -> str:
    """An exception as a traceback's last line names it: ``ValueError: bad
    input``, ``numpy.linalg.LinAlgError: Singular matrix``."""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ in ("builtins", "__main__") else f"{kind.__module__}.{kind.__qualname__}"
    text = str(exc)
    return f"{name}: {text}" if text else name


def regenerate(step: Step, stored: CycleRecord, scale: Precision | float | None) -> CycleRecord:
    """Run ``step`` for the cycle ``stored`` describes and return the record
    it gives, normalised (:class:`StepError`, a ConfigError, if the result is
    not a cycle's)."""
    return _from_result(step(stored.timestamp, stored.phase, stored.seed_state), stored, scale)


_RESULT_KEYS = ("loss_value", "coherence", "tensor_signature", "action_code", "metrics")


def _from_result(out: object, stored: CycleRecord, scale: Precision | float | None,
                 index: int | None = None) -> CycleRecord:
    """The record a step's result describes for the cycle ``stored``, normalised;
    StepError naming the record and what is wrong with the result."""
    at = f"at timestamp {stored.timestamp}" if index is None else f"at record {index} (timestamp {stored.timestamp})"
    what = f"replay: the step's result {at}"
    shape = f"a step returns a dict with {', '.join(_RESULT_KEYS)}; the last three may be left out"
    if not isinstance(out, Mapping):
        raise StepError(f"{what} is a {type(out).__name__}, not a dict ({shape})", index, stored.timestamp)
    missing = [k for k in ("loss_value", "coherence") if k not in out]
    if missing:
        raise StepError(f"{what} lacks {' and '.join(missing)} ({shape})", index, stored.timestamp)
    try:
        sig = [float(x) for x in out.get("tensor_signature", (0.0, 0.0, 0.0))]
        if len(sig) != 3:
            raise StepError(f"{what}: tensor_signature has {len(sig)} values, not 3", index, stored.timestamp)
        rec = CycleRecord(timestamp=stored.timestamp, phase=stored.phase, loss_value=float(out["loss_value"]),
                          coherence=float(out["coherence"]), tensor_signature=(sig[0], sig[1], sig[2]),
                          action_code=out.get("action_code"), seed_state=stored.seed_state,
                          metrics={k: float(v) for k, v in (out.get("metrics") or {}).items()})
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, StepError):
            raise
        raise StepError(f"{what} is not a cycle's result ({describe(exc)}; {shape})",
                        index, stored.timestamp) from None
    return normalise(rec, scale)           # NaN and the infinities are values a chronicle stores, and compares


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
                   initial_seed: int, scale: Precision | float | None,
                   progress: Callable[[int], None] | None = None) -> ReplayReport:
    """Replay ``records`` (stored CycleRecords, in order) through a fresh step function.

    A step (or step factory) that raises, or returns something that is not
    a cycle's result, is an error of the step, not a divergence:
    :class:`StepError` names the record and its timestamp, and the step's
    exception is its ``__cause__`` (with the step's traceback)."""
    try:
        step = step_factory(config, initial_seed)
    except Exception as exc:             # noqa: BLE001 - user code: any failure is the step's
        raise StepError(f"replay: the step factory raised {describe(exc)}") from exc
    if not callable(step):
        raise StepError(f"replay: the step factory returned a {type(step).__name__}, not a step function "
                        f"step(timestamp, phase, seed_state) -> dict")
    report = ReplayReport()
    for i, stored in enumerate(records):
        if not isinstance(stored, CycleRecord):
            raise ConfigError(f"replay needs cycle records; record {i} is an {type(stored).__name__}")
        try:
            out = step(stored.timestamp, stored.phase, stored.seed_state)
        except Exception as exc:         # noqa: BLE001 - user code: any failure is the step's
            raise StepError(f"replay: the step raised at record {i} (timestamp {stored.timestamp}): "
                            f"{describe(exc)}", i, stored.timestamp) from exc
        again = _from_result(out, stored, scale, i)
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


def step_traceback(exc: BaseException) -> str:
    """The traceback of the step's own exception behind a :class:`StepError`
    (or of ``exc``), without the frames of chronoledger that called the step."""
    cause = exc.__cause__ or exc
    tb = cause.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__ and tb.tb_next is not None:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(cause), cause, tb))
