"""Integer column codec: exact round trips, and only CorruptDataError on bad bytes."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from chronoledger import core
from chronoledger.errors import CorruptDataError, TruncatedError

from _reference import deltas, unzigzag, zigzag
from conftest import SLOW

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
EXTREMES = [I64_MIN, I64_MAX, 0, -1, 1, I64_MIN + 1, I64_MAX - 1]

int64s = st.one_of(st.integers(I64_MIN, I64_MAX), st.sampled_from(EXTREMES), st.integers(-1000, 1000))
uint64s = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**63, 2**64 - 1, 2**63 - 1]))
options = st.fixed_dictionaries({
    "order": st.sampled_from([None, 0, 1, 2]),
    "level": st.sampled_from([0, 1, 3]),
    "rle": st.sampled_from([None, True, False]),
})


def roundtrip(values, **kw):
    data = core.encode_column(values, **kw)
    out = core.decode_column(data)
    assert out.dtype == values.dtype
    assert np.array_equal(out, values)
    return data


@given(st.lists(int64s, max_size=700), options)
def test_int64_roundtrip(values, kw):
    roundtrip(np.array(values, dtype=np.int64), **kw)


@given(st.lists(uint64s, max_size=700), options)
def test_uint64_roundtrip(values, kw):
    roundtrip(np.array(values, dtype=np.uint64), **kw)


@given(st.integers(0, 2000), st.integers(I64_MIN, I64_MAX), st.integers(-(2**40), 2**40),
       st.integers(0, 1000), options)
def test_structured_columns_roundtrip(n, start, step, noise, kw):
    rng = np.random.default_rng(n)
    base = (np.int64(start) + np.arange(n, dtype=np.int64) * np.int64(step)) if n else np.zeros(0, np.int64)
    with np.errstate(over="ignore"):
        v = base + rng.integers(-noise - 1, noise + 1, n)
    roundtrip(v.astype(np.int64), **kw)


@pytest.mark.parametrize("order", [None, 0, 1, 2])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 127, 128, 129, 256, 1000])
def test_small_and_block_edge_sizes(order, n):
    rng = np.random.default_rng(n)
    roundtrip(rng.integers(I64_MIN, I64_MAX, n, dtype=np.int64, endpoint=True), order=order)
    roundtrip(np.arange(n, dtype=np.uint64) * 7, order=order)


def test_every_packed_width_roundtrips():
    """Each bit width of the packed low part (the specialised packers for
    1..32 bits, the generic one above) must write what the decoder reads.
    Alternating +x / -x with x in [2^(k+1), 2^(k+1) + 2^k) zigzags to
    residuals whose block mean has k + 3 bits: a low part of exactly k bits."""
    rng = np.random.default_rng(3)
    for k in range(1, 62):
        x = (1 << (k + 1)) + rng.integers(0, 1 << k, 1024, dtype=np.int64)
        v = np.where(np.arange(1024) % 2 == 0, x, -x).astype(np.int64)
        info = core.column_info(roundtrip(v, order=0, level=0))
        low = next(s for s in info["streams"] if s["name"] == "LOW")
        assert info["mode"] == "blocks" and low["raw_bytes"] == 16 * k * 8, (k, info)


def test_wraparound_deltas():
    v = np.array([I64_MAX, I64_MIN, I64_MAX, I64_MIN, 0, I64_MAX, -1, I64_MIN] * 50, dtype=np.int64)
    for order in (None, 0, 1, 2):
        roundtrip(v, order=order)
    u = np.array([0, 2**64 - 1, 0, 2**63, 1] * 50, dtype=np.uint64)
    for order in (None, 0, 1, 2):
        roundtrip(u, order=order)


def test_large_column_and_compression_that_can_fail():
    n = 1_000_000
    seq = np.arange(1_000_000, 1_000_000 + n, dtype=np.uint64)
    assert len(roundtrip(seq)) < 2_000                      # order 2 residuals are all zero
    rng = np.random.default_rng(5)
    walk = np.cumsum(rng.integers(-1000, 1001, n)).astype(np.int64)
    size = len(roundtrip(walk))
    assert size < n * 1.6                                  # ~11.5 bits of entropy per value
    noise = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    assert len(roundtrip(noise)) <= 8 * n + 64              # incompressible: stored raw
    assert core.column_info(core.encode_column(noise))["mode"] == "raw"


def test_modes_are_chosen_for_the_data():
    runs = np.repeat(np.array([0, 1, 2] * 100, dtype=np.uint8), 50)
    assert core.column_info(core.encode_column(runs))["mode"] == "rle"
    rng = np.random.default_rng(2)
    sparse = np.where(rng.random(10_000) < 0.03, rng.integers(1, 17, 10_000), 0).astype(np.uint8)
    assert core.column_info(core.encode_column(sparse))["mode"] == "sparse"
    roundtrip(runs)
    roundtrip(sparse)
    assert core.decode_column(core.encode_column(runs)).dtype == np.uint8


def test_residuals_follow_the_reference_definitions():
    v = [5, 3, 9, I64_MAX, I64_MIN]
    assert deltas(v, 1)[2] == (I64_MAX - 9) & (2**64 - 1)
    for d in (0, 1, 2**63, 2**64 - 1, 12345):
        assert unzigzag(zigzag(d)) == d
    info = core.column_info(core.encode_column(np.array(v, dtype=np.int64), order=1))
    assert info["order"] == 1 and info["n"] == 5


def test_input_validation():
    with pytest.raises(TypeError, match="quantize"):
        core.encode_column(np.array([1.5]))
    with pytest.raises(ValueError, match="one-dimensional"):
        core.encode_column(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="order"):
        core.encode_column(np.arange(3), order=3)
    with pytest.raises(ValueError, match="level"):
        core.encode_column(np.arange(3), level=99)


# --- untrusted bytes -------------------------------------------------------

def sample_columns():
    rng = np.random.default_rng(1)
    walk = np.cumsum(rng.normal(0, 300, 700)).astype(np.int64)
    runs = np.repeat(np.arange(20, dtype=np.int64), 30)
    sparse = np.zeros(900, dtype=np.uint8)
    sparse[::41] = 3
    big = rng.integers(0, 2**64, 50, dtype=np.uint64)
    return [core.encode_column(walk), core.encode_column(walk, level=0), core.encode_column(runs),
            core.encode_column(sparse), core.encode_column(big), core.encode_column(walk, order=2)]


def test_every_truncation_is_reported_with_an_offset():
    for data in sample_columns():
        for cut in range(len(data)):
            with pytest.raises(CorruptDataError) as info:
                core.decode_column(data[:cut])
            assert info.value.offset is not None
            assert 0 <= info.value.offset <= len(data)


def test_every_bit_flip_decodes_or_raises_corrupt_data():
    for data in sample_columns():
        for pos in range(len(data)):
            for bit in (0, 3, 7):
                bad = bytearray(data)
                bad[pos] ^= 1 << bit
                try:
                    core.decode_column(bytes(bad), max_values=10**6)
                except CorruptDataError as exc:
                    assert exc.offset is not None
                    assert "offset" in str(exc) or "byte" in str(exc)


@given(st.binary(max_size=400))
def test_random_bytes_only_raise_corrupt_data(data):
    try:
        core.decode_column(data, max_values=10**6)
    except CorruptDataError:
        pass


@given(st.data())
def test_mutated_columns_only_raise_corrupt_data(draw):
    data = bytearray(draw.draw(st.sampled_from(sample_columns())))
    for _ in range(draw.draw(st.integers(1, 8))):
        pos = draw.draw(st.integers(0, len(data) - 1))
        data[pos] = draw.draw(st.integers(0, 255))
    try:
        core.decode_column(bytes(data), max_values=10**6)
    except CorruptDataError:
        pass


@pytest.mark.skipif(not SLOW, reason="long fuzzing: set CHRONOLEDGER_SLOW=1")
def test_long_fuzz_of_mutations():
    rng = np.random.default_rng(99)
    cols = sample_columns()
    for i in range(200_000):
        data = bytearray(cols[i % len(cols)])
        for _ in range(int(rng.integers(1, 6))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        try:
            core.decode_column(bytes(data), max_values=10**6)
        except CorruptDataError:
            pass


def test_header_errors_name_the_offset():
    data = bytearray(core.encode_column(np.arange(10)))
    data[0] = 99
    with pytest.raises(CorruptDataError, match="offset 0") as info:
        core.decode_column(bytes(data))
    assert info.value.offset == 0
    with pytest.raises(TruncatedError):
        core.decode_column(b"")
    with pytest.raises(TruncatedError):
        core.decode_column(bytes(data[:3]))


def test_trailing_bytes_and_embedded_columns():
    a = core.encode_column(np.arange(100))
    b = core.encode_column(np.arange(50) * 3)
    with pytest.raises(CorruptDataError, match="after the end"):
        core.decode_column(a + b"x")
    both = a + b
    n = core.column_size(both)
    assert n == len(a)
    assert np.array_equal(core.decode_column(both, exact=False), np.arange(100))
    assert np.array_equal(core.decode_column(memoryview(both)[n:]), np.arange(50) * 3)


def test_max_values_guard():
    data = core.encode_column(np.zeros(5000, dtype=np.int64))
    with pytest.raises(CorruptDataError, match="claims 5000 values"):
        core.decode_column(data, max_values=100)


def test_unaligned_and_strided_inputs():
    raw = bytearray(8 * 1001 + 1)
    unaligned = np.frombuffer(raw, dtype=np.int64, offset=1, count=1000)
    assert not unaligned.flags.aligned
    unaligned[:] = np.arange(1000) * 3
    roundtrip_like = core.decode_column(core.encode_column(unaligned))
    assert np.array_equal(roundtrip_like, np.arange(1000) * 3)
    strided = (np.arange(4000, dtype=np.int64) ** 2)[::3]
    assert np.array_equal(core.decode_column(core.encode_column(strided)), strided)
    # the decoder reads from any offset of a larger buffer
    data = core.encode_column(np.arange(500, dtype=np.int64))
    padded = b"x" + data
    assert np.array_equal(core.decode_column(memoryview(padded)[1:]), np.arange(500))


@given(st.integers(0, 2**64 - 1), st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 2**64 - 1)), max_size=40),
       st.integers(1, 3000), st.sampled_from([0, 1]))
def test_sparse_columns_roundtrip(default, exceptions, n, level):
    v = np.full(n, default, dtype=np.uint64)
    for pos, value in exceptions:
        if pos < n:
            v[pos] = value
    roundtrip(v, level=level)


# --- columns built by hand from docs/FORMAT.md -----------------------------

def varint(x):
    out = bytearray()
    while x >= 0x80:
        out.append((x & 0x7F) | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


def rle_column(values_runs, runlen_stream=None, runlen_codec=0, junk=b""):
    """An int64 RLE column (order 0) with the given (value, length) runs."""
    import zstandard

    runval = b"".join(varint(zigzag(v)) for v, _ in values_runs)
    runlen = runlen_stream if runlen_stream is not None else b"".join(varint(n - 1) for _, n in values_runs)
    stored = runlen if runlen_codec == 0 else zstandard.ZstdCompressor().compress(runlen) + junk
    n = sum(n for _, n in values_runs)
    header = bytes([1, 2, 3 << 1, 0]) + varint(n) + varint(len(values_runs)) + bytes([2])
    header += bytes([0]) + varint(len(runval)) + varint(len(runval))
    header += bytes([runlen_codec]) + varint(len(runlen)) + varint(len(stored))
    return header + runval + stored


def test_hand_built_column_follows_the_documented_layout():
    data = rle_column([(5, 3), (-2, 2), (7, 1)])
    assert core.decode_column(data).tolist() == [5, 5, 5, -2, -2, 7]
    assert core.decode_column(rle_column([(5, 3), (-2, 2)], runlen_codec=1)).tolist() == [5, 5, 5, -2, -2]


def test_zstd_stream_must_be_exactly_one_frame():
    with pytest.raises(CorruptDataError, match="RUNLEN .*one whole frame"):
        core.decode_column(rle_column([(5, 3), (-2, 2)], runlen_codec=1, junk=b"JUNK"))


def test_runs_past_the_end_name_the_stream_and_offset():
    data = rle_column([(5, 3), (-2, 2)], runlen_stream=varint(2) + varint(9))
    with pytest.raises(CorruptDataError, match="stream RUNLEN") as info:
        core.decode_column(data)
    assert info.value.offset == len(data) - 1


def test_bad_stored_length_varint_is_reported_at_that_varint():
    data = bytearray(rle_column([(1, 2)]))
    # header: 4 fixed bytes, n, runs, nstreams, then codec / raw / stored of stream 0
    stored_at = 4 + 1 + 1 + 1 + 1 + 1
    data[stored_at:stored_at + 1] = b"\xff" * 11
    with pytest.raises(CorruptDataError) as info:
        core.decode_column(bytes(data))
    assert info.value.offset == stored_at


def test_encode_and_decode_many_columns_in_parallel():
    rng = np.random.default_rng(4)
    cols = {"a": np.cumsum(rng.integers(-9, 10, 50_000)), "b": rng.integers(0, 2**64, 1000, dtype=np.uint64),
            "c": np.zeros(10, dtype=np.int8)}
    parallel = core.encode_columns(cols)
    assert parallel == core.encode_columns(cols, threads=1)        # same bytes whatever the threads
    back = core.decode_columns(parallel)
    assert all(np.array_equal(back[k], cols[k]) and back[k].dtype == cols[k].dtype for k in cols)
    as_list = core.decode_columns(list(parallel.values()), threads=2)
    assert np.array_equal(as_list[1], cols["b"])
    bad = dict(parallel, b=parallel["b"][:-1])
    with pytest.raises(CorruptDataError):
        core.decode_columns(bad)
    with pytest.raises(ValueError, match="threads"):
        core.encode_columns(cols, threads=0)


def test_decode_into_a_callers_buffer():
    v = np.arange(1000, dtype=np.int64) * -3
    buf = np.full(1500, 7, dtype=np.int64)
    got = core.decode_column(core.encode_column(v), out=buf)
    assert np.array_equal(got, v) and got.dtype == np.int64 and np.shares_memory(got, buf)
    assert buf[1000:].tolist() == [7] * 500                      # nothing written past the column
    u = np.arange(10, dtype=np.uint64)
    assert np.shares_memory(core.decode_column(core.encode_column(u), out=buf), buf)
    small = core.decode_column(core.encode_column(np.arange(5, dtype=np.uint8)), out=buf)
    assert small.dtype == np.uint8 and small.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="holds 10 values, the column 1000"):
        core.decode_column(core.encode_column(v), out=np.empty(10, np.int64))
    for bad in (np.empty(2000, np.float64), np.empty((2, 1000), np.int64), np.empty(4000, np.int64)[::2]):
        with pytest.raises(TypeError, match="out must be"):
            core.decode_column(core.encode_column(v), out=bad)
    outs = [np.empty(1000, np.int64), None]
    a, b = core.decode_columns([core.encode_column(v), core.encode_column(v)], out=outs)
    assert np.shares_memory(a, outs[0]) and np.array_equal(b, v)


def _columns_of_every_mode(n: int, seed: int):
    """(name, values, options) of columns that encode in each mode and order."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.integers(-50, 50, n)).astype(np.int64)
    sparse = np.full(n, 7, np.uint16)
    if n:
        sparse[rng.integers(0, n, n // 20 + 1)] = rng.integers(0, 300, n // 20 + 1).astype(np.uint16)
    runs = np.repeat(rng.integers(0, 5, n // 50 + 1), 50)[:n].astype(np.uint32)
    yield "raw", rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True), {}
    for order in (0, 1, 2):
        yield f"blocks order {order}", walk * (order + 1) + np.int64(order), {"order": order}
    yield "blocks with escapes", np.where(rng.random(n) < 0.01, rng.integers(I64_MIN, I64_MAX, n), walk), {"order": 1}
    yield "rle", runs, {"rle": True}
    yield "sparse", sparse, {}


@given(st.integers(0, 1100), st.integers(0, 1200), st.integers(0, 1200), st.sampled_from([0, 1, 3]))
def test_start_and_limit_give_the_same_values_as_a_full_decode(n, start, limit, level):
    """decode_column(start=a, limit=b) is the full column's [a:b], in every
    mode, with only those values stored (issue 15: a range query decodes the
    rows it returns, not a block-sized array per column)."""
    for name, values, kw in _columns_of_every_mode(n, n + start):
        data = core.encode_column(values, level=level, **kw)
        full = core.decode_column(data)
        assert np.array_equal(full, values), name
        assert np.array_equal(core.decode_column(data, limit=limit), values[:limit]), name
        got = core.decode_column(data, start=start, limit=limit)
        want = values[start:limit]
        assert got.dtype == values.dtype and np.array_equal(got, want), (name, start, limit)
        assert np.array_equal(core.decode_column(data, start=start), values[start:]), (name, start)
        room = np.full(max(len(want), 1) + 3, 99, np.uint64)     # out needs room for the values returned only
        into = core.decode_column(data, start=start, limit=limit, out=room, wide=True)
        assert np.array_equal(into.astype(np.uint64), want.astype(np.uint64)), name
        assert room[len(want):].tolist() == [99] * (len(room) - len(want)), name


def test_start_checks_its_arguments():
    data = core.encode_column(np.arange(300, dtype=np.int64))
    with pytest.raises(ValueError, match="start must be >= 0"):
        core.decode_column(data, start=-1)
    with pytest.raises(ValueError, match="out holds 10 values, the 290 asked for"):
        core.decode_column(data, start=10, out=np.empty(10, np.int64))
    assert core.decode_column(data, start=400).tolist() == []
    assert core.decode_column(data, start=200, limit=100).tolist() == []
