"""Table schemas declared in YAML: reading them, checking every rule, and
comparing two versions of one table.

A file holds one table (docs/tables.md has the format).  Reading never
stops at the first problem: every one found is a :class:`SchemaProblem`
naming the file, the table, the field and the reason, and a file with
problems yields no schema while the other files still load.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from chronoledger.sqlite import IDENTIFIER
from chronoledger.tables import values

# libyaml's loader when PyYAML was built with it (the union: either class may be bound)
_Loader: type[yaml.SafeLoader | yaml.CSafeLoader]
try:
    from yaml import CSafeLoader as _Loader      # the C parser
except ImportError:                              # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader

#: The declared type -> its canonical name (datetime and timestamp are the same thing).
TYPES = {"uuid": "uuid", "string": "string", "text": "text", "json": "json", "datetime": "datetime",
         "timestamp": "datetime", "date": "date", "float": "float", "integer": "integer", "boolean": "boolean"}
#: The column type SQLite is told (the checks are ours, on every write).
SQL_TYPES = {"uuid": "TEXT", "string": "TEXT", "text": "TEXT", "json": "TEXT", "datetime": "TEXT", "date": "TEXT",
             "float": "REAL", "integer": "INTEGER", "boolean": "INTEGER"}
TABLE_KEYS = frozenset({"table", "description", "version", "fields", "indexes", "relationships", "immutable",
                        "nullable_rule", "stored_form", "trust", "contradictions"})
#: Which fields may hold null when a field does not say (docs/tables.md, "Grace's files"): Grace's
#: registry makes a column NOT NULL unless it says nullable: true; chronoledger's form lets a field be
#: null unless it is the primary key or required.
NULLABLE_RULES = ("grace", "chronoledger")
#: How values are written to the table (docs/tables.md, "Stored forms"): chronoledger's (hyphenated
#: uuids, UTC datetimes ending in Z) or Grace's (what its SQLModel registry writes and reads: 32-digit
#: hex uuids, naive "YYYY-MM-DD HH:MM:SS.ffffff" datetimes), so that Grace's own code still reads a
#: database chronoledger adopted.  Fixed when a table is created; not part of the schema's hash.
STORED_FORMS = ("chronoledger", "grace")
FIELD_KEYS = frozenset({"name", "type", "primary_key", "generated", "required", "unique", "nullable", "default",
                        "allowed", "enum", "description", "min", "max"})
INDEX_KEYS = frozenset({"fields", "unique", "name"})
RELATIONSHIP_KEYS = frozenset({"field", "table", "references", "description"})
#: Grace's form of a relationship (aaron031291/grace_2, backend/memory_tables/schema): {table, type,
#: foreign_key, description}; many_to_one: the foreign key is a field of this table, pointing at the
#: other table's primary key; one_to_many: it is a field of the other table, pointing at this one's.
GRACE_RELATIONSHIP_KEYS = frozenset({"table", "type", "foreign_key", "description"})
GRACE_RELATIONSHIP_TYPES = ("many_to_one", "one_to_many")
#: A row's trust factors (docs/tables.md, "Trust scores"), and their default weights: Grace's
#: (backend/memory_tables/trust_scoring.py).
TRUST_FACTORS = {"completeness": 0.30, "source": 0.25, "freshness": 0.15, "usage": 0.20, "consistency": 0.10}
TRUST_KEYS = frozenset({"weights", "source_field", "sources", "default_source", "freshness_field"})
#: Contradiction rules (docs/tables.md, "Contradictions").
CONTRADICTION_KINDS = ("near_duplicate", "conflicting_values")
CONTRADICTION_KEYS = frozenset({"name", "kind", "fields", "key", "threshold", "severity", "description"})
SEVERITIES = ("low", "medium", "high", "critical")
#: Names the registry keeps for itself.
RESERVED_PREFIXES = ("sqlite_", "_registry")


@dataclass(frozen=True)
class SchemaProblem:
    """One thing wrong in a schema file."""
    file: str
    table: str | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = ".".join(x for x in (self.table, self.field) if x)
        return f"{self.file}: {where}: {self.reason}" if where else f"{self.file}: {self.reason}"


@dataclass(frozen=True)
class FieldSpec:
    """One column: its type and the rules every write must satisfy."""
    name: str
    type: str                                  # canonical (see TYPES)
    primary_key: bool = False
    generated: str | None = None               # None, "insert" (on insert) or "update" (on insert and update)
    required: bool = False
    unique: bool = False
    nullable: bool = True
    default: Any = values.MISSING              # the stored form (JSON as text, booleans as 0/1)
    default_now: bool = False                  # default: now (datetime and date fields)
    allowed: tuple | None = None               # stored forms, in declared order
    description: str = ""
    min: float | None = None
    max: float | None = None

    @property
    def has_default(self) -> bool:
        return self.default is not values.MISSING or self.default_now

    def declared(self, grace: bool = False) -> dict:
        """The field as a YAML mapping would declare it (stored forms decoded);
        ``grace``: under Grace's nullable rule (nullable: true said when it is)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.primary_key:
            out["primary_key"] = True
        if self.generated:
            out["generated"] = True if self.generated == "insert" else self.generated
        for key in ("required", "unique"):
            if getattr(self, key):
                out[key] = True
        if grace:
            if self.nullable:
                out["nullable"] = True
        elif not self.nullable and not self.primary_key and not self.required:
            out["nullable"] = False
        if self.default_now:
            out["default"] = "now"
        elif self.default is not values.MISSING:
            out["default"] = values.decode(self.type, self.default)
        if self.allowed is not None:
            out["allowed"] = [values.decode(self.type, a) for a in self.allowed]
        for key in ("min", "max"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class IndexSpec:
    fields: tuple[str, ...]
    unique: bool = False
    name: str | None = None

    def sql_name(self, table: str) -> str:
        return self.name or auto_index_name("ux" if self.unique else "ix", table, self.fields)

    def declared(self) -> dict:
        out: dict[str, Any] = {"fields": list(self.fields), "unique": self.unique}
        if self.name:
            out["name"] = self.name
        return out


@dataclass(frozen=True)
class Relationship:
    """A link from this table to another.  ``field`` (of this table) points
    at ``references`` (of the other table; None: its primary key).  In
    Grace's one_to_many form the link is seen from the other side:
    ``field`` is None and ``references`` is the other table's field that
    points at this table's primary key.  ``kind`` is Grace's ``type``
    (many_to_one / one_to_many) when the file used Grace's form."""
    field: str | None
    table: str
    references: str | None = None
    description: str = ""
    kind: str | None = None

    def declared(self) -> dict:
        if self.kind is not None:           # Grace's form, kept as it was written
            out = {"table": self.table, "type": self.kind,
                   "foreign_key": self.field if self.kind == "many_to_one" else self.references}
        else:
            out = {"field": self.field, "table": self.table}
            if self.references:
                out["references"] = self.references
        if self.description:
            out["description"] = self.description
        return out

    def __str__(self) -> str:
        if self.kind == "one_to_many":
            return f"{self.table}.{self.references} -> this table (one to many)"
        return f"{self.field} -> {self.table}{'.' + self.references if self.references else ''}"


@dataclass(frozen=True)
class TableSchema:
    """A checked table declaration."""
    name: str
    fields: tuple[FieldSpec, ...]
    indexes: tuple[IndexSpec, ...] = ()
    relationships: tuple[Relationship, ...] = ()
    description: str = ""
    version: Any = None
    immutable: bool = False
    source: str = ""                          # where it was read from (not part of the hash)
    by_name: dict = field(default_factory=dict, compare=False, repr=False)
    nullable_rule: str = "chronoledger"       # see NULLABLE_RULES
    stored_form: str = "chronoledger"         # see STORED_FORMS (not part of the hash)
    #: the ``trust:`` block as declared (checked), or None for the defaults
    trust: dict | None = field(default=None, hash=False)
    #: the ``contradictions:`` rules, each a checked mapping with its defaults filled; None: not declared
    contradictions: tuple[dict, ...] | None = field(default=None, hash=False)

    def __post_init__(self):
        self.by_name.update({f.name: f for f in self.fields})

    @property
    def primary_key(self) -> FieldSpec:
        return next(f for f in self.fields if f.primary_key)

    def declared(self) -> dict:
        """The schema as its YAML would declare it: what is hashed, stored and shown."""
        out: dict[str, Any] = {"table": self.name}
        if self.description:
            out["description"] = self.description
        if self.version is not None:
            out["version"] = self.version
        if self.immutable:
            out["immutable"] = True
        out["nullable_rule"] = self.nullable_rule      # what it says once read again depends on it
        out["fields"] = [f.declared(self.nullable_rule == "grace") for f in self.fields]
        out["indexes"] = [i.declared() for i in self.indexes]
        if self.relationships:
            out["relationships"] = [r.declared() for r in self.relationships]
        if self.trust is not None:
            out["trust"] = self.trust
        if self.contradictions is not None:
            out["contradictions"] = list(self.contradictions)
        if self.stored_form != "chronoledger":
            out["stored_form"] = self.stored_form
        return out

    @property
    def hash(self) -> str:
        form = self.declared()
        if form.get("nullable_rule") == "chronoledger":
            # what earlier releases hashed (their only rule): proposals they stored still match
            del form["nullable_rule"]
        form.pop("stored_form", None)           # how values are written, not what the table is
        text = json.dumps(form, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def create_sql(self, name: str | None = None) -> str:
        """CREATE TABLE (and its indexes, and the triggers of an immutable table)."""
        table = q(name or self.name)
        cols = []
        for f in self.fields:
            col = f"{q(f.name)} {SQL_TYPES[f.type]}"
            if f.primary_key:
                col += " PRIMARY KEY NOT NULL"
            cols.append(col)
        stmts = [f"CREATE TABLE {table} (\n  " + ",\n  ".join(cols) + "\n)"]
        if name is None:
            stmts += self.index_sql()
        return ";\n".join(stmts) + ";"

    def index_statements(self) -> dict[str, str]:
        """Each index's name -> its CREATE statement (unique fields, then declared indexes)."""
        out = {}
        for f in self.fields:
            if f.unique and not f.primary_key:
                name = auto_index_name("ux", self.name, (f.name,))
                out[name] = f"CREATE UNIQUE INDEX IF NOT EXISTS {q(name)} ON {q(self.name)} ({q(f.name)})"
        for ix in self.indexes:
            name = ix.sql_name(self.name)
            out[name] = (f"CREATE {'UNIQUE ' if ix.unique else ''}INDEX IF NOT EXISTS {q(name)} "
                         f"ON {q(self.name)} ({', '.join(q(c) for c in ix.fields)})")
        return out

    def index_sql(self) -> list[str]:
        """CREATE statements of the indexes, and the triggers of an immutable table."""
        out = list(self.index_statements().values())
        if self.immutable:
            for op in ("UPDATE", "DELETE"):
                out.append(f"CREATE TRIGGER IF NOT EXISTS {q(f'{self.name}_no_{op.lower()}')} BEFORE {op} ON "
                           f"{q(self.name)} BEGIN SELECT RAISE(ABORT, '{self.name} is immutable: "
                           f"rows are never {'updated' if op == 'UPDATE' else 'deleted'}'); END")
        return out



def auto_index_name(prefix: str, table: str, fields: tuple[str, ...]) -> str:
    """A readable index name, made unique by a hash of exactly what it
    indexes: joining names with "_" alone would give a.b_c and a_b.c one name."""
    digest = hashlib.sha1(json.dumps([prefix, table, list(fields)]).encode()).hexdigest()[:8]
    return f"{prefix}_{table}_{'_'.join(fields)}_{digest}"


def q(name: str) -> str:
    """A checked identifier, quoted."""
    if not IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a valid identifier")
    return f'"{name}"'


# --- reading ------------------------------------------------------------------

class _Report(Protocol):
    """How the parts of :func:`parse_schema` report a problem."""

    def __call__(self, reason: str, fld: str | None = None, table: str | None = None) -> None: ...


def parse_schema(data: Any, source: str, *, stored: bool = False) -> tuple[TableSchema | None, list[SchemaProblem]]:
    """The schema in ``data`` (a file's parsed YAML), or None and every problem found.

    Which fields may be null when they do not say: ``nullable_rule`` if the
    schema gives one, else Grace's rule (a field is NOT NULL unless it says
    ``nullable: true``), whatever its ``version:``.  ``stored``: ``data`` is
    what a registry stored (:meth:`TableSchema.declared`), where a schema
    without the key was made under chronoledger's rule, the only one earlier
    releases had."""
    problems: list[SchemaProblem] = []

    def bad(reason: str, fld: str | None = None, table: str | None = None) -> None:
        problems.append(SchemaProblem(source, table, fld, reason))

    if not isinstance(data, dict):
        bad(f"expected a mapping with table: and fields:, found {type(data).__name__}")
        return None, problems
    name = data.get("table")
    tname = name if isinstance(name, str) else None
    for key in data:
        if key not in TABLE_KEYS:
            bad(f"unknown key {key!r} (known: {', '.join(sorted(TABLE_KEYS))})", table=tname)
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        bad(f"table: {name!r} is not a valid table name (letters, digits, _; not starting with a digit)")
    elif name.lower().startswith(RESERVED_PREFIXES):
        bad(f"table names starting with {' or '.join(RESERVED_PREFIXES)} are reserved", table=name)
    description = data.get("description") or ""
    if not isinstance(description, str):
        bad("description: must be text", table=tname)
        description = ""
    version = data.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, (int, float, str))):
        bad(f"version: {version!r} must be a number or text", table=tname)
    rule = data.get("nullable_rule")
    if rule is None:
        rule = "chronoledger" if stored else "grace"
    elif rule not in NULLABLE_RULES:
        bad(f"nullable_rule: {rule!r} must be one of {', '.join(NULLABLE_RULES)}", table=tname)
        rule = "chronoledger"
    stored_form = data.get("stored_form", "chronoledger")
    if stored_form not in STORED_FORMS:
        bad(f"stored_form: {stored_form!r} must be one of {', '.join(STORED_FORMS)}", table=tname)
        stored_form = "chronoledger"
    immutable = data.get("immutable", False)
    if not isinstance(immutable, bool):
        bad(f"immutable: {immutable!r} must be true or false", table=tname)
        immutable = False

    raw_fields = data.get("fields")
    fields: list[FieldSpec] = []
    if not isinstance(raw_fields, list) or not raw_fields:
        bad("fields: must be a non-empty list of fields", table=tname)
        raw_fields = []
    seen: set[str] = set()
    declared_names = {r.get("name") for r in raw_fields                                # refused ones too
                      if isinstance(r, dict) and isinstance(r.get("name"), str)}
    for i, raw in enumerate(raw_fields):
        spec = _parse_field(raw, i, tname, bad, grace=rule == "grace")
        if spec is None:
            continue
        if spec.name.lower() in seen:
            bad("duplicate field (names are compared without regard to case, as SQLite does)", spec.name, tname)
            continue
        seen.add(spec.name.lower())
        fields.append(spec)
    pks = [f for f in fields if f.primary_key]
    if len(pks) > 1:
        bad(f"more than one primary_key ({', '.join(f.name for f in pks)}); declare one", table=tname)
    if not pks and fields:
        if "id" in seen:
            bad("a field named id exists but is not the primary_key: mark it primary_key: true", "id", tname)
        else:       # every row needs a key to be read, updated and audited by: a generated uuid
            fields.insert(0, FieldSpec("id", "uuid", primary_key=True, generated="insert", nullable=False,
                                       description="Row id (added: the schema declares no primary key)"))
    by_name = {f.name: f for f in fields}

    indexes: list[IndexSpec] = []
    raw_indexes = data.get("indexes") or []
    if not isinstance(raw_indexes, list):
        bad("indexes: must be a list of {fields: [...], unique: true|false}", table=tname)
        raw_indexes = []
    for i, raw in enumerate(raw_indexes):
        ix = _parse_index(raw, i, by_name, tname, bad, declared_names)
        if ix is not None and ix.name is not None and any((o.name or "").lower() == ix.name.lower() for o in indexes):
            bad(f"indexes[{i}]: the name {ix.name} is used twice (index names ignore case)", table=tname)
        elif ix is not None:
            indexes.append(ix)

    relationships = []
    raw_rels = data.get("relationships") or []
    if not isinstance(raw_rels, list):
        bad("relationships: must be a list of {field, table, references}", table=tname)
        raw_rels = []
    for i, raw in enumerate(raw_rels):
        rel = _parse_relationship(raw, i, by_name, tname, bad)
        if rel is not None:
            relationships.append(rel)

    trust = _parse_trust(data["trust"], by_name, tname, bad) if "trust" in data else None
    contradictions = None
    if "contradictions" in data:
        raw_rules = data["contradictions"]
        if not isinstance(raw_rules, list):
            bad("contradictions: must be a list of rules", table=tname)
            raw_rules = []
        rules = [_parse_contradiction(r, i, by_name, tname, bad) for i, r in enumerate(raw_rules)]
        contradictions = tuple(r for r in rules if r is not None)
        names = [r["name"] for r in contradictions]
        for n in sorted({n for n in names if names.count(n) > 1}):
            bad(f"contradictions: the rule name {n} is used twice", table=tname)

    if problems or tname is None:          # a name that is not text is a problem above
        return None, problems
    return TableSchema(tname, tuple(fields), tuple(indexes), tuple(relationships), description, version, immutable,
                       source, nullable_rule=rule, stored_form=stored_form, trust=trust,
                       contradictions=contradictions), []


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _known_keys(raw: dict, known: Collection[str], where: str, table: str | None, bad: _Report) -> bool:
    """Whether every key of ``raw`` is one of ``known`` (each other one reported)."""
    ok = True
    for k in raw:
        if k not in known:
            bad(f"{where}: unknown key {k!r} (known: {', '.join(sorted(known))})", table=table)
            ok = False
    return ok


