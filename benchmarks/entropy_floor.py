"""A lower bound on the bytes per record that any lossless coder can reach on
the standard workload, column by column, and where the chronicle and the
size target stand against it.

The bound is the ideal code length under an oracle: for every record, the
probability the generating model (chronoledger.workload) gives to the value
actually stored, *given the model's hidden state* (the AR(1) noise, the
random walks before the clip).  A real coder sees only the stored values,
and conditioning on more information can only lower entropy, so no coder
that does not know the generator's seed can do better on average.  What is
stored is the float32 value quantized at 1e-6, so the probability of a
stored integer is the model's probability mass over every float64 value
that ends up as that integer (through the float32 cast).  Floored or
clipped records are counted as free (0 bits), which keeps the figure a
lower bound.  It is a bound for this very sample too, not only on average:
by the competitive optimality of the true model's code (Cover & Thomas,
Elements of Information Theory), the chance that any code beats its length on the sample by k
bits is at most 2^-k, and a 0.3 % margin on a million records is about
400,000 bits.

    python benchmarks/entropy_floor.py                  # floors, ours, the target
    python benchmarks/entropy_floor.py --n 200000 --no-parquet

The chronicle's own per-column bytes and the best of the 48 Parquet settings
come from bench_chronicle.py (the same data, the same code).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from chronoledger import workload

sys.path.insert(0, str(Path(__file__).resolve().parent))

SCALE = 1e-6
LOG2_SQRT_2PI = 0.5 * math.log2(2 * math.pi)


def _f32_cell(q: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """For stored integers q: the float64 interval [lo, hi) of values that
    become q after the cast to float32 and quantization (round half even;
    ties have measure zero).  Works for values of either sign."""
    lo_v = (q.astype(np.float64) - 0.5) * scale
    hi_v = (q.astype(np.float64) + 0.5) * scale
    # the float32 values inside [lo_v, hi_v): from the first >= lo_v to the last < hi_v
    first = lo_v.astype(np.float32)
    first = np.where(first.astype(np.float64) < lo_v, np.nextafter(first, np.float32(np.inf)), first)
    end = hi_v.astype(np.float32)
    end = np.where(end.astype(np.float64) < hi_v, np.nextafter(end, np.float32(np.inf)), end)
    last = np.nextafter(end, np.float32(-np.inf))
    # each float32 value v collects the float64 values closer to it than to its neighbours
    below = np.nextafter(first, np.float32(-np.inf)).astype(np.float64)
    above = np.nextafter(last, np.float32(np.inf)).astype(np.float64)
    lo = (first.astype(np.float64) + below) / 2
    hi = (last.astype(np.float64) + above) / 2
    return lo, hi


def gaussian_bits(stored: np.ndarray, mean: np.ndarray, sd: float | np.ndarray, scale: float) -> np.ndarray:
    """-log2 P(stored integer) when the float64 value is N(mean, sd): the
    density at the cell's midpoint times its width (cells are ~1e-3 sd wide
    or less, so the density is flat across one to a part in a million)."""
    q = np.rint(stored.astype(np.float64) / scale).astype(np.int64)
    lo, hi = _f32_cell(q, scale)
    z = ((lo + hi) / 2 - mean) / sd
    return LOG2_SQRT_2PI + (z * z / 2) / math.log(2) + np.log2(sd) - np.log2(hi - lo)


def discrete_normal_bits(values: np.ndarray, mean: float, sd: float, floor_at: int) -> np.ndarray:
    """-log2 P(v) for v = max(floor_at, rint(N(mean, sd)))."""
    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf((x - mean) / (sd * math.sqrt(2))))
    out = np.empty(len(values))
    for v in np.unique(values):
        p = cdf(v + 0.5) - (cdf(v - 0.5) if v > floor_at else 0.0)
        out[values == v] = -math.log2(p)
    return out


def floors(n: int, variant: str, seed: int = workload.DEFAULT_SEED) -> dict[str, float]:
    """Bits per record of each column under the oracle, divided by 8 (bytes)."""
    lat = workload.latents(n, variant, seed)
    cols = workload.generate(n, variant, seed)
    i = np.arange(n, dtype=np.float64)
    out: dict[str, float] = {}

    # timestamp: the ms steps are max(1, rint(N(50, 8))); seq is determined
    if variant == "seq":
        out["timestamp"] = 0.0
    else:
        steps = np.diff(cols["timestamp"].astype(np.int64))
        out["timestamp"] = float(discrete_normal_bits(steps, workload.MS_STEP_MEAN, workload.MS_STEP_SD, 1).sum()) / n / 8

    # phase: runs of geometric length; the cycle order is known, so each
    # record says only "the run goes on" (1 - p) or "it ended before me" (p)
    ph = cols["phase"]
    p_end = 1.0 / np.asarray(workload.PHASE_MEAN_RUN, dtype=np.float64)
    prev = ph[:-1]
    ended = ph[1:] != prev
    bits = np.where(ended, -np.log2(p_end[prev]), -np.log2(1 - p_end[prev]))
    out["phase"] = float(bits.sum()) / n / 8

    # loss: trend + AR(1): x_t ~ N(trend_t + rho e_{t-1}, sigma_eta); floored records are free
    trend = workload.LOSS_AMPLITUDE * np.exp(-i / workload.LOSS_DECAY) + workload.LOSS_FLOOR
    e = lat["loss_noise"]
    mean = trend.copy()
    mean[1:] += workload.LOSS_RHO * e[:-1]
    sd = np.full(n, workload.LOSS_NOISE_SD * math.sqrt(1 - workload.LOSS_RHO ** 2))
    sd[0] = workload.LOSS_NOISE_SD
    loss_bits = gaussian_bits(cols["loss"], mean, sd, SCALE)
    out["loss"] = float(np.where(cols["loss"] > 0, loss_bits, 0.0).sum()) / n / 8

    # coherence: base_t + walk; the walk's last position is the hidden state;
    # clipped records are free; record 0 is fixed (walk starts at 0)
    base = workload.COHERENCE_MEAN + workload.COHERENCE_AMPLITUDE * np.sin(2.0 * np.pi * i / workload.COHERENCE_PERIOD)
    w = lat["coherence_walk"]
    mean = base[1:] + w[:-1]
    coh = cols["coherence"][1:]
    free = (coh <= 0) | (coh >= 1)
    bits = gaussian_bits(coh, mean, workload.COHERENCE_STEP_SD, SCALE)
    out["coherence"] = float(np.where(free, 0.0, bits).sum()) / n / 8

    # tensor: three walks, fixed start
    t = lat["tensor_signature"]
    for j in range(3):
        bits = gaussian_bits(cols["tensor_signature"][1:, j], t[:-1, j], workload.TENSOR_STEP_SD, SCALE)
        out[f"tensor{j}"] = float(bits.sum()) / n / 8

    # action: present with p = 0.03, then uniform over 16 codes
    pres = cols["action_present"]
    p = workload.ACTION_PRESENT_P
    bits = np.where(pres, -math.log2(p) + math.log2(workload.ACTION_CODES), -math.log2(1 - p))
    out["action_code"] = float(bits.sum()) / n / 8

    # seed_state: uniform over 64 bits
    out["seed_state"] = 8.0
    return out


def ours(n: int, variant: str) -> tuple[float, dict[str, float]]:
    """The chronicle file's bytes per record (written as bench_chronicle
    writes it), and each column's bytes from the same codec over the same
    65,536-record blocks (the file adds block framing and a directory)."""
    import bench_chronicle as bc
    from chronoledger import core
    from chronoledger.chronicle.writer import DEFAULT_BLOCK_RECORDS

    cols = bc.data(variant, n)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.cmeta"
        bc.write_chronicle(p, cols)
        size = p.stat().st_size / n
    per = {}
    for name, v in workload.integer_columns(cols, SCALE).items():
        chunks = [v[i:i + DEFAULT_BLOCK_RECORDS] for i in range(0, n, DEFAULT_BLOCK_RECORDS)]
        per[name] = sum(len(b) for b in core.encode_columns(chunks)) / n
    return size, per


def best_parquet_bytes(n: int, variant: str) -> float:
    import bench_chronicle as bc

    bc.OPT.n = n
    _, sizes = bc.best_parquet(variant)
    return sizes[0][0] / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=workload.DEFAULT_N)
    ap.add_argument("--variants", nargs="+", default=list(workload.VARIANTS), choices=workload.VARIANTS)
    ap.add_argument("--no-parquet", action="store_true", help="skip the 48 Parquet settings")
    opt = ap.parse_args(argv)
    for variant in opt.variants:
        fl = floors(opt.n, variant)
        total = sum(fl.values())
        size, per = ours(opt.n, variant)
        print(f"\n{variant}, n = {opt.n:,}: B/record, column by column")
        print(f"  {'column':12s} {'bound':>8s} {'ours':>8s} {'ours/bound':>10s}")
        for k, v in fl.items():
            o = per.get(k, float("nan"))
            print(f"  {k:12s} {v:8.4f} {o:8.4f} {o / v if v else float('nan'):10.4f}")
        print(f"  {'total':12s} {total:8.4f} {sum(per.values()):8.4f}")
        print(f"chronicle file: {size:.4f} B/record = {size / total:.4f}x the bound")
        if not opt.no_parquet:
            pq = best_parquet_bytes(opt.n, variant)
            print(f"best Parquet: {pq:.4f} B/record; 0.95x of it = {0.95 * pq:.4f}, "
                  f"{'below' if 0.95 * pq < total else 'above'} the bound by {abs(0.95 * pq - total) / total:.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
