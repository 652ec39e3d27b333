"""TensorBoard event files from chronicles, and chronicles from TensorBoard's
scalars (``chronoledger chronicle tensorboard export|import``).

    from chronoledger.chronicle.tensorboard import export_tensorboard, import_tensorboard

    export_tensorboard("run.cmeta", "logs/run")        # then: tensorboard --logdir logs
    import_tensorboard(["logs"], "scalars.cmeta")       # every scalar of every run under logs/

Needs the ``tensorboard`` package (``pip install 'chronoledger[tensorboard]'``):
its protocol buffers (``tensorboard.compat.proto``), its record writer (the
TFRecord framing: length, masked CRC-32C, data, masked CRC-32C) and its
event-file loader, so what is written is what TensorBoard writes and what is
read is what TensorBoard reads.

**Export.**  One event file in the log folder, one event per record, at
``step`` = the record's timestamp, holding one scalar (TF1 ``simple_value``,
a float32) per number the record has: ``loss_value``, ``coherence``,
``tensor_signature.0``..``2`` and every ``metrics.NAME`` (cycle chronicles),
every ``values.NAME`` (event logs).  The tag is the column name with the
record's phase (or event type) in front: ``train/loss_value``,
``validate/metrics.val_accuracy``, ``dream/tensor_signature.0``, so
TensorBoard groups the charts by phase; ``phase_prefix=False`` gives the
bare column names (one line through every phase).  ``action_code`` and
``seed_state`` are not scalars and are left out.  Wall times are the
timestamps when they are epoch milliseconds (see :mod:`.timeaxis`), else
the time of the export.

**Import.**  Scalars — TF1 ``simple_value`` summaries and TF2 tensor
summaries of the ``scalars`` plugin (``tf.summary.scalar``, PyTorch's and
Keras' writers) — of one or several event files or log folders become an
**event log** chronicle (schema ``"event"``): one record per run and step,
``timestamp`` = the step, ``event_type`` = the run (the event file's folder,
named as TensorBoard names runs: relative to the folder given, ``"."`` for
the folder itself; with several sources, relative to the folder they share),
``payload`` = ``{"wall_time": seconds}`` (the latest wall time of the
step's scalars) and one value per tag, ``values.TAG``.  So each tag is a
column: ``chronicle stats`` gives its min, max and last value,
``chronicle plot --metric values.TAG`` draws it, ``query --columns`` picks
it.  An event log, not a cycle chronicle, because TensorBoard's scalars are
whatever the user logged: a cycle record needs a loss, a coherence, a
signature and a seed that an arbitrary log does not have.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import logging
import os
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from chronoledger._fsutil import atomic_path
from chronoledger.chronicle.chronicle import Chronicle
from chronoledger.chronicle.records import VALUE_PREFIX
from chronoledger.chronicle.timeaxis import looks_like_epoch_ms
from chronoledger.errors import (ChronoledgerError, ConfigError, CorruptDataError, MissingDependencyError,
                                 QueryError, ValidationError)

__all__ = ["TensorBoardExport", "TensorBoardImport", "WALL_TIMES", "export_tensorboard", "import_tensorboard",
           "is_event_file"]

log = logging.getLogger("chronoledger.chronicle")

#: where exported wall times come from: "auto" (the timestamps when they are
#: epoch ms, else the export time), "timestamps" (always timestamp / 1000),
#: "now" (the export time for every event)
WALL_TIMES = ("auto", "timestamps", "now")

#: the largest TensorBoard step (an int64)
MAX_STEP = 2**63 - 1

#: columns that are not scalars to export
_NOT_SCALARS = frozenset({"timestamp", "phase", "event_type", "payload", "seed_state", "action_code"})

#: records read from the chronicle at a time while exporting
_CHUNK = 131_072

#: bytes a TFRecord adds to its data: length (8), its CRC (4), the data's CRC (4)
_FRAMING = 16

#: the last part of an event file's name before ".chronoledger", as TensorBoard's writers number
#: theirs: two exports in the same second by one process get two names
_FILE_NUMBERS = itertools.count()


class _TB(NamedTuple):
    event_pb2: Any
    summary_pb2: Any
    RecordWriter: Any
    RawEventFileLoader: Any
    tensor_util: Any


def _tensorboard() -> _TB:
    """tensorboard's pieces, or MissingDependencyError naming the extra."""
    try:
        # optional (the tensorboard extra), and heavy: imported on use
        from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
        from tensorboard.util import tensor_util
    except ImportError:
        raise MissingDependencyError("TensorBoard files need the tensorboard package, which is not installed: "
                                     "pip install 'chronoledger[tensorboard]'") from None
    return _TB(event_pb2, summary_pb2, RecordWriter, RawEventFileLoader, tensor_util)


