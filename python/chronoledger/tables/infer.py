"""Schema inference (Grace's "schema agent", done by rules instead of a
language model, so the same file always gives the same schema): the table a
file's records would fit, with a confidence per field and overall, and the
governance risk that follows from it.  docs/tables.md, "Inferring a schema".

Per field: each value's kind is read (from text for CSV: ``12`` is an
integer, ``2025-01-02T03:04:05Z`` a datetime, ``{"a": 1}`` JSON; from the
value itself for JSON, YAML and Parquet), the commonest kind is taken and
widened while that makes more values fit (integer to float, date to
datetime, string to text), and the confidence is Laplace's rule over the
values: ``(fitting + 1) / (values + 2)``: a field of 10 values that all fit
gets 0.917, of 100 with 2 that do not 0.971, of none 0.5.  The schema's
confidence is its least confident field's.  Risk as Grace's proposal engine
assesses it (schema_proposal_engine.py): low from 0.9, medium from 0.7, else
high.
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from chronoledger._fsutil import output_file
from chronoledger._isotime import iso_text
from chronoledger.errors import SchemaError
from chronoledger.tables.records import Record, read_records
from chronoledger.tables.schema import IDENTIFIER, RESERVED_PREFIXES, TableSchema, parse_schema

#: Confidence -> risk (Grace's thresholds).
LOW_RISK_FROM, MEDIUM_RISK_FROM = 0.9, 0.7
#: How a kind widens when more values would then fit.
_WIDER = {"integer": "float", "date": "datetime", "string": "text", "boolean": None, "float": "json",
          "datetime": None, "uuid": None, "json": None, "text": None}
#: Text longer than this, or with a line break, is ``text`` rather than ``string``.
LONG_TEXT = 200
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")
_DATE = re.compile(r"\d{4}-\d\d-\d\d\Z")
_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\Z")
#: The kind of a value no field stores (an infinite float): it fits no type.
UNSTORABLE = "unstorable"
BOOLEAN_TEXT = {"true": True, "false": False, "yes": True, "no": False, "t": True, "f": False}


def field_name(key: str) -> str:
    """A file's column name as a field name: lower case, runs of other
    characters as ``_`` (``First Name`` -> ``first_name``)."""
    name = re.sub(r"[^0-9a-z_]+", "_", str(key).strip().lower()).strip("_") or "field"
    if name[0].isdigit() or name.startswith(RESERVED_PREFIXES):
        name = "f_" + name
    return name


def field_names(keys: Iterable[str]) -> dict[str, str]:
    """Each key -> its field name; keys that would share one are numbered
    in the order they come (``a b``, ``a-b`` -> ``a_b``, ``a_b_2``)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for k in keys:
        name = base = field_name(k)
        n = 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        out[k] = name
    return out


