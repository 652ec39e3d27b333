"""Data-block payloads: a directory of named, typed columns and their bytes.

Every column ends up as one or more integer columns for the core codec
(``core.encode_column``); this module turns strings, optional values and
quantized floats into such integers and back.  Layout (docs/FORMAT.md):

    u16 column count
    per column: u8 name length, name (UTF-8), u8 kind, u64 byte length
    the columns' bytes, back to back, in directory order
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt
import zstandard

from chronoledger import core
from chronoledger._chronicle import first_use as _first_use, fixed_exceptions as _fixed_exceptions
from chronoledger.chronicle import format as fmt
from chronoledger.errors import CorruptDataError

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_zstd_c = zstandard.ZstdCompressor(level=3)


class Labels:
    """A column of short strings as integer codes into a list of names (what
    a dictionary column stores; built once, so a block never re-hashes strings)."""

    __slots__ = ("codes", "names")

    def __init__(self, codes: npt.NDArray[np.unsignedinteger[Any]], names: list[str]):
        self.codes = codes
        self.names = names

    @classmethod
    def from_strings(cls, values: Iterable[str]) -> "Labels":
        table: dict[str, int] = {}
        codes = np.fromiter((table.setdefault(s, len(table)) for s in values), dtype=np.uint32)
        return cls(codes, list(table))

    @classmethod
    def concat(cls, parts: list["Labels"]) -> "Labels":
        names: list[str] = []
        where: dict[str, int] = {}
        pieces: list[npt.NDArray[np.unsignedinteger[Any]]] = []
        for part in parts:
            remap = np.array([where.setdefault(nm, len(where)) for nm in part.names], dtype=np.uint32)
            for nm in part.names:
                if nm not in names:
                    names.append(nm)
            pieces.append(remap[part.codes] if len(remap) else part.codes)
        return cls(np.concatenate(pieces) if pieces else np.zeros(0, np.uint32), names)

    def canonical(self) -> "Labels":
        """The names used, in order of first use: what from_strings gives, so a
        block's bytes do not depend on whether strings or codes were passed."""
        if len(self.codes) == 0:
            return Labels(self.codes, [])
        first_of: dict[str, int] = {}
        alias = np.array([first_of.setdefault(nm, k) for k, nm in enumerate(self.names)], dtype=np.uint32)
        codes = alias[self.codes] if len(first_of) < len(self.names) else self.codes   # a name given twice is one
        order = _first_use(codes, len(self.names))
        if len(order) == len(self.names) and (order == np.arange(len(order))).all():
            return self
        remap = np.zeros(len(self.names), dtype=np.uint32)
        remap[order] = np.arange(len(order), dtype=np.uint32)
        return Labels(remap[codes], [self.names[k] for k in order.tolist()])

    def __getitem__(self, index: slice | npt.NDArray[np.integer[Any]]) -> "Labels":
        return Labels(self.codes[index], self.names)

    def __len__(self) -> int:
        return len(self.codes)

    def strings(self) -> npt.NDArray[np.object_]:
        table = np.empty(len(self.names), dtype=object)
        table[:] = self.names
        return table[self.codes]


class Floats(NamedTuple):
    """A float column (KIND_FLOAT) for :func:`encode_block`.

    ``values`` holds the value of every row, or of the present rows only when
    ``present`` is given; ``width`` 4 reads back as float32, 8 as float64;
    ``scale`` None stores the exact bits (at width 4 of each value's float32:
    float64 values are cast, in the same pass), a number fixed point at that
    scale (a non-finite value or -0.0 is then kept exactly as an exception)."""

    values: npt.NDArray[np.floating[Any]]
    width: int
    scale: float | None = None
    present: npt.NDArray[np.bool_] | None = None


class Optional:
    """A decoded optional float column: ``values`` (NaN where absent) and
    ``present`` (where a value was stored: a stored NaN is present)."""

    __slots__ = ("values", "present")

    def __init__(self, values: npt.NDArray[np.floating[Any]], present: npt.NDArray[np.bool_]):
        self.values = values
        self.present = present

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: slice | npt.NDArray[np.integer[Any]]) -> "Optional":
        return Optional(self.values[index], self.present[index])

    @classmethod
    def absent(cls, n: int) -> "Optional":
        return cls(np.full(n, np.nan), np.zeros(n, bool))

    @classmethod
    def concat(cls, parts: list["Optional"]) -> "Optional":
        return cls(np.concatenate([p.values.astype(np.float64, copy=False) for p in parts]),
                   np.concatenate([p.present for p in parts]))