def _parse_trust(raw: Any, by_name: dict, table: str | None, bad: _Report) -> dict | None:
    if not isinstance(raw, dict):
        bad("trust: must be a mapping (weights, source_field, sources, default_source, freshness_field)", table=table)
        return None
    ok = _known_keys(raw, TRUST_KEYS, "trust", table, bad)
    weights = raw.get("weights", {})
    if not isinstance(weights, dict) or not all(k in TRUST_FACTORS and _number(v) and v >= 0
                                                 for k, v in weights.items()):
        bad(f"trust.weights: a mapping of factors ({', '.join(TRUST_FACTORS)}) to numbers >= 0", table=table)
        ok = False
    elif weights and sum(weights.values()) <= 0:
        bad("trust.weights: at least one weight must be above 0", table=table)
        ok = False
    for key in ("source_field", "freshness_field"):
        if key in raw and (not isinstance(raw[key], str) or raw[key] not in by_name):
            bad(f"trust.{key}: {raw[key]!r} is not a field of this table", table=table)
            ok = False
    sources = raw.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(k, str) and _number(v) and 0 <= v <= 1
                                                for k, v in sources.items()):
        bad("trust.sources: a mapping of source names to scores from 0 to 1", table=table)
        ok = False
    if "default_source" in raw and not (_number(raw["default_source"]) and 0 <= raw["default_source"] <= 1):
        bad("trust.default_source: a score from 0 to 1", table=table)
        ok = False
    return dict(raw) if ok else None


