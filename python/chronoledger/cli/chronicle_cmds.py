"""``chronoledger chronicle ...``: inspect, verify, query, replay, recover, export, stats.

Exit codes: 0 success; 1 a check failed (verify, audit, replay found a
divergence); 2 bad usage (click); 3 the file cannot be read (missing,
corrupt beyond the chosen recovery mode, locked by a writer); 4 recovery
refused (corruption that the chosen mode does not repair).  Errors go
through ``cli.output.exit_codes(usage=())``: every library or OS error is
exit 3 (no chronicle error is a usage error; the chronicle raises no
``NotFoundError``, which would be exit 5).
"""

from __future__ import annotations

import csv
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np

from chronoledger import chronicle as chr_
from chronoledger.chronicle import format as fmt
from chronoledger.cli.output import EXIT_UNREADABLE, EXIT_USAGE, exit_codes
from chronoledger.errors import ChronoledgerError, CorruptDataError, MissingDependencyError

EXIT_CHECK_FAILED = 1
EXIT_RECOVERY_REFUSED = 4

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


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
    """A progress bar on a terminal; nothing when piped."""
    if sys.stderr.isatty() and total > 0:
        with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
            yield bar.update
    else:
        yield lambda n: None


@click.group("chronicle")
def chronicle_group() -> None:
    """The .cmeta chronicle: inspect, verify, query, replay, recover, export."""


@chronicle_group.command("inspect")
@click.argument("file", type=FILE)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect_cmd(file: Path, as_json: bool) -> None:
    """Header, schema, blocks, sizes and compression of FILE."""
    with exit_codes(usage=()), chr_.ChronicleReader(file, "skip") as r:
        lay = r.layout
        names = r.column_names()
        stored = sum(b.end - b.offset for b in r.blocks)
        info = {
            "path": str(file), "bytes": lay.size, "format_version": fmt.FORMAT_VERSION,
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
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{file}: {info['schema']} chronicle, format v{info['format_version']}, scale {info['scale']!r}")
    # a cycle record packed raw (FORMAT.md's standard workload) is 38 B; events have no fixed raw size
    raw = ", raw cycle record 38 B" if lay.header.schema == fmt.SCHEMA_CYCLE else ""
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
@click.argument("file", type=FILE)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_cmd(file: Path, as_json: bool) -> None:
    """Check every checksum of FILE; exit 1 if any fails."""
    with exit_codes(usage=()):
        report = chr_.verify(file)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.text())
    sys.exit(0 if report.ok else EXIT_CHECK_FAILED)


@chronicle_group.command("audit")
@click.argument("file", type=FILE)
@click.option("--step", help="Replay with this step factory too (module:function or file.py:function).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit_cmd(file: Path, step: str | None, as_json: bool) -> None:
    """Checksums, record count, monotonic timestamps and (with --step) replay hashes."""
    with exit_codes(usage=()):
        factory = chr_.load_step(step) if step else None
        try:
            with chr_.ChronicleReader(file, "skip") as r:
                total = len(r.blocks) + (len(r) if factory else 0)
        except ChronoledgerError:
            total = 0        # the audit itself reports what is wrong
        with _progress(total, "auditing") as tick:
            report = chr_.audit(file, factory, progress=tick)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.text())
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


