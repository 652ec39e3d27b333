"""Seeded generator of chronoledger's standard "cycles" workload.

The workload imitates a training / validation / dreaming loop that logs one
record per step.  :func:`generate` returns the columns as numpy arrays; it is
fully vectorised (1,000,000 records take well under a second) and, for a given
``(n, variant, seed)``, always produces the same values.

Columns (``generate`` returns them in this order)
-------------------------------------------------

==================  =============  ================================================
field               dtype          distribution
==================  =============  ================================================
timestamp           uint64         ``"seq"``: ``1_000_000 + i``;
                                   ``"ms"``: ``1_767_225_600_000`` (2026-01-01T00Z,
                                   epoch ms) at ``i = 0``, then cumulative steps of
                                   ``max(1, rint(N(50, 8)))`` ms
phase               uint8          runs cycling train(0) -> validate(1) -> dream(2),
                                   starting with train; run lengths geometric
                                   (support >= 1) with means 400 / 60 / 120
loss                float32        ``2.3 exp(-i / 250_000) + 0.08 + e_i``, floored
                                   at 0; ``e`` is a stationary AR(1), rho = 0.9,
                                   marginal sd 0.03 (innovation sd
                                   ``0.03 sqrt(1 - 0.81)``; ``e_0 ~ N(0, 0.03)``)
coherence           float32        ``0.5 + 0.35 sin(2 pi i / 200_000) + w_i``,
                                   clipped to [0, 1]; ``w`` is a random walk with
                                   ``w_0 = 0`` and N(0, 2e-4) steps
tensor_signature    float32 (n,3)  three random walks with N(0, 1e-3) steps,
                                   value at ``i = 0`` exactly 0.1, -0.4, 1.2
action_code         uint8          uniform 0..15 where present, 0 where absent
action_present      bool           True for ~3 % of records (Bernoulli 0.03)
seed_state          uint64         uniform over all 64 bits
==================  =============  ================================================

Walks and the AR(1) are accumulated in float64 and cast to float32 last.
``rint`` is numpy's round-half-to-even.

Random draw order (fixed; changing it changes every later column)
-----------------------------------------------------------------
One ``np.random.default_rng(seed)`` is used, drawing in this order:

1. phase run lengths: ``geometric(p=(1/400, 1/60, 1/120), size=(k, 3))`` with
   ``k = n // 580 + 16`` cycles, repeated with the same ``k`` while the drawn
   runs cover fewer than ``n`` records;
2. loss noise: ``standard_normal(n)``;
3. coherence steps: ``standard_normal(n - 1)``;
4. tensor steps: ``standard_normal((n - 1, 3))``;
5. action presence: ``random(n) < 0.03``;
6. action codes: ``integers(0, 16, n, dtype=uint8)`` (drawn for every record);
7. seed_state: ``integers(0, 2**64, n, dtype=uint64)``;
8. only for ``variant="ms"``: timestamp steps ``standard_normal(n - 1)``.

Because the timestamp draws come last, every column except ``timestamp`` is
identical between the two variants for the same ``n`` and ``seed``.

The AR(1) recurrence is solved in blocks with numpy (no scipy), so the
values do not depend on which optional packages are installed.

Raw packed record
-----------------
:data:`RECORD_DTYPE` is the unaligned little-endian 38-byte row
(``8 + 1 + 4 + 4 + 12 + 1 + 8``).  The optional action code is folded into one
byte: the code (0..15) when present, :data:`ACTION_ABSENT` (0xFF) when absent.
:func:`pack_records` builds those rows.

The command-line front end is ``tools/gen_cycles.py``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chronoledger import core

__all__ = [
    "ACTION_ABSENT",
    "DEFAULT_N",
    "DEFAULT_SEED",
    "PHASES",
    "RECORD_BYTES",
    "RECORD_DTYPE",
    "VARIANTS",
    "generate",
    "integer_columns",
    "latents",
    "pack_records",
    "summarize",
]

DEFAULT_N = 1_000_000
DEFAULT_SEED = 12345
VARIANTS = ("seq", "ms")

#: Phase names, indexed by the ``phase`` code.
PHASES = ("train", "validate", "dream")
#: Mean run length of each phase, in records (same order as PHASES).
PHASE_MEAN_RUN = (400, 60, 120)

SEQ_TIMESTAMP_BASE = 1_000_000
MS_TIMESTAMP_BASE = 1_767_225_600_000  # 2026-01-01T00:00:00Z in epoch ms
MS_STEP_MEAN = 50.0
MS_STEP_SD = 8.0

LOSS_AMPLITUDE = 2.3
LOSS_DECAY = 250_000.0
LOSS_FLOOR = 0.08
LOSS_RHO = 0.9
LOSS_NOISE_SD = 0.03  # marginal (stationary) sd of the AR(1) noise

COHERENCE_MEAN = 0.5
COHERENCE_AMPLITUDE = 0.35
COHERENCE_PERIOD = 200_000.0
COHERENCE_STEP_SD = 2e-4

TENSOR_START = (0.1, -0.4, 1.2)
TENSOR_STEP_SD = 1e-3

ACTION_PRESENT_P = 0.03
ACTION_CODES = 16
#: Value of the packed action byte when no action code is present.
ACTION_ABSENT = 0xFF

#: One raw packed record: little-endian, no padding.
RECORD_DTYPE = np.dtype(
    [
        ("timestamp", "<u8"),
        ("phase", "u1"),
        ("loss", "<f4"),
        ("coherence", "<f4"),
        ("tensor_signature", "<f4", (3,)),
        ("action_code", "u1"),
        ("seed_state", "<u8"),
    ]
)
RECORD_BYTES = RECORD_DTYPE.itemsize
assert RECORD_BYTES == 38


def _phases(rng: np.random.Generator, n: int) -> np.ndarray:
    """Phase codes: runs cycling 0 -> 1 -> 2 with geometric lengths."""
    p = 1.0 / np.asarray(PHASE_MEAN_RUN, dtype=np.float64)
    k = n // sum(PHASE_MEAN_RUN) + 16
    chunks = []
    covered = 0
    while covered < n:
        runs = rng.geometric(p, size=(k, 3))  # row = one train/validate/dream cycle
        chunks.append(runs.reshape(-1))
        covered += int(runs.sum())
    lengths = np.concatenate(chunks)
    codes = np.resize(np.arange(3, dtype=np.uint8), lengths.size)
    return np.repeat(codes, lengths)[:n]


def _ar1_numpy(x: np.ndarray, rho: float, block: int = 64) -> np.ndarray:
    """y[t] = x[t] + rho * y[t-1] (y[-1] = 0) without scipy.

    Solved exactly inside blocks of ``block`` values with a scaled cumsum, then
    the carry is propagated block to block (n / block cheap Python steps).
    """
    n = x.size
    if n == 0:
        return x.astype(np.float64)
    m = -(-n // block)
    buf = np.zeros(m * block, dtype=np.float64)
    buf[:n] = x
    blocks = buf.reshape(m, block)
    j = np.arange(block, dtype=np.float64)
    up = rho**j  # rho^j
    y = np.cumsum(blocks / up, axis=1) * up  # per-block solution with zero carry-in
    # Carry-in of block b is y[b-1, -1] (final); contributes rho^(j+1) * carry.
    decay = rho * up
    last = y[:, -1].copy()
    carry = 0.0
    rho_b = rho**block
    for b in range(m):
        final = last[b] + rho_b * carry
        last[b] = carry  # carry-in for block b
        carry = final
    y += last[:, None] * decay
    return y.reshape(-1)[:n]


def _ar1(x: np.ndarray, rho: float) -> np.ndarray:
    # One code path on every machine (no optional scipy), so the workload is
    # the same wherever it is generated.
    return _ar1_numpy(x, rho)


def _walk(rng: np.random.Generator, n: int, sd: float, width: int | None = None) -> np.ndarray:
    """Random walk starting at 0 (float64), n values, N(0, sd) steps."""
    shape = (n - 1,) if width is None else (n - 1, width)
    steps = rng.standard_normal(shape) * sd
    out_shape = (n,) if width is None else (n, width)
    out = np.zeros(out_shape, dtype=np.float64)
    np.cumsum(steps, axis=0, out=out[1:])
    return out


def generate(n: int = DEFAULT_N, variant: str = "seq", seed: int = DEFAULT_SEED) -> dict[str, np.ndarray]:
    """Generate ``n`` records of the standard workload.

    Returns a dict of column name -> array (see the module docstring):
    ``timestamp`` (u64), ``phase`` (u8), ``loss`` (f32), ``coherence`` (f32),
    ``tensor_signature`` (f32, shape (n, 3)), ``action_code`` (u8, 0 where
    absent), ``action_present`` (bool), ``seed_state`` (u64).
    """
    lat = latents(n, variant, seed)
    return {
        "timestamp": lat["timestamp"],
        "phase": lat["phase"],
        "loss": np.maximum(lat["loss"], 0.0).astype(np.float32),
        "coherence": np.clip(lat["coherence"], 0.0, 1.0).astype(np.float32),
        "tensor_signature": lat["tensor_signature"].astype(np.float32),
        "action_code": lat["action_code"],
        "action_present": lat["action_present"],
        "seed_state": lat["seed_state"],
    }


def latents(n: int = DEFAULT_N, variant: str = "seq", seed: int = DEFAULT_SEED) -> dict[str, np.ndarray]:
    """The processes behind :func:`generate`, before the floor, the clip and
    the cast to float32: ``loss`` (float64, trend + AR(1) noise), ``loss_noise``
    (the AR(1) noise alone), ``coherence`` (float64, sine + walk, unclipped),
    ``coherence_walk``, ``tensor_signature`` (float64 walks), and the integer
    columns as :func:`generate` returns them.  For analyses that need the
    model's hidden state (``benchmarks/entropy_floor.py``)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    n = int(n)
    if n < 1:
        raise ValueError("n must be >= 1")
    rng = np.random.default_rng(seed)
    i = np.arange(n, dtype=np.float64)

    # 1. phase
    phase = _phases(rng, n)

    # 2. loss: decaying curve + stationary AR(1) noise (floored at 0 by generate)
    eps = rng.standard_normal(n)
    eps[0] *= LOSS_NOISE_SD  # e_0 drawn from the stationary law
    eps[1:] *= LOSS_NOISE_SD * math.sqrt(1.0 - LOSS_RHO**2)
    noise = _ar1(eps, LOSS_RHO)
    loss = LOSS_AMPLITUDE * np.exp(-i / LOSS_DECAY) + LOSS_FLOOR + noise

    # 3. coherence: sine + random walk (clipped to [0, 1] by generate)
    walk = _walk(rng, n, COHERENCE_STEP_SD)
    coherence = COHERENCE_MEAN + COHERENCE_AMPLITUDE * np.sin(2.0 * np.pi * i / COHERENCE_PERIOD)
    coherence += walk

    # 4. tensor signature: three walks
    tensor = _walk(rng, n, TENSOR_STEP_SD, width=3)
    tensor += np.asarray(TENSOR_START, dtype=np.float64)

    # 5./6. optional action code
    action_present = rng.random(n) < ACTION_PRESENT_P
    codes = rng.integers(0, ACTION_CODES, size=n, dtype=np.uint8)
    action_code = np.where(action_present, codes, np.uint8(0)).astype(np.uint8)

    # 7. seed state
    seed_state = rng.integers(0, 2**64, size=n, dtype=np.uint64)

    # 8. timestamp
    if variant == "seq":
        timestamp = np.arange(SEQ_TIMESTAMP_BASE, SEQ_TIMESTAMP_BASE + n, dtype=np.uint64)
    else:
        steps = np.rint(rng.normal(MS_STEP_MEAN, MS_STEP_SD, size=n - 1))
        steps = np.maximum(steps, 1.0).astype(np.uint64)
        timestamp = np.empty(n, dtype=np.uint64)
        timestamp[0] = MS_TIMESTAMP_BASE
        np.cumsum(steps, out=timestamp[1:])
        timestamp[1:] += np.uint64(MS_TIMESTAMP_BASE)

    return {
        "timestamp": timestamp,
        "phase": phase,
        "loss": loss,
        "loss_noise": noise,
        "coherence": coherence,
        "coherence_walk": walk,
        "tensor_signature": tensor,
        "action_code": action_code,
        "action_present": action_present,
        "seed_state": seed_state,
    }