def _parse_contradiction(raw: Any, i: int, by_name: dict, table: str | None, bad: _Report) -> dict | None:
    where = f"contradictions[{i}]"
    if not isinstance(raw, dict):
        bad(f"{where}: must be a mapping with name, kind and fields", table=table)
        return None
    ok = _known_keys(raw, CONTRADICTION_KEYS, where, table, bad)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        bad(f"{where}: name: a rule needs a name (text)", table=table)
        ok = False
    kind = raw.get("kind", "near_duplicate")
    if kind not in CONTRADICTION_KINDS:
        bad(f"{where}: kind: {kind!r} must be one of {', '.join(CONTRADICTION_KINDS)}", table=table)
        ok = False
    for key in ("fields", "key"):
        names = raw.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            bad(f"{where}: {key}: a list of field names", table=table)
            ok = False
            continue
        for n in names:
            if n not in by_name:
                bad(f"{where}: {key}: {n!r} is not a field of this table", table=table)
                ok = False
    if not raw.get("fields"):
        bad(f"{where}: fields: name the fields the rule compares", table=table)
        ok = False
    if kind == "conflicting_values" and not raw.get("key"):
        bad(f"{where}: key: a conflicting_values rule names the fields that identify the same thing", table=table)
        ok = False
    threshold = raw.get("threshold", 0.85)
    if not (_number(threshold) and 0 < threshold <= 1):
        bad(f"{where}: threshold: a similarity above 0 and at most 1", table=table)
        ok = False
    severity = raw.get("severity", "medium")
    if severity not in SEVERITIES:
        bad(f"{where}: severity: {severity!r} must be one of {', '.join(SEVERITIES)}", table=table)
        ok = False
    if not ok:
        return None
    out = {"name": name, "kind": kind, "fields": list(raw["fields"]), "severity": severity}
    if kind == "near_duplicate":
        out["threshold"] = threshold
    else:
        out["key"] = list(raw["key"])
    if raw.get("description"):
        out["description"] = str(raw["description"])
    return out


