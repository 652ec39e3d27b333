"""The rows of the registry's tables: every write checked against the
schema applied when it runs, in one transaction with its outbox entry;
every read built from checked names and bound values.  docs/tables.md,
"Writing rows" and "Queries"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import NotFoundError, QueryError, ValidationError
from chronoledger.tables import query as qb
from chronoledger.tables import values
from chronoledger.tables.core import GOVERNANCE_TABLE, RegistryCore, _cols, _refuse_registry_fields, _stamp
from chronoledger.tables.schema import TableSchema, q
from chronoledger.tables.validate import RowValidator


class Rows(RegistryCore):
    """Validated writes and filtered reads of the rows of the tables."""

    def insert_row(self, table: str, data: dict) -> dict:
        """Insert one row; returns it as stored (generated id and times, defaults filled)."""
        return self.insert_rows(table, [data])[0]

    def insert_rows(self, table: str, rows: list[dict]) -> list[dict]:
        """Insert rows in one transaction: all or none.  ValidationError lists
        every bad field of every row (by index) before anything is written.
        Returns the rows as stored (:meth:`insert_all` does not read them back)."""
        stored, check = self._insert(table, rows)
        return [check.decode_row(r) for r in stored]

    def insert_all(self, table: str, rows: list[dict]) -> int:
        """:meth:`insert_rows` without returning the rows (which a bulk load
        does not need: reading them back is about a sixth of its time); returns
        how many were inserted."""
        return len(self._insert(table, rows)[0])

    def _insert(self, table: str, rows: list[dict]) -> tuple[list[list], RowValidator]:
        if not isinstance(rows, (list, tuple)):
            raise ValidationError(f"{table}: inserting takes a list of rows, got {type(rows).__name__}")
        if not rows:
            with self._locked():
                return [], self._current(table)[1]
        with self._locked():
            with db.write_transaction(self._conn, f"{self.path}: insert into {table}"):
                schema, check = self._current(table)
                now = values.now()
                if table == GOVERNANCE_TABLE:
                    _refuse_registry_fields(rows, check)
                stored = check.full(rows, now)
                if table == GOVERNANCE_TABLE:
                    _stamp(stored, check)
                self._insert_stored(schema, stored)
                pk = check.columns.index(schema.primary_key.name)
                self._outbox(table, "insert", [r[pk] for r in stored], now)
            self._after_write()
            return stored, check

    def upsert_row(self, table: str, data: dict, *, on: str | None = None) -> dict:
        """Insert ``data``, or update the row with the same primary key, or
        the same value of the unique field ``on`` (default: the primary key
        if ``data`` has it, else the first unique field it has).  Generated
        fields in ``data`` (created_at...) are ignored by an update.
        Returns the stored row."""
        if not isinstance(data, dict):
            raise ValidationError(f"{table}: a row is a mapping of field names to values, got {type(data).__name__}")
        with self._locked():
            with db.write_transaction(self._conn, f"{self.path}: upsert into {table}"):
                schema, check = self._current(table)
                key = on or _upsert_key(schema, data)
                f = schema.by_name.get(key)
                if f is None or not (f.primary_key or f.unique):
                    raise QueryError(f"{table}: upsert needs the primary key or a unique field, got {key!r}")
                if data.get(key) is None:
                    raise ValidationError(f"{table}: upsert on {key}: the row has no {key}", [(None, key, "missing")])
                try:
                    value = values.coerce(f.type, data[key], schema.stored_form)
                except values.Bad as exc:
                    raise ValidationError(f"{table}: {key}: {exc}", [(None, key, str(exc))]) from None
                now = values.now()
                found = self._conn.execute(f"SELECT {q(schema.primary_key.name)} FROM {q(table)} WHERE {q(key)} = ?",
                                           (value,)).fetchall()
                if not found:
                    stored = check.full([data], now)
                    self._insert_stored(schema, stored)
                    pk = stored[0][check.columns.index(schema.primary_key.name)]
                    self._outbox(table, "insert", [pk], now)
                else:
                    if schema.immutable:
                        raise ValidationError(f"{table} is immutable: rows are never updated")
                    pk = found[0][0]
                    changes = {k: v for k, v in data.items() if k != schema.primary_key.name and k != key
                               and not (k in schema.by_name and schema.by_name[k].generated)}
                    self._update_stored(schema, check.partial(changes, now) if changes else
                                        check.partial({}, now, allow_empty=True), [pk])
                    self._outbox(table, "update", [pk], now)
            self._after_write()
            return self.get_row(table, pk)

    def update_rows(self, table: str, filters: dict, changes: dict, *, all_rows: bool = False) -> int:
        """Set ``changes`` on every row ``filters`` matches (filters as in
        :meth:`query_rows`; empty filters need ``all_rows=True``).  Returns
        how many rows changed.  Refused on immutable tables, and for the
        primary key and generated fields."""
        with self._locked():
            with db.write_transaction(self._conn, f"{self.path}: update {table}"):
                schema, check = self._current(table)
                pks = self._matching_keys(schema, filters, all_rows, "updated")
                now = values.now()
                stored = check.partial(changes, now)
                if pks:
                    self._update_stored(schema, stored, pks)
                    self._outbox(table, "update", pks, now)
            self._after_write()
            return len(pks)

    def _update_stored(self, schema: TableSchema, stored: dict, pks: list) -> None:
        if not stored:
            return
        sets = ", ".join(f"{q(k)} = ?" for k in stored)
        sql = f"UPDATE {q(schema.name)} SET {sets} WHERE {q(schema.primary_key.name)} = ?"
        args = list(stored.values())
        try:
            self._conn.executemany(sql, [args + [pk] for pk in pks])
        except apsw.ConstraintError as exc:     # kept here: the message names the field
            raise self._constraint_error(schema, exc, None) from None

    def delete_rows(self, table: str, filters: dict, *, all_rows: bool = False) -> int:
        """Delete the rows ``filters`` matches; returns how many.  Refused on
        immutable tables (the governance decisions)."""
        with self._locked():
            with db.write_transaction(self._conn, f"{self.path}: delete from {table}"):
                schema, _ = self._current(table)
                pks = self._matching_keys(schema, filters, all_rows, "deleted")
                now = values.now()
                if pks:
                    self._conn.executemany(f"DELETE FROM {q(table)} WHERE {q(schema.primary_key.name)} = ?",
                                           [(pk,) for pk in pks])
                    self._outbox(table, "delete", pks, now)
            self._after_write()
            return len(pks)

    def _matching_keys(self, schema: TableSchema, filters: Any, all_rows: bool, what: str) -> list:
        """The primary keys of the rows an update or delete touches."""
        if schema.immutable:
            raise ValidationError(f"{schema.name} is immutable: rows are never {what}")
        if not filters and not all_rows:
            raise QueryError(f"{schema.name}: rows {what} without filters would be every row; pass filters, "
                             f"or all_rows=True")
        where, params = qb.where_clause(schema, filters)
        return [r[0] for r in self._conn.execute(f"SELECT {q(schema.primary_key.name)} FROM {q(schema.name)}{where}",
                                                 params)]

    def get_row(self, table: str, key: Any) -> dict:
        """The row whose primary key is ``key``; NotFoundError if there is none."""
        with self._locked():
            schema, check = self._current(table)
            pk = schema.primary_key
            try:
                value = values.coerce(pk.type, key, schema.stored_form)
            except values.Bad as exc:
                raise QueryError(f"{table}: {pk.name}: {exc}") from None
            rows = self._conn.execute(f"SELECT {_cols(schema)} FROM {q(table)} WHERE {q(pk.name)} = ?",
                                      (value,)).fetchall()
            if not rows:
                raise NotFoundError(f"{table}: no row with {pk.name} = {key!r}")
            return check.decode_row(rows[0])

    def query_rows(self, table: str, filters: dict | None = None, order_by: Any = None, limit: int | None = None,
                   offset: int | None = None) -> list[dict]:
        """Rows matching ``filters`` (see chronoledger.tables.query), in
        ``order_by`` order ("field", "-field", "field desc", or a list),
        ``limit`` and ``offset`` for paging.  Every name is checked against
        the schema and every value is bound."""
        with self._locked():
            schema, check = self._current(table)
            where, params = qb.where_clause(schema, filters)
            order = qb.order_clause(schema, order_by)
            page, more = qb.page_clause(limit, offset)
            sql = f"SELECT {_cols(schema)} FROM {q(table)}{where}{order}{page}"
            try:
                return [check.decode_row(r) for r in self._conn.execute(sql, params + more)]
            except apsw.SQLError as exc:        # the filters are the caller's: a QueryError, not a SchemaError
                raise db.sqlite_error(exc, self.path, table, query=True) from None

    def iter_rows(self, table: str, filters: dict | None = None, *, batch: int = 1000) -> Iterator[dict]:
        """Every row matching ``filters``, in primary-key order, read
        ``batch`` rows at a time (memory does not grow with the table; the
        registry is not held between batches, so rows written meanwhile may
        or may not be seen)."""
        if batch < 1:
            raise ValueError(f"iter_rows: batch must be at least 1, got {batch!r}")
        last: Any = None
        while True:
            with self._locked():
                schema, check = self._current(table)
                where, params = qb.where_clause(schema, filters)
                pk = schema.primary_key.name
                cond = where[len(" WHERE "):] if where else ""
                if last is not None:
                    cond = f"({cond}) AND {q(pk)} > ?" if cond else f"{q(pk)} > ?"
                    params = [*params, last]
                sql = (f"SELECT {_cols(schema)} FROM {q(table)}{' WHERE ' + cond if cond else ''} "
                       f"ORDER BY {q(pk)} LIMIT {int(batch)}")
                try:
                    rows = self._conn.execute(sql, params).fetchall()
                except apsw.SQLError as exc:
                    raise db.sqlite_error(exc, self.path, table, query=True) from None
                decoded = [check.decode_row(r) for r in rows]
                k = check.columns.index(pk)
            yield from decoded
            if len(rows) < batch:
                return
            last = rows[-1][k]

    def count_rows(self, table: str, filters: dict | None = None) -> int:
        """How many rows match ``filters``."""
        with self._locked():
            schema, _ = self._current(table)
            where, params = qb.where_clause(schema, filters)
            return db.expect(self._conn.execute(f"SELECT count(*) FROM {q(table)}{where}", params).fetchall()[0][0],
                             int, f"{self.path}: count(*)")

    def execute_sql(self, sql: str, params: Any = ()) -> list[dict]:
        """A read-only SQL statement (the specification's example queries);
        anything that would write is refused."""
        with self._locked():
            def authorizer(op, *args):
                if op in (apsw.SQLITE_SELECT, apsw.SQLITE_READ, apsw.SQLITE_FUNCTION, apsw.SQLITE_RECURSIVE):
                    return apsw.SQLITE_OK
                return apsw.SQLITE_DENY
            prev = self._conn.authorizer
            self._conn.authorizer = authorizer
            try:
                cur = self._conn.execute(sql, params)
                try:
                    names = [d[0] for d in cur.getdescription()]
                except apsw.ExecutionCompleteError:      # control flow: no rows
                    return []
                rows = cur.fetchall()
            except apsw.Error as exc:                    # the caller's SQL: refused or failed is a QueryError
                raise db.sqlite_error(exc, self.path, "execute_sql", query=True) from None
            finally:
                self._conn.authorizer = prev
            return [dict(zip(names, r)) for r in rows]


def _upsert_key(schema: TableSchema, data: dict) -> str:
    pk = schema.primary_key.name
    if data.get(pk) is not None:
        return pk
    for f in schema.fields:
        if f.unique and data.get(f.name) is not None:
            return f.name
    return pk
