"""Adopting a database another program made from the same schema files
(Grace's SQLModel registry, aaron031291/grace_2 backend/memory_tables/
registry.py): which of its tables the schema folders declare, and whether
each table's columns are the ones declared, checked before anything is
written.  The registry then takes the tables as they are (no row is
rewritten) and keeps writing them in Grace's stored forms (values.py).

Grace's registry makes one column per field, NOT NULL unless the field says
``nullable: true``, with SQLAlchemy's column types: a uuid is CHAR(32), a
datetime DATETIME, a json field JSON, a boolean BOOLEAN, text VARCHAR, and a
type it does not know VARCHAR too; the primary key is ``PRIMARY KEY (id)``,
a unique field ``UNIQUE (field)``.  Declared ``indexes:`` are not made by
it (the registry adds them when it adopts: an index changes no row).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import apsw

import dataclasses

from chronoledger import sqlite as db
from chronoledger.tables.schema import SchemaProblem, TableSchema

#: Reserved by the registry: a database holding one of these is ours.
OWN_TABLE = "_registry_tables"

#: The affinity SQLite gives a declared column type (https://sqlite.org/datatype3.html, 3.1):
#: the first rule that matches wins.
_AFFINITY_RULES = ((re.compile("INT"), "INTEGER"), (re.compile("CHAR|CLOB|TEXT"), "TEXT"),
                   (re.compile("BLOB"), "BLOB"), (re.compile("REAL|FLOA|DOUB"), "REAL"))

#: A declared field type -> the affinities of a column that holds its values unchanged.  NUMERIC
#: (DATETIME, JSON, BOOLEAN in Grace's tables) keeps text that does not spell a number as text, and
#: a JSON number as a number (read back as one).
_HOLDS = {"uuid": {"TEXT", "NUMERIC", "BLOB"}, "string": {"TEXT", "NUMERIC", "BLOB"},
          "text": {"TEXT", "NUMERIC", "BLOB"}, "json": {"TEXT", "NUMERIC", "BLOB"},
          "datetime": {"TEXT", "NUMERIC", "BLOB"}, "date": {"TEXT", "NUMERIC", "BLOB"},
          "integer": {"INTEGER", "NUMERIC", "REAL", "BLOB"}, "float": {"REAL", "NUMERIC", "BLOB"},
          "boolean": {"INTEGER", "NUMERIC", "BLOB"}}


def affinity(declared_type: str) -> str:
    """SQLite's affinity of a column declared ``declared_type``."""
    t = declared_type.upper()
    if not t:
        return "BLOB"
    return next((a for rx, a in _AFFINITY_RULES if rx.search(t)), "NUMERIC")


@dataclass
class AdoptionPlan:
    """What adopting a database would do, found without writing to it."""
    path: Path
    tables: dict[str, int] = field(default_factory=dict)      # declared and there: table -> rows it holds
    unique_columns: dict[str, set[str]] = field(default_factory=dict)   # table -> columns already unique
    unmanaged: list[str] = field(default_factory=list)        # there, but no schema file declares them
    #: table -> declared fields it has no column for (Grace's registry never adds a column to a table that
    #: exists: a field added to a file later is missing from the table); adopted without them, then proposed
    missing: dict[str, list[str]] = field(default_factory=dict)
    problems: list[SchemaProblem] = field(default_factory=list)
    #: the schemas the tables were checked against (what adoption then applies)
    schemas: dict[str, TableSchema] = field(default_factory=dict, repr=False)

    def as_found(self, schema: TableSchema) -> TableSchema:
        """``schema`` as the table stands: without the fields it has no
        column for (and the indexes and links that use them)."""
        gone = set(self.missing.get(schema.name, ()))
        if not gone:
            return schema
        return dataclasses.replace(
            schema, fields=tuple(f for f in schema.fields if f.name not in gone),
            indexes=tuple(i for i in schema.indexes if not gone & set(i.fields)),
            relationships=tuple(r for r in schema.relationships if r.field not in gone), by_name={})

    def __str__(self) -> str:
        rows = sum(self.tables.values())
        lines = [f"{self.path}: {_n(len(self.tables), 'table')} to adopt ({_n(rows, 'row')} kept as "
                 f"{'it is' if rows == 1 else 'they are'}), {len(self.unmanaged)} left alone, "
                 f"{_n(len(self.problems), 'problem')}"]
        lines += [f"  left alone (no schema file declares it): {t}" for t in self.unmanaged]
        lines += [f"  {t}: no column yet for {', '.join(f)} (adopted without; loading the schemas proposes them)"
                  for t, f in self.missing.items()]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def _n(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def foreign_tables(path: str | os.PathLike[str], busy_timeout_ms: int = db.DEFAULT_BUSY_TIMEOUT_MS) -> list[str]:
    """The tables of the database at ``path`` if another program made it
    (it has tables, none of them the registry's), else [] (no file, an
    empty one, or the registry's own).  Only reads."""
    p = Path(path)
    try:
        if not p.is_file() or p.stat().st_size == 0:
            return []
    except OSError:
        return []                     # connect() names what is wrong with it
    # (other registries may be writing it: the read waits for them as theirs do)
    conn = db.open_readonly(p, busy_timeout_ms)
    try:
        with db.sqlite_errors(p, "reading its tables"):
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")]
    finally:
        conn.close()
    names = [n for n in names if isinstance(n, str)]
    return [] if OWN_TABLE in names or not names else sorted(names)


def plan(path: str | os.PathLike[str], schemas: dict[str, TableSchema],
         busy_timeout_ms: int = db.DEFAULT_BUSY_TIMEOUT_MS) -> AdoptionPlan:
    """Check each table of the database that ``schemas`` declares: every
    declared field is a column of a type that holds its values, and no
    column is undeclared (a row written without it could not be stored, or
    would lose it); the primary key is the declared one.  Only reads."""
    out = AdoptionPlan(Path(path), schemas=dict(schemas))
    conn = db.open_readonly(path, busy_timeout_ms)
    try:
        with db.sqlite_errors(path, "checking its tables"):
            have = {r[0]: r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                     "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")}
            by_lower = {str(n).lower(): n for n in have}
            for name in sorted(by_lower.values()):
                schema = schemas.get(name)
                if schema is None:
                    out.unmanaged.append(name)
                    continue
                problems, missing = _check_table(conn, schema, str(path))
                if missing:
                    out.missing[name] = missing
                if not problems:
                    problems = _check_rows(conn, schema, str(path), set(missing))
                if problems:
                    out.problems += problems
                    continue
                out.tables[name] = db.expect(conn.execute(f"SELECT count(*) FROM {db.quote_identifier(name)}")
                                             .fetchall()[0][0], int, f"{path}: count of {name}")
                out.unique_columns[name] = _unique_columns(conn, name)
            for name, schema in schemas.items():     # a table declared under another case of its name
                there = by_lower.get(name.lower())
                if there is not None and there != name:
                    out.problems.append(SchemaProblem(str(path), name, None, f"the database names it {there}"))
    finally:
        conn.close()
    return out


