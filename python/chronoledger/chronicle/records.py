"""The records a chronicle stores, and the columns each schema maps them to."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from chronoledger.chronicle import format as fmt

METRIC_PREFIX = "metrics."     # cycle chronicles: one optional float column per metric name
VALUE_PREFIX = "values."       # event logs: one optional float column per value name
PHASE_MAX_BYTES = 64


@dataclass(frozen=True)
class CycleRecord:
    """One cycle of a running system, as the chronicle specification defines it.

    ``timestamp`` is a monotonic cycle index or an epoch time (u64);
    ``phase`` a short name ("dream", "train", "validate", ...); ``metrics`` a
    diagnostics snapshot of named floats (names may appear during a run);
    ``tensor_signature`` the 3-vector mean; ``action_code`` an optional 0..255;
    ``seed_state`` the RNG seed that lets the cycle be replayed (u64).
    Floats are stored as the chronicle's precision says (chronicle.precision):
    their exact float32 (the cycle fields) or float64 (metrics) by default, or
    fixed point at a scale; a record read back holds exactly what was stored.
    """

    timestamp: int
    phase: str
    loss_value: float
    coherence: float
    tensor_signature: tuple[float, float, float] = (0.0, 0.0, 0.0)
    action_code: int | None = None
    seed_state: int = 0
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EventRecord:
    """One entry of an event log: a timestamp, an event type, a JSON payload
    (a JSON object) and optional named numeric values."""

    timestamp: int
    event_type: str
    payload: dict = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)


def cycle_records(rows: Iterable[tuple[Any, ...]]) -> Iterator[CycleRecord]:
    """CycleRecords from rows of (timestamp, phase, loss_value, coherence,
    tensor_signature, action_code, seed_state, metrics) whose values already
    have their types (the reader checks each column's kind once).

    Why not ``CycleRecord(*row)``: a frozen dataclass's ``__init__`` sets each
    field through ``object.__setattr__``, which is most of the cost of a
    1,000-record query; filling the instance's ``__dict__`` at once gives the
    same object (same fields, equality and hash) in a third of the time."""
    new = object.__new__
    for row in rows:
        rec = new(CycleRecord)
        d = rec.__dict__
        (d["timestamp"], d["phase"], d["loss_value"], d["coherence"], d["tensor_signature"], d["action_code"],
         d["seed_state"], d["metrics"]) = row
        yield rec


# Fixed columns of each schema: (column name, kind).  Metric/value columns
# come after them, one per name, in the order the names first appeared.
CYCLE_COLUMNS = [
    ("timestamp", fmt.KIND_INT),
    ("phase", fmt.KIND_STR),
    ("loss_value", fmt.KIND_QF32),
    ("coherence", fmt.KIND_QF32),
    ("tensor_signature.0", fmt.KIND_QF32),
    ("tensor_signature.1", fmt.KIND_QF32),
    ("tensor_signature.2", fmt.KIND_QF32),
    ("action_code", fmt.KIND_OPT_U8),
    ("seed_state", fmt.KIND_INT),
]
EVENT_COLUMNS = [
    ("timestamp", fmt.KIND_INT),
    ("event_type", fmt.KIND_STR),
    ("payload", fmt.KIND_TEXT),
]
FIXED_COLUMNS = {fmt.SCHEMA_CYCLE: CYCLE_COLUMNS, fmt.SCHEMA_EVENT: EVENT_COLUMNS}
DYNAMIC_PREFIX = {fmt.SCHEMA_CYCLE: METRIC_PREFIX, fmt.SCHEMA_EVENT: VALUE_PREFIX}
