"""The one place that opens SQLite (through apsw) for the stores.

Every store database is opened the same way: WAL journal (readers never block
the writer), a busy timeout (a writer waits for another instead of failing
with "database is locked"), foreign keys on, and the store's migrations
applied in order, each in its own transaction, with ``PRAGMA user_version``
recording the last one.  Writes that read before they write go through
:func:`write_transaction` (``BEGIN IMMEDIATE``), which takes the write lock
up front, so two processes can never both read the same "next" value.

SQLite's errors (apsw's exceptions) become the package's own in one place,
:func:`sqlite_error`, by apsw's class and SQLite's extended result code; the
stores call it through :func:`sqlite_errors`, :func:`named_damage` and
:func:`write_transaction`, so that none of apsw's exceptions reach their users.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import apsw
import numpy as np

from chronoledger._fsutil import fsync_dir
from chronoledger.errors import (ChronoledgerError, CorruptDataError, DatabaseBusyError, MissingFileError,
                                 QueryError, SchemaError, StorageError, ValidationError, WalLostError)

T = TypeVar("T")
_logger = logging.getLogger("chronoledger.sqlite")

#: How long a writer waits for another writer's transaction before giving up.
DEFAULT_BUSY_TIMEOUT_MS = 60_000
SYNCHRONOUS = ("off", "normal", "full", "extra")
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")   # \Z: "$" would let a trailing newline through


# DatabaseBusyError (raised here) is defined in chronoledger.errors and re-exported
# here: ``from chronoledger.sqlite import DatabaseBusyError`` keeps working.


# --- SQLite's errors -> the hierarchy: the one table ------------------------------------

#: apsw's class (one per SQLite primary result code, and apsw's own) -> our class, and
#: the reason given.  A class not here (apsw's own: a closed cursor, bad bindings...)
#: is a ChronoledgerError.  SQLite's own text is kept in the message, never parsed.
_SQLITE_ERRORS: dict[type, tuple[type[ChronoledgerError], str]] = {
    apsw.BusyError: (DatabaseBusyError, "another connection held the database past the busy timeout"),
    apsw.LockedError: (DatabaseBusyError, "a table is locked by another statement on this connection"),
    apsw.ProtocolError: (DatabaseBusyError, "the file's locks kept changing; try again"),
    apsw.CorruptError: (CorruptDataError, "the database is damaged"),
    apsw.NotADBError: (CorruptDataError, "not an SQLite database (or its header is damaged)"),
    apsw.ConstraintError: (ValidationError, "refused by the database"),
    apsw.MismatchError: (ValidationError, "a value of the wrong type for its column"),
    apsw.TooBigError: (ValidationError, "a text, blob or row too large for SQLite"),
    apsw.SQLError: (SchemaError, "SQLite refused the statement"),
    apsw.SchemaChangeError: (SchemaError, "the schema changed while the statement ran"),
    apsw.AuthError: (QueryError, "refused: only reading is allowed here"),
    apsw.FullError: (StorageError, "the disk (or the temporary folder) is full"),
    apsw.IOError: (StorageError, "reading or writing the file failed"),
    apsw.CantOpenError: (StorageError, "the file cannot be opened"),
    apsw.ReadOnlyError: (StorageError, "the database is read-only"),
    apsw.PermissionsError: (StorageError, "permission denied"),
    apsw.NoLFSError: (StorageError, "the file is too large for this system"),
    apsw.InterruptError: (ChronoledgerError, "interrupted"),
    apsw.NoMemError: (ChronoledgerError, "SQLite ran out of memory"),
    apsw.ConnectionClosedError: (ChronoledgerError, "the connection is closed"),
    apsw.CursorClosedError: (ChronoledgerError, "the cursor is closed"),
}

#: Where a person wrote the SQL (``query=True``): what it asks for is refused, not the database.
_QUERY_ERRORS: dict[type, tuple[type[ChronoledgerError], str]] = {
    apsw.SQLError: (QueryError, "the query failed"),
    apsw.AuthError: (QueryError, "refused: only reading is allowed here"),
    apsw.BindingsError: (QueryError, "the query's parameters do not match its placeholders"),
    apsw.RangeError: (QueryError, "the query's parameters do not match its placeholders"),
    apsw.InterruptError: (QueryError, "the query was interrupted"),
}

#: Extended result codes that say more than their class: (class, reason) replacing the
#: class's; a str is a note added after a constraint's own text.
_EXTENDED: dict[int, tuple[type[ChronoledgerError], str] | str] = {
    apsw.SQLITE_CONSTRAINT_UNIQUE: "a row with these values exists already",
    apsw.SQLITE_CONSTRAINT_PRIMARYKEY: "a row with these values exists already",
    apsw.SQLITE_CONSTRAINT_NOTNULL: "a value that may not be null is missing",
    apsw.SQLITE_CONSTRAINT_FOREIGNKEY: "a reference to a row that does not exist, or a row still referred to",
    apsw.SQLITE_READONLY_DBMOVED: (StorageError, "the file was moved or deleted while open"),
    apsw.SQLITE_READONLY_DIRECTORY: (StorageError, "the folder of the database is read-only"),
    apsw.SQLITE_READONLY_RECOVERY: (StorageError, "the database is read-only and its WAL needs recovering"),
    apsw.SQLITE_READONLY_ROLLBACK: (StorageError, "the database is read-only and its journal needs rolling back"),
    apsw.SQLITE_READONLY_CANTINIT: (StorageError, "the database is read-only and its WAL index cannot be made"),
    apsw.SQLITE_READONLY_CANTLOCK: (StorageError, "the database is read-only and its WAL index cannot be locked"),
    apsw.SQLITE_CANTOPEN_ISDIR: (StorageError, "it is a folder"),
    apsw.SQLITE_BUSY_RECOVERY: (DatabaseBusyError, "another connection is recovering the database"),
    apsw.SQLITE_BUSY_SNAPSHOT: (DatabaseBusyError, "another connection wrote since this read began; try again"),
}


def sqlite_error(exc: BaseException, path: str | os.PathLike[str] | None = None, what: str | None = None, *,
                 query: bool = False) -> ChronoledgerError:
    """The package's exception for apsw's ``exc``, with the message
    ``"PATH: what: why (SQLite's own words)"`` (``path`` and ``what`` left
    out when None).  ``query=True`` where a person wrote the SQL: then an SQL
    error, a refused statement or a write to a read-only database is a
    :class:`QueryError`; otherwise an SQL error is a :class:`SchemaError`
    (the database lacks what the package's own statement needs).  Chosen by
    apsw's class and SQLite's extended result code, never by the wording."""
    kinds = type(exc).__mro__
    cls, why = next((table[k] for table in ((_QUERY_ERRORS, _SQLITE_ERRORS) if query else (_SQLITE_ERRORS,))
                     for k in kinds if k in table), (ChronoledgerError, f"SQLite failed ({type(exc).__name__})"))
    code = getattr(exc, "extendedresult", None)
    special = _EXTENDED.get(code) if isinstance(code, int) else None
    note = None
    if isinstance(special, tuple):
        cls, why = special
    elif isinstance(special, str):
        note = special
    if query and code == apsw.SQLITE_READONLY:          # the plain code: the query tried to write
        cls, why = QueryError, "refused: the database is opened read-only"
    text = re.sub(r"^[A-Za-z]+Error: ", "", str(exc))       # older apsw put the class first
    if isinstance(exc, apsw.ConstraintError) and text:
        detail = text + (f" ({note})" if note else "")       # a constraint's or trigger's text says why
    else:
        name = apsw.mapping_extended_result_codes.get(code) if isinstance(code, int) else None
        inside = "; ".join(part for part in (text, name) if isinstance(part, str) and part)
        detail = f"{why} ({inside})" if inside else why
    err = cls(": ".join(str(part) for part in (path, what, detail) if part is not None))
    notes = getattr(exc, "__notes__", None)
    if notes:                                   # kept (set, not add_note(): Python 3.10 has none)
        setattr(err, "__notes__", list(notes))
    return err


@contextlib.contextmanager
def sqlite_errors(path: str | os.PathLike[str] | None = None, what: str | None = None, *,
                  query: bool = False) -> Iterator[None]:
    """Run the block with apsw's exceptions turned into the package's by
    :func:`sqlite_error` (naming ``path`` and ``what``); others pass as they are."""
    try:
        yield
    except apsw.Error as exc:
        raise sqlite_error(exc, path, what, query=query) from None


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(package: str, folder: str = "migrations") -> list[Migration]:
    """The ``NNNN_name.sql`` files of ``package``'s ``folder``, in order.

    Read through importlib.resources, so they are found relative to the
    installed package (a wheel, a zip, an editable install), never the
    working directory.  Versions must run 1, 2, 3... without gaps."""
    out: list[Migration] = []
    root = resources.files(package).joinpath(folder)
    for entry in root.iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
        elif entry.name.endswith(".sql"):
            raise SchemaError(f"{package}/{folder}/{entry.name}: a migration is named NNNN_name.sql")
    out.sort(key=lambda m: m.version)
    for i, mig in enumerate(out, start=1):        # not "m": that is the name's Match above
        if mig.version != i:
            raise SchemaError(f"{package}/{folder}: migration {i:04d} is missing (found {mig.version:04d}_{mig.name})")
    return out


def open_connection(path: str | os.PathLike[str], flags: int = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
                    ) -> apsw.Connection:
    """``apsw.Connection(path, flags=flags)``, for any path the file system
    holds: a name that is not UTF-8 (bytes Python carries as surrogate
    escapes, which apsw cannot encode) is handed to SQLite as a ``file:`` URI
    of its exact bytes, percent-encoded."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        name = "file:" + urllib.parse.quote(os.fsencode(os.path.abspath(path)))
        flags |= apsw.SQLITE_OPEN_URI
    return apsw.Connection(name, flags=flags)


def connect(path: str | os.PathLike[str], *, readonly: bool = False, synchronous: str = "normal",
            busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, journal: str = "wal",
            cache_kib: int | None = None) -> apsw.Connection:
    """Open ``path`` the way every store does.  ``synchronous="normal"`` (with
    WAL) survives a crash of the process with every commit; a power loss can
    lose the last commits but never corrupts the file; ``"full"`` also
    survives power loss, at one fsync per commit.  ``journal="delete"``
    keeps a rollback journal instead of WAL: for files that are replaced
    whole by :func:`atomic_rebuild`, where a WAL beside them could outlive
    the file it belonged to.  ``cache_kib``: the page cache's ceiling (default
    SQLite's 2 MiB), for a store whose indexes should stay in memory."""
    if journal not in ("wal", "delete"):
        raise ValueError(f"journal must be 'wal' or 'delete', got {journal!r}")
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS}, got {synchronous!r}")
    p = Path(path)
    if readonly:
        if not p.exists():
            raise _missing(f"{p}: no such database", p)
        # A read-only connection to a WAL database makes its -wal and -shm and, unable to checkpoint,
        # leaves them behind when it closes.  Such a file is opened for writing instead, with writes
        # refused (query_only), so that closing it tidies up as any last connection does; a file in a
        # rollback journal mode (another tool's plain v1 file) is opened read-only and nothing is made.
        flags = apsw.SQLITE_OPEN_READWRITE if _is_wal(p) and os.access(p, os.W_OK) else apsw.SQLITE_OPEN_READONLY
    else:
        if p.parent and not p.parent.exists():
            raise _missing(f"{p}: the folder {p.parent} does not exist", p.parent)
        flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    conn = None
    try:
        conn = open_connection(p, flags)
        conn.setbusytimeout(busy_timeout_ms)
        if readonly:
            conn.execute("PRAGMA query_only=ON")
        if not readonly and journal == "wal":
            _use_wal(conn, p, busy_timeout_ms)
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        if cache_kib is not None:            # the page cache's ceiling (SQLite's default: 2 MiB), used as needed
            conn.execute(f"PRAGMA cache_size={-int(cache_kib)}")
        conn.execute("PRAGMA foreign_keys=ON")
        # a damaged file is named as such at open, not left to fail later with SQLite's bare "database
        # disk image is malformed"; only the schema is read (a full check would scan a large file at
        # every open), and damage elsewhere is named where it is read (see named_damage)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, apsw.Error):
            raise sqlite_error(exc, p) from None
        raise
    return conn