def _emit(cols: dict[str, np.ndarray], out_format: str, stream) -> int:
    count = 0
    if out_format == "json":
        stream.write(json.dumps(list(_rows(cols))))
        stream.write("\n")
        return len(next(iter(cols.values()))) if cols else 0
    if out_format in ("csv", "table"):
        names = list(cols)
        if out_format == "csv":
            writer = csv.writer(stream)
            writer.writerow(names)
            for row in _rows(cols):
                writer.writerow(["" if row[k] is None else row[k] for k in names])
                count += 1
            return count
        rows = [[("" if r[k] is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else str(r[k])))
                 for k in names] for r in _rows(cols)]
        widths = [max([len(k)] + [len(r[i]) for r in rows]) for i, k in enumerate(names)]
        stream.write("  ".join(k.ljust(w) for k, w in zip(names, widths)) + "\n")
        for r in rows:
            stream.write("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "\n")
        return len(rows)
    for row in _rows(cols):            # jsonl
        stream.write(json.dumps(row) + "\n")
        count += 1
    return count


@chronicle_group.command("query")
@click.argument("file", type=FILE)
@click.option("--start", type=int, default=0, show_default=True, help="First timestamp (inclusive).")
@click.option("--end", type=int, default=2**64 - 1, help="End timestamp (exclusive); default: everything.")
@click.option("--format", "out_format", type=click.Choice(["table", "csv", "json", "jsonl"]), default="table",
              show_default=True)
@click.option("--columns", help="Comma-separated column names (default: all).")
def query_cmd(file: Path, start: int, end: int, out_format: str, columns: str | None) -> None:
    """Records of FILE with START <= timestamp < END."""
    if start < 0 or end < 0 or end > 2**64 - 1:
        raise click.BadParameter("timestamps are 0 .. 2**64-1", param_hint="--start/--end")
    with exit_codes(usage=()), chr_.ChronicleReader(file) as r:
        _warn_damage(file, r.layout)
        names = [c.strip() for c in columns.split(",")] if columns else None
        if names:
            unknown = [c for c in names if c not in r.column_names()]
            if unknown:
                raise click.BadParameter(f"unknown column(s) {', '.join(unknown)}; the file has "
                                         f"{', '.join(r.column_names())}", param_hint="--columns")
        cols = r.query(start, end, names)
    _emit(cols, out_format, sys.stdout)


@chronicle_group.command("replay")
@click.argument("file", type=FILE)
@click.option("--step", required=True, help="Step factory: module:function or path/to/file.py:function, "
              "called as factory(config, initial_seed) -> step(timestamp, phase, seed_state) -> dict.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def replay_cmd(file: Path, step: str, as_json: bool) -> None:
    """Re-run every cycle of FILE and compare each record by hash; exit 1 on divergence."""
    try:
        factory = chr_.load_step(step)
    except (ChronoledgerError, ImportError, AttributeError, OSError) as exc:      # a bad --step: usage
        raise click.BadParameter(str(exc), param_hint="--step") from None
    with exit_codes(usage=()):
        with chr_.ChronicleReader(file) as r:
            if r.schema != fmt.SCHEMA_CYCLE:
                raise ChronoledgerError(f"{file}: replay needs a cycle chronicle, this is an event log")
            total = len(r)
            _warn_damage(file, r.layout)
            if total == 0:
                raise ChronoledgerError(f"{file}: no records to replay")
        with _progress(total, "replaying") as tick:
            report = chr_.replay(file, factory, progress=tick)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    elif report.ok:
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
    sys.exit(0 if report.ok else EXIT_CHECK_FAILED)


@chronicle_group.command("recover")
@click.argument("file", type=FILE)
@click.option("--mode", type=click.Choice(["tolerate", "strict", "skip"]), default="tolerate", show_default=True,
              help="tolerate: truncate a torn tail; strict: change nothing, fail on any damage; "
                   "skip: rewrite the file without damaged blocks.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def recover_cmd(file: Path, mode: str, as_json: bool) -> None:
    """Repair FILE after a crash: truncate a torn tail, or salvage around damage."""
    try:
        report = chr_.recover(file, mode)
    except CorruptDataError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_RECOVERY_REFUSED)
    except (ChronoledgerError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    click.echo(f"recover {file} ({mode}): {report.message}")
    click.echo(f"  records kept {report.records_kept:,}; records dropped {report.records_dropped:,}; "
               f"bytes dropped {report.bytes_dropped:,}")
    for d in report.damage:
        click.echo(f"  {d['kind']} at {d['start']}..{d['end']}: {d['reason']}")


@chronicle_group.command("export")
@click.argument("file", type=FILE)
@click.option("--format", "out_format", type=click.Choice(["csv", "jsonl", "parquet"]), required=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (default: FILE with the format's extension).")
def export_cmd(file: Path, out_format: str, output: Path | None) -> None:
    """Export every record of FILE as CSV, JSON lines or Parquet."""
    from chronoledger._fsutil import atomic_write_bytes

    output = output or file.with_suffix({"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}[out_format])
    with exit_codes(usage=()):
        ch = chr_.Chronicle.open(file)
        try:
            _warn_damage(file, ch.reader().layout)
            if out_format == "parquet":
                try:
                    n = ch.to_parquet(output)
                except MissingDependencyError as exc:
                    click.echo(f"error: export --format parquet: {exc}", err=True)
                    sys.exit(EXIT_USAGE)
            else:
                import io
                text = io.StringIO()
                n = _emit(ch.to_numpy(), out_format, text)
                atomic_write_bytes(output, text.getvalue().encode())
        finally:
            ch.close()
    click.echo(f"exported {n:,} records to {output}")


@chronicle_group.command("stats")
@click.argument("file", type=FILE)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def stats_cmd(file: Path, as_json: bool) -> None:
    """Per-column statistics of FILE (count, min, max, mean; phases and actions)."""
    with exit_codes(usage=()), chr_.ChronicleReader(file) as r:
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
    if as_json:
        click.echo(json.dumps({"path": str(file), "records": len(r), "columns": stats}, indent=2))
        return
    click.echo(f"{file}: {len(r):,} records")
    for name, s in stats.items():
        click.echo(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in s.items()))


def _num(x):
    if isinstance(x, np.float32):
        return float(str(x))          # the shortest decimal of the float32, not its widened double
    return int(x) if isinstance(x, (np.integer, int)) else float(x)
