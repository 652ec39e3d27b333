"""Fixed-point quantization: round half to even, refuse what cannot be stored."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from chronoledger import _core, core
from chronoledger.errors import QuantizationError

from _reference import quantize_one

TWO63 = 2.0**63


def test_published_values_default_scale():
    # the default scale is 1e-6: multiply by 10^6, round half to even
    values = [0.0, 0.1, 1.234567, -1.234567, 2.3, 1e-6, 4.9e-7, 5e-7, 1.5e-6, 2.5e-6]
    assert core.quantize(values).tolist() == [0, 100000, 1234567, -1234567, 2300000, 1, 0, 0, 2, 2]


def test_ties_go_to_even():
    assert core.quantize([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5], scale=1.0).tolist() == [0, 2, 2, 4, 0, -2, -2]
    assert core.quantize([0.25, 0.75, 1.25], scale=0.5).tolist() == [0, 2, 2]


def test_float32_input_is_read_as_float32():
    f = np.array([0.1, 2.3, 1e-7], dtype=np.float32)
    # float32(0.1) is 0.100000001490116..., which still rounds to 100000
    assert core.quantize(f).tolist() == [quantize_one(float(x), 1e6) for x in f]
    assert core.quantize(f).tolist() == [100000, 2300000, 0]


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-9e12, max_value=9e12), max_size=50),
       st.sampled_from([1e-6, 1e-3, 1.0, 0.5, 1e-9, 0.25]))
def test_matches_exact_reference(values, scale):
    inv = 1.0 / scale
    if abs(round(inv) - inv) <= 1e-9 * inv:
        inv = float(round(inv))
    try:
        expected = [quantize_one(v, inv) for v in values]
    except OverflowError:
        return
    if any(not (-(2**63) <= e < 2**63) for e in expected):
        with pytest.raises(QuantizationError):
            core.quantize(values, scale=scale)
        return
    assert core.quantize(np.array(values, dtype=np.float64), scale=scale).tolist() == expected


@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6), max_size=50))
def test_float32_matches_reference(values):
    arr = np.array(values, dtype=np.float32)
    assert core.quantize(arr).tolist() == [quantize_one(float(v), 1e6) for v in arr]


@given(st.lists(st.integers(-(2**50), 2**50), max_size=60))
def test_dequantize_then_quantize_is_identity(q):
    q = np.array(q, dtype=np.int64)
    assert np.array_equal(core.quantize(core.dequantize(q)), q)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9), max_size=60))
def test_quantize_error_is_within_half_a_step(values):
    v = np.array(values, dtype=np.float64)
    back = core.dequantize(core.quantize(v))
    tol = 0.5e-6 + 4 * np.spacing(np.abs(v) + 1.0)
    assert np.all(np.abs(back - v) <= tol)


def test_dequantize_is_correctly_rounded_division():
    assert core.dequantize(np.array([1234567, -1, 0], dtype=np.int64)).tolist() == [1.234567, -1e-06, 0.0]
    assert core.dequantize(np.array([1234567]), dtype=np.float32).dtype == np.float32
    with pytest.raises(TypeError, match="float64 or float32"):
        core.dequantize(np.array([1]), dtype=np.int32)
    with pytest.raises(TypeError, match="integer"):
        core.dequantize(np.array([1.5]))


@pytest.mark.parametrize("bad,why", [(math.nan, "NaN"), (math.inf, "infinity"), (-math.inf, "infinity"),
                                     (1e13, "outside the int64 range"), (-1e300, "outside the int64 range")])
def test_refuses_unstorable_values_naming_index_and_value(bad, why):
    values = [0.0, 1.0, 2.0, bad, 4.0]
    with pytest.raises(QuantizationError, match=why) as info:
        core.quantize(values)
    assert info.value.index == 3
    assert "element 3" in str(info.value)
    assert repr(bad) in str(info.value) or "nan" in str(info.value)


def test_int64_boundaries_exactly():
    below = np.nextafter(TWO63, 0)
    assert core.quantize([below], scale=1.0).tolist() == [int(below)]
    assert core.quantize([-TWO63], scale=1.0).tolist() == [-(2**63)]
    with pytest.raises(QuantizationError, match="element 0"):
        core.quantize([TWO63], scale=1.0)


def test_multidimensional_error_names_the_position():
    arr = np.zeros((3, 4))
    arr[2, 1] = np.nan
    with pytest.raises(QuantizationError, match=r"element 9 \(2, 1\)"):
        core.quantize(arr)


def test_shapes_layouts_and_dtypes():
    a = np.arange(24, dtype=np.float64).reshape(4, 6) * 0.5
    assert core.quantize(a).shape == (4, 6)
    assert np.array_equal(core.quantize(a.T), core.quantize(np.ascontiguousarray(a.T)))
    assert np.array_equal(core.quantize(a[:, ::2]), core.quantize(a[:, ::2].copy()))
    assert core.quantize([1, 2, 3], scale=1.0).tolist() == [1, 2, 3]
    assert core.quantize([]).shape == (0,)
    big = np.linspace(-100, 100, 2_000_001)
    assert np.array_equal(core.quantize(big), np.rint(big * 1e6).astype(np.int64))


@pytest.mark.parametrize("scale", [0.0, -1e-6, math.inf, math.nan])
def test_bad_scale(scale):
    with pytest.raises(ValueError, match="scale"):
        core.quantize([1.0], scale=scale)


@pytest.fixture(params=["simd", "scalar"])
def quant_path(request):
    before = _core._quant_simd(request.param == "simd")
    if request.param == "simd" and not _core._quant_simd(None):
        _core._quant_simd(before)
        pytest.skip("this CPU has no SIMD quantize path")
    yield request.param
    _core._quant_simd(before)


def test_simd_and_scalar_paths_agree(quant_path):
    rng = np.random.default_rng(17)
    values = np.concatenate([
        rng.normal(0, 1, 100_001),
        rng.normal(0, 1e7, 1001),                                   # beyond 2^51 after scaling
        np.arange(-50, 50) + 0.5,                                    # exact ties at scale 1e-6 * 1e6
        (np.arange(-50, 50) + 0.5) * 1e-6,
    ])
    expected = [quantize_one(float(v), 1e6) for v in values[::97]]
    got = core.quantize(values)
    assert got[::97].tolist() == expected
    f32 = values.astype(np.float32)
    assert core.quantize(f32)[::97].tolist() == [quantize_one(float(v), 1e6) for v in f32[::97]]
    bad = values.copy()
    bad[77_777] = np.inf
    with pytest.raises(QuantizationError, match="element 77777"):
        core.quantize(bad)


def test_unaligned_float_input():
    raw = bytearray(8 * 101 + 3)
    arr = np.frombuffer(raw, dtype=np.float64, offset=3, count=100)
    assert not arr.flags.aligned
    arr[:] = np.linspace(-1, 1, 100)
    assert np.array_equal(core.quantize(arr), core.quantize(np.linspace(-1, 1, 100)))


def test_dequantize_into_a_callers_array():
    q = np.array([1, -2, 3_000_000], dtype=np.int64)
    out = np.zeros(3, np.float32)
    got = core.dequantize(q, dtype=np.float32, out=out)
    assert got is out and out.tolist() == pytest.approx([1e-6, -2e-6, 3.0])
    assert core.dequantize(q, out=np.empty(3)).tolist() == core.dequantize(q).tolist()
    for bad in (np.empty(3, np.float64), np.empty(4, np.float32), np.empty(6, np.float32)[::2]):
        with pytest.raises(TypeError, match="out must be"):
            core.dequantize(q, dtype=np.float32, out=bad)