def sqlite3_version() -> str:
    """The version of Python's own sqlite3 library if it is loaded (for messages), else 'not loaded'."""
    mod = sys.modules.get("sqlite3")
    return getattr(mod, "sqlite_version", "not loaded")


def _missing(message: str, path: Path) -> MissingFileError:
    """A MissingFileError that says ``message`` (OSError's three-argument form would add "[Errno 2]" and the
    path again); the path is in the message."""
    return MissingFileError(message)


def _is_wal(p: Path) -> bool:
    """Whether the database file's header says WAL (bytes 18 and 19, the read and write versions, are 2)."""
    try:
        with open(p, "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return len(head) == 20 and head[:16] == b"SQLite format 3\x00" and head[18] == 2 and head[19] == 2


@contextlib.contextmanager
def named_damage(path: str | os.PathLike[str], what: str | None = None) -> Iterator[None]:
    """What a store wraps each call in: :func:`sqlite_errors` naming the file
    (a damaged file, "database disk image is malformed", is a
    :class:`CorruptDataError`, a full disk a :class:`StorageError`...), and a
    stored text that is not UTF-8, met while reading, a CorruptDataError
    too.  The transaction in progress rolls back; nothing stored is touched."""
    try:
        yield
    except apsw.Error as exc:
        raise sqlite_error(exc, path, what) from None
    except UnicodeDecodeError as exc:           # a stored text that is not UTF-8: damaged, or another tool's
        raise CorruptDataError(f"{path}: a stored text is not valid UTF-8 ({exc})") from None


def _use_wal(conn: apsw.Connection, path: Path, busy_timeout_ms: int) -> None:
    # SQLite does not call the busy handler for a journal-mode change, so
    # when several processes open a new database at once the switch is
    # retried here, for as long as the busy timeout allows.
    deadline = time.monotonic() + busy_timeout_ms / 1000
    pause = 0.001
    while True:
        try:
            mode = expect(conn.execute("PRAGMA journal_mode").fetchall()[0][0], str, f"{path}: PRAGMA journal_mode")
            if mode.lower() != "wal":
                mode = expect(conn.execute("PRAGMA journal_mode=WAL").fetchall()[0][0], str,
                              f"{path}: PRAGMA journal_mode")
            if mode.lower() != "wal":
                raise SchemaError(f"{path}: could not switch the journal to WAL (it is {mode})")
            return
        except apsw.BusyError as exc:       # kept here, not left to sqlite_error: a busy switch is retried
            if time.monotonic() + pause > deadline:
                raise DatabaseBusyError(f"{path}: could not switch the journal to WAL within the busy timeout "
                                        f"({busy_timeout_ms} ms): {exc}") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


@contextlib.contextmanager
def write_transaction(conn: apsw.Connection, what: str = "write") -> Iterator[apsw.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception).

    The write lock is taken before the first read, and waited for up to the
    busy timeout: a read-then-write sequence inside is atomic across
    processes, and callers never see "database is locked".  SQLite's errors
    at the begin or the commit are the package's (:func:`sqlite_error`), with
    ``what`` in the message (so let it name the file); the block's own
    exceptions pass as they are (the caller, which knows what the block does,
    turns apsw's with :func:`sqlite_errors`)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except apsw.Error as exc:
        raise sqlite_error(exc, None, what) from None
    try:
        yield conn
    except BaseException as exc:
        _roll_back(conn, exc)
        raise
    else:
        try:
            conn.execute("COMMIT")
        except apsw.Error as exc:       # busy: a reader holding an old snapshot can delay a checkpoint, not a commit
            _roll_back(conn, exc)
            raise sqlite_error(exc, None, f"{what}: commit") from None


def _roll_back(conn: apsw.Connection, failure: BaseException) -> None:
    """Roll back what is open after ``failure``; a rollback that fails too (a
    failing disk) is noted on ``failure``, which is the error to report."""
    try:
        if not conn.getautocommit():
            conn.execute("ROLLBACK")
    except apsw.Error as exc:                   # a note (set, not add_note(): Python 3.10 has none)
        setattr(failure, "__notes__", [*getattr(failure, "__notes__", ()), f"and the rollback failed: {sqlite_error(exc)}"])


def user_version(conn: apsw.Connection) -> int:
    return expect(conn.execute("PRAGMA user_version").fetchall()[0][0], int, "PRAGMA user_version")


def expect(value: object, kind: type[T] | tuple[type[T], ...], what: str) -> T:
    """``value`` (read from the database) if it is a ``kind`` (or one of
    them), else a CorruptDataError naming ``what``: an SQLite column holds
    any type, so where the store's schema or SQL promises one, it is checked
    where it is read (which also tells the type checker what it is)."""
    if isinstance(value, kind):
        return value
    wanted = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
    raise CorruptDataError(f"{what}: expected {wanted}, found {type(value).__name__} {value!r:.60}")


def migrate(conn: apsw.Connection, steps: list[Migration], path: str | os.PathLike[str]) -> list[int]:
    """Apply the migrations past the database's ``user_version``, each in
    one transaction with the version bump (a crash leaves the database at
    the previous version or the next, never between).  Returns the versions
    applied.  A database at a version newer than this package knows is
    refused rather than written to."""
    applied = []
    latest = steps[-1].version if steps else 0
    for m in steps:
        if user_version(conn) >= m.version:
            continue
        with write_transaction(conn, f"{path}: migration {m.version:04d}_{m.name}"):
            if user_version(conn) >= m.version:    # another process applied it while we waited
                continue
            try:
                conn.execute(m.sql)
            except apsw.Error as exc:
                raise sqlite_error(exc, path, f"migration {m.version:04d}_{m.name} failed") from None
            conn.execute(f"PRAGMA user_version={int(m.version)}")
        applied.append(m.version)
    found = user_version(conn)
    if found > latest:
        raise SchemaError(f"{path}: schema version {found} is newer than this chronoledger knows ({latest}); "
                          f"upgrade chronoledger to open it")
    return applied


def quote_identifier(name: str) -> str:
    """``"name"`` for an identifier checked against ``^[A-Za-z_][A-Za-z0-9_]*$``."""
    if not IDENTIFIER.match(name):
        raise SchemaError(f"{name!r} is not a valid identifier (letters, digits, _; not starting with a digit)")
    return f'"{name}"'


def quote_found_name(name: str) -> str:
    """``"name"`` for a name read from a database (any text: another program
    may call an index ``by-title``), its quotes doubled as SQL writes them."""
    return '"' + str(name).replace('"', '""') + '"'


def table_columns(conn: apsw.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({quote_identifier(table)})")]


def insert_columns(conn: apsw.Connection, sql: str, columns: list, n: int | None = None) -> int:
    """Run ``sql`` (one statement, one ``?`` per column) for every row of
    ``columns`` and return how many rows it changed (an ``INSERT OR IGNORE``
    counts only the rows it kept).

    A column is one value for every row (None, int, float, str, or bytes
    for a blob), a numpy array of numbers, or a sequence of str, int or
    float with None for NULL;
    ``n`` is the row count, taken from the first column that is not a single
    value when not given.  The rows are bound and stepped in C with the GIL
    released (chronoledger._sqlbulk), which for large batches takes well
    under half the time of ``executemany`` over tuples; where that module
    cannot be bound to apsw's SQLite the same rows go through
    ``executemany`` (row by row if the database has triggers, so that the
    count stays the statement's own).  Either way every value is checked
    before the first row is written, and SQLite's errors are apsw's
    exceptions; rows before a failing one stay written, so call it inside a
    transaction.  The count is of rows inserted, updated or deleted: use
    statements that write rows (a read-only statement is refused).  Do not
    use ``conn`` from another thread meanwhile."""
    return insert_many(conn, [(sql, columns, n)])[0]


def insert_many(conn: apsw.Connection, jobs: list[tuple[str, list, int | None]]) -> list[int]:
    """:func:`insert_columns` for each ``(sql, columns, n)`` in turn, with the
    GIL released once for all of them; how many rows each changed.  Every
    column of every job is checked before the first row is written."""
    counted = [(sql, columns, _row_count(sql, columns) if n is None else n) for sql, columns, n in jobs]
    bulk = _bulk_module()
    if bulk is not None:
        return bulk.insert_many(conn, counted)
    rows = [(sql, _rows(sql, columns, n)) for sql, columns, n in counted]     # all checked before any runs
    for sql, batch in rows:
        if batch:
            probe = conn.cursor()
            probe.execute(sql, batch[0], explain=1)          # prepared, not run
            if probe.is_readonly:
                raise ValueError(f"{sql!r}: not one statement that writes rows")
    # executemany, counting with total_changes(); where a trigger could add its own rows to that count,
    # row by row with changes(), which counts the statement's rows only
    triggers = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchall()[0][0]
    changes = []
    for sql, batch in rows:
        if not batch:
            changes.append(0)
        elif triggers:
            count = 0
            for row in batch:
                for _ in conn.execute(sql, row):
                    pass                    # a RETURNING clause: its rows are read, or the statement stops early
                count += conn.changes()
            changes.append(count)
        else:
            before = conn.total_changes()
            for _ in conn.executemany(sql, batch):
                pass
            changes.append(conn.total_changes() - before)
    return changes


def _row_count(sql: str, columns: list) -> int:
    n = next((len(c) for c in columns if c is not None and not isinstance(c, (str, bytes, int, float))
              and hasattr(c, "__len__")), None)
    if n is None:
        raise ValueError(f"{sql!r}: no column gives the number of rows; pass n")
    return n


def _rows(sql: str, columns: list, n: int) -> list[tuple]:
    """The rows of insert_columns' columns, for the fallback, each value
    checked as _sqlbulk checks it (so that nothing is written if one is bad)."""
    cols = []
    for j, c in enumerate(columns):
        if c is None or isinstance(c, (str, bytes, int, float, np.integer, np.floating)):
            cols.append([_value(j, None, c.item() if isinstance(c, np.generic) else c)] * n)
            continue
        values = c.tolist() if isinstance(c, np.ndarray) else list(c)
        if len(values) != n:
            raise ValueError(f"column {j}: {n} values wanted, got {len(values)}")
        cols.append([_value(j, r, v) for r, v in enumerate(values)])
    return list(zip(*cols)) if cols else [()] * n


def _value(j: int, r: int | None, v):
    where = f"column {j}" if r is None else f"column {j}: row {r}"
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        if not -2 ** 63 <= v < 2 ** 63:
            raise OverflowError(f"{where} ({v}) does not fit SQLite's 64-bit integers")
        return v
    if isinstance(v, str):
        v.encode("utf-8")                   # a lone surrogate fails here, before anything is written
        return v
    if v is None or isinstance(v, (float, bytes)):
        return v
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return _value(j, r, v.item())
    raise TypeError(f"{where} is a {type(v).__name__}, which SQLite cannot store")


class _BulkInsert(Protocol):
    """What this module uses of chronoledger._sqlbulk (see _sqlbulk.pyi)."""

    def bind(self) -> bool: ...

    def insert_many(self, conn: apsw.Connection, jobs: Iterable[tuple[str, Sequence[Any], int]]) -> list[int]: ...


_sqlbulk: _BulkInsert | Literal[False] | None = None    # chronoledger._sqlbulk once bound; False when it cannot be


def _bulk_module() -> _BulkInsert | None:
    """chronoledger._sqlbulk, bound to apsw's SQLite on the first call; None
    where it cannot be (bulk inserts then go through apsw's executemany)."""
    global _sqlbulk
    if _sqlbulk is None:
        _sqlbulk = False
        if os.environ.get("CHRONOLEDGER_NO_SQLBULK"):         # tests of the fallback, and a way round a bad build
            _logger.debug("CHRONOLEDGER_NO_SQLBULK is set: bulk inserts go through apsw's executemany")
        else:
            try:
                # deliberately lazy: bound on the first bulk insert (and the switch above is read then)
                from chronoledger import _sqlbulk as module
            except ImportError as exc:
                _logger.warning("the bulk-insert extension cannot be imported (%s); bulk inserts go through "
                                "apsw's executemany, slower", exc)
            else:
                if module.bind():
                    _sqlbulk = module
                else:
                    _logger.info("the bulk-insert extension cannot bind to apsw's SQLite; bulk inserts go "
                                 "through apsw's executemany")
    return _sqlbulk if _sqlbulk is not False else None


def _bulk_ready(conn: apsw.Connection) -> bool:
    return _bulk_module() is not None


_H = TypeVar("_H", bound="StoreHandle")


class StoreHandle:
    """What a store over one SQLite file shares with the others (the runtime
    store, the table registry): its path, its connection (``None`` once
    closed, after which any use says so), the lock its threads share, and
    use as a context manager that closes it."""

    #: what the store is called in "the store is closed"
    noun = "store"
    path: Path
    _lock: threading.RLock
    _db: apsw.Connection | None

    @property
    def _conn(self) -> apsw.Connection:
        conn = self._db
        if conn is None:
            raise ChronoledgerError(f"{self.path}: the {self.noun} is closed")
        return conn

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The store's lock, with a damaged database named as such."""
        with self._lock, named_damage(self.path):
            yield

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WalGuard:
    """Tells whether the WAL beside a database is still the file the store's
    connection opened (one stat).  SQLite never removes a WAL while a
    connection to the database is open, unless that connection is of another
    copy of SQLite in this process (Python's sqlite3 beside apsw): POSIX
    locks belong to the process, so the other copy, closing its last
    connection, finds no lock in its way, checkpoints, and deletes the WAL
    and -shm this connection still uses.  After that this connection reads
    a deleted WAL (stale: other connections' commits never reach it) and
    writes into it (lost: no other connection sees it, and a crash loses
    it).  A file without a WAL (a rollback journal) has nothing to guard."""

    def __init__(self, path: str | os.PathLike[str]):
        self.wal = f"{path}-wal"
        self._ino: int | None = None
        self.changed()

    def _now(self) -> int | None:
        try:
            return os.stat(self.wal).st_ino
        except OSError:
            return None

    def changed(self) -> bool:
        """True once the WAL it saw is gone or replaced (a first WAL is simply noted)."""
        ino = self._now()
        if self._ino is None:
            self._ino = ino
            return False
        return ino != self._ino


def wal_lost_message(path: str | os.PathLike[str], rescued: str) -> str:
    return (f"{path}: its WAL was removed while this store had it open (another copy of SQLite in this process, "
            f"such as Python's sqlite3 {sqlite3_version()}, closed a connection to the file); {rescued}, and the "
            f"store must be opened again; while a store has the file open, read it only through the store, apsw "
            f"or another process (docs/runtime.md)")


class BackgroundCheckpointer:
    """Copies the WAL back into the database from a thread of its own.

    SQLite's automatic checkpoint runs inside the commit that crosses 1,000
    WAL pages, so a bulk writer pays for writing every page twice; here the
    writer's connection only reports its WAL size (a WAL hook) and this
    thread, on its own connection, runs PASSIVE checkpoints (which never
    block writers) when the WAL passes ``pages``.  Safe with other processes
    doing the same; a crash at any point leaves a WAL that the next open
    recovers."""

    def __init__(self, conn: apsw.Connection, path: str | os.PathLike[str], pages: int = 1000,
                 limit: int = 16_000):
        self.path = str(path)
        self.pages = pages
        self.limit = limit
        self._conn = conn
        self._behind = False
        self._running = threading.Lock()     # one checkpoint of ours at a time
        self._wake = threading.Event()
        self._stop = False
        self._reported: set[str] = set()      # the kinds of failure already logged
        self._guard = WalGuard(self.path)      # the WAL as the store opened it
        self._thread = threading.Thread(target=self._run, name=f"sqlite-checkpoint:{Path(path).name}", daemon=True)
        conn.setwalhook(self._hook)        # replaces the automatic checkpoint on this connection
        self._thread.start()

    def _hook(self, conn, dbname, pages) -> int:
        if pages >= self.pages:
            self._wake.set()
        # A WAL only starts over once fully copied back with no writer in
        # between, which a steady writer never allows: past ``limit`` pages
        # the writer finishes the copy itself (see after_commit).
        self._behind = pages >= self.limit
        return apsw.SQLITE_OK

    def after_commit(self) -> None:
        """Call on the writer's connection between transactions: if the WAL
        outgrew ``limit``, complete the checkpoint here (the background
        thread has copied most of it), so the next commit restarts the WAL.
        Raises WalLostError if the WAL was removed under the connection."""
        self._check_wal()
        if self._behind:
            self._behind = False
            with self._running:           # let the background pass finish, then complete it
                try:
                    self._conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
                except apsw.BusyError:    # another process is checkpointing: it will complete it (control flow)
                    pass

    def _check_wal(self) -> None:
        """The WAL is still the file this connection writes (WalGuard): if
        another copy of SQLite removed it, this connection copies what it
        committed into the database file, and the caller is told to reopen."""
        if not self._guard.changed():
            return
        with self._running:
            try:
                self._conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_TRUNCATE)
                rescued = "what it committed has been copied into the database file"
            except apsw.Error as exc:
                rescued = f"copying what it committed into the database file failed ({exc}); do not close " \
                          f"the process before it is copied"
        raise WalLostError(wal_lost_message(self.path, rescued))

    #: opens the thread's own connection (a test replaces it with one that fails)
    _connect = staticmethod(open_connection)

    def _run(self) -> None:
        conn = self._connect(self.path)
        conn.setbusytimeout(0)             # a busy checkpoint is skipped, never waited for
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop:
                    return
                with self._running:
                    try:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    except apsw.BusyError:     # skipped, as setbusytimeout(0) intends (control flow)
                        pass
                    except apsw.Error as exc:  # a failing disk: said once per kind, and tried again next commit
                        kind = type(exc).__name__
                        if kind not in self._reported:
                            self._reported.add(kind)
                            _logger.warning("%s", sqlite_error(exc, self.path, "background checkpoint"))
        finally:
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join()


class PendingFile:
    """A file built beside its target, renamed into place by :meth:`commit`
    (or deleted by :meth:`discard`): several files can be built first and
    put in place together."""

    def __init__(self, tmp: Path, target: Path, result=None):
        self.tmp, self.target, self.result = tmp, target, result

    def commit(self) -> None:
        settle(self.target)
        os.replace(self.tmp, self.target)
        fsync_dir(self.target)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


def building_path(target: str | os.PathLike[str]) -> Path:
    """Where a new ``target`` is built: ``.NAME.building-PID-THREAD`` beside it."""
    target = Path(target)
    return target.with_name(f".{target.name}.building-{os.getpid()}-{threading.get_ident()}")


def build_pending(target: str | os.PathLike[str], build: Callable[[apsw.Connection], T], *,
                  user_version: int = 0) -> PendingFile:
    """Build a whole database in a temporary file beside ``target`` (without
    a journal: it is thrown away on failure; left in rollback-journal mode,
    so no WAL file of an old database can be mistaken for the new one's),
    fsynced; ``build(conn)``'s result is the PendingFile's ``result``."""
    target = Path(target)
    tmp = building_path(target)
    for leftover in (tmp, Path(f"{tmp}-journal")):
        leftover.unlink(missing_ok=True)
    with sqlite_errors(target, "building a new copy beside it"):
        conn = open_connection(tmp)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        result = build(conn)
        conn.execute(f"PRAGMA user_version={int(user_version)}")
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException as exc:
        conn.close()
        tmp.unlink(missing_ok=True)
        if isinstance(exc, apsw.Error):
            raise sqlite_error(exc, target, "building a new copy beside it") from None
        raise
    return PendingFile(tmp, target, result)


def atomic_rebuild(target: str | os.PathLike[str], build: Callable[[apsw.Connection], T], *,
                   user_version: int = 0) -> T:
    """Build a whole database beside ``target`` and rename it into place only
    when ``build(conn)`` has returned: a failure or a kill at any moment
    leaves the previous ``target`` as it was (and at worst a
    ``.NAME.building-*`` file, which :func:`remove_stale_builds` clears)."""
    pending = build_pending(target, build, user_version=user_version)
    pending.commit()
    return pending.result


def readonly_uri(path: str | os.PathLike[str]) -> str:
    """A ``file:`` URI that opens ``path`` read-only (the path escaped: a
    folder named ``C#`` or ``100%`` is still that folder)."""
    return "file:" + urllib.parse.quote(os.fsencode(Path(path).absolute())) + "?mode=ro"


def open_readonly(path: str | os.PathLike[str], busy_timeout_ms: int | None = None) -> apsw.Connection:
    """``path`` opened read-only (a file that cannot be opened is a
    StorageError naming it; what its statements meet is apsw's, for the
    caller to turn with :func:`sqlite_errors`).  ``busy_timeout_ms``: how
    long a read waits for a writer that holds the file (none: it fails at
    once), as a probe of a database other processes write to must."""
    with sqlite_errors(path):
        conn = apsw.Connection(readonly_uri(path), flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
        if busy_timeout_ms is not None:
            conn.setbusytimeout(busy_timeout_ms)
        return conn


def settle(path: str | os.PathLike[str]) -> None:
    """If ``path`` has a hot journal or a WAL beside it (a writer died), open
    it once so SQLite recovers it now, before a new file takes its name."""
    p = Path(path)
    if p.exists() and any(Path(f"{p}{s}").exists() for s in ("-journal", "-wal")):
        with sqlite_errors(p, "recovering its journal"):
            conn = open_connection(p)
            try:
                conn.execute("PRAGMA journal_mode=DELETE").fetchall()
            finally:
                conn.close()


def remove_stale_builds(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the ``.NAME.building-PID-*`` files of processes that no longer
    run (a killed rebuild); a live process's build is left alone."""
    gone = []
    for p in Path(folder).glob(".*.building-*"):
        m = re.search(r"\.building-(\d+)-", p.name)
        if m and _alive(int(m.group(1))):
            continue
        p.unlink(missing_ok=True)
        gone.append(p)
    return gone


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
