"""Many chronicles as one table, streamed as Arrow record batches.

A batch is one block of one file (at most its block size of records, 65,536
by default), so memory stays flat in the number and size of files.  The
blocks are planned from each file's index (its footer): a time range leaves
out the blocks outside it before anything is decoded, and cuts the blocks
at its edges by their timestamps alone; a phase filter decodes a block's
phase column first and nothing else of a block without a wanted phase; only
the columns asked for are decoded.  Blocks decode in parallel on the codec
threads (the kernels release the GIL), a bounded number ahead of the reader.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chronoledger import _warn, core
from chronoledger._arrow import parquet_modules
from chronoledger.chronicle import format as fmt
from chronoledger.chronicle.arrow import arrow_array, arrow_type
from chronoledger.chronicle.columns import Labels
from chronoledger.chronicle.reader import ChronicleReader, config_history, run_tags
from chronoledger.chronicle.records import FIXED_COLUMNS
from chronoledger.dataset.remote import RemoteFile, RemoteSource
from chronoledger.dataset.sources import Source, resolve
from chronoledger.errors import (ChronoledgerError, ConfigError, CorruptDataError, MissingFileError, QueryError,
                                 StorageError)

#: The columns every row carries from its run's header, before the records' own.
RUN_COLUMNS = ("run", "seed", "tags")
CONFIG_PREFIX = "config."
ON_DAMAGE = ("raise", "skip")


@dataclass(frozen=True)
class Filters:
    """What a dataset keeps: records with ``start <= timestamp < end``
    (microseconds; None: unbounded), of one of ``phases`` (None: all)."""
    start: int | None = None
    end: int | None = None
    phases: frozenset[str] | None = None


@dataclass
class _Run:
    """What a dataset knows of one file once it is opened."""
    run: str
    path: Source
    schema: int
    seed: int | None
    tags: list[str]
    config: dict[str, Any]
    names: list[str]


class ChronicleDataset:
    """Chronicles (``.cmeta`` runs or event logs) as one table: a ``run``
    column, the run's header (``seed``, ``tags``, and each top-level config
    key as ``config.<key>``), then the records' columns (the union over the
    files; a metric a run lacks is null there).

    Use it where Arrow goes: ``ds.to_reader()`` (a
    ``pyarrow.RecordBatchReader``), ``ds.to_table()``, or the object itself
    (``__arrow_c_stream__``): ``duckdb.sql("SELECT run, min(loss_value) FROM
    ds GROUP BY run")``, ``polars.from_arrow(ds)``.  Narrow it first for
    speed: ``ds.select([...])``, ``ds.filter(start=, end=, phases=)``.

    ``on_damage``: "raise" (default) stops at a damaged file with a
    CorruptDataError naming it; "skip" checks each file's checksums before
    any of its rows is read, leaves a damaged one out whole, names it in
    ``skipped`` and warns.  Either way no row of a damaged block is ever
    returned.  Needs pyarrow (the ``arrow`` extra)."""

    def __init__(self, sources: Any, *, columns: Sequence[str] | None = None, start: int | None = None,
                 end: int | None = None, phases: Iterable[str] | None = None, on_damage: str = "raise",
                 ahead: int | None = None, storage_options: dict | None = None):
        if on_damage not in ON_DAMAGE:
            raise ConfigError(f"on_damage: {on_damage!r} is not one of {', '.join(ON_DAMAGE)}")
        self._sources = sources
        self._files = resolve(sources, storage_options)
        self.on_damage = on_damage
        self._filters = _filters(start, end, phases)
        self._columns = None if columns is None else _names(columns)
        self._ahead = ahead if ahead is not None else 2 * (os.cpu_count() or 1)
        if not isinstance(self._ahead, int) or isinstance(self._ahead, bool) or self._ahead < 1:
            raise ConfigError(f"ahead: {ahead!r} must be a whole number of blocks, at least 1")
        self._runs: list[_Run] | None = None
        #: (run, why) of the files left out as damaged (on_damage="skip")
        self.skipped: list[tuple[str, str]] = []
        self._schema: Any = None
        #: the blocks [lo, hi) read of each file (a part of a dataset cut up by chronoledger.dask), or all
        self._block_range: tuple[int, int] | None = None
        #: bytes read from object storage by this dataset's reads (remote files), in how many batched requests
        self.bytes_fetched = 0
        self.requests = 0
        self._remote_files: dict[str, RemoteFile] = {}      # shared with the datasets derived from this one
        self._since: dict[str, tuple[int, int]] = {}        # each copy's (fetched, requests) when this one began

    @classmethod
    def part(cls, run: str, path: str | os.PathLike[str] | RemoteSource, schema: Any,
             blocks: tuple[int, int] | None = None, **options: Any) -> "ChronicleDataset":
        """Blocks ``blocks`` of one file of a larger dataset, read with that
        dataset's ``schema`` (its run name, config columns and metrics), so
        every part of it has the same columns: what a worker of a cluster
        reads (chronoledger.dask)."""
        ds = cls(path, **options)
        ds._files = [(run, path if isinstance(path, RemoteSource) else Path(path))]
        ds._schema = schema
        ds._block_range = blocks
        return ds

    def block_counts(self) -> list[tuple[str, Source, int]]:
        """(run, path, blocks) of every file: how a cluster cuts the dataset up."""
        out = []
        for info in self._load():
            with self._open(info.path) as r:
                out.append((info.run, info.path, len(r.blocks)))
        return out

    # --- what it holds ------------------------------------------------------------
    @property
    def files(self) -> list[tuple[str, Source]]:
        """(run, path or remote source) of every file, in the order they are read."""
        return list(self._files)

    def _open(self, path: Source) -> ChronicleReader:
        mode = "strict" if self.on_damage == "skip" else "tolerate"
        if isinstance(path, RemoteSource):
            # one sparse copy per file for the dataset's life: what reading the headers fetched (the index) is not
            # fetched again when the records are read
            remote = self._remote_files.get(path.url)
            if remote is None:
                remote = self._remote_files[path.url] = RemoteFile(path)
            self._since.setdefault(path.url, (remote.fetched, remote.requests))
            try:
                return remote.reader(mode)
            finally:
                self._count()
        try:
            return ChronicleReader(path, mode=mode)
        except FileNotFoundError:
            raise MissingFileError(f"dataset: {path}: no such file (it was there when the dataset was made)") \
                from None
        except OSError as exc:
            raise StorageError(f"dataset: {path}: {exc.strerror or exc}") from None

    def _count(self) -> None:
        got = [(self._remote_files[u], f, r) for u, (f, r) in self._since.items()]
        self.bytes_fetched = sum(rf.fetched - f for rf, f, _ in got)
        self.requests = sum(rf.requests - r for rf, _, r in got)

    def _load(self) -> list[_Run]:
        if self._runs is not None:
            return self._runs
        runs: list[_Run] = []
        kinds: dict[int, str] = {}
        for run, path in self._files:
            try:
                with self._open(path) as r:
                    seed = r.initial_seed
                    history = config_history(r.metadata, r.amendments)
                    config = history[-1]["config"] if history else None
                    info = _Run(run, path, r.schema, seed, run_tags(r.amendments),
                                config if isinstance(config, dict) else {}, r.column_names())
            except ChronoledgerError as exc:
                if self.on_damage == "skip" and isinstance(exc, CorruptDataError):
                    self.skipped.append((run, str(exc)))
                    _warn.warn(f"dataset: {path} is damaged and left out: {exc}")
                    continue
                raise
            kinds.setdefault(info.schema, run)
            runs.append(info)
        if len(kinds) > 1:
            a, b = sorted(kinds.items())[:2]
            raise ConfigError(f"dataset: runs of two schemas in one dataset ({fmt.SCHEMA_NAMES.get(a[0])} "
                              f"{a[1]!r}, {fmt.SCHEMA_NAMES.get(b[0])} {b[1]!r}); read them apart")
        self._runs = runs
        return runs

    @property
    def runs(self) -> list[str]:
        """The runs read (a damaged one left out under on_damage="skip" is not among them)."""
        return [r.run for r in self._load()]

    @property
    def full_schema(self) -> Any:
        """The pyarrow schema of every column the files give (before ``select``)."""
        if self._schema is None:
            self._schema = _schema(self._load())
        return self._schema

    @property
    def schema(self) -> Any:
        """The pyarrow schema of what the batches hold (after ``select``):
        what an engine that asks for ``schema`` (DuckDB does) must be told."""
        return self.arrow_schema

    @property
    def arrow_schema(self) -> Any:
        """The pyarrow schema of what the batches hold (after ``select``)."""
        pa = _pa()
        full = self.full_schema
        if self._columns is None:
            return full
        unknown = [c for c in self._columns if c not in full.names]
        if unknown:
            raise QueryError(f"dataset: no column {', '.join(map(repr, unknown))}; the columns are "
                             f"{', '.join(full.names)}")
        return pa.schema([full.field(c) for c in self._columns])

    def select(self, columns: Sequence[str]) -> "ChronicleDataset":
        """The same dataset with only ``columns`` (in that order): the others are not decoded."""
        names = _names(columns)
        have = set(self.full_schema.names)
        unknown = [c for c in names if c not in have]
        if unknown:
            raise QueryError(f"dataset: no column {', '.join(map(repr, unknown))}; the columns are "
                             f"{', '.join(self.full_schema.names)}")
        return self._derive(columns=names)

    def filter(self, *, start: int | None = None, end: int | None = None,
               phases: Iterable[str] | None = None) -> "ChronicleDataset":
        """The same dataset keeping records with ``start <= timestamp < end``
        (microseconds since 1970, UTC) and of one of ``phases`` (a cycle
        chronicle's phase, an event log's event_type), within any filter it
        already has."""
        f = _filters(start, end, phases)
        old = self._filters
        lo = f.start if old.start is None else old.start if f.start is None else max(f.start, old.start)
        hi = f.end if old.end is None else old.end if f.end is None else min(f.end, old.end)
        ph = f.phases if old.phases is None else old.phases if f.phases is None else old.phases & f.phases
        return self._derive(filters=Filters(lo, hi, ph))

    def _derive(self, columns: list[str] | None = None, filters: Filters | None = None) -> "ChronicleDataset":
        new = object.__new__(ChronicleDataset)
        new.__dict__.update(self.__dict__)
        new.skipped = list(self.skipped)
        # a derived dataset shares the sparse copies (nothing is fetched twice) and counts its own fetches
        new._since = {}
        new.bytes_fetched = new.requests = 0
        if columns is not None:
            new._columns = columns
        if filters is not None:
            new._filters = filters
        return new

    # --- reading ---------------------------------------------------------------------
    def to_batches(self) -> Iterator[Any]:
        """The table's record batches, in file order and, within a file, in
        time order; one block of one file each."""
        pa = _pa()
        runs = self._load()
        schema = self.arrow_schema
        wanted = list(schema.names)
        pool = core.executor()
        # (future, reader to close once it is read: the file's last block) in order, a bounded number ahead
        pending: deque[tuple[Future, ChronicleReader | None]] = deque()
        opened: list[ChronicleReader] = []
        try:
            for run in runs:
                reader = self._open(run.path)
                opened.append(reader)
                plans = list(_plan(reader, self._filters, self._block_range))
                if not plans:
                    reader.close()
                    continue
                for k, plan in enumerate(plans):
                    fut = pool.submit(_batch, pa, reader, run, plan, wanted, schema, self._filters)
                    pending.append((fut, reader if k == len(plans) - 1 else None))
                    while len(pending) >= self._ahead:
                        yield from _take(pending)
            while pending:
                yield from _take(pending)
        finally:
            for fut, _ in pending:                  # a reader stopped early: nothing may decode a closed file
                fut.cancel()
            for fut, _ in pending:
                if not fut.cancelled():
                    try:
                        fut.result()
                    except Exception:      # noqa: BLE001 -- the stream is being abandoned; its error goes with it
                        pass
            for reader in opened:
                reader.close()
            self._count()

    def to_reader(self) -> Any:
        """A ``pyarrow.RecordBatchReader`` over :meth:`to_batches`."""
        pa = _pa()
        return pa.RecordBatchReader.from_batches(self.arrow_schema, self.to_batches())

    def to_table(self) -> Any:
        """Every batch in one ``pyarrow.Table`` (held in memory)."""
        return self.to_reader().read_all()

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow C stream interface: DuckDB, Polars, pandas and pyarrow read the dataset from it."""
        return self.to_reader().__arrow_c_stream__(requested_schema)

    def __repr__(self) -> str:
        return f"<ChronicleDataset of {len(self._files)} file(s)>"


def dataset(sources: Any, **options: Any) -> ChronicleDataset:
    """Chronicles as one table: ``chronoledger.dataset("runs/**/*.cmeta")``
    (a folder, a glob, a list of paths).  See :class:`ChronicleDataset`."""
    return ChronicleDataset(sources, **options)


# --- planning and decoding ------------------------------------------------------------

@dataclass(frozen=True)
class _Plan:
    block: int
    rows: slice | None          # the block's rows the time range keeps (None: all)


def _plan(reader: ChronicleReader, f: Filters, blocks: tuple[int, int] | None = None) -> Iterator[_Plan]:
    for i, bh in enumerate(reader.blocks):
        if bh.rows == 0 or (blocks is not None and not blocks[0] <= i < blocks[1]):
            continue
        if f.start is not None and bh.last_ts < f.start:
            continue
        if f.end is not None and bh.first_ts >= f.end:
            continue
        inside = (f.start is None or bh.first_ts >= f.start) and (f.end is None or bh.last_ts < f.end)
        if inside:
            yield _Plan(i, None)
            continue
        reader.prefetch([i])
        a, b, _ = reader.rows_in(i, f.start, f.end)      # the block's timestamps only
        if b > a:
            yield _Plan(i, slice(a, b))


def _batch(pa: Any, reader: ChronicleReader, run: _Run, plan: _Plan, wanted: list[str], schema: Any,
           f: Filters) -> Any:
    """One block of one file as a record batch of ``schema`` (None if the phase filter keeps none of it)."""
    own = [c for c in wanted if c in run.names]
    reader.prefetch([plan.block])                        # a remote file's block, fetched by this worker
    phase_col = "phase" if run.schema == fmt.SCHEMA_CYCLE else "event_type"
    mask = None
    if f.phases is not None:
        ph = reader.read_block(plan.block, {phase_col}, rows=plan.rows, threads=1).get(phase_col)
        if not isinstance(ph, Labels):
            raise CorruptDataError(f"{run.path}: block {plan.block} lacks its {phase_col} column")
        keep = np.array([nm in f.phases for nm in ph.names], dtype=bool)
        if not keep.any():
            return None
        mask = keep[ph.codes] if len(ph.names) else np.zeros(len(ph.codes), bool)
        if not mask.any():
            return None
        if mask.all():
            mask = None
    cols = reader.read_block(plan.block, set(own), rows=plan.rows, threads=1) if own else {}
    n = _rows_of(reader, plan)
    if mask is not None:
        cols = {k: v[mask] for k, v in cols.items()}
        n = int(mask.sum())
    arrays = []
    for name in wanted:
        field = schema.field(name)
        if name in cols:
            arrays.append(arrow_array(pa, name, cols[name], field.type))
        else:
            arrays.append(_constant(pa, run, name, n, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _take(pending: deque) -> Iterator[Any]:
    fut, last = pending.popleft()
    got = fut.result()
    if last is not None:
        last.close()
    if got is not None:
        yield got


def _rows_of(reader: ChronicleReader, plan: _Plan) -> int:
    if plan.rows is not None:
        return plan.rows.stop - plan.rows.start
    return reader.blocks[plan.block].rows


def _constant(pa: Any, run: _Run, name: str, n: int, typ: Any) -> Any:
    """A column the run's header gives (the same on every row), or nulls for one it lacks."""
    if name == "run":
        return pa.DictionaryArray.from_arrays(_zeros(pa, n), pa.array([run.run]))
    if name == "seed":
        return pa.nulls(n, typ) if run.seed is None else pa.array(np.full(n, run.seed, np.uint64))
    if name == "tags":
        offsets = np.arange(n + 1, dtype=np.int32) * len(run.tags)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(run.tags * n, type=pa.string()))
    if name.startswith(CONFIG_PREFIX):
        key = name[len(CONFIG_PREFIX):]
        value = run.config.get(key)
        if value is None:
            return pa.nulls(n, typ)
        if pa.types.is_string(typ) and not isinstance(value, str):
            value = json.dumps(value, sort_keys=True)
        try:
            one = pa.array([value], type=typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            raise ConfigError(f"dataset: {run.path}: config {key}={value!r} does not fit the column's {typ} "
                              f"(the other runs' values chose it)") from None
        return one.take(pa.array(np.zeros(n, np.int32)))
    return pa.nulls(n, typ)


_ZEROS: list[Any] = []


def _zeros(pa: Any, n: int) -> Any:
    """``n`` int32 zeros as an Arrow array: a slice of one kept for every
    batch (a run column's indices; making them afresh cost ~8 % of a scan)."""
    if not _ZEROS or len(_ZEROS[0]) < n:
        _ZEROS[:] = [pa.array(np.zeros(max(n, 65_536), np.int32))]        # a block's records, by default
    return _ZEROS[0].slice(0, n)


def _schema(runs: list[_Run]) -> Any:
    pa = _pa()
    fields = [pa.field("run", pa.dictionary(pa.int32(), pa.string())), pa.field("seed", pa.uint64()),
              pa.field("tags", pa.list_(pa.string()))]
    keys: dict[str, list[Any]] = {}
    for r in runs:
        for k, value in r.config.items():
            keys.setdefault(k, []).append(value)
    fields += [pa.field(CONFIG_PREFIX + k, _config_type(pa, vals)) for k, vals in keys.items()]
    schema = runs[0].schema if runs else fmt.SCHEMA_CYCLE
    names: list[str] = [n for n, _ in FIXED_COLUMNS[schema]]
    for r in runs:
        for n in r.names:
            if n not in names:
                names.append(n)
    taken = {f.name for f in fields}
    for n in names:
        if n in taken:
            raise ConfigError(f"dataset: a record column is called {n!r}, as a run column is; rename the config key")
        fields.append(pa.field(n, arrow_type(pa, schema, n)))
    return pa.schema(fields)


def _config_type(pa: Any, values: list[Any]) -> Any:
    """One type for a config key across runs, none of its values changed:
    bool, int64, float64 (ints among floats only while a float holds them
    exactly), or text (JSON for anything else).  A null is a missing key."""
    values = [v for v in values if v is not None]
    if not values:
        return pa.string()
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    if len(ints) == len(values) and all(-2 ** 63 <= v < 2 ** 63 for v in ints):
        return pa.int64()
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) \
            and all(-2 ** 53 <= v <= 2 ** 53 for v in ints):
        return pa.float64()
    return pa.string()


def _filters(start: Any, end: Any, phases: Any) -> Filters:
    for name, t in (("start", start), ("end", end)):
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < 2 ** 64):
            raise ConfigError(f"{name}: {t!r} must be a timestamp: microseconds since 1970, a whole number")
    if phases is not None:
        if isinstance(phases, str):
            phases = [phases]
        phases = frozenset(phases)
        if not all(isinstance(p, str) for p in phases):
            raise ConfigError("phases: names of phases (or event types) as text")
    return Filters(None if start is None else int(start), None if end is None else int(end), phases)


def _names(columns: Any) -> list[str]:
    if isinstance(columns, str):
        columns = [columns]
    out = list(columns)
    if not out or not all(isinstance(c, str) for c in out):
        raise ConfigError("columns: a list of column names")
    if len(set(out)) != len(out):
        raise ConfigError(f"columns: a column named twice in {out}")
    return out


def _pa() -> Any:
    return parquet_modules("a dataset of chronicles")[0]


__all__ = ["ChronicleDataset", "Filters", "RUN_COLUMNS", "dataset"]
