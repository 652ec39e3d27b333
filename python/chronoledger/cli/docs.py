"""docs/cli.md, generated from the commands themselves.

``render()`` walks the click groups and writes, for every command, its
usage, help text, arguments and options, with the output options, the
exit-code table (``output.exit_code_table``), logging and shell completion.
It reads click's data (parameters, help strings), never the rendered
``--help``, so the text is the same on every click version and terminal
width.  ``python tools/gen_cli_docs.py`` writes docs/cli.md;
tests/test_cli_docs.py checks that the committed file is current.
"""

from __future__ import annotations

import inspect
import re

import click

from chronoledger.cli import cli
from chronoledger.cli.output import FORMAT_HELP, FORMATS, argument_label, exit_code_table

REGENERATE = "python tools/gen_cli_docs.py"


def walk(cmd: click.Command, path: tuple[str, ...]):
    """(path, command) for ``cmd`` and every command under it, in the order they were added."""
    yield path, cmd
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        # list_commands' order (and it loads the root's lazily loaded subcommands): the order of
        # cmd.commands is the order they were loaded in, which an earlier command's use can change
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None:
                yield from walk(sub, (*path, name))


def help_text(cmd_or_param) -> str:
    """The help as written (click 8.1 keeps the raw docstring, later ones clean it)."""
    return inspect.cleandoc(getattr(cmd_or_param, "help", None) or "").partition("\f")[0]


def _esc(text: str) -> str:
    return text.replace("*", r"\*")


def _cell(text: str) -> str:
    return _esc(text).replace("|", r"\|")


def _code(text: str) -> str:
    """Code in a table cell (GitHub reads an escaped pipe there as a pipe)."""
    return "`" + text.replace("|", r"\|") + "`"


def _markdown(help_: str) -> str:
    """Help text as Markdown: a paragraph is joined into one line; a ``\\b``
    paragraph (lines kept as written: the examples) is a code block."""
    out = []
    for para in re.split(r"\n\s*\n", help_.strip()):
        lines = para.splitlines()
        if lines and lines[0].strip() == "\b":
            out.append("```\n" + inspect.cleandoc("\n".join(lines[1:])) + "\n```")
        else:
            out.append(_esc(" ".join(line.strip() for line in lines)))
    return "\n\n".join(out)


def _metavar(p: click.Parameter) -> str:
    if p.metavar:
        return p.metavar
    t = p.type
    if isinstance(t, click.Choice):
        return "[" + "|".join(str(c) for c in t.choices) + "]"
    if isinstance(t, click.Path):
        return "FILE" if not t.dir_okay else "DIR" if not t.file_okay else "PATH"
    if isinstance(t, click.DateTime):
        return "|".join(f.replace("%Y", "YYYY").replace("%m", "MM").replace("%d", "DD") for f in t.formats)
    if isinstance(t, click.types.IntParamType):
        return "INTEGER"
    if isinstance(t, click.types.FloatParamType):
        return "NUMBER"
    return "TEXT"


def _option_names(p: click.Option) -> str:
    opts = sorted(p.opts, key=lambda o: len(o) - len(o.lstrip("-")))      # -o before --output
    names = ", ".join(opts)
    if p.secondary_opts:
        names += " / " + ", ".join(p.secondary_opts)
    if not (p.is_flag or p.count):
        names += f" {_metavar(p)}"
    return names


def _range(t) -> str:
    low, high = getattr(t, "min", None), getattr(t, "max", None)
    if low is not None and high is not None:
        return f"From {low} to {high}."
    if low is not None:
        return f"{'More than' if getattr(t, 'min_open', False) else 'At least'} {low}."
    if high is not None:
        return f"{'Less than' if getattr(t, 'max_open', False) else 'At most'} {high}."
    return ""


def _option_notes(p: click.Option) -> list[str]:
    notes = []
    if isinstance(p.type, (click.IntRange, click.FloatRange)) and not p.count:
        notes.append(_range(p.type))
    if p.required:
        notes.append("Required.")
    if p.multiple:
        notes.append("Repeatable.")
    if p.show_default:
        if p.secondary_opts:
            shown = (p.opts if p.default else p.secondary_opts)[0]
        else:
            shown = str(p.default)
        notes.append(f"Default: `{shown}`.")
    if p.envvar and p.show_envvar:
        notes.append(f"Environment: `{p.envvar}`.")
    return [n for n in notes if n]