def _check_table(conn: apsw.Connection, schema: TableSchema, path: str) -> tuple[list[SchemaProblem], list[str]]:
    """(problems, declared fields without a column)."""
    t = db.quote_identifier(schema.name)
    # PRAGMA table_info: cid, name, type, notnull, dflt_value, pk
    cols = {str(r[1]).lower(): (str(r[1]), str(r[2] or ""), int(r[5] or 0))
            for r in conn.execute(f"PRAGMA table_info({t})")}
    out = []
    missing = []

    def bad(fld: str | None, why: str) -> None:
        out.append(SchemaProblem(path, schema.name, fld, why))

    declared = {f.name.lower() for f in schema.fields}
    for f in schema.fields:
        col = cols.get(f.name.lower())
        if col is None:
            if f.primary_key:
                bad(f.name, f"the declared primary key ({f.type}) is not a column of the table")
            else:
                missing.append(f.name)
            continue
        name, ctype, pk = col
        if name != f.name:
            bad(f.name, f"the table names the column {name}")
        aff = affinity(ctype)
        if aff not in _HOLDS[f.type]:
            bad(f.name, f"declared {f.type} but the column is {ctype or 'untyped'} ({aff} affinity, which "
                        f"would change such values)")
        if f.primary_key and not pk:
            bad(f.name, "declared the primary key but the table's primary key is not this column")
        if pk and not f.primary_key:
            bad(f.name, "the table's primary key, but not declared primary_key")
    for low, (name, ctype, _pk) in cols.items():
        if low not in declared:
            bad(name, f"a column of the table ({ctype or 'untyped'}) that the schema does not declare")
    if sum(1 for c in cols.values() if c[2]) > 1:
        bad(None, "the table's primary key has several columns; a schema declares one")
    return out, missing


def _check_rows(conn: apsw.Connection, schema: TableSchema, path: str, missing: set[str]) -> list[SchemaProblem]:
    """What the stored rows would break: a declared unique field or index
    holding a value twice (the index adoption adds would fail), JSON fields
    holding text that is not JSON (reads would fail)."""
    t = db.quote_identifier(schema.name)
    out = []
    groups: list[tuple[str, ...]] = [(f.name,) for f in schema.fields if f.unique and not f.primary_key]
    groups += [ix.fields for ix in schema.indexes if ix.unique]
    for cols in groups:
        if set(cols) & missing:
            continue
        names = ", ".join(db.quote_identifier(c) for c in cols)
        nonnull = " AND ".join(f"{db.quote_identifier(c)} IS NOT NULL" for c in cols)
        dup = conn.execute(f"SELECT {names}, count(*) FROM {t} WHERE {nonnull} GROUP BY {names} HAVING count(*) > 1 "
                           f"LIMIT 1").fetchall()
        if dup:
            shown = dup[0][0] if len(cols) == 1 else tuple(dup[0][:-1])
            out.append(SchemaProblem(path, schema.name, ", ".join(cols),
                                     f"declared unique, but {dup[0][-1]} rows hold {shown!r}"))
    for f in schema.fields:
        if f.type != "json" or f.name in missing:
            continue
        c = db.quote_identifier(f.name)
        bad = conn.execute(f"SELECT rowid, {c} FROM {t} WHERE typeof({c}) = 'text' AND NOT json_valid({c}) "
                           f"LIMIT 1").fetchall()
        if bad:
            n = conn.execute(f"SELECT count(*) FROM {t} WHERE typeof({c}) = 'text' AND NOT json_valid({c})"
                             ).fetchall()[0][0]
            out.append(SchemaProblem(path, schema.name, f.name, f"declared json, but {n} rows hold text that is not "
                                                                f"JSON (rowid {bad[0][0]}: {str(bad[0][1])[:40]!r})"))
    return out


def _unique_columns(conn: apsw.Connection, table: str) -> set[str]:
    """Columns a one-column unique index or constraint already covers."""
    out = set()
    for r in conn.execute(f"PRAGMA index_list({db.quote_identifier(table)})"):
        # seq, name, unique, origin, partial
        if r[2] and not r[4]:
            cols = [c[2] for c in conn.execute(f"PRAGMA index_info({db.quote_found_name(str(r[1]))})")]
            if len(cols) == 1 and isinstance(cols[0], str):
                out.add(cols[0])
    return out
