"""The plumbing every part of a RuntimeMemoryStore shares: the connection
and its lock, reads as dicts (JSON columns decoded), one row by id, inserts
whose refusals name the operation, the store's clock, ending a session, run
or step; and the checks made before a file is opened at all."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import apsw

from chronoledger import sqlite as db
from chronoledger.chronicle import Chronicle
from chronoledger.errors import ChronoledgerError, NotFoundError, QueryError, SchemaError, ValidationError, \
    WalLostError
from chronoledger.runtime import enforcement
from chronoledger.runtime import values as v
from chronoledger.runtime.vocab import CLOSED_SESSION

_logger = logging.getLogger("chronoledger.runtime")

TABLES = ("sessions", "conversation_turns", "workflow_runs", "workflow_steps", "task_events", "skills_learned",
          "behavior_profiles", "personality_profiles", "skill_to_logic_proposals", "validation_results",
          "approvals", "deploy_outcomes")
QUERIES: dict[str, str] = {
    # julianday(): times another tool wrote may carry offsets or other ISO forms
    "latest_behavior_profile": (
        "SELECT * FROM behavior_profiles WHERE profile_name = :name AND julianday(effective_from) <= julianday(:at) "
        "AND (effective_to IS NULL OR julianday(effective_to) > julianday(:at)) ORDER BY version DESC LIMIT 1"),
    "latest_personality_profile": (
        "SELECT * FROM personality_profiles WHERE profile_name = :name AND julianday(effective_from) <= julianday(:at) "
        "AND (effective_to IS NULL OR julianday(effective_to) > julianday(:at)) ORDER BY version DESC LIMIT 1"),
    "session_replay": (
        "SELECT * FROM conversation_turns WHERE session_id = :session_id ORDER BY turn_index"),
    "workflow_replay_steps": (
        "SELECT * FROM workflow_steps WHERE workflow_run_id = :run_id ORDER BY step_index"),
    "workflow_replay_events": (
        "SELECT * FROM task_events WHERE workflow_run_id = :run_id OR step_id IN "
        "(SELECT id FROM workflow_steps WHERE workflow_run_id = :run_id) ORDER BY created_at, rowid"),
    "proposal_lineage_proposal": (
        "SELECT p.*, s.skill_key, s.description AS skill_description, s.source_type AS skill_source_type, "
        "s.confidence AS skill_confidence, s.learned_at AS skill_learned_at FROM skill_to_logic_proposals p "
        "JOIN skills_learned s ON s.id = p.skill_id WHERE p.id = :proposal_id"),
    "proposal_lineage_validations": (
        "SELECT * FROM validation_results WHERE proposal_id = :proposal_id ORDER BY validated_at, rowid"),
    "proposal_lineage_approvals": (
        "SELECT * FROM approvals WHERE proposal_id = :proposal_id ORDER BY decided_at, rowid"),
    "proposal_lineage_deploys": (
        "SELECT * FROM deploy_outcomes WHERE proposal_id = :proposal_id ORDER BY deployed_at, rowid"),
}
#: Our own audit tables (migration 0004): in a dump beside the v1 tables.
GOVERNANCE_TABLES = ("_runtime_promotion_policy", "_runtime_proposal_decisions")

_NOUN = {"sessions": "session", "conversation_turns": "turn", "workflow_runs": "workflow run",
         "workflow_steps": "workflow step", "task_events": "task event", "skills_learned": "skill",
         "skill_to_logic_proposals": "proposal", "validation_results": "validation", "approvals": "approval",
         "deploy_outcomes": "deploy outcome", "behavior_profiles": "behavior profile",
         "personality_profiles": "personality profile"}
JSON_COLUMNS = {"metadata_json", "context_json", "details_json", "payload_json", "behavior_json",
                 "personality_json", "proposal_json", "metrics_json"}




def _spec_columns() -> dict[str, list[str]]:
    """Each v1 table's columns, read from the specification's DDL itself."""
    mem = apsw.Connection(":memory:")
    mem.execute(enforcement.spec_ddl())
    return {t: db.table_columns(mem, t) for t in TABLES}




class StoreCore(db.StoreHandle):
    """The connection, its lock and the reads and writes every part of
    :class:`~chronoledger.runtime.RuntimeMemoryStore` makes."""

    noun = "store"
    # the state every part shares, set by RuntimeMemoryStore.__init__
    readonly: bool
    _last_stamp: str
    _checkpointer: db.BackgroundCheckpointer | None
    _chronicle: Chronicle | None
    _events_log: Path | None
    _wal_guard: db.WalGuard | None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The store's lock, with a damaged database named as such, and the
        WAL checked to be the one the store opened (db.WalGuard): reads from a
        WAL another copy of SQLite removed would be stale, and writes lost."""
        with self._lock, db.named_damage(self.path):
            guard = self._wal_guard
            if guard is not None and self._db is not None and guard.changed():
                self._release()
                raise WalLostError(db.wal_lost_message(self.path, "what the store reads could be stale; nothing "
                                                                   "it committed is lost"))
            yield

    @contextlib.contextmanager
    def _write(self, what: str):
        if self.readonly:
            raise ChronoledgerError(f"{self.path}: {what}: the store was opened read-only")
        with db.write_transaction(self._conn, f"{self.path}: {what}"):
            yield
        if self._checkpointer is not None:
            try:
                self._checkpointer.after_commit()
            except WalLostError:           # what it committed is in the database file: the store closes
                self._release()
                raise

    def _release(self) -> None:
        raise NotImplementedError

    def _iter(self, sql: str, params: Any = ()) -> Iterator[dict]:
        with db.named_damage(self.path):
            yield from self._iter_rows(sql, params)

    def _iter_rows(self, sql: str, params: Any) -> Iterator[dict]:
        cur = self._conn.execute(sql, params)
        try:
            names = [d[0] for d in cur.getdescription()]
        except apsw.ExecutionCompleteError:     # control flow: the statement gave no rows
            return
        decode = [k for k in names if k in JSON_COLUMNS]
        for row in cur:
            d = dict(zip(names, row))
            for k in decode:
                if isinstance(d[k], str):
                    try:
                        d[k] = json.loads(d[k])
                    except ValueError:   # not JSON (another tool wrote it): returned as the text it is
                        pass
            yield d

    def _rows(self, sql: str, params: Any = ()) -> list[dict]:
        # Under the store's lock like every write: one connection serves all the
        # threads, and a commit runs our WAL hook (Python) while holding SQLite's
        # connection mutex, so a read entering that mutex from another thread
        # could deadlock against it (apsw before 3.49 waits for the mutex holding the GIL).
        with self._lock:
            return list(self._iter(sql, params))

    def _one(self, sql: str, params: Any = ()) -> dict | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _page(self, sql: str, params: dict, limit: int, time_key: str) -> tuple[list[dict], str | None]:
        """A page of a newest-first listing (``sql`` asks for ``limit + 1`` rows
        ordered by ``time_key`` and id, descending) and the cursor of the next."""
        with self._locked():
            rows = self._rows(sql, params)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, _encode_cursor(rows[-1][time_key], rows[-1]["id"]) if more else None

    def _get(self, table: str, row_id: str, field: str) -> dict:
        """The row with this id, looked up as given and in canonical UUID form."""
        rows = self._rows(f"SELECT * FROM {table} WHERE id IN (?, ?) LIMIT 1", v.ref_forms(row_id))
        if not rows:
            raise NotFoundError(f"{field}: no {_NOUN.get(table, table)} with id {row_id}")
        return rows[0]

    def _stamp(self) -> str:
        """Now, but never before a time this store stamped already: rows and
        mirrored events stamped by default come out in commit order even
        when threads race to the write lock.  Call with the write lock held."""
        t = v.now()
        if t < self._last_stamp:
            t = self._last_stamp
        self._last_stamp = t
        return t

    def _insert(self, table: str, row: Mapping[str, object], what: str) -> None:
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        self._insert_many(f"INSERT INTO {table} ({cols}) VALUES ({marks})", (row,), what)

    def _insert_columns(self, sql: str, columns: list, n: int, what: str) -> None:
        """:meth:`_insert_many` for rows given as columns (a list per column,
        or one value for every row), bound in C (sqlite.insert_columns)."""
        try:
            db.insert_columns(self._conn, sql, columns, n)
        except apsw.Error as exc:
            raise self._refused(exc, what) from None

    def _insert_many(self, sql: str, rows: Iterable[apsw.Bindings], what: str) -> None:
        """Run one INSERT for each row; a refused row (a constraint or trigger)
        is a ValidationError naming the store and the operation."""
        try:
            self._conn.executemany(sql, rows)
        except apsw.Error as exc:
            raise self._refused(exc, what) from None

    def _refused(self, exc: apsw.Error, what: str) -> ChronoledgerError:
        """The package's error for an insert SQLite refused."""
        if isinstance(exc, apsw.TooBigError):     # the values were checked: a JSON text made from a caller's dict
            return ValidationError(f"{self.path}: {what}: a value is larger than SQLite stores in one value "
                                   f"({v.MAX_BYTES:,} bytes)")
        err = db.sqlite_error(exc, self.path, what)
        if isinstance(exc, apsw.SQLError):
            # the values were checked already: an SQL error here is a rule of the table (a CHECK or a trigger
            # calling a JSON function on the value) refusing the row, not a schema problem
            err = ValidationError(str(err))
        return err

    def _finish(self, table: str, ref: str, field: str, status: str, time_column: str, when, json_column: str,
                update, started: str) -> dict:
        """End a session, run or step: status, end time, and JSON merged into
        what is stored (keys added or replaced, never removed)."""
        rid = v.check_ref(ref, field)
        end = v.check_time(when, f"{table}.{time_column}", default_now=False)
        update = v.check_json_object(update, f"{table}.{json_column}")
        with self._locked(), self._write(f"ending a {_NOUN[table]}"):
            cur = self._get(table, rid, field)
            if cur[time_column] is not None or (table == "sessions" and cur["status"] in CLOSED_SESSION):
                raise ValidationError(f"{_NOUN[table]} {rid} already ended ({cur['status']}"
                                      + (f" at {cur[time_column]})" if cur[time_column] is not None else ")"))
            end = end or self._stamp()
            _not_before(end, cur["started_at"], f"{table}.{time_column}", started)
            merged = v.merge_json(cur[json_column], update, f"{table}.{json_column}")
            self._conn.execute(f"UPDATE {table} SET status = ?, {time_column} = ?, {json_column} = ? WHERE id = ?",
                               (status, end, merged, cur["id"]))
        return self._get(table, cur["id"], field)



