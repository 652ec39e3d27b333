"""What kind of database a world is pointed at, read without changing it:
ours (migrated: a schema version), none yet (a new or empty file), the world
sandbox's (CalfCrusher/AI_Agents_Communication, made by its SQLAlchemy models:
``python/db/models.py``), or another program's.

The stores open a database only once they know it is theirs, so a file they
refuse is never touched (not even switched to WAL)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import StorageError

#: The sandbox's tables, in the order adoption copies them (python/db/models.py).
SANDBOX_TABLES = ("agents", "interests", "relationships", "conversations", "turns", "memories", "embeddings",
                  "locations", "activities", "agent_locations", "agent_schedules", "world_events", "daily_reports")


#: The tables the world's migrations make: a file that has one of them, and no schema version, is not ours.
WORLD_TABLES = frozenset({"agents", "interests", "relationships", "conversations", "conversation_turns", "memories",
                          "locations", "activities", "runs", "agent_locations", "agent_schedules", "world_events",
                          "daily_reports"})


@dataclass(frozen=True)
class Form:
    kind: str                   # "missing" | "empty" | "ours" | "sandbox" | "beside" | "foreign"
    tables: tuple[str, ...]     # the file's tables (sqlite_* left out)
    version: int                # its user_version

    def describe(self) -> str:
        shown = ", ".join(self.tables[:8]) + (", ..." if len(self.tables) > 8 else "")
        return f"tables {shown}" if self.tables else "no tables"


def form_of(path: Path) -> Form:
    """The kind of database at ``path``, read-only (waiting for a writer as the stores do)."""
    if not path.is_file():
        return Form("missing", (), 0)
    if path.stat().st_size == 0:
        return Form("empty", (), 0)
    # a migrated file says so in its header (user_version, bytes 60-63): read without SQLite, no lock is
    # taken on the file every run opens; a header that says 0 may be behind its WAL, so SQLite reads it then
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StorageError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if header[:16] == b"SQLite format 3\x00" and len(header) == 100:
        version = int.from_bytes(header[60:64], "big")
        if version > 0:
            return Form("ours", (), version)
    with db.sqlite_errors(path, "reading what it holds"):
        conn = db.open_readonly(path, db.DEFAULT_BUSY_TIMEOUT_MS)
        try:
            return _form(conn)
        finally:
            conn.close()


def _form(conn: apsw.Connection) -> Form:
    version = db.expect(conn.execute("PRAGMA user_version").fetchall()[0][0], int, "user_version")
    tables = tuple(sorted(str(n) for (n,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'")))
    if version > 0:
        return Form("ours", tables, version)
    if not tables:
        return Form("empty", tables, version)
    if {"agents", "memories", "turns"} <= set(tables):
        cols = {str(r[1]) for r in conn.execute("PRAGMA table_info(memories)")}
        if "normalized_hash" in cols:
            return Form("sandbox", tables, version)
    if WORLD_TABLES.isdisjoint(tables):
        # another program's tables only: the world's are made beside them (one file may hold both)
        return Form("beside", tables, version)
    return Form("foreign", tables, version)
