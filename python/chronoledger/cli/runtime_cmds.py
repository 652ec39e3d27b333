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
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from chronoledger import sqlite as sqlite_db
from chronoledger._fsutil import output_file
from chronoledger.cli.output import Group, argument, emit, emit_object, exit_codes, output_options
from chronoledger.cli.output import table as _table
from chronoledger.errors import NotFoundError, SchemaError
from chronoledger.runtime import RuntimeMemoryStore
from chronoledger.runtime import export as runtime_export
from chronoledger.runtime.core import TABLES
from chronoledger.runtime.vocab import ENUMS, SESSION_STATUSES, SKILL_STATES

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
@click.option("--limit", type=click.IntRange(1), help="Turns on one page (default: all).")
@click.option("--after", type=int, help="The last turn_index of the page before (its next_after).")
@output_options(json_help="Print the session, its turns inside, as JSON.")
def replay_cmd(db: Path, session_id: str, limit: int | None, after: int | None, fmt: str) -> None:
    """A session's turns in order (the rows of --nl, --csv and --tsv), all
    of them or a page at a time.

    Example:

    \b
        chronoledger runtime replay runtime.sqlite s-0192f1c3 --nl
        chronoledger runtime replay runtime.sqlite s-0192f1c3 --limit 50 --after 49
    """
    with _store(db) as s:
        session = s.session_replay(session_id, after=after, limit=limit)

    def text(turns):
        click.echo(f"session {session['id']}: {session['actor']} via {session['channel'] or '-'}, "
                   f"{session['status']}, started {session['started_at']}")
        for t in turns:
            click.echo(f"[{t['turn_index']}] {t['role']}: {t['content']}")
        if session["next_after"] is not None:
            click.echo(f"more: --after {session['next_after']}")
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
@click.option("--format", "out_format", type=click.Choice(list(runtime_export.FORMATS)), default="jsonl",
              show_default=True, help="JSON lines (every table, or --table's), CSV or Parquet (one --table; "
                                      "Parquet needs the arrow extra).")
@click.option("--table", "table", type=click.Choice(list(TABLES)),
              help="One table (CSV and Parquet write one table a file); JSON lines without it is every table.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True),
              help="The file to write (default: standard output).")
@click.option("--force", is_flag=True, help="Replace the output file if it exists (without it, an existing "
                                             "file is refused and nothing is written).")
def export_cmd(db: Path, out_format: str, table: str | None, output: str | None, force: bool) -> None:
    """Rows to a file. Without --table, every row of every table as JSON
    lines {"table": ..., "row": {...}} from one snapshot (a dump); with
    --table, that table's rows as CSV (a header line, JSON columns as JSON
    text), JSON lines (the rows) or Parquet, a page at a time.

    Example:

    \b
        chronoledger runtime export runtime.sqlite -o runtime-dump.jsonl
        chronoledger runtime export runtime.sqlite --table conversation_turns --format parquet -o turns.parquet
    """
    if table is None and out_format != "jsonl":
        raise click.UsageError(f"--format {out_format} writes one table: name it with --table")
    target = None if output in (None, "-") else Path(output)
    if target is not None and not force and os.path.lexists(target):
        raise click.BadParameter(f"{target} exists; --force replaces it", param_hint="--output")
    if target is None and out_format == "parquet" and sys.stdout.isatty():
        raise click.BadParameter("Parquet is binary: redirect standard output to a file, or name one",
                                 param_hint="--output")
    with _store(db) as s:
        if table is not None:
            n = runtime_export.export_table(s, table, target if target is not None else "-", out_format, force=force)
        elif target is None:
            n = s.export_jsonl(sys.stdout)
        else:
            buf = io.StringIO()
            n = s.export_jsonl(buf)
            with output_file(target, force=force, what="runtime export") as fh:
                fh.write(buf.getvalue().encode())
    if target is not None:
        click.echo(f"{target}: {n} rows", err=True)


# --- reading more ----------------------------------------------------------------------------------------

@runtime_group.command("search")
@db_argument
@argument("query", help="The words to find (every one must occur), or with --fts5 an FTS5 query.")
@click.option("--session", "session_id", help="Only this session's turns.")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="The most turns to show.")
@click.option("--fts5", "fts5", is_flag=True, help='QUERY is FTS5\'s own language ("a phrase", a OR b, pre*, NEAR).')
@output_options(json_help='Print the turns found as JSON: {"turns": [...]}.')
def search_cmd(db: Path, query: str, session_id: str | None, limit: int, fts5: bool, fmt: str) -> None:
    """Turns that match QUERY, best first, with the match in [brackets].

    A read: the search index is used as far as it goes; turns appended since
    it was brought up to date (by `runtime index` or a search from Python)
    are found by reading them all, which a words query can do and an FTS5
    query cannot.

    Example:

    \b
        chronoledger runtime index runtime.sqlite
        chronoledger runtime search runtime.sqlite "sync failed" --limit 5
    """
    with _store(db) as s:
        hits = s.search_turns(query, session_id=session_id, limit=limit, syntax="fts5" if fts5 else "words")

    def text(rows):
        for t in rows:
            click.echo(f"{t['session_id']} [{t['turn_index']}] {t['role']}: {t['snippet'] or t['content']}")
    emit(hits, fmt, text=text, document={"turns": hits})


