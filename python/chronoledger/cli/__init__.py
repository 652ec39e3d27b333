"""The ``chronoledger`` command: one click group, one subgroup per subsystem."""

from __future__ import annotations

import importlib

import click

from chronoledger._version import __version__
from chronoledger.cli.output import Group, verbosity_options

#: name -> "module:attribute" of each subcommand.  A subsystem's module (and the
#: subsystem it drives) is imported when its command is named, so
#: `chronoledger chronicle verify` does not load the world simulation, the
#: tables and the sequence mirror (about 180 ms of start-up).
SUBCOMMANDS = {
    "core": "chronoledger.cli.core_cmds:core_group",
    "chronicle": "chronoledger.cli.chronicle_cmds:chronicle_group",
    "runtime": "chronoledger.cli.runtime_cmds:runtime_group",
    "sequence": "chronoledger.cli.sequence_cmds:sequence_group",
    "tables": "chronoledger.cli.tables_cmds:tables_group",
    "world": "chronoledger.cli.world_cmds:world_group",
    "query": "chronoledger.cli.dataset_cmds:query_cmd",
    "serve": "chronoledger.cli.serve_cmds:serve_cmd",
    "demo": "chronoledger.cli.demo:demo",
}


class LazyGroup(Group):
    """The root group, its subcommands loaded on first use (click's
    documented pattern for lazily loaded subcommands)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*SUBCOMMANDS, *(name for name in super().list_commands(ctx) if name not in SUBCOMMANDS)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in SUBCOMMANDS and name not in self.commands:
            module, attr = SUBCOMMANDS[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="chronoledger")
@verbosity_options
def cli() -> None:
    """chronoledger: a checksummed, replayable ledger and the stores beside it.

    Every command that prints rows takes --table (the default), --json, --nl,
    --csv or --tsv; docs/cli.md lists the commands and their exit codes.

    Example:

    \b
        chronoledger demo --out /tmp/chronoledger-demo
        chronoledger -v chronicle verify /tmp/chronoledger-demo/learner.cmeta
    """




def main() -> None:
    """Console-script entry point."""
    cli(prog_name="chronoledger")