def _parse_field(raw: Any, i: int, table: str | None, bad: _Report, grace: bool = False) -> FieldSpec | None:
    if not isinstance(raw, dict):
        bad(f"fields[{i}] must be a mapping with name: and type:, found {type(raw).__name__}", table=table)
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        bad(f"fields[{i}]: name {name!r} is not a valid field name (letters, digits, _; not starting with a digit)",
            table=table)
        return None
    ok = True

    def fail(reason: str) -> None:
        nonlocal ok
        ok = False
        bad(reason, name, table)

    for key in raw:
        if key not in FIELD_KEYS:
            fail(f"unknown key {key!r} (known: {', '.join(sorted(FIELD_KEYS))})")
    declared_type = raw.get("type")
    ftype = TYPES.get(declared_type) if isinstance(declared_type, str) else None
    if ftype is None:
        fail(f"unknown type {declared_type!r} (types: {', '.join(TYPES)})")
        return None
    flags = {}
    for key in ("primary_key", "required", "unique", "nullable"):
        v = raw.get(key)
        if v is not None and not isinstance(v, bool):
            fail(f"{key}: {v!r} must be true or false")
        flags[key] = v
    primary_key = bool(flags["primary_key"])
    required = bool(flags["required"])
    gen = raw.get("generated", False)
    generated = {False: None, None: None, True: "insert", "insert": "insert", "update": "update"}.get(gen, "?") \
        if not isinstance(gen, (list, dict)) else "?"
    if generated == "?":
        fail(f"generated: {gen!r} must be true, false or update")
        generated = None
    elif generated == "update" and ftype != "datetime":
        fail("generated: update is for datetime fields (set on every write)")
    elif generated == "insert" and ftype not in ("uuid", "datetime", "integer"):
        fail(f"generated: a {ftype} field cannot be generated (uuid, datetime and integer primary keys can)")
    elif generated == "insert" and ftype == "integer" and not primary_key:
        fail("generated: an integer is generated only as the primary key (the next number)")
    if primary_key and ftype in ("json", "float", "boolean"):
        fail(f"primary_key: a {ftype} field cannot be the primary key")
    nullable = flags["nullable"]
    if nullable is None:
        # Grace's registry makes a column NOT NULL unless it says nullable: true;
        # chronoledger's form (a file with version:) lets it be null unless it is
        # the primary key or required (docs/tables.md, "Grace's files")
        nullable = False if grace else not (primary_key or required)
    elif nullable and (primary_key or required):
        fail(f"nullable: true contradicts {'primary_key' if primary_key else 'required'}: true")

    allowed_raw = raw.get("allowed", raw.get("enum"))
    if "allowed" in raw and "enum" in raw and raw["allowed"] != raw["enum"]:
        fail("allowed: and enum: mean the same thing and disagree; keep one")
    allowed = None
    if allowed_raw is not None:
        if not isinstance(allowed_raw, list) or not allowed_raw:
            fail("allowed: must be a non-empty list of values")
        elif ftype in ("json",):
            fail("allowed: is not for json fields")
        else:
            stored = []
            for a in allowed_raw:
                try:
                    stored.append(values.coerce(ftype, a))
                except values.Bad as exc:
                    fail(f"allowed value {a!r}: {exc}")
            if len(set(stored)) != len(stored):
                fail("allowed: lists a value twice")
            allowed = tuple(stored)

    lo, hi = raw.get("min"), raw.get("max")
    for key, v in (("min", lo), ("max", hi)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            fail(f"{key}: {v!r} must be a finite number")
        elif v is not None and ftype not in ("integer", "float"):
            fail(f"{key}: is for integer and float fields, not {ftype}")
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi and not isinstance(lo, bool):
        fail(f"min ({lo}) is greater than max ({hi})")

    default, default_now = values.MISSING, False
    if "default" in raw:
        d = raw["default"]
        if d == "now" and ftype in ("datetime", "date"):
            default_now = True
        elif d is None:
            if not nullable:
                fail("default: null, but the field is not nullable")
            default = None
        else:
            try:
                default = values.coerce(ftype, d)
            except values.Bad as exc:
                fail(f"bad default {d!r}: {exc}")
            else:
                if allowed is not None and default not in allowed:
                    fail(f"default {d!r} is not among the allowed values")
                if ftype in ("integer", "float") and not isinstance(lo, bool) and \
                        ((isinstance(lo, (int, float)) and default < lo) or (isinstance(hi, (int, float)) and
                                                                               default > hi)):
                    fail(f"default {d!r} is outside min/max")
        if primary_key and (default is not values.MISSING or default_now):
            fail("a primary key has no default (it is given, or generated)")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        fail("description: must be text")
    if not ok:
        return None
    return FieldSpec(name, ftype, primary_key, generated, required, bool(flags["unique"]), bool(nullable), default,
                     default_now, allowed, description, lo, hi)


def _parse_index(raw: Any, i: int, by_name: dict, table: str | None, bad: _Report,
                 declared: Collection[object] = frozenset()) -> IndexSpec | None:
    if isinstance(raw, list):               # a bare list of fields is accepted
        raw = {"fields": raw}
    if not isinstance(raw, dict):
        bad(f"indexes[{i}] must be {{fields: [...], unique: true|false}}", table=table)
        return None
    ok = _known_keys(raw, INDEX_KEYS, f"indexes[{i}]", table, bad)
    cols = raw.get("fields")
    if isinstance(cols, str):
        cols = [cols]
    if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
        bad(f"indexes[{i}]: fields: must be a non-empty list of field names", table=table)
        return None
    for c in cols:
        if c not in by_name:
            if c not in declared:           # a field refused above is reported there, not again here
                bad(f"indexes[{i}]: index on an unknown field", c, table)
            ok = False
    if len(set(cols)) != len(cols):
        bad(f"indexes[{i}]: a field is listed twice", table=table)
        ok = False
    unique = raw.get("unique", False)
    if not isinstance(unique, bool):
        bad(f"indexes[{i}]: unique: {unique!r} must be true or false", table=table)
        ok = False
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not IDENTIFIER.match(name)):
        bad(f"indexes[{i}]: name {name!r} is not a valid identifier", table=table)
        ok = False
    elif isinstance(name, str) and name.lower().startswith(RESERVED_PREFIXES):
        bad(f"indexes[{i}]: index names starting with {' or '.join(RESERVED_PREFIXES)} are reserved", table=table)
        ok = False
    return IndexSpec(tuple(cols), unique, name) if ok else None


