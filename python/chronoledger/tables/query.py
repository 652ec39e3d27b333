"""Filters, ordering and paging turned into SQL: every field name checked
against the schema and quoted, every value a bound parameter in its stored
form.

A filter is a mapping; its entries combine with AND:

- ``{"status": "failed"}``: equality (``None``: IS NULL);
- ``{"duration_ms": {"gt": 100, "le": 500}}``: operators (eq, ne, lt, le,
  gt, ge, in, not_in, like, is_null, contains), several on one field ANDed;
- ``{"trigger_conditions": {"error_type": "ConnectionError"}}``: on a json
  field, a mapping whose keys are not all operator names is a containment
  test (the same as ``{"contains": {...}}``);
- ``{"or": [filter, filter, ...]}``: any of the filters (each itself ANDed);
  ``{"and": [...]}`` is accepted too.

``contains`` on a json field is containment as PostgreSQL's ``@>`` defines
it: an object contains another if every key of the other is present with a
contained value; an array contains a value that one of its elements
contains, or an array each of whose elements it contains; scalars are equal.
On a text field ``contains`` is a substring test.
"""

from __future__ import annotations

import json
from typing import Any

from chronoledger.errors import QueryError
from chronoledger.tables import values
from chronoledger.tables.schema import TableSchema, q

