"""Rows (dicts) streamed to CSV, JSON lines or Parquet: what the tables'
and the runtime store's exports share.  A column has a name and a kind --
``int``, ``float``, ``bool``, ``json`` (a value written as JSON text in CSV
and Parquet) or ``text`` (anything else, as its text)."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from os import PathLike
from typing import IO, Any

from chronoledger._arrow import parquet_modules
from chronoledger._fsutil import CountingSink, output_file
from chronoledger.errors import CorruptDataError

FORMATS = ("csv", "jsonl", "parquet")
EXTENSIONS = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}
KINDS = ("int", "float", "bool", "json", "text")
#: Rows per Parquet row group.
BATCH = 10_000

Column = tuple[str, str]            # (name, kind)


def write_rows(columns: Sequence[Column], rows: Iterator[dict], fh: IO[bytes], fmt: str) -> int:
    """Write ``rows`` to ``fh`` as ``fmt``; returns how many.  CSV has a
    header line, a null is an empty cell; JSON lines hold the rows as they
    are; Parquet (zstd) has one typed column per column (pyarrow, the
    ``arrow`` extra)."""
    if fmt == "csv":
        return _write_csv(columns, rows, fh)
    if fmt == "jsonl":
        return _write_jsonl(rows, fh)
    return _write_parquet(columns, rows, fh)


def export_rows(columns: Sequence[Column], rows: Iterator[dict], out: str | PathLike[str] | IO[bytes], fmt: str, *,
                force: bool, what: str) -> int:
    """:func:`write_rows` to ``out``: ``"-"`` for standard output, a binary
    file, or a path written atomically (an existing one refused unless
    ``force``; ``what`` names the job in the messages)."""
    if isinstance(out, str) and out == "-":
        sys.stdout.flush()
        n = write_rows(columns, rows, sys.stdout.buffer, fmt)
        sys.stdout.buffer.flush()
        return n
    if not isinstance(out, (str, PathLike)):
        return write_rows(columns, rows, out, fmt)
    with output_file(out, force=force, what=what) as fh:
        return write_rows(columns, rows, fh, fmt)


def cell(value: Any) -> str:
    """A value as a CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _write_csv(columns: Sequence[Column], rows: Iterator[dict], fh: IO[bytes]) -> int:
    names = [name for name, _ in columns]
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
    try:
        w = csv.writer(text)
        w.writerow(names)
        n = 0
        for row in rows:
            w.writerow([cell(row.get(k)) for k in names])
            n += 1
        text.flush()
        return n
    finally:
        text.detach()               # the caller owns fh


def json_default(value: Any) -> Any:
    """What JSON has no form for, as text: bytes (a BLOB another program stored) in hex, the rest as str()."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def _write_jsonl(rows: Iterator[dict], fh: IO[bytes]) -> int:
    n = 0
    for row in rows:
        fh.write(json.dumps(row, ensure_ascii=False, default=json_default).encode() + b"\n")
        n += 1
    return n


_ARROW = {"int": "int64", "float": "float64", "bool": "bool_"}
_NOUN = {"int": "an integer", "float": "a number", "bool": "true or false", "json": "JSON", "text": "text"}


def _fits(value: Any, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and -2 ** 63 <= value < 2 ** 63
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    return True


def _write_parquet(columns: Sequence[Column], rows: Iterator[dict], fh: IO[bytes]) -> int:
    pa, pq = parquet_modules()
    names = [name for name, _ in columns]
    kinds = [kind for _, kind in columns]
    types = [getattr(pa, _ARROW.get(k, "string"))() for k in kinds]
    arrow_schema = pa.schema(list(zip(names, types)))
    n = 0
    with pq.ParquetWriter(CountingSink(fh), arrow_schema, compression="zstd") as writer:
        batch: list[dict] = []

        def flush() -> None:
            cols = []
            for name, kind, t in zip(names, kinds, types):
                values = [r.get(name) for r in batch]
                if kind == "json":
                    values = [None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True)
                              for v in values]
                elif kind == "text":
                    values = [None if v is None else str(v) for v in values]
                try:
                    cols.append(pa.array(values, type=t))
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                    bad = next((v for v in values if v is not None and not _fits(v, kind)), None)
                    raise CorruptDataError(f"column {name}: {bad!r} is not {_NOUN[kind]}, which Parquet's {t} "
                                           f"column needs (another program stored it); export as jsonl or csv, "
                                           f"which keep it as it is") from None
            writer.write_table(pa.Table.from_arrays(cols, schema=arrow_schema))
            batch.clear()

        for row in rows:
            batch.append(row)
            n += 1
            if len(batch) >= BATCH:
                flush()
        if batch or n == 0:
            flush()
    return n
