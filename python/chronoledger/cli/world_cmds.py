"""``chronoledger world ...``: the daily-life simulation.

Exit codes: 0 success; 2 bad usage, a bad config or scenario (the message
names the file and the key); 3 the database or event log cannot be read or
written, or a model failed; 4 a replay does not match its run; 5 no such
run or day.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path

import apsw
import click

from chronoledger.cli.output import EXIT_USAGE, exit_codes
from chronoledger.errors import ConfigError, ValidationError

EXIT_MISMATCH = 4
DB_URL = click.option("--db-url", required=True, envvar="CHRONOLEDGER_WORLD_DB", show_envvar=True,
                      help="sqlite:///path/to/world.db (or a plain path).")


def _errors(db_url: str | None = None):
    """Exit codes, an SQLite error naming the database of ``db_url``."""
    from chronoledger.world import store

    try:
        database = store.db_path(db_url) if db_url else None
    except ConfigError:
        database = db_url
    return exit_codes((ConfigError, ValidationError), extra=(apsw.Error,), database=database)


@contextmanager
def _resumable(db_url: str):
    """After a failed or interrupted run that left a checkpoint: say how to go on from there."""
    from chronoledger.world import store

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


@click.group("world")
def world_group() -> None:
    """A multi-agent daily-life simulation with a pluggable language model."""


@world_group.command("init")
@DB_URL
def init_cmd(db_url: str) -> None:
    """Create the world database (or bring it to the current schema)."""
    from chronoledger.world import store

    with _errors(db_url):
        store.connect(db_url).close()
    click.echo(f"ready: {store.db_path(db_url)}")


@world_group.command("seed-agent")
@DB_URL
@click.option("--name", required=True)
@click.option("--bio", default="")
@click.option("--job", default="")
@click.option("--interests", default="", help='"coffee:0.8,cycling:0.9" (scores 0..1).')
@click.option("--family", default=None, help="A JSON object, e.g. '{\"spouse\": \"Ben\"}'.")
@click.option("--traits", default=None, help="A JSON object.")
def seed_agent_cmd(db_url: str, name: str, bio: str, job: str, interests: str, family: str | None,
                   traits: str | None) -> None:
    """Add an agent (or update the one with this name)."""
    from chronoledger.world import store

    def parse(text, what):
        if text is None:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            click.echo(f"error: --{what} is not JSON: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        if not isinstance(value, dict):
            click.echo(f"error: --{what} is a JSON object ({{\"spouse\": \"Ben\"}}), got {type(value).__name__}",
                       err=True)
            sys.exit(EXIT_USAGE)
        return value

    with _errors(db_url):
        conn = store.connect(db_url)
        try:
            agent_id = store.seed_agent(conn, name, bio=bio, job=job, interests=interests,
                                        family=parse(family, "family"), traits=parse(traits, "traits"))
        finally:
            conn.close()
    click.echo(f"agent {agent_id}: {name}")


@world_group.command("world-init")
@DB_URL
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def world_init_cmd(db_url: str, config_path: Path | None) -> None:
    """Seed the locations and activities of the config (the packaged one by default)."""
    from chronoledger.world import store
    from chronoledger.world.config import load_config

    with _errors(db_url):
        config = load_config(config_path)
        conn = store.connect(db_url)
        try:
            n_loc, n_act = store.world_init(conn, config)
        finally:
            conn.close()
    click.echo(f"{n_loc} locations and {n_act} activities")


@world_group.command("run")
@click.option("--days", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--agents", type=click.IntRange(min=1), default=None,
              help="Agents taking part (made up, seeded, when the database has fewer).")
@click.option("--tick-minutes", type=click.IntRange(min=1), default=None)
@click.option("--start-hour", type=click.IntRange(0, 23), default=None)
@click.option("--end-hour", type=click.IntRange(1, 24), default=None)
@click.option("--persist/--no-persist", default=True, show_default=True,
              help="--no-persist runs on a temporary copy of the database, deleted afterwards: nothing is written "
                   "to --db-url (the event log and reports still are, beside it).")
@DB_URL
@click.option("--seed", type=click.IntRange(0, 2 ** 63 - 1), default=0, show_default=True)
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--scripted-events", "scenario_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A scenario: schedules and scripted events (YAML or JSON).")
@click.option("--max-concurrent-chats", type=click.IntRange(min=0), default=None,
              help="Chats under way in one tick, and model calls in flight.")
@click.option("--report-format", type=click.Choice(["markdown", "json", "both", "none"]), default="both",
              show_default=True)
@click.option("--reports-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--dry-run", is_flag=True, help="Use the offline model (no model is called).")
@click.option("--summary-only", is_flag=True, help="Reports keep the figures and leave the transcripts out.")
@click.option("--model", "model_kind", type=click.Choice(["offline", "openai", "ollama"]), default="offline",
              show_default=True)
@click.option("--chronicle", "chronicle_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The run's event log (default: beside the database).")
@click.option("--model-url", default=None, help="The model server's base URL (default: OPENAI_BASE_URL or "
                                                 "OLLAMA_HOST, else the public/local default).")
@click.option("--model-name", default=None, help="The model to ask for (default: CHRONOLEDGER_MODEL).")
@click.option("--model-timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to wait for one answer.")
@click.option("--model-retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Retries after a timeout, 429 or 5xx (with backoff).")
@click.option("--resume", is_flag=True, help="Continue the latest stopped run from its last whole tick (its own "
                                              "days, agents, seed, config and scenario).")
@click.option("--run-id", type=click.IntRange(min=1), default=None, help="With --resume: which run.")
def run_cmd(days, agents, tick_minutes, start_hour, end_hour, persist, db_url, seed, config_path, scenario_path,
            max_concurrent_chats, report_format, reports_dir, dry_run, summary_only, model_kind,
            chronicle_path, model_url, model_name, model_timeout, model_retries, resume, run_id) -> None:
    """Run the world for --days days of ticks (or --resume a stopped run)."""
    from chronoledger.world import store
    from chronoledger.world.config import load_config, load_scenario
    from chronoledger.world.models import make_model
    from chronoledger.world.scheduler import RunOptions, run
    from chronoledger.world.scheduler import resume as resume_run

    def model():
        # the model calls in flight follow the chat cap (at least one: reflections need the model too)
        return make_model("offline" if dry_run else model_kind, base_url=model_url, model=model_name,
                          max_concurrent=4 if max_concurrent_chats is None else max(1, max_concurrent_chats),
                          timeout=model_timeout, max_retries=model_retries)

    if resume:
        if not persist:
            click.echo("error: --resume continues a run in --db-url; it cannot be combined with --no-persist", err=True)
            sys.exit(EXIT_USAGE)
        with _errors(db_url):
            m = model()
            bar = _progress(None, 0)                  # the run's own days: the bar counts what is left
            try:
                result = resume_run(db_url, m, run_id, reports_dir=reports_dir, report_format=report_format,
                                    summary_only=summary_only, progress=bar)
            finally:
                m.close()
                if hasattr(bar, "finish"):
                    bar.finish()
        _print_result(result)
        return

    overrides = {k: v for k, v in (("default_hours.tick_minutes", tick_minutes), ("default_hours.start_hour",
                                                                              start_hour),
                                   ("default_hours.end_hour", end_hour),
                                   ("guardrails.max_concurrent_chats", max_concurrent_chats)) if v is not None}
    with _errors(db_url):
        config = load_config(config_path, overrides=overrides)
        scenario = load_scenario(scenario_path, config) if scenario_path else None
        m = model()
        target, scratch = db_url, None
        if not persist:
            real = store.db_path(db_url)
            scratch = Path(tempfile.mkdtemp(prefix="world-dry-"))
            target = store.copy_to(real, scratch)
            chronicle_path = chronicle_path or real.with_name(f"{real.stem}-dry-run.cmeta")
            # apart from the real runs' reports: the copy's run takes the id the next real run will have
            reports_dir = reports_dir or real.parent / "reports" / "dry-run"
        bar = _progress(days, config.ticks_per_day)
        try:
            with _resumable(db_url) if persist else nullcontext():
                result = run(target, config, m, RunOptions(days=days, agents=agents, seed=seed,
                                                               chronicle=chronicle_path, reports_dir=reports_dir,
                                                               report_format=report_format,
                                                               summary_only=summary_only, progress=bar),
                             scenario)
        finally:
            m.close()
            if hasattr(bar, "finish"):
                bar.finish()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
    _print_result(result)


def _print_result(result) -> None:
    click.echo(f"run {result.run_id}: {result.days} days, {result.agents:,} agents, {result.agent_ticks:,} "
               f"agent-ticks, {result.events:,} events, {result.conversations:,} conversations, {result.memories:,} new "
               f"memories; {result.agent_ticks_run:,} agent-ticks in {result.seconds:.1f} s here "
               f"({result.agent_ticks_run / max(result.seconds, 1e-9):,.0f} agent-ticks/s)")
    click.echo(f"event log: {result.chronicle}")
    for p in result.reports:
        click.echo(f"report: {p}")


class _Bar:
    """A progress bar per day, on a terminal only."""

    def __init__(self, days: int, ticks: int):
        self.days, self.ticks, self.bar, self.day = days, ticks, None, 0

    def __call__(self, day: int, tick: int, ticks: int) -> None:
        if day != self.day:
            self.finish()
            self.day = day
            label = f"day {day}/{self.days}" if self.days else f"day {day}"
            self.bar = click.progressbar(length=ticks, label=label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(1)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _progress(days: int | None, ticks: int):
    return _Bar(days, ticks) if sys.stderr.isatty() else None


@world_group.command("replay")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def replay_cmd(file: Path) -> None:
    """Re-run a finished run from its event log, calling no model, and check it matches block by block."""
    from chronoledger.world.replay import replay

    with _errors():
        report = replay(file)
    click.echo(str(report))
    if not report.matches:
        sys.exit(EXIT_MISMATCH)


@world_group.command("report")
@DB_URL
@click.option("--day", "day_label", required=True, help="The day's label (YYYY-MM-DD).")
@click.option("--run", "run_id", type=int, default=None, help="The run (default: the latest with that day).")
@click.option("--json", "as_json", is_flag=True)
def report_cmd(db_url: str, day_label: str, run_id: int | None, as_json: bool) -> None:
    """A day's report, from the database (read-only)."""
    from chronoledger.world import store

    with _errors(db_url):
        _run, summary, metrics = store.day_report(db_url, day_label, run_id)
    click.echo(json.dumps(metrics, indent=2) if as_json else summary.rstrip())
