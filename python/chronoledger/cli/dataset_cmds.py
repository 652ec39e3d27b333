"""``chronoledger query``: SQL over many runs at once (a dataset of chronicles, DuckDB)."""

from __future__ import annotations

import warnings

import click

from chronoledger.cli.output import Command, argument, emit, exit_codes, output_options
from chronoledger.dataset import dataset
from chronoledger.dataset.sql import TABLE, query


@click.command("query", cls=Command)
@argument("sql", help=f"The query; it calls the runs' records {TABLE}.")
@argument("sources", nargs=-1, required=True,
          help="Chronicles: folders (every .cmeta below), globs, files, or URLs (s3://bucket/runs/, any fsspec "
               "filesystem; credentials from its usual environment).")
@click.option("--start", type=int, help="Only records at or after this timestamp (microseconds).")
@click.option("--end", type=int, help="Only records before this timestamp (microseconds).")
@click.option("--phase", "phases", multiple=True, help="Only records of this phase (or event type); repeatable.")
@click.option("--skip-damaged", is_flag=True, help="Leave out a damaged run (named on stderr) instead of failing.")
@output_options()
def query_cmd(sql: str, sources: tuple[str, ...], start: int | None, end: int | None, phases: tuple[str, ...],
              skip_damaged: bool, fmt: str) -> None:
    """Answer SQL over many runs at once: every record of SOURCES as one
    table called runs, with a run column and each run's seed, tags and
    config keys (config."lr"...). Only the columns the query names are
    decoded, and --start, --end and --phase skip whole blocks.

    Example:

    \b
        chronoledger query "SELECT run, min(loss_value) FROM runs GROUP BY run ORDER BY 2" runs/
        chronoledger query 'SELECT "config.lr", avg(coherence) FROM runs GROUP BY 1' 'runs/**/*.cmeta' --csv
    """
    with exit_codes(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)        # each skipped run is said once, below
        ds = dataset(list(sources), start=start, end=end, phases=list(phases) or None,
                     on_damage="skip" if skip_damaged else "raise")
        table = query(ds, sql)
        for run, why in ds.skipped:
            click.echo(f"skipped {run}: {why}", err=True)
    rows = table.to_pylist()
    emit(rows, fmt, table.column_names)
