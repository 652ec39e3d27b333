"""SQL over a dataset with DuckDB (the embedded engine: ``pip install duckdb``,
or the ``dataset`` extra)."""

from __future__ import annotations

import re
from typing import Any

from chronoledger.dataset.scan import ChronicleDataset
from chronoledger.errors import MissingDependencyError, QueryError

#: What the SQL calls the dataset.
TABLE = "runs"
_IDENT = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_.]*)')


def needed_columns(sql: str, names: list[str]) -> list[str] | None:
    """The dataset's columns the query can use: those it names (as a word or
    a quoted identifier); every one (None) if it uses ``*`` or ``COLUMNS(``.
    Naming more than it needs only costs decoding; a column it needs is never
    left out, since a query cannot use a column without naming it."""
    plain = re.sub(r"\bcount\s*\(\s*\*\s*\)", "count()", sql, flags=re.IGNORECASE)   # count(*) needs no column
    if "*" in plain or re.search(r"\bcolumns\s*\(", plain, re.IGNORECASE):
        return None
    said: set[str] = set()
    for m in _IDENT.finditer(plain):
        if m.group(1) is not None:
            said.add(m.group(1).replace('""', '"'))
        else:                   # r.loss_value: the column of an alias (and, quoted or not, config.lr as it is)
            word = m.group(2)
            said.add(word)
            said.update(word.split("."))
    lowered = {w.lower() for w in said}
    picked = [n for n in names if n in said or n.lower() in lowered]
    return picked or names[:1]


def query(ds: ChronicleDataset, sql: str) -> Any:
    """Run ``sql`` (which calls the dataset ``runs``) with DuckDB, decoding
    only the columns it names; returns a ``pyarrow.Table``."""
    try:
        import duckdb              # optional (the dataset extra): imported where SQL is asked for
    except ImportError:
        raise MissingDependencyError("SQL over a dataset needs duckdb, which is not installed: "
                                     "pip install 'chronoledger[dataset]'") from None
    cols = needed_columns(sql, list(ds.full_schema.names))
    view = ds if cols is None else ds.select(cols)
    # a connection of its own: one query's tables and settings are not the next one's (about 25 ms to make)
    con = duckdb.connect()
    con.register(TABLE, view)
    try:
        try:
            rel = con.sql(sql)
            if rel is None:                    # a statement with no result (e.g. SET)
                raise QueryError(f"query: {sql!r} gives no rows; ask with SELECT")
            # to_arrow_table: duckdb 2 (fetch_arrow_table before it, deprecated since)
            fetch = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
            return fetch()
        except duckdb.Error as exc:
            raise QueryError(f"query: {exc}") from None
    finally:
        con.close()
