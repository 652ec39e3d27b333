"""``chronoledger world ...``: the daily-life simulation.

Exit codes are those of ``cli.output`` (docs/cli.md): 2 a bad config or
scenario (the message names the file and the key); 3 the database or event
log cannot be read or written, or a model failed; 4 a replay does not match
its run; 5 no such run or day.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import TracebackType
from typing import Protocol

import click

from chronoledger.cli.output import (EXIT_REFUSED, EXIT_USAGE, Group, argument, emit_object, exit_codes,
                                    output_options, progress_wanted)
from chronoledger.errors import ConfigError, ValidationError
from chronoledger.world import store
from chronoledger.world.adopt import adopt_sandbox
from chronoledger.world.channel import ReportChannel
from chronoledger.world.config import load_config, with_scenario
from chronoledger.world.models import make_model
from chronoledger.world.replay import replay
from chronoledger.world.reporting import agent_day, render_agent_day
from chronoledger.world.scheduler import RunOptions, run
from chronoledger.world.scheduler import resume as resume_run
from chronoledger.world.sweep import parse_param, parse_seeds, sweep



class _ProgressBar(Protocol):
    """What _Bar uses of the bar click.progressbar() returns (click keeps its class private)."""

    def update(self, n_steps: int) -> None: ...
    def __enter__(self) -> object: ...
    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None, /) -> object: ...

DB_URL = click.option("--db-url", required=True, envvar="CHRONOLEDGER_WORLD_DB", show_envvar=True,
                      help="sqlite:///path/to/world.db (or a plain path).")


def _errors(db_url: str | None = None):
    """Exit codes, an SQLite error naming the database of ``db_url``."""

    database: Path | str | None
    try:
        database = store.db_path(db_url) if db_url else None
    except ConfigError:
        database = db_url
    return exit_codes(database=database)


@contextmanager
def _resumable(db_url: str):
    """After a failed or interrupted run that left a checkpoint: say how to go on from there."""

    try:
        yield
    except (ConfigError, ValidationError):          # refused before the run began
        raise
    except BaseException:
        stopped = store.unfinished_run(db_url)
        if stopped is not None and stopped[1]:
            rid = stopped[0]
            click.echo(f"note: run {rid} is stopped at its last whole tick; `chronoledger world run --db-url {db_url} "
                       f"--resume --run-id {rid}` goes on from there", err=True)
        elif stopped is not None:
            click.echo(f"note: run {stopped[0]} stopped before its first tick was stored; run it again", err=True)
        raise


@click.group("world", cls=Group)
def world_group() -> None:
    """A multi-agent daily-life simulation with a pluggable language model.

    Example:

    \b
        chronoledger world init --db-url sqlite:///world.db
        chronoledger world run --db-url sqlite:///world.db --agents 20 --dry-run
    """


@world_group.command("init")
@DB_URL
def init_cmd(db_url: str) -> None:
    """Create the world database (or bring it to the current schema).

    Example:

    \b
        chronoledger world init --db-url sqlite:///world.db
    """

    with _errors(db_url):
        store.connect(db_url).close()
    click.echo(f"ready: {store.db_path(db_url)}")


@world_group.command("adopt")
@DB_URL
@click.option("--check", is_flag=True, help="Only say what adopting would do; nothing is written.")
@output_options("json", json_help='Print what was done as JSON: {"copied": {...}, "kept": {...}, "notes": [...]}.')
def adopt_cmd(db_url: str, check: bool, fmt: str) -> None:
    """Adopt the world sandbox's database (CalfCrusher/AI_Agents_Communication):
    its agents, interests, family, relationships, conversations and memories
    become the world's; every table it had is kept whole as sandbox_<name>.
    One transaction: a failure leaves the file as it was.

    Example:

    \b
        chronoledger world adopt --db-url sqlite:///./data/agents.db --check
        chronoledger world adopt --db-url sqlite:///./data/agents.db
    """

    with _errors(db_url):
        done = adopt_sandbox(db_url, check=check)
    emit_object({"path": str(done.path), "adopted": done.done, "copied": done.copied, "kept": done.kept,
                 "notes": done.notes}, fmt, lambda: click.echo(str(done)))


@world_group.command("seed-agent")
@DB_URL
@click.option("--name", required=True, help="The agent's name (an agent with this name is updated).")
@click.option("--bio", default="", help="A line about the agent, given to the model.")
@click.option("--job", default="", help="The agent's job.")
@click.option("--interests", default="", help='"coffee:0.8,cycling:0.9" (scores 0..1).')
@click.option("--family", default=None, help="A JSON object, e.g. '{\"spouse\": \"Ben\"}', or a list, e.g. "
                                             "'[{\"name\": \"Ben\", \"relation\": \"brother\"}]'.")
@click.option("--traits", default=None, help='A JSON object, e.g. \'{"curious": true}\'.')
@output_options("json", json_help='Print the agent as JSON: {"id": ..., "name": ...}.')
def seed_agent_cmd(db_url: str, name: str, bio: str, job: str, interests: str, family: str | None,
                   traits: str | None, fmt: str) -> None:
    """Add an agent (or update the one with this name).

    Example:

    \b
        chronoledger world seed-agent --db-url sqlite:///world.db --name Ava --bio Designer \\
            --interests "coffee:0.8,hiking:0.6" --family '{"spouse": "Ben"}'
    """

    def parse(text, what):
        if text is None:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            click.echo(f"error: --{what} is not JSON: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        listed = what == "family" and isinstance(value, list) and \
            all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in value)
        if not isinstance(value, dict) and not listed:
            shown = ('a JSON object ({"spouse": "Ben"}) or list ([{"name": "Ben", "relation": "brother"}])'
                     if what == "family" else 'a JSON object ({"curious": true})')
            click.echo(f"error: --{what} is {shown}, got {type(value).__name__}", err=True)
            sys.exit(EXIT_USAGE)
        return value

    with _errors(db_url):
        conn = store.connect(db_url)
        try:
            agent_id = store.seed_agent(conn, name, bio=bio, job=job, interests=interests,
                                        family=parse(family, "family"), traits=parse(traits, "traits"))
        finally:
            conn.close()
    emit_object({"id": agent_id, "name": name}, fmt, lambda: click.echo(f"agent {agent_id}: {name}"))


@world_group.command("world-init")
@DB_URL
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A world config (YAML) with locations and activities (default: the packaged one).")
@output_options("json", json_help='Print the counts as JSON: {"locations": ..., "activities": ...}.')
def world_init_cmd(db_url: str, config_path: Path | None, fmt: str) -> None:
    """Seed the locations and activities of the config (the packaged one by default).

    Example:

    \b
        chronoledger world world-init --db-url sqlite:///world.db --config examples/world.yaml
    """

    with _errors(db_url):
        config = load_config(config_path)
        conn = store.connect(db_url)
        try:
            n_loc, n_act = store.world_init(conn, config)
        finally:
            conn.close()
    emit_object({"locations": n_loc, "activities": n_act}, fmt,
                lambda: click.echo(f"{n_loc} locations and {n_act} activities"))


@world_group.command("run")
@click.option("--days", type=click.IntRange(min=1), default=1, show_default=True, help="Days to simulate.")
@click.option("--agents", type=click.IntRange(min=1), default=None,
              help="Agents taking part: the first N of the database's.")
@click.option("--invent-agents", is_flag=True,
              help="Make up (seeded) the agents --agents asks for beyond the database's; they are marked invented "
                   "and tied only to one another.")
@click.option("--tick-minutes", type=click.IntRange(min=1), default=None,
              help="Minutes in one tick (default: the config's default_hours.tick_minutes).")
@click.option("--start-hour", type=click.IntRange(0, 23), default=None,
              help="The hour a day's first tick starts (default: the config's default_hours.start_hour).")
@click.option("--end-hour", type=click.IntRange(1, 24), default=None,
              help="The hour a day ends, exclusive (default: the config's default_hours.end_hour).")
@click.option("--persist/--no-persist", default=None,
              help="Write the run to --db-url (the default, except with --dry-run). --no-persist runs on a "
                   "temporary copy of the database, deleted afterwards: nothing is written to --db-url (the event "
                   "log and reports still are, beside it).")
@DB_URL
@click.option("--seed", type=click.IntRange(0, 2 ** 63 - 1), default=0, show_default=True,
              help="Fixes the whole run: the same seed, config, scenario and agents give the same rows and log.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A world config (YAML) (default: the packaged one).")
@click.option("--scripted-events", "scenario_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A scenario: schedules and scripted events (YAML or JSON).")
@click.option("--max-concurrent-chats", type=click.IntRange(min=0), default=None,
              help="Model calls in flight at once (default: the config's guardrails.max_concurrent_chats); "
                   "the world is the same whatever it is.")
@click.option("--report-format", type=click.Choice(["markdown", "json", "both", "none"]), default="both",
              show_default=True, help="The daily reports' files: Markdown, JSON, both or none.")
@click.option("--reports-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The folder of the daily reports (default: reports/ beside the database).")
@click.option("--report-channel", metavar="URL", default=None,
              help="POST each day's JSON report (with the run's id) to this http(s) URL once it is written; a "
                   "report not delivered stops the run (exit 3), resumable.")
@click.option("--report-timeout", metavar="SECONDS", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="With --report-channel: seconds to wait for one attempt.")
@click.option("--report-attempts", type=click.IntRange(min=1), default=3, show_default=True,
              help="With --report-channel: attempts per report (a connection error, timeout, 429 or 5xx is tried "
                   "again, with backoff; another 4xx is not).")
@click.option("--dry-run", is_flag=True, help="Use the offline model (no model is called) and, unless --persist, "
                                            "write nothing to --db-url: the planned actions go to the event log "
                                            "and the reports only.")
@click.option("--summary-only", is_flag=True, help="Reports keep the figures and leave the transcripts out.")
@click.option("--model", "model_kind", type=click.Choice(["offline", "openai", "ollama"]), default="offline",
              show_default=True, help="The language model: offline (deterministic, no calls), an OpenAI-compatible "
                                      "server, or Ollama.")
@click.option("--chronicle", "chronicle_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The run's event log (default: beside the database).")
@click.option("--model-url", default=None, help="The model server's base URL (default: OPENAI_BASE_URL or "
                                                 "OLLAMA_HOST, else the public/local default).")
@click.option("--model-name", default=None, help="The model to ask for (default: CHRONOLEDGER_MODEL).")
@click.option("--model-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to wait for one answer.")
@click.option("--model-retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Retries after a timeout, 429 or 5xx (with backoff).")
@click.option("--temperature", type=click.FloatRange(0, 2), default=0.7, show_default=True,
              help="The model's sampling temperature.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None,
              help="The most tokens one reply may have (default: the server's).")
@click.option("--model-seed/--no-model-seed", default=True, show_default=True,
              help="Send each request's seed (from --seed) where the API takes one, so a server that honours it "
                   "samples the same reply again.")
@click.option("--embedding-model", default=None, metavar="NAME",
              help="The server's embedding model, for a config with memory.relevance: embedding (the offline "
                   "model has its own).")
@click.option("--resume", is_flag=True, help="Continue the latest stopped run from its last whole tick (its own "
                                              "days, agents, seed, config and scenario).")
@click.option("--run-id", type=click.IntRange(min=1), default=None, help="With --resume: which run.")
@output_options("json", json_help="Print the run's result (ids, counts, files) as JSON.")
def run_cmd(days, agents, invent_agents, tick_minutes, start_hour, end_hour, persist, db_url, seed, config_path, scenario_path,
            max_concurrent_chats, report_format, reports_dir, report_channel, report_timeout, report_attempts,
            dry_run, summary_only, model_kind,
            chronicle_path, model_url, model_name, model_timeout, model_retries, temperature, max_tokens, model_seed,
            embedding_model, resume, run_id, fmt) -> None:
    """Run the world for --days days of ticks (or --resume a stopped run).

    A progress bar per day shows on a terminal.

    Example:

    \b
        chronoledger world run --db-url sqlite:///world.db --days 2 --agents 50 --dry-run --seed 7
        chronoledger world run --db-url sqlite:///world.db --resume
    """

    def model(cap: int | None = None):
        # the model calls in flight follow the chat cap (at least one: reflections need the model too)
        cap = max_concurrent_chats if max_concurrent_chats is not None else cap
        return make_model("offline" if dry_run else model_kind, base_url=model_url, model=model_name,
                          max_concurrent=4 if cap is None else max(1, cap),
                          timeout=model_timeout, max_retries=model_retries, temperature=temperature,
                          max_tokens=max_tokens, send_seed=model_seed, embedding_model=embedding_model)

    if persist is None:
        persist = not dry_run           # the plan: a dry run logs what it plans; --persist writes it too
    channel = None
    if report_channel is not None:      # refused before anything is made or run
        try:
            channel = ReportChannel(report_channel, timeout=report_timeout, attempts=report_attempts)
        except ConfigError as exc:
            click.echo(f"error: --report-channel: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        # closed when the command ends, however it ends
        click.get_current_context().call_on_close(channel.close)
    if resume:
        if not persist:
            click.echo("error: --resume continues a run in --db-url; it cannot be combined with --no-persist (nor "
                       "with --dry-run without --persist)", err=True)
            sys.exit(EXIT_USAGE)
        with _errors(db_url):
            m = model()
            bar = _progress(None, 0)                  # the run's own days: the bar counts what is left
            try:
                result = resume_run(db_url, m, run_id, reports_dir=reports_dir, report_format=report_format,
                                    summary_only=summary_only, progress=bar, report_channel=channel)
            finally:
                m.close()
                if bar is not None:
                    bar.finish()
        _print_result(result, fmt)
        return

    overrides = {k: v for k, v in (("default_hours.tick_minutes", tick_minutes), ("default_hours.start_hour",
                                                                              start_hour),
                                   ("default_hours.end_hour", end_hour),
                                   ("guardrails.max_concurrent_chats", max_concurrent_chats)) if v is not None}
    with _errors(db_url):
        if scenario_path:
            # the scenario's hours and action weights over the config's, the command line's over both
            config, scenario = with_scenario(config_path, scenario_path, overrides=overrides)
            if scenario.days is not None and click.get_current_context().get_parameter_source("days") \
                    is click.core.ParameterSource.DEFAULT:
                days = scenario.days                       # its duration_days, unless --days says otherwise
        else:
            config, scenario = load_config(config_path, overrides=overrides), None
        m = model(config.guardrails["max_concurrent_chats"])
        target, scratch = db_url, None
        if not persist:
            real = store.db_path(db_url)
            store.refuse_foreign(real)            # named as the user's file, not the copy's
            if not real.parent.exists():          # its event log and reports go beside it (the sandbox's data/)
                real.parent.mkdir(parents=True)
            scratch = Path(tempfile.mkdtemp(prefix="world-dry-"))
            target = store.copy_to(real, scratch)
            chronicle_path = chronicle_path or real.with_name(f"{real.stem}-dry-run.cmeta")
            # apart from the real runs' reports: the copy's run takes the id the next real run will have
            reports_dir = reports_dir or real.parent / "reports" / "dry-run"
        bar = _progress(days, config.ticks_per_day)
        try:
            with _resumable(db_url) if persist else nullcontext():
                result = run(target, config, m, RunOptions(days=days, agents=agents, seed=seed,
                                                               invent_agents=invent_agents,
                                                               chronicle=chronicle_path, reports_dir=reports_dir,
                                                               report_format=report_format,
                                                               summary_only=summary_only, progress=bar,
                                                               report_channel=channel),
                             scenario)
        finally:
            m.close()
            if bar is not None:
                bar.finish()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
    _print_result(result, fmt)


def _print_result(result, fmt: str) -> None:
    emit_object(dataclasses.asdict(result), fmt, lambda: _print_result_text(result))


def _print_result_text(result) -> None:
    click.echo(f"run {result.run_id}: {result.days} days, {result.agents:,} agents, {result.agent_ticks:,} "
               f"agent-ticks, {result.events:,} events, {result.conversations:,} conversations, {result.memories:,} new "
               f"memories; {result.agent_ticks_run:,} agent-ticks in {result.seconds:.1f} s here "
               f"({result.agent_ticks_run / max(result.seconds, 1e-9):,.0f} agent-ticks/s)")
    click.echo(f"event log: {result.chronicle}")
    for p in result.reports:
        click.echo(f"report: {p}")


class _Bar:
    """A progress bar per day, on a terminal only."""

    def __init__(self, days: int | None, ticks: int):
        self.days, self.ticks, self.day = days, ticks, 0
        self.bar: _ProgressBar | None = None

    def __call__(self, day: int, tick: int, ticks: int) -> None:
        if day != self.day:
            self.finish()
            self.day = day
            label = f"day {day}/{self.days}" if self.days else f"day {day}"
            bar: _ProgressBar = click.progressbar(length=ticks, label=label, file=sys.stderr)
            bar.__enter__()
            self.bar = bar
        if self.bar is not None:
            self.bar.update(1)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _progress(days: int | None, ticks: int) -> _Bar | None:
    return _Bar(days, ticks) if progress_wanted() else None


@world_group.command("replay")
@argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
          help="The run's event log (world-run-N.cmeta).")
@output_options("json", json_help="Print the report as JSON.")
def replay_cmd(file: Path, fmt: str) -> None:
    """Re-run a finished run from its event log, calling no model, and check
    it matches block by block; exit 4 if it does not.

    Example:

    \b
        chronoledger world replay world-run-1.cmeta
    """

    with _errors():
        report = replay(file)
    emit_object(dataclasses.asdict(report), fmt, lambda: click.echo(str(report)))
    if not report.matches:
        sys.exit(EXIT_REFUSED)


@world_group.command("sweep")
@click.option("--param", "param_specs", multiple=True, metavar="NAME=V1,V2",
              help="A parameter and its values: agents, days, or a config key in dotted form (memory.retrieve=0,3); "
                   "repeatable: every combination runs.")
@click.option("--seeds", default="0", show_default=True, help="The seeds each combination runs with: 0-9, 1,2,5 or 3.")
@click.option("--days", type=click.IntRange(min=1), default=1, show_default=True, help="Days each run simulates.")
@click.option("--agents", type=click.IntRange(min=1), default=100, show_default=True,
              help="Agents each run makes up (unless --param agents=... sets it).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A world config YAML the runs start from (default: the packaged one).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("sweep"), show_default=True,
              help="Where the runs and the summary go.")
@click.option("--processes", type=click.IntRange(min=1), default=None,
              help="Worker processes here (default: one per core; 1 runs them in this process).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Run on this Dask scheduler (tcp://host:8786) instead of local processes.")
@click.option("--force", is_flag=True, help="Run again into a folder that holds a sweep.")
@output_options("json", json_help="Print the runs' figures as JSON.")
def sweep_cmd(param_specs: tuple[str, ...], seeds: str, days: int, agents: int, config_path: Path | None, out: Path,
              processes: int | None, scheduler: str | None, force: bool, fmt: str) -> None:
    """Run the world for every combination of the parameters, for every seed
    (Mesa's batch_run): one database and event log each, with the offline
    model, so a seed gives the same run wherever it ran. The summary is a
    chronicle (OUT/summary.cmeta: one run_summary event per run, its
    figures as values.*), and the runs' logs a dataset:
    chronoledger query "SELECT ... FROM runs" OUT/runs.

    Example:

    \b
        chronoledger world sweep --param agents=100,1000 --seeds 0-9 --days 1 --out sweep/
        chronoledger query "SELECT event_type, count(*) FROM runs GROUP BY 1" sweep/summary.cmeta
    """
    with exit_codes():
        params = dict(parse_param(p) for p in param_specs)
        if len(params) != len(param_specs):
            raise ConfigError("--param: a parameter given twice")
        done = sweep(out, params, parse_seeds(seeds), days=days, agents=agents, config=config_path,
                     processes=processes, scheduler=scheduler, force=force,
                     progress=lambda r: click.echo(f"{r['folder']}: {r['conversations']} conversations, "
                                                   f"{r['seconds']:.1f} s", err=True))

    def text() -> None:
        click.echo(f"{len(done.runs)} run(s) in {done.seconds:.1f} s; summary {done.summary}")
    emit_object({"out": str(out), "summary": str(done.summary), "seconds": done.seconds, "runs": done.runs}, fmt, text)


@world_group.command("report")
@DB_URL
@click.option("--day", "day_label", default=None,
              help="The day's label (YYYY-MM-DD); without it, the days that have a report are listed.")
@click.option("--run", "run_id", type=int, default=None, help="The run (default: the latest with that day).")
@click.option("--agent", default=None, help="With --day: that agent's day (its name, or its id) instead of the "
                                            "day's report.")
@output_options("json", json_help="Print JSON: the day's figures (the JSON report), the agent's day, or the list "
                                  "of days.")
def report_cmd(db_url: str, day_label: str | None, run_id: int | None, agent: str | None, fmt: str) -> None:
    """A day's report, from the database (read-only): Markdown, or --json.
    With --agent, one agent's day: what it did, tick by tick, its
    conversations and the memories it made.  Without --day, the days that
    have a report, run by run.

    Example:

    \b
        chronoledger world report --db-url sqlite:///world.db
        chronoledger world report --db-url sqlite:///world.db --day 2026-01-05
        chronoledger world report --db-url sqlite:///world.db --day 2026-01-05 --agent Ava
    """

    if day_label is None:
        if agent is not None:
            click.echo("error: --agent needs --day: whose day, and which", err=True)
            sys.exit(EXIT_USAGE)
        with _errors(db_url):
            days = store.report_days(db_url, run_id)
        emit_object(days, fmt, lambda: _print_days(db_url, days, run_id))
        return
    if agent is not None:
        with _errors(db_url):
            view = agent_day(db_url, day_label, agent, run_id)
        emit_object(view, fmt, lambda: click.echo(render_agent_day(view).rstrip()))
        return
    with _errors(db_url):
        _run, summary, metrics = store.day_report(db_url, day_label, run_id)
    emit_object(metrics, fmt, lambda: click.echo(summary.rstrip()))


def _print_days(db_url: str, days: list[dict], run_id: int | None) -> None:
    if not days:
        click.echo(f"{store.db_path(db_url)}: no day has a report yet" + (f" in run {run_id}" if run_id else ""),
                   err=True)
        return
    width = max(len(f"{d['events']:,}") for d in days)
    for d in days:
        click.echo(f"run {d['run_id']}  {d['day_label']}  {d['events']:>{width},} events  "
                   f"{d['conversations']:,} conversations")
