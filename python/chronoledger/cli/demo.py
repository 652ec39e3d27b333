"""``chronoledger demo``: exercise the library end to end and say what it did
(the work is :mod:`chronoledger.demo`'s; this only parses and prints)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chronoledger import demo as library_demo
from chronoledger.cli.output import EXIT_CHECK_FAILED


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("chronoledger-demo"), show_default=True,
              help="Folder to write the demo's files into (created if missing).")
@click.option("--records", type=click.IntRange(1, 10_000_000), default=200_000, show_default=True,
              help="Records of the standard workload to generate.")
@click.option("--cycles", type=click.IntRange(1, 1_000_000), default=5_000, show_default=True,
              help="Cycles of the example learner to record into a chronicle.")
def demo(out_dir: Path, records: int, cycles: int) -> None:
    """Run chronoledger end to end: the core kernels, a recorded, verified and replayed chronicle, the
    agent runtime store, a user folder mirrored into SQLite with its metastudy, YAML-declared tables with
    governance, and a day of the world simulation, replayed from its log.

    Example:

    \b
        chronoledger demo --out /tmp/chronoledger-demo --records 50000
    """

    for i, section in enumerate(library_demo.steps(out_dir, records=records, cycles=cycles)):
        if i:
            click.echo()
        for line in section.lines:
            click.echo(line)
        if section.problem is not None:
            click.echo(f"error: {section.problem}", err=True)
            sys.exit(EXIT_CHECK_FAILED)
