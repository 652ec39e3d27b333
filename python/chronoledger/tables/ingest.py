"""Loading a file's records into a table through the registry's validation:
every refused record is reported by file, line (or item, or row) and field,
and the rest are inserted (or, ``atomic=True``, none are unless all pass).
docs/tables.md, "Ingesting a file"."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from chronoledger.errors import ValidationError
from chronoledger.tables import values
from chronoledger.tables.infer import BOOLEAN_TEXT, Inference, field_names
from chronoledger.tables.records import Record, read_records
from chronoledger.tables.registry import TableRegistry
from chronoledger.tables.schema import TableSchema
from chronoledger.tables.validate import RowValidator

#: Records checked and inserted per transaction.
BATCH = 5000


@dataclass(frozen=True)
class Refused:
    """A record that was not inserted, and why."""
    file: str
    where: str                    # "line 12", "item 3", "row 7"
    field: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.field + ': ' if self.field else ''}{self.reason}"


@dataclass
class IngestReport:
    table: str
    read: int = 0
    inserted: int = 0
    refused: list[Refused] = field(default_factory=list)
    atomic: bool = False

    @property
    def refused_records(self) -> int:
        return len({(r.file, r.where) for r in self.refused})

    def __str__(self) -> str:
        lines = [f"{self.table}: {self.read} records read, {self.inserted} inserted, {self.refused_records} refused"
                 + (" (atomic: nothing inserted)" if self.atomic and self.refused else "")]
        lines += [f"  {r}" for r in self.refused[:50]]
        if len(self.refused) > 50:
            lines.append(f"  ... and {len(self.refused) - 50} more")
        return "\n".join(lines)


def propose_inference(registry: TableRegistry, inference: Inference, *, proposed_by: str | None = None) -> dict:
    """Put an inferred schema to governance at the risk its confidence
    gives (low: applied at once; medium or high: waits for approval).
    Returns the proposal."""
    why = (f"inferred from {', '.join(inference.files)}: {inference.records} records, confidence "
           f"{inference.confidence:.3f} ({inference.risk} risk)")
    return registry.propose_schema(inference.schema, proposed_by=proposed_by, reason=why, risk=inference.risk)


def ingest(registry: TableRegistry, table: str, paths: Iterable[str | os.PathLike[str]], *,
           atomic: bool = False, batch: int = BATCH) -> IngestReport:
    """Insert the records of ``paths`` into ``table``.  A file's column or
    key names become field names as inference names them (``First Name``:
    ``first_name``); CSV text is read as each field's type.  A record with a
    value its field refuses, or a key the table lacks, is refused whole and
    reported (every problem of it); the others are inserted in batches of
    ``batch``.  ``atomic``: insert nothing unless every record passes."""
    schema = registry.schema(table)
    report = IngestReport(table, atomic=atomic)
    check = RowValidator(schema)
    pending: list[tuple[str, Record, dict]] = []
    # keys are named across all the files in the order they come, as infer names them (so ``Name`` and
    # ``name`` are name and name_2 here too); a key that is a field's own name keeps it unless that
    # naming gives it another field
    names: dict[str, str] = {}
    for p in paths:
        name = str(p)
        for rec in read_records(p):
            report.read += 1
            for k in (*rec.columns, *rec.values):
                if k not in names:
                    names = field_names([*names, k])
            row, problems = _row(schema, rec, names)
            if not problems:
                problems = _check(check, row)
            if problems:
                report.refused += [Refused(name, rec.where, f, why) for f, why in problems]
                continue
            pending.append((name, rec, row))
            if not atomic and len(pending) >= batch:
                _insert(registry, table, pending, report)
                pending = []
    if atomic and report.refused:
        return report
    if pending:
        _insert(registry, table, pending, report, all_or_none=atomic)
    return report


def _row(schema: TableSchema, rec: Record, names: dict[str, str]) -> tuple[dict, list[tuple[str | None, str]]]:
    row: dict[str, Any] = {}
    problems: list[tuple[str | None, str]] = []
    for k, v in rec.values.items():
        name = names[k] if names[k] in schema.by_name or k not in schema.by_name else k
        f = schema.by_name.get(name)
        if f is None:
            problems.append((str(k), f"the table {schema.name} has no field {name!r}"))
            continue
        try:
            row[name] = _read(v, f.type) if rec.text else _native(v, f.type)
        except values.Bad as exc:
            problems.append((name, str(exc)))
    return row, problems


def _read(text: Any, ftype: str) -> Any:
    """A CSV cell as a value of ``ftype`` (what the validator then checks)."""
    s = text.strip()
    if ftype == "integer":
        try:
            return int(s)
        except ValueError:
            raise values.Bad(f"{_short(text)} is not an integer") from None
    if ftype == "float":
        try:
            return float(s)
        except ValueError:
            raise values.Bad(f"{_short(text)} is not a number") from None
    if ftype == "boolean":
        b = BOOLEAN_TEXT.get(s.lower(), {"1": True, "0": False}.get(s))
        if b is None:
            raise values.Bad(f"{_short(text)} is not true or false")
        return b
    if ftype == "json":
        try:
            return json.loads(s)
        except (ValueError, RecursionError):
            return text                     # text that is not JSON: kept as a JSON string
    if ftype in ("uuid", "date", "datetime"):
        return s                            # spaces around an id or a time are the cell's, not the value's
    return text


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _native(v: Any, ftype: str) -> Any:
    """A JSON, YAML or Parquet value as the validator takes it for ``ftype``
    (what inference named text, a date or a number kept as it is)."""
    if type(v) is float and v != v:
        return None                          # NaN: a missing value (inference counts it so too)
    if isinstance(v, Decimal):
        if ftype == "integer" and v.is_finite() and v == v.to_integral_value():
            return int(v)
        return float(v) if ftype == "float" else str(v) if ftype in ("string", "text") else v
    if isinstance(v, (set, frozenset)) and ftype == "json":
        try:
            return sorted(v)
        except TypeError:
            return list(v)
    if isinstance(v, tuple) and ftype == "json":
        return list(v)
    if ftype in ("string", "text") and not isinstance(v, (str, bool, int, float, dict, list)) and v is not None:
        if isinstance(v, (bytes, bytearray)):
            try:
                return bytes(v).decode("utf-8")
            except UnicodeDecodeError:
                raise values.Bad("binary data that is not UTF-8 text") from None
        return v.isoformat() if isinstance(v, (datetime, date, time)) else str(v)
    return v


def _check(check: RowValidator, row: dict) -> list[tuple[str | None, str]]:
    try:
        check.full([row])
    except ValidationError as exc:
        return [(f, why) for _r, f, why in exc.problems]
    return []


def _insert(registry: TableRegistry, table: str, pending: list[tuple[str, Record, dict]], report: IngestReport,
            all_or_none: bool = False) -> None:
    """Insert checked rows; a batch the database refuses (a unique field
    given twice) is inserted record by record, so only the offending ones
    are refused, unless ``all_or_none``."""
    try:
        report.inserted += registry.insert_all(table, [row for _f, _r, row in pending])
        return
    except ValidationError as exc:
        if all_or_none:
            for i, f, why in exc.problems:
                name, rec, _row = pending[i or 0]
                report.refused.append(Refused(name, rec.where, f, why))
            return
    for name, rec, row in pending:
        try:
            report.inserted += registry.insert_all(table, [row])
        except ValidationError as exc:
            report.refused += [Refused(name, rec.where, f, why) for _i, f, why in exc.problems]


