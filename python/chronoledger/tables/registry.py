"""TableRegistry: YAML-declared tables in one SQLite database, every write
validated, every query built from checked names and bound values, every new
table or schema change put through governance, every write published to a
chronicle event log beside the database.  docs/tables.md is the guide.

The registry is a thin face over its parts, one module each: core.py (the
connection, its lock, the applied schemas), loading.py (schema files,
the catalogue, adoption), proposals.py (governance), rows.py (writes and
reads), quality.py (trust and contradictions), publishing.py (the event
log)."""

from __future__ import annotations

import getpass
import os
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import apsw

from chronoledger import sqlite as db
from chronoledger.chronicle import Chronicle
from chronoledger.errors import ConfigError, SchemaError
from chronoledger.tables import adopt as adopting
from chronoledger.tables import query as qb
from chronoledger.tables.core import CACHE_KIB, CATALOGUE, GOVERNANCE_TABLE, GOVERNANCE_TABLES
from chronoledger.tables.loading import LoadReport, Loading
from chronoledger.tables.publishing import Publishing, _Held, _Publisher
from chronoledger.tables.quality import Quality
from chronoledger.tables.schema import SchemaProblem
from chronoledger.tables.validate import RowValidator

__all__ = ["TableRegistry", "LoadReport", "CATALOGUE", "GOVERNANCE_TABLE", "GOVERNANCE_TABLES", "CACHE_KIB"]

_DEFAULT_LOG = object()

