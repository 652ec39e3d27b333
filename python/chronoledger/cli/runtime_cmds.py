"""``chronoledger runtime ...``: the agent runtime memory database.

Exit codes: 0 success; 2 bad usage or a bad value (a time without a zone, a
cursor this store did not give out, a database file that does not exist);
3 the database cannot be opened or read (damaged, not a runtime database, a
newer schema); 5 the thing asked for does not exist (no such session, run,
proposal or profile).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from chronoledger.cli.output import EXIT_NOT_FOUND, exit_codes
from chronoledger.cli.output import print_json as _json
from chronoledger.cli.output import table as _table


DB = click.Path(dir_okay=False, path_type=Path)
EXISTING_DB = click.Path(exists=True, dir_okay=False, path_type=Path)


@contextmanager
def _store(path: Path, readonly: bool = True):
    from chronoledger.runtime import RuntimeMemoryStore

    with exit_codes(database=path):
        with RuntimeMemoryStore(path, readonly=readonly) as store:
            yield store


@click.group("runtime")
def runtime_group() -> None:
    """Agent runtime memory (sessions, workflows, skills, proposals, profiles) in SQLite."""


@runtime_group.command("init")
@click.argument("db", type=DB)
def init_cmd(db: Path) -> None:
    """Create DB (or adopt a plain v1 database) and apply the migrations."""
    with _store(db, readonly=False) as s:
        applied = s.migrations_applied
        click.echo(f"{db}: runtime schema version {s.schema_version}"
                   + (f" (applied {', '.join(f'{m:04d}' for m in applied)})" if applied else " (up to date)"))


@runtime_group.command("sessions")
@click.argument("db", type=EXISTING_DB)
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option("--cursor", help="The next_cursor of the previous page.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def sessions_cmd(db: Path, limit: int, cursor: str | None, as_json: bool) -> None:
    """Sessions, newest first, with their turn counts."""
    with _store(db) as s:
        page = s.list_sessions(limit=limit, cursor=cursor)
    if as_json:
        _json(page)
        return
    _table(page["sessions"], ["id", "actor", "channel", "status", "started_at", "ended_at", "turns"])
    if page["next_cursor"]:
        click.echo(f"more: --cursor {page['next_cursor']}")


@runtime_group.command("replay")
@click.argument("db", type=EXISTING_DB)
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True)
def replay_cmd(db: Path, session_id: str, as_json: bool) -> None:
    """A session's turns in order."""
    with _store(db) as s:
        session = s.session_replay(session_id)
    if as_json:
        _json(session)
        return
    click.echo(f"session {session['id']}: {session['actor']} via {session['channel'] or '-'}, "
               f"{session['status']}, started {session['started_at']}")
    for t in session["turns"]:
        click.echo(f"[{t['turn_index']}] {t['role']}: {t['content']}")


@runtime_group.command("workflow")
@click.argument("db", type=EXISTING_DB)
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
def workflow_cmd(db: Path, run_id: str, as_json: bool) -> None:
    """A workflow run's steps in order, each with its events."""
    with _store(db) as s:
        run = s.workflow_replay(run_id)
    if as_json:
        _json(run)
        return
    click.echo(f"run {run['id']}: {run['workflow_name']} ({run['trigger_source']}, by {run['initiated_by']}) "
               f"{run['status']}, {run['started_at']} .. {run['finished_at'] or '-'}")
    for e in run["events"]:
        click.echo(f"  event {e['created_at']} {e['event_type']}/{e['event_level']}: {e['message']}")
    for st in run["steps"]:
        click.echo(f"  step {st['step_index']} {st['step_name']}: {st['status']}")
        for e in st["events"]:
            click.echo(f"    event {e['created_at']} {e['event_type']}/{e['event_level']}: {e['message']}")


@runtime_group.command("lineage")
@click.argument("db", type=EXISTING_DB)
@click.argument("proposal_id", required=False)
@click.option("--latest", is_flag=True, help="The most recently created proposal.")
@click.option("--json", "as_json", is_flag=True)
def lineage_cmd(db: Path, proposal_id: str | None, latest: bool, as_json: bool) -> None:
    """Skill -> proposal -> validations -> approvals -> deploy outcomes."""
    if bool(proposal_id) == latest:
        raise click.UsageError("give a PROPOSAL_ID or --latest (one of them)")
    with _store(db) as s:
        pid = s.latest_proposal_id() if latest else proposal_id
        if pid is None:
            click.echo(f"error: {db}: there are no proposals", err=True)
            sys.exit(EXIT_NOT_FOUND)
        lin = s.proposal_lineage(pid)
    if as_json:
        _json(lin)
        return
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


@runtime_group.command("profile")
@click.argument("db", type=EXISTING_DB)
@click.argument("name")
@click.option("--kind", type=click.Choice(["behavior", "personality"]), default="behavior", show_default=True)
@click.option("--as-of", "as_of", help="An ISO-8601 time with a zone (default: now).")
@click.option("--json", "as_json", is_flag=True)
def profile_cmd(db: Path, name: str, kind: str, as_of: str | None, as_json: bool) -> None:
    """The version of profile NAME in effect now (or --as-of a time)."""
    with _store(db) as s:
        prof = s.profile_as_of(name, as_of, kind)
    if prof is None:
        click.echo(f"error: {db}: no {kind} profile {name!r} in effect at {as_of or 'now'}", err=True)
        sys.exit(EXIT_NOT_FOUND)
    if as_json:
        _json(prof)
        return
    body = prof[f"{kind}_json"]
    click.echo(f"{kind} profile {name} v{prof['version']}, effective {prof['effective_from']} .. "
               f"{prof['effective_to'] or 'open'} (by {prof['created_by']})")
    click.echo(json.dumps(body, indent=2, ensure_ascii=False))


@runtime_group.command("export")
@click.argument("db", type=EXISTING_DB)
@click.option("--format", "out_format", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Default: standard output.")
def export_cmd(db: Path, out_format: str, output: Path | None) -> None:
    """Every row of every table as JSON lines {"table": ..., "row": {...}}."""
    from chronoledger._fsutil import atomic_write_bytes

    with _store(db) as s:
        if output is None:
            n = s.export_jsonl(sys.stdout)
        else:
            import io

            buf = io.StringIO()
            n = s.export_jsonl(buf)
            atomic_write_bytes(output, buf.getvalue().encode())
    if output is not None:
        click.echo(f"{output}: {n} rows", err=True)
