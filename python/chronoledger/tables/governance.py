"""Governance of schemas: the decision records, applying an approved change
to a table that already holds rows (without losing any), and the trust
score rule."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import apsw

from chronoledger import sqlite as db
from chronoledger.ids import new_id
from chronoledger.tables import values
from chronoledger.tables.schema import SQL_TYPES, TableSchema, compare, q
from chronoledger.tables.validate import Problem, RowValidator


def new_proposal_id() -> str:
    return "p-" + new_id()


def decision_row(pid: str, table: str, decision_type: str, outcome: str, risk: str, who: str, why: str,
                 changes: list) -> dict:
    """A memory_governance_decisions row: who (decision_maker), what (subject,
    context), why (reasoning), when (created_at, generated), and an audit
    stamp over all of them."""
    subject = f"schema of {table}"
    context = {"proposal_id": pid, "changes": changes}
    return {"decision_type": decision_type, "subject": subject, "context": context,
            "policy_references": ["chronoledger.tables risk rules"], "risk_level": risk, "decision_maker": who,
            "decision_outcome": outcome, "reasoning": why, "conditions": [], "proposal_id": pid, "table_name": table}


#: Our decision words, and the words a governance table that allows others uses for them
#: (Grace's memory_governance_decisions: denied, deferred).
_SYNONYMS = {"rejected": ("denied", "rejected"), "pending": ("deferred", "pending"), "denial": ("denial",),
             "approved": ("approved",), "approval": ("approval",), "escalated": ("escalated",),
             "escalation": ("escalation",)}


def fit_decision(row: dict, gov: TableSchema) -> dict:
    """A decision row made to fit the governance table ``gov`` as it is
    declared: only its fields; our words for outcomes where it allows its
    own (rejected: denied, pending: deferred); a mapping or list as JSON text
    in a text field; and the fields Grace's table requires that ours does
    not have (``decision_id``, ``created_at`` when not generated, a place
    for ``audit_stamp``) filled."""
    out = {}
    for name, value in row.items():
        f = gov.by_name.get(name)
        if f is None:
            continue
        if f.allowed and value not in f.allowed:
            value = next((w for w in _SYNONYMS.get(value, ()) if w in f.allowed), value)
        if f.type in ("string", "text") and isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True, default=str)
        out[name] = value
    f = gov.by_name.get("decision_id")
    if f is not None and not f.generated and "decision_id" not in out:
        out["decision_id"] = new_id()
    f = gov.by_name.get("audit_stamp")
    if f is not None and f.required:
        out["audit_stamp"] = ""             # a place for the stamp, set over the stored row (registry._stamp)
    f = gov.by_name.get("created_at")
    if f is not None and not f.generated and not f.has_default and "created_at" not in out:
        out["created_at"] = values.now()
    return out


def audit_stamp(row: dict) -> str:
    """SHA-256 over every field of a decision but its id and the stamp itself."""
    body = {k: v for k, v in row.items() if k not in ("id", "audit_stamp")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


# --- applying a change to a table with rows -----------------------------------

_IN_PLACE = frozenset({"add_field", "add_index", "drop_index", "describe_field", "describe_table", "rules", "relax_field",
                       "constrain_field"})


def migrate_table(conn: apsw.Connection, old: TableSchema, new: TableSchema, pid: str, now: str) -> str:
    """Bring ``old``'s table to ``new`` inside the caller's transaction.
    Returns "alter" (added columns and indexes, rows untouched) or
    "rebuild" (a new table filled from the old one).  Stored rows that the
    new schema would refuse make it raise ValidationError, naming them;
    values of dropped fields are kept in _registry_archive."""
    changes = compare(old, new)
    if all(c.kind in _IN_PLACE for c in changes) and not _retyped_or_reordered(old, new):
        _check_rows(conn, old, new)
        for c in changes:
            if c.kind == "add_field":
                f = new.by_name[c.field]
                col = f"ALTER TABLE {q(new.name)} ADD COLUMN {q(f.name)} {_sql_type(f.type)}"
                # the stored rows take the default through the column's DEFAULT, not an UPDATE
                # (which an immutable table's trigger would refuse); "now" is the time of the change
                fill = (now if f.type == "datetime" else now[:10]) if f.default_now else f.default
                if fill is not values.MISSING and fill is not None and f.type in ("uuid", "datetime"):
                    fill = values.coerce(f.type, fill, new.stored_form)     # Grace's form in Grace's tables
                if fill is not values.MISSING and fill is not None:
                    col += f" DEFAULT {_literal(fill)}"
                conn.execute(col)
        before, after = old.index_statements(), new.index_statements()
        for name, sql in before.items():
            if after.get(name) != sql:            # gone, or the same name on other fields or uniqueness
                conn.execute(f"DROP INDEX IF EXISTS {q(name)}")
        _create_indexes(conn, new)
        return "alter"
    _rebuild(conn, old, new, pid, now)
    return "rebuild"


def _retyped_or_reordered(old: TableSchema, new: TableSchema) -> bool:
    # ADD COLUMN appends: the new fields must come after the old ones, in order
    names = [f.name for f in new.fields]
    return names[:len(old.fields)] != [f.name for f in old.fields]


def _sql_type(t: str) -> str:
    return SQL_TYPES[t]


def _literal(v: Any) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v) if isinstance(v, float) else str(int(v))


def _check_rows(conn: apsw.Connection, old: TableSchema, new: TableSchema) -> None:
    """Stored rows that the new rules (required, not null, allowed, min/max)
    would refuse: a ValidationError naming the first of them."""
    problems: list[Problem] = []
    pk = q(old.primary_key.name)
    for f in new.fields:
        o = old.by_name.get(f.name)
        col, table = q(f.name), q(new.name)
        if o is None:
            if (f.required or not f.nullable) and not f.has_default:
                n = conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
                if n:
                    problems.append((None, f.name, f"required, and the {n} stored rows have no value: "
                                                   f"give it a default"))
            continue
        checks: list[tuple[str, str, list[object]]] = []       # (condition, why, its parameters)
        if not f.nullable or f.required:
            checks.append((f"{col} IS NULL", "is null", []))
        if f.allowed is not None:
            checks.append((f"{col} IS NOT NULL AND {col} NOT IN ({', '.join('?' * len(f.allowed))})",
                           "is not among the allowed values", list(f.allowed)))
        if f.min is not None:
            checks.append((f"{col} < {float(f.min)!r}", f"is below the minimum {f.min}", []))
        if f.max is not None:
            checks.append((f"{col} > {float(f.max)!r}", f"is above the maximum {f.max}", []))
        if f.unique and not o.unique:
            dup = conn.execute(f"SELECT {col}, count(*) FROM {table} WHERE {col} IS NOT NULL GROUP BY {col} "
                               f"HAVING count(*) > 1 LIMIT 1").fetchall()
            if dup:
                problems.append((None, f.name, f"{dup[0][0]!r} is stored in {dup[0][1]} rows: it cannot be unique"))
        for cond, why, args in checks:
            bad = conn.execute(f"SELECT {pk}, count(*) OVER () FROM {table} WHERE {cond} LIMIT 1", args).fetchall()
            if bad:
                problems.append((None, f.name, f"{why} in {bad[0][1]} stored rows (e.g. {bad[0][0]})"))
    if problems:
        raise RowValidator(new).error("the schema change", problems)


def _rebuild(conn: apsw.Connection, old: TableSchema, new: TableSchema, pid: str, now: str) -> None:
    """A new table with the new schema, filled from the old one (every row
    checked by the new rules; values converted where a field changed type),
    then put in the old one's place."""
    old_cols = [f.name for f in old.fields]
    rows = conn.execute(f"SELECT {', '.join(q(c) for c in old_cols)} FROM {q(old.name)}").fetchall()
    check = RowValidator(new)
    converted: list[dict[str, Any]] = []
    archive: list[tuple[str, str, str, str, str, str]] = []
    problems: list[Problem] = []
    pk_name = old.primary_key.name
    for i, row in enumerate(rows):
        stored = dict(zip(old_cols, row))
        key = str(stored.get(new.primary_key.name, stored[pk_name]))
        data: dict[str, Any] = {}
        for f in new.fields:
            o = old.by_name.get(f.name)
            if o is None:
                continue                          # a new field: its default, or null
            if stored[f.name] is None:
                data[f.name] = None               # kept null (not replaced by a default)
                continue
            value = values.decode(o.type, stored[f.name])
            if o.type != f.type:
                try:
                    value = convert(value, f.type)
                except values.Bad as exc:
                    problems.append((i, f.name, f"row {key}: {value!r} cannot become {f.type}: {exc}"))
                    continue
            data[f.name] = value
        for o in old.fields:
            if o.name not in new.by_name and stored[o.name] is not None:
                archive.append((pid, old.name, key, o.name, json.dumps(values.decode(o.type, stored[o.name]),
                                                                       default=str), now))
        converted.append(data)
    if problems:
        raise RowValidator(new).error("the schema change", problems)
    stored_rows = check.full(converted, now) if converted else []
    tmp = f"_registry_new_{new.name}"[:60]
    conn.execute(f"DROP TABLE IF EXISTS {q(tmp)}")
    conn.execute(new.create_sql(tmp))
    cols = ", ".join(q(f.name) for f in new.fields)
    try:
        conn.executemany(f"INSERT INTO {q(tmp)} ({cols}) VALUES ({', '.join('?' * len(new.fields))})", stored_rows)
    except apsw.ConstraintError as exc:         # kept here: says which change the rows break
        raise db.sqlite_error(exc, None, f"{new.name}: the stored rows break the new schema") from None
    if archive:
        conn.executemany("INSERT INTO _registry_archive (proposal_id, table_name, row_key, field, value_json, "
                         "archived_at) VALUES (?, ?, ?, ?, ?, ?)", archive)
    conn.execute(f"DROP TABLE {q(old.name)}")
    conn.execute(f"ALTER TABLE {q(tmp)} RENAME TO {q(new.name)}")
    _create_indexes(conn, new)