def _parse_relationship(raw: Any, i: int, by_name: dict, table: str | None, bad: _Report) -> Relationship | None:
    if not isinstance(raw, dict):
        bad(f"relationships[{i}] must be {{field, table, references}} or Grace's {{table, type, foreign_key}}",
            table=table)
        return None
    if "type" in raw or "foreign_key" in raw:
        return _parse_grace_relationship(raw, i, by_name, table, bad)
    ok = _known_keys_and_table(raw, RELATIONSHIP_KEYS, i, table, bad,
                               f"; or Grace's {', '.join(sorted(GRACE_RELATIONSHIP_KEYS))}")
    fld, other, ref = raw.get("field"), raw.get("table"), raw.get("references")
    if not isinstance(fld, str) or fld not in by_name:
        bad(f"relationships[{i}]: field {fld!r} is not a field of this table", table=table)
        ok = False
    if ref is not None and (not isinstance(ref, str) or not IDENTIFIER.match(ref)):
        bad(f"relationships[{i}]: references {ref!r} is not a valid field name", table=table)
        ok = False
    description = raw.get("description") or ""
    if not ok or not isinstance(fld, str) or not isinstance(other, str):     # (the types: refused above)
        return None
    return Relationship(fld, other, ref, description if isinstance(description, str) else "")


