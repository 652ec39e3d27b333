"""``sequence ...`` (also ``chronoledger sequence ...``): mirror a Chronos user
folder into SQLite, run the metastudy, query the mirrors, sync nightly.

Every command records itself (time, command, arguments, duration, result) in
chronos_events.db; those that only read (status, plan, data) only where
Data/ exists, so on a folder never synced they create nothing.  Exit codes
are those of ``cli.output`` (docs/cli.md): 1 the sync finished (also the
one ``review`` and ``listen --once`` run) but skipped malformed files (it
says which); 2 bad usage, a folder that cannot be used
or a refused query (one that writes, or ran past ``--timeout``); 3 a mirror
cannot be used.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import click

from chronoledger._version import __version__
from chronoledger.cli.output import (EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_UNUSABLE, EXIT_USAGE, Group,
                                    argument, emit, emit_object, error_message, exit_code_for, output_options,
                                    print_json, progress_wanted, verbosity_options)
from chronoledger.errors import ChronoledgerError
from chronoledger.sequence.reader import find_user_folder
from chronoledger.sequence.listener import listen
from chronoledger.sequence.metastudy import build_trends
from chronoledger.sequence.query import run_query
from chronoledger.sequence.registry import existing_mirror_folder, mirror_folder
from chronoledger.sequence.sync import DATABASES, data_folder, plan, record_command, record_review, status, sync

EXIT_SKIPPED = EXIT_CHECK_FAILED

USER = click.option("--user", "user", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
                    show_default=True, help="The User/ folder, or the folder that holds it.")


@contextmanager
def _recorded(user: Path, command: str, reads_only: bool = False):
    """Run a command body, record it in chronos_events.db, turn errors into
    exit codes.  A command that ``reads_only`` is recorded only where Data/
    exists: it never creates it.  A BrokenPipeError (the reader of the output
    went away) is recorded as ok and raised again, for the group to end quietly."""

    t0 = time.perf_counter()
    result, detail, code = "ok", None, 0
    pipe: BrokenPipeError | None = None
    try:
        yield
    except BrokenPipeError as exc:      # `sequence data ... | head`: the output was wanted no further
        pipe = exc
    except KeyboardInterrupt:
        result, detail, code = "interrupted", None, EXIT_INTERRUPTED
    except Exception as exc:    # noqa: BLE001 - outside the table (a bug, an odd file): say so, record it, exit 3
        mapped = exit_code_for(exc)
        if mapped is None:
            result, detail, code = "failed", f"{type(exc).__name__}: {exc}", EXIT_UNUSABLE
        else:
            result, detail, code = ("refused" if mapped == EXIT_USAGE else "failed"), error_message(exc), mapped
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        result = "ok" if code == 0 else "skipped files" if code == EXIT_SKIPPED else "failed"
    found: Path | None
    try:
        found = find_user_folder(user)
        if reads_only and existing_mirror_folder(found) is None:
            found = None                # never synced: nothing to record into, and nothing is created
    except (ChronoledgerError, OSError):
        found = None
    if found is not None:
        try:
            record_command(found, command, sys.argv[1:], time.perf_counter() - t0, result, detail)
        except (ChronoledgerError, OSError) as exc:
            click.echo(f"warning: this run was not recorded in chronos_events.db: {exc}", err=True)
    if pipe is not None:
        raise pipe
    if detail:
        click.echo(f"error: {detail}", err=True)
    if code:
        sys.exit(code)


def _dbs(value: str) -> tuple[str, ...]:

    return DATABASES if value == "all" else (value,)


@click.group("sequence", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="sequence")
@verbosity_options
def sequence_group() -> None:
    """Mirror a Chronos user folder (YAML, the source of truth) into SQLite; digests for agents.

    Example:

    \b
        sequence sync --user ~/Chronos
        sequence data "SELECT name, status FROM items WHERE type = 'habit'" --user ~/Chronos --csv
    """


@sequence_group.command("sync")
@click.option("--db", "which", type=click.Choice([*DATABASES, "all"]), default="all",
              show_default=True, help="The mirror to rebuild, or all of them.")
@USER
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), help="Metastudy date (trends).")
@output_options("json", json_help="Print the report as JSON.")
def sync_cmd(which: str, user: Path, as_of, fmt: str) -> None:
    """Rebuild the mirrors in user/data/chronoledger/ from the YAML (never modified); exit
    1 if it skipped malformed files (it says which).

    Example:

    \b
        sequence sync --user ~/Chronos
        sequence sync --db core --user ~/Chronos --json
    """

    with _recorded(user, "sync"):
        dbs = _dbs(which)
        show = progress_wanted() and fmt == "table"
        steps = ("read", *dbs)
        with click.progressbar(length=len(steps), label="sync", file=sys.stderr,
                               item_show_func=lambda n: n) if show else _null() as bar:
            report = sync(user, dbs, progress=(lambda name: bar.update(1, name)) if show else None,
                          as_of=as_of.date() if as_of else None)
        for note in report.notes:             # which folder was taken, when more than one could be meant
            click.echo(f"note: {note}", err=True)
        if fmt == "json":
            print_json(report.as_dict())
        else:
            click.echo(f"synced {report.items:,} items from {report.files:,} files in {report.seconds:.2f} s "
                       f"({report.items / report.seconds:,.0f} items/s) into {report.data}")
            for name, b in report.built.items():
                counts = ", ".join(f"{k} {v:,}" for k, v in b["counts"].items())
                click.echo(f"  {b['file']}: {counts}")
            if report.unresolved:
                click.echo(f"  {len(report.unresolved)} references name no item (kept, marked unresolved); "
                           f"e.g. {report.unresolved[0]['from']} -> {report.unresolved[0]['name']!r}")
            _print_problems(report)
        if report.skipped:
            sys.exit(EXIT_SKIPPED)


def _print_problems(report) -> None:
    """The files a sync skipped and the warnings it gave, on stderr (20 of each at most)."""
    for title, probs in ((f"skipped {report.skipped} file(s):", [p for p in report.problems if p.skipped]),
                         (f"{len(report.warnings)} warning(s) (the files were used):", report.warnings)):
        if probs:
            click.echo(f"  {title}", err=True)
            for p in probs[:20]:
                click.echo(f"    {p}", err=True)
            if len(probs) > 20:
                click.echo(f"    ... {len(probs) - 20} more (sync --json lists all)", err=True)


@contextmanager
def _null():
    yield None


@sequence_group.command("status")
@USER
@output_options(json_help='Print the status as JSON: {"databases": {NAME: {...}}, ...}.')
def status_cmd(user: Path, fmt: str) -> None:
    """Each mirror: counts, age, and whether the YAML changed since its sync
    (a row per mirror).

    Example:

    \b
        sequence status --user ~/Chronos
    """

    with _recorded(user, "status", reads_only=True):
        st = status(user)
        rows = [{"database": name, **e} for name, e in st["databases"].items()]
        emit(rows, fmt, text=_print_status, document=st)


def _print_status(rows) -> None:
    for e in rows:
        name = e["database"]
        if not e.get("last_sync"):
            click.echo(f"{name:7s} never synced")
            continue
        age = e["age_seconds"]
        age_s = f"{age // 86400}d {age % 86400 // 3600}h" if age >= 86400 else f"{age // 3600}h {age % 3600 // 60}m"
        counts = ", ".join(f"{k} {v:,}" for k, v in (e.get("counts") or {}).items())
        click.echo(f"{name:7s} {e['file']}: {counts}; synced {e['last_sync']} ({age_s} ago)"
                   f"{'; YAML changed since' if e['yaml_changed_since'] else '; up to date'}"
                   f"{'' if e['exists'] else '; FILE MISSING'}"
                   f"{'; last attempt failed: ' + e['error'] if e.get('status') == 'failed' else ''}")


@sequence_group.command("plan")
@USER
@output_options("json", json_help="Print the plan as JSON.")
def plan_cmd(user: Path, fmt: str) -> None:
    """What a sync would change (items added, removed, changed per type); writes nothing.

    Example:

    \b
        sequence plan --user ~/Chronos
    """

    with _recorded(user, "plan", reads_only=True):
        p = plan(user)
        if fmt == "json":
            print_json(p)
            return
        click.echo(f"{p['items']:,} items in the YAML" + ("" if p["mirror_exists"] else "; no mirror yet"))
        if not p["types"]:
            click.echo("no item changes")
        for t, ch in sorted(p["types"].items()):
            parts = [f"{k} {len(v)}" for k, v in ch.items() if v]
            click.echo(f"  {t}: {', '.join(parts)}")
        logs = p["logs"]
        click.echo(f"logs: {logs['completions']:,} completions over {logs['schedule_days']} schedule days, "
                   f"{logs['status_days']} status days, {logs['narratives']} narratives, {logs['reviews']} reviews")
        for line in p["problems"][:10]:
            click.echo(f"  would skip {line}", err=True)


@sequence_group.command("memory")
@USER
@click.option("--metastudy", is_flag=True, required=True, help="Digest the logs into trends and tendencies.md.")
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]),
              help="The last day of the windows (default: the last logged day).")
@output_options("json", json_help='Print what was written as JSON: {"data": ..., "counts": {...}}.')
def memory_cmd(user: Path, metastudy: bool, as_of, fmt: str) -> None:
    """Run the metastudy: chronos_trends.db, tendencies.md and tendencies.json.

    Example:

    \b
        sequence memory --metastudy --user ~/Chronos --as-of 2026-01-31
    """

    with _recorded(user, "memory --metastudy"):
        data = data_folder(find_user_folder(user))
        counts = build_trends(data, as_of=as_of.date() if as_of else None)
        emit_object({"data": str(data), "counts": counts}, fmt,
                    lambda: click.echo(f"{data / 'tendencies.md'} and tendencies.json written; "
                                       + ", ".join(f"{k} {v:,}" for k, v in counts.items())))


@sequence_group.command("data")
@argument("query", help="One SQL statement that reads (SELECT, WITH ..., a PRAGMA that reads).")
@click.option("--db", "which", type=click.Choice(list(DATABASES)), default="core",
              show_default=True, help="The main database; the others are attached under their names.")
@USER
@click.option("--limit", type=click.IntRange(min=0), default=10_000, show_default=True,
              help="At most this many rows (0: all); says so on stderr when rows were cut.")
@click.option("--timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Stop the query after this many seconds (0: never); a stopped query exits 2.")
@output_options(legacy_format=True)
def data_cmd(query: str, which: str, user: Path, limit: int, timeout: float, fmt: str) -> None:
    """Run a read-only SQL QUERY on the mirrors (writes, ATTACH and PRAGMA changes are refused).

    Example:

    \b
        sequence data "SELECT type, COUNT(*) AS n FROM items GROUP BY type" --user ~/Chronos --json
    """

    with _recorded(user, "data", reads_only=True):
        found = find_user_folder(user)
        data = mirror_folder(found)         # not created: a missing mirror is refused
        names, rows = run_query(data, query, which, limit=limit + 1 if limit else None, timeout=timeout or None)
        cut = bool(limit) and len(rows) > limit
        if cut:
            rows = rows[:limit]
        emit(rows, fmt, list(names))
        if fmt == "table" and not cut:
            click.echo(f"({len(rows)} row{'s' if len(rows) != 1 else ''})", err=True)
        if cut:
            click.echo(f"(the first {limit:,} rows; the query has more: --limit N shows more, --limit 0 all)",
                       err=True)


@sequence_group.command("review")
@argument("kind", type=click.Choice(["daily", "weekly", "monthly"]), help="Which review.")
@USER
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]),
              help="The day the review is for (default: today).")
def review_cmd(kind: str, user: Path, as_of) -> None:
    """Record a review and run the metastudy so the digest includes the latest behaviour; exit 1,
    as sync does, if the sync it runs first skipped malformed files (it says which).

    Example:

    \b
        sequence review weekly --user ~/Chronos
    """

    with _recorded(user, f"review {kind}"):
        found = find_user_folder(user)
        report = sync(found, ("core", "events", "memory"))
        _print_problems(report)
        day = (as_of.date() if as_of else date.today())
        record_review(found, kind, day)
        build_trends(data_folder(found), as_of=as_of.date() if as_of else None)
        click.echo(f"{kind} review recorded for {day.isoformat()}; tendencies.md updated")
        if report.skipped:                    # recorded and digested all the same; ends as `sequence sync` does
            sys.exit(EXIT_SKIPPED)


@sequence_group.command("listen")
@USER
@click.option("--once", is_flag=True,
              help="Run one cycle now and exit as sync does (1 if it skipped files, 2 or 3 if it failed).")
def listen_cmd(user: Path, once: bool) -> None:
    """Sync (and run the metastudy) every night at 00:00, or at Settings/Sequence.yml's sync_time
    (read again each minute while waiting).

    Example:

    \b
        sequence listen --user ~/Chronos
    """

    with _recorded(user, "listen --once" if once else "listen"):
        try:
            reports = listen(user, once=once, log=lambda m: click.echo(m))
        except KeyboardInterrupt:
            click.echo("stopped")
            return
        if once and reports:                  # one cycle: it ends as `sequence sync` does
            _print_problems(reports[-1])
            if reports[-1].skipped:
                sys.exit(EXIT_SKIPPED)


def main() -> None:
    """The ``sequence`` console script (``-h``, ``--version``, ``-v``/``-q`` like ``chronoledger``)."""
    sequence_group(prog_name="sequence")
