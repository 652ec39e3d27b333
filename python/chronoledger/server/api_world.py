"""``/api/world/*``: a world database's runs, a day's timeline to replay,
and one agent's day (``world report --agent``'s function)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from chronoledger.errors import RequestError
from chronoledger.server.http import Json, int_param, ok
from chronoledger.server.stores import Stores
from chronoledger.world.reporting import agent_day
from chronoledger.world.timeline import day_timeline, world_runs


def routes(stores: Stores) -> list[Route]:
    def runs(request: Request) -> Json:
        """
        summary: The world's runs, newest first, each with its days.
        """
        return ok(runs=world_runs(stores.world()))

    async def timeline(request: Request) -> Json:
        """
        summary: A day of a run as a timeline (?day=YYYY-MM-DD&run=ID; default the latest run's first day).
        description: >-
          places, agents, ticks (clock times), moves (per agent: [tick, place id or null] each time its
          place changes; null is on its way), conversations with their turns (at most 500; conversations_total
          counts them all) and the day's relationship changes.
        parameters:
          - {name: day, in: query, description: 'YYYY-MM-DD (default the run''s first day)', schema: {type: string}}
          - {name: run, in: query, description: 'the run id (default the latest run with events)', schema: {type: integer}}
        """
        run = int_param(request, "run", None, low=1)
        day = request.query_params.get("day") or None
        return ok(timeline=await run_in_threadpool(day_timeline, stores.world(), day, run))

    async def agent(request: Request) -> Json:
        """
        summary: "One agent's day (?day=YYYY-MM-DD required, ?run=ID): its actions, conversations and memories."
        parameters:
          - {name: agent, in: path, required: true, description: 'its name or id', schema: {type: string}}
          - {name: day, in: query, required: true, description: 'YYYY-MM-DD', schema: {type: string}}
          - {name: run, in: query, schema: {type: integer}}
        """
        run = int_param(request, "run", None, low=1)
        day = request.query_params.get("day")
        if not day:
            raise RequestError(400, "day: which day (YYYY-MM-DD); /api/world/runs lists each run's days")
        return ok(day=await run_in_threadpool(agent_day, stores.world(), day, request.path_params["agent"], run))

    return [Route("/api/world/runs", runs), Route("/api/world/timeline", timeline),
            Route("/api/world/agents/{agent}", agent)]
