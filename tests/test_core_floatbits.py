"""The float kernels under the chronicle's exact floats and fixed point:
ordered bits (core.to_ordered / from_ordered) and fixed point's exceptions."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from chronoledger import core
from chronoledger._chronicle import first_use, fixed_exceptions
from chronoledger.errors import CorruptDataError

SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1.7976931348623157e308,
                    -1.7976931348623157e308, 1e-8, -3e-7], dtype=np.float64)


def reference(values):
    """The definition in docs/FORMAT.md, written plainly with numpy."""
    if values.dtype == np.float32:
        b = values.view(np.uint32)
        return np.where(b >> 31, ~b, b | np.uint32(1 << 31))
    b = values.view(np.uint64)
    return np.where(b >> 63, ~b, b | np.uint64(1 << 63))


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, st.integers(0, 300), elements=st.floats(allow_nan=True, width=64)))
def test_float64_round_trip_bit_for_bit(values):
    bits = core.to_ordered(values)
    assert bits.dtype == np.uint64
    assert np.array_equal(bits, reference(values))
    back = core.from_ordered(bits)
    assert np.array_equal(back.view(np.uint64), values.view(np.uint64))


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.integers(0, 300), elements=st.floats(allow_nan=True, width=32)))
def test_float32_round_trip_bit_for_bit(values):
    bits = core.to_ordered(values)
    assert bits.dtype == np.uint32
    assert np.array_equal(bits, reference(values))
    back = core.from_ordered(bits, np.float32)
    assert np.array_equal(back.view(np.uint32), values.view(np.uint32))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")   # float64 max -> inf, meant
def test_width_4_casts_float64_as_a_float32_field_stores_it():
    bits = core.to_ordered(SPECIAL, 4)
    assert bits.dtype == np.uint32
    assert np.array_equal(bits, reference(SPECIAL.astype(np.float32)))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_width_8_widens_float32():
    f32 = SPECIAL.astype(np.float32)
    assert np.array_equal(core.to_ordered(f32, 8), reference(f32.astype(np.float64)))


def test_order_of_bits_is_the_order_of_floats():
    finite = np.sort(SPECIAL[np.isfinite(SPECIAL)])
    bits = core.to_ordered(finite)
    assert (np.diff(bits.astype(object)) >= 0).all()
    assert core.to_ordered(np.array([-0.0]))[0] < core.to_ordered(np.array([0.0]))[0]


def test_out_is_filled_and_checked():
    out = np.empty(len(SPECIAL), np.uint64)
    assert core.to_ordered(SPECIAL, out=out) is out
    with pytest.raises(TypeError, match="out must be a writable contiguous uint32 array"):
        core.to_ordered(SPECIAL, 4, out=out)
    with pytest.raises(ValueError, match="width must be 4 or 8"):
        core.to_ordered(SPECIAL, 2)
    with pytest.raises(TypeError, match="expected float32 or float64"):
        core.to_ordered(np.arange(3))


def test_wide_bits_that_are_no_float32_are_corrupt():
    bits = np.array([1 << 31, (1 << 32) + 5], np.uint64)
    with pytest.raises(CorruptDataError, match="index 1 is not the ordered bits of a float32"):
        core.from_ordered(bits, np.float32)


def test_fixed_exceptions_are_nan_infinities_and_negative_zero():
    values = np.zeros(5000)
    odd = [3, 1024, 1025, 4999]
    values[odd] = [np.nan, np.inf, -0.0, -np.inf]
    values[7] = 5e-324
    assert fixed_exceptions(values).tolist() == odd
    assert fixed_exceptions(np.arange(10.0)).tolist() == []


def test_first_use_orders_codes_by_first_appearance():
    assert first_use(np.array([2, 2, 0, 2, 1, 0], np.uint32), 4).tolist() == [2, 0, 1]
    assert first_use(np.array([], np.uint32), 0).tolist() == []
    with pytest.raises(ValueError, match="code 9 at index 1 is not below 3"):
        first_use(np.array([0, 9], np.uint32), 3)