class Present(NamedTuple):
    """The values of an optional-float (KIND_OPT_QF64) column for
    :func:`encode_block`: which rows have one, and the quantized values of
    those rows only."""

    present: npt.NDArray[np.bool_]
    values: npt.NDArray[np.int64]


#: What :func:`encode_block` takes for a column, by its kind: an integer array
#: (INT, QF32, QF64 quantized, OPT_U8), Labels or strings (STR), strings or an
#: object array of them (TEXT), or :class:`Present` (OPT_QF64).
ColumnValues: TypeAlias = "npt.NDArray[Any] | Labels | Sequence[str] | Present | Floats"

#: A column as :func:`decode_block` gives it: an array, or Labels for a
#: dictionary (STR) column (kept as codes: the reader makes strings once).
Column: TypeAlias = "npt.NDArray[Any] | Labels | Optional"


def _strings_table(values: list[str]) -> bytes:
    parts = [_U32.pack(len(values))]
    for s in values:
        b = s.encode("utf-8")
        if len(b) > 0xFFFF:
            raise ValueError(f"string of {len(b)} bytes is too long for a dictionary column (max 65535)")
        parts.append(_U16.pack(len(b)) + b)
    return b"".join(parts)


def encode_block(columns: Sequence[tuple[str, int, ColumnValues]], threads: int | None = None) -> bytes:
    """Encode ``(name, kind, values)`` columns into a data-block payload.

    values by kind: INT an integer array; QF32/QF64 the int64 quantized array;
    STR Labels (or a sequence of str); TEXT a sequence of str; OPT_U8 an int16 array with
    -1 for absent; OPT_QF64 a :class:`Present` (present bool array, int64 quantized values
    of the present rows).
    """
    # First turn every column into integer arrays (plus raw byte prefixes),
    # then run the codec over all of them at once on every core.
    plans: list[tuple[str, int, bytes, list[npt.NDArray[Any]], bytes]] = []
    for name, kind, values in columns:
        prefix, suffix = b"", b""
        ints: list[npt.NDArray[Any]]
        if kind in (fmt.KIND_INT, fmt.KIND_QF32, fmt.KIND_QF64):
            ints = [np.asarray(values)]
        elif kind == fmt.KIND_STR:
            if isinstance(values, (Present, Floats)):
                raise TypeError(f"column {name!r} of kind str takes Labels or strings, not {type(values).__name__}")
            labels = values.canonical() if isinstance(values, Labels) else Labels.from_strings(values)
            prefix = _strings_table(labels.names)
            ints = [labels.codes]
        elif kind == fmt.KIND_TEXT:
            if isinstance(values, (Labels, Present, Floats)):
                raise TypeError(f"column {name!r} of kind text takes strings, not {type(values).__name__}")
            texts: Sequence[str] = values.tolist() if isinstance(values, np.ndarray) else values
            joined = "".join(texts)
            if joined.isascii():                # the usual case: one encode, lengths in characters are bytes
                ints = [np.fromiter(map(len, texts), dtype=np.uint32, count=len(texts))]
                raw = joined.encode("ascii")
            else:
                encoded = [s.encode("utf-8") for s in texts]
                ints = [np.fromiter((len(b) for b in encoded), dtype=np.uint32, count=len(encoded))]
                raw = b"".join(encoded)
            blob = _zstd_c.compress(raw)
            suffix = _U64.pack(len(blob)) + blob
        elif kind == fmt.KIND_OPT_U8:
            v = np.asarray(values, dtype=np.int16)
            ints = [(v + 1).astype(np.uint16)]
        elif kind == fmt.KIND_OPT_QF64:
            if not isinstance(values, Present):
                raise TypeError(f"column {name!r} of kind opt_qf64 takes Present, not {type(values).__name__}")
            present, q = values
            ints = [np.asarray(present, dtype=np.uint8), np.asarray(q, dtype=np.int64)]
        elif kind == fmt.KIND_FLOAT:
            if not isinstance(values, Floats):
                raise TypeError(f"column {name!r} of kind float takes Floats, not {type(values).__name__}")
            prefix, ints = _float_plan(name, values)
        else:
            raise ValueError(f"unknown column kind {kind}")
        plans.append((name, kind, prefix, ints, suffix))
    flat = [a for _, _, _, ints, _ in plans for a in ints]
    encoded_flat = core.encode_columns(flat, threads=threads)
    assert isinstance(encoded_flat, list)       # a sequence of columns in, a list of bytes out
    directory = [_U16.pack(len(plans))]
    bodies: list[bytes] = []
    k = 0
    for name, kind, prefix, ints, suffix in plans:
        parts = [prefix, *encoded_flat[k:k + len(ints)], suffix]
        k += len(ints)
        nb = name.encode("utf-8")
        if not 0 < len(nb) <= 255:
            raise ValueError(f"column name {name!r} must be 1..255 bytes of UTF-8")
        directory.append(bytes([len(nb)]) + nb + fmt.COLUMN_ENTRY.pack(kind, sum(map(len, parts))))
        bodies += parts
    return b"".join(directory + bodies)          # the payload's one copy