class TableRegistry(Loading, Quality, Publishing):
    """YAML-declared tables in the SQLite database at ``db_path``.

    ``schema_dirs``: folders of the user's schema files, read by
    :meth:`load_all_schemas`.  A folder you name is what you get: the
    packaged catalogue is loaded only when no folder is named
    (``catalogue=None``), or when ``catalogue=True`` asks for it, and then a
    table your files declare is yours, the catalogue's file of the same name
    is left out with a notice.  The governance table every decision is
    written to comes from your folder when it declares one (Grace's
    governance.yaml does), else from the catalogue.  ``events_log``: the chronicle every write is published to
    (default: beside the database, ``<name>.events.cmeta``; None: no log).
    ``actor``: who proposes and approves when a call does not say (default:
    the login name).  ``log_idle_seconds``: how long the event log stays
    held after the last write before it is let go for other processes.

    A database another program made from the same schema files (Grace's
    registry) is refused with a SchemaError and left as it is, unless
    ``adopt=True``: then its tables are checked against the schema folders
    (every problem reported, nothing written, if any), and taken under
    governance as they are, every row kept, new rows written in Grace's
    stored forms (docs/tables.md, "Adopting a Grace database").
    ``adoption`` is then the :class:`~chronoledger.tables.adopt.AdoptionPlan` carried out.
    """

    def __init__(self, db_path: str | os.PathLike[str], schema_dirs: Iterable[str | os.PathLike[str]] | None = (), *,
                 catalogue: bool | None = None, events_log: Any = _DEFAULT_LOG, actor: str | None = None,
                 synchronous: str = "normal", busy_timeout_ms: int = db.DEFAULT_BUSY_TIMEOUT_MS,
                 log_idle_seconds: float = 1.0, adopt: bool = False):
        self.path = Path(db_path)
        self.schema_dirs = [Path(d) for d in ([schema_dirs] if isinstance(schema_dirs, (str, os.PathLike))
                                              else schema_dirs or ())]
        self.catalogue = not self.schema_dirs if catalogue is None else bool(catalogue)
        self.notices: list[str] = []
        self.actor = actor or _login()
        self.busy_timeout_ms = busy_timeout_ms
        self.problems: list[SchemaProblem] = []
        self._lock = threading.RLock()
        # one publisher at a time; always taken before _lock, never while holding it
        self._publishing = threading.Lock()
        self._log: Chronicle | None = None    # the event log's writer, once this registry holds it
        self._published_upto = 0              # the last outbox seq this registry put in the log
        if events_log is _DEFAULT_LOG:
            events_log = self.path.with_name(self.path.stem + ".events.cmeta")
        self.events_log = Path(events_log) if events_log is not None else None
        if self.events_log is not None and not self.events_log.parent.is_dir():
            raise ConfigError(f"{self.events_log}: the folder of the event log does not exist")
        self._applied = {}
        self._db = None
        self._adopting: adopting.AdoptionPlan | None = None
        self.adoption: adopting.AdoptionPlan | None = None
        foreign = adopting.foreign_tables(self.path, busy_timeout_ms)
        if foreign:                 # checked read-only: a database we refuse is left byte-identical
            if not adopt:
                raise SchemaError(
                    f"{self.path}: another program made this database (its tables: {', '.join(foreign[:6])}"
                    f"{', ...' if len(foreign) > 6 else ''}) and chronoledger has not written to it; to take it "
                    f"under the registry with every row kept, adopt it: TableRegistry(..., adopt=True) or "
                    f"`chronoledger tables --db {self.path} --schemas FOLDER adopt`")
            schemas, problems = self.read_schemas()
            plan = adopting.plan(self.path, schemas, busy_timeout_ms)
            plan.problems[:0] = problems
            if plan.problems:
                raise SchemaError(f"{self.path}: not adopted, nothing was written:\n{plan}")
            self.adoption = plan
        # the connection, None once closed (then _conn says so)
        if self.adoption is not None:
            # adopted through a rollback journal, the file's own: if anything fails it is left byte-identical
            # (WAL, which every registry database then uses, changes the file's header when it is switched on)
            self._db = db.connect(self.path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms,
                                  journal="delete")
            try:
                self._adopt(self.adoption)
            except BaseException as exc:
                self._db.close()
                if isinstance(exc, apsw.Error):
                    raise db.sqlite_error(exc, self.path) from None
                raise
            self._db.close()
        # a 64 MiB page cache (SQLite's default is 2 MiB): the indexes of a table of a million rows stay in
        # memory through a bulk insert; 100,000 validated inserts took 2.15 s instead of 2.30 s with it
        self._db = db.connect(self.path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms,
                              cache_kib=CACHE_KIB)
        try:
            db.migrate(self._conn, db.migrations("chronoledger.tables"), self.path)
            # apsw's stub types a scalar function as taking any number of values (ScalarProtocol is
            # Callable[[*SQLiteValues], ...]); numargs=2 is what says it takes two, which a stub cannot tie together
            self._conn.createscalarfunction("json_contains", qb.json_contains, 2,  # type: ignore[arg-type]
                                            deterministic=True)
            self._conn.createscalarfunction("json_equal", qb.json_equal, 2,  # type: ignore[arg-type]
                                            deterministic=True)
            self._validators: dict[str, RowValidator] = {}
            self._refresh()
            self._bootstrap_governance()
        except BaseException as exc:
            self._conn.close()
            if isinstance(exc, apsw.Error):
                raise db.sqlite_error(exc, self.path) from None
            raise
        # WAL checkpoints and publishing on threads of their own, off the writer's commits
        self._checkpointer = db.BackgroundCheckpointer(self._conn, self.path)
        self._publisher = _Publisher(self, log_idle_seconds)
        self._held = _Held(self._checkpointer, self._publisher, self._conn)
        # a registry dropped without close() still stops its threads and closes its files
        self._finalizer = weakref.finalize(self, self._held.release)

    def overview(self) -> list[dict]:
        """Each applied table as ``tables list`` shows it: ``{"table", "rows",
        "fields", "version", "immutable", "pending" (its proposals waiting),
        "description"}``."""
        with self._locked():
            pending: dict[str, int] = {}
            for p in self.proposals(status="pending"):
                pending[p["table_name"]] = pending.get(p["table_name"], 0) + 1
            out = []
            for name in self.tables():
                s = self.schema(name)
                out.append({"table": name, "rows": self.count_rows(name), "fields": len(s.fields),
                            "version": s.version, "immutable": s.immutable, "pending": pending.get(name, 0),
                            "description": s.description})
            return out

    def close(self) -> None:
        """Publish what waits in the outbox, then close the event log and the database."""
        self._publisher.close()                 # outside the locks: it may be waiting for them
        with self._publishing, self._locked():
            if self._db is not None:
                try:
                    self._publish(wait=False, quiet=True)
                finally:
                    self._finalizer()
                    self._db = self._log = None


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:          # no login name in this environment (a container without a passwd entry)
        return "unknown"
