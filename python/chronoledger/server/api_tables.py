"""``/api/tables/*``: the rows of a table registry, its proposals and their
governance log, and schema inference on an uploaded file.

Reads go to the registry the server holds open; writes (insert, update,
approve, reject, propose) need the token.  A refused row is answered 422
with every bad field (``problems``), and nothing of it is written.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from chronoledger.errors import CorruptDataError, RequestError, SchemaError, ValidationError
from chronoledger.server.http import (Json, flag_param, int_param, name_param, ok, parse_json, read_body, read_json,
                                      read_optional_json, require_token)
from chronoledger.server.stores import Stores
from chronoledger.tables.infer import infer_files
from chronoledger.tables.ingest import propose_inference
from chronoledger.tables.records import KINDS

#: rows a list answers at most at once
MAX_PAGE = 1000
PROPOSAL_STATUSES = ("pending", "applied", "rejected", "superseded")


def routes(stores: Stores) -> list[Route]:
    config = stores.config

    def list_tables(request: Request) -> Json:
        """
        summary: The tables, with their row counts, versions and pending proposals.
        """
        return ok(tables=stores.tables().overview())

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
        parameters:
          - {name: table, in: path, required: true, schema: {type: string}}
          - {name: where, in: query, description: 'a JSON filter object, e.g. {"score": {"gt": 3}}', schema: {type: string}}
          - {name: order_by, in: query, description: 'a field, -field for descending; repeatable', schema: {type: string}}
          - {name: limit, in: query, schema: {type: integer, default: 100, maximum: 1000}}
          - {name: offset, in: query, schema: {type: integer, default: 0}}
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
            filters = parse_json(where, "where")
            if not isinstance(filters, dict):
                raise RequestError(400, 'where: a JSON object of filters, e.g. {"field": {"gt": 3}}')
        order_by = request.query_params.getlist("order_by") or None
        limit = int_param(request, "limit", 100, low=1, high=MAX_PAGE) or 100
        offset = int_param(request, "offset", 0, high=2 ** 63 - 2 - limit) or 0
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
            changes = await read_json(request, config, "the body (the fields to change)")
            if not isinstance(changes, dict) or not changes:
                raise RequestError(400, "the changes: a JSON object of the fields to set")
            await run_in_threadpool(reg.get_row, name, key)           # a missing row: 404, not 0 rows changed
            pk = reg.schema(name).primary_key.name
            await run_in_threadpool(reg.update_rows, name, {pk: key}, changes)
        return ok(row=await run_in_threadpool(reg.get_row, name, key))

    def proposals(request: Request) -> Json:
        """
        summary: Schema proposals, filtered by ?status= and ?table=.
        parameters:
          - {name: status, in: query, schema: {type: string, enum: [pending, applied, rejected, superseded]}}
          - {name: table, in: query, schema: {type: string}}
        """
        table = request.query_params.get("table") or None
        status = request.query_params.get("status") or None
        if status is not None and status not in PROPOSAL_STATUSES:
            raise RequestError(400, f"status: {status!r} is not one of {', '.join(PROPOSAL_STATUSES)}")
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
        body = await read_optional_json(request, config)
        body = {} if body is None else body
        if not isinstance(body, dict) or set(body) - {"approver", "reason"} or \
                not all(v is None or isinstance(v, str) for v in body.values()):
            raise RequestError(400, 'the body: {"approver": NAME, "reason": TEXT} (both text, both optional)')
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
        propose = flag_param(request, "propose")
        if propose:
            require_token(request, config)
        given = request.query_params.get("filename") or ""
        filename = Path(given).name
        if not filename or filename != given or "\x00" in filename or "\\" in filename or \
                Path(filename).suffix.lower() not in KINDS:
            raise RequestError(400, f"filename: {given!r}: name the uploaded file, no folders (its suffix says "
                                    f"its kind: {', '.join(sorted(KINDS))})")
        table = request.query_params.get("table")
        if table is not None:
            name_param(table, "table", 400)
        body = await read_body(request, config)

        def run() -> dict:
            with tempfile.TemporaryDirectory(prefix="chronoledger-infer-") as tmp:
                path = Path(tmp) / filename
                path.write_bytes(body)
                label = f"{filename} (uploaded)"
                try:
                    inference = infer_files([path], table)
                except (CorruptDataError, SchemaError, ValidationError) as exc:   # what the upload holds
                    raise RequestError(422, f"the upload cannot be read: {str(exc).replace(str(path), label)}") \
                        from None
                except RecursionError:
                    raise RequestError(422, f"the upload cannot be read: {label}: nested too deeply") from None
                # the governance log names the upload, not a temporary file that is gone once this returns
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
            # GET /api/tables/infer is not the table "infer": 405 before /api/tables/{table} takes it
            Route("/api/tables/infer", _post_only, methods=["GET"], include_in_schema=False),
            Route("/api/tables/{table}", show), Route("/api/tables/{table}/history", history),
            Route("/api/tables/{table}/rows", rows, methods=["GET", "POST"]),
            Route("/api/tables/{table}/rows/{key}", row, methods=["GET", "PATCH"])]


def _post_only(request: Request) -> Json:
    raise RequestError(405, f"{request.method} is not allowed on {request.url.path}: POST the file")
