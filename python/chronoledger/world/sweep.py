"""Parameter sweeps of the world, as Mesa's ``batch_run``: every combination
of the parameters' values, for every seed, one world each (its own database
and event log), in processes here or on a Dask cluster; the summary a
chronicle of its own, so the sweep reads as a dataset (docs/world.md, "Sweeps").

A parameter is ``agents`` or ``days`` (the run's), or a config key in dotted
form (``memory.retrieve``), laid over the config as ``--set`` would.  A run is
the same wherever it runs: its database starts empty, its agents are made up
from the run's seed, and the offline model answers from the seed, so its
event log is byte for byte the one another machine makes.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from chronoledger.chronicle import Chronicle
from chronoledger.errors import ConfigError, ExistsError, MissingDependencyError
from chronoledger.world import store
from chronoledger.world.agents import ensure_agents
from chronoledger.world.config import load_config
from chronoledger.world.models import make_model
from chronoledger.world.results import RunOptions
from chronoledger.world.scheduler import run

#: Parameters of the run itself; anything else is a config key.
RUN_PARAMS = ("agents", "days")
SUMMARY = "summary.cmeta"
#: The figures of each run in the summary (values.<name> of its record).
FIGURES = ("agents", "days", "seed", "agent_ticks", "events", "conversations", "memories", "seconds")


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its parameters' values, its seed, its folder (relative to the sweep's)."""
    params: tuple[tuple[str, Any], ...]
    seed: int
    folder: str


#: A parameter's name: agents, days, or a config key in dotted form (it names folders: nothing else).
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_param(spec: str) -> tuple[str, list[Any]]:
    """``agents=100,1000`` -> ("agents", [100, 1000]); a value is read as JSON
    (numbers, true/false, "text") or else taken as text."""
    name, sep, values = spec.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise ConfigError(f"--param {spec!r}: write NAME=VALUE[,VALUE...] (agents=100,1000)")
    if not _NAME.match(name):
        raise ConfigError(f"--param {spec!r}: {name!r} is not a parameter's name (agents, days, or a config key "
                          f"such as memory.retrieve)")
    out: list[Any] = []
    for text in values.split(","):
        text = text.strip()
        try:
            out.append(json.loads(text))
        except ValueError:
            out.append(text)
    if name in RUN_PARAMS:
        for v in out:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"--param {name}: {v!r} must be a whole number, at least 1")
    if len(set(map(json.dumps, out))) != len(out):
        raise ConfigError(f"--param {name}: a value given twice in {values!r}")
    return name, out


def parse_seeds(spec: str) -> list[int]:
    """``0-9``, ``1,2,5`` or ``3`` -> the seeds, in order, each once."""
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                seeds += range(lo, hi + 1)
            else:
                seeds.append(int(part))
        except ValueError:
            raise ConfigError(f"--seeds {spec!r}: write seeds as 0-9, 1,2,5 or 3") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {spec!r}: seeds are whole numbers from 0, each once")
    return seeds


def plan(params: Mapping[str, Sequence[Any]], seeds: Sequence[int]) -> list[SweepRun]:
    """Every combination of the parameters' values, for every seed, in order;
    two values that would share a folder are refused."""
    names = list(params)
    for n in names:
        if not isinstance(n, str) or not _NAME.match(n):
            raise ConfigError(f"sweep: {n!r} is not a parameter's name (agents, days, or a config key)")
    runs = []
    seen: dict[str, tuple] = {}
    for values in itertools.product(*(params[n] for n in names)):
        combo = tuple(zip(names, values))
        for seed in seeds:
            folder = "/".join([f"{n}={_folder_value(v)}" for n, v in combo] + [f"seed={seed}"])
            if folder in seen:
                raise ConfigError(f"sweep: {dict(seen[folder])} and {dict(combo)} would both run in {folder}; "
                                  f"give values that differ in more than punctuation")
            seen[folder] = combo
            runs.append(SweepRun(combo, seed, folder))
    return runs


def _folder_value(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v)
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in text)


def run_one(task: SweepRun, out: str, config_path: str | None, days: int, agents: int) -> dict[str, Any]:
    """Run one world of a sweep in ``out/runs/<task.folder>`` and return its figures (what a worker does)."""
    params = dict(task.params)
    days = int(params.pop("days", days))
    agents = int(params.pop("agents", agents))
    folder = Path(out) / "runs" / task.folder
    if folder.exists():
        shutil.rmtree(folder)              # a run a stopped sweep left half made starts over
    folder.mkdir(parents=True)
    config = load_config(config_path, overrides=params or None)
    db_file = folder / "world.db"
    conn = store.connect(db_file)
    try:
        ensure_agents(conn, agents, task.seed)
    finally:
        conn.close()
    started = time.perf_counter()
    result = run(db_file, config, make_model("offline"),
                 RunOptions(days=days, agents=agents, seed=task.seed, chronicle=folder / "run.cmeta",
                            report_format="none"))
    return {"folder": task.folder, "params": dict(task.params), "agents": result.agents, "days": result.days,
            "seed": task.seed, "agent_ticks": result.agent_ticks, "events": result.events,
            "conversations": result.conversations, "memories": result.memories,
            "seconds": time.perf_counter() - started}


