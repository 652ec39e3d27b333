"""``sequence sync``: rebuild the SQLite mirrors of a user folder.

The data flows one way: the reader (:mod:`~chronoledger.sequence.reader`)
reads the folder into records; :mod:`~chronoledger.sequence.derived` derives
what several mirrors share; one builder per mirror turns the records into
its tables (:mod:`~chronoledger.sequence.core_builder`,
:mod:`~chronoledger.sequence.events_builder`,
:mod:`~chronoledger.sequence.memory_builder`, and the metastudy for the
trends and the digest); the registry (:mod:`~chronoledger.sequence.registry`)
records the result, under the folder's lock (:mod:`~chronoledger.sequence.lock`).
This module runs them in that order.

The YAML is the source of truth and is only ever read.  Each mirror is built
whole in a temporary file and renamed into place when all are complete, so
a failure or a kill leaves the previous mirrors intact.  Unreadable files
are skipped and reported; they never stop a sync.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import ConfigError
from chronoledger.sequence import behavior_builder, core_builder, events_builder, matrix_builder, memory_builder, schema
from chronoledger.sequence.derived import Derived
from chronoledger.sequence.events_builder import EVENT_LOG
from chronoledger.sequence.lock import sync_lock
from chronoledger.sequence.metastudy import build_trends
from chronoledger.sequence.parse_cache import ParseCache
from chronoledger.sequence.reader import find_user_folder, read_user_folder
from chronoledger.sequence.records import Problem, UserTree
from chronoledger.sequence.recorder import record_command, record_review
from chronoledger.sequence.registry import (REGISTRY, data_folder, existing_mirror_folder, fingerprint, mark_built,
                                            mark_failed, now_text, read_registry, status, write_registry)
from chronoledger.sequence.schema import DATABASES
from chronoledger.sequence.values import hhmm, iso_date, span, stamp, to_json

__all__ = [
    "DATABASES", "EVENT_LOG", "REGISTRY", "Builder", "SyncReport", "data_folder", "fingerprint", "hhmm", "iso_date",
    "now_text", "plan", "read_registry", "record_command", "record_review", "span", "stamp", "status", "sync",
    "sync_lock", "write_registry",
]

_logger = logging.getLogger("chronoledger.sequence")


@dataclass
class SyncReport:
    user: Path
    data: Path
    built: dict[str, dict] = field(default_factory=dict)      # name -> {"file", "counts", "seconds"}
    problems: list[Problem] = field(default_factory=list)
    unresolved: list[dict] = field(default_factory=list)
    files: int = 0
    items: int = 0
    seconds: float = 0.0
    #: what the sync chose that the caller should hear (which folder it took, when more than one could be meant)
    notes: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """Files that could not be used (warnings about values are not counted)."""
        return len({p.path for p in self.problems if p.skipped})

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.skipped]

    def as_dict(self) -> dict:
        return {"user": str(self.user), "data": str(self.data), "notes": self.notes, "files": self.files,
                "items": self.items,
                "seconds": round(self.seconds, 3), "skipped_files": self.skipped,
                "problems": [{"path": p.path, "line": p.line, "reason": p.reason, "skipped": p.skipped}
                             for p in self.problems],
                "unresolved_references": self.unresolved, "databases": self.built}


class Builder:
    """One sync's builders, over the records of one read tree.  The core and
    memory builds are methods so a test can make one fail, or stop the
    process halfway, and see what the sync leaves behind."""

    def __init__(self, tree: UserTree):
        self.tree = tree
        self.records = Derived(tree)

    def core(self, conn: apsw.Connection) -> dict[str, int]:
        return core_builder.fill(conn, self.records)

    def memory(self, conn: apsw.Connection) -> dict[str, int]:
        return memory_builder.fill(conn, self.records)

    def behavior(self, conn: apsw.Connection) -> dict[str, int]:
        return behavior_builder.fill(conn, self.records)

    def matrix(self, conn: apsw.Connection) -> dict[str, int]:
        return matrix_builder.fill(conn, self.records)

    def events(self, data: Path) -> tuple[dict[str, int], list[db.PendingFile]]:
        carried = events_builder.carried_over(data / schema.FILES["events"], self.tree)
        return events_builder.pending(data, self.records, carried)


@contextmanager
def _cycle_collection_paused() -> Iterator[None]:
    """Python's cycle collector off for the block, back as it was after.

    A sync allocates a few million dicts, lists and tuples that stay alive
    until it ends, so the collector keeps rescanning a growing heap for
    cycles it will not find (the tree read from YAML has none: a recursive
    document is refused).  On a 20,000-item folder that is about a fifth of
    the sync's time.  Reference counting still frees everything as usual;
    only cycles made meanwhile, here or in other threads, wait for the next
    collection."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def sync(user_path: str | os.PathLike[str], databases: tuple[str, ...] = DATABASES, *,
         progress: Callable[[str], None] | None = None, as_of: date | None = None,
         parse_cache: bool = True) -> SyncReport:
    """Rebuild the chosen mirrors of the user folder at (or in) ``user_path``.
    ``progress`` is called with "read" once the YAML is read, then with each
    database's name as it is built.  With ``parse_cache`` the files that did
    not change since the last sync are not parsed again
    (:mod:`~chronoledger.sequence.parse_cache`); the mirrors are the same either way."""
    for name in databases:
        if name not in DATABASES:
            raise ConfigError(f"--db must be one of {', '.join(DATABASES)} or all, got {name!r}")
    t0 = time.perf_counter()
    notes: list[str] = []
    user = find_user_folder(user_path, notes)
    for note in notes:
        _logger.info("%s", note)
    data = data_folder(user)
    report = SyncReport(user=user, data=data, notes=notes)
    with sync_lock(data), _cycle_collection_paused():
        for stale in db.remove_stale_builds(data):
            _logger.info("%s: removed %s, left by a rebuild that did not finish", data, stale.name)
        reg = read_registry(data)
        attempt = now_text()
        for name in databases:
            reg["databases"].setdefault(name, {})["last_attempt"] = attempt
        write_registry(data, reg)
        fp = fingerprint(user)
        cache = ParseCache.load(data) if parse_cache else None
        try:
            tree = read_user_folder(user, cache.parse) if cache is not None else read_user_folder(user)
        except Exception as exc:              # the folder could not be read at all: say so in the registry
            for name in databases:
                mark_failed(reg, name, exc)
            write_registry(data, reg)
            raise
        if cache is not None:
            # written now, before anything builds on the values (a cached result is the file's, whatever follows)
            cache.save()
            _logger.debug("%s: parse cache: %d file(s) unchanged, %d read", user, cache.hits, cache.misses)
        if progress:
            progress("read")
        builder = Builder(tree)
        report.files, report.items = tree.files, len(tree.items)
        # Every mirror is built beside its target first; only when all are
        # built are they renamed into place, one after another, and the
        # registry written: a failure leaves every previous mirror as it was.
        # (Building them in worker processes was tried: on two cores, copying
        # the read tree into them cost more than it saved.)
        pending: list[db.PendingFile] = []
        memory_file = core_file = None
        try:
            for name in databases:
                t = time.perf_counter()
                try:
                    if name in ("core", "memory", "behavior", "matrix"):
                        fill = getattr(builder, name)
                        p = db.build_pending(data / schema.FILES[name], fill, user_version=schema.VERSIONS[name])
                        pending.append(p)
                        counts = p.result
                        if name == "memory":
                            memory_file = p.tmp
                        elif name == "core":
                            core_file = p.tmp
                    elif name == "events":
                        counts, files = builder.events(data)
                        pending += files
                    else:                     # trends, from the memory and core mirrors this sync built (if it did)
                        counts, files = build_trends(data, as_of=as_of, memory_db=memory_file, core_db=core_file,
                                                     pending=True)
                        pending += files
                except Exception as exc:
                    mark_failed(reg, name, exc)
                    write_registry(data, reg)
                    raise
                finally:
                    if progress:
                        progress(name)
                report.built[name] = {"file": schema.FILES[name], "counts": counts,
                                      "seconds": round(time.perf_counter() - t, 3)}
        except BaseException:
            for p in pending:
                p.discard()
            raise
        for p in pending:
            p.commit()
        done = now_text()
        for name in databases:
            mark_built(reg, name, report.built[name]["counts"], done, attempt, source=fp)
        report.problems = tree.problems
        report.unresolved = builder.records.unresolved
        reg["user_folder"] = "."          # relative: the registry lives inside the user folder
        reg["skipped_files"] = [str(p) for p in tree.problems if p.skipped]
        reg["warnings"] = [str(p) for p in tree.problems if not p.skipped]
        write_registry(data, reg)
    report.seconds = time.perf_counter() - t0
    _logger.info("%s: synced %s: %d items from %d files in %.2f s; %d file(s) skipped, %d warning(s)", user,
                 ", ".join(databases), report.items, report.files, report.seconds, report.skipped,
                 len(report.warnings))
    return report


