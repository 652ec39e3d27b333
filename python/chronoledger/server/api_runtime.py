"""``/api/runtime/*``: an agent runtime database, read-only: sessions,
a session's replay, a workflow run's replay, a proposal's lineage, and a
profile as of a time (the functions behind ``chronoledger runtime ...``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from chronoledger.errors import NotFoundError, RequestError
from chronoledger.server.http import Json, int_param, ok
from chronoledger.server.stores import Stores


def routes(stores: Stores) -> list[Route]:
    def sessions(request: Request) -> Json:
        """
        summary: Sessions, newest first, with their turn counts, a page at a time (?limit=50&cursor=NEXT).
        parameters:
          - {name: limit, in: query, schema: {type: integer, default: 50, maximum: 1000}}
          - {name: cursor, in: query, description: 'the next_cursor of the page before', schema: {type: string}}
        """
        limit = int_param(request, "limit", 50, low=1, high=1000) or 50
        page = stores.runtime().list_sessions(limit=limit, cursor=request.query_params.get("cursor") or None)
        return ok(**page)

    def session(request: Request) -> Json:
        """
        summary: A session's turns in order, all or a page at a time (?after=TURN_INDEX&limit=N).
        parameters:
          - {name: id, in: path, required: true, schema: {type: string}}
          - {name: after, in: query, description: 'the last turn_index of the page before', schema: {type: integer}}
          - {name: limit, in: query, schema: {type: integer, maximum: 10000}}
        """
        after = int_param(request, "after", None, low=-1)
        limit = int_param(request, "limit", None, low=1, high=10_000)
        return ok(session=stores.runtime().session_replay(request.path_params["id"], after=after, limit=limit))

    def workflows(request: Request) -> Json:
        """
        summary: Workflow runs, newest first (?status=&trigger_source=&limit=&cursor=).
        """
        limit = int_param(request, "limit", 50, low=1, high=1000) or 50
        q = request.query_params
        return ok(**stores.runtime().list_workflow_runs(status=q.get("status") or None,
                                                       trigger_source=q.get("trigger_source") or None,
                                                       limit=limit, cursor=q.get("cursor") or None))

    def workflow(request: Request) -> Json:
        """
        summary: A workflow run's steps in order, each with its events.
        parameters: [{name: id, in: path, required: true, schema: {type: string}}]
        """
        return ok(run=stores.runtime().workflow_replay(request.path_params["id"]))

    def proposals(request: Request) -> Json:
        """
        summary: Skill proposals, newest first (?status=&risk_level=&limit=&cursor=).
        """
        limit = int_param(request, "limit", 50, low=1, high=1000) or 50
        q = request.query_params
        return ok(**stores.runtime().list_proposals(status=q.get("status") or None,
                                                   risk_level=q.get("risk_level") or None, limit=limit,
                                                   cursor=q.get("cursor") or None))

    def lineage(request: Request) -> Json:
        """
        summary: Skill -> proposal -> validations -> approvals -> deploy outcomes (id "latest" for the newest).
        parameters: [{name: id, in: path, required: true, schema: {type: string}}]
        """
        store = stores.runtime()
        pid = request.path_params["id"]
        if pid == "latest":
            pid = store.latest_proposal_id()
            if pid is None:
                raise NotFoundError(f"{store.path}: there are no proposals")
        return ok(lineage=store.proposal_lineage(pid))

    def profile(request: Request) -> Json:
        """
        summary: The version of a profile in effect now, or ?as_of=ISO-TIME (?kind=behavior|personality).
        parameters:
          - {name: name, in: path, required: true, schema: {type: string}}
          - {name: kind, in: query, schema: {type: string, enum: [behavior, personality]}}
          - {name: as_of, in: query, description: 'an ISO-8601 time with a zone (default now)', schema: {type: string}}
        """
        kind = request.query_params.get("kind", "behavior")
        if kind not in ("behavior", "personality"):
            raise RequestError(400, f"kind: {kind!r} is behavior or personality")
        as_of = request.query_params.get("as_of") or None
        store = stores.runtime()
        found = store.profile_as_of(request.path_params["name"], as_of, kind)
        if found is None:
            raise NotFoundError(f"{store.path}: no {kind} profile {request.path_params['name']!r} in effect "
                                f"{'at ' + as_of if as_of else 'now'}")
        return ok(profile=found)

    return [Route("/api/runtime/sessions", sessions), Route("/api/runtime/sessions/{id}", session),
            Route("/api/runtime/workflows", workflows), Route("/api/runtime/workflows/{id}", workflow),
            Route("/api/runtime/proposals", proposals), Route("/api/runtime/lineage/{id}", lineage),
            Route("/api/runtime/profiles/{name}", profile)]
