"""Export a chronicle as CSV, JSON lines or Parquet, a block at a time.

    from chronoledger.chronicle import export

    export("run.cmeta", "run.csv", "csv")                      # refuses to replace an existing run.csv
    export("run.cmeta", "run.parquet", "parquet", force=True)  # replaces it
    export("run.cmeta", "-", "jsonl")                          # standard output

Memory does not grow with the file: each block of the chronicle is decoded,
formatted and written before the next one is read (Parquet: the blocks of
one row group at a time).  A file is written to a temporary file beside it,
fsynced and renamed into place, so a crash leaves the old file (or none) or
the new one, never half of it.

The rows are those of :meth:`ChronicleReader.to_numpy`'s columns, in its
column order (the schema's, then one per metric or value name in order of
first appearance): CSV has a header line; a float32 field is written as the
shortest decimal that reads back as the same float32 (``0.1``, not
``0.10000000149011612``); an absent value (a metric a record lacks, no
action code) is an empty CSV cell or a JSON ``null``.  JSON lines are the
objects ``json.dumps`` writes (``ensure_ascii=False``), one a line.  Parquet
keeps the column types (uint64 timestamps and seeds, float32 fields, a
nullable uint8 action code, float64 metrics with NaN where absent) and, in
the file's key-value metadata, the chronicle's header: ``chronoledger.NAME``
for each entry of its metadata (``config``, ``initial_seed``, ``schema``,
``created_by``, ...), ``chronoledger.scale`` (format 1's one scale, else null) and
``chronoledger.precision`` (how each float was stored), each as JSON text.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from chronoledger._arrow import parquet_modules
from chronoledger._fsutil import CountingSink, check_output, output_file
from chronoledger.chronicle import format as cformat
from chronoledger.chronicle.columns import Labels
from chronoledger.chronicle.reader import ChronicleReader
from chronoledger.chronicle.records import FIXED_COLUMNS
from chronoledger.errors import ConfigError, CorruptDataError

FORMATS = ("csv", "jsonl", "parquet")
#: The file name extension of each format (what ``chronicle export`` adds when no output is named).
EXTENSIONS = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}
#: Records in one Parquet row group (whole blocks are gathered until they reach it).
ROW_GROUP_RECORDS = 262_144

#: The to_numpy dtype of each fixed column that is a number (documented on Chronicle.to_numpy).
_FIXED_DTYPES: dict[str, type[np.generic]] = {
    "timestamp": np.uint64, "seed_state": np.uint64, "loss_value": np.float32, "coherence": np.float32,
    "tensor_signature.0": np.float32, "tensor_signature.1": np.float32, "tensor_signature.2": np.float32,
    "action_code": np.int16,
}

#: A block's columns as export uses them: numpy arrays (to_numpy's dtypes), Labels for phase / event_type.
Block = dict[str, "npt.NDArray[Any] | Labels"]


def export(source: str | os.PathLike[str] | ChronicleReader, out: str | os.PathLike[str] | IO[bytes],
           fmt: str, *, force: bool = False, compression: str = "zstd",
           row_group_records: int = ROW_GROUP_RECORDS) -> int:
    """Write every record of a chronicle to ``out`` as ``fmt`` ("csv",
    "jsonl" or "parquet"); returns the number of records.

    ``source``: a chronicle's path, or an open :class:`ChronicleReader` (or
    :class:`Chronicle`: what its ``reader()`` sees), left open.  ``out``: a
    path, written atomically (a temporary file beside it, fsynced, renamed);
    an existing file is refused with :class:`~chronoledger.errors.ExistsError` unless
    ``force`` (checked before anything is read or written, and again when
    the new file is put in place); ``"-"`` for standard output, or a binary
    stream (written as is: no temporary file, no rename; not closed).
    Parquet needs the ``arrow`` extra (:class:`MissingDependencyError`
    without pyarrow, before anything is written); ``compression`` is its
    codec, ``row_group_records`` the records in a row group."""
    if fmt not in FORMATS:
        raise ConfigError(f"export: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if row_group_records < 1:
        raise ConfigError(f"export: row_group_records must be at least 1, got {row_group_records!r}")
    if fmt == "parquet":
        parquet_modules()                      # a missing extra is reported before anything is opened or written
    stream: IO[bytes] | None = None
    target: Path | None = None
    if isinstance(out, str) and out == "-":
        sys.stdout.flush()              # what was printed before comes first
        stream = sys.stdout.buffer
    elif isinstance(out, (str, os.PathLike)):
        target = Path(out)
        check_output(target, force=force, what="export")       # before anything is read
    else:
        stream = out
    with _open(source) as reader:
        if stream is not None:
            n = _write(reader, stream, fmt, compression, row_group_records)
            stream.flush()
            return n
        assert target is not None
        with output_file(target, force=force, what="export") as fh:
            return _write(reader, fh, fmt, compression, row_group_records)


@contextlib.contextmanager
def _open(source: Any) -> Iterator[ChronicleReader]:
    if isinstance(source, ChronicleReader):
        yield source
    elif callable(getattr(source, "reader", None)):      # a Chronicle: its reader is its own to close
        yield source.reader()
    else:
        with ChronicleReader(source) as reader:
            yield reader


def _write(reader: ChronicleReader, fh: IO[bytes], fmt: str, compression: str, row_group_records: int) -> int:
    names = reader.column_names()
    blocks = iter_blocks(reader, names)
    if fmt == "parquet":
        return _write_parquet(reader, names, blocks, fh, compression, row_group_records)
    return (_write_csv if fmt == "csv" else _write_jsonl)(names, blocks, fh)


def iter_blocks(reader: ChronicleReader, names: list[str]) -> Iterator[Block]:
    """The columns ``names`` of each data block in turn, as :meth:`ChronicleReader.to_numpy`
    gives them for the whole file (a column a block lacks is NaN; phase /
    event_type stay :class:`Labels`, whose ``strings()`` are to_numpy's)."""
    fixed = {name for name, _ in FIXED_COLUMNS[reader.schema]}
    for i in range(len(reader.blocks)):
        part = reader.read_block(i)
        ts = part.get("timestamp")
        if not isinstance(ts, np.ndarray):
            bh = reader.blocks[i]
            raise CorruptDataError(f"{reader.path}: block {i} at offset {bh.offset} lacks integer timestamps",
                                   offset=bh.offset)
        n = len(ts)
        cols: Block = {}
        for name in names:
            v: Any = part.get(name)
            if v is None:
                if name in fixed:
                    bh = reader.blocks[i]
                    raise CorruptDataError(f"{reader.path}: block {i} at offset {bh.offset} lacks the column "
                                           f"{name!r} of its schema", offset=bh.offset)
                v = np.full(n, np.nan)          # a metric / value that had not appeared yet
            elif hasattr(v, "present") and hasattr(v, "values"):
                v = v.values                    # an optional float column: NaN where absent, as to_numpy gives it
            elif name in _FIXED_DTYPES and isinstance(v, np.ndarray):
                v = v.astype(_FIXED_DTYPES[name], copy=False)
            cols[name] = v
        yield cols


# --- CSV and JSON lines ----------------------------------------------------------------------------

def _cells(v: npt.NDArray[Any] | Labels, name: str) -> list[Any]:
    """A column as Python values: float32 as the float of its shortest decimal
    (0.1, not its widened 0.10000000149011612), None for an absent value
    (NaN, or action_code -1), strings as str."""
    if isinstance(v, Labels):
        return v.strings().tolist()
    if v.dtype.kind == "f":
        values = list(map(float, v.astype(str).tolist())) if v.dtype == np.float32 else v.tolist()
        absent = np.isnan(v)
    elif name == "action_code":
        values, absent = v.tolist(), v == -1
    else:
        return v.tolist()
    for j in np.flatnonzero(absent).tolist():
        values[j] = None
    return values


def _write_csv(names: list[str], blocks: Iterator[Block], fh: IO[bytes]) -> int:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(names)
    n = 0
    for cols in blocks:
        writer.writerows(zip(*(_cells(cols[name], name) for name in names)))
        n += len(cols[names[0]])
        fh.write(text.getvalue().encode("utf-8"))
        text.seek(0)
        text.truncate()
    fh.write(text.getvalue().encode("utf-8"))
    return n


def _json_floats(values: list[Any], v: npt.NDArray[np.floating[Any]]) -> list[Any]:
    """Floats as ``json.dumps`` writes them when formatted with ``{}``: None as null, ±inf as ±Infinity."""
    for j in np.flatnonzero(np.isinf(v)).tolist():
        values[j] = "Infinity" if v[j] > 0 else "-Infinity"
    return ["null" if x is None else x for x in values]


def _json_fragments(v: npt.NDArray[Any] | Labels, name: str) -> list[Any]:
    """A column's values as they appear in a JSON object: numbers (formatted
    by ``str.format`` as ``json.dumps`` would write them), ``null``, and
    strings already quoted."""
    if isinstance(v, Labels):
        quoted = np.empty(len(v.names), dtype=object)
        quoted[:] = [encode_basestring(s) for s in v.names]
        return quoted[v.codes].tolist()
    if v.dtype == object:
        return [encode_basestring(s) if isinstance(s, str) else json.dumps(s, ensure_ascii=False, default=str)
                for s in v.tolist()]
    values = _cells(v, name)
    if v.dtype.kind == "f":
        return _json_floats(values, v)
    return ["null" if x is None else x for x in values] if name == "action_code" else values


def _write_jsonl(names: list[str], blocks: Iterator[Block], fh: IO[bytes]) -> int:
    # one template per file: '{"timestamp": {}, "phase": {}, ...}\n', the keys quoted once
    keys = [encode_basestring(name).replace("{", "{{").replace("}", "}}") for name in names]
    line = "{{" + ", ".join(f"{key}: {{}}" for key in keys) + "}}\n"
    n = 0
    for cols in blocks:
        fragments = [_json_fragments(cols[name], name) for name in names]
        fh.write("".join(map(line.format, *fragments)).encode("utf-8"))
        n += len(fragments[0])
    return n


# --- Parquet ---------------------------------------------------------------------------------------

def parquet_metadata(reader: ChronicleReader) -> dict[str, str]:
    """The key-value metadata an export writes into a Parquet file: the
    chronicle header's metadata, an entry each, and its scale, as JSON text."""
    meta = {f"chronoledger.{k}": json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
            for k, v in reader.metadata.items()}
    meta["chronoledger.scale"] = json.dumps(reader.scale)
    meta["chronoledger.precision"] = json.dumps(reader.precision.as_metadata(), sort_keys=True)
    return meta


def _arrow_schema(pa: Any, reader: ChronicleReader, names: list[str]) -> Any:
    kinds = dict(FIXED_COLUMNS[reader.schema])
    fields = []
    for name in names:
        if name == "action_code":
            t = pa.uint8()
        elif name in _FIXED_DTYPES:
            t = pa.from_numpy_dtype(np.dtype(_FIXED_DTYPES[name]))
        elif kinds.get(name) in (cformat.KIND_STR, cformat.KIND_TEXT):
            t = pa.string()
        else:                                   # a metric / value
            t = pa.float64()
        fields.append(pa.field(name, t))
    return pa.schema(fields, metadata=parquet_metadata(reader))


def _arrow_array(pa: Any, v: npt.NDArray[Any] | Labels, name: str, t: Any) -> Any:
    if isinstance(v, Labels):
        return pa.array(v.strings(), type=pa.string())
    if name == "action_code":
        absent = v < 0
        return pa.array(np.where(absent, 0, v).astype(np.uint8), mask=absent)
    if v.dtype == object:
        return pa.array(v, type=pa.string())
    return pa.array(v, type=t)


def _write_parquet(reader: ChronicleReader, names: list[str], blocks: Iterator[Block], fh: IO[bytes],
                   compression: str, row_group_records: int) -> int:
    pa, pq = parquet_modules()
    schema = _arrow_schema(pa, reader, names)
    types = [schema.field(i).type for i in range(len(names))]
    n = 0
    pending: list[Any] = []
    pending_rows = 0
    writer = pq.ParquetWriter(CountingSink(fh), schema, compression=compression)
    try:
        for cols in blocks:
            arrays = [_arrow_array(pa, cols[name], name, t) for name, t in zip(names, types)]
            table = pa.Table.from_arrays(arrays, schema=schema)
            pending.append(table)
            pending_rows += table.num_rows
            n += table.num_rows
            if pending_rows >= row_group_records:
                writer.write_table(pa.concat_tables(pending), row_group_size=pending_rows)
                pending, pending_rows = [], 0
        if pending_rows:
            writer.write_table(pa.concat_tables(pending), row_group_size=pending_rows)
    finally:
        writer.close()
    return n
