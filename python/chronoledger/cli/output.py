"""What every command shares: how it prints, how it fails, how it logs.

- Output: ``output_options`` adds the output flags (``--table``, ``--json``,
  ``--nl``, ``--csv``, ``--tsv``) to a command and hands it ``fmt``;
  ``emit`` prints rows (a list of dicts) in that format, ``emit_object`` one
  object (a report, a stats mapping).  ``--table`` is the default whether or
  not stdout is a terminal, so what a pipe receives is what a person saw;
  scripts ask for ``--json``, ``--nl``, ``--csv`` or ``--tsv``.
- Exit codes: ``EXIT_CODES`` (the documented table) and ``ERROR_EXIT_CODES``
  (the exception hierarchy of :mod:`chronoledger.errors` -> a code) are the
  one mapping; ``exit_codes`` (a context manager) and ``Group`` (every
  group's class) apply it.  docs/cli.md prints the same table.
- Logging: ``verbosity_options`` (``-v``/``-q``) set the level of the
  ``chronoledger`` logger, whose records go to stderr.
"""

from __future__ import annotations

import csv
import functools
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager

import apsw
import click

from chronoledger import errors
from chronoledger.errors import (ChronoledgerError, ConfigError, ExistsError, MissingDependencyError, NotFoundError, OrderError,
                                 QuantizationError, QueryError, ValidationError)

# --- exit codes ----------------------------------------------------------------------------------

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_UNUSABLE = 3
EXIT_REFUSED = 4
EXIT_NOT_FOUND = 5
EXIT_INTERRUPTED = 130

#: Every exit code of ``chronoledger`` and ``sequence``, and what it means.
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "Done. Also when the reader of the output went away early (`... | head`).",
    EXIT_CHECK_FAILED: "A check found problems, and the output says which: `chronicle verify` or `audit` found "
                       "damage, `chronicle replay` a divergence, `tables validate` or `create` a bad schema file, "
                       "`sequence sync` (or `listen --once`, or the sync `review` runs) skipped malformed files.",
    EXIT_USAGE: "The command line is wrong: an unknown option, a missing argument or file, a value, row, filter, "
                "config, scenario or query refused, an output file that exists (without `--force`), a replay "
                "`--step` that cannot be imported or that raised (the message names the record), or an optional "
                "package the command needs is not installed (the message says which extra installs it).",
    EXIT_UNUSABLE: "A file, folder or database cannot be read or used: missing, damaged, locked by a writer, "
                   "not what the command reads, a newer schema, a disk or network failure, a model that failed.",
    EXIT_REFUSED: "The data was read and the command refuses to go on: `chronicle recover` will not repair damage "
                  "its `--mode` does not cover; `world replay` found the log does not match its run.",
    EXIT_NOT_FOUND: "The thing asked for does not exist: no such table, row, session, run, proposal, profile or day.",
    EXIT_INTERRUPTED: "Interrupted (Ctrl-C).",
}

