"""``chronoledger tables ...``: YAML-declared tables, their rows and their governance.

Exit codes are those of ``cli.output`` (docs/cli.md): 1 ``validate`` or
``create`` found problems; 2 a row or filter the schema refuses; 3 the
database cannot be opened or read, or a schema change cannot be applied; 5
no such table, row or proposal.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import apsw
import click

from chronoledger.cli.output import (EXIT_CHECK_FAILED, EXIT_UNUSABLE, EXIT_USAGE, Group, argument, emit,
                                    emit_object, exit_codes, output_options, table)
from chronoledger.errors import ChronoledgerError
from chronoledger.sqlite import open_readonly
from chronoledger.tables import TableRegistry
from chronoledger.tables import export as table_export
from chronoledger.tables.infer import infer_files
from chronoledger.tables.ingest import ingest, propose_inference
from chronoledger.tables.registry import CATALOGUE
from chronoledger.tables.schema import SchemaProblem, check_relationships, read_schema_file, schema_files

DB = click.Path(dir_okay=False, path_type=Path)
FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group("tables", cls=Group)
@click.option("--db", "db", type=DB, envvar="CHRONOLEDGER_TABLES_DB", show_envvar=True,
              help="The registry database (created if missing).")
@click.option("--schemas", "schema_dirs", type=FOLDER, multiple=True,
              help="A folder of your schema files. A folder you name is what you get: the packaged catalogue "
                   "is then left out unless --catalogue.")
@click.option("--catalogue/--no-catalogue", "catalogue", default=None,
              help="Load the packaged catalogue too (default: only when no --schemas folder is named). Your "
                   "files win: a catalogue table they also declare is left out, with a note.")
@click.option("--actor", help="Who proposes and decides (default: your login name).")
@click.pass_context
def tables_group(ctx: click.Context, db: Path | None, schema_dirs: tuple[Path, ...], catalogue: bool | None,
                 actor: str | None) -> None:
    """YAML-declared tables with validated writes, filtered queries and governance.

    Example:

    \b
        chronoledger tables --db grace.db create
        chronoledger tables --db grace.db query memory_execution_logs --where status=failed --json
    """
    ctx.obj = {"db": db, "schemas": list(schema_dirs), "catalogue": catalogue, "actor": actor}


@contextmanager
def _registry(ctx: click.Context, adopt: bool = False):
    opts = ctx.obj
    if opts["db"] is None:
        click.echo("error: name the registry database with --db PATH (or CHRONOLEDGER_TABLES_DB)", err=True)
        sys.exit(EXIT_USAGE)
    with exit_codes(database=opts["db"]):
        with TableRegistry(opts["db"], opts["schemas"], catalogue=opts["catalogue"], actor=opts["actor"],
                           adopt=adopt) as reg:
            yield reg


@tables_group.command("adopt")
@output_options("json", json_help="Print what was adopted as JSON.")
@click.pass_context
def adopt_cmd(ctx: click.Context, fmt: str) -> None:
    """Take a database another program made from the same schema files
    (Grace's registry) under the registry, every row kept as it is: each
    table the --schemas folders declare is checked (columns and their types)
    first, and on any problem nothing is written (exit 3).  New rows are
    then written in Grace's forms, so Grace's own code still reads them.
    Then the schemas are loaded as ``create`` does: a declared field a table
    has no column for yet becomes a proposal, a declared table the database
    lacks is created.  A database already the registry's is only loaded.

    Example:

    \b
        chronoledger tables --db databases/memory_tables.db --schemas backend/memory_tables/schema adopt
    """
    if not ctx.obj["schemas"]:
        click.echo("error: adopt checks the database against your schema files: name their folder with --schemas",
                   err=True)
        sys.exit(EXIT_USAGE)
    if ctx.obj["db"] is not None and not Path(ctx.obj["db"]).is_file():
        click.echo(f"error: {ctx.obj['db']}: no such database to adopt", err=True)
        sys.exit(EXIT_USAGE)
    with _registry(ctx, adopt=True) as reg:
        plan = reg.adoption
        report = reg.load_all_schemas()
    found = {"adopted": dict(plan.tables) if plan else {}, "left_alone": plan.unmanaged if plan else [],
             "missing_columns": plan.missing if plan else {}, "created": report.created,
             "altered": report.altered, "proposed": report.proposed, "problems": [str(p) for p in report.problems]}

    def text() -> None:
        click.echo(str(plan) if plan else f"{ctx.obj['db']}: the registry's own database already; nothing to adopt")
        click.echo(str(report))
    emit_object(found, fmt, text)
    if report.problems:
        sys.exit(EXIT_CHECK_FAILED)


@tables_group.command("create")
@output_options("json", json_help="Print the report as JSON.")
@click.pass_context
def create_cmd(ctx: click.Context, fmt: str) -> None:
    """Load the --schemas folders (or, with none named or with --catalogue,
    the packaged catalogue): create new tables, apply low-risk changes,
    queue the rest for approval; exit 1 if a schema file has problems (the
    good ones are loaded).  A catalogue table your files also declare is
    left out, with a note.

    Example:

    \b
        chronoledger tables --db grace.db --schemas my_schemas/ create
    """
    with _registry(ctx) as reg:
        report = reg.load_all_schemas()
    found = {"loaded": report.loaded, "created": report.created, "altered": report.altered,
             "proposed": report.proposed, "problems": [str(p) for p in report.problems],
             "notices": report.notices}
    emit_object(found, fmt, lambda: click.echo(str(report)))
    if report.problems:
        sys.exit(EXIT_CHECK_FAILED)


@tables_group.command("list")
@output_options()
@click.pass_context
def list_cmd(ctx: click.Context, fmt: str) -> None:
    """The tables, their row counts and pending proposals.

    Example:

    \b
        chronoledger tables --db grace.db list --csv
    """
    with _registry(ctx) as reg:
        rows = reg.overview()
    emit(rows, fmt, text=lambda found: table(found, ["table", "rows", "fields", "version", "pending",
                                                      "description"]))


@tables_group.command("show")
@argument("name", help="The table.")
@output_options("json", json_help="Print the schema (as declared) with its hash and row count as JSON.")
@click.pass_context
def show_cmd(ctx: click.Context, name: str, fmt: str) -> None:
    """A table's fields, rules, indexes and relationships.

    Example:

    \b
        chronoledger tables --db grace.db show memory_self_healing_playbooks
    """
    with _registry(ctx) as reg:
        s = reg.schema(name)
        count = reg.count_rows(name)
    emit_object({**s.declared(), "schema_hash": s.hash, "rows": count}, fmt, lambda: _print_schema(s, count))


def _print_schema(s, count: int) -> None:
    click.echo(f"{s.name}: {s.description}".rstrip(": "))
    click.echo(f"version {s.version}, {count:,} rows, schema {s.hash[:12]}{', immutable' if s.immutable else ''}")
    rows = []
    for f in s.declared()["fields"]:
        rules = [k if k in ("primary_key", "generated", "required", "unique") and v is True else f"{k}={json.dumps(v, default=str)}"
                 for k, v in f.items() if k not in ("name", "type", "description")]
        rows.append({"field": f["name"], "type": f["type"], "rules": " ".join(rules),
                     "description": f.get("description", "")})
    click.echo()
    table(rows, ["field", "type", "rules", "description"])
    if s.indexes:
        click.echo()
        for ix in s.indexes:
            click.echo(f"{'unique ' if ix.unique else ''}index on {', '.join(ix.fields)}")
    for r in s.relationships:
        click.echo(str(r))


@tables_group.command("validate")
@argument("folder", type=FOLDER, help="A folder of schema files (*.yaml, *.yml).")
@output_options("json", json_help='Print the report as JSON: {"ok": ..., "good": [...], "problems": [...]}.')
def validate_cmd(folder: Path, fmt: str) -> None:
    """Check the schema files of FOLDER (no database needed); exit 1 on any problem.

    Example:

    \b
        chronoledger tables validate my_schemas/
    """


    problems: list[SchemaProblem | str] = []      # a file's, or a clash between files
    good: list[str] = []
    seen: dict[str, Path] = {}
    schemas = {}
    for f in schema_files(folder):
        schema, bad = read_schema_file(f)
        problems += bad
        if schema is None:
            continue
        if schema.name.lower() in seen:             # SQLite's names ignore case
            problems.append(f"{f}: {schema.name}: table {schema.name} is also declared in "
                            f"{seen[schema.name.lower()]}")
            continue
        seen[schema.name.lower()] = f
        schemas[schema.name] = schema
    # relationships may name the packaged catalogue's tables too
    with resources.as_file(resources.files(CATALOGUE).joinpath("schemas")) as cat:
        known = {s.name: s for s in (read_schema_file(c)[0] for c in schema_files(cat)) if s is not None}
    broken = {p.table for p in check_relationships({**known, **schemas}) if p.table in schemas}
    problems += [str(p) for p in check_relationships({**known, **schemas}) if p.table in schemas]
    for name, schema in schemas.items():
        if name not in broken:
            good.append(f"{Path(schema.source).name}: table {name}, {len(schema.fields)} fields, "
                        f"{len(schema.indexes)} indexes")

    def text():
        for line in good:
            click.echo(f"ok    {line}")
        for p in problems:
            click.echo(f"error {p}")
        click.echo(f"{len(good)} good, {len(problems)} problems")
    emit_object({"ok": not problems, "good": good, "problems": [str(p) for p in problems]}, fmt, text)
    if problems:
        sys.exit(EXIT_CHECK_FAILED)


def _read_json(text: str, what: str):
    try:
        if text == "-":
            text = sys.stdin.read()
        elif text.startswith("@"):
            text = Path(text[1:]).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"error: {what}: cannot read {text[1:]}: {getattr(exc, 'strerror', None) or exc}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        click.echo(f"error: {what} is not JSON: {exc}", err=True)
        sys.exit(EXIT_USAGE)


@tables_group.command("insert")
@argument("name", help="The table.")
@argument("row", help="A row (a JSON object) or rows (a JSON list); @FILE reads them from a file, - from stdin.")
@output_options(json_help="Print what was stored as JSON: an object for a row, a list for a list.")
@click.pass_context
def insert_cmd(ctx: click.Context, name: str, row: str, fmt: str) -> None:
    """Insert ROW into table NAME (a list of rows in one transaction); prints
    what was stored, with the values the table filled in.

    Example:

    \b
        chronoledger tables --db grace.db insert memory_self_healing_playbooks '{"playbook_name": "restart"}'
        chronoledger tables --db grace.db insert memory_self_healing_playbooks @rows.json --json
    """
    data = _read_json(row, "ROW")
    with _registry(ctx) as reg:
        stored = reg.insert_rows(name, data) if isinstance(data, list) else reg.insert_row(name, data)
        columns = [f.name for f in reg.schema(name).fields]
    emit(stored if isinstance(stored, list) else [stored], fmt, columns, document=stored)


_WHERE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!=|<=|>=|=|<|>|~|@>)\s*(.*)$", re.S)
_OPS = {"=": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "~": "like", "@>": "contains"}


def _where(items: tuple[str, ...], schema) -> dict:
    """--where items as one filter: JSON filters, or FIELD OP VALUE (OP: = != < <= > >= ~ @>).
    A VALUE is text for text, id and time fields, else JSON (a number, true, null...)."""
    out: dict = {}
    for item in items:
        if item.lstrip().startswith("{"):
            f = _read_json(item, "--where")
            if not isinstance(f, dict):
                click.echo("error: a JSON --where is an object of filters", err=True)
                sys.exit(EXIT_USAGE)
            parts = [f]
        else:
            m = _WHERE.match(item)
            if not m:
                click.echo(f"error: --where {item!r}: write FIELD=VALUE (or != < <= > >= ~ @>), or a JSON object",
                           err=True)
                sys.exit(EXIT_USAGE)
            field, op, raw = m.groups()
            f = schema.by_name.get(field)
            value: object = raw
            if op != "~" and (f is None or f.type not in ("string", "text", "uuid", "datetime", "date")
                              or raw.strip().startswith('"')):
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError:
                    value = raw
            parts = [{field: {_OPS[op]: value}}]
        for p in parts:
            for k, v in p.items():
                if k in out:                     # the same field twice: both conditions hold
                    out.setdefault("and", []).append({k: v})
                else:
                    out[k] = v
    return out


@tables_group.command("query")
@argument("name", help="The table.")
@click.option("--where", "where", multiple=True,
              help="FIELD=VALUE, FIELD>VALUE... (!= < <= > >= ~ for LIKE, @> for contains) or a JSON "
                   "filter object; repeat to AND them.")
@click.option("--order-by", "order_by", multiple=True, help="A field, -field for descending; repeatable.")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="At most this many rows (default: all).")
@click.option("--offset", type=click.IntRange(min=0), default=None,
              help="Skip this many rows first (with --order-by, for pages).")
@output_options()
@click.pass_context
def query_cmd(ctx: click.Context, name: str, where: tuple[str, ...], order_by: tuple[str, ...], limit: int | None,
              offset: int | None, fmt: str) -> None:
    """Rows of table NAME matching --where filters.

    Example:

    \b
        chronoledger tables --db grace.db query memory_execution_logs --where status=failed \\
            --where 'duration_ms>=100' --order-by -started_at --limit 5 --csv
    """
    with _registry(ctx) as reg:
        filters = _where(where, reg.schema(name))
        rows = reg.query_rows(name, filters, list(order_by) or None, limit, offset)
        columns = [f.name for f in reg.schema(name).fields]
    emit(rows, fmt, columns)


@tables_group.command("export")
@argument("name", help="The table.")
@click.option("--format", "out_format", type=click.Choice(list(table_export.FORMATS)), required=True,
              help="CSV (a header line; JSON fields as JSON text), JSON lines, or Parquet (needs the arrow extra).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True),
              help="Output file (default: NAME with the format's extension, here); - writes to standard output.")
@click.option("--where", "where", multiple=True, help="Only rows matching these filters (as query's --where).")
@click.option("--force", is_flag=True, help="Replace the output file if it exists (without it, an existing "
                                             "file is refused and nothing is written).")
@click.pass_context
def export_cmd(ctx: click.Context, name: str, out_format: str, output: str | None, where: tuple[str, ...],
               force: bool) -> None:
    """Write the rows of table NAME to a file, a batch at a time (memory
    does not grow with the table), in primary-key order; the file is written
    beside its name and renamed into place when complete.

    Example:

    \b
        chronoledger tables --db grace.db export memory_execution_logs --format parquet -o logs.parquet
        chronoledger tables --db grace.db export memory_incidents --format csv -o - | head
    """
    to_stdout = output == "-"
    target = None if to_stdout else Path(output) if output else Path(name + table_export.EXTENSIONS[out_format])
    if target is not None and not force and os.path.lexists(target):
        raise click.BadParameter(f"{target} exists; --force replaces it", param_hint="--output")
    if to_stdout and out_format == "parquet" and sys.stdout.isatty():
        raise click.BadParameter("Parquet is binary: redirect standard output to a file, or name one",
                                 param_hint="--output")
    with _registry(ctx) as reg:
        filters = _where(where, reg.schema(name)) if where else None
        try:
            n = table_export.export_table(reg, name, "-" if to_stdout else str(target), out_format, filters=filters,
                                          force=force)
        except FileExistsError as exc:          # the file appeared while the export was being written
            raise click.BadParameter(f"{exc}; --force replaces it", param_hint="--output") from None
    if target is not None:
        click.echo(f"exported {n:,} rows to {target}")


def _proposal_line(p: dict) -> str:
    changes = "; ".join(f"{c['kind']}{' ' + c['field'] if c.get('field') else ''} ({c['risk']})" for c in p["changes"])
    return (f"proposal {p['id']}: {p['kind']} {p['table_name']}, {p['risk']} risk, {p['status']}"
            + (f" by {p['decided_by']}" if p.get("decided_by") else "") + f"\n  changes: {changes}")


@tables_group.command("propose")
@argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
          help="A schema file: the table, new or changed.")
@click.option("--reason", default="", help="Why the change is wanted (recorded).")
@output_options("json", json_help="Print the proposal as JSON.")
@click.pass_context
def propose_cmd(ctx: click.Context, file: Path, reason: str, fmt: str) -> None:
    """Propose the table in FILE (new or changed): low risk is applied at once,
    medium and high wait for approve/reject.

    Example:

    \b
        chronoledger tables --db grace.db --actor alice propose notes.yaml --reason "a field for tags"
    """
    with _registry(ctx) as reg:
        p = reg.propose_schema(file, reason=reason)
    emit_object(p, fmt, lambda: click.echo(_proposal_line(p)))


DATA_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@tables_group.command("infer")
@argument("files", nargs=-1, required=True, type=DATA_FILE,
          help="CSV, TSV, JSON (a list of records), JSON lines, YAML or Parquet files: the records of one table.")
@click.option("--table", "table_name", default=None, help="The table's name (default: the first file's name).")
@click.option("--dry-run", is_flag=True, help="Only show the inferred schema; propose nothing (no --db needed).")
@click.option("--schema-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the inferred schema as a schema file here (not replaced if it exists).")
@output_options("json", json_help="Print the inference (and the proposal) as JSON.")
@click.pass_context
def infer_cmd(ctx: click.Context, files: tuple[Path, ...], table_name: str | None, dry_run: bool,
              schema_out: Path | None, fmt: str) -> None:
    """Infer a table from FILES and propose it: each field's type with a
    confidence, the schema's confidence (its least sure field's), and the
    risk that follows (low from 0.9, medium from 0.7, else high). A low-risk
    table is created at once; the rest waits for approve.

    Example:

    \b
        chronoledger tables --db grace.db infer penguins.json --table penguins
        chronoledger tables --db grace.db ingest penguins.json --table penguins
    """
    with exit_codes():
        inference = infer_files(files, table_name)
    found = inference.as_dict()
    if not dry_run:
        with _registry(ctx) as reg:
            found["proposal"] = propose_inference(reg, inference)
    if schema_out is not None:                   # once the proposal (if any) is made
        with exit_codes():
            inference.write_schema(schema_out)

    def text() -> None:
        click.echo(f"{inference.table}: {inference.records} records, confidence {inference.confidence:.3f} "
                   f"({inference.risk} risk)")
        table([{"field": g.name, "from": g.key, "type": g.type, "confidence": f"{g.confidence:.3f}",
                "fit": f"{g.fitting}/{g.values}", "nullable": g.nullable,
                "not fitting": "; ".join(f"{w}: {v!r}" for w, v in g.misfits[:2])}
               for g in inference.fields],
              ["field", "from", "type", "confidence", "fit", "nullable", "not fitting"])
        if "proposal" in found:
            click.echo(_proposal_line(found["proposal"]))
    emit_object(found, fmt, text)


@tables_group.command("ingest")
@argument("files", nargs=-1, required=True, type=DATA_FILE, help="The files whose records to insert.")
@click.option("--table", "table_name", required=True, help="The table to insert into.")
@click.option("--atomic", is_flag=True, help="Insert nothing unless every record passes.")
@output_options("json", json_help="Print the report as JSON.")
@click.pass_context
def ingest_cmd(ctx: click.Context, files: tuple[Path, ...], table_name: str, atomic: bool, fmt: str) -> None:
    """Insert the records of FILES into TABLE through validation. Every
    refused record is reported by file, line (item, row) and field, and the
    others are inserted (with --atomic: none unless all pass); exit 1 if any
    was refused.

    Example:

    \b
        chronoledger tables --db grace.db ingest seattle-weather.csv --table seattle_weather
    """
    with _registry(ctx) as reg:
        report = ingest(reg, table_name, files, atomic=atomic)
    found = {"table": report.table, "read": report.read, "inserted": report.inserted,
             "refused_records": report.refused_records,
             "refused": [{"file": r.file, "where": r.where, "field": r.field, "reason": r.reason}
                         for r in report.refused]}
    emit_object(found, fmt, lambda: click.echo(str(report)))
    if report.refused:
        sys.exit(EXIT_CHECK_FAILED)


@tables_group.command("trust")
@argument("name", help="The table (it must have a trust_score field).")
@click.option("--where", "where", multiple=True, help="Only rows matching these filters (as query's --where).")
@click.option("--as-of", "as_of", default=None,
              help="The time freshness is measured at (ISO-8601; default now): the same time gives the same scores.")
@click.option("--explain", "explain", default=None, metavar="KEY",
              help="Show how the score of the row with this primary key is made, and change nothing.")
@output_options("json", json_help="Print the result as JSON.")
@click.pass_context
def trust_cmd(ctx: click.Context, name: str, where: tuple[str, ...], as_of: str | None, explain: str | None,
              fmt: str) -> None:
    """Recompute the trust scores of NAME from their five factors
    (completeness, source, freshness, usage, consistency; the table's weights
    or Grace's), or --explain one row's.

    Example:

    \b
        chronoledger tables --db grace.db trust memory_documents --as-of 2025-06-01T00:00:00Z
    """
    with _registry(ctx) as reg:
        if explain is not None:
            key: object = explain
            if reg.schema(name).primary_key.type == "integer":
                key = _read_json(explain, "--explain")
            found = reg.explain_trust(name, key, as_of=as_of)
        else:
            found = {"table": name, "updated": reg.recompute_trust(name, _where(where, reg.schema(name)) or None,
                                                                   as_of=as_of)}

    def text() -> None:
        if explain is None:
            click.echo(f"{name}: {found['updated']} trust scores recomputed")
            return
        click.echo(f"{name} {found['key']}: trust {found['trust_score']} as of {found['as_of']}")
        table([{"factor": k, "value": v["value"], "weight": v["weight"]} for k, v in found["factors"].items()],
              ["factor", "value", "weight"])
        for c in found["contradictions"]:
            click.echo(f"  open contradiction {c['id']}: {c['rule']} ({c['severity']}) with "
                       f"{c['row2'] if c['row1'] == str(found['key']) else c['row1']}: {c['detail']}")
    emit_object(found, fmt, text)


@tables_group.command("contradictions")
@argument("name", help="The table.")
@click.option("--status", type=click.Choice(["open", "resolved", "dismissed"]), default="open", show_default=True,
              help="Which recorded contradictions to list.")
@click.option("--detect/--no-detect", default=True, show_default=True,
              help="Run the table's rules first (new pairs recorded, pairs no longer found resolved).")
@output_options()
@click.pass_context
def contradictions_cmd(ctx: click.Context, name: str, status: str, detect: bool, fmt: str) -> None:
    """Find contradictions in NAME by the rules it declares (or Grace's for
    its tables) and list them. They are kept as rows: nothing is deleted,
    a pair no longer found is marked resolved.

    Example:

    \b
        chronoledger tables --db grace.db contradictions memory_documents
        chronoledger tables --db grace.db dismiss 12 --reason "two editions"
    """
    with _registry(ctx) as reg:
        if detect:
            run = reg.detect_contradictions(name)
            if fmt == "table":
                click.echo(f"{name}: rules {', '.join(run['rules']) or '(none)'}; {run['found']} found, {run['new']} "
                           f"new, {run['reopened']} reopened, {run['resolved']} resolved")
        rows = reg.contradictions(name, status=status)
    emit(rows, fmt, text=lambda found: table(found, ["id", "rule", "severity", "row1", "row2", "score", "detail",
                                                      "status", "found_at"]))


@tables_group.command("dismiss")
@argument("contradiction_id", type=int, help="The contradiction's id (from tables contradictions).")
@click.option("--reason", default="", help="Why it is not a contradiction (recorded).")
@output_options("json", json_help="Print the contradiction as JSON.")
@click.pass_context
def dismiss_cmd(ctx: click.Context, contradiction_id: int, reason: str, fmt: str) -> None:
    """Mark a contradiction dismissed: kept, no longer lowering trust, not opened again.

    Example:

    \b
        chronoledger tables --db grace.db --actor alice dismiss 12 --reason "two editions of one book"
    """
    with _registry(ctx) as reg:
        c = reg.dismiss_contradiction(contradiction_id, reason=reason)
    emit_object(c, fmt, lambda: click.echo(f"contradiction {c['id']} of {c['table_name']}: dismissed by "
                                           f"{c['closed_by']}"))


@tables_group.command("proposals")
@argument("name", required=False, help="Only the proposals about this table.")
@click.option("--status", type=click.Choice(["pending", "applied", "rejected", "superseded"]), default=None,
              help="Only the proposals in this state.")
@output_options()
@click.pass_context
def proposals_cmd(ctx: click.Context, name: str | None, status: str | None, fmt: str) -> None:
    """Proposals (about table NAME, or every table), oldest first.

    Example:

    \b
        chronoledger tables --db grace.db proposals my_notes --status pending
    """
    with _registry(ctx) as reg:
        found = reg.proposals(table=name, status=status)

    def text(rows):
        if not rows:
            click.echo("(none)")
        for p in rows:
            click.echo(_proposal_line(p))
    emit(found, fmt, text=text)


@tables_group.command("approve")
@argument("proposal_id", help="The proposal (see `tables proposals`).")
@click.option("--reason", default="", help="Why (recorded with the decision).")
@output_options("json", json_help="Print the proposal as JSON.")
@click.pass_context
def approve_cmd(ctx: click.Context, proposal_id: str, reason: str, fmt: str) -> None:
    """Apply a pending proposal (decided by --actor).

    Example:

    \b
        chronoledger tables --db grace.db --actor alice approve p-0192f1c3 --reason reviewed
    """
    with _registry(ctx) as reg:
        p = reg.approve(proposal_id, reason=reason)
    emit_object(p, fmt, lambda: click.echo(_proposal_line(p)))


@tables_group.command("reject")
@argument("proposal_id", help="The proposal (see `tables proposals`).")
@click.option("--reason", default="", help="Why (recorded with the decision).")
@output_options("json", json_help="Print the proposal as JSON.")
@click.pass_context
def reject_cmd(ctx: click.Context, proposal_id: str, reason: str, fmt: str) -> None:
    """Reject a pending proposal (recorded; nothing applied).

    Example:

    \b
        chronoledger tables --db grace.db --actor alice reject p-0192f1c3 --reason "too strict"
    """
    with _registry(ctx) as reg:
        p = reg.reject(proposal_id, reason=reason)
    emit_object(p, fmt, lambda: click.echo(_proposal_line(p)))


@tables_group.command("history")
@argument("name", help="The table.")
@output_options()
@click.pass_context
def history_cmd(ctx: click.Context, name: str, fmt: str) -> None:
    """Every schema applied to table NAME, and every proposal and decision about it, oldest first.

    Example:

    \b
        chronoledger tables --db grace.db history memory_self_healing_playbooks --nl
    """
    with _registry(ctx) as reg:
        events = reg.history(name)

    def text(rows):
        for e in rows:
            who = f" by {e['by']}" if e.get("by") else ""
            extra = e.get("reason") or (e.get("schema_hash") or "")[:12]
            click.echo(f"{e['at']}  {e['event']}{who}  {e.get('proposal_id') or ''}  {extra}".rstrip())
    emit(events, fmt, text=text)


@tables_group.command("serve")
@argument("db", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The registry database.")
@click.option("--port", type=int, default=8001, show_default=True, help="The port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on (0.0.0.0: every interface).")
def serve_cmd(db: Path, port: int, host: str) -> None:
    """Browse DB's tables as filterable, sortable grids in Datasette
    (read-only; install with: pip install 'chronoledger[ui]').

    Example:

    \b
        chronoledger tables serve grace.db --port 8001
    """
    base = _datasette()
    if base is None:
        click.echo("error: Datasette is not installed; pip install 'chronoledger[ui]' (or run: datasette "
                   f"{db})", err=True)
        sys.exit(EXIT_UNUSABLE)
    with tempfile.TemporaryDirectory(prefix="chronoledger-serve-") as tmp:
        # the registry's own tables (proposals, outbox, archive...) are hidden from the grids
        meta = Path(tmp) / "metadata.json"
        meta.write_text(json.dumps({"databases": {db.stem: {"tables": {
            name: {"hidden": True} for name in _internal_tables(db)}}}}))
        cmd = [*base, "serve", str(db), "--host", host, "--port", str(port), "--metadata", str(meta)]
        click.echo(" ".join(cmd), err=True)
        sys.exit(_run_until_stopped(cmd))


def _datasette() -> list[str] | None:
    """How to run Datasette: from this interpreter's environment when it has
    it (no activated virtualenv needed), else a ``datasette`` on PATH."""
    if importlib.util.find_spec("datasette") is not None:
        return [sys.executable, "-m", "datasette"]
    exe = shutil.which("datasette")
    return [exe] if exe is not None else None


def _internal_tables(db: Path) -> list[str]:
    try:
        conn = open_readonly(db)
    except ChronoledgerError:
        return []               # not a database we can read: Datasette says what it can of the file
    try:
        return [str(n) for (n,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND (name LIKE '\\_registry%' ESCAPE '\\' "
            "OR name LIKE 'sqlite\\_%' ESCAPE '\\') ORDER BY name")]
    except apsw.Error:
        return []
    finally:
        conn.close()


def _run_until_stopped(cmd: list[str]) -> int:
    """Run ``cmd`` and return its exit code; the server stops with this
    command: the signals that stop it are passed on, and on Linux the child
    is told to end if this process dies (even by SIGKILL)."""
    proc = subprocess.Popen(cmd, preexec_fn=_end_with_parent if sys.platform.startswith("linux") else None)
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, lambda num, _frame: proc.send_signal(num)) for sig in stops}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:
            proc.terminate()
            proc.wait()


def _end_with_parent() -> None:         # in the child, before exec: PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