def _float_plan(name: str, f: Floats) -> tuple[bytes, list[npt.NDArray[Any]]]:
    """KIND_FLOAT: the prefix and the integer columns (docs/FORMAT.md)."""
    if f.width not in (4, 8):
        raise ValueError(f"column {name!r}: float width must be 4 or 8, got {f.width}")
    flags = fmt.FLOAT_OPTIONAL if f.present is not None else 0
    ints: list[npt.NDArray[Any]] = []
    if f.present is not None:
        ints.append(np.asarray(f.present, dtype=np.uint8))
    if f.scale is None:
        v = np.asarray(f.values)
        if v.dtype != np.float32 and v.dtype != np.float64:
            v = v.astype(np.float64)
        ints.append(core.to_ordered(v.reshape(-1), f.width))      # the float32 cast and the transform in one pass
        return fmt.FLOAT_PREFIX.pack(flags, f.width, 0), ints
    v64 = np.asarray(f.values, dtype=np.float64).reshape(-1)
    odd = _fixed_exceptions(v64)              # NaN, infinities and -0.0 (which keeps its sign) are exceptions
    if len(odd):
        bits = v64[odd].view(np.uint64)
        v64 = v64.copy()
        v64[odd] = 0.0
        ints += [core.quantize(v64, f.scale), odd, bits]
    else:
        ints.append(core.quantize(v64, f.scale))
    prefix = fmt.FLOAT_PREFIX.pack(flags | fmt.FLOAT_FIXED, f.width, len(odd)) + struct.pack("<d", f.scale)
    return prefix, ints


def _float_prefix(data: memoryview) -> tuple[int, int, int, float | None, int]:
    """(flags, width, exceptions, scale or None, prefix length) of a KIND_FLOAT column."""
    flags, width, exceptions = fmt.FLOAT_PREFIX.unpack_from(data, 0)
    p = fmt.FLOAT_PREFIX.size
    if flags & ~(fmt.FLOAT_OPTIONAL | fmt.FLOAT_FIXED) or width not in (4, 8):
        raise ValueError(f"float column flags {flags} / width {width} are not valid")
    scale = None
    if flags & fmt.FLOAT_FIXED:
        (scale,) = struct.unpack_from("<d", data, p)
        p += 8
        if not fmt.valid_scale(scale):
            raise ValueError(f"float column scale {scale!r} is not a usable scale (a finite number > 0 whose "
                             f"inverse is finite)")
    elif exceptions:
        raise ValueError("exact float column with exceptions")
    return flags, width, exceptions, scale, p


