"""Decoded chronicle columns as Arrow arrays, with one Arrow type per column
whatever block or file it comes from: what ``Chronicle.to_arrow`` and a
dataset of many chronicles (chronoledger.dataset) both build.

pyarrow is the ``arrow`` extra's: the caller passes the module in (it is
imported where the user asked for Arrow, and only there)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chronoledger.chronicle import format as fmt
from chronoledger.chronicle.columns import Column, Labels, Optional

#: The fixed columns' Arrow types, by schema (pyarrow type factories' names and arguments).
_FIXED = {
    fmt.SCHEMA_CYCLE: {"timestamp": "uint64", "phase": "phase", "loss_value": "float32", "coherence": "float32",
                       "tensor_signature.0": "float32", "tensor_signature.1": "float32",
                       "tensor_signature.2": "float32", "action_code": "uint8", "seed_state": "uint64"},
    fmt.SCHEMA_EVENT: {"timestamp": "uint64", "event_type": "phase", "payload": "string"},
}


def arrow_type(pa: Any, schema: int, name: str) -> Any:
    """The Arrow type of column ``name`` of a chronicle of ``schema``: the
    fixed columns' own, a metric or value column float64 (absent: null)."""
    kind = _FIXED.get(schema, {}).get(name)
    if kind == "phase":
        return pa.dictionary(pa.int32(), pa.string())
    if kind is not None:
        return getattr(pa, kind)()
    return pa.float64()


def arrow_array(pa: Any, name: str, column: Column, target: Any | None = None) -> Any:
    """One decoded column as an Arrow array (of ``target`` type when given):
    a dictionary column as codes and labels (no string per record), an
    optional float with absent values null (a stored NaN stays NaN), the
    cycle's action_code with its "none" (-1) null."""
    if isinstance(column, Labels):
        arr = pa.DictionaryArray.from_arrays(pa.array(column.codes.astype(np.int32, copy=False)),
                                            pa.array(list(column.names), type=pa.string()))
    elif isinstance(column, Optional):
        arr = pa.array(column.values, mask=~column.present)
    elif name == "action_code":
        arr = pa.array(np.where(column < 0, 0, column).astype(np.uint8), mask=column < 0)
    elif column.dtype == object:
        arr = pa.array(column.tolist(), type=pa.string())
    else:
        arr = pa.array(column)
    if target is not None and arr.type != target:
        arr = arr.cast(target)
    return arr
