"""RuntimeMemoryStore: the Runtime Memory DB v1 (sessions, turns, workflows,
task events, skills, proposals and their audit, behaviour and personality
profiles) over one SQLite file.

Every method checks its input (ValidationError naming the field), writes in
one transaction, and returns plain dicts: the table's columns, with the
``*_json`` columns decoded into dicts.  Writes that read first (the next
turn index, a profile's next version, a status change) run under
``BEGIN IMMEDIATE``, so they are atomic across threads and processes.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import apsw

from chronoledger import sqlite as db
from chronoledger._rowfiles import json_default
from chronoledger.chronicle import Chronicle
from chronoledger.errors import SchemaError, ValidationError
from chronoledger.runtime import enforcement
from chronoledger.runtime.core import GOVERNANCE_TABLES, TABLES, _check_is_runtime_db, _check_tables, _check_v1_columns, _release
from chronoledger.runtime.lineage import Lineage
from chronoledger.runtime.profiles import Profiles
from chronoledger.runtime.search import TurnSearch
from chronoledger.runtime.sessions import Sessions
from chronoledger.runtime.workflows import Workflows


class RuntimeMemoryStore(Sessions, TurnSearch, Workflows, Lineage, Profiles):
    """The runtime memory database at ``path`` (created if missing).

    ``synchronous`` is SQLite's (``"normal"``: every commit survives a crash
    of the process; ``"full"``: also a power loss, one fsync per commit).
    ``events_log``, a path, also appends every task event to a chronicle
    event log (one writing process at a time) after it is committed.
    A database created from the plain v1 DDL by another tool is adopted:
    its rows are kept and the later migrations are applied to it.
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "normal",
                 busy_timeout_ms: int = db.DEFAULT_BUSY_TIMEOUT_MS, events_log: str | os.PathLike[str] | None = None,
                 readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._last_stamp = ""
        self._lock = threading.RLock()
        self._wal_guard: db.WalGuard | None = None        # set once the store is open
        self._checkpointer: db.BackgroundCheckpointer | None = None
        _check_is_runtime_db(self.path)       # before connect(), which switches the journal to WAL
        # the connection, None once closed (then _conn says so)
        self._db: apsw.Connection | None = db.connect(self.path, readonly=readonly, synchronous=synchronous,
                                                      busy_timeout_ms=busy_timeout_ms)
        try:
            steps = db.migrations("chronoledger.runtime")
            if not readonly:
                adopted = self._adopt(steps[0])
                self.migrations_applied = adopted + db.migrate(self._conn, steps, self.path)
            else:
                # read as it is: any version this package knows, the plain v1 DDL's (0) included; what a later
                # migration adds (the promotion policy, the decisions) reads as its defaults where it is missing
                self.migrations_applied = []
                found = db.user_version(self._conn)
                if found > steps[-1].version:
                    raise SchemaError(f"{self.path}: schema version {found} is newer than this chronoledger "
                                      f"reads ({steps[-1].version}); upgrade chronoledger to read it")
                if found == 0 and not {r[0] for r in self._conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'")} & set(TABLES):
                    raise SchemaError(f"{self.path}: no runtime memory tables; create it with `chronoledger "
                                      f"runtime init {self.path}`")
            self.schema_version = db.user_version(self._conn)
        except BaseException as exc:
            self._conn.close()
            if isinstance(exc, apsw.Error):
                raise db.sqlite_error(exc, self.path) from None
            raise
        self._checkpointer = None if readonly else db.BackgroundCheckpointer(self._conn, self.path)
        self._wal_guard = db.WalGuard(self.path)
        self._events_log = Path(events_log) if events_log is not None else None
        self._chronicle: Chronicle | None = None
        if self._events_log is not None and not readonly:       # a reader has nothing to mirror
            try:       # opened now, so a bad path fails before any event is stored
                self._chronicle = chronicle = Chronicle.open(self._events_log, "a", schema="event", block_records=256)
                with db.named_damage(self.path, "catching up the event log"):
                    self._catch_up(chronicle)
            except BaseException:     # e.g. a missing folder, or a chronicle of cycles (ConfigError)
                self._release()
                raise
        # a store dropped without close() still stops its thread and closes its files
        self._finalizer = weakref.finalize(self, _release, self._checkpointer, self._conn, self._chronicle)

    def _adopt(self, first: db.Migration) -> list[int]:
        """Bring a database created from the plain v1 DDL by another tool to
        version 1, keeping every row: its tables are checked to have the v1
        columns (else SchemaError, nothing written), missing tables are
        created, and the allowed-value rules are added as triggers (its
        tables are not rebuilt with CHECK constraints, which could refuse
        rows it already holds).  Returns [1] if it adopted, else []."""
        if db.user_version(self._conn) != 0:
            return []
        have = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        existing = [t for t in TABLES if t in have]
        if not existing:
            return []
        _check_v1_columns(self._conn, existing, self.path)   # again: another process may have changed it
        with self._write("adopting a v1 database"):
            if db.user_version(self._conn) != 0:        # another process adopted it meanwhile
                return []
            self._conn.execute(first.sql)               # the tables and indexes it lacks
            self._conn.execute(enforcement.adoption_sql(existing))
            self._conn.execute("PRAGMA user_version = 1")
        return [1]

    def close(self) -> None:
        with self._locked():
            self._release()

    def _release(self) -> None:
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
        else:
            _release(self._checkpointer, self._conn, self._chronicle)
        self._checkpointer = self._chronicle = self._db = None

    # --- export ---------------------------------------------------------------
    def iter_rows(self, tables: Iterable[str] = TABLES, page: int = 1000) -> Iterator[tuple[str, dict]]:
        """Every row of ``tables`` as (table, row dict), table by table in rowid
        order, read a page at a time (the store stays usable while you
        iterate; rows written meanwhile may or may not appear)."""
        tables = _check_tables(tables)
        for table in tables:
            after = -1
            while True:
                with self._locked():
                    rows = self._rows(f"SELECT rowid AS _rowid, * FROM {table} WHERE rowid > ? ORDER BY rowid "
                                      f"LIMIT ?", (after, page))
                for row in rows:
                    after = row.pop("_rowid")
                    yield table, row
                if len(rows) < page:
                    break

    def export_jsonl(self, out: TextIO, tables: Iterable[str] | None = None) -> int:
        """Write every row as a JSON line ``{"table": ..., "row": {...}}``, from
        one consistent snapshot; returns the count.  By default the v1 tables
        and the governance audit (the promotion policy's versions and the
        proposals' decisions, where the file has them); bytes another
        program stored are written in hex."""
        if not callable(getattr(out, "write", None)):
            raise ValidationError(f"out: expected a text stream to write to, got {type(out).__name__}")
        n = 0
        with self._locked():
            if tables is None:
                have = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                chosen = list(TABLES) + [t for t in GOVERNANCE_TABLES if t in have]
            else:
                chosen = _check_tables(tables)
            self._conn.execute("BEGIN")          # one read transaction: a snapshot
            try:
                for table in chosen:
                    for row in self._iter(f"SELECT * FROM {table} ORDER BY rowid"):
                        out.write(json.dumps({"table": table, "row": row}, ensure_ascii=False, sort_keys=True,
                                             default=json_default) + "\n")
                        n += 1
            finally:
                self._conn.execute("COMMIT")
        return n