def is_event_file(name: str) -> bool:
    """Whether a file name is a TensorBoard event file: TensorBoard's rule
    (the name contains ``tfevents``), less hidden files (a leading dot:
    temporary files, such as the export's own before it is renamed)."""
    return "tfevents" in name and not name.startswith(".")


# --- export ----------------------------------------------------------------------------------------

@dataclass
class TensorBoardExport:
    """What :func:`export_tensorboard` wrote: the event file, the records
    read, the events and scalars written, every tag, the first and last step,
    where the wall times came from ("timestamps" or "export time"), and the
    older event files it replaced (``force``)."""

    event_file: Path
    records: int
    events: int
    scalars: int
    tags: list[str]
    first_step: int | None
    last_step: int | None
    wall_time: str
    replaced: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"event_file": str(self.event_file), "records": self.records, "events": self.events,
                "scalars": self.scalars, "tags": self.tags, "first_step": self.first_step,
                "last_step": self.last_step, "wall_time": self.wall_time, "replaced": self.replaced}


def _timestamp_chunks(timestamps: npt.NDArray[np.uint64]) -> Iterator[tuple[int, int]]:
    """[start, end) timestamp windows of about ``_CHUNK`` records each that
    together hold every record (a window never splits equal timestamps)."""
    n = len(timestamps)
    if n == 0:
        return
    cuts = [0]
    for i in range(_CHUNK, n, _CHUNK):
        t = int(timestamps[i])
        if t > cuts[-1]:
            cuts.append(t)
    cuts.append(int(timestamps[-1]) + 1)
    yield from zip(cuts[:-1], cuts[1:])