@runtime_group.command("index")
@argument("db", type=EXISTING_DB, help="The runtime memory database (SQLite).")
@output_options("json")
def index_cmd(db: Path, fmt: str) -> None:
    """Bring the search index up to date (the turns appended since; a write).

    Example:

    \b
        chronoledger runtime index runtime.sqlite
    """
    with _write_store(db) as s:
        n = s.index_turns()
    emit_object({"database": str(db), "indexed": n}, fmt, lambda: click.echo(f"{db}: {n} turn(s) indexed"))


@runtime_group.command("recent")
@db_argument
@argument("session_id", help="The session's id.")
@click.option("--last", type=click.IntRange(1), help="At most this many turns.")
@click.option("--tokens", "token_budget", type=click.IntRange(0),
              help="No more turns than fit in this many tokens (token_count, else 4 characters a token).")
@output_options(json_help='Print the turns as JSON: {"turns": [...]}.')
def recent_cmd(db: Path, session_id: str, last: int | None, token_budget: int | None, fmt: str) -> None:
    """A session's latest turns, in order, as a prompt would take them.

    Example:

    \b
        chronoledger runtime recent runtime.sqlite s-0192f1c3 --tokens 2000
    """
    if last is None and token_budget is None:
        raise click.UsageError("give --last, --tokens or both")
    with _store(db) as s:
        turns = s.recent_turns(session_id, last=last, token_budget=token_budget)

    def text(rows):
        for t in rows:
            click.echo(f"[{t['turn_index']}] {t['role']}: {t['content']}")
    emit(turns, fmt, text=text, document={"turns": turns})


@runtime_group.command("proposals")
@db_argument
@click.option("--status", type=click.Choice(list(ENUMS[("skill_to_logic_proposals", "status")])),
              help="Only proposals of this status.")
