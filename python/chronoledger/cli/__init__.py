"""The ``chronoledger`` command: one click group, one subgroup per subsystem."""

from __future__ import annotations

import click

from chronoledger import __version__
from chronoledger.cli.chronicle_cmds import chronicle_group
from chronoledger.cli.core_cmds import core_group
from chronoledger.cli.demo import demo


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="chronoledger")
def cli() -> None:
    """chronoledger: a checksummed, replayable ledger and the stores beside it."""


cli.add_command(core_group)
cli.add_command(chronicle_group)
cli.add_command(demo)


def main() -> None:
    """Console-script entry point."""
    cli()
