"""A dataset of chronicles as Hive-partitioned Parquet, for engines that read
Parquet folders as they are (Spark, DuckDB, Polars, pyarrow.dataset):
``OUT/run=<run>/part-0.parquet``, one file per run, written a block at a
time.  A run's name is escaped as Hive does (``/`` is ``%2F``), and the
folder appears whole or not at all (built beside it, renamed when done)."""

from __future__ import annotations

import os
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

from chronoledger._arrow import parquet_modules
from chronoledger._fsutil import fsync_dir
from chronoledger.dataset.scan import ChronicleDataset
from chronoledger.errors import ConfigError, ExistsError, StorageError

__all__ = ["export_dataset", "partition_name"]


def partition_name(run: str) -> str:
    """``run=<run>``, the value escaped as Hive escapes partition values."""
    return "run=" + urllib.parse.quote(run, safe=" -_.~+@,;")


def export_dataset(ds: ChronicleDataset, out: str | os.PathLike[str], *, force: bool = False,
                   compression: str = "zstd") -> dict[str, int]:
    """Write ``ds`` (its columns but ``run``, which the folder names give) to
    ``out`` as Hive-partitioned Parquet; returns the rows written per run.
    An existing ``out`` is refused (ExistsError) unless ``force``, and then
    replaced whole once the new one is complete."""
    pa, pq = parquet_modules("export-dataset")
    if "://" in os.fspath(out):
        raise ConfigError(f"export-dataset: {os.fspath(out)}: the output is a local folder (copy it to object "
                          f"storage afterwards)")
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise ExistsError(f"export-dataset: {target} is a file, not a folder; name a folder")
    if target.exists() and not force:
        raise ExistsError(f"export-dataset: {target} exists; force=True (--force) replaces it")
    whole = target.resolve()
    for rname, src in ds.files:                 # replacing the output must never remove a run it reads
        if isinstance(src, Path):
            here = src.resolve()
            if here == whole or whole in here.parents:
                raise ConfigError(f"export-dataset: {target} holds the run {rname} ({src}); write the Parquet "
                                  f"elsewhere")
    names = [n for n in ds.arrow_schema.names if n != "run"]
    per_run = ds.select(["run", *names])
    building = target.with_name(f".{target.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    counts: dict[str, int] = {}
    try:
        building.mkdir(parents=True)
        writer: Any = None
        current: str | None = None
        schema = pa.schema([per_run.arrow_schema.field(n) for n in names])
        for batch in per_run.to_batches():
            name = batch.column(0).dictionary[0].as_py() if batch.num_rows else None
            if name is None:
                continue
            run = str(name)
            if run != current:
                if writer is not None:
                    writer.close()
                folder = building / partition_name(run)
                folder.mkdir()
                writer = pq.ParquetWriter(folder / "part-0.parquet", schema, compression=compression)
                current = run
                counts[run] = 0
            writer.write_batch(pa.RecordBatch.from_arrays(batch.columns[1:], schema=schema))
            counts[run] += batch.num_rows
        if writer is not None:
            writer.close()
        for run in ds.runs:                 # a run with no row in range still has its (empty) part
            if run not in counts:
                folder = building / partition_name(run)
                folder.mkdir()
                pq.write_table(schema.empty_table(), folder / "part-0.parquet", compression=compression)
                counts[run] = 0
        for folder in building.iterdir():
            fsync_dir(folder)
        fsync_dir(building)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(building, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(building, target)
        fsync_dir(target.parent)
    except OSError as exc:
        shutil.rmtree(building, ignore_errors=True)
        raise StorageError(f"export-dataset: {target}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return counts
