"""Writing a ``.cmeta`` file: one writer per file, appends only, blocks by count."""

from __future__ import annotations

import atexit
import collections
import errno
import itertools
import json
import math
import os
import logging
import sys
import threading
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

from chronoledger import core
from chronoledger._fsutil import fsync_dir
from chronoledger._chronicle import CycleStager, start_writeback
from chronoledger._version import __version__
from chronoledger._warn import warn
from chronoledger.chronicle import columns as colfmt
from chronoledger.chronicle.columns import ColumnValues, Floats, Labels, Present
from chronoledger.chronicle import format as fmt
from chronoledger.chronicle.precision import Precision, check_array, check_value
from chronoledger.chronicle.reader import apply_rewind, header_precision, scan
from chronoledger.chronicle.records import (
    CYCLE_COLUMNS,
    DYNAMIC_PREFIX,
    EVENT_COLUMNS,
    PHASE_MAX_BYTES,
    CycleRecord,
    EventRecord,
)
from chronoledger.errors import (ChronoledgerError, ConfigError, CorruptDataError, ExistsError, MissingFileError,
                                 OrderError, StorageError, ValidationError,
                                 WriterLockedError)   # WriterLockedError: re-exported here

if sys.platform != "win32":
    import fcntl

U64_MAX = 2**64 - 1
DURABILITY = ("none", "os", "flush")
DEFAULT_BLOCK_RECORDS = 65536
# One encoder and decoder for every payload (json.dumps with options builds a new encoder per call).
_JSON_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)
_JSON_DECODER = json.JSONDecoder()
MAX_QUEUED_WINDOWS = 4          # sealed windows waiting for the background writer
_ENCODE_AHEAD = max(1, min(MAX_QUEUED_WINDOWS, os.cpu_count() or 1))   # windows encoded at once


#: A metric / value column as staging holds it: (float64 values, present),
#: values 0 where absent.
OptionalColumn: TypeAlias = "tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]"
#: A column as staging holds it: an array (timestamps and the other fixed
#: columns), Labels (phase / event_type), or an optional metric / value.
StagedColumn: TypeAlias = "npt.NDArray[Any] | Labels | OptionalColumn"
#: An event staged by append_event: (timestamp, event_type, payload JSON text, values).
_EventRow: TypeAlias = "tuple[int, str, str, dict[str, float] | None]"


class AppendCycle(Protocol):
    """The signature of :meth:`ChronicleWriter.append_cycle` (the compiled
    ``CycleStager.append``); it returns whether the record completed a window."""

    def __call__(self, timestamp: int, phase: str, loss_value: float, coherence: float,
                 tensor_signature: tuple[float, float, float] | None = None, action_code: int | None = None,
                 seed_state: int = 0, metrics: dict[str, float] | None = None) -> bool: ...


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _take(v: StagedColumn, index: slice | npt.NDArray[np.integer[Any]]) -> StagedColumn:
    """Rows ``index`` of a staged column (an array, Labels, or a (values, present) pair)."""
    if isinstance(v, tuple):
        return (v[0][index], v[1][index])
    return v[index]


def _timestamps(cols: Mapping[str, StagedColumn]) -> npt.NDArray[np.uint64]:
    """The timestamp column of staged columns (always a uint64 array)."""
    ts = cols["timestamp"]
    assert isinstance(ts, np.ndarray)
    return ts


_open_writers: "weakref.WeakSet[ChronicleWriter]" = weakref.WeakSet()
_logger = logging.getLogger("chronoledger.chronicle")


@atexit.register
def _close_open_writers() -> None:
    # A program that ends without close() would otherwise lose the windows the
    # background thread had not written yet (it is a daemon thread).
    for writer in list(_open_writers):
        try:
            writer.close()
        except Exception as exc:  # noqa: BLE001 - at exit, report and go on (no user's line to warn at)
            _logger.error("closing %s at exit failed: %s", writer.path, exc)


def lock_for_writing(fd: int, path: Path) -> None:
    """Take the one-writer-per-file OS lock (``flock``) on ``fd``, open on ``path``,
    without waiting; :class:`WriterLockedError` if a writer (or a recovery) holds it.
    The lock lasts until ``fd`` is closed."""
    if sys.platform == "win32":  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise WriterLockedError(f"{path}: another writer has this chronicle open; "
                                f"only one writer per file is allowed (readers may open it at any time)") from None





