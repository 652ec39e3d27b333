"""The stores a server holds open for its life: the table registry (one,
shared: it serialises its own writes and publishes on its own thread) and the
runtime database (read-only).  The mirrors, the world database and the
chronicles are opened per request by the library functions that read them,
as the CLI's commands open them."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import apsw

from chronoledger import sqlite as db
from chronoledger.errors import ChronoledgerError, ConfigError
from chronoledger.runtime import RuntimeMemoryStore
from chronoledger.sequence import schema
from chronoledger.sequence.reader import find_user_folder
from chronoledger.sequence.registry import mirror_folder
from chronoledger.server.config import SQL_SLOTS, ServeConfig
from chronoledger.server.http import needs
from chronoledger.tables import TableRegistry
from chronoledger.world import store as world_store


class Stores:
    """Opened on first use, closed by :meth:`close` (the app's shutdown)."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self._lock = threading.Lock()
        self._tables: TableRegistry | None = None
        self._runtime: RuntimeMemoryStore | None = None
        self._held: list[apsw.Connection] = []
        #: SQL on the mirrors, a few queries at a time (the rest wait without holding a worker thread)
        self.sql_slots = anyio.Semaphore(SQL_SLOTS)

    def check(self) -> None:
        """Open every store given once, so a wrong file is refused when the
        server starts (a ConfigError naming the option and the file), not by
        every request after: the registry and the runtime database stay open."""
        cfg = self.config
        for option, path, opener in (("--tables", cfg.tables, self.tables), ("--runtime", cfg.runtime, self.runtime)):
            if path is not None:
                try:
                    opener()
                except ChronoledgerError as exc:
                    raise ConfigError(f"{option} {path}: cannot be served: {exc}") from None
        if cfg.world is not None:
            try:
                world_store.refuse_foreign(Path(cfg.world))
                conn = db.open_readonly(cfg.world, db.DEFAULT_BUSY_TIMEOUT_MS)
                try:
                    with db.sqlite_errors(cfg.world, "reading its runs"):
                        conn.execute("SELECT count(*) FROM runs").fetchall()
                finally:
                    conn.close()
            except ChronoledgerError as exc:
                raise ConfigError(f"--world {cfg.world}: not a world database: {exc}") from None
        if cfg.user is not None:
            try:
                data = self.mirrors()
            except ChronoledgerError as exc:
                raise ConfigError(f"--user {cfg.user}: {exc}") from None
            if not (data / schema.FILES["core"]).is_file():
                raise ConfigError(f"--user {cfg.user}: no mirrors in {data} yet; run `sequence sync --user "
                                  f"{cfg.user}` first")

    def hold(self) -> None:
        """Keep a read-only connection open to each database the library
        opens per request (the world database, the mirrors) while the server
        runs.  Without one, each time the last reader closes, SQLite lets the
        next opener rebuild the WAL index, and the readers that arrive
        meanwhile fail at once with "another connection is recovering the
        database" (seen under load).  A file missing now is not held."""
        paths = [self.config.world] if self.config.world is not None else []
        if self.config.user is not None:
            try:
                paths += [self.mirrors() / f for f in schema.FILES.values()]
            except ChronoledgerError:
                pass                    # not a user folder (yet): its requests say why
        with self._lock:
            for p in paths:
                if p is not None and p.is_file():
                    try:
                        self._held.append(db.open_readonly(p, db.DEFAULT_BUSY_TIMEOUT_MS))
                    except ChronoledgerError:
                        pass            # unreadable: the requests that read it say why

    def tables(self) -> TableRegistry:
        path = needs(self.config.tables, "--tables DB", "the table registry (/api/tables)")
        with self._lock:
            if self._tables is None:
                self._tables = TableRegistry(path, self.config.schemas)
            return self._tables

    def runtime(self) -> RuntimeMemoryStore:
        path = needs(self.config.runtime, "--runtime DB", "the runtime database (/api/runtime)")
        with self._lock:
            if self._runtime is None:
                self._runtime = RuntimeMemoryStore(path, readonly=True)
            return self._runtime

    def mirrors(self) -> Path:
        """The user folder's mirrors (not created: a folder never synced is refused by the readers)."""
        user = needs(self.config.user, "--user DIR", "the Chronos user folder (/api/data, /api/trends, /digest)")
        return mirror_folder(find_user_folder(user))

    def world(self) -> Path:
        return needs(self.config.world, "--world DB", "the world database (/api/world, /world)")

    def runs(self) -> Path:
        return needs(self.config.runs, "--runs DIR", "the runs folder (/api/runs, /runs)")

    def close(self) -> None:
        with self._lock:
            for store in (self._tables, self._runtime):
                if store is not None:
                    store.close()
            self._tables = self._runtime = None
            for conn in self._held:
                conn.close()
            self._held = []
