"""``sequence data QUERY``: SQL on the mirrors, read-only by construction.

The chosen mirror is opened read-only (``mode=ro``), the other mirrors are
attached read-only under their names (``core``, ``events``, ``memory``,
``trends``), and then an authorizer refuses everything that is not a read:
writes, schema changes, ATTACH/DETACH, transactions, PRAGMAs that set
something, and functions that load code.  Two locks, so a bug in one still
leaves the other.
"""

from __future__ import annotations

from pathlib import Path

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
    conn.setbusytimeout(10_000)
    for name, fname in schema.FILES.items():
        other = data / fname
        if name != main and other.exists():
            conn.execute("ATTACH DATABASE ? AS " + name, (db.readonly_uri(other),))
    conn.execute("PRAGMA query_only = ON")
    conn.authorizer = _authorizer
    return conn


def run_query(data: Path, sql: str, main: str = "core", limit: int | None = None) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of a read-only query; anything else raises QueryError."""
    conn = open_readonly(data, main)
    names: list[str] = []

    statements = [0]

    def columns(cursor, statement, bindings) -> bool:
        # read as each statement starts: once a query with no rows has run,
        # apsw no longer describes it
        statements[0] += 1
        if statements[0] > 1:               # rows of two queries under one set of names would mislead
            raise QueryError("one statement at a time: the query holds more than one (split it at the ';')")
        names[:] = [d[0] for d in cursor.get_description()]
        return True

    try:
        cur = conn.cursor()
        cur.exec_trace = columns
        cur.execute(sql)
        rows = []
        for row in cur:
            rows.append(tuple(row))
            if limit is not None and len(rows) >= limit:
                break
        return names, rows
    except QueryError:
        raise
    except apsw.AuthError as exc:
        raise QueryError(f"refused: `sequence data` only reads ({exc})") from None
    except apsw.ReadOnlyError as exc:
        raise QueryError(f"refused: the mirrors are opened read-only ({exc})") from None
    except apsw.Error as exc:
        raise QueryError(f"query failed: {exc}") from None
    finally:
        conn.close()
