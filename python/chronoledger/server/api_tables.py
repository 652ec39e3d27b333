"""``/api/tables/*``: the rows of a table registry, its proposals and their
governance log, and schema inference on an uploaded file.

Reads go to the registry the server holds open; writes (insert, update,
approve, reject, propose) need the token.  A refused row is answered 422
with every bad field (``problems``), and nothing of it is written.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from chronoledger.errors import RequestError
from chronoledger.server.http import Json, int_param, name_param, ok, read_body, read_json, require_token
from chronoledger.server.stores import Stores
from chronoledger.tables.infer import infer_files
from chronoledger.tables.ingest import propose_inference
from chronoledger.tables.records import KINDS

#: rows a list answers at most at once
MAX_PAGE = 1000


def routes(stores: Stores) -> list[Route]:
    config = stores.config

    def list_tables(request: Request) -> Json:
        """
        summary: The tables, with their row counts, versions and pending proposals.
        """
        reg = stores.tables()
        pending: dict[str, int] = {}
        for p in reg.proposals(status="pending"):
            pending[p["table_name"]] = pending.get(p["table_name"], 0) + 1
        out = []
        for name in reg.tables():
            s = reg.schema(name)
            out.append({"table": name, "rows": reg.count_rows(name), "fields": len(s.fields), "version": s.version,
                        "immutable": s.immutable, "pending": pending.get(name, 0), "description": s.description})
        return ok(tables=out)

    def show(request: Request) -> Json:
        """
        summary: A table's schema as declared, with its hash and row count.
        parameters: [{name: table, in: path, required: true, schema: {type: string}}]
        """
        name = name_param(request.path_params["table"], "table")
        reg = stores.tables()
        s = reg.schema(name)
        return ok(schema={**s.declared(), "schema_hash": s.hash, "rows": reg.count_rows(name)})

    async def rows(request: Request) -> Json:
        """
        summary: GET lists rows (filter language as `tables query`); POST inserts a row (an object) or rows (a list).
        description: >-
          GET ?where={"field": {"gt": 3}}&order_by=-field&limit=100&offset=0 (where: the JSON filter object
          of chronoledger.tables.query; order_by repeatable).  POST needs the token; a refused row is 422 with
          every bad field in problems, and nothing is written.
        parameters: [{name: table, in: path, required: true, schema: {type: string}}]
        """
        name = name_param(request.path_params["table"], "table")
        reg = stores.tables()
        if request.method == "POST":
            require_token(request, config)
            data = await read_json(request, config, "the row")
            if isinstance(data, list):
                if not all(isinstance(r, dict) for r in data):
                    raise RequestError(400, "rows: a JSON list of objects, one per row")
                many = await run_in_threadpool(reg.insert_rows, name, data)
                return Json({"ok": True, "rows": many}, status_code=201)
            if not isinstance(data, dict):
                raise RequestError(400, "the row: a JSON object (one row) or a list of them")
            stored = await run_in_threadpool(reg.insert_row, name, data)
            return Json({"ok": True, "row": stored}, status_code=201)
        where = request.query_params.get("where")
        filters: Any = None
        if where:
            try:
                filters = json.loads(where)
            except ValueError as exc:
                raise RequestError(400, f"where: not JSON: {exc}") from None
            if not isinstance(filters, dict):
                raise RequestError(400, 'where: a JSON object of filters, e.g. {"field": {"gt": 3}}')
        order_by = request.query_params.getlist("order_by") or None
        limit = int_param(request, "limit", 100, low=1, high=MAX_PAGE) or 100
        offset = int_param(request, "offset", 0) or 0
        found = await run_in_threadpool(reg.query_rows, name, filters, order_by, limit + 1, offset)
        more = len(found) > limit
        return ok(rows=found[:limit], next_offset=offset + limit if more else None)

    async def row(request: Request) -> Json:
        """
        summary: GET one row by its primary key; PATCH changes fields of it (token; 422 lists every bad field).
        parameters:
          - {name: table, in: path, required: true, schema: {type: string}}
          - {name: key, in: path, required: true, schema: {type: string}}
        """
        name = name_param(request.path_params["table"], "table")
        key = request.path_params["key"]
        reg = stores.tables()
        if request.method == "PATCH":
            require_token(request, config)
            changes = await read_json(request, config, "the changes")
            if not isinstance(changes, dict) or not changes:
                raise RequestError(400, "the changes: a JSON object of the fields to set")
            await run_in_threadpool(reg.get_row, name, key)           # a missing row: 404, not 0 rows changed
            pk = reg.schema(name).primary_key.name
            await run_in_threadpool(reg.update_rows, name, {pk: key}, changes)
        return ok(row=await run_in_threadpool(reg.get_row, name, key))

    def proposals(request: Request) -> Json:
        """
        summary: Schema proposals, filtered by ?status= (pending, approved, rejected, applied) and ?table=.
        """
        table = request.query_params.get("table")
        status = request.query_params.get("status")
        return ok(proposals=stores.tables().proposals(table=table, status=status))

    def proposal(request: Request) -> Json:
        """
        summary: One proposal.
        parameters: [{name: id, in: path, required: true, schema: {type: string}}]
        """
        return ok(proposal=stores.tables().proposal(request.path_params["id"]))

    async def decide(request: Request) -> Json:
        """
        summary: Approve or reject a proposal (token); body {"approver", "reason"}.
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
          - {name: decision, in: path, required: true, schema: {type: string, enum: [approve, reject]}}
        """
        require_token(request, config)
        decision = request.path_params["decision"]
        if decision not in ("approve", "reject"):
            raise RequestError(404, f"{decision!r}: a proposal is approved or rejected (approve, reject)")
        body = await read_json(request, config) if int(request.headers.get("content-length") or 0) else {}
        if not isinstance(body, dict) or set(body) - {"approver", "reason"}:
            raise RequestError(400, 'the body: {"approver": NAME, "reason": TEXT} (both optional)')
        reg = stores.tables()
        fn = reg.approve if decision == "approve" else reg.reject
        done = await run_in_threadpool(lambda: fn(request.path_params["id"], approver=body.get("approver"),
                                                  reason=str(body.get("reason") or "")))
        return ok(proposal=done)

    def history(request: Request) -> Json:
        """
        summary: A table's governance log (its proposals and decisions, oldest first).
        parameters: [{name: table, in: path, required: true, schema: {type: string}}]
        """
        name = name_param(request.path_params["table"], "table")
        return ok(history=stores.tables().history(name))

    async def infer(request: Request) -> Json:
        """
        summary: Infer a table's schema from an uploaded file (the raw body), and with ?propose=1 propose it (token).
        parameters:
          - {name: filename, in: query, required: true, description: the file's name (its suffix says its kind), schema: {type: string}}
          - {name: table, in: query, schema: {type: string}}
          - {name: propose, in: query, schema: {type: boolean}}
          - {name: by, in: query, description: who proposes it (default the server's user), schema: {type: string}}
        """
        propose = request.query_params.get("propose", "").lower() in ("1", "true", "yes")
        if propose:
            require_token(request, config)
        filename = Path(request.query_params.get("filename") or "").name
        if not filename or Path(filename).suffix.lower() not in KINDS:
            raise RequestError(400, f"filename: name the uploaded file (its suffix says its kind: "
                                f"{', '.join(sorted(KINDS))})")
        table = request.query_params.get("table")
        if table is not None:
            name_param(table, "table")
        body = await read_body(request, config)

        def run() -> dict:
            with tempfile.TemporaryDirectory(prefix="chronoledger-infer-") as tmp:
                path = Path(tmp) / filename
                path.write_bytes(body)
                inference = infer_files([path], table)
                # the governance log names the upload, not a temporary file that is gone once this returns
                label = f"{filename} (uploaded)"
                inference.files = [label]
                inference.schema = dataclasses.replace(inference.schema, source=label)
                found = inference.as_dict()
                if propose:
                    found["proposal"] = propose_inference(stores.tables(), inference,
                                                          proposed_by=request.query_params.get("by") or None)
                return found
        return ok(inference=await run_in_threadpool(run))

    return [Route("/api/tables", list_tables), Route("/api/tables/proposals", proposals),
            Route("/api/tables/proposals/{id}", proposal),
            Route("/api/tables/proposals/{id}/{decision}", decide, methods=["POST"]),
            Route("/api/tables/infer", infer, methods=["POST"]),
            Route("/api/tables/{table}", show), Route("/api/tables/{table}/history", history),
            Route("/api/tables/{table}/rows", rows, methods=["GET", "POST"]),
            Route("/api/tables/{table}/rows/{key}", row, methods=["GET", "PATCH"])]
