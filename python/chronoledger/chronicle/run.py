"""``Run``: record a training run from any loop in one line a step.

    run = chronoledger.Run("runs/exp1.cmeta", config={"lr": 0.01})
    for step in range(1000):
        ...
        run.log({"loss": loss, "acc": acc}, step=step)
    run.close()

A run is a cycle chronicle (``Chronicle``) with a small layer that turns a
dict of numbers into one record per step and phase:

- ``"loss"`` (or ``"loss_value"``) is the record's ``loss_value``,
  ``"coherence"`` its ``coherence``, ``"tensor_signature"`` (three numbers)
  its ``tensor_signature``; every other key is a metric (``metrics.NAME``,
  float64, exact by default).  A field the loop does not log is stored as
  NaN, which means "not logged" (readers, ``stats``, plots and the
  TensorBoard export skip it).
- ``log()`` calls for the same step and phase merge into one record (the
  loss during training, an evaluation's metrics later in the step); the
  record is written when a later step is logged, or on ``flush()`` /
  ``close()``.  A key logged twice for the same step and phase is refused,
  never replaced; a step before the last one raises OrderError.
- ``Run(path)`` creates a new run and refuses an existing file;
  ``resume=True`` appends to it, ``rewind=STEP`` (with ``resume=True``)
  first drops the records after the checkpoint at ``STEP``;
  ``overwrite=True`` starts the file over.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chronoledger.chronicle.chronicle import Chronicle
from chronoledger.chronicle.precision import check_value
from chronoledger.errors import ChronoledgerError, ConfigError, ExistsError, OrderError, ValidationError

#: Keys of a logged dict that are fields of the record, not metrics.
LOSS_KEYS = ("loss", "loss_value")
FIELD_KEYS = (*LOSS_KEYS, "coherence", "tensor_signature")
#: What a field the loop did not log is stored as ("not logged").
NOT_LOGGED = float("nan")
#: Write staged records to the file at least this often (seconds) by default.
DEFAULT_FLUSH_SECS = 30.0

_logger = logging.getLogger("chronoledger.chronicle")
_open_runs: "weakref.WeakSet[Run]" = weakref.WeakSet()


@atexit.register
def _close_open_runs() -> None:
    # Registered after the writers' own handler (this module imports the writer),
    # so it runs first: the step being logged is written before the writer closes.
    for run in list(_open_runs):
        try:
            run.close()
        except Exception as exc:  # noqa: BLE001 - at exit, report and go on (no user's line to warn at)
            _logger.error("closing the run %s at exit failed: %s", run.path, exc)


def _step_of(step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 0 <= int(step) < 1 << 64:
        raise ValidationError(f"a step is an int >= 0 (a u64), got {step!r}")
    return int(step)


class _Record:
    """The fields logged so far for one (step, phase)."""

    __slots__ = ("loss", "coherence", "signature", "seed", "metrics")

    def __init__(self) -> None:
        self.loss: float | None = None
        self.coherence: float | None = None
        self.signature: tuple[float, float, float] | None = None
        self.seed: int | None = None
        self.metrics: dict[str, float] = {}


class Run:
    """A training run recorded in a ``.cmeta`` chronicle; see the module docstring.

    ``Run(path, config=None, *, resume=False, rewind=None, overwrite=False,
    precision=None, initial_seed=None, durability="os", flush_secs=30.0)``:

    - a new run (the default) creates ``path`` (and its folder) and refuses
      an existing file with FileExistsError saying how to resume it or
      start it over;
    - ``resume=True`` appends to the run at ``path`` (created if missing);
      a ``config`` that differs from the run's becomes a new configuration
      version (reason "resumed"), kept beside the older ones;
    - ``rewind=STEP`` (needs ``resume=True``): the loop resumes from a
      checkpoint taken at step STEP, so the records after it are dropped
      (:meth:`Chronicle.rewind`, kept in the run's history) and logging goes
      on from STEP + 1;
    - ``overwrite=True`` replaces an existing file with a new run;
    - ``precision`` is the chronicle's (exact by default; fixed when the run
      is created), ``initial_seed`` and ``durability`` too;
    - ``flush_secs``: staged records are written to the file at least this
      often while logging (None: when a block fills, and on flush / close),
      so a crash of the process loses at most that much.
    """

    def __init__(self, path: str | os.PathLike[str], config: dict[str, Any] | None = None, *,
                 resume: bool = False, rewind: int | None = None, overwrite: bool = False,
                 precision: object = None, initial_seed: int | None = None, durability: str = "os",
                 flush_secs: float | None = DEFAULT_FLUSH_SECS):
        if resume and overwrite:
            raise ConfigError("Run: resume=True appends to a run and overwrite=True starts it over: pass one")
        if rewind is not None and not resume:
            raise ConfigError(f"Run: rewind={rewind!r} resumes a run from a checkpoint: pass resume=True as well")
        if rewind is not None:
            rewind = _step_of(rewind)
        if flush_secs is not None and not (isinstance(flush_secs, (int, float)) and flush_secs >= 0):
            raise ConfigError(f"Run: flush_secs is a number of seconds >= 0 or None, got {flush_secs!r}")
        self.path = Path(path)
        self._lock = threading.RLock()
        self._pending: dict[str, _Record] = {}       # phase -> record, for the step being logged
        self._written: set[str] | None = set()       # phases of that step already written (None: all)
        self._flush_secs = flush_secs
        self._last_flush = time.monotonic()
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {"precision": precision, "durability": durability}
        if resume and self.path.exists():
            self._ch = Chronicle.open(self.path, "a", **options)
            stored_seed = self._ch.initial_seed
            if initial_seed is not None and initial_seed != stored_seed:
                self._ch.close()
                raise ValidationError(f"{self.path}: the run's initial seed is {stored_seed!r}, not "
                                      f"{initial_seed!r}; it is fixed when the run is created")
            try:
                if config is not None and _as_json(config) != self._ch.config:
                    self._ch.set_config(config, reason="resumed")
                if rewind is not None:
                    self._ch.rewind(rewind)
            except BaseException:
                self._ch.close()
                raise
        else:
            mode = "w" if overwrite else "x"
            try:
                self._ch = Chronicle.open(self.path, mode, config=config, initial_seed=initial_seed, **options)
            except FileExistsError:
                raise ExistsError(
                    f"{self.path}: a run exists here already{_describe(self.path)}; continue it with "
                    f"Run(path, resume=True) (rewind=STEP to resume from a checkpoint at STEP), or start it "
                    f"over with Run(path, overwrite=True)") from None
            if rewind is not None:
                try:
                    self._ch.rewind(rewind)       # resume=True on a missing file: nothing to drop; kept in history
                except BaseException:
                    self._ch.close()
                    raise
        self._step: int | None = self._ch.last_timestamp
        if self._step is not None:
            self._written = None                     # the file's last step is complete
        self._append = self._ch.append_cycle
        self._precision = self._ch.precision
        _open_runs.add(self)

    # --- logging ------------------------------------------------------------------------------
    def log(self, data: Mapping[str, Any], step: int, *, phase: str = "train", seed: int | None = None) -> None:
        """Log ``data`` (name -> number) for ``step`` (an int >= 0) in ``phase``.

        ``"loss"``/``"loss_value"``, ``"coherence"`` and ``"tensor_signature"``
        are the record's fields, every other key a metric.  Calls for the same
        step and phase merge into one record, written when a later step is
        logged (or on :meth:`flush` / :meth:`close`); ``seed`` is the
        record's ``seed_state`` (0 when never given).  Raises
        ValidationError (naming the key) for a value that is not a number or
        that the run's precision cannot hold, and for a key already logged
        for this step and phase; OrderError for a step before the last one
        or a step whose records were written already.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(f"{self.path}: log takes a dict of name -> number, got {type(data).__name__}")
        step = _step_of(step)
        if not isinstance(phase, str) or not phase:
            raise ValidationError(f"{self.path}: phase must be a non-empty str, got {phase!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or not 0 <= int(seed) < 1 << 64):
            raise ValidationError(f"{self.path}: seed must be a u64, got {seed!r}")
        loss_keys = [k for k in LOSS_KEYS if k in data]
        if len(loss_keys) > 1:
            raise ValidationError(f"{self.path}: step {step}: log 'loss' or 'loss_value', not both")
        values = self._checked(step, data)
        with self._lock:
            self._need_open()
            if self._step is not None and step < self._step:
                raise OrderError(
                    f"{self.path}: step {step} comes before step {self._step}, the run's last; steps must not "
                    f"go back. To resume from a checkpoint at step S, open the run with "
                    f"Run(path, resume=True, rewind=S) or call run.rewind(S)")
            if step != self._step:
                self._commit()
                self._step, self._written = step, set()
            if self._written is None or phase in self._written:
                raise OrderError(f"{self.path}: step {step} ({phase}) is written already; log a later step "
                                 f"(or rewind the run to before it)")
            rec = self._pending.get(phase)
            if rec is None:
                rec = self._pending[phase] = _Record()
            self._merge(rec, step, phase, values, None if seed is None else int(seed))
        if self._flush_secs is not None and time.monotonic() - self._last_flush >= self._flush_secs:
            with self._lock:
                if not self._closed:
                    self._ch.flush()                 # the steps before this one; this one may grow
                    self._last_flush = time.monotonic()

    def _checked(self, step: int, data: Mapping[str, Any]) -> dict[str, Any]:
        """Each value of ``data`` as a float (tensor_signature: 3 floats), checked against the precision."""
        out: dict[str, Any] = {}
        pr = self._precision
        for key, v in data.items():
            if not isinstance(key, str) or not key or len(key.encode()) > 200:
                raise ValidationError(f"{self.path}: step {step}: a metric name is a non-empty str of at most "
                                      f"200 bytes, got {key!r}")
            where = f"{self.path}: step {step}: {key!r}"
            if key == "tensor_signature":
                items = _sequence3(v, where)
                sig = tuple(_number(x, f"{where}[{j}]") for j, x in enumerate(items))
                for j, x in enumerate(sig):
                    check_value(x, pr.field(f"tensor_signature.{j}"), True, f"{where}[{j}]")
                out[key] = sig
            elif key in FIELD_KEYS:
                f = _number(v, where)
                check_value(f, pr.field("coherence" if key == "coherence" else "loss_value"), True, where)
                out["loss" if key in LOSS_KEYS else key] = f
            else:
                f = _number(v, where)
                check_value(f, pr.of(key), False, where)
                out[key] = f
        return out

    def _merge(self, rec: _Record, step: int, phase: str, values: dict[str, Any], seed: int | None) -> None:
        taken = [k for k in values if (k == "loss" and rec.loss is not None)
                 or (k == "coherence" and rec.coherence is not None)
                 or (k == "tensor_signature" and rec.signature is not None) or k in rec.metrics]
        if seed is not None and rec.seed is not None and seed != rec.seed:
            taken.append("seed")
        if taken:
            raise ValidationError(f"{self.path}: step {step} ({phase}) has {', '.join(map(repr, taken))} logged "
                                  f"already; a value is never replaced: log it at a new step")
        for k, v in values.items():
            if k == "loss":
                rec.loss = v
            elif k == "coherence":
                rec.coherence = v
            elif k == "tensor_signature":
                rec.signature = v
            else:
                rec.metrics[k] = v
        if seed is not None:
            rec.seed = seed

    def _commit(self) -> None:
        """Stage the pending records of the current step (in the order their phases were first logged)."""
        if not self._pending:
            return
        assert self._step is not None
        pending, self._pending = self._pending, {}
        for phase, rec in pending.items():
            self._append(self._step, phase,
                         NOT_LOGGED if rec.loss is None else rec.loss,
                         NOT_LOGGED if rec.coherence is None else rec.coherence,
                         rec.signature or (NOT_LOGGED, NOT_LOGGED, NOT_LOGGED), None,
                         rec.seed or 0, rec.metrics or None)
            if self._written is not None:
                self._written.add(phase)

    # --- the run's history ------------------------------------------------------------------------
    @property
    def chronicle(self) -> Chronicle:
        """The run's chronicle (to query or export it; records still being merged are not in it yet)."""
        return self._ch

    @property
    def step(self) -> int | None:
        """The last step logged (on a resumed run: the file's, or the rewind's); None before any."""
        return self._step

    @property
    def config(self) -> dict[str, Any] | None:
        """The run's configuration: the newest version."""
        return self._ch.config

    @property
    def config_history(self) -> list[dict[str, Any]]:
        """Every version of the configuration, oldest first (``Chronicle.config_history``)."""
        return self._ch.config_history

    @property
    def tags(self) -> list[str]:
        return self._ch.tags

    @property
    def notes(self) -> list[dict[str, Any]]:
        return self._ch.notes

    @property
    def history(self) -> list[dict[str, Any]]:
        """Config versions, tags, notes and rewinds, in order (``Chronicle.history``)."""
        return self._ch.history

    def set_config(self, config: dict[str, Any], reason: str | None = None) -> int:
        """Amend the configuration: a new version kept beside the older ones; returns its number."""
        with self._lock:
            self._need_open()
            return self._ch.set_config(config, reason)

    def tag(self, *add: str, remove: Sequence[str] = ()) -> None:
        """Add tags to the run (and remove some)."""
        with self._lock:
            self._need_open()
            self._ch.tag(*add, remove=remove)

    def note(self, text: str) -> None:
        """Add a note to the run's history."""
        with self._lock:
            self._need_open()
            self._ch.note(text)

    def rewind(self, step: int) -> int:
        """Resume from a checkpoint taken at ``step``: drop the records after
        it (those still being merged too), keep the rewind in the run's
        history, and go on logging from ``step + 1``.  Returns how many
        written records were dropped."""
        step = _step_of(step)
        with self._lock:
            self._need_open()
            if self._step is not None and self._step > step:
                self._pending.clear()
            else:
                self._commit()
            dropped = self._ch.rewind(step)
            self._step, self._written = step, None
            return dropped

    # --- writing and closing ------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything logged so far to the file, the current step
        included (it is then complete: a later ``log`` for its phases is refused)."""
        with self._lock:
            self._need_open()
            self._commit()
            self._ch.flush()
            self._last_flush = time.monotonic()

    def _need_open(self) -> None:
        if self._closed:
            raise ChronoledgerError(f"{self.path}: the run is closed; open it again with Run(path, resume=True)")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Write the current step, then close the chronicle (footer, fsync)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            _open_runs.discard(self)
            try:
                self._commit()
            finally:
                self._ch.close()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"step={self._step}"
        return f"Run({str(self.path)!r}, {state})"


def _number(v: object, where: str) -> float:
    """A logged value as a float: Python and numpy numbers, and one-element
    arrays or tensors (anything with ``.item()``); not bools or text."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        item = getattr(v, "item", None)
        if callable(item) and not isinstance(v, (str, bytes)):
            try:
                v = item()
            except (TypeError, ValueError, RuntimeError):
                raise ValidationError(f"{where} must be one number, got {_short(v)}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValidationError(f"{where} must be a number, got {_short(v)}")
    try:
        return float(v)
    except OverflowError:
        raise ValidationError(f"{where} = {v!r} is too large for a float") from None


def _sequence3(v: object, where: str) -> list[Any]:
    try:
        items = list(np.asarray(v, dtype=object).reshape(-1)) if not isinstance(v, (str, bytes)) else None
    except (TypeError, ValueError):
        items = None
    if items is None or len(items) != 3:
        raise ValidationError(f"{where} must be three numbers, got {_short(v)}")
    return items


def _short(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _as_json(config: dict[str, Any]) -> object:
    """``config`` as the file keeps it (tuples become lists), to compare with the stored one."""
    try:
        return json.loads(json.dumps(config))
    except (TypeError, ValueError):
        return config          # set_config names what cannot be stored


def _describe(path: Path) -> str:
    """" (N records, last step S)" for an existing run, or "" if it cannot be read."""
    try:
        with Chronicle.open(path) as ch:
            n, last = len(ch), ch.last_timestamp
    except Exception:  # noqa: BLE001 - only a detail of an error message
        return ""
    if not n:
        return " (no records)"
    return f" ({n:,} records, last step {last})"
