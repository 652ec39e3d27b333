"""TableRegistry: YAML-declared tables in one SQLite database, every write
validated, every query built from checked names and bound values, every new
table or schema change put through governance, every write published to a
chronicle event log beside the database.  docs/tables.md is the guide."""

from __future__ import annotations

import contextlib

import dataclasses
import getpass
import json
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from collections.abc import Iterable, Iterator
from typing import Any

import apsw
import numpy as np

from chronoledger import sqlite as db
from chronoledger._isotime import iso_text
from chronoledger.chronicle import Chronicle, WriterLockedError
from chronoledger.errors import (ChronoledgerError, ConfigError, CorruptDataError, DatabaseBusyError, NotFoundError,
                                 QueryError, SchemaError, StorageError, ValidationError)
from chronoledger.tables import adopt as adoption
from chronoledger.tables import contradictions, governance, trust, values
from chronoledger.tables import query as qb
from chronoledger.tables.schema import (SchemaProblem, TableSchema, auto_index_name, check_relationships, compare,
                                        overall_risk, parse_schema, q, read_schema_file, schema_files)
from chronoledger.tables.validate import Problem, RowValidator

#: The packaged catalogue (python/chronoledger/tables/schemas/).
CATALOGUE = "chronoledger.tables"
GOVERNANCE_TABLE = "memory_governance_decisions"
#: Tables whose schema changes are always high risk.
GOVERNANCE_TABLES = frozenset({GOVERNANCE_TABLE})
_DEFAULT_LOG = object()
_logger = logging.getLogger("chronoledger.tables")
#: A write of more rows is published as several events (a payload stays small).
_IDS_PER_EVENT = 1000
#: The changes the governance table accepts (through a high-risk proposal): additions only.
_RISKS = ("low", "medium", "high")
#: The registry connection's page cache ceiling, in KiB (filled only as pages are read).
CACHE_KIB = 64 * 1024
_GOVERNANCE_CHANGES = frozenset({"add_field", "add_index", "describe_field", "describe_table"})