OPERATORS = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "like", "is_null", "contains"})
_COMPARE = {"eq": "=", "ne": "IS NOT", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def where_clause(schema: TableSchema, filters: Any) -> tuple[str, list]:
    """(" WHERE ...", params), or ("", []) for no filters."""
    if filters is None or filters == {}:
        return "", []
    params: list = []
    sql = _group(schema, filters, params, "filters")
    return f" WHERE {sql}", params


def _group(schema: TableSchema, filters: Any, params: list, where: str) -> str:
    if not isinstance(filters, dict):
        raise QueryError(f"{schema.name}: {where} must be a mapping of field names to conditions, "
                         f"got {type(filters).__name__}")
    parts = []
    for key, cond in filters.items():
        if key in ("or", "and"):
            if not isinstance(cond, list) or not cond:
                raise QueryError(f"{schema.name}: {where}.{key} must be a non-empty list of filters")
            subs = [f"({_group(schema, c, params, f'{where}.{key}[{i}]')})" for i, c in enumerate(cond)]
            parts.append("(" + f" {key.upper()} ".join(subs) + ")")
            continue
        f = schema.by_name.get(key) if isinstance(key, str) else None
        if f is None:
            raise QueryError(f"{schema.name}: unknown field {key!r} in {where} "
                             f"(the fields are {', '.join(schema.by_name)})")
        if isinstance(cond, dict) and cond and all(isinstance(k, str) and k in OPERATORS for k in cond):
            for op, v in cond.items():
                parts.append(_condition(schema, f, op, v, params))
        elif isinstance(cond, dict) and f.type == "json":
            parts.append(_condition(schema, f, "contains", cond, params))
        elif isinstance(cond, dict):
            bad = sorted(str(k) for k in cond if k not in OPERATORS)
            raise QueryError(f"{schema.name}: {key}: unknown operator {', '.join(bad)} "
                             f"(operators: {', '.join(sorted(OPERATORS))})")
        else:
            parts.append(_condition(schema, f, "eq", cond, params))
    return " AND ".join(parts) if parts else "1"


def _value(schema: TableSchema, f, v: Any, op: str) -> Any:
    # (a JSON value to compare with is only text to compare: the limits of storing one do not apply)
    form = schema.stored_form if f.type != "json" else "chronoledger"
    try:
        return values.coerce(f.type, v, form)
    except values.Bad as exc:
        raise QueryError(f"{schema.name}: {f.name} {op}: {exc}") from None


def _condition(schema: TableSchema, f, op: str, v: Any, params: list) -> str:
    compile_op = _OPERATOR_SQL.get(op)
    if compile_op is None:
        raise QueryError(f"{schema.name}: {f.name}: unknown operator {op!r} "
                         f"(operators: {', '.join(sorted(OPERATORS))})")
    return compile_op(schema, f, op, q(f.name), v, params)


# Each operator's SQL: (schema, field, operator, quoted column, value, params to append to) -> the condition.

def _equality(schema: TableSchema, f, op: str, col: str, v: Any, params: list) -> str:
    if v is None:
        return f"{col} IS {'NOT ' if op == 'ne' else ''}NULL"
    params.append(_value(schema, f, v, op))
    if f.type == "json" and schema.stored_form != "chronoledger":
        # JSON another program wrote is not in our one text form (sorted keys, compact)
        return f"json_equal({col}, ?)" if op == "eq" else f"NOT json_equal({col}, ?)"
    return f"{col} = ?" if op == "eq" else f"({col} IS NOT ?)"


def _comparison(schema: TableSchema, f, op: str, col: str, v: Any, params: list) -> str:
    if f.type in ("json", "boolean"):
        raise QueryError(f"{schema.name}: {f.name}: {op} does not apply to a {f.type} field")
    params.append(_value(schema, f, v, op))
    return f"{col} {_COMPARE[op]} ?"


def _membership(schema: TableSchema, f, op: str, col: str, v: Any, params: list) -> str:
    if not isinstance(v, (list, tuple, set, frozenset)):
        raise QueryError(f"{schema.name}: {f.name} {op}: expected a list of values")
    if not v:
        return "0" if op == "in" else "1"
    items = [_value(schema, f, x, op) for x in v if x is not None]
    sql = ""
    if items and f.type == "json" and schema.stored_form != "chronoledger":
        params.extend(items)             # JSON another program wrote: compared as values (see _equality)
        any_equal = " OR ".join(f"json_equal({col}, ?)" for _ in items)
        sql = f"({any_equal})" if op == "in" else f"NOT ({any_equal})"
    elif items:
        params.extend(items)
        sql = f"{col} {'NOT ' if op == 'not_in' else ''}IN ({', '.join('?' * len(items))})"
    if any(x is None for x in v):
        return (f"({sql} OR {col} IS NULL)" if sql else f"{col} IS NULL") if op == "in" else \
            (f"({sql} AND {col} IS NOT NULL)" if sql else f"{col} IS NOT NULL")
    return f"({sql} OR {col} IS NULL)" if op == "not_in" else sql      # NULL is not in any list


def _like(schema: TableSchema, f, op: str, col: str, v: Any, params: list) -> str:
    if not isinstance(v, str):
        raise QueryError(f"{schema.name}: {f.name} like: expected a pattern (text with % and _)")
    if f.type == "uuid" and schema.stored_form == "grace":
        v = v.replace("-", "")           # Grace's ids have no hyphens: a pattern written with them still finds
    params.append(_value(schema, f, v, op) if f.type in ("string", "text") else v)
    return f"{col} LIKE ?"


def _is_null(schema: TableSchema, f, op: str, col: str, v: Any, params: list) -> str:
    if not isinstance(v, bool):
        raise QueryError(f"{schema.name}: {f.name} is_null: expected true or false")
    return f"{col} IS {'' if v else 'NOT '}NULL"


def _containment(schema: TableSchema, f, op: str, col: str, v: Any, params: list) -> str:
    if f.type == "json":
        try:
            params.append(values.coerce("json", v))
        except values.Bad as exc:
            raise QueryError(f"{schema.name}: {f.name} contains: {exc}") from None
        return f"json_contains({col}, ?)"
    if f.type in ("string", "text"):
        if not isinstance(v, str):
            raise QueryError(f"{schema.name}: {f.name} contains: expected text")
        params.append(v)
        return f"instr({col}, ?) > 0"
    raise QueryError(f"{schema.name}: {f.name}: contains applies to json and text fields")


_OPERATOR_SQL = {"eq": _equality, "ne": _equality, "lt": _comparison, "le": _comparison, "gt": _comparison,
                 "ge": _comparison, "in": _membership, "not_in": _membership, "like": _like, "is_null": _is_null,
                 "contains": _containment}


def order_clause(schema: TableSchema, order_by: Any) -> str:
    """ORDER BY from "field", "-field", "field desc" or a list of them."""
    if order_by is None or order_by == [] or order_by == "":
        return ""
    items = [order_by] if isinstance(order_by, str) else order_by
    if not isinstance(items, (list, tuple)):
        raise QueryError(f"{schema.name}: order_by must be a field name or a list of them")
    parts = []
    for item in items:
        if not isinstance(item, str):
            raise QueryError(f"{schema.name}: order_by: {item!r} is not a field name")
        words = item.split()
        name, desc = words[0] if words else "", False
        if name.startswith("-"):
            name, desc = name[1:], True
        if len(words) == 2 and words[1].lower() in ("asc", "desc"):
            desc = words[1].lower() == "desc"
        elif len(words) > 1:
            raise QueryError(f"{schema.name}: order_by: {item!r} (write 'field', '-field' or 'field desc')")
        if name not in schema.by_name:
            raise QueryError(f"{schema.name}: order_by: unknown field {name!r}")
        parts.append(f"{q(name)}{' DESC' if desc else ''}")
    return " ORDER BY " + ", ".join(parts)


def page_clause(limit: Any, offset: Any) -> tuple[str, list]:
    for name, v in (("limit", limit), ("offset", offset)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2 ** 63):
            raise QueryError(f"{name} must be a whole number from 0 to 2**63 - 1, got {v!r}")
    if limit is None and not offset:
        return "", []
    return " LIMIT ? OFFSET ?", [-1 if limit is None else limit, offset or 0]


def json_contains(doc_text: Any, needle_text: Any) -> int:
    """SQL json_contains(doc, needle): PostgreSQL's @> on JSON texts (NULL or bad JSON: 0)."""
    if doc_text is None or needle_text is None:
        return 0
    try:
        return int(_contains(_parsed(doc_text), _parsed(needle_text), True))
    except (ValueError, TypeError):
        return 0


def json_equal(a_text: Any, b_text: Any) -> int:
    """SQL json_equal(a, b): the two JSON texts hold the same value, whatever
    their spacing and key order (NULL or bad JSON: 0)."""
    if a_text is None or b_text is None:
        return 0
    try:
        return int(_same(_parsed(a_text), _parsed(b_text)))
    except (ValueError, TypeError):
        return 0


def _parsed(stored: Any) -> Any:
    # a JSON number in a column of numeric affinity (Grace's JSON columns) is stored as a number
    return json.loads(stored) if isinstance(stored, str) else stored if isinstance(stored, (int, float)) else \
        json.loads(bytes(stored))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return _scalar_eq(a, b)


def _contains(doc: Any, needle: Any, top: bool) -> bool:
    if isinstance(needle, dict):
        return isinstance(doc, dict) and all(k in doc and _contains(doc[k], v, False) for k, v in needle.items())
    if isinstance(doc, list):
        if isinstance(needle, list):
            return all(any(_contains(d, n, False) for d in doc) for n in needle)
        return top and any(_scalar_eq(d, needle) for d in doc)    # an array contains a scalar at the top level
    if isinstance(needle, list):
        return False
    return _scalar_eq(doc, needle)


def _scalar_eq(a: Any, b: Any) -> bool:
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b
