"""The stored JSON text of a value is one text whichever encoder wrote it:
orjson's (the fast path) and json's agree on every value the fast path takes."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from chronoledger.tables import values

_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)

plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 63) - 1) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(plain)
def test_the_fast_path_writes_what_json_writes(v):
    try:
        expected = _JSON.encode(v)
        expected.encode("utf-8")
    except UnicodeEncodeError:              # a lone surrogate: refused either way
        try:
            values.coerce("json", v)
        except values.Bad:
            return
        raise AssertionError("a lone surrogate was stored")
    assert values._plain(v)
    assert values.coerce("json", v) == expected


@given(st.recursive(st.floats(allow_nan=False, allow_infinity=False) | st.integers(1 << 63, 1 << 70),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                    max_leaves=10))
def test_values_the_fast_path_leaves_to_json(v):
    assert values.coerce("json", v) == _JSON.encode(v)


def test_deep_nesting_is_refused_not_crashed():
    v: list = []
    for _ in range(100_000):
        v = [v]
    with pytest.raises(values.Bad, match="nests too deeply"):
        values.coerce("json", v)