@click.option("--risk", type=click.Choice(list(ENUMS[("skill_to_logic_proposals", "risk_level")])),
              help="Only proposals of this risk level.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="Proposals on one page.")
@click.option("--cursor", help="The next_cursor of the previous page.")
@output_options(json_help='Print the page as JSON: {"proposals": [...], "next_cursor": ...}.')
def proposals_cmd(db: Path, status: str | None, risk: str | None, limit: int, cursor: str | None, fmt: str) -> None:
    """Proposals, newest first, by status and risk level.

    Example:

    \b
        chronoledger runtime proposals runtime.sqlite --status approved --risk critical
    """
    with _store(db) as s:
        page = s.list_proposals(status=status, risk_level=risk, limit=limit, cursor=cursor)

    def text(rows):
        _table(rows, ["id", "skill_key", "proposal_type", "risk_level", "status", "created_at"])
        if page["next_cursor"]:
            click.echo(f"more: --cursor {page['next_cursor']}")
    emit(page["proposals"], fmt, text=text, document=page)


@runtime_group.command("profiles")
@db_argument
@argument("name", help="The profile's name.")
@click.option("--kind", type=click.Choice(["behavior", "personality"]), default="behavior", show_default=True,
              help="Which of the agent's profiles.")
@output_options(json_help='Print the versions as JSON: {"versions": [...]}.')
def profiles_cmd(db: Path, name: str, kind: str, fmt: str) -> None:
    """Every version of profile NAME, oldest first, with its window.

    Example:

    \b
        chronoledger runtime profiles runtime.sqlite tom --kind personality
    """
    with _store(db) as s:
        versions = s.profile_versions(name, kind)

    def text(rows):
        _table(rows, ["version", "effective_from", "effective_to", "created_by", "rationale"])
    emit(versions, fmt, text=text, document={"versions": versions})


@runtime_group.command("policy")
@db_argument
@output_options("json", json_help="Print the policy in force by risk level as JSON.")
def policy_cmd(db: Path, fmt: str) -> None:
    """The promotion policy in force: what each risk level's proposals need.

    Example:

    \b
        chronoledger runtime policy runtime.sqlite
    """
    with _store(db) as s:
        pol = s.promotion_policy()

    def text():
        for risk, p in pol.items():
            click.echo(f"{risk} (v{p['version']}, {p['set_by']}): validators {', '.join(p['validators']) or '-'}; "
                       f"approvals {', '.join(p['approval_types']) or 'any'}; at least {p['min_approvals']}"
                       + (" from different people" if p["distinct_approvers"] else ""))
    emit_object(pol, fmt, text)


# --- what an operator does by hand (writes) ------------------------------------------------------------------

@contextmanager
def _write_store(db: Path):
    """The store for an operator's write. A file at an older schema (another
    tool's plain v1 file) is not migrated on the way: adopting it is its own
    step (`runtime init`), so a write that is then refused leaves the file
    as it was."""
    with exit_codes(database=db):
        with RuntimeMemoryStore(db, readonly=True) as probe:
            found = probe.schema_version
        latest = len(sqlite_db.migrations("chronoledger.runtime"))
        if found < latest:
            raise SchemaError(f"{db}: schema version {found}, and this command writes version {latest}; adopt it "
                              f"first with `chronoledger runtime init {db}` (every row is kept)")
        with RuntimeMemoryStore(db) as store:
            yield store


@runtime_group.command("end-session")
@argument("db", type=EXISTING_DB, help="The runtime memory database (SQLite).")
@argument("session_id", help="The session's id.")
@click.option("--status", type=click.Choice(list(SESSION_STATUSES[1:])), default="ended", show_default=True,
              help="How it ended (completed and failed are the words of ToM's store).")
@output_options("json", json_help="Print the session as JSON.")
def end_session_cmd(db: Path, session_id: str, status: str, fmt: str) -> None:
    """End a session (its turns are refused afterwards).

    Example:

    \b
        chronoledger runtime end-session runtime.sqlite s-0192f1c3 --status aborted
    """
    with _write_store(db) as s:
        row = s.end_session(session_id, status)
    emit_object(row, fmt, lambda: click.echo(f"session {row['id']}: {row['status']} at {row['ended_at']}"))


@runtime_group.command("approve")
@argument("db", type=EXISTING_DB, help="The runtime memory database (SQLite).")
@argument("proposal_id", help="The proposal's id.")
@click.option("--approver", required=True, help="Who decides (a person's or a service's name).")
@click.option("--type", "approval_type", type=click.Choice(list(ENUMS[("approvals", "approval_type")])),
              required=True, help="The kind of approval.")
@click.option("--decision", type=click.Choice(list(ENUMS[("approvals", "decision")])), default="approved",
              show_default=True, help="Approved or rejected.")
@click.option("--notes", help="Why.")
@output_options("json", json_help="Print the approval as JSON.")
def approve_cmd(db: Path, proposal_id: str, approver: str, approval_type: str, decision: str, notes: str | None,
                fmt: str) -> None:
    """Record an approval (or a rejection) of a proposal: append-only.

    Example:

    \b
        chronoledger runtime approve runtime.sqlite p-0192f1c5 --approver alice --type human
    """
    with _write_store(db) as s:
        row = s.record_approval(proposal_id, approver, approval_type, decision, notes=notes)
        status = s.proposal_lineage(row["proposal_id"])["proposal"]["status"]
        # what the approval leaves to do, for a proposal waiting for approvals
        lacks = s.promotion_check(proposal_id, "approved") if status == "validated" else None

    def text() -> None:
        hint = ""
        if lacks is not None and row["decision"] == "approved":
            hint = "; the proposal may be approved now" if not lacks else \
                f"; to approve it still needs {'; '.join(lacks)}"
        click.echo(f"{row['approval_type']} approval by {row['approver']}: {row['decision']} "
                   f"(the proposal is {status}){hint}")
    emit_object(row, fmt, text)


@runtime_group.command("set-status")
@argument("db", type=EXISTING_DB, help="The runtime memory database (SQLite).")
@argument("proposal_id", help="The proposal's id.")
@argument("status", type=click.Choice(list(ENUMS[("skill_to_logic_proposals", "status")])),
          help="The status to move it to (each move needs its evidence).")
@output_options("json", json_help="Print the proposal as JSON.")
def set_status_cmd(db: Path, proposal_id: str, status: str, fmt: str) -> None:
    """Move a proposal to STATUS; refused, naming what is missing, unless the
    evidence backs it under the policy for its risk level.

    Example:

    \b
        chronoledger runtime set-status runtime.sqlite p-0192f1c5 approved
    """
    with _write_store(db) as s:
        row = s.set_proposal_status(proposal_id, status)
    emit_object(row, fmt, lambda: click.echo(f"proposal {row['id']}: {row['status']}"))


@runtime_group.command("skill-state")
@argument("db", type=EXISTING_DB, help="The runtime memory database (SQLite).")
@argument("skill_id", help="The skill's id.")
@argument("state", type=click.Choice(list(SKILL_STATES)), help="The state to set.")
@output_options("json", json_help="Print the skill as JSON.")
def skill_state_cmd(db: Path, skill_id: str, state: str, fmt: str) -> None:
    """Set a skill's state (a retired skill stays retired).

    Example:

    \b
        chronoledger runtime skill-state runtime.sqlite k-0192f1c6 deprecated
    """
    with _write_store(db) as s:
        row = s.set_skill_state(skill_id, state)
    emit_object(row, fmt, lambda: click.echo(f"skill {row['skill_key']} ({row['id']}): {row['state']}"))
