"""Many chronicles as a Dask DataFrame, for a cluster: the distributed side
of chronoledger.dataset (docs/datasets.md, "Dask").

    import chronoledger.dask
    df = chronoledger.dask.read_chronicles("runs/", columns=["run", "loss_value"])
    df.groupby("run").loss_value.min().compute()

One partition per file, or per ``blocks_per_partition`` blocks of a file;
each partition is read where it runs, with the same pushdown of columns,
time ranges and phases as the dataset.  Needs the ``dask`` extra."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from chronoledger.dataset import ChronicleDataset, dataset
from chronoledger.dataset.remote import RemoteSource
from chronoledger.errors import ConfigError, MissingDependencyError

try:
    import dask.dataframe as dd
    import pandas as pd
    import pyarrow as pa
except ImportError as exc:                       # the optional extra
    raise MissingDependencyError(f"chronoledger.dask needs dask[dataframe], which is not installed ({exc.name}): "
                                 f"pip install 'chronoledger[dask]'") from None

__all__ = ["read_chronicles"]


def read_chronicles(urlpath: Any, *, columns: Sequence[str] | None = None, start: int | None = None,
                    end: int | None = None, phases: Iterable[str] | None = None, on_damage: str = "raise",
                    blocks_per_partition: int | None = None, storage_options: dict | None = None) -> Any:
    """A Dask DataFrame of the chronicles ``urlpath`` names (a folder, a
    glob or a list, as :func:`chronoledger.dataset`), with the dataset's
    columns (``columns`` narrows them; the others are never decoded), the
    records with ``start <= timestamp < end`` of ``phases``.  The files'
    headers are read here, to know the columns; the records are read by
    the workers."""
    if blocks_per_partition is not None and (isinstance(blocks_per_partition, bool)
                                             or not isinstance(blocks_per_partition, int)
                                             or blocks_per_partition < 1):
        raise ConfigError(f"blocks_per_partition: {blocks_per_partition!r} must be a whole number, at least 1")
    ds = dataset(urlpath, columns=columns, start=start, end=end, phases=phases, on_damage=on_damage,
                 storage_options=storage_options)
    schema = ds.full_schema
    wanted = ds.arrow_schema
    options = {"columns": list(wanted.names), "start": start, "end": end,
               "phases": None if phases is None else sorted(set([phases] if isinstance(phases, str) else phases)),
               "on_damage": on_damage}
    parts: list[tuple[str, Any, tuple[int, int] | None]] = []
    for run, path, n in ds.block_counts():
        src = path if isinstance(path, RemoteSource) else os.fspath(path)    # a remote source travels as it is
        if blocks_per_partition is None or n <= blocks_per_partition:
            parts.append((run, src, None))
        else:
            parts += [(run, src, (lo, min(n, lo + blocks_per_partition))) for lo in range(0, n, blocks_per_partition)]
    # Arrow-backed pandas columns on both sides: a uint64 seed with nulls stays uint64, tags stay lists (the numpy
    # dtypes pandas picks otherwise differ between an empty frame and one with data); the dictionary columns (run,
    # phase) as plain text, since every partition's dictionary is its own (pandas 2.0 loses groups across them)
    target = _plain(wanted)
    meta = target.empty_table().to_pandas(types_mapper=pd.ArrowDtype)
    if not parts:
        return dd.from_pandas(meta, npartitions=1)
    return dd.from_map(_read_part, parts, schema=schema, target=target, options=options, meta=meta,
                       label="read-chronicles", enforce_metadata=False)


def _read_part(part: tuple[str, Any, tuple[int, int] | None], schema: Any, target: Any, options: dict) -> Any:
    run, path, blocks = part
    table = ChronicleDataset.part(run, path, schema, blocks, **options).to_table()
    return table.cast(target).to_pandas(types_mapper=pd.ArrowDtype)


def _plain(schema: Any) -> Any:
    """``schema`` with its dictionary columns as plain text."""
    return pa.schema([pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f for f in schema])