def _known_keys_and_table(raw: dict, known: frozenset[str], i: int, table: str | None, bad: _Report,
                          also: str) -> bool:
    """A relationship's keys are ``known`` and its table is a valid name (each problem reported)."""
    ok = True
    for key in raw:
        if key not in known:
            bad(f"relationships[{i}]: unknown key {key!r} (known: {', '.join(sorted(known))}{also})", table=table)
            ok = False
    other = raw.get("table")
    if not isinstance(other, str) or not IDENTIFIER.match(other):
        bad(f"relationships[{i}]: table {other!r} is not a valid table name", table=table)
        ok = False
    return ok


def _parse_grace_relationship(raw: dict, i: int, by_name: dict, table: str | None,
                              bad: _Report) -> Relationship | None:
    ok = _known_keys_and_table(raw, GRACE_RELATIONSHIP_KEYS, i, table, bad, " in Grace's form")
    other, kind, fk = raw.get("table"), raw.get("type"), raw.get("foreign_key")
    if kind not in GRACE_RELATIONSHIP_TYPES:
        bad(f"relationships[{i}]: type {kind!r} is not one of {', '.join(GRACE_RELATIONSHIP_TYPES)}", table=table)
        ok = False
    if not isinstance(fk, str) or not IDENTIFIER.match(fk):
        bad(f"relationships[{i}]: foreign_key {fk!r} is not a valid field name", table=table)
        ok = False
    elif kind == "many_to_one" and fk not in by_name:
        bad(f"relationships[{i}]: foreign_key {fk!r} is not a field of this table (many_to_one: the key is "
            f"on this side)", table=table)
        ok = False
    description = raw.get("description") or ""
    if not ok or not isinstance(other, str) or not isinstance(fk, str):
        return None
    description = description if isinstance(description, str) else ""
    if kind == "many_to_one":
        return Relationship(fk, other, None, description, "many_to_one")
    return Relationship(None, other, fk, description, "one_to_many")     # checked against the other table at load