def _check_is_runtime_db(path: Path) -> None:
    """Refuse, before anything is written to it (connect() would switch it to
    WAL), a database that is not a v1 runtime database: it has tables but none
    of the v1 ones, it records a schema version without the v1 tables (e.g. a
    sequence mirror), or a table of a v1 name lacks v1 columns."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        conn = db.open_readonly(path)
    except ChronoledgerError:
        return                                # control flow: connect() reports what is wrong with the file
    try:
        have = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        version = db.user_version(conn)
        if (have and not have & set(TABLES)) or (version and not set(TABLES) <= have):
            raise SchemaError(f"{path}: not a runtime memory database (it holds "
                              f"{', '.join(sorted(have)[:5]) or 'no tables'}"
                              f"{' at schema version %d' % version if version else ''}); it was left as it was")
        latest = db.migrations("chronoledger.runtime")[-1].version
        if version > latest:
            raise SchemaError(f"{path}: schema version {version} is newer than this chronoledger knows ({latest}); "
                              f"upgrade chronoledger to open it (the file was left as it was)")
        if not version:
            _check_v1_columns(conn, [t for t in TABLES if t in have], path)
    except (apsw.NotADBError, apsw.CorruptError) as exc:
        raise db.sqlite_error(exc, path) from None          # named as such; the file is left as it was
    except apsw.Error:
        return                                # control flow: e.g. locked: connect() waits for it and reports
    finally:
        conn.close()


def _check_v1_columns(conn: apsw.Connection, tables: list[str], path: Path) -> None:
    """Every table of a v1 name has the v1 columns, or SchemaError."""
    spec = _spec_columns()
    for table in tables:
        missing = [c for c in spec[table] if c not in db.table_columns(conn, table)]
        if missing:
            raise SchemaError(f"{path}: table {table} lacks the v1 column(s) {', '.join(missing)}; "
                              f"it was not created from the Runtime Memory DB v1 schema")


def _check_tables(tables: Iterable[str] | str) -> list[str]:
    tables = [tables] if isinstance(tables, str) else list(tables)
    for table in tables:
        if table not in TABLES and table not in GOVERNANCE_TABLES:
            raise QueryError(f"unknown table {table!r}; the tables are {', '.join(TABLES)}")
    return tables


def _each(items: Any, field: str, what: str) -> Iterable:
    """A batch argument: any iterable of rows, but not one row (a dict) or text."""
    if isinstance(items, (str, bytes, dict)):
        raise ValidationError(f"{field}: expected an iterable of {what}, got a single {type(items).__name__}")
    try:
        return iter(items)
    except TypeError:
        raise ValidationError(f"{field}: expected an iterable of {what}, got {type(items).__name__}") from None


def _not_before(t: str, start: Any, field: str, what: str) -> None:
    a, b = v.parse_time(t), v.parse_time(start)
    if a is not None and b is not None and a < b:
        raise ValidationError(f"{field}: {t} is before {what} ({start})")


def _release(checkpointer: db.BackgroundCheckpointer | None, conn: apsw.Connection,
             chronicle: Chronicle | None) -> None:
    """Close what a store holds (close() and the finalizer of a dropped store)."""
    try:
        if chronicle is not None:
            chronicle.close()
    finally:
        if checkpointer is not None:
            checkpointer.close()
        conn.close()


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _encode_cursor(t: str, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{t}|{row_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    if not isinstance(cursor, str):
        raise ValidationError(f"cursor: expected the text of a next_cursor, got {type(cursor).__name__}")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        t, row_id = raw.split("|", 1)
        return t, row_id
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(f"cursor: {cursor!r} is not a cursor this store gave out") from None
