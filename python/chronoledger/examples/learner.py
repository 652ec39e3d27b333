"""A tiny, deterministic learner that alternates dream, train and validate cycles.

The system is an ADALINE (a linear classifier trained with the least-mean-squares
rule) on a fixed synthetic binary-classification data set.  It is deliberately
small -- one step takes a few tens of microseconds -- but it is a real learner:
its loss falls, its weights turn towards the true separating direction, and it
reacts to plateaus in validation loss by lowering its learning rate.

Each cycle is one call ``step(timestamp, phase, seed_state)``:

``train``
    one SGD step on a mini-batch drawn from the training split, with gradient
    clipping; also updates the running feature statistics and the teacher
    (an exponential moving average of the weights).
``validate``
    loss and accuracy on a bootstrap sample of the held-out split; a
    reduce-on-plateau rule may lower the learning rate.
``dream``
    samples inputs from the learner's own running feature statistics, labels
    them with the teacher and pulls the student weights towards the teacher
    (self-distillation / consolidation).  No real data is touched.

Outputs (the dict returned by every step)
-----------------------------------------
``loss_value``
    mean squared error against the +-1 targets: on the training batch *before*
    the update (train), on the validation sample (validate), or between student
    and teacher scores on the dreamed inputs *before* the update (dream).
``coherence``
    ``(1 + cos) / 2`` where ``cos`` is the cosine between the weight vector and
    the true weights that generated the labels; 0.5 means unrelated, 1 aligned.
``tensor_signature``
    the mean weight in each of three contiguous feature groups.
``action_code``
    ``None`` most of the time, otherwise one of :data:`ACTION_LOWER_LR`,
    :data:`ACTION_EARLY_STOP_WARNING` (validate) or :data:`ACTION_GRAD_CLIPPED`
    (train).
``metrics``
    phase-dependent diagnostics, all floats; see :func:`make_step`.

Determinism
-----------
A cycle draws its randomness only from ``np.random.default_rng(seed_state)``
and only as integers (batch indices) and uniform doubles (dream inputs).  All
arithmetic is ``+ - * /``, comparisons and ``sqrt`` on float64 arrays of fixed
shape, so every reduction has a fixed order.  The data set and initial weights
are drawn once from their seeds.  Hence a fresh stepper fed the same
``(phase, seed_state)`` sequence returns bitwise-equal outputs, in this
process or any other on the same machine and numpy version.

The code also avoids the usual causes of differences *between* machines:
dot products are an elementwise product followed by a sum along one axis
instead of ``@``, because ``@`` goes through BLAS, whose CPU-specific kernels
sum in different orders; and no ``exp``/``log`` is used, because numpy's SIMD
versions may round differently on different CPUs.  (The one remaining
dependency is numpy's own normal sampler, used once to build the data set.)

This module is user code that happens to ship with chronoledger: it imports
nothing from the package, only numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = [
    "ACTION_EARLY_STOP_WARNING",
    "ACTION_GRAD_CLIPPED",
    "ACTION_LOWER_LR",
    "DEFAULT_CONFIG",
    "PHASES",
    "make_step",
    "record_seeds",
    "run",
    "schedule",
]

PHASES = ("dream", "train", "validate")
"""The phases a cycle can run, in no particular order."""

ACTION_LOWER_LR = 1
"""Validation loss plateaued for ``patience`` validations; learning rate was multiplied by ``lr_decay``."""

ACTION_EARLY_STOP_WARNING = 2
"""Validation loss plateaued but the learning rate is already at ``min_learning_rate``."""

ACTION_GRAD_CLIPPED = 3
"""The training gradient norm exceeded ``grad_clip`` and the update was rescaled."""

DEFAULT_CONFIG: dict[str, Any] = {
    "n_features": 12,
    "n_samples": 1024,
    "val_fraction": 0.25,
    "learning_rate": 0.01,
    "min_learning_rate": 0.00125,
    "lr_decay": 0.5,
    "batch_size": 32,
    "val_batch_size": 256,
    "dream_samples": 32,
    "dream_lr_scale": 0.5,
    "teacher_decay": 0.98,
    "stats_decay": 0.95,
    "grad_clip": 2.0,
    "patience": 8,
    "val_smoothing": 0.9,
    "min_delta": 1e-3,
    "noise": 0.3,
    "schedule": [["train", 8], ["validate", 2], ["dream", 3]],
    "data_seed": 7,
}
"""Default learner configuration (JSON-serialisable).