def read_schema_file(path: str | os.PathLike[str]) -> tuple[TableSchema | None, list[SchemaProblem]]:
    """One schema file: the schema, or None and its problems (with line numbers for bad YAML)."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        return None, [SchemaProblem(str(p), None, None, f"cannot be read: {exc.strerror or exc}")]
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        return None, [SchemaProblem(str(p), None, None, f"{line}malformed YAML: {what}")]
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        return None, [SchemaProblem(str(p), None, None, f"malformed YAML: {exc}")]
    return parse_schema(data, str(p))


def schema_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The .yaml/.yml files of a folder, in name order."""
    p = Path(folder)
    return sorted(x for x in p.iterdir() if x.is_file() and x.suffix.lower() in (".yaml", ".yml"))


def check_relationships(schemas: dict[str, TableSchema]) -> list[SchemaProblem]:
    """Relationships to tables or fields that no loaded schema declares."""
    out = []
    for s in schemas.values():
        for r in s.relationships:
            other = schemas.get(r.table)
            if other is None:
                out.append(SchemaProblem(s.source, s.name, r.field, f"relationship to unknown table {r.table!r}"))
            elif r.references is not None and r.references not in other.by_name:
                out.append(SchemaProblem(s.source, s.name, r.field,
                                         f"relationship to unknown field {r.table}.{r.references}"
                                         + (" (one_to_many: the foreign key is a field of the other table)"
                                            if r.kind == "one_to_many" else "")))
    return out