class ChronicleWriter:
    """Appends records to a chronicle file.

    Records are staged in memory and written as compressed, checksummed
    blocks of ``block_records`` records (and on :meth:`flush`); within a
    block they are ordered by (timestamp, arrival).  ``durability="os"``
    (default) leaves writing back to the OS and fsyncs on close and save;
    ``"flush"`` fsyncs after every block; ``"none"`` never fsyncs (what a
    buffered ``file.write`` + ``flush`` gives: safe against a crash of the
    process, not of the machine).
    """

    #: Stage one cycle record: ``append_cycle(timestamp, phase, loss_value,
    #: coherence, tensor_signature=None, action_code=None, seed_state=0,
    #: metrics=None)``.  On a cycle chronicle it is, per writer, the compiled
    #: ``CycleStager.append``; on an event log it refuses cycles.
    append_cycle: AppendCycle

    def __init__(self, path: str | os.PathLike[str], mode: str = "a", *, schema: str = "cycle",
                 scale: float | None = None, block_records: int = DEFAULT_BLOCK_RECORDS, durability: str = "os",
                 metadata: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
                 initial_seed: int | None = None, precision: object = None, salt: int | None = None):
        if mode not in ("w", "x", "a"):
            raise ValueError(f"mode must be 'w', 'x' or 'a', got {mode!r}")
        if durability not in DURABILITY:
            raise ValueError(f"durability must be one of {DURABILITY}, got {durability!r}")
        if not 1 <= block_records <= fmt.BLOCK_MAX_RECORDS:
            raise ValueError(f"block_records must be 1..{fmt.BLOCK_MAX_RECORDS}, got {block_records}")
        schema_id = {"cycle": fmt.SCHEMA_CYCLE, "event": fmt.SCHEMA_EVENT}.get(schema)
        if schema_id is None:
            raise ValueError(f"schema must be 'cycle' or 'event', got {schema!r}")
        if scale is not None and (not math.isfinite(scale) or scale <= 0):
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        if salt is not None and (isinstance(salt, bool) or not isinstance(salt, int) or not 0 <= salt <= U64_MAX):
            raise ValueError(f"salt must be a u64, got {salt!r}")
        self._salt = salt
        if scale is not None and precision is not None:
            raise ConfigError("give precision= or scale= (the older name of one scale for every float), not both")
        wanted = None if scale is None and precision is None else \
            Precision.parse(scale if precision is None else precision, fmt.SCHEMA_NAMES[schema_id])
        self.path = Path(path)
        self.durability = durability
        self.block_records = block_records
        self._lock = threading.RLock()
        self._created = False         # a new file whose directory entry is not fsynced yet
        self._closed = False
        self._broken: OSError | None = None
        flags = os.O_RDWR | os.O_CREAT | (os.O_EXCL if mode == "x" else 0)
        for _attempt in range(3):
            try:
                self._fd = os.open(self.path, flags, 0o644)
            except FileExistsError:
                raise ExistsError(errno.EEXIST, f"{self.path}: already exists (mode 'x' creates a new chronicle only)",
                                  str(self.path)) from None
            except FileNotFoundError:
                raise MissingFileError(f"{self.path}: the folder {self.path.parent} does not exist") from None
            except OSError as exc:   # a folder, a missing permission, a full or failing disk
                raise StorageError(exc.errno, f"{self.path}: cannot be opened for writing: {exc.strerror or exc}",
                                   str(self.path)) from None
            try:
                lock_for_writing(self._fd, self.path)
            except BaseException:
                os.close(self._fd)
                raise
            # `recover --mode skip` replaces the file by renaming a new one over
            # it: a lock taken on the old inode would protect nothing.
            st, now = os.fstat(self._fd), os.stat(self.path)
            if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
                break
            os.close(self._fd)
        else:
            raise WriterLockedError(f"{self.path}: the file keeps being replaced; cannot lock it")
        try:
            if mode == "w":
                os.ftruncate(self._fd, 0)
            size = os.fstat(self._fd).st_size
            if size == 0:
                self._create(schema_id, wanted or Precision.parse(None, fmt.SCHEMA_NAMES[schema_id]), metadata,
                             config, initial_seed)
            else:
                self._continue(schema_id, wanted, metadata, config, initial_seed, size)
        except BaseException:
            os.close(self._fd)
            raise
        self._dynamic_prefix = DYNAMIC_PREFIX[self.schema]
        self._fixed = CYCLE_COLUMNS if self.schema == fmt.SCHEMA_CYCLE else EVENT_COLUMNS
        self._finite_only = self.header.version == 1   # format 1 has no room for NaN or infinity
        self._chunks: list[list[_EventRow] | dict[str, StagedColumn]] = []   # staged rows and column dicts
        self._rows: list[_EventRow] = []      # the open list-of-tuples chunk
        self._staged = 0
        self._buffer = core.AppendBuffer(flush_every=block_records, sink=self._write_windows)
        self._base = 0                        # arrival number of the first staged record
        # Cycle records are staged in compiled code; full windows go to a
        # background thread that encodes and writes them in order, so the
        # appending thread does not wait for compression.
        self._io_lock = threading.Lock()      # one block write at a time
        # sealed windows of the stager (window, records); None stops the worker
        self._queue: collections.deque[tuple[object, int] | None] = collections.deque()
        self._cv = threading.Condition()
        self._worker: threading.Thread | None = None
        self._worker_error: BaseException | None = None
        self._closing = False
        self._enqueued = 0                    # windows queued so far ...
        self._written = 0                     # ... and written: flush waits for its own only
        self._stager: CycleStager | None = None
        if self.schema == fmt.SCHEMA_CYCLE:
            pr = self.precision
            self._stager = CycleStager(block_records, self._enqueue_window, self._floor, str(self.path),
                                       tuple(0.0 if f is None else f for f in pr.fields),
                                       0.0 if pr.dynamic is None else pr.dynamic, pr.named_scales(),
                                       self._finite_only, check_value)
            # Cycle records never use the Python staging (batches go through
            # the stager too), so appending is the compiled method itself.
            self.append_cycle = self._stager.append
        else:
            self.append_cycle = self._refuse_cycle
        _open_writers.add(self)

    # --- opening ------------------------------------------------------------
    def _create(self, schema_id: int, precision: Precision, metadata: dict[str, Any] | None,
                config: dict[str, Any] | None, initial_seed: int | None) -> None:
        meta: dict[str, object] = {"created_by": f"chronoledger {__version__}", "schema": fmt.SCHEMA_NAMES[schema_id],
                                   "precision": precision.as_metadata()}
        if config is not None:
            meta["config"] = config
        if initial_seed is not None:
            if not 0 <= int(initial_seed) <= U64_MAX:
                raise ValueError(f"initial_seed must be a u64, got {initial_seed!r}")
            meta["initial_seed"] = int(initial_seed)
        if metadata:
            meta["user"] = metadata
        # ties every block to this file; a caller that wants the same bytes from the same run gives its own
        salt = self._salt if self._salt is not None else int.from_bytes(os.urandom(8), "little")
        try:
            head = fmt.pack_header(schema_id, None, meta, salt)
        except ValueError as exc:           # the metadata is too large, or not JSON
            raise ValidationError(f"{self.path}: {exc}") from None
        os.write(self._fd, head)
        # With durability "os" the header is made durable with the first
        # fsync (close or save); "flush" makes every write durable at once.
        self._created = True
        if self.durability == "flush":
            os.fsync(self._fd)
            fsync_dir(self.path)
            self._created = False
        self.header = fmt.read_header(head, str(self.path))
        self.schema = schema_id
        self.scale: float | None = None         # format 1's one scale; format 2 keeps a precision instead
        self.precision = precision
        self._pos = len(head)
        self._index: list[fmt.BlockHeader] = []
        self._total = 0
        self._floor: int | None = None
        self._payload_crc = 0
        self._sequence = 0
        self._meta: list[dict[str, Any]] = []
        self._meta_offsets: list[int] = []

    def _continue(self, schema_id: int, wanted: Precision | None, metadata: dict[str, Any] | None,
                  config: dict[str, Any] | None, initial_seed: int | None, size: int) -> None:
        with fmt.mapped(self._fd) as buf:
            # every block's payload CRC is checked (what `recover` checks): a damaged block in the
            # middle must not end up followed by new ones
            layout = scan(buf, str(self.path), check_payloads=True)
            if layout.corrupt:
                d = layout.corrupt[0]
                raise CorruptDataError(f"{self.path}: cannot append: corrupt data at offset {d.start}..{d.end} "
                                       f"({d.reason}); run `chronoledger chronicle recover --mode skip` first",
                                       offset=d.start)
            header = layout.header
            if header.schema != schema_id:
                raise ConfigError(f"{self.path}: the file is a {header.schema_name} chronicle, "
                                  f"not {fmt.SCHEMA_NAMES[schema_id]}")
            precision = header_precision(header, str(self.path))
            if wanted is not None and wanted != precision:
                raise ConfigError(f"{self.path}: the file stores floats with precision {precision.as_metadata()}, "
                                  f"not {wanted.as_metadata()}; precision is fixed when a chronicle is created")
            if metadata or config is not None or initial_seed is not None:
                raise ConfigError(f"{self.path}: metadata, config and initial_seed are fixed when a chronicle "
                                  f"is created (amend the config with Chronicle.set_config); this one exists "
                                  f"already")
            end = layout.clean_end
            with memoryview(buf) as view, view[header.length:end] as kept:   # in place, no copy of the file
                crc = core.crc64(kept)      # not a footer's word for it: the bytes were all read anyway
        if layout.torn_tail is not None:
            torn = layout.torn_tail
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
            warn(f"{self.path}: dropped a torn tail of {size - end} bytes at offset {end} "
                 f"({torn.reason}; {torn.records} unflushed records) before appending")
        elif layout.damaged_footer is not None:
            # appending after it would leave a damaged block in the middle of the file
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
            warn(f"{self.path}: dropped a damaged footer of {size - end} bytes at offset {end} "
                 f"({layout.damaged_footer.reason}); the {len(layout.blocks):,} data blocks before it "
                 f"are intact and the next footer indexes them")
        self.header = header
        self.schema, self.scale = header.schema, header.scale
        self.precision = precision
        self._pos = end
        self._index = list(layout.blocks)
        self._total = sum(b.rows for b in self._index)
        self._floor = self._index[-1].last_ts if self._index else None
        self._payload_crc = crc
        self._sequence = layout.next_sequence
        self._meta = list(layout.meta)
        self._meta_offsets = list(layout.meta_offsets)
        rewinds = [e["to"] for e in self._meta if e.get("op") == "rewind" and isinstance(e.get("to"), int)]
        if rewinds:                 # appending goes on from the newest rewind, at the least
            self._floor = max(self._floor or 0, rewinds[-1]) if self._floor is not None else rewinds[-1]

    # --- appending ----------------------------------------------------------
    def _check_float(self, name: str, v: object, scale: float | None) -> float:
        """A metric / value checked against its precision (chronicle.precision)."""
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise ValidationError(f"{self.path}: {name} must be a number, got {v!r}")
        try:
            f = float(v)
        except OverflowError:
            raise ValidationError(f"{self.path}: {name} = {v!r} is too large for a float") from None
        if self._finite_only and not math.isfinite(f):
            raise ValidationError(f"{self.path}: {name} = {v!r} cannot be stored: this chronicle is in format 1 "
                                  f"(fixed point), which has no NaN or infinity")
        check_value(f, scale, False, f"{self.path}: {name}")
        return f

    def _check_ts(self, ts: int) -> int:
        t = int(ts)
        if not 0 <= t <= U64_MAX:
            raise ValidationError(f"{self.path}: timestamp {ts!r} is not a u64")
        if self._floor is not None and t < self._floor:
            raise OrderError(f"{self.path}: timestamp {t} is older than the last flushed timestamp {self._floor}")
        return t

    def _check_extra(self, extra: object) -> dict[str, float] | None:
        if not extra:
            return None
        if not isinstance(extra, dict):
            raise ValidationError(f"{self.path}: metrics/values must be a dict of name -> float")
        out: dict[str, float] = {}
        for k, v in extra.items():
            if not isinstance(k, str) or not k or len(k.encode()) > 200:
                raise ValidationError(f"{self.path}: metric name {k!r} must be a non-empty str of at most 200 bytes")
            out[k] = self._check_float(f"{'metric' if self.schema == fmt.SCHEMA_CYCLE else 'value'} {k!r}", v,
                                       self.precision.of(k))
        return out

    def _refuse_cycle(self, *args: object, **kwargs: object) -> NoReturn:
        """append_cycle of an event log."""
        raise ValidationError(f"{self.path}: this is an event log; append events, not cycles")

    def append_event(self, timestamp: int, event_type: str, payload: dict[str, Any] | None = None,
                     values: dict[str, float] | None = None) -> None:
        """Stage one event: a type, a JSON object payload, optional numeric values."""
        if self.schema != fmt.SCHEMA_EVENT:
            raise ValidationError(f"{self.path}: this is a cycle chronicle; append cycles, not events")
        if not isinstance(event_type, str) or not event_type or len(event_type.encode()) > PHASE_MAX_BYTES:
            raise ValidationError(f"{self.path}: event_type must be a non-empty str of at most "
                                  f"{PHASE_MAX_BYTES} bytes, got {event_type!r}")
        payload = {} if payload is None else payload
        if not isinstance(payload, dict):
            raise ValidationError(f"{self.path}: payload must be a JSON object (a dict), got {type(payload).__name__}")
        try:
            text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{self.path}: payload is not JSON-serialisable: {exc}") from None
        self._push(timestamp, (None, event_type, text, self._check_extra(values)))

    def append(self, record: CycleRecord | EventRecord) -> None:
        """Stage a CycleRecord or EventRecord."""
        if isinstance(record, CycleRecord):
            self.append_cycle(record.timestamp, record.phase, record.loss_value, record.coherence,
                              record.tensor_signature, record.action_code, record.seed_state, record.metrics)
        elif isinstance(record, EventRecord):
            self.append_event(record.timestamp, record.event_type, record.payload, record.values)
        else:
            raise ValidationError(f"{self.path}: expected a CycleRecord or EventRecord, got {type(record).__name__}")

    def _push(self, timestamp: int, row: tuple[None, str, str, dict[str, float] | None]) -> None:
        with self._lock:
            self._ensure_open()
            t = self._check_ts(timestamp)
            self._rows.append((t,) + row[1:])
            self._staged += 1
            self._buffer.append(t)

    def extend(self, columns: Mapping[str, npt.ArrayLike], labels: Mapping[str, Sequence[str]] | None = None) -> None:
        """Stage many records from numpy columns (names as in :meth:`Chronicle.to_numpy`).

        ``phase`` / ``event_type`` may be strings, or integer codes into the
        names given as ``labels={"phase": [...]}`` (much faster for big
        batches).  Every value is checked before anything is staged: a bad
        batch stores nothing and the error names the column and the index.
        """
        with self._lock:
            self._ensure_open()
            ts, cols = self._normalise_columns(columns, labels)
            n = len(ts)
            if n == 0:
                return
            if self._stager is not None:
                self._check_batch_order(ts, self._stager.pending, self._stager.pending_max)
                phase = cols.pop("phase")
                assert isinstance(phase, Labels)      # _normalise_columns makes it Labels
                cols["phase"] = phase.codes
                pre = self._dynamic_prefix
                # metrics travel apart from the fixed columns, so a metric
                # named like one ("metrics.phase") cannot collide with it
                metrics = {k[len(pre):]: v for k, v in cols.items() if isinstance(v, tuple)}
                fixed = {k: v for k, v in cols.items() if not isinstance(v, tuple)}
                self._stager.extend(fixed, phase.names, metrics)
                return
            staged_ts = [_timestamps(c) for c in self._chunks if isinstance(c, dict)] + \
                [np.array([r[0] for r in self._rows], dtype=np.uint64)] if self._staged else []
            staged_max = max((int(t.max()) for t in staged_ts if len(t)), default=None)
            self._check_batch_order(ts, self._buffer.pending, staged_max)
            self._close_rows()
            self._chunks.append(cols)
            self._staged += n
            self._buffer.extend(ts)

    def _check_batch_order(self, ts: npt.NDArray[np.uint64], staged: int, staged_max: int | None) -> None:
        """Refuse a batch, before staging any of it, if one of its records
        would land in a window after records newer than itself were sealed:
        the same OrderError appending them one by one would raise, but atomic."""
        n = len(ts)
        first = self.block_records - staged          # where the first window seals, inside the batch
        if first >= n:
            return
        # The usual batch is in order and newer than what is staged: one
        # comparison pass instead of two scans.
        if (staged_max is None or int(ts[0]) >= staged_max) and bool(np.all(ts[1:] >= ts[:-1])):
            return
        prefix_max = np.maximum.accumulate(ts)
        if staged_max is not None:
            prefix_max = np.maximum(prefix_max, np.uint64(staged_max))
        suffix_min = np.minimum.accumulate(ts[::-1])[::-1]
        bounds = np.arange(first, n, self.block_records)      # first >= 1: a window is never left full
        bad = np.flatnonzero(suffix_min[bounds] < prefix_max[bounds - 1])
        if bad.size:
            b = int(bounds[bad[0]])
            limit = int(prefix_max[b - 1])
            i = b + int(np.argmax(ts[b:] < limit))
            raise OrderError(f"{self.path}: timestamp[{i}] = {int(ts[i])} would follow a flushed block that "
                             f"ends at {limit}; nothing of this batch was stored")

    def _labels(self, name: str, arr: npt.NDArray[Any], names: Sequence[str] | None) -> Labels:
        if arr.dtype.kind in "iu":
            if names is None:
                raise ValidationError(f"{self.path}: {name} is given as integer codes; pass labels={{{name!r}: "
                                      f"[names...]}} to say what they mean")
            names = list(names)
            for nm in names:
                if not isinstance(nm, str) or not nm or len(nm.encode()) > PHASE_MAX_BYTES:
                    raise ValidationError(f"{self.path}: label {nm!r} for {name} is not a short non-empty str")
            if arr.size and (arr.min() < 0 or arr.max() >= len(names)):
                i = int(np.argmax((arr < 0) | (arr >= len(names))))
                raise ValidationError(f"{self.path}: {name}[{i}] = {int(arr[i])} is not a code into its "
                                      f"{len(names)} labels")
            return Labels(arr.astype(np.uint32), names)
        labels = Labels.from_strings(arr.tolist())
        for nm in labels.names:
            if not isinstance(nm, str) or not nm or len(nm.encode()) > PHASE_MAX_BYTES:
                i = int(np.argmax(labels.codes == labels.names.index(nm)))
                raise ValidationError(f"{self.path}: {name}[{i}] = {nm!r} is not a short non-empty str")
        return labels

    def _normalise_columns(self, columns: Mapping[str, npt.ArrayLike],
                           labels: Mapping[str, Sequence[str]] | None = None
                           ) -> tuple[npt.NDArray[np.uint64], dict[str, StagedColumn]]:
        """Check a batch's columns and put them in the form staging takes:
        (the timestamps, every column including them).  The schema's float
        columns stay float arrays, for the cycle stager, which checks them
        against their precision without column-sized temporaries; metric /
        value columns become (float64 values, present), checked here."""
        if "timestamp" not in columns:
            raise ValidationError(f"{self.path}: extend needs a 'timestamp' column")
        ts = np.asarray(columns["timestamp"])
        if ts.ndim != 1 or (ts.size and ts.dtype.kind not in "iu"):
            raise ValidationError(f"{self.path}: timestamp must be a 1-D integer array")
        n = ts.shape[0]
        if n and ts.dtype.kind == "i" and ts.min() < 0:
            raise ValidationError(f"{self.path}: timestamp[{int(ts.argmin())}] is negative")
        ts = ts.astype(np.uint64, copy=False)
        floor = self._current_floor()
        if n and floor is not None and int(ts.min()) < floor:
            i = int(np.argmax(ts < floor))
            raise OrderError(f"{self.path}: timestamp[{i}] = {int(ts[i])} is older than the last flushed "
                             f"timestamp {floor}")
        out: dict[str, StagedColumn] = {"timestamp": ts}
        known = {name for name, _ in self._fixed}
        for name, kind in self._fixed[1:]:
            if name not in columns:
                if name.startswith("tensor_signature.") and "tensor_signature" in columns:
                    continue
                if name == "action_code" or name == "payload":
                    continue
                raise ValidationError(f"{self.path}: extend needs a {name!r} column")
        for name, values in columns.items():
            if name == "timestamp":
                continue
            if name == "tensor_signature" and self.schema == fmt.SCHEMA_CYCLE:
                arr = np.asarray(values)
                if arr.shape != (n, 3):
                    raise ValidationError(f"{self.path}: tensor_signature must have shape ({n}, 3), got {arr.shape}")
                arr = self._float_array("tensor_signature", arr)
                for j in range(3):
                    out[f"tensor_signature.{j}"] = arr[:, j]
                continue
            arr = np.asarray(values)
            if arr.shape[:1] != (n,) or arr.ndim != 1:
                raise ValidationError(f"{self.path}: column {name!r} must be 1-D with {n} values, got shape {arr.shape}")
            if name in ("phase", "event_type"):
                out[name] = self._labels(name, arr, (labels or {}).get(name))
            elif name == "payload":
                out[name] = np.asarray(self._payload_texts(name, arr.tolist()), dtype=object)
            elif name == "action_code":
                a = np.asarray(arr)
                if a.size and (a.dtype.kind not in "iu" or a.min() < -1 or a.max() > 255):
                    raise ValidationError(f"{self.path}: action_code must hold ints 0..255, or -1 for none")
                out[name] = a.astype(np.int16, copy=False)
            elif name == "seed_state":
                if arr.size and arr.dtype.kind not in "iu":
                    raise ValidationError(f"{self.path}: seed_state must be integers")
                out[name] = arr.astype(np.uint64, copy=False)
            elif name in known:
                out[name] = self._float_array(name, arr)
            elif name.startswith(self._dynamic_prefix) and len(name) > len(self._dynamic_prefix):
                out[name] = self._optional_floats(name, values)
            else:
                raise ValidationError(f"{self.path}: unknown column {name!r} for a "
                                      f"{fmt.SCHEMA_NAMES[self.schema]} chronicle")
        if self.schema == fmt.SCHEMA_CYCLE:
            out.setdefault("action_code", np.full(n, -1, dtype=np.int16))
        else:
            out.setdefault("payload", np.full(n, "{}", dtype=object))
        return ts, out

    def _payload_texts(self, name: str, values: list[object]) -> list[str]:
        # A batch of dicts (the usual case) is encoded in one pass; anything
        # else, or a dict that will not encode, goes value by value so the
        # error names the index.
        if all(type(p) is dict for p in values):
            try:
                return list(map(_JSON_CANONICAL.encode, values))
            except (TypeError, ValueError):
                pass
        return [self._payload_text(name, i, p) for i, p in enumerate(values)]

    def _payload_text(self, name: str, i: int, p: object) -> str:
        if isinstance(p, str):
            try:
                obj = _JSON_DECODER.decode(p)
            except ValueError as exc:
                raise ValidationError(f"{self.path}: {name}[{i}] is not JSON: {exc}") from None
        else:
            obj = p
        if not isinstance(obj, dict):
            raise ValidationError(f"{self.path}: {name}[{i}] must be a JSON object")
        try:
            return _JSON_CANONICAL.encode(obj)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{self.path}: {name}[{i}] cannot be stored as JSON: {exc}") from None

    def _float_array(self, name: str, arr: npt.ArrayLike) -> npt.NDArray[np.floating[Any]]:
        a = np.asarray(arr)
        if a.dtype.kind not in "fiu":
            raise ValidationError(f"{self.path}: column {name!r} must be numeric, got dtype {a.dtype}")
        return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)

    def _optional_floats(self, name: str, values: npt.ArrayLike) -> OptionalColumn:
        """A metric / value column of a batch as (float64 values, present),
        checked against its precision.  Which rows hold a value: a masked
        array's unmasked ones (so a NaN can be stored), else the rows that are
        not NaN."""
        if isinstance(values, np.ma.MaskedArray):
            present = ~np.ma.getmaskarray(values)
            a = self._float_array(name, np.ma.getdata(values)).astype(np.float64, copy=False)
        else:
            a = self._float_array(name, values).astype(np.float64, copy=False)
            present = ~np.isnan(a)
        if self._finite_only and not np.isfinite(a[present]).all():
            i = int(np.flatnonzero(present & ~np.isfinite(a))[0])
            raise ValidationError(f"{self.path}: column {name!r}: element {i} is {a[i]!r}: this chronicle is in "
                                  f"format 1 (fixed point), which has no NaN or infinity")
        values64 = np.where(present, a, 0.0)          # 0 where absent: always storable
        check_array(values64, self.precision.of(name[len(self._dynamic_prefix):]), False,
                    f"{self.path}: column {name!r}")
        return values64, present

    def _close_rows(self) -> None:
        if self._rows:
            self._chunks.append(self._rows)
            self._rows = []

    # --- writing blocks ------------------------------------------------------
    def _materialise(self) -> dict[str, StagedColumn]:
        """All staged records as columns in arrival order."""
        self._close_rows()
        parts = []
        for chunk in self._chunks:
            parts.append(chunk if isinstance(chunk, dict) else self._rows_to_columns(chunk))
        self._chunks = []
        names = []
        for p in parts:
            for k in p:
                if k not in names:
                    names.append(k)
        out: dict[str, StagedColumn] = {}
        for k in names:
            # a column's pieces all have one form (a metric's absent pieces are pairs too)
            pairs: list[OptionalColumn] = []
            labels: list[Labels] = []
            arrays: list[npt.NDArray[Any]] = []
            for p in parts:
                v = p.get(k)
                if v is None:   # a metric that this chunk does not have
                    n = len(p["timestamp"])
                    pairs.append((np.zeros(n, dtype=np.float64), np.zeros(n, dtype=bool)))
                elif isinstance(v, tuple):
                    pairs.append(v)
                elif isinstance(v, Labels):
                    labels.append(v)
                else:
                    arrays.append(v)
            if len(pairs) == len(parts):
                out[k] = (np.concatenate([x[0] for x in pairs]), np.concatenate([x[1] for x in pairs]))
            elif len(labels) == len(parts):
                out[k] = Labels.concat(labels) if len(labels) > 1 else labels[0]
            else:
                assert len(arrays) == len(parts), f"column {k!r} staged in different forms"
                out[k] = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        return out

    def _rows_to_columns(self, rows: list[_EventRow]) -> dict[str, StagedColumn]:
        """Event rows staged by append_event as columns (cycles use the stager)."""
        cols = list(zip(*rows))
        out: dict[str, StagedColumn] = {"timestamp": np.array(cols[0], dtype=np.uint64),
                                        "event_type": Labels.from_strings(cols[1]),
                                        "payload": np.array(cols[2], dtype=object)}
        extras = cols[3]
        names = []
        for e in extras:
            if e:
                for k in e:
                    if k not in names:
                        names.append(k)
        for k in names:
            present = np.array([bool(e) and k in e for e in extras], dtype=bool)
            vals = np.array([e.get(k, 0.0) if e else 0.0 for e in extras], dtype=np.float64)
            out[self._dynamic_prefix + k] = (vals, present)     # checked as they were appended
        return out

    def _write_windows(self, ts: npt.NDArray[np.uint64], payload: npt.NDArray[np.uint64]) -> None:
        """AppendBuffer sink: sealed windows, sorted; payload = arrival numbers."""
        try:
            self._write_windows_unguarded(ts, payload)
        except OSError as exc:
            # A block may be half on disk: stop here.  Reopening the file
            # truncates the torn tail; the records staged were never stored.
            self._broken = exc
            raise ChronoledgerError(f"{self.path}: writing a block failed ({exc}); the writer is closed and "
                                    f"{self._staged} staged records were not written") from exc

    def _write_windows_unguarded(self, ts: npt.NDArray[np.uint64], payload: npt.NDArray[np.uint64]) -> None:
        n = len(ts)
        cols = self._materialise()
        staged = len(cols["timestamp"])
        order = (payload - np.uint64(self._base)).astype(np.int64)
        rest = {k: _take(v, slice(n, None)) for k, v in cols.items()}
        identity = bool(np.all(order == np.arange(len(order))))
        for start in range(0, n, self.block_records):
            idx = slice(start, start + self.block_records) if identity else order[start:start + self.block_records]
            self._write_block({k: _take(v, idx) for k, v in cols.items()})
        self._base += n
        self._staged -= n
        if staged > n:
            self._chunks = [rest]

    def _encode_block(self, cols: dict[str, StagedColumn],
                      threads: int | None = None) -> tuple[bytes, int, int, int, int]:
        """A data block's payload for the records ``cols`` (sorted): (payload,
        payload CRC, records, first ts, last ts).  No file I/O, so blocks can
        be encoded in parallel; the header, which carries the block's number,
        is made as each is written, in order."""
        ts = _timestamps(cols)
        n = len(ts)
        v1 = self.header.version == 1
        spec: list[tuple[str, int, ColumnValues]] = []
        for name, kind in self._fixed:
            v = cols[name]
            assert not isinstance(v, tuple)     # the schema's columns are arrays or Labels, never metrics
            if kind in (fmt.KIND_QF32, fmt.KIND_QF64) and isinstance(v, np.ndarray):
                scale = self.precision.field(name)
                if v1:                          # format 1: fixed point at the file's one scale
                    assert scale is not None
                    spec.append((name, kind, core.quantize(v, scale)))
                elif scale is None:            # exact float32: cast and turned into bits in one pass
                    spec.append((name, fmt.KIND_FLOAT, Floats(v, 4)))
                else:
                    spec.append((name, fmt.KIND_FLOAT, Floats(v, 4, scale)))
                continue
            spec.append((name, kind, v))
        prefix = self._dynamic_prefix
        for name, v in cols.items():
            if isinstance(v, tuple):
                values, present = v
                if not present.any():
                    continue
                scale = self.precision.of(name[len(prefix):])
                if v1:
                    assert scale is not None
                    spec.append((name, fmt.KIND_OPT_QF64, Present(present, core.quantize(values[present], scale))))
                else:
                    spec.append((name, fmt.KIND_FLOAT, Floats(values[present], 8, scale, present)))
        payload = colfmt.encode_block(spec, threads)
        return payload, core.crc64(payload), n, int(ts[0]), int(ts[-1])

    def _append_block(self, encoded: tuple[bytes, int, int, int, int]) -> None:
        payload, crc, n, first, last = encoded
        head = fmt.pack_block_header(fmt.BLOCK_DATA, len(payload), crc, n, first, last, self.header,
                                     self._sequence)
        at = self._pos
        self._write_at_end(head, fsync=False)
        self._write_at_end(payload)
        if self.durability == "os":
            # the disk starts on the block now, not all at once in the fsync at close
            start_writeback(self._fd, at, self._pos - at)
        self._index.append(fmt.BlockHeader(at, fmt.BLOCK_DATA, len(payload), n, first, last, crc, len(head),
                                           self._sequence, self.header.salt, self.header.schema))
        self._sequence += 1
        self._total += n
        self._floor = last

    def _write_block(self, cols: dict[str, StagedColumn]) -> None:
        self._append_block(self._encode_block(cols))

    def _write_at_end(self, data: bytes, fsync: bool = True) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, self._pos)
            view = view[written:]
            self._pos += written
        self._payload_crc = core.crc64(data, self._payload_crc)
        if fsync and self.durability == "flush":
            os.fsync(self._fd)

    # --- the background block writer ---------------------------------------------
    def _enqueue_window(self) -> None:
        """CycleStager sink: move its sealed, sorted windows to the write queue, in order."""
        stager = self._stager
        assert stager is not None           # only a cycle chronicle's stager calls this
        if self._worker_error is not None:
            self._raise_worker_error()
        with self._cv:                  # taking and queueing under one lock keeps the order
            if self._closing:
                lost = sum(n for _, n, _ in stager.take_ready())
                if lost:
                    raise ChronoledgerError(f"{self.path}: the writer closed while {lost} records were "
                                            f"being sealed; they were not written")
                return
            for window, n, last in stager.take_ready():
                if n:
                    self._floor = max(self._floor or 0, last)
                self._queue.append((window, n))
                self._enqueued += 1
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, args=(stager,),
                                                name=f"chronicle-writer:{self.path.name}", daemon=True)
                self._worker.start()
            self._cv.notify_all()
            # Backpressure: appenders wait (without the GIL) rather than let
            # the queue, and the memory it holds, outgrow the disk.
            while len(self._queue) > MAX_QUEUED_WINDOWS and self._worker_error is None:
                self._cv.wait()

    def _work(self, stager: CycleStager) -> None:
        """Encode queued windows (several at once, one per core: the codec
        releases the GIL) and write them in queue order; ``stager`` gets their
        buffers back."""
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                batch: list[tuple[object, int]] = []
                for item in itertools.islice(self._queue, _ENCODE_AHEAD):
                    if item is None:
                        break
                    batch.append(item)
                if not batch:                  # the stop marker
                    self._queue.popleft()
                    self._cv.notify_all()
                    return
            try:
                # One window per thread, this one included (it would only wait
                # otherwise); a window's columns are not spread over threads:
                # that costs more in hand-offs of the GIL than it gains.
                later = [core.executor().submit(self._encode_window, stager, item[0]) for item in batch[1:]]
                encoded = [self._encode_window(stager, batch[0][0])] + [f.result() for f in later]
                for block, token in encoded:
                    with self._io_lock:
                        self._append_block(block)
                    stager.recycle(token)
                    with self._cv:
                        self._queue.popleft()
                        self._written += 1
                        self._cv.notify_all()
            except BaseException as exc:  # noqa: BLE001 - handed to the appending thread
                stager.close()                # refuse records from now on, not only at the next window
                with self._cv:
                    self._worker_error = exc
                    self._queue.clear()
                    self._cv.notify_all()
                return

    def _encode_window(self, stager: CycleStager, window: object) -> tuple[tuple[bytes, int, int, int, int], object]:
        """A sealed window of the stager encoded as a block, and the token
        of its buffers (ordering it is part of the work, off the appending thread)."""
        columns, names, metrics, token = stager.columns_of(window)
        cols: dict[str, StagedColumn] = dict(columns)
        cols["phase"] = Labels(columns["phase"], names)
        for name, (values, present) in metrics.items():
            cols[self._dynamic_prefix + name] = (values, present)
        return self._encode_block(cols, 1), token

    def _drain(self) -> None:
        """Wait until every window queued before this call is on disk (not the
        ones other threads queue meanwhile, or a busy writer would starve it)."""
        with self._cv:
            target = self._enqueued
            while self._written < target and self._worker_error is None:
                self._cv.wait()
        if self._worker_error is not None:
            self._raise_worker_error()

    def _raise_worker_error(self) -> None:
        exc = self._worker_error
        if isinstance(exc, OSError):
            self._broken = exc
        raise ChronoledgerError(f"{self.path}: writing a block failed ({exc}); records staged since the "
                                f"last flush were not written; reopen the chronicle to continue") from exc

    def _stop_worker(self) -> None:
        if self._worker is not None:
            with self._cv:
                self._queue.append(None)
                self._cv.notify_all()
            self._worker.join()
            self._worker = None

    def _current_floor(self) -> int | None:
        stager = self._stager.last_flushed if self._stager is not None else None
        if stager is None:
            return self._floor
        return stager if self._floor is None else max(stager, self._floor)

    # --- flushing and closing -------------------------------------------------
    def flush(self) -> None:
        """Write every staged record now (as a block of fewer records if need be)."""
        with self._lock:
            self._ensure_open()
            if self._stager is not None:
                self._stager.flush()
                self._enqueue_window()   # windows sealed by other threads whose sink has not run yet
            self._drain()
            with self._io_lock:
                self._buffer.flush()

    def save(self) -> None:
        """Flush, write a footer (index, count, payload CRC) and fsync
        (unless durability is "none"): a checkpoint a reader can open
        without scanning."""
        with self._lock:
            self.flush()
            self._write_footer()
            self._sync()

    def _sync(self) -> None:
        if self.durability == "none":   # writing back is left to the OS entirely
            return
        os.fsync(self._fd)
        if self._created:              # the file's directory entry, once
            fsync_dir(self.path)
            self._created = False

    def _write_footer(self) -> None:
        with self._io_lock:       # never between a block's bytes and its index entry
            footer = fmt.pack_footer(self._total, self._payload_crc, self._index, self._pos, self.header,
                                     self._sequence, self._meta_offsets)
            self._write_at_end(footer, fsync=False)
            self._sequence += 1

    @property
    def records(self) -> int:
        """Records written to the file so far (not counting staged ones)."""
        return self._total

    @property
    def staged(self) -> int:
        """Records accepted but not yet written to the file."""
        queued = sum(item[1] for item in list(self._queue) if item is not None)
        return self._staged + queued + (self._stager.pending if self._stager is not None else 0)

    def _ensure_open(self) -> None:
        if self._closed:
            raise ChronoledgerError(f"{self.path}: the chronicle writer is closed")
        if self._broken is not None:
            raise ChronoledgerError(f"{self.path}: an earlier write failed ({self._broken}); "
                                    f"reopen the chronicle to continue")

    # --- amendments (format 2) --------------------------------------------------
    @property
    def amendments(self) -> list[dict[str, Any]]:
        """The file's amendments so far (config versions, tags, notes, rewinds), in order."""
        return list(self._meta)

    def _amend(self, entry: dict[str, Any], stamp: int = 0) -> dict[str, Any]:
        """Write everything staged, then one meta block holding ``entry``."""
        if self.header.version == 1:
            raise ConfigError(f"{self.path}: this chronicle is in format 1, which keeps no amendments (config "
                              f"versions, tags, notes, rewinds); write its records into a new chronicle to amend it")
        entry = dict(entry, at=_utc_now())
        with self._lock:
            self._ensure_open()
            self.flush()
            with self._io_lock:
                try:
                    block = fmt.pack_meta(entry, self.header, self._sequence, stamp)
                except (TypeError, ValueError) as exc:
                    raise ValidationError(f"{self.path}: {entry['op']}: cannot be stored as JSON: {exc}") from None
                at = self._pos
                self._write_at_end(block)
                self._meta.append(entry)
                self._meta_offsets.append(at)
                self._sequence += 1
        return entry

    def set_config(self, config: dict[str, Any], reason: str | None = None) -> int:
        """Amend the run's configuration: a new version, kept beside the older
        ones (nothing is replaced).  Returns the new version number (the
        configuration given at creation is version 0)."""
        if not isinstance(config, dict):
            raise ValidationError(f"{self.path}: set_config takes a dict, got {type(config).__name__}")
        if reason is not None and not isinstance(reason, str):
            raise ValidationError(f"{self.path}: set_config: reason must be text")
        version = 1 + sum(1 for e in self._meta if e.get("op") == "config")
        entry: dict[str, Any] = {"op": "config", "version": version, "config": config}
        if reason:
            entry["reason"] = reason
        self._amend(entry)
        return version

    def tag(self, *add: str, remove: Sequence[str] = ()) -> None:
        """Add tags to the run (and remove some)."""
        for t in (*add, *remove):
            if not isinstance(t, str) or not t or len(t) > 200:
                raise ValidationError(f"{self.path}: a tag is a non-empty str of at most 200 characters, got {t!r}")
        self._amend({"op": "tags", "add": list(add), "remove": list(remove)})

    def note(self, text: str) -> None:
        """Add a note to the run's history."""
        if not isinstance(text, str) or not text:
            raise ValidationError(f"{self.path}: a note is non-empty text")
        self._amend({"op": "note", "text": text})

    def rewind(self, to: int) -> int:
        """Drop every record newer than timestamp ``to`` (as after a crash, to
        resume from a checkpoint at step ``to``, like TensorBoard's
        ``purge_step``), and accept records from ``to`` on.  The records are
        dropped for every reader from here on; the file keeps their bytes, and
        its history keeps the rewind.  Returns how many records were dropped."""
        if isinstance(to, bool) or not isinstance(to, (int, np.integer)) or not 0 <= int(to) <= U64_MAX:
            raise ValidationError(f"{self.path}: rewind takes a timestamp (a u64), got {to!r}")
        to = int(to)
        with self._lock:
            self._ensure_open()
            if self.header.version == 1:
                self._amend({"op": "rewind", "to": to})       # refused, with the format-1 message
            self.flush()
            with self._io_lock, fmt.mapped(self._fd) as buf:
                index = list(self._index)
                dropped = apply_rewind(buf, index, self.header, to, str(self.path))
            self._amend({"op": "rewind", "to": to, "dropped": dropped}, stamp=to)
            self._index = index
            self._total -= dropped
            self._floor = to
            if self._stager is not None:
                self._stager.set_floor(to)
            else:
                self._buffer.set_floor(to)
        return dropped

    def close(self) -> None:
        """Flush, write the footer, fsync, release the writer lock."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._stager is not None:
                    self._stager.close()
                if self._broken is None:
                    if self._stager is not None:
                        self._stager.flush()
                        self._enqueue_window()
                    self._drain()
                    with self._cv:
                        self._closing = True
                    self._buffer.flush()
                    self._write_footer()
                    self._sync()
            finally:
                self._stop_worker()
                self._closed = True
                os.close(self._fd)

    def __enter__(self) -> ChronicleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
