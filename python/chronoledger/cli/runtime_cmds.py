"""``chronoledger runtime ...``: the agent runtime memory database.

Exit codes are those of ``cli.output`` (docs/cli.md): 2 a bad value (a time
without a zone, a cursor this store did not give out, a database file that
does not exist); 3 the database cannot be opened or read (damaged, not a
runtime database, a newer schema); 5 no such session, run, proposal or
profile.
"""

from __future__ import annotations

import io
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from chronoledger._fsutil import atomic_write_bytes
from chronoledger.cli.output import Group, argument, emit, emit_object, exit_codes, output_options
from chronoledger.cli.output import table as _table
from chronoledger.errors import NotFoundError
from chronoledger.runtime import RuntimeMemoryStore

DB = click.Path(dir_okay=False, path_type=Path)
EXISTING_DB = click.Path(exists=True, dir_okay=False, path_type=Path)


def db_argument(f):
    return argument("db", type=EXISTING_DB, help="The runtime memory database (SQLite).")(f)


@contextmanager
def _store(path: Path, readonly: bool = True):

    with exit_codes(database=path):
        with RuntimeMemoryStore(path, readonly=readonly) as store:
            yield store


@click.group("runtime", cls=Group)
def runtime_group() -> None:
    """Agent runtime memory (sessions, workflows, skills, proposals, profiles) in SQLite.

    Example:

    \b
        chronoledger runtime init runtime.sqlite
        chronoledger runtime sessions runtime.sqlite --limit 10
    """


@runtime_group.command("init")
@argument("db", type=DB, help="The database to create, or the v1 database to adopt.")
@output_options("json")
def init_cmd(db: Path, fmt: str) -> None:
    """Create DB (or adopt a plain v1 database) and apply the migrations.

    Example:

    \b
        chronoledger runtime init runtime.sqlite
    """
    with _store(db, readonly=False) as s:
        applied = list(s.migrations_applied)
        version = s.schema_version
    emit_object({"database": str(db), "schema_version": version, "migrations_applied": applied}, fmt,
                lambda: click.echo(f"{db}: runtime schema version {version}"
                                   + (f" (applied {', '.join(f'{m:04d}' for m in applied)})" if applied
                                      else " (up to date)")))


@runtime_group.command("sessions")
@db_argument
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="Sessions on one page.")
@click.option("--cursor", help="The next_cursor of the previous page.")
@output_options(json_help='Print the page as JSON: {"sessions": [...], "next_cursor": ...}.')
def sessions_cmd(db: Path, limit: int, cursor: str | None, fmt: str) -> None:
    """Sessions, newest first, with their turn counts, a page at a time.

    When there are more, the table ends with (and --nl, --csv and --tsv say
    on stderr) "more: --cursor NEXT"; --json holds it as next_cursor.

    Example:

    \b
        chronoledger runtime sessions runtime.sqlite --limit 20 --csv
    """
    with _store(db) as s:
        page = s.list_sessions(limit=limit, cursor=cursor)

    def text(rows):
        _table(rows, ["id", "actor", "channel", "status", "started_at", "ended_at", "turn_count"])
        if page["next_cursor"]:
            click.echo(f"more: --cursor {page['next_cursor']}")
    emit(page["sessions"], fmt, text=text, document=page)
    if fmt in ("nl", "csv", "tsv") and page["next_cursor"]:
        click.echo(f"more: --cursor {page['next_cursor']}", err=True)


@runtime_group.command("replay")
@db_argument
@argument("session_id", help="The session's id (see `runtime sessions`).")
@output_options(json_help="Print the session, its turns inside, as JSON.")
def replay_cmd(db: Path, session_id: str, fmt: str) -> None:
    """A session's turns in order (the rows of --nl, --csv and --tsv).

    Example:

    \b
        chronoledger runtime replay runtime.sqlite s-0192f1c3 --nl
    """
    with _store(db) as s:
        session = s.session_replay(session_id)

    def text(turns):
        click.echo(f"session {session['id']}: {session['actor']} via {session['channel'] or '-'}, "
                   f"{session['status']}, started {session['started_at']}")
        for t in turns:
            click.echo(f"[{t['turn_index']}] {t['role']}: {t['content']}")
    emit(session["turns"], fmt, text=text, document=session)


@runtime_group.command("workflow")
@db_argument
@argument("run_id", help="The workflow run's id.")
@output_options("json", json_help="Print the run, its steps and events inside, as JSON.")
def workflow_cmd(db: Path, run_id: str, fmt: str) -> None:
    """A workflow run's steps in order, each with its events.

    Example:

    \b
        chronoledger runtime workflow runtime.sqlite w-0192f1c4
    """
    with _store(db) as s:
        run = s.workflow_replay(run_id)
    emit_object(run, fmt, lambda: _print_workflow(run))


