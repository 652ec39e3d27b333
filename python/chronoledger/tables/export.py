"""A table's rows to a file: CSV, JSON lines or Parquet, streamed.

Rows are read a batch at a time in primary-key order
(:meth:`TableRegistry.iter_rows`), so memory does not grow with the table.
A path is written atomically (a temporary file beside it, fsynced, renamed),
and an existing file is refused (ExistsError) unless ``force``; a folder, a
missing folder or a failing write is a StorageError; ``"-"`` is standard output.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from os import PathLike
from typing import IO, Any

from chronoledger._arrow import parquet_modules
from chronoledger._fsutil import CountingSink, output_file
from chronoledger.errors import ConfigError
from chronoledger.tables.registry import TableRegistry
from chronoledger.tables.schema import TableSchema

FORMATS = ("csv", "jsonl", "parquet")
EXTENSIONS = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}
#: Rows per Parquet row group, and per batch read from the table.
BATCH = 10_000


def export_table(reg: TableRegistry, table: str, out: str | PathLike[str] | IO[bytes], fmt: str, *,
                 filters: dict | None = None, force: bool = False) -> int:
    """Write the rows of ``table`` matching ``filters`` to ``out`` as
    ``fmt``; returns how many.  CSV has a header line; JSON fields are JSON
    text in CSV and Parquet, values in JSON lines; a null is an empty CSV
    cell.  Parquet needs pyarrow (the ``arrow`` extra): MissingDependencyError
    before anything is written."""
    if fmt not in FORMATS:
        raise ConfigError(f"export: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        parquet_modules()
    schema = reg.schema(table)
    rows = reg.iter_rows(table, filters, batch=BATCH)
    if isinstance(out, str) and out == "-":
        sys.stdout.flush()
        n = _write(schema, rows, sys.stdout.buffer, fmt)
        sys.stdout.buffer.flush()
        return n
    if not isinstance(out, (str, PathLike)):
        return _write(schema, rows, out, fmt)
    with output_file(out, force=force, what=f"export of {table}") as fh:
        return _write(schema, rows, fh, fmt)


def _write(schema: TableSchema, rows: Iterator[dict], fh: IO[bytes], fmt: str) -> int:
    if fmt == "csv":
        return _write_csv(schema, rows, fh)
    if fmt == "jsonl":
        return _write_jsonl(rows, fh)
    return _write_parquet(schema, rows, fh)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _write_csv(schema: TableSchema, rows: Iterator[dict], fh: IO[bytes]) -> int:
    names = [f.name for f in schema.fields]
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
    try:
        w = csv.writer(text)
        w.writerow(names)
        n = 0
        for row in rows:
            w.writerow([_cell(row.get(k)) for k in names])
            n += 1
        text.flush()
        return n
    finally:
        text.detach()               # the caller owns fh


def _write_jsonl(rows: Iterator[dict], fh: IO[bytes]) -> int:
    n = 0
    for row in rows:
        fh.write(json.dumps(row, ensure_ascii=False, default=str).encode() + b"\n")
        n += 1
    return n


#: Arrow types of the field types; ids, times and dates stay text as stored, JSON is JSON text.
_ARROW = {"integer": "int64", "float": "float64", "boolean": "bool_"}


def _write_parquet(schema: TableSchema, rows: Iterator[dict], fh: IO[bytes]) -> int:
    pa, pq = parquet_modules()
    names = [f.name for f in schema.fields]
    types = [getattr(pa, _ARROW.get(f.type, "string"))() for f in schema.fields]
    arrow_schema = pa.schema(list(zip(names, types)))
    json_fields = {f.name for f in schema.fields if f.type == "json"}
    text_fields = {f.name for f in schema.fields if f.type not in _ARROW and f.type != "json"}
    n = 0
    with pq.ParquetWriter(CountingSink(fh), arrow_schema, compression="zstd") as writer:
        batch: list[dict] = []

        def flush() -> None:
            cols = []
            for name, t in zip(names, types):
                values = [r.get(name) for r in batch]
                if name in json_fields:
                    values = [None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True)
                              for v in values]
                elif name in text_fields:
                    values = [None if v is None else str(v) for v in values]
                cols.append(pa.array(values, type=t))
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
