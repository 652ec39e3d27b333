"""Publishing every write to the chronicle event log beside the database:
the outbox (filled in each write's transaction) moved to the log from a
thread of its own.  docs/tables.md, "The event log"."""

from __future__ import annotations

import json
import threading
import time
import weakref
from datetime import datetime
from pathlib import Path

import apsw
import numpy as np

from chronoledger import sqlite as db
from chronoledger.chronicle import Chronicle, WriterLockedError
from chronoledger.errors import ChronoledgerError, CorruptDataError, DatabaseBusyError, StorageError
from chronoledger.tables import values
from chronoledger.tables.core import RegistryCore, _logger


#: A write of more rows is published as several events (a payload stays small).
_IDS_PER_EVENT = 1000


class Publishing(RegistryCore):
    """The event log: the outbox moved to the chronicle beside the database."""

    _log: Chronicle | None
    _published_upto: int
    _held: _Held

    def release_log(self) -> None:
        """Publish what waits, then let go of the event log so that another
        process can publish (done by itself after ``log_idle_seconds``)."""
        with self._publishing, self._locked():
            if self._db is None or self._log is None:
                return
            self._publish(wait=False, quiet=True)
            log, self._log, self._held.log = self._log, None, None
            try:
                log.close()
            except (ChronoledgerError, OSError) as exc:
                _logger.warning("%s: closing the event log failed: %s", self.path, exc)

    def _publish_soon(self) -> None:
        """The publisher thread's turn (never raises): the log is written
        and fsynced without the registry's lock, so writers go on meanwhile."""
        with self._publishing:
            self._publish(wait=False, quiet=True)

    def pending_events(self) -> int:
        """Writes committed but not yet in the event log (see docs/tables.md, The event log)."""
        with self._locked():
            return db.expect(self._conn.execute("SELECT count(*) FROM _registry_outbox").fetchall()[0][0], int,
                             f"{self.path}: count(*)")

    def publish_events(self, *, wait: bool = True) -> int:
        """Move every pending write to the event log now, waiting up to the
        busy timeout for another process that holds the log; returns how
        many events were appended.  Raises if the log cannot be written."""
        with self._publishing:
            self._check_open()
            return self._publish(wait=wait, quiet=False)

    def _log_writer(self, path: Path, wait: bool) -> Chronicle | None:
        """The event log at ``path``, opened by this registry and kept open
        until close() (reopening per write would append a footer each time);
        None while another process holds it."""
        if self._log is not None:
            return self._log
        deadline = time.monotonic() + (self.busy_timeout_ms / 1000 if wait else 0)
        while True:
            try:
                # "flush": each block is fsynced before the outbox rows it holds are deleted
                self._log = self._held.log = log = Chronicle.open(path, "a", schema="event", block_records=4096,
                                                                  durability="flush")
                return log
            except WriterLockedError:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.01)

    def _publish(self, wait: bool, quiet: bool) -> int:
        """Move the outbox to the log: one event per write (per 1,000 rows of
        a larger one), its type the operation, its payload the table, the row
        ids and the outbox's ``seq``.  The outbox rows are deleted while the
        log is still held, after its block is on disk: a crash in between can
        repeat an event (the same seq), never lose one."""
        if self.events_log is None:
            return 0
        try:
            with self._locked():            # read under the lock; the log is written without it
                if self._db is None:
                    return 0
                if not self._conn.execute("SELECT 1 FROM _registry_outbox LIMIT 1").fetchall():
                    return 0
                ch = self._log_writer(self.events_log, wait)
                if ch is None:
                    if quiet:
                        return 0          # another process holds the log: it publishes this outbox too
                    raise ChronoledgerError(f"{self.events_log}: another process holds the event log; "
                                            f"{self.pending_events()} writes wait in the outbox")
                rows = self._conn.execute("SELECT seq, ts, table_name, operation, row_ids FROM _registry_outbox "
                                          "ORDER BY seq").fetchall()
            if not rows:                       # another process emptied it meanwhile
                return 0
            floor = ch.last_timestamp or 0
            stamps: list[int] = []
            types: list[object] = []
            payloads: list[dict[str, object]] = []
            seq = self._published_upto
            for seq_value, ts, table, op, ids_text in rows:
                if not (isinstance(seq_value, int) and isinstance(ts, str) and isinstance(ids_text, str)):
                    raise CorruptDataError(f"{self.path}: _registry_outbox: a damaged row (seq {seq_value!r})")
                seq = seq_value
                micros = max(_micros(ts), floor)          # another process's clock may lag ours
                floor = micros
                if seq <= self._published_upto:    # in the log already; its outbox row outlived a failed delete
                    continue
                ids = json.loads(ids_text)
                for part, k in enumerate(range(0, len(ids), _IDS_PER_EVENT)):
                    stamps.append(micros)
                    types.append(op)
                    payloads.append({"seq": seq, "part": part, "table": table, "ids": ids[k:k + _IDS_PER_EVENT]})
            if stamps:
                ch.extend({"timestamp": np.array(stamps, dtype=np.uint64),
                           "event_type": np.array(types, dtype=object), "payload": np.array(payloads, dtype=object)})
                ch.flush()
            self._published_upto = max(self._published_upto, seq)          # the last row's
            with self._locked():
                if self._db is None:               # closed meanwhile: the rows stay, published again (same seq)
                    return len(stamps)
                with db.write_transaction(self._conn, f"{self.path}: clearing the event outbox"):
                    self._conn.execute("DELETE FROM _registry_outbox WHERE seq <= ?", (self._published_upto,))
            return len(stamps)
        # kept: whatever failed, the events wait in the outbox (the error is said, or logged when quiet);
        # the class tells a failure of the database (apsw's, or write_transaction's mapped begin or commit:
        # the log is kept) from one of the log
        except (ChronoledgerError, OSError, apsw.Error) as exc:
            if self._log is not None and not isinstance(exc, (apsw.Error, StorageError, DatabaseBusyError)):
                # the log failed: let it go, the next publish reopens it
                try:
                    self._log.close()
                except Exception:
                    pass
                self._log = self._held.log = None
            if not quiet:
                raise ChronoledgerError(f"{self.path}: publishing events to {self.events_log} failed ({exc}); "
                                        f"they wait in the outbox") from exc
            _logger.warning("%s: publishing events to %s failed (%s); they wait in the outbox",
                         self.path, self.events_log, exc)
            return 0


