"""The one validation layer every write goes through: a table's rules
(types, required, nullable, allowed values, min/max, unknown fields) checked
on each row, every problem collected before anything is written."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from chronoledger.errors import CorruptDataError, ValidationError
from chronoledger.ids import new_ids
from chronoledger.tables import values
from chronoledger.tables.schema import TableSchema

_MISSING = values.MISSING
_Bad = values.Bad

#: One problem of a write: (the row's index in a batch, or None for a single row; the field, or None; why).
Problem = tuple[int | None, str | None, str]
#: The row check :meth:`RowValidator._compile_full` writes: (rows, now, today, generated ids, problems
#: found, single row) -> the stored rows.
_FullCheck = Callable[[list, str, str, Iterator[str] | None, list[Problem], bool], list[list]]


class RowValidator:
    """Checks rows for one table and returns their stored forms.

    ``full(rows)`` is for inserts: every column, defaults and generated
    values filled.  ``partial(changes)`` is for updates: only the fields
    given, plus ``generated: update`` fields.  Both raise ValidationError
    with every problem of every row (``.problems``: (row, field, reason))."""

    def __init__(self, schema: TableSchema):
        self.schema = schema
        self.table = schema.name
        self.columns = [f.name for f in schema.fields]
        self.known = frozenset(self.columns)
        self.pk = schema.primary_key
        self.form = schema.stored_form
        self._grace = self.form == "grace"
        conv = values.COERCE_BY_FORM[self.form]
        # (name, coerce, required, nullable, default, default_now, generated, allowed, min, max)
        self._plan = [(f.name, conv[f.type], f.required, f.nullable, f.default, f.default_now, f.generated,
                       frozenset(f.allowed) if f.allowed is not None else None, f.min, f.max, f.type)
                      for f in schema.fields]
        self._full = self._compile_full()
        self._json_cols = [i for i, f in enumerate(schema.fields) if f.type == "json"]
        self._bool_cols = [i for i, f in enumerate(schema.fields) if f.type == "boolean"]

    def full(self, rows: list, now: str | None = None) -> list[list]:
        """Stored rows (lists in column order) for an insert."""
        now = now or values.now()
        today = now[:10]
        gen_ids = None
        if self.pk.generated and self.pk.type == "uuid":
            # one per row: cheaper than counting the rows that need one
            gen_ids = iter([i.replace("-", "") for i in new_ids(len(rows))] if self._grace else new_ids(len(rows)))
        if self._grace:
            now = values.grace_datetime(now)
        problems: list[Problem] = []
        out = self._full(rows, now, today, gen_ids, problems, len(rows) == 1)
        if problems:
            raise self.error("insert", problems)
        return out

    def _compile_full(self) -> _FullCheck:
        """The row check of :meth:`full` as one function written for this
        table's fields: the per-field decisions (type, default, generation,
        rules) are taken once here instead of on every value of every row,
        which is most of the cost of a validated bulk insert."""
        ns: dict[str, Any] = {"M": _MISSING, "Bad": _Bad, "known": self.known, "columns": self.columns}
        lines = ["def full(rows, now, today, gen_ids, problems, single):",
                 "    out = []",
                 "    append_row = out.append",
                 "    for i, row in enumerate(rows):",
                 "        w = None if single else i",
                 "        if type(row) is not dict:",
                 "            if not isinstance(row, dict):",
                 "                problems.append((w, None, 'a row is a mapping of field names to values, got '"
                 " + type(row).__name__))",
                 "                continue",
                 "            row = dict(row)",
                 "        if not row.keys() <= known:",
                 "            for k in sorted(map(str, row.keys() - known)):",
                 "                problems.append((w, k, 'unknown field (the fields are ' + ', '.join(columns) + ')'))",
                 "        get = row.get"]
        names: list[str] = []
        # Nothing declared in a schema is written into the source: names, limits and messages
        # are variables of the function's namespace.
        for k, f in enumerate(self.schema.fields):
            n, r = f"n{k}", f"s{k}"
            ns[n] = f.name
            names.append(r)
            ns[f"c{k}"] = values.COERCE_BY_FORM[self.form][f.type]
            body = [f"v = get({n}, M)"]
            if f.generated:
                if f.generated == "update" or f.type == "datetime":
                    gen = "now"
                elif f.type == "uuid":
                    gen = "next(gen_ids)"
                else:
                    gen = "None"                          # an integer key: numbered by the registry
                body += ["if v is None or v is M:", f"    {r} = {gen}", "else:"]
            else:
                if f.default_now:
                    on_missing = [f"{r} = {'now' if f.type == 'datetime' else 'today'}"]
                elif f.default is not _MISSING:
                    # (a default is kept in chronoledger's stored form; a uuid or datetime one is restated)
                    ns[f"d{k}"] = (values.coerce(f.type, f.default, self.form) if self._grace and f.default is not
                                   None and f.type in ("uuid", "datetime") else f.default)
                    on_missing = [f"{r} = d{k}"]
                elif f.required:
                    on_missing = [f"problems.append((w, {n}, 'required, and not given'))", f"{r} = None"]
                elif f.nullable:
                    on_missing = [f"{r} = None"]
                else:
                    on_missing = [f"problems.append((w, {n}, 'may not be null'))", f"{r} = None"]
                on_none = [f"{r} = None"] if f.nullable else \
                    [f"problems.append((w, {n}, 'may not be null'))", f"{r} = None"]
                body += ["if v is M:"] + ["    " + x for x in on_missing]
                body += ["elif v is None:"] + ["    " + x for x in on_none]
                body += ["else:"]
            fast = {"string": "type(v) is str and v.isascii()", "text": "type(v) is str and v.isascii()",
                    "integer": "type(v) is int and -9223372036854775808 <= v <= 9223372036854775807",
                    "float": "type(v) is float and v - v == 0"}.get(f.type)
            conv = ["try:", f"    {r} = c{k}(v)", "except Bad as e:",
                    f"    problems.append((w, {n}, str(e)))", f"    {r} = None"]
            check = []
            if f.allowed is not None:
                ns[f"a{k}"] = frozenset(f.allowed)
                ns[f"am{k}"] = f" is not one of the allowed values ({', '.join(map(str, f.allowed))})"
                check += [f"if {r} is not None and {r} not in a{k}:",
                          f"    problems.append((w, {n}, repr(v) + am{k}))"]
            if f.min is not None:
                ns[f"lo{k}"], ns[f"lom{k}"] = f.min, f" is below the minimum {f.min}"
                check += [f"if {r} is not None and {r} < lo{k}:",
                          f"    problems.append((w, {n}, repr(v) + lom{k}))"]
            if f.max is not None:
                ns[f"hi{k}"], ns[f"him{k}"] = f.max, f" is above the maximum {f.max}"
                check += [f"if {r} is not None and {r} > hi{k}:",
                          f"    problems.append((w, {n}, repr(v) + him{k}))"]
            given = ([f"if {fast}:", f"    {r} = v", "else:"] + ["    " + x for x in conv]) if fast else conv
            body += ["    " + x for x in given + check]
            lines += ["        " + x for x in body]
        lines += [f"        append_row([{', '.join(names)}])", "    return out"]
        exec(compile("\n".join(lines), f"<row check of {self.table}>", "exec"), ns)
        return ns["full"]

    def partial(self, changes: Any, now: str | None = None, allow_empty: bool = False,
                touch: bool = True) -> dict[str, Any]:
        """Stored values of the fields ``changes`` sets (an update), with the
        ``generated: update`` fields set to ``now`` (unless not ``touch``: a
        value the registry derives, as a trust score, is not an update of the row)."""
        if not isinstance(changes, dict) or (not changes and not allow_empty):
            raise ValidationError(f"{self.table}: an update needs a non-empty mapping of fields to new values")
        now = now or values.now()
        if self._grace:
            now = values.grace_datetime(now)
        problems: list[Problem] = []
        out: dict[str, Any] = {}
        for k in sorted(map(str, changes.keys() - self.known)):
            problems.append((None, k, f"unknown field (the fields are {', '.join(self.columns)})"))
        for name, conv, required, nullable, _d, _dn, generated, allowed, lo, hi, _t in self._plan:
            if name not in changes:
                if generated == "update" and touch:
                    out[name] = now
                continue
            v = changes[name]
            if name == self.pk.name:
                problems.append((None, name, "the primary key of a row is never changed"))
                continue
            if generated:
                problems.append((None, name, "set by the registry (generated), not by an update"))
                continue
            if v is None:
                if not nullable or required:
                    problems.append((None, name, "may not be null"))
                out[name] = None
                continue
            try:
                s = conv(v)
            except _Bad as exc:
                problems.append((None, name, str(exc)))
                continue
            if allowed is not None and s not in allowed:
                problems.append((None, name, f"{v!r} is not one of the allowed values "
                                             f"({', '.join(map(str, self.schema.by_name[name].allowed))})"))
            # (min and max are for integer and float fields only: the isinstance() tells the type checker)
            elif lo is not None and isinstance(s, (int, float)) and s < lo:
                problems.append((None, name, f"{v!r} is below the minimum {lo}"))
            elif hi is not None and isinstance(s, (int, float)) and s > hi:
                problems.append((None, name, f"{v!r} is above the maximum {hi}"))
            out[name] = s
        if problems:
            raise self.error("update", problems)
        return out

    def error(self, what: str, problems: list[Problem]) -> ValidationError:
        shown = problems[:20]
        parts = [(f"row {r}: " if r is not None else "") + (f"{f}: " if f else "") + why for r, f, why in shown]
        more = f"; and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        return ValidationError(f"{self.table}: {what} refused: " + "; ".join(parts) + more, problems)

    def decode_row(self, row) -> dict:
        """A stored row (in column order) as the dict a read returns: JSON
        parsed (a fresh object per row), booleans as bool.  Stored text that
        is not JSON (written by another program) is a CorruptDataError naming
        the row and the field."""
        out = dict(zip(self.columns, row))
        for i in self._json_cols:
            v = row[i]
            if type(v) is str:          # (a number in a column of numeric affinity is stored as one)
                try:
                    out[self.columns[i]] = _loads(v)
                except (ValueError, RecursionError):
                    raise CorruptDataError(f"{self.table}: the row {self.pk.name} = {out.get(self.pk.name)!r}: "
                                           f"{self.columns[i]}: the stored text is not JSON: {v[:60]!r}") from None
        for i in self._bool_cols:
            v = row[i]
            if v is not None:
                out[self.columns[i]] = bool(v)
        return out


_loads = json.JSONDecoder().decode
