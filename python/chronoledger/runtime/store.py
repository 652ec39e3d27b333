"""RuntimeMemoryStore: the Runtime Memory DB v1 (sessions, turns, workflows,
task events, skills, proposals and their audit, behaviour and personality
profiles) over one SQLite file.

Every method checks its input (ValidationError naming the field), writes in
one transaction, and returns plain dicts: the table's columns, with the
``*_json`` columns decoded into dicts.  Writes that read first (the next
turn index, a profile's next version, a status change) run under
``BEGIN IMMEDIATE``, so they are atomic across threads and processes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import threading
import weakref
from datetime import datetime, timedelta, timezone
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO, TypedDict

import apsw

from chronoledger import sqlite as db
from chronoledger.chronicle import Chronicle
from chronoledger.errors import (ChronoledgerError, CorruptDataError, NotFoundError, QueryError, SchemaError,
                                 ValidationError)
from chronoledger.runtime import enforcement
from chronoledger.runtime import values as v
from chronoledger.runtime.vocab import (
    ENUMS,
    PROPOSAL_TRANSITIONS,
    SESSION_STATUSES,
    SKILL_STATES,
    STEP_STATUSES,
)

_logger = logging.getLogger("chronoledger.runtime")

TABLES = ("sessions", "conversation_turns", "workflow_runs", "workflow_steps", "task_events", "skills_learned",
          "behavior_profiles", "personality_profiles", "skill_to_logic_proposals", "validation_results",
          "approvals", "deploy_outcomes")
PROFILE_TABLES = {"behavior": ("behavior_profiles", "behavior_json"),
                  "personality": ("personality_profiles", "personality_json")}

#: The minimum v1 query set as SQL (docs/runtime.md); the methods run exactly these.
QUERIES: dict[str, str] = {
    # julianday(): times another tool wrote may carry offsets or other ISO forms
    "latest_behavior_profile": (
        "SELECT * FROM behavior_profiles WHERE profile_name = :name AND julianday(effective_from) <= julianday(:at) "
        "AND (effective_to IS NULL OR julianday(effective_to) > julianday(:at)) ORDER BY version DESC LIMIT 1"),
    "latest_personality_profile": (
        "SELECT * FROM personality_profiles WHERE profile_name = :name AND julianday(effective_from) <= julianday(:at) "
        "AND (effective_to IS NULL OR julianday(effective_to) > julianday(:at)) ORDER BY version DESC LIMIT 1"),
    "session_replay": (
        "SELECT * FROM conversation_turns WHERE session_id = :session_id ORDER BY turn_index"),
    "workflow_replay_steps": (
        "SELECT * FROM workflow_steps WHERE workflow_run_id = :run_id ORDER BY step_index"),
    "workflow_replay_events": (
        "SELECT * FROM task_events WHERE workflow_run_id = :run_id OR step_id IN "
        "(SELECT id FROM workflow_steps WHERE workflow_run_id = :run_id) ORDER BY created_at, rowid"),
    "proposal_lineage_proposal": (
        "SELECT p.*, s.skill_key, s.description AS skill_description, s.source_type AS skill_source_type, "
        "s.confidence AS skill_confidence, s.learned_at AS skill_learned_at FROM skill_to_logic_proposals p "
        "JOIN skills_learned s ON s.id = p.skill_id WHERE p.id = :proposal_id"),
    "proposal_lineage_validations": (
        "SELECT * FROM validation_results WHERE proposal_id = :proposal_id ORDER BY validated_at, rowid"),
    "proposal_lineage_approvals": (
        "SELECT * FROM approvals WHERE proposal_id = :proposal_id ORDER BY decided_at, rowid"),
    "proposal_lineage_deploys": (
        "SELECT * FROM deploy_outcomes WHERE proposal_id = :proposal_id ORDER BY deployed_at, rowid"),
}

_NOUN = {"sessions": "session", "conversation_turns": "turn", "workflow_runs": "workflow run",
         "workflow_steps": "workflow step", "task_events": "task event", "skills_learned": "skill",
         "skill_to_logic_proposals": "proposal", "validation_results": "validation", "approvals": "approval",
         "deploy_outcomes": "deploy outcome", "behavior_profiles": "behavior profile",
         "personality_profiles": "personality profile"}
_TURN_KEYS = frozenset({"role", "content", "token_count", "metadata", "created_at", "id"})
_ROLES = frozenset(ENUMS[("conversation_turns", "role")])
_JSON_COLUMNS = {"metadata_json", "context_json", "details_json", "payload_json", "behavior_json",
                 "personality_json", "proposal_json", "metrics_json"}


# The rows the store builds, checked, for an INSERT (the columns of v1_spec.sql; JSON as text).
class _SessionRow(TypedDict):
    id: str
    actor: str
    channel: str | None
    started_at: str
    status: str
    metadata_json: str


class _WorkflowRunRow(TypedDict):
    id: str
    workflow_name: str
    trigger_source: str
    initiated_by: str
    status: str
    started_at: str
    context_json: str


class _WorkflowStepFields(TypedDict):
    id: str
    workflow_run_id: str
    step_name: str
    status: str
    started_at: str
    details_json: str


class _WorkflowStepRow(_WorkflowStepFields, total=False):
    step_index: int | float                  # set in the transaction (MAX + 1 is REAL if another tool's is)


class _SkillRow(TypedDict):
    id: str
    skill_key: str
    description: str
    source_type: str
    source_ref: str | None
    confidence: float
    learned_at: str
    state: str
    metadata_json: str


class _ProposalRow(TypedDict):
    id: str
    skill_id: str
    proposed_by: str
    proposal_type: str
    proposal_json: str
    determinism_score: float | None
    risk_level: str
    status: str
    created_at: str
    updated_at: str


class _AuditRow(TypedDict):
    """What the rows of a proposal's audit trail (validations, approvals, deploy outcomes) share."""
    id: str
    proposal_id: str


class _ValidationRow(_AuditRow):
    validator: str
    build_pass: int
    lint_pass: int
    test_pass: int
    policy_pass: int
    details_json: str
    validated_at: str


class _ApprovalRow(_AuditRow):
    approver: str
    approval_type: str
    decision: str
    notes: str | None
    decided_at: str