def _create_indexes(conn: apsw.Connection, schema: TableSchema) -> None:
    """The schema's indexes (and an immutable table's triggers), where missing."""
    try:
        for stmt in schema.index_sql():
            conn.execute(stmt)
    except apsw.ConstraintError as exc:         # kept here: says which change the rows break
        raise db.sqlite_error(exc, None, f"{schema.name}: the stored rows break a new unique rule") from None


def convert(value: Any, ftype: str) -> Any:
    """A value of one type as another, for a retyped field: what
    values.coerce accepts, plus text that spells a number or a boolean, and
    numbers as text.  Text becomes a JSON string.  An integer a float cannot
    hold exactly is refused."""
    if ftype == "float" and type(value) is int and float(value) != value:
        raise values.Bad(f"{value} would lose precision as a float")
    try:
        return values.coerce(ftype, value)
    except values.Bad:
        pass
    if isinstance(value, str):
        text = value.strip()
        if ftype == "integer":
            return values.coerce(ftype, int(text)) if text.lstrip("+-").isdigit() else values.coerce(ftype, value)
        if ftype == "float":
            try:
                return values.coerce(ftype, float(text))
            except ValueError:
                raise values.Bad(f"{value!r} is not a number") from None
        if ftype == "boolean" and text.lower() in ("true", "false", "1", "0", "yes", "no"):
            return text.lower() in ("true", "1", "yes")
        if ftype == "json":
            return value                       # text is a JSON string
    if ftype in ("string", "text") and isinstance(value, (int, float, bool, dict, list)):
        return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list, bool)) else str(value)
    return values.coerce(ftype, value)
