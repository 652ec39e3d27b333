"""A run's database writes, one transaction per tick, on a thread of their own.

Why a thread: a tick's rows are written by SQLite in C with the GIL released
(chronoledger._sqlbulk), so while tick t commits, the next tick's agents,
conversations and rows are worked out in Python beside it.  On a large run
that hides most of the database's time.

What stays true: ticks commit one at a time and in order; the run's event
log is always flushed for a tick before that tick's transaction begins (the
scheduler logs, then submits), so after a crash the log is ahead of the
database, never behind, and ``--resume`` cuts it back to the checkpoint.
At most one tick waits while another commits, so the log is at most three
ticks ahead.  The first failure stops the writer: nothing after it commits,
and the scheduler's next :meth:`TickWriter.check`, :meth:`~TickWriter.submit`
or :meth:`~TickWriter.drain` raises it.  On its own failure path the
scheduler calls :meth:`~TickWriter.settle`, which waits (through Ctrl-C)
until the connection is free again.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Generic, TypeVar

J = TypeVar("J")


class TickWriter(Generic[J]):
    """Runs ``commit(job)`` for each submitted job, in order, on one thread."""

    def __init__(self, commit: Callable[[J], None], name: str = "world-writer"):
        self._commit = commit
        self._jobs: queue.Queue[J | None] = queue.Queue(maxsize=1)      # None: stop
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:          # after a failure, later ticks are dropped, never committed
                    self._commit(job)
            except BaseException as exc:         # handed to the scheduler's thread
                self._error = exc
            finally:
                self._jobs.task_done()

    def check(self) -> None:
        """Raise the writer's failure, if it had one (before a tick: no work for a run that has failed)."""
        if self._error is not None:
            raise self._error

    def submit(self, job: J) -> None:
        """Queue a tick's job (waiting while another is queued); raise the
        writer's failure instead, if it had one, before or while waiting."""
        self.check()
        self._jobs.put(job)
        self.check()

    def drain(self) -> None:
        """Wait until every submitted job is done; raise the writer's failure, if it had one."""
        self._jobs.join()
        self.check()

    def settle(self) -> BaseException | None:
        """Wait until every submitted job is done, through any Ctrl-C, and
        return the writer's failure (or None).  For the scheduler's own
        failure path: only then may the connection be used again, since the
        writer's inserts run outside apsw's checks."""
        while True:
            try:
                self._jobs.join()
                return self._error
            except KeyboardInterrupt:        # a tick being written still commits or rolls back whole
                continue

    def close(self) -> None:
        """Finish the queued jobs and stop the thread, through any Ctrl-C
        (errors are left to :meth:`drain` and :meth:`settle`)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            while True:
                try:
                    self._thread.join()
                    return
                except KeyboardInterrupt:
                    continue