def export_tensorboard(path: str | os.PathLike[str], logdir: str | os.PathLike[str], *, phase_prefix: bool = True,
                       wall_time: str = "auto", force: bool = False) -> TensorBoardExport:
    """Write the chronicle at ``path`` as a TensorBoard event file in the
    folder ``logdir`` (created if missing): see the module's docstring for
    the tags, steps and wall times.

    The file is named as TensorBoard's writers name theirs
    (``events.out.tfevents.SECONDS.HOST.PID.N.chronoledger``) and written
    atomically: a temporary file beside it, fsynced, renamed into place.
    TensorBoard reads every event file of a folder as one run, so a
    ``logdir`` that already holds event files is refused (FileExistsError)
    unless ``force``, which removes them once the new file is in place
    (event files in subfolders are other runs and are left alone).

    A timestamp beyond TensorBoard's int64 steps raises ValidationError.
    Needs the tensorboard package (MissingDependencyError without it).
    """
    tb = _tensorboard()
    if wall_time not in WALL_TIMES:
        raise ConfigError(f"tensorboard export: wall_time must be one of {', '.join(WALL_TIMES)}, "
                          f"not {wall_time!r}")
    src, folder = Path(path), Path(logdir)
    with Chronicle.open(src) as ch:
        cycle = ch.schema == "cycle"
        label = "phase" if cycle else "event_type"
        names = [n for n in ch.reader().column_names() if n not in _NOT_SCALARS]
        timestamps = np.asarray(ch.to_numpy(["timestamp"])["timestamp"], dtype=np.uint64)
        n = len(timestamps)
        if n and int(timestamps[-1]) > MAX_STEP:
            bad = int(np.argmax(timestamps > np.uint64(MAX_STEP)))
            raise ValidationError(f"{src}: record {bad} has timestamp {int(timestamps[bad])}, beyond the largest "
                                  f"TensorBoard step ({MAX_STEP}); TensorBoard steps are int64")
        from_timestamps = wall_time == "timestamps" or (
            wall_time == "auto" and n > 0 and looks_like_epoch_ms(int(timestamps[0]), int(timestamps[-1])))
        folder.mkdir(parents=True, exist_ok=True)
        older = sorted(p.name for p in folder.iterdir() if is_event_file(p.name) and p.is_file())
        if older and not force:
            raise FileExistsError(f"{folder} holds TensorBoard event files already ({', '.join(older)}), and "
                                  f"TensorBoard would read them as one run with the new one: export to a new "
                                  f"folder, or replace them (force=True, --force)")
        now = time.time()
        target = folder / (f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}."
                           f"{next(_FILE_NUMBERS)}.chronoledger")
        tags: dict[str, None] = {}
        events = scalars = 0
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            writer = tb.RecordWriter(fh)
            first_wall = float(timestamps[0]) / 1000.0 if from_timestamps and n else now
            header = tb.event_pb2.Event(wall_time=first_wall, file_version="brain.Event:2")
            header.source_metadata.writer = "chronoledger"
            writer.write(header.SerializeToString())
            tag_of: dict[tuple[str, str], str] = {}
            for start, end in _timestamp_chunks(timestamps):
                cols = ch.query_columns(start, end, ["timestamp", label, *names])
                ts = np.asarray(cols["timestamp"], dtype=np.uint64)
                prefixes = cols[label].tolist() if phase_prefix else [""] * len(ts)
                walls = (ts / 1000.0).tolist() if from_timestamps else [now] * len(ts)
                # float32 columns widen to float64 exactly; NaN is a metric the record lacks
                rows = (np.column_stack([np.asarray(cols[c], dtype=np.float64) for c in names]).tolist()
                        if names else [[] for _ in range(len(ts))])
                for step, prefix, wall, row in zip(ts.tolist(), prefixes, walls, rows):
                    event = tb.event_pb2.Event(step=step, wall_time=wall)
                    values = event.summary.value
                    for name, v in zip(names, row):
                        if v != v:
                            continue
                        tag = tag_of.get((prefix, name))
                        if tag is None:
                            tag = tag_of[(prefix, name)] = f"{prefix}/{name}" if phase_prefix else name
                            tags[tag] = None
                        values.add(tag=tag, simple_value=v)
                    if values:
                        writer.write(event.SerializeToString())
                        events += 1
                        scalars += len(values)
    replaced = [name for name in older if name != target.name]
    for name in replaced:
        try:
            (folder / name).unlink()
        except FileNotFoundError:
            pass
    return TensorBoardExport(event_file=target, records=n, events=events, scalars=scalars, tags=list(tags),
                             first_step=int(timestamps[0]) if n else None,
                             last_step=int(timestamps[-1]) if n else None,
                             wall_time="timestamps" if from_timestamps else "export time", replaced=replaced)


# --- import ----------------------------------------------------------------------------------------

@dataclass
class TensorBoardImport:
    """What :func:`import_tensorboard` read and wrote: the chronicle, its
    records (one per run and step), the scalars stored, the runs and tags,
    the event files read, the first and last step, the scalars skipped for
    not being finite (NaN, infinity: an absent value reads as NaN), and the
    event files TensorBoard's reader stopped in before their end (a
    torn or damaged record: the rest of such a file is not read)."""

    output: Path
    records: int
    scalars: int
    runs: list[str]
    tags: list[str]
    files: int
    first_step: int | None
    last_step: int | None
    non_finite: int = 0
    incomplete_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"output": str(self.output), "records": self.records, "scalars": self.scalars, "runs": self.runs,
                "tags": self.tags, "files": self.files, "first_step": self.first_step, "last_step": self.last_step,
                "non_finite": self.non_finite, "incomplete_files": self.incomplete_files}


