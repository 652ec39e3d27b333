"""pytest-benchmark suites of the compiled core, each beside its peer.

    python -m pytest benchmarks [--benchmark-group-by=group]

The ratio tables against the peers come from compare_peers.py; these suites
keep per-function timings comparable across commits (--benchmark-autosave).
"""

import numpy as np
import pytest

from chronoledger import core, workload

fastcrc = pytest.importorskip("fastcrc")
anycrc = pytest.importorskip("anycrc")

SIZES = {"64B": 64, "1MiB": 1 << 20, "64MiB": 64 << 20}


@pytest.fixture(scope="module")
def buffers():
    rng = np.random.default_rng(1)
    return {k: rng.integers(0, 256, v, dtype=np.uint8).tobytes() for k, v in SIZES.items()}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("impl", ["chronoledger", "fastcrc", "anycrc"])
def bench_crc64(benchmark, buffers, size, impl):
    benchmark.group = f"crc64 {size}"
    fn = {"chronoledger": core.crc64, "fastcrc": fastcrc.crc64.xz,
          "anycrc": anycrc.Model("CRC64-XZ").calc}[impl]
    data = buffers[size]
    assert benchmark(fn, data) == core.crc64(data)


@pytest.fixture(scope="module")
def cycles():
    return workload.generate(1_000_000, "ms")


def bench_quantize_loss(benchmark, cycles):
    benchmark.group = "quantize"
    benchmark(core.quantize, cycles["loss"])


@pytest.mark.parametrize("column", ["timestamp", "loss", "phase", "seed_state"])
def bench_encode_column(benchmark, cycles, column):
    benchmark.group = "encode_column"
    v = cycles[column] if column != "loss" else core.quantize(cycles["loss"])
    data = benchmark(core.encode_column, v)
    assert np.array_equal(core.decode_column(data), v)


@pytest.mark.parametrize("column", ["timestamp", "loss", "phase", "seed_state"])
def bench_decode_column(benchmark, cycles, column):
    benchmark.group = "decode_column"
    v = cycles[column] if column != "loss" else core.quantize(cycles["loss"])
    data = core.encode_column(v)
    assert np.array_equal(benchmark(core.decode_column, data), v)


def bench_append_one_record(benchmark):
    benchmark.group = "append"
    buf = core.AppendBuffer(flush_every=65536, sink=lambda t, p: None)
    counter = iter(range(10**12))

    def one():
        buf.append(next(counter))

    benchmark(one)


def bench_append_batch_1m(benchmark):
    benchmark.group = "append"
    ts = np.arange(1_000_000, dtype=np.uint64)

    def batch():
        buf = core.AppendBuffer(flush_every=65536)
        buf.extend(ts)
        buf.flush()
        return buf.take()

    benchmark(batch)
