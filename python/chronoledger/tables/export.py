"""A table's rows to a file: CSV, JSON lines or Parquet, streamed.

Rows are read a batch at a time in primary-key order
(:meth:`TableRegistry.iter_rows`), so memory does not grow with the table.
A path is written atomically (a temporary file beside it, fsynced, renamed),
and an existing file is refused (ExistsError) unless ``force``; a folder, a
missing folder or a failing write is a StorageError; ``"-"`` is standard output.
"""

from __future__ import annotations

from os import PathLike
from typing import IO

from chronoledger._arrow import parquet_modules
from chronoledger._rowfiles import BATCH, EXTENSIONS, FORMATS, export_rows
from chronoledger.errors import ConfigError
from chronoledger.tables.registry import TableRegistry

__all__ = ["BATCH", "EXTENSIONS", "FORMATS", "export_table"]


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
    return export_rows([(f.name, _KIND.get(f.type, "text")) for f in schema.fields], rows, out, fmt, force=force,
                       what=f"export of {table}")


#: The row-file kinds of the field types; ids, times and dates stay text as stored, JSON is JSON text.
_KIND = {"integer": "int", "float": "float", "boolean": "bool", "json": "json"}