@dataclass
class LoadReport:
    """What :meth:`TableRegistry.load_all_schemas` did."""
    loaded: list[str] = field(default_factory=list)        # every table whose schema file is good
    created: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)       # low-risk changes, applied
    proposed: list[dict] = field(default_factory=list)     # changes waiting for approval
    problems: list[SchemaProblem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)       # packaged schemas that yielded to the user's

    def __str__(self) -> str:
        lines = [f"{len(self.loaded)} schemas loaded; {len(self.created)} tables created, {len(self.altered)} "
                 f"altered, {len(self.proposed)} changes waiting for approval, {len(self.problems)} problems"]
        lines += [f"  proposal {p['id']}: {p['table_name']} ({p['risk']} risk)" for p in self.proposed]
        lines += [f"  {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notices]
        return "\n".join(lines)


class TableRegistry:
    """YAML-declared tables in the SQLite database at ``db_path``.

    ``schema_dirs``: folders of the user's schema files, read by
    :meth:`load_all_schemas`.  A folder you name is what you get: the
    packaged catalogue is loaded only when no folder is named
    (``catalogue=None``), or when ``catalogue=True`` asks for it, and then a
    table your files declare is yours, the catalogue's file of the same name
    is left out with a notice.  The governance table every decision is
    written to comes from your folder when it declares one (Grace's
    governance.yaml does), else from the catalogue.  ``events_log``: the chronicle every write is published to
    (default: beside the database, ``<name>.events.cmeta``; None: no log).
    ``actor``: who proposes and approves when a call does not say (default:
    the login name).  ``log_idle_seconds``: how long the event log stays
    held after the last write before it is let go for other processes.

    A database another program made from the same schema files (Grace's
    registry) is refused with a SchemaError and left as it is, unless
    ``adopt=True``: then its tables are checked against the schema folders
    (every problem reported, nothing written, if any), and taken under
    governance as they are, every row kept, new rows written in Grace's
    stored forms (docs/tables.md, "Adopting a Grace database").
    ``adoption`` is then the :class:`~chronoledger.tables.adopt.AdoptionPlan` carried out.
    """

    def __init__(self, db_path: str | os.PathLike[str], schema_dirs: Iterable[str | os.PathLike[str]] | None = (), *,
                 catalogue: bool | None = None, events_log: Any = _DEFAULT_LOG, actor: str | None = None,
                 synchronous: str = "normal", busy_timeout_ms: int = db.DEFAULT_BUSY_TIMEOUT_MS,
                 log_idle_seconds: float = 1.0, adopt: bool = False):
        self.path = Path(db_path)
        self.schema_dirs = [Path(d) for d in ([schema_dirs] if isinstance(schema_dirs, (str, os.PathLike))
                                              else schema_dirs or ())]
        self.catalogue = not self.schema_dirs if catalogue is None else bool(catalogue)
        self.notices: list[str] = []
        self.actor = actor or _login()
        self.busy_timeout_ms = busy_timeout_ms
        self.problems: list[SchemaProblem] = []
        self._lock = threading.RLock()
        # one publisher at a time; always taken before _lock, never while holding it
        self._publishing = threading.Lock()
        self._log: Chronicle | None = None    # the event log's writer, once this registry holds it
        self._published_upto = 0              # the last outbox seq this registry put in the log
        if events_log is _DEFAULT_LOG:
            events_log = self.path.with_name(self.path.stem + ".events.cmeta")
        self.events_log = Path(events_log) if events_log is not None else None
        if self.events_log is not None and not self.events_log.parent.is_dir():
            raise ConfigError(f"{self.events_log}: the folder of the event log does not exist")
        self._applied: dict[str, TableSchema] = {}
        self._adopting: adoption.AdoptionPlan | None = None
        self.adoption: adoption.AdoptionPlan | None = None
        foreign = adoption.foreign_tables(self.path)
        if foreign:                 # checked read-only: a database we refuse is left byte-identical
            if not adopt:
                raise SchemaError(
                    f"{self.path}: another program made this database (its tables: {', '.join(foreign[:6])}"
                    f"{', ...' if len(foreign) > 6 else ''}) and chronoledger has not written to it; to take it "
                    f"under the registry with every row kept, adopt it: TableRegistry(..., adopt=True) or "
                    f"`chronoledger tables --db {self.path} --schemas FOLDER adopt`")
            schemas, problems = self.read_schemas()
            plan = adoption.plan(self.path, schemas)
            plan.problems[:0] = problems
            if plan.problems:
                raise SchemaError(f"{self.path}: not adopted, nothing was written:\n{plan}")
            self.adoption = plan
        # the connection, None once closed (then _conn says so)
        # a 64 MiB page cache (SQLite's default is 2 MiB): the indexes of a table of a million rows stay in
        # memory through a bulk insert; 100,000 validated inserts took 2.15 s instead of 2.30 s with it
        self._db: apsw.Connection | None = db.connect(self.path, synchronous=synchronous,
                                                      busy_timeout_ms=busy_timeout_ms, cache_kib=CACHE_KIB)
        try:
            if self.adoption is not None:
                self._adopt(self.adoption)
            db.migrate(self._conn, db.migrations("chronoledger.tables"), self.path)
            # apsw's stub types a scalar function as taking any number of values (ScalarProtocol is
            # Callable[[*SQLiteValues], ...]); numargs=2 is what says it takes two, which a stub cannot tie together
            self._conn.createscalarfunction("json_contains", qb.json_contains, 2,  # type: ignore[arg-type]
                                            deterministic=True)
            self._conn.createscalarfunction("json_equal", qb.json_equal, 2,  # type: ignore[arg-type]
                                            deterministic=True)
            self._validators: dict[str, RowValidator] = {}
            self._refresh()
            self._bootstrap_governance()
        except BaseException as exc:
            self._conn.close()
            if isinstance(exc, apsw.Error):
                raise db.sqlite_error(exc, self.path) from None
            raise
        # WAL checkpoints and publishing on threads of their own, off the writer's commits
        self._checkpointer = db.BackgroundCheckpointer(self._conn, self.path)
        self._publisher = _Publisher(self, log_idle_seconds)
        self._held = _Held(self._checkpointer, self._publisher, self._conn)
        # a registry dropped without close() still stops its threads and closes its files
        self._finalizer = weakref.finalize(self, self._held.release)

    def _adopt(self, plan: adoption.AdoptionPlan) -> None:
        """Take the tables of ``plan`` under the registry in one transaction
        (a crash leaves the database as it was, or adopted): the registry's
        own tables made, each table's schema applied as it stands, in Grace's
        stored forms, and the decision recorded; no row rewritten."""
        steps = db.migrations("chronoledger.tables")
        with db.write_transaction(self._conn, f"{self.path}: adopting {len(plan.tables)} tables"):
            there = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if adoption.OWN_TABLE in there or not plan.tables.keys() <= there:
                raise SchemaError(f"{self.path}: another program changed the database while it was being "
                                  f"adopted; nothing was written; try again")
            for m in steps:
                self._conn.execute(m.sql)
            self._conn.execute(f"PRAGMA user_version={int(steps[-1].version)}")
            self._refresh()
            schemas, _ = self.read_schemas()
            self._adopting = plan
            try:
                gov = schemas.get(GOVERNANCE_TABLE) or self._packaged_governance()
                for schema in [gov] + [schemas[t] for t in sorted(plan.tables) if t != GOVERNANCE_TABLE]:
                    schema = dataclasses.replace(plan.as_found(schema), stored_form="grace", by_name={})
                    rows = plan.tables.get(schema.name)
                    why = (f"adopted from {self.path.name} as another program made it: {rows} "
                           f"row{'' if rows == 1 else 's'} kept as {'it is' if rows == 1 else 'they are'}"
                           if rows is not None else "every decision is recorded here (made when the database was "
                                                    "adopted)")
                    self._propose(schema, "registry", why, True)
                    self._refresh()
            finally:
                self._adopting = None

    def _packaged_governance(self) -> TableSchema:
        with resources.as_file(resources.files(CATALOGUE).joinpath("schemas").joinpath("governance.yaml")) as f:
            schema, problems = read_schema_file(f)
        if schema is None:                                   # pragma: no cover - the package is broken
            raise SchemaError("; ".join(map(str, problems)))
        return dataclasses.replace(schema, source=self._source_name(f, True))

    def _bootstrap_governance(self) -> None:
        """The decisions table exists before any decision: created at the
        first open (its own creation is its first row) from the user's
        schema file that declares it, else from the packaged catalogue."""
        if GOVERNANCE_TABLE in self._applied:
            return
        schema = self._user_governance() or self._packaged_governance()
        try:
            with db.write_transaction(self._conn, f"{self.path}: creating {GOVERNANCE_TABLE}"):
                self._refresh_if_changed()
                if GOVERNANCE_TABLE not in self._applied:        # another process may have just made it
                    self._propose(schema, "registry", "every decision is recorded here", True)
        finally:
            self._refresh()

    def _user_governance(self) -> TableSchema | None:
        """The governance table as the user's schema folders declare it (a
        good file), or None."""
        for d in self.schema_dirs:
            if not d.is_dir():
                continue
            for f in schema_files(d):
                schema, _ = read_schema_file(f)
                if schema is not None and schema.name == GOVERNANCE_TABLE:
                    return dataclasses.replace(schema, source=self._source_name(f, False))
        return None

    # --- plumbing -----------------------------------------------------------
    @property
    def _conn(self) -> apsw.Connection:
        """The registry's connection; a closed registry says so on any use."""
        conn = self._db
        if conn is None:
            raise ChronoledgerError(f"{self.path}: the registry is closed")
        return conn

    def close(self) -> None:
        """Publish what waits in the outbox, then close the event log and the database."""
        self._publisher.close()                 # outside the locks: it may be waiting for them
        with self._publishing, self._locked():
            if self._db is not None:
                try:
                    self._publish(wait=False, quiet=True)
                finally:
                    self._finalizer()
                    self._db = self._log = None

    def release_log(self) -> None:
        """Publish what waits, then let go of the event log so that another
        process can publish (done by itself after ``log_idle_seconds``)."""
        with self._publishing, self._locked():
            if self._db is None or self._log is None:
                return
            self._publish(wait=False, quiet=True)
            log, self._log, self._held.log = self._log, None, None
            try:
                log.close()
            except (ChronoledgerError, OSError) as exc:
                _logger.warning("%s: closing the event log failed: %s", self.path, exc)

    def _publish_soon(self) -> None:
        """The publisher thread's turn (never raises): the log is written
        and fsynced without the registry's lock, so writers go on meanwhile."""
        with self._publishing:
            self._publish(wait=False, quiet=True)

    def __enter__(self) -> "TableRegistry":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _locked(self):
        """This registry's lock, with a damaged database named as such."""
        with self._lock, db.named_damage(self.path):
            yield

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

    # --- loading schemas ----------------------------------------------------
    def read_schemas(self) -> tuple[dict[str, TableSchema], list[SchemaProblem]]:
        """Every schema of the catalogue and the schema folders, checked, and every problem found."""
        found: dict[str, TableSchema] = {}
        problems: list[SchemaProblem] = []
        notices: list[str] = []
        files: list[Path] = []
        root = resources.files(CATALOGUE).joinpath("schemas")
        with resources.as_file(root) as cat:
            # the user's files first: a table they declare is theirs, and the
            # catalogue's file of that name yields (with a notice)
            for d in self.schema_dirs:
                if not d.is_dir():
                    problems.append(SchemaProblem(str(d), None, None, "no such folder"))
                    continue
                files += schema_files(d)
            user_files = len(files)
            cat_files = schema_files(cat)
            if not self.catalogue:          # the governance table, unless the user's files declare it
                cat_files = [f for f in cat_files if f.stem == "governance"]
            files += cat_files
            for k, f in enumerate(files):
                packaged = k >= user_files
                schema, bad = read_schema_file(f)
                if schema is None:
                    problems += bad
                    continue
                # what is stored names the file without an absolute path
                schema = dataclasses.replace(schema, source=self._source_name(f, packaged))
                # SQLite's names ignore case: Foo and foo are one table
                twin = next((t for t in found.values() if t.name.lower() == schema.name.lower()), None)
                if twin is not None and packaged:
                    if self.catalogue or schema.name != GOVERNANCE_TABLE:
                        notices.append(f"{twin.source} declares {twin.name}: the packaged catalogue's "
                                       f"{schema.source} is left out")
                    continue
                if twin is not None:
                    problems.append(SchemaProblem(str(f), schema.name, None,
                                                  f"table {schema.name} is also declared in {twin.source}"
                                                  f"{' (as ' + twin.name + ')' if twin.name != schema.name else ''};"
                                                  f" this file is skipped"))
                    continue
                clash = next((n for n in self._applied if n.lower() == schema.name.lower() and n != schema.name), None)
                if clash is not None:
                    problems.append(SchemaProblem(str(f), schema.name, None, f"table {clash} exists already (SQLite "
                                                  f"names ignore case); this file is skipped"))
                    continue
                found[schema.name] = schema
        self.notices = notices
        bad_links = check_relationships({**self._applied, **found})
        problems += bad_links
        for p in bad_links:                   # a file with a problem is skipped, this one too
            if p.table in found and found[p.table].source == p.file:
                del found[p.table]
        return found, problems

    def _source_name(self, f: Path, packaged: bool) -> str:
        if packaged:
            return f"chronoledger/tables/schemas/{f.name}"
        try:
            return Path(os.path.relpath(f, self.path.resolve().parent)).as_posix()
        except ValueError:                 # another drive (Windows)
            return f.name

    def load_all_schemas(self) -> LoadReport:
        """Read the catalogue and the schema folders; create new tables,
        apply low-risk changes (added nullable fields, indexes), and turn
        riskier ones into proposals waiting for :meth:`approve`.  Problems
        in a file skip that file only; they are in the report and in
        ``self.problems``."""
        report = LoadReport()
        schemas, report.problems = self.read_schemas()
        report.notices = list(self.notices)
        with self._locked():
            self._refresh()
            ordered = sorted(schemas.values(), key=lambda s: (s.name != GOVERNANCE_TABLE, s.name))
            for schema in ordered:       # the governance table first: decisions about the rest go there
                report.loaded.append(schema.name)
                old = self._applied.get(schema.name)
                if old is not None and old.hash == schema.hash:
                    self._supersede_file_proposals(schema.name)     # a file changed back: its old proposal goes
                    continue
                pending = self._conn.execute(
                    "SELECT id FROM _registry_proposals WHERE table_name = ? AND schema_hash = ? AND status = 'pending' "
                    "AND base_hash IS ?", (schema.name, schema.hash, old.hash if old else None)).fetchall()
                if pending:                           # proposed at an earlier load, still waiting
                    report.proposed.append(self.proposal(db.expect(pending[0][0], str,
                                                                   f"{self.path}: _registry_proposals.id")))
                    continue
                try:
                    result = self.propose_schema(schema, proposed_by=f"schema file {schema.source}",
                                                 reason="declared in a schema file", _from_load=True)
                # this table only: the rest still load (SQLite's errors arrive as these already; a failing
                # disk, a busy or damaged database is not one table's problem, and stops the load)
                except (SchemaError, ValidationError) as exc:
                    why = str(exc)
                    named = f"{schema.source}: table {schema.name}: "     # the problem names them already
                    report.problems.append(SchemaProblem(schema.source, schema.name, None,
                                                         why[len(named):] if why.startswith(named) else why))
                    continue
                if result["status"] == "applied":
                    (report.created if result["kind"] == "create" else report.altered).append(schema.name)
                elif result["status"] == "pending":
                    report.proposed.append(result)
            self.problems = list(report.problems)
            self._after_write()
        return report

    # --- governance ---------------------------------------------------------
    def propose_schema(self, schema: TableSchema | dict | str | os.PathLike[str], *, proposed_by: str | None = None,
                       reason: str = "", risk: str | None = None, _from_load: bool = False) -> dict:
        """Propose a new table or a change to one: ``schema`` is a
        TableSchema, a mapping as a schema file holds, or a file's path.
        The risk is assessed (docs/tables.md); a low-risk proposal is
        approved and applied at once, a medium or high one waits for
        :meth:`approve` or :meth:`reject`.  ``risk``: at least this risk
        (an inferred schema's, from its confidence), whatever the assessment.
        Earlier pending proposals for the
        table that no longer fit it (made for a schema since changed, or,
        from a schema file, for what the file said before) are superseded.
        Returns the proposal."""
        schema = self._as_schema(schema)
        who = proposed_by or self.actor
        if risk is not None and risk not in _RISKS:
            raise SchemaError(f"risk must be one of {', '.join(_RISKS)}, got {risk!r}")
        with self._locked():
            try:
                with db.write_transaction(self._conn, f"{self.path}: proposing {schema.name}"):
                    self._refresh_if_changed()
                    pid = self._propose(schema, who, reason, _from_load, at_least=risk)
            finally:
                self._refresh_if_changed()
            self._after_write()
            return self.proposal(pid)

    def _propose(self, schema: TableSchema, who: str, reason: str, from_load: bool, at_least: str | None = None) -> str:
        old = self._applied.get(schema.name)
        schema = self._in_stored_form(schema, old)
        clash = next((n for n in self._applied if n.lower() == schema.name.lower() and n != schema.name), None)
        if clash is not None:
            raise SchemaError(f"{schema.name}: table {clash} exists already (SQLite names ignore case)")
        self._check_names(schema, old)
        if old is not None and old.hash == schema.hash:
            raise SchemaError(f"{schema.name}: the proposed schema is the one applied; nothing to change")
        if old is None:
            kind = "create"
            changes = [{"kind": "create_table", "field": None, "detail": f"{len(schema.fields)} fields",
                        "risk": "low"}]
            risk = "high" if schema.name in GOVERNANCE_TABLES and not from_load else "low"
        else:
            kind = "change"
            found = compare(old, schema)
            changes = [c.as_dict() for c in found]
            risk = overall_risk(found, schema, GOVERNANCE_TABLES)
            if schema.name in GOVERNANCE_TABLES:
                lost = [c for c in found if c.kind not in _GOVERNANCE_CHANGES]
                if lost:             # the record of every decision keeps its fields and stays immutable
                    what = ", ".join(f"{c.kind} {c.field}" if c.field else c.kind for c in lost)
                    raise SchemaError(f"{schema.name}: the decisions table can only gain fields and indexes; "
                                      f"refused: {what}")
        if at_least is not None and _RISKS.index(at_least) > _RISKS.index(risk):
            risk = at_least
        pid = governance.new_proposal_id()
        now = values.now()
        stale = self._conn.execute(
            "SELECT id FROM _registry_proposals WHERE table_name = ? AND status = 'pending' AND "
            "(base_hash IS NOT ? OR (? AND proposed_by LIKE 'schema file %'))",
            (schema.name, old.hash if old else None, from_load)).fetchall()
        for (sid,) in stale:
            self._conn.execute("UPDATE _registry_proposals SET status = 'superseded', decided_by = ?, decided_at = ?, "
                               "decision_reason = ? WHERE id = ?", (who, now, f"superseded by {pid}", sid))
        self._conn.execute(
            "INSERT INTO _registry_proposals (id, table_name, kind, risk, status, base_hash, schema_hash, "
            "schema_json, changes_json, proposed_by, reason, source, created_at) "
            "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
            (pid, schema.name, kind, risk, old.hash if old else None, schema.hash,
             json.dumps(schema.declared(), default=str), json.dumps(changes), who, reason, schema.source, now))
        if risk == "low":
            self._apply(pid, schema, old, approver=f"registry (automatic: low risk, proposed by {who})",
                        why=reason or "low risk: approved automatically")
        else:
            self._decide(pid, schema.name, "escalation", "pending", risk, who,
                         f"{risk} risk: waits for approval" + (f" ({reason})" if reason else ""), changes)
        return pid

    def _in_stored_form(self, schema: TableSchema, old: TableSchema | None) -> TableSchema:
        """``schema`` in the stored form its table keeps: a table's, fixed
        when it was made; a new table in an adopted database takes Grace's
        (the governance table's), so that Grace's code reads all of them."""
        gov = self._applied.get(GOVERNANCE_TABLE)
        form = old.stored_form if old is not None else \
            "grace" if gov is not None and gov.stored_form == "grace" else schema.stored_form
        return schema if form == schema.stored_form else dataclasses.replace(schema, stored_form=form)

    def _supersede_file_proposals(self, table: str) -> None:
        if not self._conn.execute("SELECT 1 FROM _registry_proposals WHERE table_name = ? AND status = 'pending' AND "
                                  "proposed_by LIKE 'schema file %'", (table,)).fetchall():
            return
        with db.write_transaction(self._conn, f"{self.path}: superseding proposals for {table}"):
            self._conn.execute("UPDATE _registry_proposals SET status = 'superseded', decided_by = 'registry', "
                               "decided_at = ?, decision_reason = 'the schema file declares the applied schema again' "
                               "WHERE table_name = ? AND status = 'pending' AND proposed_by LIKE 'schema file %'",
                               (values.now(), table))

    def approve(self, proposal_id: str, *, approver: str | None = None, reason: str = "") -> dict:
        """Apply a pending proposal, in one transaction.  Refused
        (SchemaError or ValidationError, nothing changed) when it is no
        longer pending, when the table changed since it was proposed, or
        when stored rows cannot satisfy the new schema."""
        who = approver or self.actor
        with self._locked():
            try:
                with db.write_transaction(self._conn, f"{self.path}: approving {proposal_id}"):
                    p = self._pending(proposal_id)      # inside the transaction: another process may have decided
                    self._refresh_if_changed()
                    schema, problems = parse_schema(p["schema"], p["source"] or f"proposal {proposal_id}", stored=True)
                    if schema is None:
                        raise SchemaError(f"proposal {proposal_id}: " + "; ".join(map(str, problems)))
                    old = self._applied.get(schema.name)
                    schema = self._in_stored_form(schema, old)
                    if (old.hash if old else None) != p["base_hash"]:
                        raise SchemaError(f"proposal {proposal_id}: {schema.name} has changed since it was proposed "
                                          f"(applied schema {old.hash[:12] if old else 'none'}); propose again")
                    self._apply(proposal_id, schema, old, approver=who, why=reason or "approved")
            finally:
                self._refresh_if_changed()
            self._after_write()
            return self.proposal(proposal_id)

    def reject(self, proposal_id: str, *, approver: str | None = None, reason: str = "") -> dict:
        """Reject a pending proposal; the decision is recorded, nothing is applied."""
        who = approver or self.actor
        with self._locked():
            with db.write_transaction(self._conn, f"{self.path}: rejecting {proposal_id}"):
                p = self._pending(proposal_id)
                self._refresh_if_changed()
                now = values.now()
                self._conn.execute("UPDATE _registry_proposals SET status = 'rejected', decided_by = ?, decided_at = ?,"
                                   " decision_reason = ? WHERE id = ?", (who, now, reason or "rejected", proposal_id))
                self._decide(proposal_id, p["table_name"], "denial", "rejected", p["risk"], who,
                             reason or "rejected", p["changes"])
            self._after_write()
            return self.proposal(proposal_id)

    def _pending(self, proposal_id: str) -> dict:
        p = self.proposal(proposal_id)
        if p["status"] != "pending":
            raise SchemaError(f"proposal {proposal_id} is {p['status']}, not pending"
                              + (f" ({p['decision_reason']})" if p.get("decision_reason") else ""))
        return p

    def proposal(self, proposal_id: str) -> dict:
        """One proposal: its table, kind, risk, status, changes, schema and decision."""
        with self._locked():
            self._check_open()
            rows = list(self._conn.execute("SELECT * FROM _registry_proposals WHERE id = ?", (proposal_id,)))
            if not rows:
                raise NotFoundError(f"{self.path}: no proposal {proposal_id!r}")
            return _proposal_dict(rows[0])

    def proposals(self, *, table: str | None = None, status: str | None = None) -> list[dict]:
        """Proposals, oldest first, optionally of one table and/or status."""
        sql, args = "SELECT * FROM _registry_proposals WHERE 1", []
        if table is not None:
            sql += " AND table_name = ?"
            args.append(table)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        with self._locked():
            return [_proposal_dict(r) for r in self._conn.execute(sql + " ORDER BY created_at, rowid", args)]

    def history(self, table: str) -> list[dict]:
        """Everything that happened to ``table``'s schema, in order: schemas
        applied and proposals made (with their decisions)."""
        with self._locked():
            out = []
            for seq, version, h, change, pid, at in self._conn.execute(
                    "SELECT seq, version, schema_hash, change, proposal_id, applied_at FROM _registry_history "
                    "WHERE table_name = ? ORDER BY seq", (table,)):
                out.append({"at": at, "event": f"schema {change}", "version": version, "schema_hash": h,
                            "proposal_id": pid})
            for p in self.proposals(table=table):
                out.append({"at": p["created_at"], "event": f"proposed ({p['kind']}, {p['risk']} risk)",
                            "proposal_id": p["id"], "by": p["proposed_by"], "changes": p["changes"]})
                if p["decided_at"]:
                    out.append({"at": p["decided_at"], "event": p["status"], "proposal_id": p["id"],
                                "by": p["decided_by"], "reason": p["decision_reason"]})
            if not out:
                raise NotFoundError(f"{self.path}: no history for table {table!r}")
            out.sort(key=lambda e: (e["at"], 0 if e["event"].startswith("proposed") else 1))
            return out

    def _as_schema(self, schema: Any) -> TableSchema:
        if isinstance(schema, TableSchema):
            return schema
        if isinstance(schema, dict):
            parsed, problems = parse_schema(schema, "<proposal>")
        elif isinstance(schema, (str, os.PathLike)):
            parsed, problems = read_schema_file(schema)
        else:
            raise SchemaError(f"a schema is a TableSchema, a mapping or a file path, got {type(schema).__name__}")
        if parsed is None:
            raise SchemaError("the schema has problems: " + "; ".join(map(str, problems)))
        return parsed

    def _check_names(self, schema: TableSchema, old: TableSchema | None) -> None:
        """The names the schema would add to the database (its table's and
        its indexes') against everything in it: SQLite keeps tables, views
        and indexes in one namespace and compares names without regard to
        case.  A SchemaError naming the schema's file, the table and the name."""
        where = f"{schema.source or '<proposal>'}: table {schema.name}"
        why = "(SQLite keeps table, view and index names in one namespace that ignores case)"
        indexes = list(schema.index_statements())
        for name in indexes:
            if name.lower() == schema.name.lower():
                raise SchemaError(f"{where}: index name {name} is the table's own name {why}")
        mine = {n.lower() for n in (old.index_statements() if old is not None else ())}
        for kind, name in [("table", schema.name)] + [("index", n) for n in indexes]:
            for typ, found, owner in self._conn.execute(
                    "SELECT type, name, tbl_name FROM sqlite_master WHERE type IN ('table', 'view', 'index') "
                    "AND lower(name) = lower(?)", (name,)).fetchall():
                found = db.expect(found, str, f"{self.path}: sqlite_master.name")     # SQLite's names are text
                if kind == "table" and typ == "table" and found == schema.name and \
                        (old is not None or self._adopted_here(schema.name)):
                    continue                    # the table itself, being changed or adopted
                if kind == "index" and typ == "index" and owner == schema.name and \
                        (found == name or found.lower() in mine or self._adopted_here(schema.name)):
                    continue                    # its own index, kept or replaced by the change
                if kind == "table" and typ == "table":
                    if found in self._applied:
                        raise SchemaError(f"{where}: table {found} exists already {why}")
                    raise SchemaError(f"{where}: a table {found} exists that the registry did not create "
                                      f"(in {self.path}); rename it or declare another table name")
                taken = f"index {found} of table {owner}" if typ == "index" else f"{typ} {found}"
                raise SchemaError(f"{where}: {kind} name {name} is taken by {taken} {why}")

    def _apply(self, pid: str, schema: TableSchema, old: TableSchema | None, *, approver: str, why: str) -> None:
        """Apply ``schema`` (inside the caller's write transaction) and record the decision."""
        now = values.now()
        self._check_names(schema, old)          # again: another process may have taken a name since the proposal
        try:
            if old is None and self._adopted_here(schema.name):
                self._adopt_table(schema)
                change = "adopt"
            elif old is None:
                self._conn.execute(schema.create_sql())
                change = "create"
            else:
                change = governance.migrate_table(self._conn, old, schema, pid, now)
        except apsw.SQLError as exc:            # SQLite refused a statement the checks let through
            raise db.sqlite_error(exc, self.path, f"{schema.source or 'proposal ' + pid}: table {schema.name}: "
                                                  f"the change cannot be applied") from None
        self._conn.execute(
            "INSERT INTO _registry_tables (table_name, version, schema_hash, schema_json, source, applied_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (table_name) DO UPDATE SET version = excluded.version, "
            "schema_hash = excluded.schema_hash, schema_json = excluded.schema_json, source = excluded.source, "
            "applied_at = excluded.applied_at",
            (schema.name, _text_or_none(schema.version), schema.hash, json.dumps(schema.declared(), default=str),
             schema.source, now))
        self._conn.execute("INSERT INTO _registry_history (table_name, version, schema_hash, schema_json, change, "
                           "proposal_id, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (schema.name, _text_or_none(schema.version), schema.hash,
                            json.dumps(schema.declared(), default=str), change, pid, now))
        self._conn.execute("UPDATE _registry_proposals SET status = 'applied', decided_by = ?, decided_at = ?, "
                           "decision_reason = ? WHERE id = ?", (approver, now, why, pid))
        risk, changes = self._conn.execute("SELECT risk, changes_json FROM _registry_proposals WHERE id = ?",
                                           (pid,)).fetchall()[0]
        where = f"{self.path}: _registry_proposals ({pid})"
        # the caches follow the database after the commit (_refresh_if_changed), never before it
        self._decide(pid, schema.name, "approval", "approved", db.expect(risk, str, f"{where}.risk"), approver, why,
                     json.loads(db.expect(changes, str, f"{where}.changes_json")),
                     gov=schema if schema.name == GOVERNANCE_TABLE else None)
        self._outbox(schema.name, f"schema_{change}", [pid], now)

    def _adopted_here(self, table: str) -> bool:
        return self._adopting is not None and table in self._adopting.tables

    def _adopt_table(self, schema: TableSchema) -> None:
        """An adopted table gains the indexes its schema declares (an index
        changes no row), but not a second one on a column already unique."""
        assert self._adopting is not None
        unique = self._adopting.unique_columns.get(schema.name, set())
        skip = {auto_index_name("ux", schema.name, (f.name,)) for f in schema.fields if f.unique and f.name in unique}
        for name, stmt in schema.index_statements().items():
            if name not in skip:
                self._conn.execute(stmt)
        for stmt in schema.index_sql()[len(schema.index_statements()):]:      # an immutable table's triggers
            self._conn.execute(stmt)

    def _decide(self, pid: str, table: str, decision_type: str, outcome: str, risk: str, who: str, why: str,
                changes: list, gov: TableSchema | None = None) -> None:
        """A row of memory_governance_decisions (inside the caller's transaction)."""
        gov = gov or self._applied.get(GOVERNANCE_TABLE)
        if gov is None:                     # opened databases always have it (_bootstrap_governance)
            raise SchemaError(f"{self.path}: {GOVERNANCE_TABLE} is missing; no decision can be recorded")
        check = RowValidator(gov) if gov is not self._applied.get(GOVERNANCE_TABLE) else \
            self._validators[GOVERNANCE_TABLE]
        row = governance.fit_decision(governance.decision_row(pid, table, decision_type, outcome, risk, who, why,
                                                              changes), gov)
        stored = check.full([row])
        _stamp(stored, check)
        self._insert_stored(gov, stored)
        self._outbox(GOVERNANCE_TABLE, "insert", [stored[0][check.columns.index(gov.primary_key.name)]], values.now())

    # --- writes -------------------------------------------------------------
    # Each write checks its rows inside its own BEGIN IMMEDIATE, against the
    # schema as committed then: a change approved by another process a moment
    # earlier is what the rows are checked against.

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

    def recompute_trust(self, table: str, filters: dict | None = None, *, as_of: Any = None) -> int:
        """Recompute ``trust_score`` (and ``success_rate`` where the table has
        one) of the rows matching ``filters`` from the five factors of
        docs/tables.md, "Trust scores", with the table's weights; ``as_of``
        (a datetime or ISO text; default now) is the time freshness is
        measured at, so a run can be repeated exactly.  Returns how many
        rows were updated."""
        when = _as_of(as_of)
        with self._locked():
            with db.write_transaction(self._conn, f"{self.path}: trust scores of {table}"):
                schema, check = self._current(table)
                scoring = trust.model(schema)
                penalties = self._penalties(table)
                now = values.now()
                changed = []
                for row in self._stored_rows(schema, filters):
                    key = row[schema.primary_key.name]
                    score, _factors, extra = scoring.score(row, penalties.get(str(key), 0.0), when)
                    self._update_stored(schema, check.partial({"trust_score": score, **extra}, now), [key])
                    changed.append(key)
                if changed:
                    self._outbox(table, "update", changed, now)
            self._after_write()
            return len(changed)

    def explain_trust(self, table: str, key: Any, *, as_of: Any = None) -> dict:
        """How the trust score of one row is made: each factor's value and
        weight, the open contradictions that lower its consistency, and the
        score :meth:`recompute_trust` would give it ``as_of``."""
        when = _as_of(as_of)
        with self._locked():
            schema, _check = self._current(table)
            scoring = trust.model(schema)
            pk = self.get_row(table, key)[schema.primary_key.name]
            [row] = self._stored_rows(schema, {schema.primary_key.name: pk})
            open_ = [c for c in self.contradictions(table, status="open") if str(pk) in (c["row1"], c["row2"])]
            score, factors, extra = scoring.score(row, sum(trust.PENALTY[c["severity"]] for c in open_), when)
            return {"table": table, "key": pk, "as_of": values.format_datetime(when), "trust_score": score,
                    "factors": {k: {"value": v, "weight": round(scoring.weights[k], 6)} for k, v in factors.items()},
                    "also_set": extra, "contradictions": open_}

    def _stored_rows(self, schema: TableSchema, filters: Any) -> list[dict]:
        where, params = qb.where_clause(schema, filters)
        cols = [f.name for f in schema.fields]
        return [dict(zip(cols, r)) for r in
                self._conn.execute(f"SELECT {_cols(schema)} FROM {q(schema.name)}{where}", params).fetchall()]

    def _penalties(self, table: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for r1, r2, severity in self._conn.execute(
                "SELECT row1, row2, severity FROM _registry_contradictions WHERE table_name = ? AND status = 'open'",
                (table,)).fetchall():
            for k in (r1, r2):
                out[str(k)] = out.get(str(k), 0.0) + trust.PENALTY.get(str(severity), 0.15)
        return out

    # --- contradictions -----------------------------------------------------
    def detect_contradictions(self, table: str) -> dict:
        """Run the table's contradiction rules (docs/tables.md,
        "Contradictions") over all its rows and keep what they find as rows:
        a new pair is recorded open, a pair found again is left as it is (a
        resolved one opens again), an open pair no longer found is marked
        resolved; nothing is deleted.  Returns the counts and the open ones."""
        with self._locked():
            with db.write_transaction(self._conn, f"{self.path}: contradictions of {table}"):
                schema, _check = self._current(table)
                rules = contradictions.rules_for(schema)
                found = contradictions.detect(self._stored_rows(schema, None), schema.primary_key.name, rules)
                now = values.now()
                known = {(r[0], r[1], r[2]): (r[3], r[4]) for r in self._conn.execute(
                    "SELECT rule, row1, row2, status, id FROM _registry_contradictions WHERE table_name = ?",
                    (table,)).fetchall()}
                new = reopened = 0
                seen = set()
                for c in found:
                    k = (c.rule, c.row1, c.row2)
                    seen.add(k)
                    if k not in known:
                        self._conn.execute(
                            "INSERT INTO _registry_contradictions (table_name, rule, kind, severity, row1, row2, "
                            "score, detail, status, found_at, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                            (table, c.rule, c.kind, c.severity, c.row1, c.row2, c.score, c.detail, now, now))
                        new += 1
                    else:
                        reopen = known[k][0] == "resolved"
                        reopened += reopen
                        self._conn.execute(
                            "UPDATE _registry_contradictions SET seen_at = ?, score = ?, detail = ?, severity = ?, "
                            "status = CASE WHEN status = 'resolved' THEN 'open' ELSE status END, "
                            "closed_at = CASE WHEN status = 'resolved' THEN NULL ELSE closed_at END, "
                            "closed_by = CASE WHEN status = 'resolved' THEN NULL ELSE closed_by END WHERE id = ?",
                            (now, c.score, c.detail, c.severity, known[k][1]))
                gone = [v[1] for k, v in known.items() if k not in seen and v[0] == "open"]
                for cid in gone:
                    self._conn.execute("UPDATE _registry_contradictions SET status = 'resolved', closed_at = ?, "
                                       "closed_by = 'registry (no longer found)' WHERE id = ?", (now, cid))
                if new or gone or reopened:
                    self._outbox(table, "contradictions", [new, len(gone), reopened], now)
            self._after_write()
            return {"table": table, "rules": [r["name"] for r in rules], "found": len(found), "new": new,
                    "reopened": reopened, "resolved": len(gone), "open": self.contradictions(table, status="open")}

    def contradictions(self, table: str | None = None, *, status: str | None = None) -> list[dict]:
        """The contradictions recorded (of ``table``; with ``status`` open, resolved or dismissed)."""
        if status is not None and status not in ("open", "resolved", "dismissed"):
            raise QueryError(f"status must be open, resolved or dismissed, got {status!r}")
        with self._locked():
            self._check_open()
            rows = self._conn.execute(
                "SELECT id, table_name, rule, kind, severity, row1, row2, score, detail, status, found_at, seen_at, "
                "closed_at, closed_by FROM _registry_contradictions WHERE (?1 IS NULL OR table_name = ?1) AND "
                "(?2 IS NULL OR status = ?2) ORDER BY id", (table, status)).fetchall()
        cols = ["id", "table_name", "rule", "kind", "severity", "row1", "row2", "score", "detail", "status",
                "found_at", "seen_at", "closed_at", "closed_by"]
        return [dict(zip(cols, r)) for r in rows]

    def dismiss_contradiction(self, contradiction_id: int, *, by: str | None = None, reason: str = "") -> dict:
        """Mark a contradiction dismissed (not a contradiction after all):
        kept as a row, no longer lowering trust, and not opened again."""
        who = by or self.actor
        with self._locked():
            with db.write_transaction(self._conn, f"{self.path}: dismissing contradiction {contradiction_id}"):
                row = self._conn.execute("SELECT table_name, status FROM _registry_contradictions WHERE id = ?",
                                         (contradiction_id,)).fetchall()
                if not row:
                    raise NotFoundError(f"{self.path}: no contradiction {contradiction_id}")
                now = values.now()
                self._conn.execute("UPDATE _registry_contradictions SET status = 'dismissed', closed_at = ?, "
                                   "closed_by = ? WHERE id = ?",
                                   (now, who + (f": {reason}" if reason else ""), contradiction_id))
                self._outbox(str(row[0][0]), "contradiction_dismissed", [contradiction_id], now)
            self._after_write()
        return next(c for c in self.contradictions() if c["id"] == contradiction_id)

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

    # --- reads --------------------------------------------------------------
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

    # --- the event log ------------------------------------------------------
    def _outbox(self, table: str, op: str, ids: list, now: str) -> None:
        if self.events_log is not None:
            self._conn.execute("INSERT INTO _registry_outbox (ts, table_name, operation, row_ids) VALUES (?, ?, ?, ?)",
                               (now, table, op, json.dumps(ids, default=str)))

    def pending_events(self) -> int:
        """Writes committed but not yet in the event log (see docs/tables.md, The event log)."""
        with self._locked():
            return db.expect(self._conn.execute("SELECT count(*) FROM _registry_outbox").fetchall()[0][0], int,
                             f"{self.path}: count(*)")

    def publish_events(self, *, wait: bool = True) -> int:
        """Move every pending write to the event log now, waiting up to the
        busy timeout for another process that holds the log; returns how
        many events were appended.  Raises if the log cannot be written."""
        with self._publishing:
            self._check_open()
            return self._publish(wait=wait, quiet=False)

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

    def _log_writer(self, path: Path, wait: bool) -> Chronicle | None:
        """The event log at ``path``, opened by this registry and kept open
        until close() (reopening per write would append a footer each time);
        None while another process holds it."""
        if self._log is not None:
            return self._log
        deadline = time.monotonic() + (self.busy_timeout_ms / 1000 if wait else 0)
        while True:
            try:
                # "flush": each block is fsynced before the outbox rows it holds are deleted
                self._log = self._held.log = log = Chronicle.open(path, "a", schema="event", block_records=4096,
                                                                  durability="flush")
                return log
            except WriterLockedError:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.01)

    def _publish(self, wait: bool, quiet: bool) -> int:
        """Move the outbox to the log: one event per write (per 1,000 rows of
        a larger one), its type the operation, its payload the table, the row
        ids and the outbox's ``seq``.  The outbox rows are deleted while the
        log is still held, after its block is on disk: a crash in between can
        repeat an event (the same seq), never lose one."""
        if self.events_log is None:
            return 0
        try:
            with self._locked():            # read under the lock; the log is written without it
                if self._db is None:
                    return 0
                if not self._conn.execute("SELECT 1 FROM _registry_outbox LIMIT 1").fetchall():
                    return 0
                ch = self._log_writer(self.events_log, wait)
                if ch is None:
                    if quiet:
                        return 0          # another process holds the log: it publishes this outbox too
                    raise ChronoledgerError(f"{self.events_log}: another process holds the event log; "
                                            f"{self.pending_events()} writes wait in the outbox")
                rows = self._conn.execute("SELECT seq, ts, table_name, operation, row_ids FROM _registry_outbox "
                                          "ORDER BY seq").fetchall()
            if not rows:                       # another process emptied it meanwhile
                return 0
            floor = ch.last_timestamp or 0
            stamps: list[int] = []
            types: list[object] = []
            payloads: list[dict[str, object]] = []
            seq = self._published_upto
            for seq_value, ts, table, op, ids_text in rows:
                if not (isinstance(seq_value, int) and isinstance(ts, str) and isinstance(ids_text, str)):
                    raise CorruptDataError(f"{self.path}: _registry_outbox: a damaged row (seq {seq_value!r})")
                seq = seq_value
                micros = max(_micros(ts), floor)          # another process's clock may lag ours
                floor = micros
                if seq <= self._published_upto:    # in the log already; its outbox row outlived a failed delete
                    continue
                ids = json.loads(ids_text)
                for part, k in enumerate(range(0, len(ids), _IDS_PER_EVENT)):
                    stamps.append(micros)
                    types.append(op)
                    payloads.append({"seq": seq, "part": part, "table": table, "ids": ids[k:k + _IDS_PER_EVENT]})
            if stamps:
                ch.extend({"timestamp": np.array(stamps, dtype=np.uint64),
                           "event_type": np.array(types, dtype=object), "payload": np.array(payloads, dtype=object)})
                ch.flush()
            self._published_upto = max(self._published_upto, seq)          # the last row's
            with self._locked():
                if self._db is None:               # closed meanwhile: the rows stay, published again (same seq)
                    return len(stamps)
                with db.write_transaction(self._conn, f"{self.path}: clearing the event outbox"):
                    self._conn.execute("DELETE FROM _registry_outbox WHERE seq <= ?", (self._published_upto,))
            return len(stamps)
        # kept: whatever failed, the events wait in the outbox (the error is said, or logged when quiet);
        # the class tells a failure of the database (apsw's, or write_transaction's mapped begin or commit:
        # the log is kept) from one of the log
        except (ChronoledgerError, OSError, apsw.Error) as exc:
            if self._log is not None and not isinstance(exc, (apsw.Error, StorageError, DatabaseBusyError)):
                # the log failed: let it go, the next publish reopens it
                try:
                    self._log.close()
                except Exception:
                    pass
                self._log = self._held.log = None
            if not quiet:
                raise ChronoledgerError(f"{self.path}: publishing events to {self.events_log} failed ({exc}); "
                                        f"they wait in the outbox") from exc
            _logger.warning("%s: publishing events to %s failed (%s); they wait in the outbox",
                         self.path, self.events_log, exc)
            return 0


class _Held:
    """What a registry holds open, released by close() or by the finalizer
    of a registry dropped without it."""

    def __init__(self, checkpointer: db.BackgroundCheckpointer, publisher: "_Publisher", conn: apsw.Connection):
        self.checkpointer, self.publisher, self.conn = checkpointer, publisher, conn
        self.log: Chronicle | None = None

    def release(self) -> None:
        try:
            self.publisher.close()
            if self.log is not None:
                self.log.close()
        finally:
            self.log = None
            try:
                self.checkpointer.close()
            finally:
                self.conn.close()


class _Publisher:
    """Moves the outbox to the event log from a thread of its own: woken by
    each commit, it waits a moment so that a burst of writes becomes one
    append and one fsync, and lets the log go after ``idle`` seconds without
    writes, so that other processes' writes get published too.  It holds the
    registry only weakly: a dropped registry is still collected."""

    def __init__(self, registry: "TableRegistry", idle: float, delay: float = 0.02):
        self._ref = weakref.ref(registry)
        self.idle, self.delay = idle, delay
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"tables-publish:{registry.path.name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stop:
                return
            time.sleep(self.delay)
            self._wake.clear()
            if not self._call("_publish_soon"):
                return
            if not self._wake.wait(self.idle) and not self._stop:        # idle: let the log go
                if not self._call("release_log"):
                    return

    def _call(self, method: str) -> bool:
        reg = self._ref()
        if reg is None or self._stop:
            return False
        try:
            getattr(reg, method)()
        except Exception as exc:           # a thread must not die of one failure; the outbox keeps the events
            _logger.warning("%s: %s failed: %s", reg.path, method, exc)
        return True

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


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


def _as_of(v: Any) -> datetime:
    """The time trust is measured at: ``v`` (a datetime, naive taken as UTC, or ISO text), or now."""
    if v is None:
        return datetime.now(timezone.utc)
    try:
        when = v if isinstance(v, datetime) else datetime.fromisoformat(iso_text(str(v)))
    except ValueError:
        raise QueryError(f"as_of: {v!r} is not an ISO-8601 date and time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _micros(ts: str) -> int:
    dt = datetime.fromisoformat(values.iso_text(ts))         # stored as ...000000Z: Python 3.10 reads no Z
    return int(dt.timestamp() * 1_000_000)


def _cols(schema: TableSchema) -> str:
    return ", ".join(q(f.name) for f in schema.fields)


def _upsert_key(schema: TableSchema, data: dict) -> str:
    pk = schema.primary_key.name
    if data.get(pk) is not None:
        return pk
    for f in schema.fields:
        if f.unique and data.get(f.name) is not None:
            return f.name
    return pk


def _text_or_none(v: Any) -> str | None:
    return None if v is None else str(v)


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:          # no login name in this environment (a container without a passwd entry)
        return "unknown"


def _proposal_dict(row: tuple) -> dict:
    cols = ["id", "table_name", "kind", "risk", "status", "base_hash", "schema_hash", "schema_json", "changes_json",
            "proposed_by", "reason", "source", "created_at", "decided_by", "decided_at", "decision_reason"]
    d = dict(zip(cols, row))
    d["schema"] = json.loads(d.pop("schema_json"))
    d["changes"] = json.loads(d.pop("changes_json"))
    return d
