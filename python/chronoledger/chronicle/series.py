"""A run's metrics as series to draw: every record, or thinned for display.

    from chronoledger.chronicle.series import run_series

    run_series("run.cmeta", ["loss_value"], max_points=2000)

Thinning (what ``chronicle plot`` and ``chronoledger serve`` draw): the
records are cut into ``max_points / 2`` buckets of equal count, and of each
bucket the lowest and the highest value are kept, in record order.  A line
through the kept points passes through every extreme of the full series
(spikes stay visible, which averaging or picking every n-th record loses),
and at most ``max_points`` points remain.  Absent values (NaN) are dropped
first.  ``max_points=None`` gives every record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from chronoledger.chronicle.chronicle import Chronicle
from chronoledger.errors import ConfigError, QueryError

__all__ = ["NOT_A_METRIC", "RunValues", "metric_names", "phase_spans", "read_values", "run_info", "run_series",
           "thin"]

#: columns that are not measurements (not drawn)
NOT_A_METRIC = frozenset({"timestamp", "phase", "event_type", "payload", "seed_state"})


@dataclass
class RunValues:
    """A run's timestamps, phases (a cycle chronicle's, else None) and the
    asked metrics as float64 (action_code's -1, "no action", as NaN)."""

    timestamps: npt.NDArray[np.uint64]
    phase: npt.NDArray[Any] | None
    values: dict[str, npt.NDArray[np.float64]]
    config: dict[str, Any] | None


def metric_names(names: list[str]) -> list[str]:
    """The columns of ``names`` that are measurements."""
    return [n for n in names if n not in NOT_A_METRIC]


def read_values(path: str | os.PathLike[str], metrics: list[str]) -> RunValues:
    """The timestamps, phases and ``metrics`` of one chronicle; a metric it
    lacks is a QueryError naming the ones it has."""
    with Chronicle.open(path) as ch:
        names = ch.reader().column_names()
        missing = [m for m in metrics if m not in names or m in NOT_A_METRIC]
        if missing:
            have = ", ".join(metric_names(names)) or "(none)"
            raise QueryError(f"{path}: no column {', '.join(repr(m) for m in missing)} to draw; "
                             f"the columns it has: {have}")
        cycle = ch.schema == "cycle"
        cols = ch.to_numpy(["timestamp", *(["phase"] if cycle else []), *metrics])
        config = ch.config
    values = {}
    for m in metrics:
        v = np.asarray(cols[m])
        values[m] = np.where(v < 0, np.nan, v).astype(np.float64) if m == "action_code" else v.astype(np.float64)
    return RunValues(timestamps=np.asarray(cols["timestamp"], dtype=np.uint64),
                     phase=np.asarray(cols["phase"]) if cycle else None, values=values,
                     config=config if isinstance(config, dict) else None)


def thin(x: npt.NDArray[Any], y: npt.NDArray[np.float64],
         max_points: int | None) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64]]:
    """Drop absent values (NaN), then keep at most ``max_points`` points:
    the lowest and the highest of each of max_points/2 buckets, in order, so
    spikes stay visible (None: every point)."""
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    n = len(y)
    if max_points is None or n <= max_points:
        return x, y
    buckets = max(1, max_points // 2)
    width = -(-n // buckets)
    padded = np.full(buckets * width, np.nan)
    padded[:n] = y
    rows = padded.reshape(buckets, width)
    valid = ~np.all(np.isnan(rows), axis=1)
    base = np.arange(buckets)[valid] * width
    lo = base + np.nanargmin(rows[valid], axis=1)
    hi = base + np.nanargmax(rows[valid], axis=1)
    idx = np.unique(np.concatenate([lo, hi]))
    return x[idx], y[idx]


def phase_spans(phase: npt.NDArray[Any], x: npt.NDArray[Any]) -> list[tuple[float, float, str]]:
    """(start, end, phase) of each stretch of records in one phase: from its
    first record to the first record of the next stretch (the last stretch
    ends at the last record)."""
    n = len(phase)
    if n == 0:
        return []
    change = np.flatnonzero(phase[1:] != phase[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [n - 1]])
    return [(float(x[a]), float(x[b]), str(phase[a])) for a, b in zip(starts, ends)]


def run_series(path: str | os.PathLike[str], metrics: list[str] | None = None,
               max_points: int | None = 2000) -> dict[str, Any]:
    """One chronicle's metrics as JSON-ready series: ``{"path", "records",
    "metrics": {name: {"i": [...], "t": [...], "y": [...]}}, "phases": [[start, end,
    phase], ...] (timestamps), "phase_records": the same stretches as record
    positions, "thinned": bool, "max_points"}``; ``i`` are the kept
    records' positions in the run (0, 1, 2...) and ``t`` their timestamps.  ``metrics`` None: every metric of the file.  Thinned to
    ``max_points`` per metric as this module says (None: every record)."""
    if max_points is not None and (isinstance(max_points, bool) or not isinstance(max_points, int)
                                   or max_points < 2):
        raise ConfigError(f"max_points: {max_points!r} must be a whole number of points, at least 2 (or None)")
    p = Path(path)
    if metrics is None:
        with Chronicle.open(p) as ch:
            metrics = metric_names(ch.reader().column_names())
    run = read_values(p, list(metrics))
    t = run.timestamps
    out: dict[str, Any] = {"path": str(p), "records": int(len(t)), "max_points": max_points, "thinned": False,
                           "metrics": {}}
    index = np.arange(len(t), dtype=np.int64)
    for m, y in run.values.items():
        ti, ty = thin(index, y, max_points)
        out["thinned"] |= bool(len(ty) < int(np.count_nonzero(~np.isnan(y))))
        out["metrics"][m] = {"i": ti.tolist(), "t": t[ti].tolist(), "y": ty.tolist()}
    out["phases"] = [[int(a), int(b), name] for a, b, name in phase_spans(run.phase, t)] \
        if run.phase is not None else []
    out["phase_records"] = [[int(a), int(b), name] for a, b, name in phase_spans(run.phase, index)] \
        if run.phase is not None else []
    return out


def run_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What a list of runs shows of one chronicle: ``{"path", "schema",
    "records", "bytes", "first_ts", "last_ts", "seed", "config", "tags",
    "metrics"}`` (its footer and header only: no block is decoded)."""
    p = Path(path)
    with Chronicle.open(p) as ch:
        r = ch.reader()
        blocks = [b for b in r.blocks if b.rows]
        return {"path": str(p), "schema": ch.schema, "records": len(ch), "bytes": p.stat().st_size,
                "first_ts": blocks[0].first_ts if blocks else None, "last_ts": blocks[-1].last_ts if blocks else None,
                "seed": ch.initial_seed, "config": ch.config, "tags": ch.tags,
                "metrics": metric_names(r.column_names())}
