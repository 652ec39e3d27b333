"""``/api/data/*`` and ``/api/trends/metrics``: a Chronos user's mirrors.

The SQL endpoint runs :func:`chronoledger.sequence.query.run_query`, the
function behind ``sequence data``: the mirrors opened read-only, an
authorizer that refuses anything but reads, a time limit and a row limit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from chronoledger.sequence import dashboard, schema
from chronoledger.sequence.digest import FILES as DIGEST_FILES
from chronoledger.sequence.query import run_query
from chronoledger.server.config import MAX_SQL_BYTES, MAX_SQL_ROWS
from chronoledger.errors import RequestError
from chronoledger.server.http import Json, int_param, ok, read_json
from chronoledger.server.stores import Stores

def routes(stores: Stores) -> list[Route]:
    def _db(request: Request) -> str:
        which = request.query_params.get("db", "core")
        if which not in schema.FILES:
            raise RequestError(400, f"db: no mirror {which!r}; the mirrors are {', '.join(schema.FILES)}")
        return which

    def databases(request: Request) -> Json:
        """
        summary: The mirrors of the user folder, each with its file, size and time of change.
        responses:
          200: {description: '{"ok": true, "databases": [{"name", "file", "exists", "size", "modified"}]}'}
        """
        data = stores.mirrors()
        return ok(folder=str(data), databases=dashboard.mirror_files(data))

    def tables(request: Request) -> Json:
        """
        summary: The tables of one mirror (?db=core, the default) with their columns and row counts.
        parameters:
          - {name: db, in: query, schema: {type: string, enum: [core, events, memory, behavior, matrix, trends]}}
        """
        which = _db(request)
        return ok(db=which, tables=dashboard.mirror_tables(stores.mirrors(), which, stores.config.sql_timeout))

    def items(request: Request) -> Json:
        """
        summary: Items of the core mirror, filtered by type and by a piece of their name, a page at a time.
        parameters:
          - {name: type, in: query, schema: {type: string}}
          - {name: q, in: query, description: text the name contains, schema: {type: string}}
          - {name: limit, in: query, schema: {type: integer, default: 100, maximum: 10000}}
          - {name: offset, in: query, schema: {type: integer, default: 0}}
        """
        limit = int_param(request, "limit", 100, low=1, high=MAX_SQL_ROWS) or 100
        offset = int_param(request, "offset", 0) or 0
        found, more = dashboard.find_items(stores.mirrors(), type=request.query_params.get("type") or None,
                                           text=request.query_params.get("q") or None, limit=limit, offset=offset,
                                           timeout=stores.config.sql_timeout)
        return ok(items=found, next_offset=offset + limit if more else None)

    def item(request: Request) -> Json:
        """
        summary: One item (by slug, or by id) with its relations and its completions.
        parameters:
          - {name: key, in: path, required: true, schema: {type: string}}
        """
        return ok(**dashboard.item_detail(stores.mirrors(), request.path_params["key"]))

    def digest(request: Request) -> Json:
        """
        summary: The behaviour digest (tendencies.json, as the metastudy wrote it).
        """
        path = stores.mirrors() / DIGEST_FILES[0]
        if not path.is_file():
            raise RequestError(404, f"{path}: no digest yet; run `sequence memory --metastudy` (or `sequence sync`)")
        try:
            return ok(digest=json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise RequestError(500, f"{path}: cannot be read: {exc}") from None

    def series(request: Request) -> Json:
        """
        summary: Completions per day by status, and the habits' streaks day by day (what /digest charts).
        """
        data = stores.mirrors()
        return ok(completions=dashboard.completion_series(data), streaks=dashboard.habit_streaks(data))

    async def query(request: Request) -> Json:
        """
        summary: One read-only SQL statement on the mirrors (writes, ATTACH and PRAGMA changes are refused).
        description: >-
          GET with ?sql=...&db=&limit=&offset=, or POST {"sql", "db", "params", "limit", "offset"}.
          The other mirrors are attached under their names.  At most 10,000 rows a page; next_offset is
          set when there are more.  The query is stopped past the server's time limit (400).
        parameters:
          - {name: sql, in: query, description: 'one SQL statement that reads (GET)', schema: {type: string}}
          - {name: db, in: query, description: 'the main mirror (default core)', schema: {type: string}}
          - {name: limit, in: query, schema: {type: integer, default: 1000, maximum: 10000}}
          - {name: offset, in: query, schema: {type: integer, default: 0}}
        """
        if request.method == "POST":
            body = await read_json(request, stores.config)
            if not isinstance(body, dict):
                raise RequestError(400, 'the body is a JSON object: {"sql": "SELECT ...", "db": "core", ...}')
            unknown = sorted(set(body) - {"sql", "db", "params", "limit", "offset"})
            if unknown:
                raise RequestError(400, f"unknown field(s) {', '.join(unknown)}; the fields are sql, db, params, "
                                    "limit and offset")
        else:
            body = dict(request.query_params)
        sql = body.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            raise RequestError(400, "sql: one SQL statement that reads (SELECT, WITH ..., a PRAGMA that reads)")
        which = body.get("db", "core")
        if not isinstance(which, str) or which not in schema.FILES:
            raise RequestError(400, f"db: no mirror {which!r}; the mirrors are {', '.join(schema.FILES)}")
        params = body.get("params", [])
        values = params.values() if isinstance(params, dict) else params
        if not isinstance(params, (list, dict)) or not all(
                v is None or isinstance(v, (str, float, bool)) or (isinstance(v, int) and -2 ** 63 <= v < 2 ** 63)
                for v in values):
            raise RequestError(400, "params: a list (for ?) or an object (for :name) of values: text, numbers "
                                    "(64-bit integers), true, false or null")
        limit = _count(body.get("limit", 1000), "limit", 1, MAX_SQL_ROWS)
        offset = _count(body.get("offset", 0), "offset", 0, 2 ** 63 - 1)
        data = stores.mirrors()
        async with stores.sql_slots:        # a few queries at a time: the rest wait here, holding no thread
            names, rows = await run_in_threadpool(lambda: run_query(
                data, sql, which, limit + 1, stores.config.sql_timeout, params=params, offset=offset,
                max_bytes=MAX_SQL_BYTES))
        more = len(rows) > limit
        return ok(db=which, columns=names, rows=[list(r) for r in rows[:limit]], row_count=min(len(rows), limit),
                  next_offset=offset + limit if more else None)

    def trends(request: Request) -> Json:
        """
        summary: Chronos's dashboard metrics, in the shape its trends widget reads.
        description: '{"ok": true, "metrics": {"habit_stats": {...}, "goal_stats": {...}, ...}}'
        """
        return Json(dashboard.trends_metrics(stores.mirrors()))

    return [Route("/api/data", databases), Route("/api/data/tables", tables), Route("/api/data/items", items),
            Route("/api/data/items/{key}", item), Route("/api/data/digest", digest),
            Route("/api/data/series", series), Route("/api/data/query", query, methods=["GET", "POST"]),
            Route("/api/trends/metrics", trends)]


def _count(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = json.dumps(value) if isinstance(value, (bool, type(None))) else repr(value)
        raise RequestError(400, f"{name}: {shown} must be a whole number in {low}..{high:,}")
    return value