def _decode_floats(vals: list[npt.NDArray[Any]], info: tuple[int, int, int, float | None], records: int,
                   where: str, partial: bool = False, rows: slice | None = None,
                   dest: npt.NDArray[Any] | None = None, cut: bool = False) -> npt.NDArray[Any] | Optional:
    """A KIND_FLOAT column from its decoded integer columns (``partial``: the
    values column holds only the first ``records`` rows of the block), cut to
    ``rows`` before the bits become floats; written into ``dest`` when it is
    given and fits (a non-optional column)."""
    flags, width, exceptions, scale = info
    dtype = np.float32 if width == 4 else np.float64
    present = None
    if flags & fmt.FLOAT_OPTIONAL:
        present = vals[0].astype(bool)
        vals = vals[1:]
    raw = vals[0]
    count = records if present is None else int(np.count_nonzero(present))
    if len(raw) != count or (present is not None and len(present) != records):
        raise CorruptDataError(f"{where}: {len(raw)} values for {count} rows")
    at = bits = None
    if exceptions:
        at, bits = vals[1], vals[2]
        if len(at) != exceptions or len(bits) != exceptions or (len(at) and not partial and int(at.max()) >= count):
            raise CorruptDataError(f"{where}: its {exceptions} exceptions do not fit its {count} values")
    lo = 0
    if present is None and rows is not None:        # cut first: only these rows become floats
        lo = rows.start or 0
        if not cut:                                 # (``cut``: the codec gave these rows only)
            raw = raw[rows]
        count = len(raw)
    target = dest if dest is not None and present is None and len(dest) == len(raw) and dest.dtype == dtype \
        and dest.flags.c_contiguous else None
    if scale is None:
        if raw.dtype.kind != "u":
            raise CorruptDataError(f"{where}: exact float bits stored as {raw.dtype}")
        try:
            values = core.from_ordered(raw, dtype, out=target)
        except CorruptDataError as exc:
            raise CorruptDataError(f"{where}: {exc}") from None
    else:
        values = core.dequantize(_fixed_point(raw, where), scale, dtype=dtype, out=target)
        if at is not None and bits is not None:
            inside = (at >= lo) & (at < lo + count)
            values[(at[inside] - lo).astype(np.intp)] = bits[inside].astype(np.uint64).view(np.float64).astype(dtype)
    if present is None:
        return values
    full = np.full(records, np.nan)
    full[present] = values
    column = Optional(full, present)
    return column if rows is None else column[rows]


def read_directory(payload: bytes | memoryview, where: str) -> list[tuple[str, int, int, int]]:
    """[(name, kind, start, end)] of the columns in a data-block payload."""
    try:
        (count,) = _U16.unpack_from(payload, 0)
        p = 2
        entries = []
        for _ in range(count):
            n = payload[p]
            name = bytes(payload[p + 1:p + 1 + n]).decode("utf-8")
            if len(name.encode()) != n:
                raise ValueError("short name")
            kind, length = fmt.COLUMN_ENTRY.unpack_from(payload, p + 1 + n)
            entries.append((name, kind, length))
            p += 1 + n + fmt.COLUMN_ENTRY.size
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as exc:
        raise CorruptDataError(f"{where}: column directory is malformed: {exc}") from None
    out = []
    for name, kind, length in entries:
        if kind not in fmt.KIND_NAMES:
            raise CorruptDataError(f"{where}: column {name!r} has unknown kind {kind}")
        if p + length > len(payload):
            raise CorruptDataError(f"{where}: column {name!r} runs past the end of the block")
        out.append((name, kind, p, p + length))
        p += length
    if p != len(payload):
        raise CorruptDataError(f"{where}: {len(payload) - p} bytes after the last column")
    return out


def column_values(payload: bytes | memoryview, name: str, where: str) -> int | None:
    """How many values the integer column ``name`` (of kind int) of a
    data-block payload says it holds, from its header alone; None when the
    block has no such column."""
    for entry, kind, start, end in read_directory(payload, where):
        if entry == name:
            if kind != fmt.KIND_INT:
                raise CorruptDataError(f"{where}: column {name!r} is of kind {fmt.KIND_NAMES[kind]}, not int")
            try:
                return int(core.column_info(memoryview(payload)[start:end])["n"])
            except CorruptDataError as exc:
                raise CorruptDataError(f"{where}: column {name!r}: {exc}") from None
    return None


def _fixed_point(values: npt.NDArray[Any], where: str) -> npt.NDArray[Any]:
    """Fixed-point integers as stored: a writer stores them signed (int64)."""
    if values.dtype.kind != "i":
        raise CorruptDataError(f"{where}: fixed-point values stored as {values.dtype}, not signed integers")
    return values


