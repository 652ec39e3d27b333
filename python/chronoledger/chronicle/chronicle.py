"""``Chronicle``: one object to record into a ``.cmeta`` file and read it back."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from chronoledger.chronicle import format as fmt
from chronoledger.chronicle.arrow import arrow_array
from chronoledger.chronicle.export import export
from chronoledger.chronicle.columns import Labels, Optional
from chronoledger.chronicle.precision import Precision
from chronoledger.chronicle.reader import ChronicleReader, config_history, run_tags
from chronoledger.chronicle.records import CycleRecord, EventRecord
from chronoledger.chronicle.writer import DEFAULT_BLOCK_RECORDS, AppendCycle, ChronicleWriter
from chronoledger.errors import ChronoledgerError, MissingDependencyError, ValidationError


class Chronicle:
    """A chronicle file opened for reading (``"r"``) or for recording
    (``"w"`` create or truncate, ``"x"`` create only, ``"a"`` append or create).

    Recording is thread-safe; records are ordered by timestamp within each
    block of ``block_records`` and a record older than what is already
    written raises OrderError.  Reading methods (iteration, ``query``,
    ``to_numpy``) see everything appended so far: on a writer they flush
    first.  Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], mode: str = "r", *, schema: str = "cycle",
                 scale: float | None = None, block_records: int = DEFAULT_BLOCK_RECORDS, durability: str = "os",
                 metadata: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
                 initial_seed: int | None = None, recovery: str = "tolerate", precision: object = None,
                 salt: int | None = None):
        self.path = Path(path)
        self.mode = mode
        self.recovery = recovery
        self._writer: ChronicleWriter | None = None
        self._reader: ChronicleReader | None = None
        if mode == "r":
            self._reader = ChronicleReader(self.path, recovery)
        elif mode in ("w", "x", "a"):
            self._writer = ChronicleWriter(self.path, mode, schema=schema, scale=scale,
                                           block_records=block_records, durability=durability,
                                           metadata=metadata, config=config, initial_seed=initial_seed,
                                           precision=precision, salt=salt)
        else:
            raise ValueError(f"mode must be 'r', 'w', 'x' or 'a', got {mode!r}")

    @classmethod
    def open(cls, path: str | os.PathLike[str], mode: str = "r", **options: Any) -> "Chronicle":
        """Open a chronicle; see the class docstring for modes and options."""
        return cls(path, mode, **options)

    # --- recording ----------------------------------------------------------
    def _need_writer(self) -> ChronicleWriter:
        if self._writer is None:
            raise ChronoledgerError(f"{self.path}: opened read-only (mode 'r'); open with 'a' to record")
        return self._writer

    def append(self, record: CycleRecord | EventRecord | None = None, /, **fields: Any) -> None:
        """Record one CycleRecord / EventRecord, or one record given by keywords
        (``timestamp=, phase=, loss_value=, coherence=, tensor_signature=,
        action_code=, seed_state=, metrics=`` for cycles; ``timestamp=,
        event_type=, payload=, values=`` for events)."""
        w = self._need_writer()
        if record is not None:
            if fields:
                raise TypeError("append takes a record or keywords, not both")
            w.append(record)
        else:
            try:
                if w.schema == fmt.SCHEMA_CYCLE:
                    w.append_cycle(**fields)
                else:
                    w.append_event(**fields)
            except TypeError:           # a field missing or unknown: name it (Python's message counts arguments)
                kind = CycleRecord if w.schema == fmt.SCHEMA_CYCLE else EventRecord
                known = {f.name: f.default is f.default_factory is dataclasses.MISSING for f in dataclasses.fields(kind)}
                problems = [(None, k, "missing") for k, required in known.items() if required and k not in fields]
                problems += [(None, k, "unknown") for k in fields if k not in known]
                if not problems:
                    raise
                what = [f"{'lacks' if why == 'missing' else 'has no field'} {k}" for _, k, why in problems]
                raise ValidationError(f"{self.path}: append: the {fmt.SCHEMA_NAMES[w.schema]} record "
                                      f"{'; '.join(what)} (its fields: {', '.join(known)})", problems) from None
        self._reader_stale()

    @property
    def append_cycle(self) -> AppendCycle:
        """The fastest way to record a cycle: ``append_cycle(timestamp, phase,
        loss_value, coherence, tensor_signature=None, action_code=None,
        seed_state=0, metrics=None)``, positional arguments, compiled checks.
        Bind it once (``rec = ch.append_cycle``) in a hot loop."""
        return self._need_writer().append_cycle

    def extend(self, columns: Mapping[str, npt.ArrayLike], labels: Mapping[str, Sequence[str]] | None = None) -> None:
        """Record many records given as numpy columns (see :meth:`to_numpy` for the names;
        ``tensor_signature`` may be one (n, 3) array; ``action_code`` uses -1 for none).
        ``phase``/``event_type`` may be integer codes into ``labels={"phase": [names]}``."""
        self._need_writer().extend(columns, labels)
        self._reader_stale()

    def flush(self) -> None:
        """Write every staged record to the file now."""
        self._need_writer().flush()
        self._reader_stale()

    def save(self) -> None:
        """Flush, write a footer (index, count, payload CRC) and fsync."""
        self._need_writer().save()
        self._reader_stale()

    # --- reading ------------------------------------------------------------
    def _reader_stale(self) -> None:
        if self._writer is not None and self._reader is not None:
            self._reader.close()
            self._reader = None

    def reader(self) -> ChronicleReader:
        """A reader of the file as it is now (flushing a writer first)."""
        if self._writer is not None:
            if self._writer.staged:
                self._writer.flush()
            if self._reader is not None and len(self._reader) != self._writer.records:
                self._reader_stale()        # appends through append_cycle bypass this object
            if self._reader is None:
                self._reader = ChronicleReader(self.path, self.recovery)
        elif self._reader is None:
            raise ChronoledgerError(f"{self.path}: the chronicle is closed")
        return self._reader

    @property
    def schema(self) -> str:
        w = self._writer
        return fmt.SCHEMA_NAMES[w.schema if w else self.reader().schema]

    @property
    def scale(self) -> float | None:
        """A format-1 file's one fixed-point scale; None for format 2 (see :attr:`precision`)."""
        return self._writer.scale if self._writer else self.reader().scale

    @property
    def precision(self) -> Precision:
        """How the file stores its floats (chronicle.precision)."""
        return self._writer.precision if self._writer else self.reader().precision

    @property
    def metadata(self) -> dict[str, Any]:
        return (self._writer.header if self._writer else self.reader().header).metadata

    @property
    def history(self) -> list[dict[str, Any]]:
        """The run's amendments in the order they were made: config versions,
        tags, notes and rewinds, each a dict with its ``op`` and ``at`` (UTC)."""
        return self._writer.amendments if self._writer else self.reader().amendments

    @property
    def config(self) -> dict[str, Any] | None:
        """The run configuration: the newest version (see :meth:`set_config`),
        or the one given at creation, or None."""
        versions = self.config_history
        return versions[-1]["config"] if versions else None

    @property
    def config_history(self) -> list[dict[str, Any]]:
        """Every version of the configuration, oldest first: ``{"version",
        "config", "at", "reason"}`` (version 0, the creation's, has no ``at``)."""
        return config_history(self.metadata, self.history)

    @property
    def tags(self) -> list[str]:
        """The run's tags, in the order they were first added (removed ones left out)."""
        return run_tags(self.history)

    @property
    def notes(self) -> list[dict[str, Any]]:
        """The run's notes: ``{"text", "at"}``, oldest first."""
        return [{"text": e.get("text"), "at": e.get("at")} for e in self.history if e.get("op") == "note"]

    def set_config(self, config: dict[str, Any], reason: str | None = None) -> int:
        """Amend the configuration: a new version kept in the file beside the
        older ones; returns its number."""
        version = self._need_writer().set_config(config, reason)
        self._reader_stale()
        return version

    def tag(self, *add: str, remove: Sequence[str] = ()) -> None:
        """Add tags to the run (and remove some)."""
        self._need_writer().tag(*add, remove=remove)
        self._reader_stale()

    def note(self, text: str) -> None:
        """Add a note to the run's history."""
        self._need_writer().note(text)
        self._reader_stale()

    def rewind(self, to: int) -> int:
        """Drop the records newer than ``to`` (to resume a run from a
        checkpoint at step ``to``); returns how many.  See ChronicleWriter.rewind."""
        dropped = self._need_writer().rewind(to)
        self._reader_stale()
        return dropped

    @property
    def initial_seed(self) -> int | None:
        """The run's initial seed stored in the header, if any."""
        if self._writer is not None:
            return self._writer.header.metadata.get("initial_seed")
        return self.reader().initial_seed

    @property
    def last_timestamp(self) -> int | None:
        """The newest timestamp written to the file (on a writer: flushed),
        or None for an empty chronicle.  An append older than this (outside
        the block being staged) raises OrderError."""
        if self._writer is not None:
            return self._writer._current_floor()
        blocks = self.reader().blocks
        return blocks[-1].last_ts if blocks else None

    def __len__(self) -> int:
        if self._writer is not None:
            return self._writer.records + self._writer.staged
        return len(self.reader())

    def __iter__(self) -> Iterator[CycleRecord | EventRecord]:
        return self.reader().records()

    def query(self, start: int, end: int) -> list[CycleRecord | EventRecord]:
        """Records with ``start <= timestamp < end``, in order."""
        return list(self.reader().records(start, end))

    query_range = query

    def query_columns(self, start: int, end: int, columns: list[str] | None = None) -> dict[str, npt.NDArray[Any]]:
        """Like :meth:`query`, as numpy columns."""
        return self.reader().query(start, end, columns)

    def to_numpy(self, columns: list[str] | None = None, *, categorical: bool = False) -> dict[str, Any]:
        """Every record as numpy columns: timestamp (uint64), phase / event_type
        (object; with ``categorical=True`` a :class:`~chronoledger.chronicle.columns.Labels`
        of uint32 codes and the label names, much faster to load), loss_value,
        coherence, tensor_signature.0..2 (float32), action_code (int16, -1 for
        none), seed_state (uint64), payload (object, JSON text), and one float64
        column per metric or value name ("metrics.NAME" / "values.NAME", NaN
        where a record lacks it: :meth:`to_arrow` keeps absent apart from a
        stored NaN)."""
        return self.reader().to_numpy(columns, categorical=categorical)

    def to_pandas(self):
        """A pandas DataFrame of :meth:`to_numpy` (needs the ``arrow`` extra:
        ``pip install 'chronoledger[arrow]'``; raises MissingDependencyError
        without pandas)."""
        try:
            import pandas as pd               # optional (the arrow extra), and heavy: imported on use
        except ImportError:
            raise MissingDependencyError("to_pandas needs pandas, which is not installed: "
                                         "pip install 'chronoledger[arrow]'") from None
        cols = self.reader().columns()
        frame = {}
        for k, v in cols.items():
            if isinstance(v, Labels):        # categorical: codes and labels, no string per record
                frame[k] = pd.Categorical.from_codes(v.codes.astype(np.int32), categories=list(v.names))
            elif isinstance(v, Optional):
                frame[k] = v.values
            else:
                frame[k] = v
        return pd.DataFrame(frame, copy=False)

    def to_arrow(self):
        """A pyarrow Table of :meth:`to_numpy` (needs the ``arrow`` extra:
        ``pip install 'chronoledger[arrow]'``; raises MissingDependencyError
        without pyarrow)."""
        try:
            import pyarrow as pa              # optional (the arrow extra), and heavy: imported on use
        except ImportError:
            raise MissingDependencyError("to_arrow needs pyarrow, which is not installed: "
                                         "pip install 'chronoledger[arrow]'") from None
        cols = self.reader().columns()
        return pa.table({k: arrow_array(pa, k, v) for k, v in cols.items()})

    def to_parquet(self, path: str | os.PathLike[str], compression: str = "zstd") -> int:
        """Write every record to ``path`` as Parquet (the columns of
        :meth:`to_arrow`), a block at a time, replacing it atomically (a crash
        leaves the old file or the new one); the run's config, initial seed
        and header go in the file's key-value metadata
        (:func:`chronoledger.chronicle.export`).  Returns the record count.
        Needs the ``arrow`` extra (MissingDependencyError without pyarrow)."""
        return export(self.reader(), path, "parquet", force=True, compression=compression)

    # --- closing --------------------------------------------------------------
    def close(self) -> None:
        """Write what is staged, the footer, fsync, and release the file."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> "Chronicle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Chronicle({str(self.path)!r}, mode={self.mode!r}, records={len(self)})"
