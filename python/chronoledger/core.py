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
from pathlib import Path

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
    quantize,
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
    "dequantize",
    "encode_column",
    "quantize",
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
