"""Per-column statistics of a chronicle (``chronoledger chronicle stats``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from chronoledger.chronicle.records import METRIC_PREFIX, VALUE_PREFIX

#: how many labels (the first, in sorted order) a text column's ``counts`` lists
MAX_LABELS = 20


def column_stats(columns: Mapping[str, npt.NDArray[Any]]) -> dict[str, dict[str, Any]]:
    """Statistics of each column of ``columns`` (as :meth:`Chronicle.to_numpy` gives them).

    - text columns (``phase``, ``event_type``, ``payload``): ``distinct`` and
      the ``counts`` of the first 20 values in sorted order;
    - ``action_code``: ``present``, ``absent`` and the ``counts`` of each code;
    - number columns: ``count`` (values present: metrics and values are NaN
      where a record lacks them), ``min``, ``max`` and ``mean``; a float32
      column's figures to float32 precision, as the shortest decimal that
      reads back as the same float32 (0.1, not 0.10000000149011612);
    - each metric and value (``metrics.NAME``, ``values.NAME``) also gets
      ``last``, its last value present, and ``last_timestamp``, the
      timestamp of the record that holds it.

    Number columns of an empty chronicle are left out; a metric never
    present has ``{"count": 0}``.  Every figure is a plain int or float, ready
    for JSON.
    """
    timestamps = columns.get("timestamp")
    stats: dict[str, dict[str, Any]] = {}
    for name, v in columns.items():
        if v.dtype == object:
            values, counts = np.unique(v.astype(str), return_counts=True)
            stats[name] = {"distinct": len(values),
                           "counts": {str(a): int(b) for a, b in zip(values[:MAX_LABELS], counts[:MAX_LABELS])}}
        elif name == "action_code":
            present = v[v >= 0]
            stats[name] = {"present": int(present.size), "absent": int(v.size - present.size),
                           "counts": {str(int(a)): int(b) for a, b in zip(*np.unique(present, return_counts=True))}}
        elif v.size:
            mask = ~np.isnan(v) if v.dtype.kind == "f" else None
            finite = v[mask] if mask is not None else v
            if finite.size == 0:
                stats[name] = {"count": 0}
                continue
            mean = np.mean(finite, dtype=np.float64)
            s: dict[str, Any] = {"count": int(finite.size), "min": plain_number(finite.min()),
                                 "max": plain_number(finite.max()),
                                 # a float32 column's mean to float32 precision, the precision of its values
                                 "mean": plain_number(np.float32(mean)) if v.dtype == np.float32 else float(mean)}
            if name.startswith((METRIC_PREFIX, VALUE_PREFIX)):
                last = int(np.flatnonzero(mask)[-1]) if mask is not None else v.size - 1
                s["last"] = plain_number(v[last])
                s["last_timestamp"] = int(timestamps[last]) if timestamps is not None else None
            stats[name] = s
    return stats


def plain_number(x: Any) -> int | float:
    """A numpy number as a Python int or float; a float32 as the shortest
    decimal that reads back as the same float32, not its widened double."""
    if isinstance(x, np.float32):
        return float(str(x))
    return int(x) if isinstance(x, (np.integer, int)) else float(x)
