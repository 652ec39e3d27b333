"""The compiled core under friendly names.

Everything here is implemented in C (native/) and bound with Cython
(src/_core.pyx); this module re-exports it and adds the few conveniences that
need files.

>>> from chronoledger import core
>>> hex(core.crc64(b"123456789"))
'0x995dc9bbdf1939fa'
>>> q = core.quantize([0.5, 1.25e-6])
>>> q.tolist()
[500000, 1]
>>> core.decode_column(core.encode_column(q)).tolist()
[500000, 1]
"""

from __future__ import annotations

import mmap
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chronoledger._core import (
    AppendBuffer,
    column_info,
    column_size,
    crc64,
    crc64_impl,
    crc64_paths,
    crc64_using,
    decode_column,
    dequantize,
    encode_column,
    from_ordered,
    quantize,
    to_ordered,
)

__all__ = [
    "AppendBuffer",
    "column_info",
    "column_size",
    "crc64",
    "crc64_file",
    "crc64_impl",
    "crc64_paths",
    "crc64_using",
    "decode_column",
    "decode_columns",
    "dequantize",
    "encode_column",
    "encode_columns",
    "executor",
    "from_ordered",
    "quantize",
    "to_ordered",
]


def crc64_file(path: str | os.PathLike[str]) -> int:
    """CRC-64/XZ of a whole file, read through a memory map (no copy)."""
    p = Path(path)
    with p.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return crc64(b"")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return crc64(mm)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    """The shared pool of codec threads (one per core): the kernels and
    zstd release the GIL, so columns and blocks encode and decode in
    parallel.  Work submitted here must not wait on other work submitted
    here (pass ``threads=1`` to the codec calls it makes)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                       thread_name_prefix="chronoledger-codec")
        return _pool


# Below this many bytes of input in all, handing work to threads (and waking
# them, or starting them in a fresh process) costs more than it saves: a
# 1,000-record query decodes ~1 MB of column prefixes in ~0.3 ms on one
# thread, while the pool's first use alone took ~3 ms (measured with
# benchmarks/bench_chronicle.py query, fresh process).
PARALLEL_MIN_BYTES = 2 << 20


def _map(fn: Any, items: list[Any], threads: int | None, nbytes: int) -> list[Any]:
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1 or None, got {threads}")
    if threads == 1 or len(items) < 2 or (threads is None and nbytes < PARALLEL_MIN_BYTES):
        return [fn(x) for x in items]
    futures = [executor().submit(fn, x) for x in items]
    return [f.result() for f in futures]


def encode_columns(columns: Mapping[str, Any] | Sequence[Any], *, threads: int | None = None,
                   **options: Any) -> dict[str, bytes] | list[bytes]:
    """:func:`encode_column` over several columns at once, in parallel.

    ``columns`` is a mapping (name -> array) or a sequence of arrays; the
    result has the same shape with bytes in place of arrays.  ``options`` go
    to every :func:`encode_column` call; ``threads=1`` encodes serially, None
    uses every core.  The bytes are the same whatever the thread count.
    """
    items = list(columns.values()) if isinstance(columns, Mapping) else list(columns)
    nbytes = sum(getattr(v, "nbytes", 0) for v in items)
    out = _map(lambda v: encode_column(v, **options), items, threads, nbytes)
    return dict(zip(columns, out)) if isinstance(columns, Mapping) else out


def decode_columns(encoded: Mapping[str, Any] | Sequence[Any], *, threads: int | None = None,
                   out: Sequence[Any] | None = None, limits: Sequence[int | None] | None = None,
                   wides: Sequence[bool] | None = None, **options: Any) -> dict[str, Any] | list[Any]:
    """:func:`decode_column` over several columns at once, in parallel.

    Mirrors :func:`encode_columns`; ``options`` (``max_values``, ``exact``)
    go to every call; ``out``, if given, holds one destination array (or
    None) per column, as :func:`decode_column`'s ``out``, ``limits`` one
    ``limit`` (or None) and ``wides`` one ``wide`` per column.  The first
    column that fails raises its error.
    """
    items = list(encoded.values()) if isinstance(encoded, Mapping) else list(encoded)
    dests = [None] * len(items) if out is None else list(out)
    lims = [None] * len(items) if limits is None else list(limits)
    wide = [False] * len(items) if wides is None else list(wides)
    if not len(dests) == len(lims) == len(wide) == len(items):
        raise ValueError(f"decode_columns: {len(items)} columns but {len(dests)} out arrays, "
                         f"{len(lims)} limits and {len(wide)} wides")
    # decoded columns are several times their encoded size; a limit bounds it
    # (threads cost more than they save on the few rows of a small query)
    nbytes = sum(4 * len(memoryview(d).cast("B")) if lim is None else min(4 * len(memoryview(d).cast("B")), 8 * lim)
                 for d, lim in zip(items, lims))
    out = _map(lambda job: decode_column(job[0], out=job[1], limit=job[2], wide=job[3], **options),
               list(zip(items, dests, lims, wide)), threads, nbytes)
    return dict(zip(encoded, out)) if isinstance(encoded, Mapping) else out