#: The exception hierarchy -> exit codes, most specific first (the first match wins).
ERROR_EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (NotFoundError, EXIT_NOT_FOUND),
    (MissingDependencyError, EXIT_USAGE),
    (ValidationError, EXIT_USAGE),
    (ConfigError, EXIT_USAGE),
    (QueryError, EXIT_USAGE),
    (OrderError, EXIT_USAGE),
    (QuantizationError, EXIT_USAGE),
    (ExistsError, EXIT_USAGE),               # an output that exists, without --force
    (ChronoledgerError, EXIT_UNUSABLE),     # CorruptDataError, SchemaError, UnsupportedError, ... and any other
    (OSError, EXIT_UNUSABLE),
    (apsw.Error, EXIT_UNUSABLE),
    (KeyboardInterrupt, EXIT_INTERRUPTED),
)


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code of an error, or None for one outside the table (a bug:
    let it show its traceback).  A broken pipe is not an error here."""
    return None if isinstance(exc, BrokenPipeError) else exit_code_for_class(type(exc))


def exit_code_for_class(kind: type[BaseException]) -> int | None:
    """The exit code of an error class (the first entry of ``ERROR_EXIT_CODES`` it is a subclass of)."""
    for parent, code in ERROR_EXIT_CODES:
        if issubclass(kind, parent):
            return code
    return None


def exit_code_table() -> list[tuple[int, str, list[str]]]:
    """(code, meaning, the errors that exit with it) for every exit code: the
    table docs/cli.md prints.  The errors are every public exception of
    :mod:`chronoledger.errors`, by the class name, and the other errors of
    ``ERROR_EXIT_CODES`` (OSError, SQLite's, Ctrl-C)."""
    public = [getattr(errors, name) for name in errors.__all__]
    public = [c for c in public if isinstance(c, type) and issubclass(c, BaseException)]
    others = [kind for kind, _ in ERROR_EXIT_CODES if kind not in public]
    by_code: dict[int, list[str]] = {code: [] for code in EXIT_CODES}
    for kind in public + others:
        code = exit_code_for_class(kind)
        if code is not None:
            name = "apsw.Error (SQLite)" if kind is apsw.Error else kind.__name__
            by_code[code].append(name)
    return [(code, meaning, by_code[code]) for code, meaning in EXIT_CODES.items()]


def error_message(exc: BaseException, database=None) -> str:
    """``exc`` as the line printed after ``error: ``."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if database is not None and isinstance(exc, apsw.Error):
        return f"{database}: the database cannot be used ({exc})"
    return str(exc) or type(exc).__name__


def fail(exc: BaseException, code: int, database=None):
    click.echo(f"error: {error_message(exc, database)}", err=True)
    sys.exit(code)


@contextmanager
def exit_codes(database=None, refused: tuple[type[BaseException], ...] = ()):
    """Errors of the body as "error: ..." on stderr and the exit code
    ``ERROR_EXIT_CODES`` gives them.  With ``database``, an SQLite error the
    library let through (a failing disk, say) names that file.  ``refused``:
    the errors that mean the command refuses to go on (exit 4; ``chronicle
    recover``'s damage that its mode does not repair)."""
    try:
        yield
    except BaseException as exc:        # noqa: BLE001 - anything outside the table is raised again
        code = EXIT_REFUSED if refused and isinstance(exc, refused) else exit_code_for(exc)
        if code is None:
            raise
        fail(exc, code, database)


def _quiet_stdout() -> None:
    """The reader of our output went away (``... | head``): point stdout at
    /dev/null so the interpreter's last flush is quiet."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):       # no real stdout (a test runner's): nothing to quiet
        pass


# --- commands and groups -------------------------------------------------------------------------

class Argument(click.Argument):
    """A positional argument with a help text (click < 8.5 has none): shown
    under "Positional arguments" in --help and in docs/cli.md."""

    def __init__(self, param_decls, help: str | None = None, **attrs):
        super().__init__(param_decls, **attrs)
        self.help = help


def argument_label(p: click.Argument) -> str:
    """How an argument shows in usage and help: FILE, [NAME], FILES..."""
    name = p.metavar or (p.name or "").upper()
    if p.nargs == -1:
        name += "..."
    return name if p.required else f"[{name}]"


def argument(*param_decls, help: str, **attrs):
    """``click.argument`` with a help text."""
    return click.argument(*param_decls, cls=Argument, help=help, **attrs)


class Command(click.Command):
    def format_options(self, ctx: click.Context, formatter) -> None:
        if not hasattr(click.Command, "format_arguments"):        # click < 8.5: list the arguments ourselves
            rows = [(argument_label(p), inspect.cleandoc(getattr(p, "help", None) or ""))
                    for p in self.get_params(ctx) if isinstance(p, click.Argument)]
            if rows:
                with formatter.section("Positional arguments"):
                    formatter.write_dl(rows)
        super().format_options(ctx, formatter)


class Group(click.Group):
    """Every group's class: its commands are :class:`Command` s, an error of
    the hierarchy a command let through exits with its code, and a reader
    that closed our output early (``| head``) is not an error (click would
    exit 1)."""

    command_class = Command
    group_class = type          # its subgroups are Groups too

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _quiet_stdout()
            sys.exit(EXIT_OK)
        except (Exception, KeyboardInterrupt) as exc:
            code = exit_code_for(exc)
            if code is None:
                raise
            fail(exc, code)



# --- output --------------------------------------------------------------------------------------

FORMATS = ("table", "json", "nl", "csv", "tsv")

FORMAT_HELP = {
    "table": "Print a table (or text) for people: the default, also when the output is not a terminal.",
    "json": "Print the rows as one JSON array.",
    "nl": "Print one JSON object per line (JSON lines).",
    "csv": "Print CSV, with a header line.",
    "tsv": "Print tab-separated values, with a header line.",
}


def output_options(*formats: str, json_help: str | None = None, legacy_format: bool = False):
    """Add the output flags (all of ``FORMATS``, or those named) to a command;
    the command receives the chosen one as ``fmt`` ("table" when none is
    given).  ``legacy_format``: also take the older ``--format NAME``
    (hidden; ``jsonl`` is ``--nl``)."""
    formats = formats or FORMATS
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown output format(s) {sorted(unknown)}")

    def decorate(f):
        @functools.wraps(f)
        def command(*args, **kwargs):
            chosen = [name for name in formats if kwargs.pop(f"out_{name}", False)]
            if legacy_format:
                old = kwargs.pop("out_format", None)
                if old is not None:
                    chosen.append("nl" if old == "jsonl" else old)
            chosen = list(dict.fromkeys(chosen))
            if len(chosen) > 1:
                raise click.UsageError(f"choose one output format, not {' and '.join('--' + c for c in chosen)}")
            kwargs["fmt"] = chosen[0] if chosen else "table"
            return f(*args, **kwargs)

        if legacy_format:
            command = click.option("--format", "out_format", hidden=True,
                                   type=click.Choice(["table", "json", "jsonl", "nl", "csv", "tsv"]),
                                   help="The older spelling of the output options: --format csv is --csv.")(command)
        for name in reversed(formats):
            text = json_help if name == "json" and json_help else FORMAT_HELP[name]
            if formats == ("json",) and not json_help:
                text = "Print the result as JSON."
            command = click.option(f"--{name}", f"out_{name}", is_flag=True, help=text)(command)
        return command
    return decorate


def _json(value, indent=None) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, indent=indent)


def cell(x) -> str:
    """A value in a table: one line, at most 60 characters."""
    if isinstance(x, (dict, list)):
        x = _json(x)
    s = "" if x is None else str(x)
    s = s.replace("\n", " ")
    return s if len(s) <= 60 else s[:57] + "..."


def _flat(x):
    """A value in a CSV/TSV cell: JSON for lists, dicts and booleans, empty for None."""
    if x is None:
        return ""
    if isinstance(x, (dict, list, tuple, bool)):
        return _json(x)
    return x


def _values(row, columns: list[str]) -> list:
    return [row.get(c) for c in columns] if isinstance(row, Mapping) else list(row)


def _as_dict(row, columns: list[str] | None) -> dict:
    return dict(row) if isinstance(row, Mapping) else dict(zip(columns or [], row))


def _columns(rows: list) -> list[str]:
    """Every key of the rows, in the order first seen."""
    seen: dict[str, None] = {}
    for r in rows:
        if isinstance(r, Mapping):
            seen.update(dict.fromkeys(r))
    return list(seen)


def table(rows: Iterable, columns: list[str] | None = None) -> None:
    """An aligned table of ``columns`` (default: every key), or ``(none)``."""
    rows = list(rows)
    if not rows:
        click.echo("(none)")
        return
    columns = columns if columns is not None else _columns(rows)
    cells = [[cell(v) for v in _values(r, columns)] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def write_rows(stream, rows: Iterable, fmt: str, columns: list[str] | None = None) -> int:
    """Write rows (dicts, or sequences in the order of ``columns``) to
    ``stream`` as ``json`` (one array, a row a line), ``nl`` (a JSON object a
    line), ``csv`` or ``tsv`` (a header line, then a line a row; the header
    is ``columns``, or the first row's keys).  Streams: a row is written as
    soon as it comes.  Returns the number of rows."""
    n = 0
    if fmt == "json":
        for row in rows:
            stream.write(("[" if n == 0 else ",\n ") + _json(_as_dict(row, columns)))
            n += 1
        stream.write("[]\n" if n == 0 else "]\n")
    elif fmt == "nl":
        for row in rows:
            stream.write(_json(_as_dict(row, columns)) + "\n")
            n += 1
    elif fmt in ("csv", "tsv"):
        it: Iterable = rows
        if columns is None:             # every key of every row: the rows are read first
            it = list(rows)
            if not it:
                return 0
            columns = _columns(it)
        writer = csv.writer(stream, dialect="excel-tab" if fmt == "tsv" else "excel", lineterminator="\n")
        writer.writerow(columns)
        for row in it:
            writer.writerow([_flat(v) for v in _values(row, columns)])
            n += 1
    else:
        raise ValueError(f"unknown output format {fmt!r}")
    return n


def emit(rows: Iterable, fmt: str, columns: list[str] | None = None, *,
         text: Callable[[Iterable], None] | None = None, document=None) -> None:
    """Print rows in the format ``output_options`` chose.  ``table``: the
    command's own layout ``text(rows)`` if it has one, else an aligned table
    of ``columns``.  ``json``: ``document`` if given (a command whose JSON is
    an object holding the rows), else the rows as one array.  ``nl``,
    ``csv``, ``tsv``: the rows, as :func:`write_rows` writes them."""
    if fmt == "table":
        if text is not None:
            text(rows)                  # as given: a layout of its own may print each row as it comes
        else:
            table(rows, columns)
    elif fmt == "json" and document is not None:
        print_json(document)
    else:
        write_rows(sys.stdout, rows, fmt, columns)
        sys.stdout.flush()


def emit_object(obj, fmt: str, text: Callable[[], None]) -> None:
    """Print one object: ``text()`` for people, or (``--json``) the object as JSON."""
    if fmt == "table":
        text()
    else:
        print_json(obj)


def print_json(obj) -> None:
    click.echo(_json(obj, indent=2))


# --- logging and progress ------------------------------------------------------------------------

LOGGER = "chronoledger"


class _StderrHandler(logging.Handler):
    """Log records on stderr, as the CLI's other messages are ("warning: ...")."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:           # noqa: BLE001 - logging never breaks the command
            self.handleError(record)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        name = f"{record.name}: " if logging.getLogger(LOGGER).level <= logging.DEBUG else ""
        return f"{record.levelname.lower()}: {name}{text}"


def set_verbosity(verbose: int = 0, quiet: int = 0) -> int:
    """Set the ``chronoledger`` logger's level (WARNING; -v INFO, -vv DEBUG;
    -q ERROR, -qq CRITICAL) and give it a handler printing to stderr.
    Returns the level."""
    level = min(max(logging.WARNING - 10 * verbose + 10 * quiet, logging.DEBUG), logging.CRITICAL)
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_Formatter("%(message)s"))
        logger.addHandler(handler)
    return level


def _reset_logging(level: int) -> None:
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level)
    for h in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(h)


def verbosity_options(f):
    """``-v``/``-q`` on a group: the level of the ``chronoledger`` logger for
    the commands under it (put back when the command is done, so a program
    that runs the CLI in-process keeps its own logging)."""

    @functools.wraps(f)
    def group(*args, verbose: int, quiet: int, **kwargs):
        ctx = click.get_current_context()
        outer = ctx.meta.get("chronoledger.verbosity")            # meta is shared by nested contexts
        if not outer or verbose or quiet:           # a nested group keeps the outer level unless told
            previous = logging.getLogger(LOGGER).level
            set_verbosity(verbose, quiet)
            if not outer:
                ctx.call_on_close(lambda: _reset_logging(previous))
        ctx.meta["chronoledger.verbosity"] = True
        return f(*args, **kwargs)

    group = click.option("-q", "--quiet", count=True,
                         help="Log less: -q errors only (and no progress bars), -qq nothing but critical.")(group)
    group = click.option("-v", "--verbose", count=True,
                         help="Log more on stderr: -v progress notes (INFO), -vv everything (DEBUG).")(group)
    return group


def progress_wanted() -> bool:
    """Whether a long operation shows a progress bar: only on a terminal, and not under -q."""
    return sys.stderr.isatty() and logging.getLogger(LOGGER).getEffectiveLevel() <= logging.WARNING