def _print_workflow(run: dict) -> None:
    click.echo(f"run {run['id']}: {run['workflow_name']} ({run['trigger_source']}, by {run['initiated_by']}) "
               f"{run['status']}, {run['started_at']} .. {run['finished_at'] or '-'}")
    for e in run["events"]:
        click.echo(f"  event {e['created_at']} {e['event_type']}/{e['event_level']}: {e['message']}")
    for st in run["steps"]:
        click.echo(f"  step {st['step_index']} {st['step_name']}: {st['status']}")
        for e in st["events"]:
            click.echo(f"    event {e['created_at']} {e['event_type']}/{e['event_level']}: {e['message']}")


@runtime_group.command("lineage")
@db_argument
@argument("proposal_id", required=False, help="The proposal's id (or give --latest).")
@click.option("--latest", is_flag=True, help="The most recently created proposal.")
@output_options("json", json_help="Print the lineage as JSON.")
def lineage_cmd(db: Path, proposal_id: str | None, latest: bool, fmt: str) -> None:
    """Skill -> proposal -> validations -> approvals -> deploy outcomes.

    Example:

    \b
        chronoledger runtime lineage runtime.sqlite --latest
    """
    if bool(proposal_id) == latest:
        raise click.UsageError("give a PROPOSAL_ID or --latest (one of them)")
    with _store(db) as s:
        pid = s.latest_proposal_id() if latest else proposal_id
        if pid is None:
            raise NotFoundError(f"{db}: there are no proposals")
        lin = s.proposal_lineage(pid)
    emit_object(lin, fmt, lambda: _print_lineage(lin))


def _print_lineage(lin: dict) -> None:
    sk, p = lin["skill"], lin["proposal"]
    click.echo(f"skill {sk['skill_key']} ({sk['source_type']}, confidence {sk['confidence']}): {sk['description']}")
    click.echo(f"  proposal {p['id']}: {p['proposal_type']} by {p['proposed_by']}, risk {p['risk_level']}, "
               f"status {p['status']}")
    for r in lin["validations"]:
        checks = ", ".join(f"{k[:-5]} {'ok' if r[k] else 'FAIL'}" for k in
                           ("build_pass", "lint_pass", "test_pass", "policy_pass"))
        click.echo(f"    validation by {r['validator']} at {r['validated_at']}: {checks}")
    for r in lin["approvals"]:
        click.echo(f"    {r['approval_type']} approval by {r['approver']}: {r['decision']} at {r['decided_at']}")
    for r in lin["deploy_outcomes"]:
        click.echo(f"    deploy to {r['deployment_target']}: {r['status']} at {r['deployed_at']}")
    for d in lin["decisions"]:
        click.echo(f"    decision at {d['decided_at']}: {d['from_status'] or 'created'} -> {d['to_status']}"
                   + (f" (policy v{d['policy_version']})" if d["policy_version"] is not None else ""))
    if lin["status_lacks"]:
        click.echo(f"  NOT BACKED: status {p['status']} lacks " + "; ".join(lin["status_lacks"]))


@runtime_group.command("profile")
@db_argument
@argument("name", help="The profile's name (the agent it describes).")
@click.option("--kind", type=click.Choice(["behavior", "personality"]), default="behavior", show_default=True,
              help="Which of the agent's profiles.")
@click.option("--as-of", "as_of", help="An ISO-8601 time with a zone (default: now).")
@output_options("json", json_help="Print the profile version as JSON.")
def profile_cmd(db: Path, name: str, kind: str, as_of: str | None, fmt: str) -> None:
    """The version of profile NAME in effect now (or --as-of a time).

    Example:

    \b
        chronoledger runtime profile runtime.sqlite tom --kind personality --as-of 2026-01-01T00:00:00Z
    """
    with _store(db) as s:
        prof = s.profile_as_of(name, as_of, kind)
        if prof is None:
            raise NotFoundError(f"{db}: no {kind} profile {name!r} in effect at {as_of or 'now'}")

    def text():
        click.echo(f"{kind} profile {name} v{prof['version']}, effective {prof['effective_from']} .. "
                   f"{prof['effective_to'] or 'open'} (by {prof['created_by']})")
        click.echo(json.dumps(prof[f"{kind}_json"], indent=2, ensure_ascii=False))
    emit_object(prof, fmt, text)


@runtime_group.command("export")
@db_argument
@click.option("--format", "out_format", type=click.Choice(["jsonl"]), default="jsonl", show_default=True,
              help="The dump's format: JSON lines.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write (default: standard output).")
def export_cmd(db: Path, out_format: str, output: Path | None) -> None:
    """Every row of every table as JSON lines {"table": ..., "row": {...}}:
    a dump, to standard output or a file.

    Example:

    \b
        chronoledger runtime export runtime.sqlite -o runtime-dump.jsonl
    """

    with _store(db) as s:
        if output is None:
            n = s.export_jsonl(sys.stdout)
        else:

            buf = io.StringIO()
            n = s.export_jsonl(buf)
            atomic_write_bytes(output, buf.getvalue().encode())
    if output is not None:
        click.echo(f"{output}: {n} rows", err=True)
