"""Printing for the command line: aligned tables and JSON."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import click

from chronoledger.errors import ChronoledgerError, NotFoundError, ValidationError

EXIT_USAGE = 2
EXIT_UNREADABLE = 3
EXIT_NOT_FOUND = 5


@contextmanager
def exit_codes(usage: tuple[type[BaseException], ...] = (ValidationError,),
               extra: tuple[type[BaseException], ...] = (), database=None):
    """Errors of a store as "error: ..." on stderr and the commands' exit
    codes: 5 the thing asked for does not exist, 2 a value given on the
    command line is refused (``usage``), 3 the store cannot be opened or read
    (or an ``extra`` error of the store's library).  With ``database``, an
    SQLite error the store let through (a failing disk, say) is exit 3 too,
    naming that file."""
    import apsw

    if database is not None:
        extra = (*extra, apsw.Error)
    try:
        yield
    except BrokenPipeError:
        raise
    except NotFoundError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_NOT_FOUND)
    except usage as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except (ChronoledgerError, OSError, *extra) as exc:
        if database is not None and isinstance(exc, apsw.Error):
            click.echo(f"error: {database}: the database cannot be used ({exc})", err=True)
        else:
            click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_UNREADABLE)


def cell(x) -> str:
    if isinstance(x, (dict, list)):
        x = json.dumps(x, ensure_ascii=False)
    s = "" if x is None else str(x)
    s = s.replace("\n", " ")
    return s if len(s) <= 60 else s[:57] + "..."


def table(rows: list[dict], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def print_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))
