"""Loading schema files: the user's folders (and the packaged catalogue on
request) read and checked, new tables created and changes proposed
through governance, and a database Grace's registry made adopted.
docs/tables.md, "Schema files" and "Adopting a Grace database"."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path


from chronoledger import sqlite as db
from chronoledger.errors import SchemaError, ValidationError
from chronoledger.tables import adopt as adopting
from chronoledger.tables.core import CATALOGUE, GOVERNANCE_TABLE
from chronoledger.tables.proposals import Proposals
from chronoledger.tables.schema import SchemaProblem, TableSchema, check_relationships, read_schema_file, schema_files


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


class Loading(Proposals):
    """The schema folders and the packaged catalogue read, checked and loaded
    through governance; a database another program made adopted."""

    adoption: adopting.AdoptionPlan | None

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

    def _adopt(self, plan: adopting.AdoptionPlan) -> None:
        """Take the tables of ``plan`` under the registry in one transaction
        (a crash leaves the database as it was, or adopted): the registry's
        own tables made, each table's schema applied as it stands, in Grace's
        stored forms, and the decision recorded; no row rewritten."""
        steps = db.migrations("chronoledger.tables")
        with db.write_transaction(self._conn, f"{self.path}: adopting {len(plan.tables)} tables"):
            there = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if adopting.OWN_TABLE in there or not plan.tables.keys() <= there:
                raise SchemaError(f"{self.path}: another program changed the database while it was being "
                                  f"adopted; nothing was written; try again")
            for m in steps:
                self._conn.execute(m.sql)
            self._conn.execute(f"PRAGMA user_version={int(steps[-1].version)}")
            self._refresh()
            schemas = plan.schemas                  # what the tables were checked against, not a later read
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