def _event_files(sources: Sequence[Path]) -> list[tuple[str, Path]]:
    """(run, event file) of every event file the sources name, runs and files in name order."""
    folders: list[Path] = []
    found: list[tuple[Path, Path]] = []              # (folder, file)
    for src in sources:
        if src.is_dir():
            root = src.resolve()
            folders.append(root)
            for here, dirs, files in os.walk(root):
                dirs.sort()
                for name in sorted(files):
                    if is_event_file(name):
                        found.append((Path(here), Path(here) / name))
        elif src.is_file():
            f = src.resolve()
            folders.append(f.parent)
            found.append((f.parent, f))
        else:
            raise FileNotFoundError(f"{src}: no such file or folder")
    if not found:
        raise ChronoledgerError(f"no TensorBoard event files (names containing 'tfevents') in "
                                f"{', '.join(str(s) for s in sources)}")
    base = Path(os.path.commonpath([str(f) for f in folders]))
    runs = sorted({(Path(os.path.relpath(folder, base)).as_posix(), file) for folder, file in found})
    return runs


def _scalars(tb: _TB, file: Path, plugins: dict[str, str],
             read: list[int]) -> Iterator[tuple[int, float, str, float]]:
    """(step, wall time, tag, value) of every scalar in one event file, as
    TensorBoard's loader reads it; ``read[0]`` counts the bytes of the
    records read (so a reader that stopped early shows).  ``plugins``: the
    plugin of each tag seen so far in the run (TF2 writers put a tag's
    metadata on its first value only)."""
    loader = tb.RawEventFileLoader(str(file))
    for raw in loader.Load():
        read[0] += len(raw) + _FRAMING
        at = read[0] - len(raw) - _FRAMING
        try:
            event = tb.event_pb2.Event.FromString(raw)
        except Exception as exc:        # noqa: BLE001 - protobuf's DecodeError, whose module is not ours to import
            raise CorruptDataError(f"{file}: the record at byte {at} passed its CRC but is not an event ({exc})",
                                   offset=at) from None
        if not event.HasField("summary"):
            continue
        for v in event.summary.value:
            kind = v.WhichOneof("value")
            if kind == "simple_value":
                yield event.step, event.wall_time, v.tag, float(v.simple_value)
            elif kind == "tensor":
                plugin = v.metadata.plugin_data.plugin_name if v.HasField("metadata") else ""
                if plugin:
                    plugins[v.tag] = plugin
                if plugins.get(v.tag) != "scalars":
                    continue
                arr = tb.tensor_util.make_ndarray(v.tensor)
                if arr.size == 1 and arr.dtype.kind in "fiub":
                    yield event.step, event.wall_time, v.tag, float(arr.reshape(-1)[0])