@dataclass
class SweepResult:
    out: Path
    runs: list[dict[str, Any]]
    seconds: float

    @property
    def summary(self) -> Path:
        """The summary chronicle: one ``run_summary`` event per run (read it with chronoledger.dataset)."""
        return self.out / SUMMARY


def sweep(out: str | os.PathLike[str], params: Mapping[str, Sequence[Any]], seeds: Iterable[int], *,
          days: int = 1, agents: int = 100, config: str | os.PathLike[str] | None = None,
          processes: int | None = None, scheduler: str | None = None, force: bool = False,
          progress: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:
    """Run every combination of ``params`` for every seed, in ``processes``
    worker processes here (default: one per core; 1 runs them in this
    process) or on the Dask scheduler at ``scheduler`` (``tcp://host:8786``,
    or a ``distributed.Client``); each in ``out/runs/<param=value>/.../seed=<s>/``
    (``world.db``, ``run.cmeta``), the summary in ``out/summary.cmeta``."""
    out = Path(out)
    seeds = list(seeds)
    for name in params:
        if name != name.strip() or not name:
            raise ConfigError(f"sweep: parameter {name!r} has no name")
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise ConfigError(f"sweep: days {days!r} must be a whole number, at least 1")
    if not isinstance(agents, int) or isinstance(agents, bool) or agents < 1:
        raise ConfigError(f"sweep: agents {agents!r} must be a whole number, at least 1")
    if not seeds:
        raise ConfigError("sweep: no seeds")
    if any(isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < 2 ** 63 for x in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ConfigError(f"sweep: seeds are whole numbers from 0, each once: {seeds}")
    if processes is not None and (isinstance(processes, bool) or not isinstance(processes, int) or processes < 1):
        raise ConfigError(f"sweep: processes {processes!r} must be a whole number, at least 1")
    if (out / SUMMARY).exists() and not force:
        raise ExistsError(f"sweep: {out} holds a sweep already; force=True (--force) runs it again")
    config_path = None if config is None else os.fspath(config)
    for name, values in params.items():               # every value checked before the first run starts
        if name not in RUN_PARAMS:
            for value in values:
                load_config(config_path, overrides={name: value})
    tasks = plan(params, seeds)
    if force:                      # a sweep run again is this sweep only: the runs of the one before go
        shutil.rmtree(out / "runs", ignore_errors=True)
        (out / SUMMARY).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    args = (os.fspath(out), config_path, days, agents)
    results: list[dict[str, Any]] = []
    if scheduler is not None:
        results = _on_dask(tasks, args, scheduler, progress)
    elif processes == 1:
        for t in tasks:
            results.append(run_one(t, *args))
            if progress:
                progress(results[-1])
    else:
        # spawn: a forked child of a process with threads (the codec pool, the store's checkpointer) may hang
        with ProcessPoolExecutor(max_workers=processes or os.cpu_count() or 1, mp_context=get_context("spawn")) as ex:
            for r in ex.map(run_one, tasks, *[[a] * len(tasks) for a in args]):
                results.append(r)
                if progress:
                    progress(r)
    _write_summary(out / SUMMARY, results, params, seeds)
    return SweepResult(out, results, time.perf_counter() - started)


def _on_dask(tasks: list[SweepRun], args: tuple, scheduler: Any, progress: Any) -> list[dict[str, Any]]:
    try:
        import distributed              # the dask extra's, where a sweep is sent to a cluster
    except ImportError:
        raise MissingDependencyError("sweep --scheduler needs distributed: pip install 'chronoledger[dask]'") from None
    client = scheduler if isinstance(scheduler, distributed.Client) else distributed.Client(scheduler)
    try:
        futures = client.map(run_one, tasks, *[[a] * len(tasks) for a in args], pure=False)
        results = []
        for fut in futures:                          # in the plan's order
            results.append(fut.result())
            if progress:
                progress(results[-1])
        return results
    finally:
        if client is not scheduler:
            client.close()


def _write_summary(path: Path, results: list[dict[str, Any]], params: Mapping[str, Sequence[Any]],
                   seeds: list[int]) -> None:
    n = len(results)
    cols: dict[str, Any] = {"timestamp": np.arange(n, dtype=np.uint64),
                            "event_type": np.array(["run_summary"] * n, dtype=object),
                            "payload": np.array([json.dumps({"folder": r["folder"], "params": r["params"]},
                                                            sort_keys=True, default=str) for r in results],
                                                dtype=object)}
    for f in FIGURES:
        cols[f"values.{f}"] = np.array([float(r[f]) for r in results], dtype=np.float64)
    for name in params:
        if name not in RUN_PARAMS and all(isinstance(r["params"][name], (int, float)) and
                                          not isinstance(r["params"][name], bool) for r in results):
            cols[f"values.{name}"] = np.array([float(r["params"][name]) for r in results], dtype=np.float64)
    tmp = path.with_name(path.name + ".building")
    tmp.unlink(missing_ok=True)
    with Chronicle.open(tmp, "w", schema="event",
                        config={"sweep": {k: list(v) for k, v in params.items()}, "seeds": seeds}) as ch:
        ch.extend(cols)
    os.replace(tmp, path)