def _usage(path: tuple[str, ...], cmd: click.Command) -> str:
    pieces = [*path, "[OPTIONS]"]
    pieces += [argument_label(p) for p in cmd.params if isinstance(p, click.Argument)]
    if isinstance(cmd, click.Group):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def command_section(path: tuple[str, ...], cmd: click.Command) -> str:
    out = [f"### `{' '.join(path)}`", "", "```", _usage(path, cmd), "```", "", _markdown(help_text(cmd)), ""]
    rows = []
    for p in cmd.params:
        if getattr(p, "hidden", False):
            continue
        if isinstance(p, click.Argument):
            rows.append((_code(argument_label(p)), _cell(help_text(p))))
        elif isinstance(p, click.Option):
            rows.append((_code(_option_names(p)), _cell(" ".join([help_text(p), *_option_notes(p)]).strip())))
    if isinstance(cmd, click.Group):
        subs = ", ".join(f"[`{name}`](#{_anchor((*path, name))})" for name in cmd.commands)
        out += [f"Commands: {subs}.", ""]
    if rows:
        out += ["| argument or option | what it does |", "| --- | --- |"]
        out += [f"| {a} | {b} |" for a, b in rows]
        out.append("")
    return "\n".join(out)


def _anchor(path: tuple[str, ...]) -> str:
    """GitHub's anchor of a ``### `a b c` `` heading."""
    return re.sub(r"[^a-z0-9 _-]", "", " ".join(path).lower()).replace(" ", "-")


def _exit_codes() -> str:
    rows = ["| code | meaning | errors that exit with it |", "| --- | --- | --- |"]
    for code, meaning, errors in exit_code_table():
        rows.append(f"| {code} | {_cell(meaning)} | {', '.join(f'`{e}`' for e in errors)} |")
    return "\n".join(rows)


def _output_options() -> str:
    rows = ["| option | prints |", "| --- | --- |"]
    rows += [f"| `--{name}` | {_cell(FORMAT_HELP[name])} |" for name in FORMATS]
    return "\n".join(rows)


INTRO = """\
# Command line

<!-- Generated from the commands by `{regenerate}`; do not edit by hand. -->

Two console scripts: `chronoledger`, one group per subsystem, and `sequence`,
which is the same as `chronoledger sequence`. `python -m chronoledger.cli` is
`chronoledger`. Every command takes `-h`/`--help`.

## Output

Every command that prints rows or records takes the same output options, as
sqlite-utils does; a command that prints one object (a report, a schema,
statistics) takes `--json`. `--json` is always an output option, never an
input.

{output_options}

`--table` is the default whether or not the output is a terminal: a pipe
gets what a person saw, and a script asks for a format by name. A table
shows each value on one line, cut to 60 characters; `--json`, `--nl`,
`--csv` and `--tsv` give every value whole. `--json` prints an array with
one row a line (a few commands whose rows sit inside an object print the
object: their `--json` help says so); `--nl` one JSON object a line; `--csv`
and `--tsv` a header line, then a line a row, lists and objects as JSON
text and an absent value as an empty cell. Rows stream as they are read.
`chronicle query` and `sequence data` still take the older `--format NAME`.

## Exit codes

One table, for every command of both scripts (`chronoledger.cli.output`).
An error prints `error: what failed: why` on stderr.

{exit_codes}

## Logging

`-v`/`-q` on `chronoledger` (and on `sequence`) set the level of the
`chronoledger` logger, whose records go to stderr: WARNING by default,
`-v` INFO, `-vv` DEBUG (with the logger's name), `-q` ERROR, `-qq`
CRITICAL. Long operations (`chronicle audit` and `replay`, `world run`,
`sequence sync`) show a progress bar on stderr when it is a terminal, and
not under `-q`.

```
chronoledger -v tables --db grace.db create
sequence -q sync --user ~/Chronos
```

## Shell completion

Both scripts complete commands, options and choices in bash (4.4 or later),
zsh and fish through click. Add the line for your shell to its start-up
file:

```
# bash: ~/.bashrc
eval "$(_CHRONOLEDGER_COMPLETE=bash_source chronoledger)"
eval "$(_SEQUENCE_COMPLETE=bash_source sequence)"
# zsh: ~/.zshrc
eval "$(_CHRONOLEDGER_COMPLETE=zsh_source chronoledger)"
eval "$(_SEQUENCE_COMPLETE=zsh_source sequence)"
# fish: ~/.config/fish/completions/chronoledger.fish and sequence.fish
_CHRONOLEDGER_COMPLETE=fish_source chronoledger | source
_SEQUENCE_COMPLETE=fish_source sequence | source
```

To start faster, write the script to a file once
(`_CHRONOLEDGER_COMPLETE=bash_source chronoledger > ~/.chronoledger-complete.bash`)
and source that file instead.

## Commands

`sequence ...` is `chronoledger sequence ...`: its commands are listed
once, under `chronoledger sequence`.
"""


def render() -> str:
    """docs/cli.md."""

    commands = list(walk(cli, ("chronoledger",)))
    index = "\n".join(f"- [`{' '.join(path)}`](#{_anchor(path)}): "
                      f"{_esc(help_text(cmd).split(chr(10) + chr(10))[0].replace(chr(10), ' '))}"
                      for path, cmd in commands)
    text = INTRO.format(regenerate=REGENERATE, output_options=_output_options(), exit_codes=_exit_codes())
    text += "\n" + index + "\n\n" + "\n".join(command_section(path, cmd) for path, cmd in commands)
    return text.rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render(), end="")