def _out(dest: npt.NDArray[Any] | None, dtype: type[np.generic]) -> npt.NDArray[Any] | None:
    """``dest`` if it can receive values of ``dtype``, else None (the caller then checks what it got)."""
    return dest if dest is not None and dest.dtype == dtype else None


#: zstd: a block of a frame is at least 3 bytes and decompresses to at most 128 KiB
_ZSTD_BLOCK_MIN, _ZSTD_BLOCK_OUT_MAX = 3, 128 << 10


def _text_lengths(lengths: npt.NDArray[Any], blob: memoryview, where: str) -> tuple[npt.NDArray[np.int64], int]:
    """A text column's lengths as int64 and their sum, checked against what
    its zstd frame of ``len(blob)`` bytes can hold before anything is
    allocated for them."""
    most = (len(blob) // _ZSTD_BLOCK_MIN + 1) * _ZSTD_BLOCK_OUT_MAX
    if lengths.dtype.kind not in "iu" or (lengths.size and int(lengths.min()) < 0):
        raise CorruptDataError(f"{where}: its lengths are not byte counts")
    if lengths.size and float(np.sum(lengths, dtype=np.float64)) > most:
        raise CorruptDataError(f"{where}: its lengths add up to more than the {most:,} bytes its zstd frame of "
                               f"{len(blob):,} bytes can hold")
    lengths = lengths.astype(np.int64, copy=False)
    return lengths, int(lengths.sum())


def _decompress_texts(blob: memoryview, total: int, where: str) -> bytes:
    """The ``total`` bytes a text column's zstd frame holds; a frame that
    says it holds another size is refused before it is decompressed (the
    decompressor would allocate what the frame says)."""
    try:
        declared = zstandard.get_frame_parameters(blob).content_size
        if declared != zstandard.CONTENTSIZE_UNKNOWN and declared != total:
            raise CorruptDataError(f"{where}: its zstd frame holds {declared:,} bytes, its lengths say {total:,}")
        texts = zstandard.ZstdDecompressor().decompress(bytes(blob), max_output_size=total + 1)
    except zstandard.ZstdError as exc:
        raise CorruptDataError(f"{where}: does not decompress: {exc}") from None
    if len(texts) != total:
        raise CorruptDataError(f"{where}: is {len(texts)} bytes, its lengths say {total}")
    return texts


_scratch = threading.local()
_FLOAT_KINDS = (fmt.KIND_QF32, fmt.KIND_QF64, fmt.KIND_OPT_QF64, fmt.KIND_FLOAT)


def _int64_scratch(k: int, n: int) -> npt.NDArray[np.int64]:
    """The calling thread's k-th reusable int64 buffer, of at least n values
    (fresh buffers per block would be new pages the kernel has to zero)."""
    bufs: list[npt.NDArray[np.int64]] | None = getattr(_scratch, "bufs", None)
    if bufs is None:
        bufs = _scratch.bufs = []
    while len(bufs) <= k:
        bufs.append(np.empty(0, np.int64))
    if len(bufs[k]) < n:
        bufs[k] = np.empty(n, np.int64)
    return bufs[k]


def _prefix_scratch(n: int) -> npt.NDArray[np.int64]:
    """The calling thread's buffer for int_values, apart from the whole-file decodes' ones."""
    buf: npt.NDArray[np.int64] | None = getattr(_scratch, "prefix", None)
    if buf is None or len(buf) < n:
        buf = _scratch.prefix = np.empty(n, np.int64)
    return buf


def int_values(payload: bytes | memoryview, records: int, name: str, first: int, limit: int,
               where: str) -> npt.NDArray[Any]:
    """The values ``[first, limit)`` of the integer column ``name`` of a
    data-block payload of ``records`` records.  With ``first == 0`` they are
    decoded into this thread's reused buffer: a view that the next such call
    overwrites, for a caller that searches it and copies what it keeps (a
    range query's timestamps); otherwise into a new array of just those."""
    for entry, kind, start, end in read_directory(payload, where):
        if entry != name:
            continue
        if kind != fmt.KIND_INT:
            raise CorruptDataError(f"{where}: column {name!r} is of kind {fmt.KIND_NAMES[kind]}, not int")
        data = memoryview(payload)[start:end]
        limit = min(limit, records)
        first = min(first, limit)
        try:
            if core.column_info(data)["n"] != records:
                raise CorruptDataError(f"{where}: column {name!r} does not hold one value per record of the block")
            return core.decode_column(data, max_values=records, limit=limit, wide=True, start=first,
                                      out=_prefix_scratch(records) if first == 0 else None)
        except CorruptDataError as exc:
            raise CorruptDataError(f"{where}: column {name!r}: {exc}") from None
    raise CorruptDataError(f"{where} lacks the column {name!r} of its schema")


def decode_block(payload: bytes | memoryview, records: int, scale: float | None, where: str,
                 names: set[str] | None = None, rows: slice | None = None,
                 into: dict[str, npt.NDArray[Any]] | None = None, skip: set[str] | None = None,
                 threads: int | None = None) -> dict[str, Column]:
    """Decode the columns of a data-block payload (only ``names`` if given,
    none of ``skip``; only the records ``rows`` if given, cut before any
    conversion).

    ``into`` maps names of quantized-float columns and of 64-bit integer
    columns to arrays of ``records`` values that receive them (slices of a
    caller's result), so whole files decode without per-block temporaries;
    such a column's entry in the result is that array.  ``threads`` as in
    core.decode_columns (1: on this thread, for a caller that decodes blocks
    in parallel itself)."""
    into = into if rows is None and into else {}
    if rows is not None:             # negative or reversed bounds as Python's slicing reads them
        start, stop, step = rows.indices(records)
        rows = slice(start, max(start, stop) if step == 1 else stop, step)
    directory = read_directory(payload, where)
    # (name, kind, encoded int columns, dictionary of a STR column, text blob of a TEXT column)
    jobs: list[tuple[str, int, list[memoryview], Any, memoryview | None]] = []
    for name, kind, start, end in directory:
        if (names is not None and name not in names) or (skip is not None and name in skip):
            continue
        if (kind == fmt.KIND_FLOAT) != (scale is None) and kind in _FLOAT_KINDS:
            raise CorruptDataError(f"{where}: column {name!r} is of kind {fmt.KIND_NAMES[kind]}, which a "
                                   f"format-{1 if scale is not None else 2} file does not hold")
        data = memoryview(payload)[start:end]
        try:
            if kind in (fmt.KIND_INT, fmt.KIND_QF32, fmt.KIND_QF64, fmt.KIND_OPT_U8):
                jobs.append((name, kind, [data], None, None))
            elif kind == fmt.KIND_STR:
                (count,) = _U32.unpack_from(data, 0)
                p = 4
                table: list[str] = []
                for _ in range(count):
                    (ln,) = _U16.unpack_from(data, p)
                    if p + 2 + ln > len(data):
                        raise ValueError("dictionary entry runs past the column")
                    table.append(bytes(data[p + 2:p + 2 + ln]).decode("utf-8"))
                    p += 2 + ln
                jobs.append((name, kind, [data[p:]], table, None))
            elif kind == fmt.KIND_TEXT:
                size = core.column_size(data)
                (zlen,) = _U64.unpack_from(data, size)
                if size + 8 + zlen != len(data):
                    raise ValueError("text blob length does not match the column")
                jobs.append((name, kind, [data[:size]], None, data[size + 8:]))
            elif kind == fmt.KIND_OPT_QF64:
                size = core.column_size(data)
                jobs.append((name, kind, [data[:size], data[size:]], None, None))
            elif kind == fmt.KIND_FLOAT:
                flags, width, exceptions, column_scale, p = _float_prefix(data)
                pieces = []
                for _ in range((1 if flags & fmt.FLOAT_OPTIONAL else 0) + 1 + (2 if exceptions else 0)):
                    size = core.column_size(data[p:])
                    pieces.append(data[p:p + size])
                    p += size
                if p != len(data):
                    raise ValueError(f"{len(data) - p} bytes after its last stream")
                jobs.append((name, kind, pieces, (flags, width, exceptions, column_scale), None))
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            raise CorruptDataError(f"{where}: column {name!r} is malformed: {exc}") from None
    flat = [c for _, _, cols, _, _ in jobs for c in cols]
    # rows from the start of the block: decode only as far as they need, where
    # a column's values are one per row (the codec then reads only that prefix)
    limit = rows.stop if rows is not None and rows.step in (None, 1) and rows.stop is not None \
        and rows.stop < records else None
    per_row: list[bool] = []            # a stream with one value per row of the block
    for name, kind, cols, info, _ in jobs:
        if kind in (fmt.KIND_INT, fmt.KIND_QF32, fmt.KIND_QF64, fmt.KIND_OPT_U8, fmt.KIND_STR):
            per_row.append(True)
        elif kind == fmt.KIND_FLOAT and not info[0] & fmt.FLOAT_OPTIONAL:
            per_row += [True] + [False] * (len(cols) - 1)
        else:
            per_row += [False] * len(cols)
    limits = [limit if f else None for f in per_row]
    dests: list[npt.NDArray[Any] | None] = []
    wides: list[bool] = []
    for name, kind, cols, info, _ in jobs:
        dest = into.get(name)
        wides += [kind == fmt.KIND_FLOAT and not info[0] & fmt.FLOAT_OPTIONAL and info[3] is None] + \
            [False] * (len(cols) - 1)               # exact float bits stay u64 for from_ordered
        if dest is not None and kind in (fmt.KIND_QF32, fmt.KIND_QF64):
            dests.append(_int64_scratch(len(dests), records))
        elif dest is not None and kind == fmt.KIND_FLOAT and not info[0] & fmt.FLOAT_OPTIONAL:
            dests += [_int64_scratch(len(dests), records)] + [None] * (len(cols) - 1)
        elif dest is not None and kind == fmt.KIND_INT and dest.dtype in (np.uint64, np.int64):
            dests.append(dest)
        else:
            dests += [None] * len(cols)
    nbytes = sum(min(4 * len(c), 8 * lim) if lim is not None else 4 * len(c) for c, lim in zip(flat, limits))
    out: dict[str, Column] = {}
    if rows is not None and rows.step in (None, 1) and not into and nbytes < core.PARALLEL_MIN_BYTES:
        # A small range decodes on this thread anyway: each column's rows
        # only (the codec skips the values before them without storing
        # them).  Fresh pages cost the kernel ~2 us each to map and zero on
        # this kind of VM: a block-sized array per column was most of a
        # 1,000-record query's time in a fresh process.
        first = min(rows.start or 0, records)
        k = 0
        for name, kind, cols, info, blob_view in jobs:
            try:
                vals = [core.decode_column(c, max_values=records, limit=lim, wide=w, start=first if f else None)
                        for c, lim, w, f in zip(cols, limits[k:k + len(cols)], wides[k:k + len(cols)],
                                                per_row[k:k + len(cols)])]
            except CorruptDataError as exc:
                raise CorruptDataError(f"{where}: {exc}") from None
            out[name] = _finish_column(name, kind, vals, info, blob_view, limits[k], records, rows, into, scale,
                                       where, cut=per_row[k])
            k += len(cols)
        return out
    try:
        decoded = core.decode_columns(flat, max_values=records, out=dests, limits=limits, wides=wides,
                                      threads=threads)
    except CorruptDataError as exc:
        raise CorruptDataError(f"{where}: {exc}") from None
    assert isinstance(decoded, list)            # a sequence of columns in, a list of arrays out
    k = 0
    for name, kind, cols, info, blob_view in jobs:
        out[name] = _finish_column(name, kind, decoded[k:k + len(cols)], info, blob_view, limits[k], records, rows,
                                   into, scale, where)
        k += len(cols)
    return out


def _finish_column(name: str, kind: int, vals: list[npt.NDArray[Any]], dictionary: Any,
                   blob_view: memoryview | None, first_limit: int | None, records: int, rows: slice | None,
                   into: dict[str, npt.NDArray[Any]], scale: float | None, where: str,
                   cut: bool = False) -> Column:
    """One column of a block from its decoded integer columns ``vals``;
    ``cut``: the first of them holds the values of ``rows`` only."""
    expected = records if first_limit is None else first_limit
    if cut:
        assert rows is not None
        expected = min(expected, records) - min(rows.start or 0, records)
    if kind != fmt.KIND_OPT_QF64 and len(vals[0]) != expected:
        raise CorruptDataError(f"{where}: column {name!r} holds {len(vals[0])} values, the block {records}")
    if kind == fmt.KIND_FLOAT:
        column = _decode_floats(vals, dictionary, expected, f"{where}: column {name!r}",
                                partial=first_limit is not None or cut, rows=rows, dest=into.get(name), cut=cut)
        dest = into.get(name)
        if dest is not None and dest.dtype.kind == "f" and isinstance(column, np.ndarray) and column is not dest:
            dest[...] = column
            column = dest
        return column
    if rows is not None and kind != fmt.KIND_TEXT and not cut:
        if kind == fmt.KIND_OPT_QF64:
            present = vals[0]
            if len(present) != records or int(np.count_nonzero(present)) != len(vals[1]):
                raise CorruptDataError(f"{where}: column {name!r}: presence and values disagree")
            before = int(np.count_nonzero(present[:rows.start]))
            vals = [present[rows], vals[1][before:before + int(np.count_nonzero(present[rows]))]]
        else:
            vals = [vals[0][rows]]
    records_here = len(vals[0]) if kind != fmt.KIND_TEXT or rows is None else records
    dest = into.get(name)
    if kind == fmt.KIND_INT:
        if dest is not None and dest.dtype.kind in "iu":
            if not np.may_share_memory(vals[0], dest):
                dest[...] = vals[0]        # stored narrower than the result: cast into place
            return dest
        return vals[0]
    if kind == fmt.KIND_QF32:
        assert scale is not None            # format 1 (checked against the kind above)
        return core.dequantize(_fixed_point(vals[0], f"{where}: column {name!r}"), scale, dtype=np.float32,
                               out=_out(dest, np.float32))
    if kind == fmt.KIND_QF64:
        assert scale is not None
        return core.dequantize(_fixed_point(vals[0], f"{where}: column {name!r}"), scale,
                               out=_out(dest, np.float64))
    if kind == fmt.KIND_OPT_U8:
        v = vals[0].astype(np.int16) - 1
        if v.size and (v.min() < -1 or v.max() > 255):
            raise CorruptDataError(f"{where}: column {name!r} holds a value outside 0..255")
        return v
    if kind == fmt.KIND_STR:
        assert dictionary is not None           # jobs of kind STR carry their dictionary
        codes = vals[0]
        if codes.size and (int(codes.max()) >= len(dictionary) or int(codes.min()) < 0):
            raise CorruptDataError(f"{where}: column {name!r} holds codes outside its dictionary of "
                                   f"{len(dictionary)}")
        # kept as codes: the reader joins blocks, then makes strings once
        return Labels(codes.astype(np.uint32), dictionary)
    if kind == fmt.KIND_TEXT:
        assert blob_view is not None            # jobs of kind TEXT carry their blob
        lengths, total = _text_lengths(vals[0], blob_view, f"{where}: text column {name!r}")
        blob = _decompress_texts(blob_view, total, f"{where}: text column {name!r}")
        ends = np.cumsum(lengths, dtype=np.int64)
        starts = ends - lengths
        try:
            texts = [blob[s:e].decode("utf-8") for s, e in zip(starts.tolist(), ends.tolist())]
        except UnicodeDecodeError as exc:
            raise CorruptDataError(f"{where}: text column {name!r} is not UTF-8: {exc}") from None
        arr = np.empty(len(texts), dtype=object)
        arr[:] = texts
        return arr if rows is None else arr[rows]
    if kind == fmt.KIND_OPT_QF64:
        present = vals[0].astype(bool)
        if len(present) != records_here or int(present.sum()) != len(vals[1]):
            raise CorruptDataError(f"{where}: column {name!r}: presence and values disagree")
        full = np.full(records_here, np.nan)
        assert scale is not None
        full[present] = core.dequantize(_fixed_point(vals[1], f"{where}: column {name!r}"), scale)
        return full
    raise CorruptDataError(f"{where}: column {name!r} has kind {kind}, which holds no values")
