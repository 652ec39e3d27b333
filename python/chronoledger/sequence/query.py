"""``sequence data QUERY``: SQL on the mirrors, read-only by construction.

The chosen mirror is opened read-only (``mode=ro``), the other mirrors are
attached read-only under their names (``core``, ``events``, ``memory``,
``behavior``, ``matrix``, ``trends``), and then an authorizer refuses everything that is not a read:
writes, schema changes, ATTACH/DETACH, transactions, PRAGMAs that set
something, and functions that load code.  Two locks, so a bug in one still
leaves the other.  A query may also be given a time limit (SQLite's progress
handler stops it past its deadline: a recursive CTE can run forever) and a
number of rows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import QueryError
from chronoledger.sequence import schema

#: PRAGMAs that only read, allowed with an argument (e.g. table_info(items)).
READ_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list",
                "database_list", "collation_list", "function_list", "pragma_list", "table_list"}
_ALLOWED = {apsw.SQLITE_SELECT, apsw.SQLITE_READ, apsw.SQLITE_FUNCTION, apsw.SQLITE_RECURSIVE}


def _authorizer(op, p1, p2, dbname, trigger):
    if op in _ALLOWED:
        if op == apsw.SQLITE_FUNCTION and p2 and p2.lower() in ("load_extension", "writefile", "edit",
                                                                  "readfile", "fts3_tokenizer"):
            return apsw.SQLITE_DENY
        return apsw.SQLITE_OK
    if op == apsw.SQLITE_PRAGMA:
        name = (p1 or "").lower()
        if p2 is None or name in READ_PRAGMAS:
            return apsw.SQLITE_OK
    return apsw.SQLITE_DENY


def open_readonly(data: Path, main: str = "core") -> apsw.Connection:
    if main not in schema.FILES:
        raise QueryError(f"--db must be one of {', '.join(schema.FILES)}, got {main!r}")
    path = data / schema.FILES[main]
    if not path.exists():
        raise QueryError(f"{path}: no such mirror yet; run `sequence sync` first")
    conn = db.open_readonly(path)
    try:
        conn.setbusytimeout(10_000)
        for name, fname in schema.FILES.items():
            other = data / fname
            if name != main and other.exists():
                conn.execute("ATTACH DATABASE ? AS " + name, (db.readonly_uri(other),))
        conn.execute("PRAGMA query_only = ON")
    except BaseException as exc:
        conn.close()
        if isinstance(exc, apsw.Error):
            raise db.sqlite_error(exc, path, "opening the mirrors") from None
        raise
    conn.authorizer = _authorizer
    return conn


#: SQLite virtual-machine steps between two looks at the clock: about a
#: millisecond of work, so a query stops within a few ms of its deadline.
PROGRESS_STEPS = 10_000


def run_query(data: Path, sql: str, main: str = "core", limit: int | None = None,
              timeout: float | None = None, *, params: Sequence[Any] | Mapping[str, Any] = (),
              offset: int = 0, max_bytes: int | None = None) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of a read-only query; anything else raises QueryError.

    ``limit``: at most that many rows (None: all); ask for one more than you
    show to learn whether rows were cut.  ``offset``: rows skipped first (a
    page after the first).  ``params``: the values of the query's ``?`` (or
    ``:name``) parameters.  ``timeout``: seconds the query may run, its rows
    read included (None: no limit); past it the query is stopped and
    QueryError says so.  ``max_bytes``: the text and blobs the rows may hold
    in all (and any one value: SQLite refuses to make a longer one), past
    which QueryError stops the query (None: SQLite's own limit, 1 GB a value)."""
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise QueryError(f"max_bytes must be a number of bytes (1 or more) or None, got {max_bytes!r}")
    if not isinstance(sql, str):
        raise QueryError(f"the query is text, got {type(sql).__name__}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise QueryError(f"offset must be a number of rows (0 or more), got {offset!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise QueryError(f"limit must be a number of rows (0 or more) or None, got {limit!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0):
        raise QueryError(f"timeout must be a number of seconds above 0 or None, got {timeout!r}")
    conn = open_readonly(data, main)
    names: list[str] = []
    late = [False]

    if timeout is not None:
        deadline = time.monotonic() + timeout

        def past_deadline() -> bool:            # True stops the statement (SQLITE_INTERRUPT)
            if time.monotonic() > deadline:
                late[0] = True
            return late[0]

        conn.set_progress_handler(past_deadline, PROGRESS_STEPS)

    statements = [0]

    def columns(cursor, statement, bindings) -> bool:
        # read as each statement starts: once a query with no rows has run,
        # apsw no longer describes it
        statements[0] += 1
        if statements[0] > 1:               # rows of two queries under one set of names would mislead
            raise QueryError("one statement at a time: the query holds more than one (split it at the ';')")
        names[:] = [d[0] for d in cursor.get_description()]
        return True

    if max_bytes is not None:
        conn.limit(apsw.SQLITE_LIMIT_LENGTH, min(max_bytes, conn.limit(apsw.SQLITE_LIMIT_LENGTH)))
    try:
        cur = conn.cursor()
        cur.exec_trace = columns
        rows: list[tuple] = []
        try:
            cur.execute(sql, params)
        except (TypeError, KeyError, OverflowError, ValueError) as exc:   # apsw's for values it cannot bind
            raise QueryError(f"the query or its parameters cannot be used: {type(exc).__name__}: {exc}") from None
        if limit != 0:
            skip = offset
            held = 0
            for row in cur:
                if skip:
                    skip -= 1
                    continue
                if max_bytes is not None:
                    held += sum(len(v) for v in row if isinstance(v, (str, bytes)))
                    if held > max_bytes:
                        raise QueryError(f"the rows hold over {max_bytes:,} bytes of text and blobs, more than "
                                         f"one answer may; ask for fewer rows or shorter values")
                rows.append(tuple(row))
                if limit is not None and len(rows) >= limit:
                    break
        return names, rows
    except QueryError:
        raise
    except apsw.Error as exc:
        if isinstance(exc, apsw.InterruptError) and late[0]:     # kept: only here is it known that the time limit stopped it
            raise QueryError(f"stopped: the query ran longer than its time limit of {timeout:g} s") from None
        # the user's SQL: refused or failed is a QueryError; a damaged or unreadable mirror is not
        raise db.sqlite_error(exc, data / schema.FILES[main], None, query=True) from None
    finally:
        conn.close()