def integer_columns(cols: dict[str, np.ndarray], scale: float = 1e-6) -> dict[str, np.ndarray]:
    """The workload as the integer columns a codec stores: floats quantized at
    ``scale``, the tensor split into tensor0..2, the optional action code as
    code + 1 with 0 for absent (u8)."""
    out = {"timestamp": cols["timestamp"], "phase": cols["phase"],
           "loss": core.quantize(cols["loss"], scale), "coherence": core.quantize(cols["coherence"], scale)}
    tensor = core.quantize(cols["tensor_signature"], scale)
    for j in range(tensor.shape[1]):
        out[f"tensor{j}"] = np.ascontiguousarray(tensor[:, j])
    out["action_code"] = np.where(cols["action_present"], cols["action_code"].astype(np.uint16) + 1,
                                  0).astype(np.uint8)
    out["seed_state"] = cols["seed_state"]
    return out


def pack_records(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Pack columns into an array of :data:`RECORD_DTYPE` (38 bytes/record).

    ``.tobytes()`` on the result gives the raw row-major byte stream.
    """
    n = cols["timestamp"].shape[0]
    rec = np.empty(n, dtype=RECORD_DTYPE)
    for name in ("timestamp", "phase", "loss", "coherence", "tensor_signature", "seed_state"):
        rec[name] = cols[name]
    rec["action_code"] = np.where(cols["action_present"], cols["action_code"], np.uint8(ACTION_ABSENT))
    return rec


def _stats(a: np.ndarray) -> dict[str, Any]:
    if a.dtype == np.bool_:
        return {"true": int(a.sum()), "fraction": float(a.mean())}
    if a.dtype.kind == "u" and a.dtype.itemsize == 8:
        # float64 mean/std lose precision on 64-bit ints; keep min/max exact.
        return {"min": int(a.min()), "max": int(a.max()), "mean": float(a.mean(dtype=np.float64))}
    if a.dtype.kind in "ui":
        return {"min": int(a.min()), "max": int(a.max()), "mean": float(a.mean()), "std": float(a.std())}
    return {
        "min": float(a.min()),
        "max": float(a.max()),
        "mean": float(a.mean(dtype=np.float64)),
        "std": float(a.std(dtype=np.float64)),
    }


def summarize(cols: dict[str, np.ndarray], variant: str, seed: int) -> dict[str, Any]:
    """JSON-serialisable summary of generated columns."""
    n = int(cols["timestamp"].shape[0])
    columns: dict[str, Any] = {}
    for name, a in cols.items():
        if name == "tensor_signature":
            columns[name] = [_stats(a[:, j]) for j in range(a.shape[1])]
        elif name == "action_code":
            columns[name] = _stats(a[cols["action_present"]]) if cols["action_present"].any() else {}
        else:
            columns[name] = _stats(a)
    phase = cols["phase"]
    counts = np.bincount(phase, minlength=len(PHASES))
    runs = int(np.count_nonzero(np.diff(phase))) + 1
    columns["phase"].update(
        counts={name: int(c) for name, c in zip(PHASES, counts)},
        runs=runs,
    )
    ts = cols["timestamp"]
    if n > 1:
        d = np.diff(ts)
        columns["timestamp"]["step_min"] = int(d.min())
        columns["timestamp"]["step_max"] = int(d.max())
    return {
        "n": n,
        "variant": variant,
        "seed": seed,
        "record_bytes": RECORD_BYTES,
        "raw_bytes": RECORD_BYTES * n,
        "columns": columns,
    }


