"""``Chronicle``: one object to record into a ``.cmeta`` file and read it back."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from chronoledger._fsutil import atomic_write_bytes
from chronoledger.chronicle import format as fmt
from chronoledger.chronicle.reader import ChronicleReader
from chronoledger.chronicle.records import CycleRecord, EventRecord
from chronoledger.chronicle.writer import DEFAULT_BLOCK_RECORDS, AppendCycle, ChronicleWriter
from chronoledger.errors import ChronoledgerError, MissingDependencyError


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
                 initial_seed: int | None = None, recovery: str = "tolerate"):
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
                                           metadata=metadata, config=config, initial_seed=initial_seed)
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
        elif w.schema == fmt.SCHEMA_CYCLE:
            w.append_cycle(**fields)
        else:
            w.append_event(**fields)
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
    def scale(self) -> float:
        return self._writer.scale if self._writer else self.reader().scale

    @property
    def metadata(self) -> dict[str, Any]:
        return (self._writer.header if self._writer else self.reader().header).metadata

    @property
    def config(self) -> dict[str, Any] | None:
        """The run configuration stored in the header, if any."""
        return self.metadata.get("config")

    @property
    def initial_seed(self) -> int | None:
        """The run's initial seed stored in the header, if any."""
        return self.metadata.get("initial_seed")

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

    def to_numpy(self, columns: list[str] | None = None) -> dict[str, npt.NDArray[Any]]:
        """Every record as numpy columns: timestamp (uint64), phase / event_type
        (object), loss_value, coherence, tensor_signature.0..2 (float32),
        action_code (int16, -1 for none), seed_state (uint64), payload (object,
        JSON text), and one float64 column per metric or value name
        ("metrics.NAME" / "values.NAME", NaN where a record lacks it)."""
        return self.reader().to_numpy(columns)

    def to_pandas(self):
        """A pandas DataFrame of :meth:`to_numpy` (needs the ``arrow`` extra:
        ``pip install 'chronoledger[arrow]'``; raises MissingDependencyError
        without pandas)."""
        try:
            import pandas as pd               # optional (the arrow extra), and heavy: imported on use
        except ImportError:
            raise MissingDependencyError("to_pandas needs pandas, which is not installed: "
                                         "pip install 'chronoledger[arrow]'") from None
        return pd.DataFrame(self.to_numpy())

    def to_arrow(self):
        """A pyarrow Table of :meth:`to_numpy` (needs the ``arrow`` extra:
        ``pip install 'chronoledger[arrow]'``; raises MissingDependencyError
        without pyarrow)."""
        try:
            import pyarrow as pa              # optional (the arrow extra), and heavy: imported on use
        except ImportError:
            raise MissingDependencyError("to_arrow needs pyarrow, which is not installed: "
                                         "pip install 'chronoledger[arrow]'") from None
        cols = self.to_numpy()
        arrays = {}
        for k, v in cols.items():
            if k == "action_code":
                arrays[k] = pa.array(np.where(v < 0, 0, v).astype(np.uint8), mask=v < 0)
            elif v.dtype == object:
                arrays[k] = pa.array(v.tolist(), type=pa.string())
            else:
                arrays[k] = pa.array(v)
        return pa.table(arrays)

    def to_parquet(self, path: str | os.PathLike[str], compression: str = "zstd") -> int:
        """Write :meth:`to_arrow` to ``path`` as Parquet, replacing it
        atomically (a crash leaves the old file or the new one); returns the
        record count.  Needs the ``arrow`` extra (MissingDependencyError
        without pyarrow)."""
        table = self.to_arrow()
        import pyarrow.parquet as pq          # optional, imported on use; present: to_arrow has imported pyarrow

        buf = io.BytesIO()
        pq.write_table(table, buf, compression=compression)
        atomic_write_bytes(path, buf.getvalue())
        return table.num_rows

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
