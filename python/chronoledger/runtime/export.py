"""The runtime store's tables to files: JSON lines (every table, one dump),
or one table as CSV, JSON lines or Parquet, streamed a page at a time."""

from __future__ import annotations

from os import PathLike
from typing import IO

from chronoledger._arrow import parquet_modules
from chronoledger._rowfiles import FORMATS, Column, export_rows
from chronoledger.errors import QueryError
from chronoledger.runtime.core import JSON_COLUMNS, TABLES, _spec_columns
from chronoledger.runtime.store import RuntimeMemoryStore

__all__ = ["FORMATS", "export_table", "table_columns"]

_INTS = {"turn_index", "token_count", "step_index", "version", "build_pass", "lint_pass", "test_pass", "policy_pass"}
_FLOATS = {"confidence", "determinism_score"}


def table_columns(table: str) -> list[Column]:
    """A v1 table's columns with their kinds (from the specification's DDL)."""
    if table not in TABLES:
        raise QueryError(f"unknown table {table!r}; the tables are {', '.join(TABLES)}")
    return [(c, "int" if c in _INTS else "float" if c in _FLOATS else "json" if c in JSON_COLUMNS else "text")
            for c in _spec_columns()[table]]


def export_table(store: RuntimeMemoryStore, table: str, out: str | PathLike[str] | IO[bytes], fmt: str, *,
                 force: bool = False) -> int:
    """Write every row of ``table`` to ``out`` (a path, ``"-"`` for standard
    output, or a binary file) as ``fmt`` (csv, jsonl, parquet); returns how
    many.  JSON columns are JSON text in CSV and Parquet, values in JSON
    lines.  A path is written atomically and an existing one is refused
    unless ``force``; Parquet needs pyarrow (the ``arrow`` extra), checked
    before anything is written."""
    if fmt not in FORMATS:
        raise QueryError(f"export: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    columns = table_columns(table)
    if fmt == "parquet":
        parquet_modules()
    return export_rows(columns, (row for _, row in store.iter_rows([table])), out, fmt, force=force,
                       what=f"export of {table}")