def kind_of(value: Any, text: bool) -> str:
    """The most specific field type ``value`` fits without losing anything
    (``text``: as spelled in a CSV cell)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        # past 64 bits only a JSON field keeps the number exactly
        return "integer" if -(1 << 63) <= value < (1 << 63) else "json"
    if isinstance(value, float):
        return "float" if math.isfinite(value) else UNSTORABLE
    if isinstance(value, Decimal):
        # (Parquet's decimals) a whole number an integer holds; any other keeps its digits as text
        whole = value.is_finite() and value == value.to_integral_value() and -(1 << 63) <= value < (1 << 63)
        return "integer" if whole else "string"
    if isinstance(value, (dict, list, set, frozenset, tuple)):
        return "json"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, uuid.UUID):
        return "uuid"
    if not isinstance(value, str):
        return "string"                        # times of day, durations, bytes: kept as their text
    s = value.strip()
    if text:
        if s.lower() in BOOLEAN_TEXT:
            return "boolean"
        digits = s.lstrip("+-")
        if _INT.match(s):
            # a leading zero (a zip code, an account number) or more than 64 bits: the digits are the value
            if (len(digits) > 1 and digits[0] == "0") or len(s) > 20 or not -(1 << 63) <= int(s) < (1 << 63):
                return "string"
            return "integer"
        if _FLOAT.match(s) and math.isfinite(float(s)):
            return "float"
        if s[:1] in ("{", "[") and _json_text(s):
            return "json"
    if _DATE.match(s) and _parses(date.fromisoformat, s):
        return "date"
    if _DATETIME.match(s) and _parses(lambda t: datetime.fromisoformat(iso_text(t)), s):
        return "datetime"
    if _UUID.match(s):
        return "uuid"
    return "text" if len(value) > LONG_TEXT or "\n" in value else "string"


def _parses(fn, s: str) -> bool:
    try:
        fn(s)
        return True
    except ValueError:
        return False


def _json_text(s: str) -> bool:
    try:
        json.loads(s)
        return True
    except (ValueError, RecursionError):
        return False


def _fits(kind: str, target: str, text: bool) -> bool:
    """Whether a value of ``kind`` can be stored in a ``target`` field."""
    if kind == target:
        return True
    if target == "json":
        # a JSON field holds any number exactly (one past 64 bits too) and true or false
        return not text and kind in ("integer", "float", "boolean")
    if target == "float":
        return kind == "integer"
    if target == "datetime":
        return kind == "date"
    if target in ("string", "text"):
        # from a CSV every value is text; of JSON, YAML or Parquet values, the kinds that are text
        return (text and kind != UNSTORABLE) or kind in ("string", "text", "uuid", "date", "datetime")
    return False


@dataclass
class FieldGuess:
    """What inference found for one field."""
    name: str
    key: str                       # the file's own name for it
    type: str
    confidence: float
    values: int                    # records with a value
    fitting: int                   # of them, values the type holds
    nullable: bool
    primary_key: bool = False
    misfits: list[tuple[str, Any]] = field(default_factory=list)   # (where, value): the first few that do not fit

    def note(self) -> str:
        return (f"inferred {self.type} ({self.fitting} of {self.values} values fit; confidence "
                f"{self.confidence:.3f})")


@dataclass
class Inference:
    """A proposed table for the records of some files."""
    table: str
    files: list[str]
    records: int
    fields: list[FieldGuess]
    schema: TableSchema

    @property
    def confidence(self) -> float:
        return min((f.confidence for f in self.fields), default=0.5)

    @property
    def risk(self) -> str:
        c = self.confidence
        return "low" if c >= LOW_RISK_FROM else "medium" if c >= MEDIUM_RISK_FROM else "high"

    def write_schema(self, path: str | os.PathLike[str]) -> None:
        """The inferred schema as a schema file at ``path`` (an existing file
        is refused with ExistsError and left as it was)."""
        head = (f"# Inferred by chronoledger from {', '.join(Path(f).name for f in self.files)}: {self.records} "
                f"records, confidence {self.confidence:.3f} ({self.risk} risk)\n")
        text = head + yaml.safe_dump(self.schema.declared(), sort_keys=False, allow_unicode=True)
        with output_file(path, force=False, what="the inferred schema") as fh:
            fh.write(text.encode("utf-8"))

    def as_dict(self) -> dict:
        return {"table": self.table, "files": self.files, "records": self.records,
                "confidence": round(self.confidence, 3), "risk": self.risk,
                "fields": [{"name": f.name, "key": f.key, "type": f.type, "confidence": round(f.confidence, 3),
                            "values": f.values, "fitting": f.fitting, "nullable": f.nullable,
                            "primary_key": f.primary_key,
                            "misfits": [{"where": w, "value": _shown(v)} for w, v in f.misfits]} for f in self.fields],
                "schema": self.schema.declared()}


def infer(records: Iterable[tuple[str, Record]], table: str, files: list[str]) -> Inference:
    """The schema the records (``(file, record)``) fit, as table ``table``."""
    if not IDENTIFIER.match(table) or table.lower().startswith(RESERVED_PREFIXES):
        raise SchemaError(f"{table!r} is not a table name one can declare (letters, digits, _; not starting "
                          f"with a digit, sqlite_ or _registry)")
    kinds: dict[str, Counter] = {}
    where_of: dict[str, list[tuple[str, str, Any]]] = {}      # key -> (where, kind, value), for misfits
    present: Counter = Counter()
    text_keys: set[str] = set()
    ids: dict[Any, str] = {}
    n = 0
    duplicate_id: tuple[str, str, Any] | None = None
    names: dict[str, str] = {}
    for file, rec in records:
        n += 1
        for k in (*rec.columns, *rec.values):
            if k not in names:
                names = field_names([*names, k])
        for k, v in rec.values.items():
            if v is None or (type(v) is float and v != v):      # NaN: a missing value, as pandas writes one
                continue
            kind = kind_of(v, rec.text)
            kinds.setdefault(k, Counter())[kind] += 1
            where_of.setdefault(k, []).append((f"{file}: {rec.where}", kind, v))
            present[k] += 1
            if rec.text:
                text_keys.add(k)
            if names[k] == "id" and duplicate_id is None:
                key = str(v).strip() if rec.text else v
                key = repr(key) if isinstance(key, (dict, list)) else key
                if key in ids:
                    duplicate_id = (ids[key], f"{file}: {rec.where}", v)
                ids[key] = f"{file}: {rec.where}"
    if n == 0:
        raise SchemaError(f"{', '.join(files)}: no records to infer a schema from")
    guesses = []
    for key, name in names.items():
        counts = kinds.get(key, Counter())
        total = present[key]
        text = key in text_keys
        storable = {k: c for k, c in counts.items() if k != UNSTORABLE}
        if not storable:
            chosen, fitting = "string", 0
        else:
            chosen = max(storable.items(), key=lambda kv: (kv[1], _ORDER.index(kv[0])))[0]
            fitting = sum(c for k, c in counts.items() if _fits(k, chosen, text))
            wider = _WIDER[chosen]
            while wider is not None and fitting < total:       # the first wider kind that holds more
                more = sum(c for k, c in counts.items() if _fits(k, wider, text))
                if more > fitting:
                    chosen, fitting = wider, more
                wider = _WIDER[wider]
        confidence = (fitting + 1) / (total + 2)
        misfits = [(w, v) for w, k, v in where_of.get(key, []) if not _fits(k, chosen, text)][:5]
        guesses.append(FieldGuess(name, key, chosen, confidence, total, fitting, nullable=total < n, misfits=misfits))
    pk = next((g for g in guesses if g.name == "id"), None)
    if pk is not None:
        if duplicate_id is not None:
            first, second, value = duplicate_id
            raise SchemaError(f"field id cannot be the primary key: {value!r} is the id of {first} and of {second}")
        if pk.nullable or pk.type not in ("uuid", "integer", "string"):
            raise SchemaError(f"field id cannot be the primary key: "
                              f"{'some records have none' if pk.nullable else 'its values are ' + pk.type}")
        pk.primary_key = True
    declared = {"table": table, "description": f"Inferred from {', '.join(Path(f).name for f in files)} "
                                                f"({n} records)",
                "fields": [_declared(g) for g in guesses]}
    schema, problems = parse_schema(declared, files[0] if files else "<inferred>")
    if schema is None:                        # pragma: no cover - every name and type above is one it takes
        raise SchemaError("; ".join(map(str, problems)))
    return Inference(table, files, n, guesses, schema)


def infer_files(paths: Iterable[str | os.PathLike[str]], table: str | None = None) -> Inference:
    """The schema the records of ``paths`` (one table's, in any of the kinds
    records.py reads) fit; ``table``: its name (default: the first file's name)."""
    files = [str(p) for p in paths]
    if not files:
        raise SchemaError("name at least one file to infer a schema from")
    return infer(((f, r) for f in files for r in read_records(f)), table or field_name(Path(files[0]).stem), files)


def _shown(v: Any) -> Any:
    """A value as a report shows it: itself when JSON writes it as it is, else its repr (shortened)."""
    if v is None or isinstance(v, (str, bool, int)) or (isinstance(v, float) and math.isfinite(v)):
        return v
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


_ORDER = ["json", "uuid", "datetime", "date", "boolean", "integer", "float", "string", "text"]


def _declared(g: FieldGuess) -> dict:
    out: dict[str, Any] = {"name": g.name, "type": g.type, "description": g.note()}
    if g.primary_key:
        out["primary_key"] = True
    else:
        out["nullable"] = g.nullable
    return out
