"""The state and plumbing the parts of a TableRegistry share: the SQLite
connection and its lock, the applied schemas (read again when another
process changes them), a validated row stored, an outbox entry."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Protocol

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import ChronoledgerError, NotFoundError, QueryError, SchemaError, ValidationError
from chronoledger.tables import governance, values
from chronoledger.tables.schema import SchemaProblem, TableSchema, parse_schema, q
from chronoledger.tables.validate import Problem, RowValidator


#: The packaged catalogue (python/chronoledger/tables/schemas/).
CATALOGUE = "chronoledger.tables"
GOVERNANCE_TABLE = "memory_governance_decisions"
#: Tables whose schema changes are always high risk.
GOVERNANCE_TABLES = frozenset({GOVERNANCE_TABLE})
#: The registry connection's page cache ceiling, in KiB (filled only as pages are read).
CACHE_KIB = 64 * 1024
_logger = logging.getLogger("chronoledger.tables")


class _Wakes(Protocol):
    """The publisher as the parts see it (publishing.py's _Publisher)."""

    def wake(self) -> None: ...

    def close(self) -> None: ...


class RegistryCore(db.StoreHandle):
    """The connection, its lock, the applied schemas and the few writes every part
    makes (a validated row stored, an outbox entry): what the parts of
    :class:`~chronoledger.tables.TableRegistry` share."""

    noun = "registry"
    # the state every part shares, set by TableRegistry.__init__
    path: Path
    schema_dirs: list[Path]
    catalogue: bool
    notices: list[str]
    actor: str
    busy_timeout_ms: int
    problems: list[SchemaProblem]
    events_log: Path | None
    _lock: threading.RLock
    _publishing: threading.Lock
    _db: apsw.Connection | None
    _applied: dict[str, TableSchema]
    _validators: dict[str, RowValidator]
    _version: tuple
    _checkpointer: db.BackgroundCheckpointer
    _publisher: _Wakes

    def _refresh(self) -> None:
        """The applied schemas, as stored (another process may have changed
        them): the version key and the schemas are read from one snapshot, so
        a change committed in between is not marked seen without being loaded."""
        own = self._conn.getautocommit()
        if own:
            self._conn.execute("BEGIN")
        try:
            version = self._data_version()
            rows = self._conn.execute("SELECT table_name, schema_json, source FROM _registry_tables").fetchall()
        finally:
            if own:
                self._conn.execute("COMMIT")
        applied: dict[str, TableSchema] = {}
        where = f"{self.path}: _registry_tables"
        for name, text, source in rows:
            name = db.expect(name, str, f"{where}.table_name")
            text = db.expect(text, str, f"{where}.schema_json ({name})")
            source = db.expect(source, (str, type(None)), f"{where}.source ({name})")
            schema, problems = parse_schema(json.loads(text), source or f"{self.path}:_registry_tables", stored=True)
            if schema is None:
                raise SchemaError(f"{self.path}: the applied schema of {name} cannot be read: "
                                  + "; ".join(map(str, problems)))
            applied[name] = schema
        self._applied = applied
        self._validators = {n: RowValidator(s) for n, s in applied.items()}
        self._version = version

    def _data_version(self) -> tuple:
        return tuple(self._conn.execute("SELECT count(*), max(applied_at) FROM _registry_history").fetchall()[0])

    def _check_open(self) -> None:
        if self._db is None:
            raise ChronoledgerError(f"{self.path}: the registry is closed")

    def _refresh_if_changed(self) -> None:
        if self._data_version() != self._version:
            self._refresh()

    def _current(self, table: Any) -> tuple[TableSchema, RowValidator]:
        self._check_open()
        if not isinstance(table, str):
            raise QueryError(f"a table name is text, got {type(table).__name__}")
        self._refresh_if_changed()
        schema = self._applied.get(table)
        if schema is None:
            raise NotFoundError(f"{self.path}: no table {table!r} (the tables are {', '.join(sorted(self._applied))})")
        return schema, self._validators[table]

    def tables(self) -> list[str]:
        """The names of the applied tables."""
        with self._locked():
            self._check_open()
            self._refresh_if_changed()
            return sorted(self._applied)

    def schema(self, table: str) -> TableSchema:
        """The schema applied to ``table`` now."""
        with self._locked():
            return self._current(table)[0]

    def _outbox(self, table: str, op: str, ids: list, now: str) -> None:
        if self.events_log is not None:
            self._conn.execute("INSERT INTO _registry_outbox (ts, table_name, operation, row_ids) VALUES (?, ?, ?, ?)",
                               (now, table, op, json.dumps(ids, default=str)))

    def _after_write(self) -> None:
        """After a commit: the WAL checkpoint, and the publisher woken.  The
        outbox (committed with the rows) already holds the events, so the
        log is written a moment later from the publisher's thread, a burst
        of writes at a time: a write never waits for the log, and a log that
        cannot be written (held by another process, a full disk) leaves the
        events in the outbox for later, with a warning, never an error."""
        self._checkpointer.after_commit()
        if self.events_log is not None:
            self._publisher.wake()

    def _insert_stored(self, schema: TableSchema, stored: list[list]) -> None:
        pk = schema.primary_key
        if pk.generated and pk.type == "integer":
            # numbered from _registry_sequences, so a deleted row's number is never given again
            i = [f.name for f in schema.fields].index(pk.name)
            last = self._conn.execute("SELECT last FROM _registry_sequences WHERE table_name = ?",
                                      (schema.name,)).fetchall()
            given = self._conn.execute(f"SELECT coalesce(max({q(pk.name)}), 0) FROM {q(schema.name)}").fetchall()
            # (an INTEGER PRIMARY KEY column holds integers only)
            nxt = max(db.expect(last[0][0], int, f"{self.path}: _registry_sequences.last") if last else 0,
                      db.expect(given[0][0], int, f"{self.path}: {schema.name}.{pk.name}")) + 1
            for r in stored:
                if r[i] is None:
                    r[i] = nxt
                nxt = max(nxt, r[i] + 1)
            if nxt - 1 > values.INT64_MAX:
                raise ValidationError(f"{schema.name}: {pk.name}: the numbers of the generated key are used up",
                                      [(None, pk.name, "no more numbers")])
            self._conn.execute("INSERT INTO _registry_sequences (table_name, last) VALUES (?, ?) "
                               "ON CONFLICT (table_name) DO UPDATE SET last = excluded.last", (schema.name, nxt - 1))
        cols = ", ".join(q(f.name) for f in schema.fields)
        sql = f"INSERT INTO {q(schema.name)} ({cols}) VALUES ({', '.join('?' * len(schema.fields))})"
        try:
            self._conn.executemany(sql, stored)
        except apsw.ConstraintError as exc:     # kept here: the message names the field and the row
            raise self._constraint_error(schema, exc, stored) from None

    def _constraint_error(self, schema: TableSchema, exc: apsw.ConstraintError, stored: list | None) -> ValidationError:
        text = str(exc)
        fields = []
        if getattr(exc, "extendedresult", None) in (apsw.SQLITE_CONSTRAINT_UNIQUE, apsw.SQLITE_CONSTRAINT_PRIMARYKEY):
            # which fields: SQLite names them only in its text ("UNIQUE constraint failed: t.a, t.b"); a
            # text worded otherwise finds none, and the message below is the general one
            for part in text.split(":", 1)[-1].split(","):
                name = part.strip().rsplit(".", 1)[-1]
                if name in schema.by_name:
                    fields.append(name)
        if not fields:
            error = db.sqlite_error(exc, self.path, schema.name)
            assert isinstance(error, ValidationError)           # what the table maps a ConstraintError to
            return error
        problems: list[Problem] = [(None, f, "a row with this value is already stored (unique)") for f in fields]
        if stored is not None:
            cols = [f.name for f in schema.fields]
            idx = [cols.index(f) for f in fields]
            seen: dict = {}
            for i, r in enumerate(stored):
                k = tuple(r[j] for j in idx)
                if k in seen:
                    problems = [(i, ", ".join(fields), f"{k if len(k) > 1 else k[0]!r} repeats row {seen[k]} "
                                                       f"of this batch (unique)")]
                    break
                seen[k] = i
            else:
                where = " AND ".join(f"{q(f)} = ?" for f in fields)
                for i, r in enumerate(stored):
                    k = tuple(r[j] for j in idx)
                    if self._conn.execute(f"SELECT 1 FROM {q(schema.name)} WHERE {where}", k).fetchall():
                        problems = [(i if len(stored) > 1 else None, ", ".join(fields),
                                     f"{k if len(k) > 1 else k[0]!r} is already stored (unique)")]
                        break
        return RowValidator(schema).error("write", problems)


def _refuse_registry_fields(rows: list, check: RowValidator) -> None:
    """A decision's time and audit stamp are the registry's to set, so that
    a stamp always matches its decision and no decision is backdated."""
    problems: list[Problem] = [(i if len(rows) > 1 else None, k, "set by the registry")
                               for i, r in enumerate(rows) if isinstance(r, dict) for k in ("created_at", "audit_stamp")
                               if r.get(k) is not None]
    if problems:
        raise check.error("insert", problems)


def _stamp(stored: list[list], check: RowValidator) -> None:
    if "audit_stamp" not in check.columns:
        return
    i = check.columns.index("audit_stamp")
    as_json = check.schema.by_name["audit_stamp"].type == "json"      # Grace's: a JSON value
    for r in stored:
        stamp = governance.audit_stamp(check.decode_row(r))
        r[i] = json.dumps(stamp) if as_json else stamp


def _cols(schema: TableSchema) -> str:
    return ", ".join(q(f.name) for f in schema.fields)
