"""Workflow runs, their steps and task events (query 4: workflow replay),
mirrored to a chronicle event log when the store has one."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from typing import TypedDict

from chronoledger import sqlite as db
from chronoledger.chronicle import Chronicle
from chronoledger.errors import ChronoledgerError, CorruptDataError, ValidationError
from chronoledger.runtime import values as v
from chronoledger.runtime.core import _EPOCH, QUERIES, StoreCore, _decode_cursor, _each, _logger
from chronoledger.runtime.vocab import STEP_STATUSES

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



class Workflows(StoreCore):
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
        rows, nxt = self._page(sql, params, limit, "started_at")
        return {"runs": rows, "next_cursor": nxt}

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

