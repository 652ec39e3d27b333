"""``chronoledger chronicle ...``: inspect, verify, query, replay, recover, export, stats, plot,
tensorboard export|import.

Exit codes are those of ``cli.output`` (docs/cli.md): 1 a check failed
(verify, audit, replay found a divergence); 2 bad usage, also a replay step
that raised and an export to an existing file without --force; 3 the file cannot be read
(missing, corrupt beyond the chosen recovery mode, locked by a writer); 4
recovery refused (damage the chosen mode does not repair).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np

from chronoledger import chronicle as chr_
from chronoledger.chronicle import format as cformat
from chronoledger.chronicle.export import EXTENSIONS, FORMATS
from chronoledger.chronicle import plot as chr_plot
from chronoledger.chronicle import tensorboard as chr_tb
from chronoledger.chronicle.replay import step_traceback
from chronoledger.chronicle.stats import column_stats
from chronoledger.cli.output import (EXIT_CHECK_FAILED, Group, argument, emit, emit_object, exit_codes,
                                    output_options, progress_wanted)
from chronoledger.dataset import dataset
from chronoledger.dataset.export import export_dataset
from chronoledger.errors import ChronoledgerError, CorruptDataError, StepError

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_logger = logging.getLogger("chronoledger.chronicle")


def file_argument(f):
    return argument("file", type=FILE, help="The chronicle (.cmeta file).")(f)


def _warn_damage(file: Path, layout) -> None:
    """Say on stderr what a tolerant read left out, so lost records never look like an empty range."""
    torn = layout.torn_tail
    if torn is not None:
        click.echo(f"warning: {file}: torn tail at offset {torn.start} ({torn.reason}); records after it are not "
                   f"read; `chronoledger chronicle recover {file}` truncates it", err=True)
    footer = layout.damaged_footer
    if footer is not None:
        click.echo(f"warning: {file}: the footer (block index) at offset {footer.start} is damaged "
                   f"({footer.reason}); the {len(layout.blocks):,} data blocks before it are intact and were found "
                   f"by scanning; `chronoledger chronicle recover {file}` rewrites the footer", err=True)


@contextmanager
def _progress(total: int, label: str):
    """A progress bar on a terminal (not under -q); nothing when piped."""
    if progress_wanted() and total > 0:
        with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
            yield bar.update
    else:
        yield lambda n: None


def _load_step(spec: str):
    """The step factory --step names; one that cannot be imported is bad usage (exit 2)."""
    try:
        return chr_.load_step(spec)
    except (ChronoledgerError, ImportError, AttributeError, OSError) as exc:
        _log_traceback(exc)
        raise click.BadParameter(str(exc), param_hint="--step") from None


def _log_traceback(exc: BaseException) -> bool:
    """The traceback of the user's code behind ``exc`` (its cause), at INFO
    (shown by ``chronoledger -v``); whether there is one to show."""
    if exc.__cause__ is None:
        return False
    _logger.info("the step's traceback:\n%s", step_traceback(exc).rstrip())
    return True


@contextmanager
def _step_errors():
    """A step that raised (or returned something else than a cycle's result)
    is the step's error, not a divergence: one line, exit 2 (ConfigError's
    code), and its traceback with -v."""
    try:
        yield
    except StepError as exc:
        if _log_traceback(exc) and not _logger.isEnabledFor(logging.INFO):
            raise StepError(f"{exc} (chronoledger -v shows the step's traceback)", exc.index,
                            exc.timestamp) from exc.__cause__
        raise


@click.group("chronicle", cls=Group)
def chronicle_group() -> None:
    """The .cmeta chronicle: inspect, verify, query, replay, recover, export,
    stats, plot; TensorBoard event files.

    Example:

    \b
        chronoledger chronicle verify run.cmeta
    """


@chronicle_group.command("inspect")
@file_argument
@output_options("json")
def inspect_cmd(file: Path, fmt: str) -> None:
    """Header, schema, blocks, sizes and compression of FILE.

    Example:

    \b
        chronoledger chronicle inspect run.cmeta --json
    """
    with exit_codes(), chr_.ChronicleReader(file, "skip") as r:
        lay = r.layout
        names = r.column_names()
        stored = sum(b.end - b.offset for b in r.blocks)
        info = {
            "path": str(file), "bytes": lay.size, "format_version": cformat.FORMAT_VERSION,
            "schema": lay.header.schema_name, "scale": r.scale, "metadata": r.metadata,
            "records": len(r), "blocks": len(r.blocks), "block_bytes": stored,
            "bytes_per_record": stored / len(r) if len(r) else 0.0,
            "first_timestamp": r.blocks[0].first_ts if r.blocks else None,
            "last_timestamp": r.blocks[-1].last_ts if r.blocks else None,
            "closed_cleanly": lay.footer is not None and lay.footer.end == lay.size,
            "columns": names,
            "damage": [d.as_dict() for d in lay.damage],
            "block_list": [{"offset": b.offset, "records": b.records, "first_ts": b.first_ts,
                            "last_ts": b.last_ts, "bytes": b.end - b.offset} for b in r.blocks],
        }
    emit_object(info, fmt, lambda: _print_inspect(file, info, lay))


def _print_inspect(file: Path, info: dict, lay) -> None:
    names = info["columns"]
    click.echo(f"{file}: {info['schema']} chronicle, format v{info['format_version']}, scale {info['scale']!r}")
    # a cycle record packed raw (FORMAT.md's standard workload) is 38 B; events have no fixed raw size
    raw = ", raw cycle record 38 B" if lay.header.schema == cformat.SCHEMA_CYCLE else ""
    click.echo(f"  {info['records']:,} records in {info['blocks']} blocks, {info['bytes']:,} bytes "
               f"({info['bytes_per_record']:.3f} B/record in blocks{raw})")
    if info["records"]:
        click.echo(f"  timestamps {info['first_timestamp']} .. {info['last_timestamp']}")
    closed = "yes" if info["closed_cleanly"] else \
        "no (the footer at the end is damaged)" if lay.damaged_footer is not None else "no (no footer at the end)"
    click.echo(f"  closed cleanly: {closed}")
    click.echo(f"  columns: {', '.join(names)}")
    meta = {k: v for k, v in info["metadata"].items() if k not in ("schema",)}
    if meta:
        click.echo(f"  metadata: {json.dumps(meta)[:300]}")
    for d in info["damage"]:
        click.echo(f"  damage: {d['kind']} at {d['start']}..{d['end']}: {d['reason']}")
    shown = info["block_list"][:8]
    for i, b in enumerate(shown):
        click.echo(f"  block {i}: offset {b['offset']}, {b['records']} records, ts {b['first_ts']}..{b['last_ts']}, "
                   f"{b['bytes']:,} bytes")
    if len(info["block_list"]) > len(shown):
        click.echo(f"  ... {len(info['block_list']) - len(shown)} more blocks")


@chronicle_group.command("verify")
@file_argument
@output_options("json", json_help="Print the report as JSON.")
def verify_cmd(file: Path, fmt: str) -> None:
    """Check every checksum of FILE; exit 1 if any fails.

    Example:

    \b
        chronoledger chronicle verify run.cmeta
    """
    with exit_codes():
        report = chr_.verify(file)
    emit_object(report.as_dict(), fmt, lambda: click.echo(report.text()))
    sys.exit(0 if report.ok else EXIT_CHECK_FAILED)


@chronicle_group.command("audit")
@file_argument
@click.option("--step", help="Replay with this step factory too (module:function or file.py:function, as "
              "replay takes it).")
@output_options("json", json_help="Print the report as JSON.")
def audit_cmd(file: Path, step: str | None, fmt: str) -> None:
    """Checksums, record count, monotonic timestamps and (with --step) replay
    hashes of FILE; exit 1 if a check fails.

    Example:

    \b
        chronoledger chronicle audit run.cmeta --step chronoledger.examples.learner:make_step
    """
    factory = _load_step(step) if step else None
    with exit_codes(), _step_errors():
        try:
            with chr_.ChronicleReader(file, "skip") as r:
                total = len(r.blocks) + (len(r) if factory else 0)
        except ChronoledgerError:
            total = 0        # the audit itself reports what is wrong
        with _progress(total, "auditing") as tick:
            report = chr_.audit(file, factory, progress=tick)
    emit_object(report.as_dict(), fmt, lambda: click.echo(report.text()))
    sys.exit(0 if report.ok else EXIT_CHECK_FAILED)


def _values(v: np.ndarray) -> list:
    """A column as Python values; float32 as the shortest decimal that reads
    back as the same float32 (0.1, not its widened 0.10000000149011612)."""
    if v.dtype == np.float32:
        return [float(x) for x in v.astype(str)]
    return v.tolist()


def _rows(cols: dict[str, np.ndarray]):
    names = list(cols)
    n = len(cols[names[0]]) if names else 0
    lists = {k: _values(v) for k, v in cols.items()}
    for i in range(n):
        yield {k: _plain(k, lists[k][i]) for k in names}


def _plain(name, v):
    """None for absent values: NaN metrics, action_code -1."""
    if (isinstance(v, float) and v != v) or (name == "action_code" and v == -1):
        return None
    return v


@chronicle_group.command("query")
@file_argument
@click.option("--start", type=int, default=0, show_default=True, help="First timestamp (inclusive).")
@click.option("--end", type=int, default=2**64 - 1, help="End timestamp (exclusive); default: everything.")
@click.option("--columns", help="Comma-separated column names (default: all).")
@output_options(legacy_format=True)
def query_cmd(file: Path, start: int, end: int, columns: str | None, fmt: str) -> None:
    """Records of FILE with START <= timestamp < END, one row each.

    Example:

    \b
        chronoledger chronicle query run.cmeta --start 100 --end 200 --columns timestamp,phase,loss_value --csv
    """
    if start < 0 or end < 0 or end > 2**64 - 1:
        raise click.BadParameter("timestamps are 0 .. 2**64-1", param_hint="--start/--end")
    with exit_codes(), chr_.ChronicleReader(file) as r:
        _warn_damage(file, r.layout)
        names = [c.strip() for c in columns.split(",")] if columns else None
        if names:
            unknown = [c for c in names if c not in r.column_names()]
            if unknown:
                raise click.BadParameter(f"unknown column(s) {', '.join(unknown)}; the file has "
                                         f"{', '.join(r.column_names())}", param_hint="--columns")
        cols = r.query(start, end, names)
    emit(_rows(cols), fmt, list(cols))


@chronicle_group.command("replay")
@file_argument
@click.option("--step", required=True, help="Step factory: module:function (looked for in the current folder "
              "first, as python -m does) or path/to/file.py:function, called as factory(config, initial_seed) -> "
              "step(timestamp, phase, seed_state) -> dict.")
@output_options("json", json_help="Print the report as JSON.")
def replay_cmd(file: Path, step: str, fmt: str) -> None:
    """Re-run every cycle of FILE and compare each record by hash; exit 1 on
    divergence, 2 if the step raises.

    A step that raises is named with the record and timestamp it was
    replaying and its exception; chronoledger -v shows its traceback.

    Example:

    \b
        chronoledger chronicle replay run.cmeta --step chronoledger.examples.learner:make_step
    """
    factory = _load_step(step)
    with exit_codes(), _step_errors():
        with chr_.ChronicleReader(file) as r:
            if r.schema != cformat.SCHEMA_CYCLE:
                raise ChronoledgerError(f"{file}: replay needs a cycle chronicle, this is an event log")
            total = len(r)
            _warn_damage(file, r.layout)
            if total == 0:
                raise ChronoledgerError(f"{file}: no records to replay")
        with _progress(total, "replaying") as tick:
            report = chr_.replay(file, factory, progress=tick)
    emit_object(report.as_dict(), fmt, lambda: _print_replay(file, report))
    sys.exit(0 if report.ok else EXIT_CHECK_FAILED)


def _print_replay(file: Path, report) -> None:
    if report.ok:
        click.echo(f"replay of {file}: all {report.records:,} records regenerated with identical hashes")
    else:
        d = report.first_divergence
        click.echo(f"replay of {file}: {report.divergences:,} of {report.records:,} records differ")
        if d is not None:
            click.echo(f"  first divergence at record {d.index} (timestamp {d.timestamp}): {', '.join(d.fields)}")
            for name in d.fields:
                key = name.split(".", 1)
                sv = d.stored.metrics.get(key[1]) if key[0] == "metrics" else getattr(d.stored, name)
                rv = d.replayed.metrics.get(key[1]) if key[0] == "metrics" else getattr(d.replayed, name)
                click.echo(f"    {name}: stored {sv!r}, replayed {rv!r}")


@chronicle_group.command("recover")
@file_argument
@click.option("--mode", type=click.Choice(["tolerate", "strict", "skip"]), default="tolerate", show_default=True,
              help="tolerate: truncate a torn tail; strict: change nothing, fail on any damage; "
                   "skip: rewrite the file without damaged blocks.")
@output_options("json", json_help="Print the report as JSON.")
def recover_cmd(file: Path, mode: str, fmt: str) -> None:
    """Repair FILE after a crash: truncate a torn tail, or salvage around
    damage; exit 4 when the mode refuses to repair what it found.

    Example:

    \b
        chronoledger chronicle recover run.cmeta --mode skip
    """
    with exit_codes(refused=(CorruptDataError,)):
        report = chr_.recover(file, mode)
    emit_object(report.as_dict(), fmt, lambda: _print_recover(file, mode, report))


def _print_recover(file: Path, mode: str, report) -> None:
    click.echo(f"recover {file} ({mode}): {report.message}")
    click.echo(f"  records kept {report.records_kept:,}; records dropped {report.records_dropped:,}; "
               f"bytes dropped {report.bytes_dropped:,}")
    for d in report.damage:
        click.echo(f"  {d['kind']} at {d['start']}..{d['end']}: {d['reason']}")


@chronicle_group.command("export-dataset")
@argument("sources", nargs=-1, required=True,
          help="Chronicles: folders (every .cmeta below), globs, files or URLs; the last is the output folder.")
@click.option("--force", is_flag=True, help="Replace the output folder if it exists (whole, once the new one is "
                                             "complete).")
@click.option("--skip-damaged", is_flag=True, help="Leave out a damaged run (named on stderr) instead of failing.")
def export_dataset_cmd(sources: tuple[str, ...], force: bool, skip_damaged: bool) -> None:
    """Write many runs as Hive-partitioned Parquet, OUT/run=<run>/part-0.parquet,
    which Spark, DuckDB, Polars and pyarrow read as one table (the run
    column from the folder names; seed, tags and config keys as columns).
    OUT is a local folder.

    Example:

    \b
        chronoledger chronicle export-dataset runs/ runs-parquet/
        duckdb -c "SELECT run, min(loss_value) FROM read_parquet('runs-parquet/*/*.parquet', hive_partitioning=true) GROUP BY run"
    """
    if len(sources) < 2:
        raise click.UsageError("name the runs and, last, the output folder")
    *inputs, out = sources
    with exit_codes(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)        # each skipped run is said once, below
        ds = dataset(inputs, on_damage="skip" if skip_damaged else "raise")
        counts = export_dataset(ds, out, force=force)
        for run, why in ds.skipped:
            click.echo(f"skipped {run}: {why}", err=True)
    click.echo(f"{out}: {len(counts)} run(s), {sum(counts.values()):,} records", err=True)


@chronicle_group.command("export")
@file_argument
@click.option("--format", "out_format", type=click.Choice(list(FORMATS)), required=True,
              help="The file format: CSV (a header line), JSON lines, or Parquet (needs the arrow extra; keeps "
                   "the run's config, initial seed and header in the file's key-value metadata).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True),
              help="Output file (default: FILE with the format's extension); - writes to standard output.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists (without it, an existing "
                                             "file is refused and nothing is written).")
def export_cmd(file: Path, out_format: str, output: str | None, force: bool) -> None:
    """Export every record of FILE to a file as CSV, JSON lines or Parquet
    (to print records instead, use query).

    Records are read and written a block at a time, so memory does not grow
    with the file; the file is written beside its name and renamed into
    place when complete.

    Example:

    \b
        chronoledger chronicle export run.cmeta --format parquet -o run.parquet
        chronoledger chronicle export run.cmeta --format csv -o - | head
    """
    to_stdout = output == "-"
    target = None if to_stdout else Path(output) if output else file.with_suffix(EXTENSIONS[out_format])
    if target is not None and not force and os.path.lexists(target):
        raise click.BadParameter(f"{target} exists; --force replaces it", param_hint="--output")
    if to_stdout and out_format == "parquet" and sys.stdout.isatty():
        raise click.BadParameter("Parquet is binary: redirect standard output to a file, or name one",
                                 param_hint="--output")
    with exit_codes(), chr_.ChronicleReader(file) as r:
        _warn_damage(file, r.layout)
        try:
            n = chr_.export(r, "-" if to_stdout else str(target), out_format, force=force)
        except FileExistsError as exc:          # the file appeared while the export was being written
            raise click.BadParameter(f"{exc}; --force replaces it", param_hint="--output") from None
    if target is not None:
        click.echo(f"exported {n:,} records to {target}")


@chronicle_group.command("stats")
@file_argument
@output_options("json")
def stats_cmd(file: Path, fmt: str) -> None:
    """Per-column statistics of FILE: count, min, max, mean; the last value
    of each metric and when; phases and actions.

    Example:

    \b
        chronoledger chronicle stats run.cmeta --json
    """
    with exit_codes(), chr_.ChronicleReader(file) as r:
        _warn_damage(file, r.layout)
        cols = r.to_numpy()
    stats = column_stats(cols)

    def text():
        click.echo(f"{file}: {len(r):,} records")
        for name, s in stats.items():
            parts = [f"{k} {v}" for k, v in s.items() if k not in ("last", "last_timestamp")]
            if "last" in s:
                parts.append(f"last {s['last']} at timestamp {s['last_timestamp']}")
            click.echo(f"  {name}: " + ", ".join(parts))
    emit_object({"path": str(file), "records": len(r), "columns": stats}, fmt, text)


def _refuse_existing(exc: FileExistsError, hint: str):
    """An output that exists already, without --force: bad usage (exit 2)."""
    return click.BadParameter(str(exc), param_hint=hint)


@chronicle_group.command("plot")
@argument("files", nargs=-1, required=True, type=FILE, help="The chronicles (.cmeta files), one line each.")
@click.option("--metric", "-m", "metrics", multiple=True, required=True,
              help="A column to draw, one panel each: loss_value, coherence, tensor_signature.0, metrics.NAME, "
                   "values.NAME...; repeat for more.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The picture: .png or .svg (replaced atomically).")
@click.option("--label", "labels", multiple=True,
              help="The name of each run in the legend, in the order of FILES (default: the run config's name, "
                   "else the file's name).")
@click.option("--x", "x_axis", type=click.Choice(list(chr_plot.X_AXES)), default="auto", show_default=True,
              help="The x axis: auto (dates when the timestamps are epoch ms, else the timestamps), timestamp, "
                   "or index (each record's position).")
@click.option("--title", help="A title above the picture.")
@click.option("--log-y", is_flag=True, help="A logarithmic y axis (for losses).")
@click.option("--max-points", type=click.IntRange(min=2), default=10_000, show_default=True,
              help="Thin longer runs to the lowest and highest value of each of max-points/2 buckets.")
@output_options("json", json_help="Print what was drawn as JSON.")
def plot_cmd(files: tuple[Path, ...], metrics: tuple[str, ...], output: Path, labels: tuple[str, ...],
             x_axis: str, title: str | None, log_y: bool, max_points: int, fmt: str) -> None:
    """Draw metrics of one or several runs (one line each) against time, with
    the phases (train, validate, dream...) shaded, as a PNG or SVG picture.
    Needs matplotlib: pip install 'chronoledger[plot]'.

    Example:

    \b
        chronoledger chronicle plot a.cmeta b.cmeta -m loss_value -m metrics.lr -o runs.png
    """
    with exit_codes():
        for f in files:
            with chr_.ChronicleReader(f) as r:
                _warn_damage(f, r.layout)
        result = chr_plot.plot_runs(files, metrics, output, labels=labels or None, x=x_axis, title=title,
                                    log_y=log_y, max_points=max_points)
    emit_object(result.as_dict(), fmt, lambda: click.echo(
        f"wrote {output}: {', '.join(result.metrics)} of {len(result.runs)} run{'s' if len(result.runs) != 1 else ''}"
        f" ({', '.join(result.runs)}), {result.records:,} records, {result.points:,} points drawn"))


@chronicle_group.group("tensorboard")
def tensorboard_group() -> None:
    """TensorBoard event files: export a chronicle for TensorBoard, import
    TensorBoard's scalars. Needs the tensorboard package:
    pip install 'chronoledger[tensorboard]'.

    Example:

    \b
        chronoledger chronicle tensorboard export run.cmeta -o logs/run && tensorboard --logdir logs
    """


@tensorboard_group.command("export")
@file_argument
@click.option("--output", "-o", "logdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The log folder (a TensorBoard run) to write the event file in; created if missing.")
@click.option("--phase-prefix/--no-phase-prefix", default=True, show_default=True,
              help="Tag each scalar PHASE/COLUMN (train/loss_value), or with the bare column name.")
@click.option("--wall-time", type=click.Choice(list(chr_tb.WALL_TIMES)), default="auto", show_default=True,
              help="Wall times: the timestamps when they are epoch ms (auto), always the timestamps, or now.")
@click.option("--force", is_flag=True, help="Replace the event files the folder holds already.")
@output_options("json", json_help="Print the report as JSON.")
def tensorboard_export_cmd(file: Path, logdir: Path, phase_prefix: bool, wall_time: str, force: bool,
                           fmt: str) -> None:
    """Write FILE as a TensorBoard event file in the folder LOGDIR: one scalar
    per number of each record (loss_value, coherence, tensor_signature.0-2,
    every metric or value) at step = its timestamp, tagged PHASE/COLUMN.

    Example:

    \b
        chronoledger chronicle tensorboard export run.cmeta -o logs/run
    """
    with exit_codes():
        with chr_.ChronicleReader(file) as r:
            _warn_damage(file, r.layout)
        try:
            report = chr_tb.export_tensorboard(file, logdir, phase_prefix=phase_prefix, wall_time=wall_time,
                                               force=force)
        except FileExistsError as exc:
            raise _refuse_existing(exc, "-o/--output") from None

    def text() -> None:
        click.echo(f"wrote {report.event_file}: {report.scalars:,} scalars in {report.events:,} events from "
                   f"{report.records:,} records, {len(report.tags)} tags; wall times from {report.wall_time}")
        if report.replaced:
            click.echo(f"  replaced {', '.join(report.replaced)}")
    emit_object(report.as_dict(), fmt, text)


@tensorboard_group.command("import")
@argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path),
          help="TensorBoard event files, or log folders searched for them (with their subfolders).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The new chronicle (an event log: one record per run and step, a value per tag).")
@click.option("--tag", "tags", multiple=True,
              help="Keep only this tag (a name or a shell pattern such as 'train/*'); repeat for more. "
                   "Default: every scalar tag.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@output_options("json", json_help="Print the report as JSON.")
def tensorboard_import_cmd(sources: tuple[Path, ...], output: Path, tags: tuple[str, ...], force: bool,
                           fmt: str) -> None:
    """Read the scalars of TensorBoard event files into a new event-log
    chronicle: timestamp = step, event_type = run, values.TAG per tag.

    Example:

    \b
        chronoledger chronicle tensorboard import logs -o scalars.cmeta --tag 'train/*'
    """
    with exit_codes():
        try:
            report = chr_tb.import_tensorboard(sources, output, tags=tags or None, force=force)
        except FileExistsError as exc:
            raise _refuse_existing(exc, "-o/--output") from None

    def text() -> None:
        click.echo(f"wrote {output}: {report.records:,} records, {report.scalars:,} scalars of "
                   f"{len(report.tags)} tags from {len(report.runs)} runs in {report.files} event files")
        if report.records:
            click.echo(f"  steps {report.first_step} .. {report.last_step}; runs: {', '.join(report.runs)}")
        if report.non_finite:
            click.echo(f"  skipped {report.non_finite:,} non-finite scalars (NaN, infinity)")
        for name in report.incomplete_files:
            click.echo(f"  incomplete: {name} (read as far as TensorBoard reads it)")
    emit_object(report.as_dict(), fmt, text)