class _Held:
    """What a registry holds open, released by close() or by the finalizer
    of a registry dropped without it."""

    def __init__(self, checkpointer: db.BackgroundCheckpointer, publisher: "_Publisher", conn: apsw.Connection):
        self.checkpointer, self.publisher, self.conn = checkpointer, publisher, conn
        self.log: Chronicle | None = None

    def release(self) -> None:
        try:
            self.publisher.close()
            if self.log is not None:
                self.log.close()
        finally:
            self.log = None
            try:
                self.checkpointer.close()
            finally:
                self.conn.close()


class _Publisher:
    """Moves the outbox to the event log from a thread of its own: woken by
    each commit, it waits a moment so that a burst of writes becomes one
    append and one fsync, and lets the log go after ``idle`` seconds without
    writes, so that other processes' writes get published too.  It holds the
    registry only weakly: a dropped registry is still collected."""

    def __init__(self, registry: Publishing, idle: float, delay: float = 0.02):
        self._ref = weakref.ref(registry)
        self.idle, self.delay = idle, delay
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"tables-publish:{registry.path.name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stop:
                return
            time.sleep(self.delay)
            self._wake.clear()
            if not self._call("_publish_soon"):
                return
            if not self._wake.wait(self.idle) and not self._stop:        # idle: let the log go
                if not self._call("release_log"):
                    return

    def _call(self, method: str) -> bool:
        reg = self._ref()
        if reg is None or self._stop:
            return False
        try:
            getattr(reg, method)()
        except Exception as exc:           # a thread must not die of one failure; the outbox keeps the events
            _logger.warning("%s: %s failed: %s", reg.path, method, exc)
        return True

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


def _micros(ts: str) -> int:
    dt = datetime.fromisoformat(values.iso_text(ts))         # stored as ...000000Z: Python 3.10 reads no Z
    return int(dt.timestamp() * 1_000_000)