# --- comparing ----------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """One difference between the applied schema of a table and a new one."""
    kind: str              # see RISK
    field: str | None
    detail: str
    risk: str

    def as_dict(self) -> dict:
        return {"kind": self.kind, "field": self.field, "detail": self.detail, "risk": self.risk}


RISK_ORDER = {"low": 0, "medium": 1, "high": 2}


def compare(old: TableSchema, new: TableSchema) -> list[Change]:
    """What changes from ``old`` to ``new``, each with its risk (docs/tables.md, Governance)."""
    out: list[Change] = []

    def add(kind, fld, detail, risk):
        out.append(Change(kind, fld, detail, risk))

    for f in new.fields:
        o = old.by_name.get(f.name)
        if o is None:
            if f.primary_key:
                add("primary_key", f.name, "a new primary key", "high")
            elif f.required or not f.nullable or f.unique:
                add("add_field", f.name, f"a new {'required ' if f.required else ''}{f.type} field"
                    f"{' (unique)' if f.unique else ''}", "medium")
            else:
                add("add_field", f.name, f"a new nullable {f.type} field", "low")
            continue
        if o.type != f.type:
            add("retype_field", f.name, f"type {o.type} -> {f.type}", "high")
        if o.primary_key != f.primary_key:
            add("primary_key", f.name, "the primary key moves", "high")
        tighter, looser = _constraint_changes(o, f)
        for what in tighter:
            add("constrain_field", f.name, what, "medium")
        for what in looser:
            add("relax_field", f.name, what, "low")
        if (o.default, o.default_now, o.generated, o.description) != (f.default, f.default_now, f.generated,
                                                                        f.description):
            add("describe_field", f.name, "default, generation or description", "low")
    for o in old.fields:
        if o.name not in new.by_name:
            add("drop_field", o.name, f"the {o.type} field and its values are dropped", "high")
    old_ix = {i.declared().__repr__(): i for i in old.indexes}
    new_ix = {i.declared().__repr__(): i for i in new.indexes}
    for k, ix in new_ix.items():
        if k not in old_ix:
            add("add_index", None, f"{'unique ' if ix.unique else ''}index on {', '.join(ix.fields)}",
                "medium" if ix.unique else "low")
    for k, ix in old_ix.items():
        if k not in new_ix:
            add("drop_index", None, f"index on {', '.join(ix.fields)}", "low")
    if old.immutable != new.immutable:
        add("immutable", None, f"immutable {old.immutable} -> {new.immutable}", "high")
    if (old.description, old.version, old.relationships) != (new.description, new.version, new.relationships):
        add("describe_table", None, "description, version or relationships", "low")
    if (old.trust, old.contradictions) != (new.trust, new.contradictions):
        add("rules", None, "trust weights or contradiction rules", "low")
    return out


def _constraint_changes(o: FieldSpec, f: FieldSpec) -> tuple[list[str], list[str]]:
    tighter, looser = [], []
    for key, word in (("required", "required"), ("unique", "unique")):
        a, b = getattr(o, key), getattr(f, key)
        if b and not a:
            tighter.append(f"now {word}")
        elif a and not b:
            looser.append(f"no longer {word}")
    if o.nullable and not f.nullable:
        tighter.append("no longer nullable")
    elif f.nullable and not o.nullable:
        looser.append("now nullable")
    if o.allowed != f.allowed:
        before = set(o.allowed) if o.allowed is not None else None
        after = set(f.allowed) if f.allowed is not None else None
        if after is not None and (before is None or not after >= before):
            tighter.append("fewer allowed values")
        elif after != before:
            looser.append("more allowed values")
    for key, tighter_if in (("min", lambda a, b: b > a), ("max", lambda a, b: b < a)):
        a, b = getattr(o, key), getattr(f, key)
        if a != b:
            if b is not None and (a is None or tighter_if(a, b)):
                tighter.append(f"{key} {a} -> {b}")
            else:
                looser.append(f"{key} {a} -> {b}")
    return tighter, looser


def overall_risk(changes: list[Change], schema: TableSchema, governance_tables: frozenset[str]) -> str:
    """The highest risk of the changes; anything touching a governance table is high."""
    if not changes:
        return "low"
    if schema.name in governance_tables or schema.immutable:
        return "high"
    return max((c.risk for c in changes), key=RISK_ORDER.__getitem__)