``n_features`` / ``n_samples``: shape of the synthetic data set, of which
``val_fraction`` is held out for validation.  ``learning_rate`` is the initial
SGD step, lowered by ``lr_decay`` on plateaus down to ``min_learning_rate``.
``batch_size``, ``val_batch_size`` and ``dream_samples`` are the sample counts
of the three phases.  Dreams use ``learning_rate * dream_lr_scale``.
``teacher_decay`` and ``stats_decay`` are the EMA factors of the teacher
weights and of the running feature statistics.  ``grad_clip`` bounds the
training gradient norm.  A plateau is ``patience`` validations in a row that
fail to beat the best loss by ``min_delta``, where the loss is an EMA of the
validation losses with factor ``val_smoothing``.  ``noise`` is the standard
deviation of the label noise relative to the unit-variance clean score.
``schedule`` is a list of ``[phase, cycles]`` runs repeated forever.
``data_seed`` seeds the data set; ``None`` means use the ``initial_seed``.
"""

# Tags mixed into the seed material so the data, the initial weights and the
# per-cycle seed stream of record_seeds never share a random stream, even when
# data_seed equals initial_seed.
_DATA_STREAM = 0x44415441
_INIT_STREAM = 0x494E4954


def _dot_rows(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    # Not x @ w: BLAS picks CPU-specific kernels, so its rounding is not portable.
    return (x * w).sum(axis=1)


def _mean(a: np.ndarray) -> Any:
    # Same rounding as a.mean(axis=0), at a third of the cost on tiny arrays.
    return a.sum(axis=0) / a.shape[0]


def _norm(v: np.ndarray) -> float:
    return math.sqrt(float((v * v).sum()))


def _config(config: dict | None) -> dict[str, Any]:
    if config is None:
        return dict(DEFAULT_CONFIG)
    unknown = set(config) - set(DEFAULT_CONFIG)
    if unknown:
        # A misspelt key would otherwise silently fall back to its default
        # and the recorded config would not describe the run.
        raise ValueError(f"unknown config keys: {sorted(unknown)}")
    cfg = {**DEFAULT_CONFIG, **config}
    for key in ("n_features", "n_samples", "batch_size", "val_batch_size",
                "dream_samples", "patience"):
        if int(cfg[key]) != cfg[key] or cfg[key] < 1:
            raise ValueError(f"config[{key!r}] must be a positive integer, got {cfg[key]!r}")
    if cfg["n_features"] < 3:
        raise ValueError("config['n_features'] must be at least 3 (three signature groups)")
    n_val = int(cfg["n_samples"] * cfg["val_fraction"])
    if not 1 <= n_val < cfg["n_samples"]:
        raise ValueError("config['val_fraction'] must leave both splits non-empty")
    _schedule_runs(cfg)
    return cfg


def _schedule_runs(cfg: dict[str, Any]) -> list[tuple[str, int]]:
    runs = []
    for entry in cfg["schedule"]:
        phase, cycles = entry
        if phase not in PHASES:
            raise ValueError(f"unknown phase in schedule: {phase!r}")
        if int(cycles) != cycles or cycles < 0:
            raise ValueError(f"schedule cycles must be a non-negative integer, got {cycles!r}")
        runs.append((phase, int(cycles)))
    if sum(c for _, c in runs) == 0:
        raise ValueError("schedule must contain at least one cycle")
    return runs


def make_step(config: dict, initial_seed: int) -> Callable[[int, str, int], dict]:
    """Return step(timestamp: int, phase: str, seed_state: int) -> dict.

    ``config`` is merged over :data:`DEFAULT_CONFIG` (unknown keys are an
    error).  The data set comes from ``config["data_seed"]`` (or
    ``initial_seed`` when that is ``None``); the initial weights always come
    from ``initial_seed``.  The returned ``step`` holds the learner's state in
    its closure and runs one cycle of ``phase`` with all of that cycle's
    randomness taken from ``np.random.default_rng(seed_state)``.
    ``timestamp`` is accepted so the signature matches a chronicle's record,
    but it does not influence the computation: a replay with shifted clocks
    gives the same outputs.

    The result has exactly the keys ``loss_value``, ``coherence``,
    ``tensor_signature``, ``action_code`` and ``metrics`` (see the module
    docstring).  ``metrics`` holds:

    * train: ``grad_norm`` (before clipping), ``weight_norm``, ``lr``,
      ``batch_accuracy``;
    * validate: ``val_accuracy``, ``smoothed_val_loss``, ``best_val_loss``
      (both of the smoothed loss the plateau rule watches), ``plateau_count``,
      ``weight_norm``, ``lr``;
    * dream: ``dream_stat_agreement`` (in (0, 1], how well the dreamed inputs'
      mean and spread match the real training features), ``teacher_agreement``
      (fraction of dreams where student and teacher predict the same class),
      ``teacher_gap`` (distance between student and teacher weights),
      ``weight_norm``, ``lr``.

    Raises ``ValueError`` for an unknown phase and ``FloatingPointError`` if
    the learner diverges (possible only with an unreasonable config), so no
    non-finite value is ever returned.
    """
    cfg = _config(config)
    n_features = int(cfg["n_features"])
    n_samples = int(cfg["n_samples"])
    n_val = int(n_samples * cfg["val_fraction"])
    n_train = n_samples - n_val
    batch_size = int(cfg["batch_size"])
    val_batch_size = int(cfg["val_batch_size"])
    dream_samples = int(cfg["dream_samples"])
    min_lr = float(cfg["min_learning_rate"])
    lr_decay = float(cfg["lr_decay"])
    dream_lr_scale = float(cfg["dream_lr_scale"])
    teacher_decay = float(cfg["teacher_decay"])
    stats_decay = float(cfg["stats_decay"])
    grad_clip = float(cfg["grad_clip"])
    patience = int(cfg["patience"])
    min_delta = float(cfg["min_delta"])
    val_smoothing = float(cfg["val_smoothing"])

    # --- data set, drawn once -------------------------------------------------
    data_seed = initial_seed if cfg["data_seed"] is None else cfg["data_seed"]
    drng = np.random.default_rng([_DATA_STREAM, int(data_seed)])
    # Offsets and unequal scales make the bias and the running statistics
    # matter, and give the dream phase something real to imitate.
    offsets = drng.uniform(-1.0, 1.0, n_features)
    # Scales skewed towards small values spread the curvature over a decade, so
    # the small features are learnt slowly and the loss keeps falling for
    # ~1000 cycles.  Squaring, not exp, keeps even set-up free of vector-libm
    # rounding that may differ between CPUs.
    scales = 0.2 + 1.8 * drng.random(n_features) ** 2
    true_w = drng.standard_normal(n_features)
    z = drng.standard_normal((n_samples, n_features))
    label_noise = drng.standard_normal(n_samples)
    x_all = offsets + scales * z
    clean = _dot_rows(z * scales, true_w)
    clean = clean / math.sqrt(float((clean * clean).mean()))
    y_all = np.where(clean + float(cfg["noise"]) * label_noise >= 0.0, 1.0, -1.0)
    # true_w acts on centred features; coherence compares directions only.
    true_dir = true_w / _norm(true_w)
    x_train, y_train = x_all[:n_train].copy(), y_all[:n_train].copy()
    x_val, y_val = x_all[n_train:].copy(), y_all[n_train:].copy()
    real_mean = x_train.mean(axis=0)
    real_std = np.sqrt(((x_train - real_mean) ** 2).mean(axis=0))

    # --- learner state --------------------------------------------------------
    irng = np.random.default_rng([_INIT_STREAM, int(initial_seed)])
    w = irng.uniform(-0.05, 0.05, n_features)
    b = 0.0
    teacher_w = w.copy()
    teacher_b = b
    # Prior for the running statistics before any batch has been seen.
    run_mean = np.zeros(n_features)
    run_var = np.ones(n_features)
    lr = float(cfg["learning_rate"])
    smooth_val = math.nan
    best_val = math.inf
    plateau = 0
    groups = np.array_split(np.arange(n_features), 3)
    (lo0, hi0), (lo1, hi1), (lo2, hi2) = [(int(g[0]), int(g[-1]) + 1) for g in groups]

    def coherence() -> float:
        wn = _norm(w)
        if wn == 0.0:
            return 0.5
        cos = float((w * true_dir).sum()) / wn
        return min(1.0, max(0.0, 0.5 * (1.0 + cos)))

    def signature() -> tuple[float, float, float]:
        return float(_mean(w[lo0:hi0])), float(_mean(w[lo1:hi1])), float(_mean(w[lo2:hi2]))

    def train(rng: np.random.Generator) -> tuple[float, int | None, dict[str, float]]:
        nonlocal w, b, teacher_w, teacher_b, run_mean, run_var
        idx = rng.integers(0, n_train, batch_size)
        xb, yb = x_train[idx], y_train[idx]
        score = _dot_rows(xb, w) + b
        resid = score - yb
        loss = float(_mean(resid * resid))
        acc = float(_mean(score * yb > 0.0))
        gw = 2.0 * _mean(xb * resid[:, None])
        gb = 2.0 * float(_mean(resid))
        gnorm = math.sqrt(float((gw * gw).sum()) + gb * gb)
        action = None
        scale = 1.0
        if gnorm > grad_clip:
            scale = grad_clip / gnorm
            action = ACTION_GRAD_CLIPPED
        w = w - (lr * scale) * gw
        b = b - (lr * scale) * gb
        teacher_w = teacher_decay * teacher_w + (1.0 - teacher_decay) * w
        teacher_b = teacher_decay * teacher_b + (1.0 - teacher_decay) * b
        bmean = _mean(xb)
        bvar = _mean((xb - bmean) ** 2)
        run_mean = stats_decay * run_mean + (1.0 - stats_decay) * bmean
        run_var = stats_decay * run_var + (1.0 - stats_decay) * bvar
        return loss, action, {
            "grad_norm": gnorm,
            "weight_norm": _norm(w),
            "lr": lr,
            "batch_accuracy": acc,
        }

    def validate(rng: np.random.Generator) -> tuple[float, int | None, dict[str, float]]:
        nonlocal lr, smooth_val, best_val, plateau
        # A bootstrap sample, not the whole split, so that back-to-back
        # validations differ and the plateau rule sees realistic noise.
        idx = rng.integers(0, n_val, val_batch_size)
        xb, yb = x_val[idx], y_val[idx]
        score = _dot_rows(xb, w) + b
        resid = score - yb
        loss = float(_mean(resid * resid))
        acc = float(_mean(score * yb > 0.0))
        # The plateau rule watches a smoothed loss: against the raw bootstrap
        # losses the best-so-far would be a lucky draw that is rarely beaten.
        smooth_val = loss if math.isnan(smooth_val) else (
            val_smoothing * smooth_val + (1.0 - val_smoothing) * loss)
        action = None
        if smooth_val < best_val - min_delta:
            best_val = smooth_val
            plateau = 0
        else:
            plateau += 1
            if plateau >= patience:
                plateau = 0
                if lr > min_lr:
                    lr = max(min_lr, lr * lr_decay)
                    action = ACTION_LOWER_LR
                else:
                    action = ACTION_EARLY_STOP_WARNING
        return loss, action, {
            "val_accuracy": acc,
            "smoothed_val_loss": smooth_val,
            "best_val_loss": best_val,
            "plateau_count": float(plateau),
            "weight_norm": _norm(w),
            "lr": lr,
        }

    def dream(rng: np.random.Generator) -> tuple[float, int | None, dict[str, float]]:
        nonlocal w, b
        # Uniform with the running mean and variance: needs only sqrt, so the
        # dreamed inputs are bit-identical on every platform.
        u = rng.random((dream_samples, n_features))
        xd = run_mean + np.sqrt(3.0 * run_var) * (2.0 * u - 1.0)
        target = _dot_rows(xd, teacher_w) + teacher_b
        student = _dot_rows(xd, w) + b
        resid = student - target
        loss = float(_mean(resid * resid))
        agree = float(_mean(student * target > 0.0))
        dmean = _mean(xd)
        dstd = np.sqrt(_mean((xd - dmean) ** 2))
        mismatch = float(_mean((np.abs(dmean - real_mean) + np.abs(dstd - real_std)) / real_std))
        step_lr = lr * dream_lr_scale
        w = w - step_lr * 2.0 * _mean(xd * resid[:, None])
        b = b - step_lr * 2.0 * float(_mean(resid))
        return loss, None, {
            "dream_stat_agreement": 1.0 / (1.0 + mismatch),
            "teacher_agreement": agree,
            "teacher_gap": math.sqrt(_norm(w - teacher_w) ** 2 + (b - teacher_b) ** 2),
            "weight_norm": _norm(w),
            "lr": lr,
        }

    phases = {"dream": dream, "train": train, "validate": validate}

    def step(timestamp: int, phase: str, seed_state: int) -> dict:
        """Run one cycle of ``phase`` seeded by ``seed_state``; return its outputs."""
        try:
            fn = phases[phase]
        except KeyError:
            raise ValueError(f"unknown phase {phase!r}; expected one of {PHASES}") from None
        loss, action, metrics = fn(np.random.default_rng(int(seed_state)))
        coh = coherence()
        sig = signature()
        if not all(map(math.isfinite, (loss, coh, *sig, *metrics.values()))):
            raise FloatingPointError(
                f"learner diverged at timestamp {timestamp} ({phase}); lower learning_rate")
        return {
            "loss_value": loss,
            "coherence": coh,
            "tensor_signature": sig,
            "action_code": action,
            "metrics": metrics,
        }

    return step


def schedule(config: dict, n_cycles: int) -> list[str]:
    """Return the phase of each of ``n_cycles`` cycles, repeating ``config["schedule"]``.

    ``config`` may be ``None`` or partial (it is merged over
    :data:`DEFAULT_CONFIG`); runs with zero cycles are skipped.
    """
    runs = _schedule_runs(_config(config))
    period = [phase for phase, cycles in runs for _ in range(cycles)]
    return [period[i % len(period)] for i in range(n_cycles)]


def record_seeds(initial_seed: int, n_cycles: int) -> list[int]:
    """Return the per-cycle ``seed_state`` values drawn from ``np.random.default_rng(initial_seed)``.

    Each value is a uniform 64-bit unsigned integer as a Python int.  Full-range
    uint64 draws consume exactly one PCG64 output each, so the first ``k``
    seeds are the same whatever ``n_cycles`` is.
    """
    rng = np.random.default_rng(initial_seed)
    return rng.integers(0, 2**64, size=n_cycles, dtype=np.uint64, endpoint=False).tolist()


def run(config: dict | None = None, initial_seed: int = 2026,
        n_cycles: int = 1000) -> Iterator[tuple[int, str, int, dict]]:
    """Generator of (timestamp, phase, seed_state, outputs_dict) for cycles 0..n_cycles-1, using make_step/schedule/record_seeds.

    The timestamp of cycle ``i`` is ``i``.  Replaying the yielded
    ``(timestamp, phase, seed_state)`` triples into a fresh
    ``make_step(config, initial_seed)`` reproduces every ``outputs_dict``
    exactly.
    """
    cfg = _config(config)
    step = make_step(cfg, initial_seed)
    phases = schedule(cfg, n_cycles)
    seeds = record_seeds(initial_seed, n_cycles)
    for t in range(n_cycles):
        yield t, phases[t], seeds[t], step(t, phases[t], seeds[t])