class _DeployOutcomeRow(_AuditRow):
    deployment_target: str
    deployment_id: str | None
    status: str
    summary: str | None
    metrics_json: str
    deployed_at: str


def _spec_columns() -> dict[str, list[str]]:
    """Each v1 table's columns, read from the specification's DDL itself."""
    mem = apsw.Connection(":memory:")
    mem.execute(enforcement.spec_ddl())
    return {t: db.table_columns(mem, t) for t in TABLES}


class RuntimeMemoryStore:
    """The runtime memory database at ``path`` (created if missing).

    ``synchronous`` is SQLite's (``"normal"``: every commit survives a crash
    of the process; ``"full"``: also a power loss, one fsync per commit).
    ``events_log``, a path, also appends every task event to a chronicle
    event log (one writing process at a time) after it is committed.
    A database created from the plain v1 DDL by another tool is adopted:
    its rows are kept and the later migrations are applied to it.
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "normal",
                 busy_timeout_ms: int = db.DEFAULT_BUSY_TIMEOUT_MS, events_log: str | os.PathLike[str] | None = None,
                 readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._last_stamp = ""
        self._lock = threading.RLock()
        self._checkpointer: db.BackgroundCheckpointer | None = None
        _check_is_runtime_db(self.path)       # before connect(), which switches the journal to WAL
        # the connection, None once closed (then _conn says so)
        self._db: apsw.Connection | None = db.connect(self.path, readonly=readonly, synchronous=synchronous,
                                                      busy_timeout_ms=busy_timeout_ms)
        try:
            steps = db.migrations("chronoledger.runtime")
            if not readonly:
                adopted = self._adopt(steps[0])
                self.migrations_applied = adopted + db.migrate(self._conn, steps, self.path)
            else:
                self.migrations_applied = []
                if db.user_version(self._conn) != steps[-1].version:
                    found = db.user_version(self._conn)
                    advice = "upgrade chronoledger to read it" if found > steps[-1].version else \
                        "open it once for writing to migrate it"
                    raise SchemaError(f"{self.path}: schema version {found}, this chronoledger reads "
                                      f"{steps[-1].version}; {advice}")
            self.schema_version = db.user_version(self._conn)
        except BaseException as exc:
            self._conn.close()
            if isinstance(exc, apsw.Error):
                raise db.sqlite_error(exc, self.path) from None
            raise
        self._checkpointer = None if readonly else db.BackgroundCheckpointer(self._conn, self.path)
        self._events_log = Path(events_log) if events_log is not None else None
        self._chronicle: Chronicle | None = None
        if self._events_log is not None:
            try:       # opened now, so a bad path fails before any event is stored
                self._chronicle = chronicle = Chronicle.open(self._events_log, "a", schema="event", block_records=256)
                if not readonly:
                    with db.named_damage(self.path, "catching up the event log"):
                        self._catch_up(chronicle)
            except BaseException:     # e.g. a missing folder, or a chronicle of cycles (ConfigError)
                self._release()
                raise
        # a store dropped without close() still stops its thread and closes its files
        self._finalizer = weakref.finalize(self, _release, self._checkpointer, self._conn, self._chronicle)

    def _adopt(self, first: db.Migration) -> list[int]:
        """Bring a database created from the plain v1 DDL by another tool to
        version 1, keeping every row: its tables are checked to have the v1
        columns (else SchemaError, nothing written), missing tables are
        created, and the allowed-value rules are added as triggers (its
        tables are not rebuilt with CHECK constraints, which could refuse
        rows it already holds).  Returns [1] if it adopted, else []."""
        if db.user_version(self._conn) != 0:
            return []
        have = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        existing = [t for t in TABLES if t in have]
        if not existing:
            return []
        _check_v1_columns(self._conn, existing, self.path)   # again: another process may have changed it
        with self._write("adopting a v1 database"):
            if db.user_version(self._conn) != 0:        # another process adopted it meanwhile
                return []
            self._conn.execute(first.sql)               # the tables and indexes it lacks
            self._conn.execute(enforcement.adoption_sql(existing))
            self._conn.execute("PRAGMA user_version = 1")
        return [1]

    # --- plumbing -----------------------------------------------------------
    @property
    def _conn(self) -> apsw.Connection:
        """The store's connection; a closed store says so on any use."""
        conn = self._db
        if conn is None:
            raise ChronoledgerError(f"{self.path}: the store is closed")
        return conn

    def close(self) -> None:
        with self._locked():
            self._release()

    def _release(self) -> None:
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
        else:
            _release(self._checkpointer, self._conn, self._chronicle)
        self._checkpointer = self._chronicle = self._db = None

    def __enter__(self) -> "RuntimeMemoryStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _locked(self):
        """This store's lock, with a damaged database named as such."""
        with self._lock, db.named_damage(self.path):
            yield

    @contextlib.contextmanager
    def _write(self, what: str):
        if self.readonly:
            raise ChronoledgerError(f"{self.path}: {what}: the store was opened read-only")
        with db.write_transaction(self._conn, f"{self.path}: {what}"):
            yield
        if self._checkpointer is not None:
            self._checkpointer.after_commit()

    def _iter(self, sql: str, params: Any = ()) -> Iterator[dict]:
        with db.named_damage(self.path):
            yield from self._iter_rows(sql, params)

    def _iter_rows(self, sql: str, params: Any) -> Iterator[dict]:
        cur = self._conn.execute(sql, params)
        try:
            names = [d[0] for d in cur.getdescription()]
        except apsw.ExecutionCompleteError:     # control flow: the statement gave no rows
            return
        decode = [k for k in names if k in _JSON_COLUMNS]
        for row in cur:
            d = dict(zip(names, row))
            for k in decode:
                if isinstance(d[k], str):
                    try:
                        d[k] = json.loads(d[k])
                    except ValueError:   # not JSON (another tool wrote it): returned as the text it is
                        pass
            yield d

    def _rows(self, sql: str, params: Any = ()) -> list[dict]:
        # Under the store's lock like every write: one connection serves all the
        # threads, and a commit runs our WAL hook (Python) while holding SQLite's
        # connection mutex, so a read entering that mutex from another thread
        # could deadlock against it (apsw before 3.49 waits for the mutex holding the GIL).
        with self._lock:
            return list(self._iter(sql, params))

    def _one(self, sql: str, params: Any = ()) -> dict | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _get(self, table: str, row_id: str, field: str) -> dict:
        """The row with this id, looked up as given and in canonical UUID form."""
        rows = self._rows(f"SELECT * FROM {table} WHERE id IN (?, ?) LIMIT 1", v.ref_forms(row_id))
        if not rows:
            raise NotFoundError(f"{field}: no {_NOUN.get(table, table)} with id {row_id}")
        return rows[0]

    def _stamp(self) -> str:
        """Now, but never before a time this store stamped already: rows and
        mirrored events stamped by default come out in commit order even
        when threads race to the write lock.  Call with the write lock held."""
        t = v.now()
        if t < self._last_stamp:
            t = self._last_stamp
        self._last_stamp = t
        return t

    def _insert(self, table: str, row: Mapping[str, object], what: str) -> None:
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        self._insert_many(f"INSERT INTO {table} ({cols}) VALUES ({marks})", (row,), what)

    def _insert_many(self, sql: str, rows: Iterable[apsw.Bindings], what: str) -> None:
        """Run one INSERT for each row; a refused row (a constraint or trigger)
        is a ValidationError naming the store and the operation."""
        try:
            self._conn.executemany(sql, rows)
        except apsw.Error as exc:
            err = db.sqlite_error(exc, self.path, what)
            if isinstance(exc, apsw.SQLError):
                # the values were checked already: an SQL error here is a rule of the table (a CHECK or a
                # trigger calling a JSON function on the value) refusing the row, not a schema problem
                err = ValidationError(str(err))
            raise err from None

    # --- sessions and turns ---------------------------------------------------
    def start_session(self, actor: str, channel: str | None = None, metadata: dict | None = None, *,
                      started_at=None, id: str | None = None) -> dict:
        row: _SessionRow = {
            "id": v.check_id(id, "id") if id is not None else v.new_id(),
            "actor": v.check_text(actor, "sessions.actor"),
            "channel": v.check_enum(channel, "sessions", "channel", nullable=True),
            "started_at": v.check_time(started_at, "sessions.started_at"),
            "status": "active",
            "metadata_json": v.check_json_object(metadata, "sessions.metadata_json")}
        with self._locked(), self._write("start_session"):
            self._insert("sessions", row, "start_session")
        return self._get("sessions", row["id"], "id")

    def end_session(self, session_id: str, status: str = "ended", metadata: dict | None = None, *,
                    ended_at=None) -> dict:
        """Close a session (ended or aborted); ``metadata`` is merged into the
        stored metadata.  Turns are refused afterwards."""
        status = v.check_enum(status, "sessions", "status", SESSION_STATUSES[1:])
        return self._finish("sessions", session_id, "session_id", status, "ended_at", ended_at,
                            "metadata_json", metadata, "the session started")

    def _finish(self, table: str, ref: str, field: str, status: str, time_column: str, when, json_column: str,
                update, started: str) -> dict:
        """End a session, run or step: status, end time, and JSON merged into
        what is stored (keys added or replaced, never removed)."""
        rid = v.check_ref(ref, field)
        end = v.check_time(when, f"{table}.{time_column}", default_now=False)
        update = v.check_json_object(update, f"{table}.{json_column}")
        with self._locked(), self._write(f"ending a {_NOUN[table]}"):
            cur = self._get(table, rid, field)
            if cur[time_column] is not None or (table == "sessions" and cur["status"] in ("ended", "aborted")):
                raise ValidationError(f"{_NOUN[table]} {rid} already ended ({cur['status']} at {cur[time_column]})")
            end = end or self._stamp()
            _not_before(end, cur["started_at"], f"{table}.{time_column}", started)
            merged = v.merge_json(cur[json_column], update, f"{table}.{json_column}")
            self._conn.execute(f"UPDATE {table} SET status = ?, {time_column} = ?, {json_column} = ? WHERE id = ?",
                               (status, end, merged, cur["id"]))
        return self._get(table, cur["id"], field)

    def _check_turn(self, t: dict, i: int) -> tuple:
        """(id, role, content, token_count, created_at, metadata_json) of one turn."""
        # The common turn (a known role, str content, nothing else) is checked
        # inline: batches of turns are this store's hottest path.
        if not isinstance(t, dict):
            raise ValidationError(f"turns[{i}]: expected a dict, got {type(t).__name__}")
        if t.keys() - _TURN_KEYS:
            raise ValidationError(f"turns[{i}]: unknown field(s) {', '.join(sorted(t.keys() - _TURN_KEYS))}")
        role = t.get("role")
        if type(role) is not str or role not in _ROLES:
            v.check_enum(role, "conversation_turns", "role")
        content = t.get("content")
        if type(content) is not str or not content.isascii():         # non-ASCII: has it a UTF-8 form?
            v.check_text(content, f"turns[{i}].content", empty=True)
        tokens = t.get("token_count")
        if tokens is not None and type(tokens) is not int:
            tokens = v.check_int(tokens, f"turns[{i}].token_count")     # e.g. numpy ints, as int
        elif tokens is not None and not 0 <= tokens <= v.INT64_MAX:
            v.check_int(tokens, f"turns[{i}].token_count")
        meta = t.get("metadata")
        row_id = t.get("id")
        created = t.get("created_at")
        return (None if row_id is None else v.check_id(row_id, f"turns[{i}].id"), role, content, tokens,
                None if created is None else v.check_time(created, f"turns[{i}].created_at"),
                "{}" if meta is None else v.check_json_object(meta, f"turns[{i}].metadata"))

    def _open_session(self, sid: str) -> str:
        """The stored id of an open session."""
        row = self._get("sessions", sid, "session_id")
        if row["ended_at"] is not None or row["status"] in ("ended", "aborted"):
            raise ValidationError(f"session {sid} is {row['status']}; turns are appended to open sessions only")
        return row["id"]

    def append_turn(self, session_id: str, role: str, content: str, *, token_count: int | None = None,
                    metadata: dict | None = None, created_at=None, id: str | None = None) -> dict:
        """Append one turn; its ``turn_index`` (0, 1, 2...) is assigned in the
        same transaction, so concurrent appenders never collide."""
        res = self.append_turns(session_id, [{"role": role, "content": content, "token_count": token_count,
                                              "metadata": metadata, "created_at": created_at, "id": id}])
        return self._get("conversation_turns", res["ids"][0], "id")

    def append_turns(self, session_id: str, turns: Iterable[dict]) -> dict:
        """Append many turns (dicts with role, content and optionally
        token_count, metadata, created_at, id) in one transaction, with
        consecutive turn indexes.  Every turn is checked before any is
        written.  Returns ``{"session_id", "first_turn_index", "count", "ids"}``."""
        sid = v.check_ref(session_id, "session_id")
        checked = [self._check_turn(t, i) for i, t in enumerate(_each(turns, "turns", "turn dicts"))]
        ids = v.new_ids(len(checked))
        with self._locked(), self._write("append_turns"):
            sid = self._open_session(sid)
            stamp = self._stamp()
            # a number (REAL only where another tool stored one)
            first = db.expect(self._conn.execute("SELECT COALESCE(MAX(turn_index) + 1, 0) FROM conversation_turns "
                                                 "WHERE session_id = ?", (sid,)).fetchall()[0][0], (int, float),
                              f"{self.path}: conversation_turns.turn_index")
            rows = [(ids[i] if rid is None else rid, sid, first + i, role, content, tokens,
                     stamp if created is None else created, meta)
                    for i, (rid, role, content, tokens, created, meta) in enumerate(checked)]
            self._insert_many("INSERT INTO conversation_turns (id, session_id, turn_index, role, content, "
                              "token_count, created_at, metadata_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              rows, "append_turns")
        return {"session_id": sid, "first_turn_index": first, "count": len(rows), "ids": [r[0] for r in rows]}

    # --- workflows ------------------------------------------------------------
    def start_workflow_run(self, workflow_name: str, trigger_source: str, initiated_by: str, *,
                           status: str = "running", context: dict | None = None, started_at=None,
                           id: str | None = None) -> dict:
        row: _WorkflowRunRow = {
            "id": v.check_id(id, "id") if id is not None else v.new_id(),
            "workflow_name": v.check_text(workflow_name, "workflow_runs.workflow_name"),
            "trigger_source": v.check_enum(trigger_source, "workflow_runs", "trigger_source"),
            "initiated_by": v.check_text(initiated_by, "workflow_runs.initiated_by"),
            "status": v.check_enum(status, "workflow_runs", "status", ("queued", "running")),
            "started_at": v.check_time(started_at, "workflow_runs.started_at"),
            "context_json": v.check_json_object(context, "workflow_runs.context_json")}
        with self._locked(), self._write("start_workflow_run"):
            self._insert("workflow_runs", row, "start_workflow_run")
        return self._get("workflow_runs", row["id"], "id")

    def end_workflow_run(self, run_id: str, status: str, context: dict | None = None, *, finished_at=None) -> dict:
        """Finish a run (failed, succeeded or aborted); ``context`` is merged
        into the stored context (keys added or replaced, never removed)."""
        status = v.check_enum(status, "workflow_runs", "status", ("failed", "succeeded", "aborted"))
        return self._finish("workflow_runs", run_id, "run_id", status, "finished_at", finished_at,
                            "context_json", context, "the run started")

    def start_step(self, run_id: str, step_name: str, *, step_index: int | None = None, status: str = "running",
                   details: dict | None = None, started_at=None, id: str | None = None) -> dict:
        """Start a step of a run; ``step_index`` defaults to the next one."""
        rid = v.check_ref(run_id, "run_id")
        row: _WorkflowStepRow = {
            "id": v.check_id(id, "id") if id is not None else v.new_id(),
            "workflow_run_id": rid,
            "step_name": v.check_text(step_name, "workflow_steps.step_name"),
            "status": v.check_enum(status, "workflow_steps", "status", STEP_STATUSES),
            "started_at": v.check_time(started_at, "workflow_steps.started_at"),
            "details_json": v.check_json_object(details, "workflow_steps.details_json")}
        given = v.check_int(step_index, "workflow_steps.step_index", nullable=True)
        with self._locked(), self._write("start_step"):
            run = self._get("workflow_runs", rid, "run_id")
            if run["finished_at"] is not None:
                raise ValidationError(f"workflow run {rid} finished ({run['status']}); no new steps")
            rid = row["workflow_run_id"] = run["id"]
            if given is not None:
                row["step_index"] = given
            else:           # a number (REAL only where another tool stored one)
                row["step_index"] = db.expect(
                    self._conn.execute("SELECT COALESCE(MAX(step_index) + 1, 0) FROM workflow_steps "
                                       "WHERE workflow_run_id = ?", (rid,)).fetchall()[0][0], (int, float),
                    f"{self.path}: workflow_steps.step_index")
            self._insert("workflow_steps", row, "start_step")
        return self._get("workflow_steps", row["id"], "id")

    def end_step(self, step_id: str, status: str, details: dict | None = None, *, finished_at=None) -> dict:
        """Finish a step; ``details`` is merged into the stored details."""
        status = v.check_enum(status, "workflow_steps", "status", ("succeeded", "failed", "skipped", "aborted"))
        return self._finish("workflow_steps", step_id, "step_id", status, "finished_at", finished_at,
                            "details_json", details, "the step started")

    def _check_event(self, e: dict, where: str) -> tuple:
        if not isinstance(e, dict):
            raise ValidationError(f"{where}: an event is a mapping of fields, got {type(e).__name__}")
        unknown = set(e) - {"event_type", "event_level", "message", "payload", "workflow_run_id", "step_id",
                            "created_at", "id"}
        if unknown:
            raise ValidationError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        return (v.check_id(e["id"], f"{where}.id") if e.get("id") is not None else None,
                v.check_ref(e["workflow_run_id"], f"{where}.workflow_run_id")
                if e.get("workflow_run_id") is not None else None,
                v.check_ref(e["step_id"], f"{where}.step_id") if e.get("step_id") is not None else None,
                v.check_enum(e.get("event_type"), "task_events", "event_type"),
                v.check_enum(e.get("event_level"), "task_events", "event_level"),
                v.check_text(e.get("message"), f"{where}.message"),
                v.check_json_object(e.get("payload"), f"{where}.payload"),
                v.check_time(e.get("created_at"), f"{where}.created_at", default_now=False))

    def append_task_event(self, event_type: str, event_level: str, message: str, payload: dict | None = None, *,
                          workflow_run_id: str | None = None, step_id: str | None = None, created_at=None,
                          id: str | None = None) -> dict:
        """Append one task event (append-only: it can never be changed)."""
        res = self.append_task_events([{"event_type": event_type, "event_level": event_level, "message": message,
                                        "payload": payload, "workflow_run_id": workflow_run_id,
                                        "step_id": step_id, "created_at": created_at, "id": id}])
        return self._get("task_events", res["ids"][0], "id")

    def append_task_events(self, events: Iterable[dict]) -> dict:
        """Append many task events in one transaction (all checked first).
        Returns ``{"count", "ids"}``."""
        checked = [self._check_event(e, f"events[{i}]") for i, e in enumerate(_each(events, "events", "event dicts"))]
        ids = v.new_ids(len(checked))
        with self._locked():
            with self._write("append_task_events"):
                rows = []
                for i, (rid, run, step, *rest) in enumerate(checked):
                    where = f"events[{i}]"
                    if step is not None:         # a step must belong to the run it is given with
                        st = self._get("workflow_steps", step, f"{where}.step_id")
                        if run is not None and st["workflow_run_id"] not in v.ref_forms(run):
                            raise ValidationError(f"{where}.step_id: step {step} belongs to run "
                                                  f"{st['workflow_run_id']}, not {run}")
                        step, run = st["id"], st["workflow_run_id"]
                    elif run is not None:
                        run = self._get("workflow_runs", run, f"{where}.workflow_run_id")["id"]
                    created = rest[-1] or self._stamp()
                    rows.append((rid or ids[i], run, step, *rest[:-1], created))
                self._insert_many("INSERT INTO task_events (id, workflow_run_id, step_id, event_type, event_level, "
                                  "message, payload_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                  rows, "append_task_events")
            self._mirror(rows)
        return {"count": len(rows), "ids": [r[0] for r in rows]}

    def _catch_up(self, ch: Chronicle) -> None:
        """Mirror the task events committed but not yet in the log ``ch``: a
        crash between a commit and its mirroring leaves them out.  Events are
        mirrored in commit (rowid) order, so everything after the newest
        event of the log's last block is what is missing."""
        blocks = ch.reader().blocks           # the Chronicle keeps this reader: it is not closed here
        last = blocks[-1] if blocks else None
        ids = [] if last is None else [json.loads(p).get("id") for p in
                                       ch.query_columns(last.first_ts, last.last_ts + 1, ["payload"])["payload"]]
        after = 0
        if ids:
            marks = ",".join("?" * len(ids))
            after = db.expect(self._conn.execute(f"SELECT coalesce(max(rowid), 0) FROM task_events "
                                                 f"WHERE id IN ({marks})", ids).fetchall()[0][0], int,
                              f"{self.path}: task_events.rowid")
            if not after:          # the log is not this database's: leave it alone
                _logger.warning("%s: the event log %s holds no task event of this database; events missing "
                                "from it are not caught up", self.path, self._events_log)
                return
        rows = [tuple(r) for r in self._conn.execute(
            "SELECT id, workflow_run_id, step_id, event_type, event_level, message, payload_json, created_at "
            "FROM task_events WHERE rowid > ? ORDER BY rowid", (after,))]
        if rows and last is not None:
            _logger.warning("%s: %d task event(s) were stored but missing from the event log %s (a crash between "
                            "commit and mirroring); mirrored now", self.path, len(rows), self._events_log)
        self._mirror(rows)

    def _mirror(self, rows: list[tuple]) -> None:
        """Append committed task events to the chronicle event log, if any."""
        if self._chronicle is None or not rows:
            return
        try:
            for (rid, run, step, etype, level, msg, payload, created) in rows:
                when = v.parse_time(created)
                if when is None:            # written by another tool
                    raise CorruptDataError(f"task event {rid}: created_at {created!r} is not a time")
                micros = (when - _EPOCH) // timedelta(microseconds=1)
                self._chronicle.append(timestamp=micros, event_type=etype,
                                       payload={"id": rid, "workflow_run_id": run, "step_id": step, "level": level,
                                                "message": msg, "payload": json.loads(payload)})
            self._chronicle.flush()
        except (ChronoledgerError, OSError) as exc:
            raise ChronoledgerError(f"{self.path}: the task events {', '.join(r[0] for r in rows)} are stored, but "
                                    f"mirroring them to {self._events_log} failed: {exc}") from exc

    def list_workflow_runs(self, *, status: str | None = None, trigger_source: str | None = None, since=None,
                           until=None, limit: int = 50, cursor: str | None = None) -> dict:
        """Runs, newest first, filtered by status, trigger source and a
        window of ``started_at`` (since <= t < until); ``limit`` per page and
        ``cursor`` (the ``next_cursor`` of the previous page) for paging that
        stays correct while runs are added.  Returns ``{"runs", "next_cursor"}``."""
        where: list[str] = []
        params: dict[str, str | int] = {}
        if status is not None:
            where.append("status = :status")
            params["status"] = v.check_enum(status, "workflow_runs", "status")
        if trigger_source is not None:
            where.append("trigger_source = :trigger_source")
            params["trigger_source"] = v.check_enum(trigger_source, "workflow_runs", "trigger_source")
        if since is not None:
            where.append("started_at >= :since")
            params["since"] = v.check_time(since, "since")
        if until is not None:
            where.append("started_at < :until")
            params["until"] = v.check_time(until, "until")
        limit = v.check_int(limit, "limit", minimum=1)
        if cursor is not None:
            after_t, after_id = _decode_cursor(cursor)
            where.append("(started_at < :after_t OR (started_at = :after_t AND id < :after_id))")
            params.update(after_t=after_t, after_id=after_id)
        sql = ("SELECT * FROM workflow_runs" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY started_at DESC, id DESC LIMIT :limit")
        params["limit"] = limit + 1
        with self._locked():
            rows = self._rows(sql, params)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"runs": rows, "next_cursor": _encode_cursor(rows[-1]["started_at"], rows[-1]["id"]) if more else None}

    def list_sessions(self, *, limit: int = 50, cursor: str | None = None) -> dict:
        """Sessions, newest first, with their turn counts; paged like list_workflow_runs."""
        limit = v.check_int(limit, "limit", minimum=1)
        params: dict = {"limit": limit + 1}
        where = ""
        if cursor is not None:
            after_t, after_id = _decode_cursor(cursor)
            where = "WHERE (s.started_at < :after_t OR (s.started_at = :after_t AND s.id < :after_id))"
            params.update(after_t=after_t, after_id=after_id)
        sql = (f"SELECT s.*, (SELECT COUNT(*) FROM conversation_turns t WHERE t.session_id = s.id) AS turns "
               f"FROM sessions s {where} ORDER BY s.started_at DESC, s.id DESC LIMIT :limit")
        with self._locked():
            rows = self._rows(sql, params)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"sessions": rows,
                "next_cursor": _encode_cursor(rows[-1]["started_at"], rows[-1]["id"]) if more else None}

    # --- skills and proposals -------------------------------------------------
    def record_skill(self, skill_key: str, description: str, source_type: str, confidence: float, *,
                     source_ref: str | None = None, learned_at=None, state: str = "active",
                     metadata: dict | None = None, id: str | None = None) -> dict:
        row: _SkillRow = {
            "id": v.check_id(id, "id") if id is not None else v.new_id(),
            "skill_key": v.check_text(skill_key, "skills_learned.skill_key"),
            "description": v.check_text(description, "skills_learned.description"),
            "source_type": v.check_enum(source_type, "skills_learned", "source_type"),
            "source_ref": v.check_text(source_ref, "skills_learned.source_ref", nullable=True),
            "confidence": v.check_unit(confidence, "skills_learned.confidence"),
            "learned_at": v.check_time(learned_at, "skills_learned.learned_at"),
            "state": v.check_enum(state, "skills_learned", "state", SKILL_STATES),
            "metadata_json": v.check_json_object(metadata, "skills_learned.metadata_json")}
        with self._locked(), self._write("record_skill"):
            self._insert("skills_learned", row, "record_skill")
        return self._get("skills_learned", row["id"], "id")

    def create_proposal(self, skill_id: str, proposed_by: str, proposal_type: str, proposal: dict,
                        risk_level: str, *, determinism_score: float | None = None, created_at=None,
                        id: str | None = None) -> dict:
        """A skill-to-logic proposal, status ``drafted``."""
        stamp = v.check_time(created_at, "skill_to_logic_proposals.created_at")
        row: _ProposalRow = {
            "id": v.check_id(id, "id") if id is not None else v.new_id(),
            "skill_id": v.check_ref(skill_id, "skill_id"),
            "proposed_by": v.check_enum(proposed_by, "skill_to_logic_proposals", "proposed_by"),
            "proposal_type": v.check_enum(proposal_type, "skill_to_logic_proposals", "proposal_type"),
            "proposal_json": v.check_json_object(proposal, "skill_to_logic_proposals.proposal_json", default=None),
            "determinism_score": v.check_unit(determinism_score, "skill_to_logic_proposals.determinism_score",
                                              nullable=True),
            "risk_level": v.check_enum(risk_level, "skill_to_logic_proposals", "risk_level"),
            "status": "drafted", "created_at": stamp, "updated_at": stamp}
        with self._locked(), self._write("create_proposal"):
            row["skill_id"] = self._get("skills_learned", row["skill_id"], "skill_id")["id"]
            self._insert("skill_to_logic_proposals", row, "create_proposal")
        return self._get("skill_to_logic_proposals", row["id"], "id")

    def set_proposal_status(self, proposal_id: str, status: str, *, updated_at=None) -> dict:
        """Move a proposal along drafted -> validated -> approved -> promoted,
        or to rejected from any of the first three; anything else raises."""
        pid = v.check_ref(proposal_id, "proposal_id")
        status = v.check_enum(status, "skill_to_logic_proposals", "status")
        stamp = v.check_time(updated_at, "skill_to_logic_proposals.updated_at", default_now=False)
        with self._locked(), self._write("set_proposal_status"):
            cur = self._get("skill_to_logic_proposals", pid, "proposal_id")
            if cur["status"] not in PROPOSAL_TRANSITIONS:
                raise ValidationError(f"proposal {pid} has the status {cur['status']!r} (written by another tool), "
                                      f"which the state machine does not know; allowed: "
                                      f"{', '.join(PROPOSAL_TRANSITIONS)}")
            allowed = PROPOSAL_TRANSITIONS[cur["status"]]
            if status not in allowed:
                raise ValidationError(
                    f"proposal {pid}: {cur['status']} -> {status} is not allowed; from {cur['status']} "
                    + (f"it can go to {', '.join(allowed)}" if allowed else "it cannot change any more"))
            self._conn.execute("UPDATE skill_to_logic_proposals SET status = ?, updated_at = ? WHERE id = ?",
                               (status, stamp or self._stamp(), cur["id"]))
        return self._get("skill_to_logic_proposals", cur["id"], "proposal_id")

    def _audit_row(self, table: str, row: _AuditRow, what: str) -> dict:
        with self._locked(), self._write(what):
            row["proposal_id"] = self._get("skill_to_logic_proposals", row["proposal_id"], "proposal_id")["id"]
            self._insert(table, row, what)
        return self._get(table, row["id"], "id")

    def record_validation(self, proposal_id: str, validator: str, *, build_pass: bool, lint_pass: bool,
                          test_pass: bool, policy_pass: bool, details: dict | None = None, validated_at=None) -> dict:
        row: _ValidationRow = {
            "id": v.new_id(), "proposal_id": v.check_ref(proposal_id, "proposal_id"),
            "validator": v.check_enum(validator, "validation_results", "validator"),
            "build_pass": v.check_flag(build_pass, "validation_results.build_pass"),
            "lint_pass": v.check_flag(lint_pass, "validation_results.lint_pass"),
            "test_pass": v.check_flag(test_pass, "validation_results.test_pass"),
            "policy_pass": v.check_flag(policy_pass, "validation_results.policy_pass"),
            "details_json": v.check_json_object(details, "validation_results.details_json"),
            "validated_at": v.check_time(validated_at, "validation_results.validated_at")}
        return self._audit_row("validation_results", row, "record_validation")

    def record_approval(self, proposal_id: str, approver: str, approval_type: str, decision: str, *,
                        notes: str | None = None, decided_at=None) -> dict:
        row: _ApprovalRow = {
            "id": v.new_id(), "proposal_id": v.check_ref(proposal_id, "proposal_id"),
            "approver": v.check_text(approver, "approvals.approver"),
            "approval_type": v.check_enum(approval_type, "approvals", "approval_type"),
            "decision": v.check_enum(decision, "approvals", "decision"),
            "notes": v.check_text(notes, "approvals.notes", nullable=True, empty=True),
            "decided_at": v.check_time(decided_at, "approvals.decided_at")}
        return self._audit_row("approvals", row, "record_approval")

    def record_deploy_outcome(self, proposal_id: str, deployment_target: str, status: str, *,
                              deployment_id: str | None = None, summary: str | None = None,
                              metrics: dict | None = None, deployed_at=None) -> dict:
        row: _DeployOutcomeRow = {
            "id": v.new_id(), "proposal_id": v.check_ref(proposal_id, "proposal_id"),
            "deployment_target": v.check_text(deployment_target, "deploy_outcomes.deployment_target"),
            "deployment_id": v.check_text(deployment_id, "deploy_outcomes.deployment_id", nullable=True),
            "status": v.check_enum(status, "deploy_outcomes", "status"),
            "summary": v.check_text(summary, "deploy_outcomes.summary", nullable=True, empty=True),
            "metrics_json": v.check_json_object(metrics, "deploy_outcomes.metrics_json"),
            "deployed_at": v.check_time(deployed_at, "deploy_outcomes.deployed_at")}
        return self._audit_row("deploy_outcomes", row, "record_deploy_outcome")

    # --- profiles -------------------------------------------------------------
    def _publish(self, kind: str, name: str, body: dict, created_by: str, rationale, source_ref,
                 effective_from) -> dict:
        table, column = PROFILE_TABLES[kind]
        row_id = v.new_id()
        row: dict[str, str | int | None] = {
            "id": row_id, "profile_name": v.check_text(name, f"{table}.profile_name"),
            column: v.check_json_object(body, f"{table}.{column}", default=None),
            "rationale": v.check_text(rationale, f"{table}.rationale", nullable=True, empty=True),
            "source_ref": v.check_text(source_ref, f"{table}.source_ref", nullable=True),
            "effective_from": (starts := v.check_time(effective_from, f"{table}.effective_from")),
            "created_at": v.now(), "created_by": v.check_text(created_by, f"{table}.created_by")}
        with self._locked(), self._write(f"publish_{kind}_profile"):
            last = self._one(f"SELECT * FROM {table} WHERE profile_name = ? ORDER BY version DESC LIMIT 1", (name,))
            if last is not None:
                prev, begins = v.parse_time(last["effective_from"]), v.parse_time(starts)
                if prev is not None and begins is not None and begins < prev:
                    raise ValidationError(f"{table}.effective_from: {starts} is before version "
                                          f"{last['version']}'s window starts ({last['effective_from']})")
            row["version"] = 1 if last is None else last["version"] + 1
            # close the windows still open, at the moment the new one opens
            self._conn.execute(f"UPDATE {table} SET effective_to = ? WHERE profile_name = ? AND "
                               f"(effective_to IS NULL OR julianday(effective_to) > julianday(?))",
                               (starts, name, starts))
            self._insert(table, row, f"publish_{kind}_profile")
        return self._get(table, row_id, "id")

    def publish_behavior_profile(self, name: str, behavior: dict, created_by: str, *, rationale: str | None = None,
                                 source_ref: str | None = None, effective_from=None) -> dict:
        """Version n + 1 of a behaviour profile, effective from
        ``effective_from`` (now); the previous version's window is closed at
        that moment in the same transaction."""
        return self._publish("behavior", name, behavior, created_by, rationale, source_ref, effective_from)

    def publish_personality_profile(self, name: str, personality: dict, created_by: str, *,
                                    rationale: str | None = None, source_ref: str | None = None,
                                    effective_from=None) -> dict:
        """As :meth:`publish_behavior_profile`, for personality profiles."""
        return self._publish("personality", name, personality, created_by, rationale, source_ref, effective_from)

    def profile_as_of(self, name: str, at=None, kind: str = "behavior") -> dict | None:
        """The version of profile ``name`` in effect at ``at`` (now), or None."""
        if kind not in PROFILE_TABLES:
            raise ValidationError(f"kind: {kind!r} is not allowed; use one of: {', '.join(PROFILE_TABLES)}")
        name = v.check_text(name, "name")
        at = v.check_time(at, "at")
        with self._locked():
            return self._one(QUERIES[f"latest_{kind}_profile"], {"name": name, "at": at})

    # --- the v1 query set ------------------------------------------------------
    def latest_behavior_profile(self, actor: str = "tom") -> dict | None:
        """Query 1: the behaviour profile in effect now for ``actor``."""
        return self.profile_as_of(actor, None, "behavior")

    def latest_personality_profile(self, actor: str = "tom") -> dict | None:
        """Query 2: the personality profile in effect now for ``actor``."""
        return self.profile_as_of(actor, None, "personality")

    def session_replay(self, session_id: str) -> dict:
        """Query 3: the session and its turns ordered by turn_index."""
        sid = v.check_ref(session_id, "session_id")
        with self._locked():
            session = self._get("sessions", sid, "session_id")
            session["turns"] = self._rows(QUERIES["session_replay"], {"session_id": session["id"]})
        return session

    def workflow_replay(self, run_id: str) -> dict:
        """Query 4: the run, its steps ordered by step_index each with its
        events (by time), and the run's events that belong to no step."""
        rid = v.check_ref(run_id, "run_id")
        with self._locked():
            run = self._get("workflow_runs", rid, "run_id")
            steps = self._rows(QUERIES["workflow_replay_steps"], {"run_id": run["id"]})
            events = self._rows(QUERIES["workflow_replay_events"], {"run_id": run["id"]})
        step_ids = {st["id"] for st in steps}
        by_step: dict[str | None, list] = {}
        for e in events:
            by_step.setdefault(e["step_id"] if e["step_id"] in step_ids else None, []).append(e)
        for s in steps:
            s["events"] = by_step.get(s["id"], [])
        run["steps"] = steps
        run["events"] = by_step.get(None, [])
        return run

    def proposal_lineage(self, proposal_id: str) -> dict:
        """Query 5: skill -> proposal -> validations -> approvals -> deploy outcomes."""
        pid = v.check_ref(proposal_id, "proposal_id")
        with self._locked():
            p = {"proposal_id": self._get("skill_to_logic_proposals", pid, "proposal_id")["id"]}
            proposal = self._one(QUERIES["proposal_lineage_proposal"], p)
            if proposal is None:
                raise NotFoundError(f"proposal_id: proposal {pid} refers to a skill that does not exist")
            skill = {"id": proposal["skill_id"], "skill_key": proposal.pop("skill_key"),
                     "description": proposal.pop("skill_description"),
                     "source_type": proposal.pop("skill_source_type"),
                     "confidence": proposal.pop("skill_confidence"), "learned_at": proposal.pop("skill_learned_at")}
            return {"skill": skill, "proposal": proposal,
                    "validations": self._rows(QUERIES["proposal_lineage_validations"], p),
                    "approvals": self._rows(QUERIES["proposal_lineage_approvals"], p),
                    "deploy_outcomes": self._rows(QUERIES["proposal_lineage_deploys"], p)}

    def latest_proposal_id(self) -> str | None:
        with self._locked():
            rows = self._conn.execute("SELECT id FROM skill_to_logic_proposals ORDER BY created_at DESC, id DESC "
                                      "LIMIT 1").fetchall()
        found = rows[0][0] if rows else None
        if found is None or isinstance(found, str):
            return found
        raise CorruptDataError(f"{self.path}: skill_to_logic_proposals.id {found!r} is not text")

    # --- export ---------------------------------------------------------------
    def iter_rows(self, tables: Iterable[str] = TABLES, page: int = 1000) -> Iterator[tuple[str, dict]]:
        """Every row of ``tables`` as (table, row dict), table by table in rowid
        order, read a page at a time (the store stays usable while you
        iterate; rows written meanwhile may or may not appear)."""
        tables = _check_tables(tables)
        for table in tables:
            after = -1
            while True:
                with self._locked():
                    rows = self._rows(f"SELECT rowid AS _rowid, * FROM {table} WHERE rowid > ? ORDER BY rowid "
                                      f"LIMIT ?", (after, page))
                for row in rows:
                    after = row.pop("_rowid")
                    yield table, row
                if len(rows) < page:
                    break

    def export_jsonl(self, out: TextIO, tables: Iterable[str] = TABLES) -> int:
        """Write every row as a JSON line ``{"table": ..., "row": {...}}``, from
        one consistent snapshot; returns the count."""
        tables = _check_tables(tables)
        n = 0
        with self._locked():
            self._conn.execute("BEGIN")          # one read transaction: a snapshot
            try:
                for table in tables:
                    for row in self._iter(f"SELECT * FROM {table} ORDER BY rowid"):
                        out.write(json.dumps({"table": table, "row": row}, ensure_ascii=False, sort_keys=True) + "\n")
                        n += 1
            finally:
                self._conn.execute("COMMIT")
        return n


def _check_is_runtime_db(path: Path) -> None:
    """Refuse, before anything is written to it (connect() would switch it to
    WAL), a database that is not a v1 runtime database: it has tables but none
    of the v1 ones, it records a schema version without the v1 tables (e.g. a
    sequence mirror), or a table of a v1 name lacks v1 columns."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        conn = db.open_readonly(path)
    except ChronoledgerError:
        return                                # control flow: connect() reports what is wrong with the file
    try:
        have = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        version = db.user_version(conn)
        if (have and not have & set(TABLES)) or (version and not set(TABLES) <= have):
            raise SchemaError(f"{path}: not a runtime memory database (it holds "
                              f"{', '.join(sorted(have)[:5]) or 'no tables'}"
                              f"{' at schema version %d' % version if version else ''}); it was left as it was")
        latest = db.migrations("chronoledger.runtime")[-1].version
        if version > latest:
            raise SchemaError(f"{path}: schema version {version} is newer than this chronoledger knows ({latest}); "
                              f"upgrade chronoledger to open it (the file was left as it was)")
        if not version:
            _check_v1_columns(conn, [t for t in TABLES if t in have], path)
    except (apsw.NotADBError, apsw.CorruptError) as exc:
        raise db.sqlite_error(exc, path) from None          # named as such; the file is left as it was
    except apsw.Error:
        return                                # control flow: e.g. locked: connect() waits for it and reports
    finally:
        conn.close()


def _check_v1_columns(conn: apsw.Connection, tables: list[str], path: Path) -> None:
    """Every table of a v1 name has the v1 columns, or SchemaError."""
    spec = _spec_columns()
    for table in tables:
        missing = [c for c in spec[table] if c not in db.table_columns(conn, table)]
        if missing:
            raise SchemaError(f"{path}: table {table} lacks the v1 column(s) {', '.join(missing)}; "
                              f"it was not created from the Runtime Memory DB v1 schema")


def _check_tables(tables: Iterable[str]) -> list[str]:
    tables = list(tables)
    for table in tables:
        if table not in TABLES:
            raise QueryError(f"unknown table {table!r}; the tables are {', '.join(TABLES)}")
    return tables


def _each(items: Any, field: str, what: str) -> Iterable:
    """A batch argument: any iterable of rows, but not one row (a dict) or text."""
    if isinstance(items, (str, bytes, dict)):
        raise ValidationError(f"{field}: expected an iterable of {what}, got a single {type(items).__name__}")
    try:
        return iter(items)
    except TypeError:
        raise ValidationError(f"{field}: expected an iterable of {what}, got {type(items).__name__}") from None


def _not_before(t: str, start: Any, field: str, what: str) -> None:
    a, b = v.parse_time(t), v.parse_time(start)
    if a is not None and b is not None and a < b:
        raise ValidationError(f"{field}: {t} is before {what} ({start})")


def _release(checkpointer: db.BackgroundCheckpointer | None, conn: apsw.Connection,
             chronicle: Chronicle | None) -> None:
    """Close what a store holds (close() and the finalizer of a dropped store)."""
    try:
        if chronicle is not None:
            chronicle.close()
    finally:
        if checkpointer is not None:
            checkpointer.close()
        conn.close()


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _encode_cursor(t: str, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{t}|{row_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        t, row_id = raw.split("|", 1)
        return t, row_id
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(f"cursor: {cursor!r} is not a cursor this store gave out") from None
