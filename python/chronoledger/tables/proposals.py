"""Governance of the registry's tables: every new table and schema change a
proposal, its risk assessed, low risk applied at once, the rest waiting
for approval; every decision a row of the governance table.
docs/tables.md, "Schema changes and governance"."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import NotFoundError, SchemaError
from chronoledger.tables import adopt as adopting
from chronoledger.tables import governance, values
from chronoledger.tables.core import GOVERNANCE_TABLE, GOVERNANCE_TABLES, RegistryCore, _stamp
from chronoledger.tables.schema import (TableSchema, auto_index_name, compare, overall_risk, parse_schema,
                                        read_schema_file)
from chronoledger.tables.validate import RowValidator


_RISKS = ("low", "medium", "high")
#: The changes the governance table accepts (through a high-risk proposal): additions only.
_GOVERNANCE_CHANGES = frozenset({"add_field", "add_index", "describe_field", "describe_table"})


class Proposals(RegistryCore):
    """Governance: proposals of new tables and schema changes, their risk, their
    approval or rejection, and the decision recorded for each."""

    _adopting: adopting.AdoptionPlan | None

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


def _text_or_none(v: Any) -> str | None:
    return None if v is None else str(v)


def _proposal_dict(row: tuple) -> dict:
    cols = ["id", "table_name", "kind", "risk", "status", "base_hash", "schema_hash", "schema_json", "changes_json",
            "proposed_by", "reason", "source", "created_at", "decided_by", "decided_at", "decision_reason"]
    d = dict(zip(cols, row))
    d["schema"] = json.loads(d.pop("schema_json"))
    d["changes"] = json.loads(d.pop("changes_json"))
    return d
