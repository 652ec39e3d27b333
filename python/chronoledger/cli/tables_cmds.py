"""``chronoledger tables ...``: YAML-declared tables, their rows and their governance.

Exit codes: 0 success; 1 ``validate`` found problems; 2 bad usage or a row
or filter the schema refuses; 3 the database cannot be opened or read, or
a schema change cannot be applied; 5 no such table, row or proposal.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from chronoledger.cli.output import EXIT_UNREADABLE, EXIT_USAGE, exit_codes, print_json, table
from chronoledger.errors import QueryError, ValidationError

EXIT_PROBLEMS = 1

DB = click.Path(dir_okay=False, path_type=Path)
FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group("tables")
@click.option("--db", "db", type=DB, envvar="CHRONOLEDGER_TABLES_DB", show_envvar=True,
              help="The registry database (created if missing).")
@click.option("--schemas", "schema_dirs", type=FOLDER, multiple=True,
              help="A folder of your schema files (repeatable); read after the packaged catalogue.")
@click.option("--actor", help="Who proposes and decides (default: your login name).")
@click.pass_context
def tables_group(ctx: click.Context, db: Path | None, schema_dirs: tuple[Path, ...], actor: str | None) -> None:
    """YAML-declared tables with validated writes, filtered queries and governance."""
    ctx.obj = {"db": db, "schemas": list(schema_dirs), "actor": actor}


@contextmanager
def _registry(ctx: click.Context):
    from chronoledger.tables import TableRegistry

    opts = ctx.obj
    if opts["db"] is None:
        click.echo("error: name the registry database with --db PATH (or CHRONOLEDGER_TABLES_DB)", err=True)
        sys.exit(EXIT_USAGE)
    with exit_codes((ValidationError, QueryError), database=opts["db"]):
        with TableRegistry(opts["db"], opts["schemas"], actor=opts["actor"]) as reg:
            yield reg


@tables_group.command("create")
@click.pass_context
def create_cmd(ctx: click.Context) -> None:
    """Load the catalogue and --schemas folders: create new tables, apply
    low-risk changes, queue the rest for approval."""
    with _registry(ctx) as reg:
        report = reg.load_all_schemas()
        click.echo(str(report))
    if report.problems:
        sys.exit(EXIT_PROBLEMS)


@tables_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """The tables, their row counts and pending proposals."""
    with _registry(ctx) as reg:
        pending = {}
        for p in reg.proposals(status="pending"):
            pending[p["table_name"]] = pending.get(p["table_name"], 0) + 1
        rows = []
        for name in reg.tables():
            s = reg.schema(name)
            rows.append({"table": name, "rows": reg.count_rows(name), "fields": len(s.fields),
                         "version": s.version, "immutable": s.immutable, "pending": pending.get(name, 0),
                         "description": s.description})
    if as_json:
        print_json(rows)
    else:
        table(rows, ["table", "rows", "fields", "version", "pending", "description"])


@tables_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the schema as JSON.")
@click.pass_context
def show_cmd(ctx: click.Context, name: str, as_json: bool) -> None:
    """A table's fields, rules, indexes and relationships."""
    with _registry(ctx) as reg:
        s = reg.schema(name)
        count = reg.count_rows(name)
    if as_json:
        print_json({**s.declared(), "schema_hash": s.hash, "rows": count})
        return
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
        click.echo(f"{r.field} -> {r.table}{'.' + r.references if r.references else ''}")


@tables_group.command("validate")
@click.argument("folder", type=FOLDER)
def validate_cmd(folder: Path) -> None:
    """Check the schema files of FOLDER (no database needed); exit 1 on any problem."""
    from importlib import resources

    from chronoledger.tables.registry import CATALOGUE
    from chronoledger.tables.schema import check_relationships, read_schema_file, schema_files

    problems, good = [], []
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
    bad = {p.table for p in check_relationships({**known, **schemas}) if p.table in schemas}
    problems += [str(p) for p in check_relationships({**known, **schemas}) if p.table in schemas]
    for name, schema in schemas.items():
        if name not in bad:
            good.append(f"{Path(schema.source).name}: table {name}, {len(schema.fields)} fields, "
                        f"{len(schema.indexes)} indexes")
    for line in good:
        click.echo(f"ok    {line}")
    for p in problems:
        click.echo(f"error {p}")
    click.echo(f"{len(good)} good, {len(problems)} problems")
    if problems:
        sys.exit(EXIT_PROBLEMS)


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
@click.argument("name")
@click.option("--json", "row", required=True, help="A row (a JSON object) or rows (a list); @FILE or - for stdin.")
@click.pass_context
def insert_cmd(ctx: click.Context, name: str, row: str) -> None:
    """Insert a row (or a list of rows, in one transaction); prints what was stored."""
    data = _read_json(row, "--json")
    with _registry(ctx) as reg:
        stored = reg.insert_rows(name, data) if isinstance(data, list) else reg.insert_row(name, data)
    print_json(stored)


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
@click.argument("name")
@click.option("--where", "where", multiple=True,
              help="FIELD=VALUE, FIELD>VALUE... (!= < <= > >= ~ for LIKE, @> for contains) or a JSON "
                   "filter object; repeat to AND them.")
