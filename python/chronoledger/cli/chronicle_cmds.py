"""``chronoledger chronicle ...``: inspect, verify, query, replay, recover, export, stats.

Exit codes are those of ``cli.output`` (docs/cli.md): 1 a check failed
(verify, audit, replay found a divergence); 3 the file cannot be read
(missing, corrupt beyond the chosen recovery mode, locked by a writer); 4
recovery refused (damage the chosen mode does not repair).
"""

from __future__ import annotations

import io
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np

from chronoledger import chronicle as chr_
from chronoledger._fsutil import atomic_write_bytes
from chronoledger.chronicle import format as cformat
from chronoledger.cli.output import (EXIT_CHECK_FAILED, Group, argument, emit, emit_object, exit_codes,
                                    output_options, progress_wanted, write_rows)
from chronoledger.errors import ChronoledgerError, CorruptDataError, MissingDependencyError

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


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


@click.group("chronicle", cls=Group)
def chronicle_group() -> None:
    """The .cmeta chronicle: inspect, verify, query, replay, recover, export.

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
@click.option("--step", help="Replay with this step factory too (module:function or file.py:function).")
@output_options("json", json_help="Print the report as JSON.")
def audit_cmd(file: Path, step: str | None, fmt: str) -> None:
    """Checksums, record count, monotonic timestamps and (with --step) replay
    hashes of FILE; exit 1 if a check fails.

    Example:

    \b
        chronoledger chronicle audit run.cmeta --step chronoledger.examples.learner:make_step
    """
    with exit_codes():
        factory = chr_.load_step(step) if step else None
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
@click.option("--step", required=True, help="Step factory: module:function or path/to/file.py:function, "
              "called as factory(config, initial_seed) -> step(timestamp, phase, seed_state) -> dict.")
@output_options("json", json_help="Print the report as JSON.")
def replay_cmd(file: Path, step: str, fmt: str) -> None:
    """Re-run every cycle of FILE and compare each record by hash; exit 1 on divergence.

    Example:

    \b
        chronoledger chronicle replay run.cmeta --step chronoledger.examples.learner:make_step
    """
    try:
        factory = chr_.load_step(step)
    except (ChronoledgerError, ImportError, AttributeError, OSError) as exc:      # a bad --step: usage
        raise click.BadParameter(str(exc), param_hint="--step") from None
    with exit_codes():
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


@chronicle_group.command("export")
@file_argument
@click.option("--format", "out_format", type=click.Choice(["csv", "jsonl", "parquet"]), required=True,
              help="The file format: CSV (a header line), JSON lines, or Parquet (needs the arrow extra).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (default: FILE with the format's extension).")
def export_cmd(file: Path, out_format: str, output: Path | None) -> None:
    """Export every record of FILE to a file as CSV, JSON lines or Parquet
    (to print records instead, use query).

    Example:

    \b
        chronoledger chronicle export run.cmeta --format parquet -o run.parquet
    """

    output = output or file.with_suffix({"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}[out_format])
    with exit_codes():
        ch = chr_.Chronicle.open(file)
        try:
            _warn_damage(file, ch.reader().layout)
            if out_format == "parquet":
                try:
                    n = ch.to_parquet(output)
                except MissingDependencyError as exc:
                    raise MissingDependencyError(f"export --format parquet: {exc}") from None
            else:
                text = io.StringIO()
                cols = ch.to_numpy()
                n = write_rows(text, _rows(cols), "nl" if out_format == "jsonl" else out_format, list(cols))
                atomic_write_bytes(output, text.getvalue().encode())
        finally:
            ch.close()
    click.echo(f"exported {n:,} records to {output}")


@chronicle_group.command("stats")
@file_argument
@output_options("json")
def stats_cmd(file: Path, fmt: str) -> None:
    """Per-column statistics of FILE (count, min, max, mean; phases and actions).

    Example:

    \b
        chronoledger chronicle stats run.cmeta --json
    """
    with exit_codes(), chr_.ChronicleReader(file) as r:
        _warn_damage(file, r.layout)
        cols = r.to_numpy()
    stats = {}
    for name, v in cols.items():
        if v.dtype == object:
            values, counts = np.unique(v.astype(str), return_counts=True)
            stats[name] = {"distinct": len(values),
                           "counts": {str(a): int(b) for a, b in zip(values[:20], counts[:20])}}
        elif name == "action_code":
            present = v[v >= 0]
            stats[name] = {"present": int(present.size), "absent": int(v.size - present.size),
                           "counts": {str(int(a)): int(b) for a, b in zip(*np.unique(present, return_counts=True))}}
        elif v.size:
            finite = v[~np.isnan(v)] if v.dtype.kind == "f" else v
            if finite.size == 0:
                stats[name] = {"count": 0}
                continue
            mean = np.mean(finite, dtype=np.float64)
            stats[name] = {"count": int(finite.size), "min": _num(finite.min()), "max": _num(finite.max()),
                           # a float32 column's mean to float32 precision, the precision of its values
                           "mean": _num(np.float32(mean)) if v.dtype == np.float32 else float(mean)}
    def text():
        click.echo(f"{file}: {len(r):,} records")
        for name, s in stats.items():
            click.echo(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in s.items()))
    emit_object({"path": str(file), "records": len(r), "columns": stats}, fmt, text)


def _num(x):
    if isinstance(x, np.float32):
        return float(str(x))          # the shortest decimal of the float32, not its widened double
    return int(x) if isinstance(x, (np.integer, int)) else float(x)