def import_tensorboard(sources: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
                       output: str | os.PathLike[str], *, tags: Iterable[str] | None = None,
                       force: bool = False) -> TensorBoardImport:
    """Read the scalars of TensorBoard event files and write them to a new
    event-log chronicle at ``output``: see the module's docstring for the
    records it holds.

    ``sources``: event files, or log folders searched (with their
    subfolders) for files whose name contains ``tfevents``, as TensorBoard
    searches.  ``tags``: the tags to keep, as names or shell patterns
    (``train/*``); a pattern that matches no scalar tag raises QueryError
    naming the tags there are.  A tag written twice at the same step of a run
    keeps the later value.  Negative steps raise ValidationError (a
    chronicle's timestamps are 0 .. 2**64-1).

    Values are stored as a new event log stores floats (see "Recording" in
    docs/chronicle.md); a value the chronicle refuses raises ValidationError
    naming it, and nothing is written.  Non-finite scalars (NaN, infinity)
    are skipped and counted.  An event file that TensorBoard's reader stops in before its end
    (a torn or damaged record) is read as far as TensorBoard reads it, with a
    warning on the ``chronoledger.chronicle`` logger.

    ``output`` is written atomically (a temporary file beside it, renamed
    into place) and an existing one is refused (FileExistsError) unless
    ``force``.  Needs the tensorboard package (MissingDependencyError without it).
    """
    tb = _tensorboard()
    out = Path(output)
    if not force and os.path.lexists(out):
        raise FileExistsError(f"{out} exists already: choose another name, or replace it (force=True, --force)")
    srcs = [Path(s) for s in ([sources] if isinstance(sources, (str, os.PathLike)) else sources)]
    if not srcs:
        raise ConfigError("tensorboard import: name at least one event file or log folder")
    patterns = list(tags) if tags is not None else None
    files = _event_files(srcs)
    run_names = list(dict.fromkeys(run for run, _ in files))
    data: dict[tuple[int, int], list[Any]] = {}        # (step, run index) -> [wall time, {tag: value}]
    seen_tags: dict[str, None] = {}
    kept_tags: dict[str, None] = {}
    matched: set[str] = set()
    non_finite = 0
    incomplete: list[str] = []
    plugins: dict[str, dict[str, str]] = {run: {} for run in run_names}
    for run, file in files:
        r = run_names.index(run)
        read = [0]
        for step, wall, tag, value in _scalars(tb, file, plugins[run], read):
            seen_tags[tag] = None
            if patterns is not None:
                hits = [p for p in patterns if fnmatch.fnmatchcase(tag, p)]
                if not hits:
                    continue
                matched.update(hits)
            if value != value or value in (float("inf"), float("-inf")):
                non_finite += 1
                continue
            if step < 0:
                raise ValidationError(f"{file}: tag {tag!r} has step {step}; a chronicle's timestamps are "
                                      f"0 .. 2**64-1")
            kept_tags[tag] = None
            slot = data.setdefault((step, r), [wall, {}])
            slot[0] = max(slot[0], wall)
            slot[1][tag] = value
        size = file.stat().st_size
        if read[0] != size:
            incomplete.append(f"{run}/{file.name}" if run != "." else file.name)
            log.warning("%s: TensorBoard's reader stopped at byte %d of %d (a torn or damaged record); the rest "
                        "of the file is not imported", file, read[0], size)
    if patterns is not None:
        unmatched = [p for p in patterns if p not in matched]
        if unmatched:
            have = ", ".join(sorted(seen_tags)) or "(none)"
            raise QueryError(f"tensorboard import: no scalar tag matches {', '.join(repr(p) for p in unmatched)}; "
                             f"the scalar tags there are: {have}")
    if not data and not non_finite:
        raise ChronoledgerError(f"no scalar summaries in the event files of {', '.join(str(s) for s in srcs)}")

    # the runs that kept a scalar, numbered in name order
    used = sorted({r for _, r in data})
    number = {r: i for i, r in enumerate(used)}
    data = {(step, number[r]): slot for (step, r), slot in data.items()}
    run_names = [run_names[r] for r in used]
    keys = sorted(data)
    n = len(keys)
    tag_list = list(kept_tags)
    column = {tag: np.full(n, np.nan) for tag in tag_list}
    for i, key in enumerate(keys):
        for tag, value in data[key][1].items():
            column[tag][i] = value
    cols: dict[str, Any] = {
        "timestamp": np.array([k[0] for k in keys], dtype=np.uint64),
        "event_type": np.array([k[1] for k in keys], dtype=np.int64),
        "payload": [json.dumps({"wall_time": data[k][0]}) for k in keys],
    }
    cols.update({VALUE_PREFIX + tag: column[tag] for tag in tag_list})
    scalars = sum(len(data[k][1]) for k in keys)
    metadata = {"imported_from": "tensorboard", "runs": run_names, "tags": tag_list}
    with atomic_path(out, replace=force) as tmp:
        with Chronicle.open(tmp, "w", schema="event", metadata=metadata) as ch:
            if n:
                ch.extend(cols, labels={"event_type": run_names})
    return TensorBoardImport(output=out, records=n, scalars=scalars, runs=run_names, tags=tag_list,
                             files=len(files), first_step=keys[0][0] if n else None,
                             last_step=keys[-1][0] if n else None, non_finite=non_finite,
                             incomplete_files=incomplete)

