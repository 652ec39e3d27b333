"""``/api/runs/*``: the chronicles of a folder, each run's metrics as
series (full resolution on request, else thinned by
:mod:`chronoledger.chronicle.series`, which keeps every extreme), and its
checks (``chronicle verify``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from chronoledger.chronicle.audit import verify
from chronoledger.chronicle.series import run_info, run_series
from chronoledger.errors import ChronoledgerError, RequestError
from chronoledger.server.config import DEFAULT_POINTS
from chronoledger.server.http import Json, flag_param, int_param, ok, status_of
from chronoledger.server.stores import Stores

#: runs a list names at most
MAX_RUNS = 5000
MAX_POINTS = 200_000


def run_path(root: Path, given: str) -> Path:
    """The chronicle ``given`` names below ``root``: a relative path with no
    ``..``, ending in .cmeta, that stays inside ``root`` once links are
    followed; anything else is refused without touching the file system
    outside ``root``."""
    if not given or "\x00" in given or given.startswith(("/", "\\")) or ":" in given.split("/")[0]:
        raise RequestError(400, f"run: {given!r} is not a path below the runs folder")
    parts = given.replace("\\", "/").split("/")
    if any(p in ("..", ".", "") for p in parts):
        raise RequestError(400, f"run: {given!r} leaves the runs folder (.. and empty parts are refused)")
    if not given.endswith(".cmeta"):
        raise RequestError(404, f"run: {given!r} is not a chronicle (.cmeta)")
    base = root.resolve()
    try:
        target = (base / "/".join(parts)).resolve()
        inside = target.is_relative_to(base)
        found = inside and target.is_file()
    except (OSError, ValueError):         # a name too long for the file system, say
        raise RequestError(404, f"run: no chronicle {given!r} in the runs folder") from None
    if not inside:
        raise RequestError(400, f"run: {given!r} leaves the runs folder")
    if not found:
        raise RequestError(404, f"run: no chronicle {given!r} in the runs folder")
    return target


@contextmanager
def _named_as(path: Path, rel: str) -> Iterator[None]:
    """A library error about ``path`` answered with the run's name below the folder, not the server's own path
    (its status and kind kept)."""
    try:
        yield
    except ChronoledgerError as exc:
        if isinstance(exc, RequestError):
            raise
        raise RequestError(status_of(exc), str(exc).replace(str(path), rel), kind=type(exc).__name__) from None


def _renamed(value: Any, path: str, rel: str) -> Any:
    """``value`` with the server's path of a run written as its name below the folder, in every text."""
    if isinstance(value, str):
        return value.replace(path, rel)
    if isinstance(value, dict):
        return {k: _renamed(v, path, rel) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, path, rel) for v in value]
    return value


def routes(stores: Stores) -> list[Route]:
    def runs(request: Request) -> Json:
        """
        summary: The chronicles below the runs folder (their headers; nothing decoded), by path.
        """
        root = stores.runs()
        found, problems = [], []
        for p in sorted(root.rglob("*.cmeta"))[:MAX_RUNS]:
            rel = p.relative_to(root).as_posix()
            try:
                path = run_path(root, rel)          # what a link outside the folder names is never read
            except RequestError:
                continue
            try:
                found.append({"run": rel, **{k: v for k, v in run_info(path).items() if k != "path"}})
            except ChronoledgerError as exc:            # one damaged file does not hide the others
                problems.append({"run": rel, "error": str(exc).replace(str(path), rel)})
        return ok(runs=found, unreadable=problems)

    def info(request: Request) -> Json:
        """
        summary: One run's header (records, schema, config, tags, metrics).
        parameters: [{name: run, in: path, required: true, schema: {type: string}}]
        """
        root = stores.runs()
        p = run_path(root, request.path_params["run"])
        rel = p.relative_to(root.resolve()).as_posix()
        with _named_as(p, rel):
            info = run_info(p)
        return ok(run={"run": rel, **{k: v for k, v in info.items() if k != "path"}})

    async def series(request: Request) -> Json:
        """
        summary: A run's metrics as series, thinned to ?points=N (default 2000) keeping extremes, or ?full=1.
        description: >-
          ?metrics=loss_value,coherence (default every metric).  Each series is {"i": record positions,
          "t": timestamps, "y": values}; phases lists [start, end, phase] stretches of a cycle chronicle
          (timestamps), phase_records the same as record positions.  Thinning: the records are cut into
          points/2 buckets of equal count and each bucket's lowest and highest value are kept, in order.
        parameters:
          - {name: run, in: path, required: true, schema: {type: string}}
          - {name: metrics, in: query, description: 'comma-separated metric names (default every metric)', schema: {type: string}}
          - {name: points, in: query, schema: {type: integer, default: 2000, minimum: 2, maximum: 200000}}
          - {name: full, in: query, description: 'every record, not thinned', schema: {type: boolean}}
        """
        root = stores.runs()
        p = run_path(root, request.path_params["run"])
        full = flag_param(request, "full")
        points = int_param(request, "points", DEFAULT_POINTS, low=2, high=MAX_POINTS)
        if full:
            points = None
        names = request.query_params.getlist("metrics")
        metrics = [m.strip() for n in names for m in n.split(",") if m.strip()] if names else None
        if names and not metrics:
            raise RequestError(400, "metrics: name at least one metric (metrics=loss_value,coherence)")
        with _named_as(p, p.relative_to(root.resolve()).as_posix()):
            found = await run_in_threadpool(run_series, p, metrics, points)
        found["run"] = p.relative_to(root.resolve()).as_posix()
        del found["path"]
        return ok(series=found)

    async def check(request: Request) -> Json:
        """
        summary: Verify a run as `chronicle verify` does (every checksum, the index, the order).
        parameters: [{name: run, in: path, required: true, schema: {type: string}}]
        """
        root = stores.runs()
        p = run_path(root, request.path_params["run"])
        with _named_as(p, p.relative_to(root.resolve()).as_posix()):
            report = await run_in_threadpool(verify, p)
        rel = p.relative_to(root.resolve()).as_posix()
        return ok(verify={**_renamed(report.as_dict(), str(p), rel), "path": rel})

    return [Route("/api/runs", runs), Route("/api/runs/{run:path}/series", series),
            Route("/api/runs/{run:path}/verify", check), Route("/api/runs/{run:path}", info)]