@click.option("--order-by", "order_by", multiple=True, help="A field, -field for descending; repeatable.")
@click.option("--limit", type=click.IntRange(min=0), default=None)
@click.option("--offset", type=click.IntRange(min=0), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.pass_context
def query_cmd(ctx: click.Context, name: str, where: tuple[str, ...], order_by: tuple[str, ...], limit: int | None,
              offset: int | None, as_json: bool) -> None:
    """Rows of a table matching --where filters."""
    with _registry(ctx) as reg:
        filters = _where(where, reg.schema(name))
        rows = reg.query_rows(name, filters, list(order_by) or None, limit, offset)
        columns = [f.name for f in reg.schema(name).fields]
    if as_json:
        print_json(rows)
    else:
        table(rows, columns)


def _proposal_line(p: dict) -> str:
    changes = "; ".join(f"{c['kind']}{' ' + c['field'] if c.get('field') else ''} ({c['risk']})" for c in p["changes"])
    return (f"proposal {p['id']}: {p['kind']} {p['table_name']}, {p['risk']} risk, {p['status']}"
            + (f" by {p['decided_by']}" if p.get("decided_by") else "") + f"\n  changes: {changes}")


@tables_group.command("propose")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", default="", help="Why the change is wanted (recorded).")
@click.pass_context
def propose_cmd(ctx: click.Context, file: Path, reason: str) -> None:
    """Propose the table in FILE (new or changed): low risk is applied at once,
    medium and high wait for approve/reject."""
    with _registry(ctx) as reg:
        p = reg.propose_schema(file, reason=reason)
    click.echo(_proposal_line(p))


@tables_group.command("proposals")
@click.option("--status", type=click.Choice(["pending", "applied", "rejected", "superseded"]), default=None)
@click.option("--table", "table_name", default=None)
@click.pass_context
def proposals_cmd(ctx: click.Context, status: str | None, table_name: str | None) -> None:
    """Proposals, oldest first."""
    with _registry(ctx) as reg:
        found = reg.proposals(table=table_name, status=status)
    if not found:
        click.echo("(none)")
    for p in found:
        click.echo(_proposal_line(p))


@tables_group.command("approve")
@click.argument("proposal_id")
@click.option("--reason", default="", help="Why (recorded with the decision).")
@click.pass_context
def approve_cmd(ctx: click.Context, proposal_id: str, reason: str) -> None:
    """Apply a pending proposal."""
    with _registry(ctx) as reg:
        p = reg.approve(proposal_id, reason=reason)
    click.echo(_proposal_line(p))


@tables_group.command("reject")
@click.argument("proposal_id")
@click.option("--reason", default="", help="Why (recorded with the decision).")
@click.pass_context
def reject_cmd(ctx: click.Context, proposal_id: str, reason: str) -> None:
    """Reject a pending proposal (recorded; nothing applied)."""
    with _registry(ctx) as reg:
        p = reg.reject(proposal_id, reason=reason)
    click.echo(_proposal_line(p))


@tables_group.command("history")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history_cmd(ctx: click.Context, name: str, as_json: bool) -> None:
    """Every schema applied to a table, and every proposal and decision about it."""
    with _registry(ctx) as reg:
        events = reg.history(name)
    if as_json:
        print_json(events)
        return
    for e in events:
        who = f" by {e['by']}" if e.get("by") else ""
        extra = e.get("reason") or (e.get("schema_hash") or "")[:12]
        click.echo(f"{e['at']}  {e['event']}{who}  {e.get('proposal_id') or ''}  {extra}".rstrip())


@tables_group.command("serve")
@click.argument("db", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--port", type=int, default=8001)
@click.option("--host", default="127.0.0.1")
def serve_cmd(db: Path, port: int, host: str) -> None:
    """Browse DB's tables as filterable, sortable grids in Datasette
    (read-only; install with: pip install 'chronoledger[ui]')."""
    exe = shutil.which("datasette")
    if exe is None:
        click.echo("error: Datasette is not installed; pip install 'chronoledger[ui]' (or run: datasette "
                   f"{db})", err=True)
        sys.exit(EXIT_UNREADABLE)
    cmd = [exe, "serve", str(db), "--host", host, "--port", str(port)]
    click.echo(" ".join(cmd), err=True)
    sys.exit(subprocess.call(cmd))