def plan(user_path: str | os.PathLike[str]) -> dict:
    """What a sync of the core mirror would change, per item type (added,
    removed, changed), and the log rows it would hold; nothing is written."""
    user = find_user_folder(user_path)
    with _cycle_collection_paused():
        tree = read_user_folder(user)
        new = {(it.type, it.slug): to_json(it.data) for it in tree.items}
    old: dict[tuple[str, str], str] = {}
    existing = existing_mirror_folder(user)
    core = existing / schema.FILES["core"] if existing is not None else None
    if core is not None and core.exists():
        old = core_builder.mirrored_items(core)
    per_type: dict[str, dict[str, list[str]]] = {}

    def note(kind: str, key: tuple[str, str]) -> None:
        per_type.setdefault(key[0], {"added": [], "removed": [], "changed": []})[kind].append(key[1])

    for key in sorted(new.keys() - old.keys()):
        note("added", key)
    for key in sorted(old.keys() - new.keys()):
        note("removed", key)
    for key in sorted(new.keys() & old.keys()):
        if new[key] != old[key]:
            note("changed", key)
    records = Derived(tree)
    return {"user": str(user), "mirror_exists": bool(old), "items": len(new), "types": per_type,
            "logs": {"completions": len(records.completions), "schedule_days": len(tree.schedules),
                     "status_days": len(tree.status), "narratives": len(tree.narratives),
                     "reviews": len(tree.reviews)},
            "problems": [str(p) for p in tree.problems]}


# --- chronoledger.sequence.sync(...) -----------------------------------------------

class _CallableModule(types.ModuleType):
    """This module, callable: ``chronoledger.sequence.sync(user, ...)`` is
    :func:`sync`.  The package's attribute ``sync`` is this submodule once it
    is imported (Python sets it so), so the module itself answers the call
    that docs/sequence.md and DESIGN.md show, and ``sync.SyncReport``,
    ``from chronoledger.sequence import sync`` and ``import
    chronoledger.sequence.sync`` still give the module."""

    def __call__(self, *args: Any, **kwargs: Any) -> SyncReport:
        return sync(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
