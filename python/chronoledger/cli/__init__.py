"""The ``chronoledger`` command: one click group, one subgroup per subsystem."""

from __future__ import annotations

import os
import sys

import click

from chronoledger import __version__
from chronoledger.cli.chronicle_cmds import chronicle_group
from chronoledger.cli.core_cmds import core_group
from chronoledger.cli.demo import demo
from chronoledger.cli.runtime_cmds import runtime_group
from chronoledger.cli.sequence_cmds import sequence_group
from chronoledger.cli.tables_cmds import tables_group
from chronoledger.cli.world_cmds import world_group


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # the reader of our output went away (`... | head`): not an error (click would exit 1);
            # point stdout at /dev/null so the interpreter's final flush is quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="chronoledger")
def cli() -> None:
    """chronoledger: a checksummed, replayable ledger and the stores beside it."""


cli.add_command(core_group)
cli.add_command(chronicle_group)
cli.add_command(runtime_group)
cli.add_command(sequence_group)
cli.add_command(tables_group)
cli.add_command(world_group)
cli.add_command(demo)


def main() -> None:
    """Console-script entry point."""
    cli()
