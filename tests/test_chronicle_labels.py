"""Label columns in canonical order and text columns (chronicle.columns): a
block's bytes do not depend on whether event_type/phase came as strings or as
integer codes with labels (unused labels, any order), and text columns,
ASCII or not, read back exactly."""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import zstandard
from chronoledger import core
from chronoledger.chronicle import Chronicle
from chronoledger.chronicle import format as fmt
from chronoledger.chronicle.columns import Labels, decode_block, encode_block
from hypothesis import given
from hypothesis import strategies as st

TYPES = ["move", "chat", "rest", "ünïcödé", "日本", "x"]
SALT = 0x5EED          # files compared byte for byte share their salt (it is random unless given)


# --- Labels.canonical -----------------------------------------------------------------------------

def _as_pair(labels: Labels):
    return labels.codes.tolist(), list(labels.names)


def test_canonical_orders_names_by_first_use_and_drops_unused():
    lab = Labels(np.array([3, 1, 3, 0, 1], dtype=np.uint32), ["a", "b", "unused", "d"])
    can = lab.canonical()
    assert _as_pair(can) == ([0, 1, 0, 2, 1], ["d", "b", "a"])
    assert can.strings().tolist() == lab.strings().tolist() == ["d", "b", "d", "a", "b"]
    assert can.codes.dtype == np.uint32
    assert _as_pair(lab) == ([3, 1, 3, 0, 1], ["a", "b", "unused", "d"])      # the original is left alone


def test_canonical_of_canonical_labels_is_themselves():
    lab = Labels.from_strings(["b", "a", "b", "c"])
    assert lab.canonical() is lab
    assert _as_pair(lab.canonical()) == ([0, 1, 0, 2], ["b", "a", "c"])


def test_canonical_drops_trailing_unused_names():
    lab = Labels(np.array([0, 1, 0], dtype=np.uint32), ["a", "b", "c", "d"])
    assert _as_pair(lab.canonical()) == ([0, 1, 0], ["a", "b"])


def test_canonical_of_no_rows_has_no_names():
    lab = Labels(np.zeros(0, np.uint32), ["a", "b"])
    assert _as_pair(lab.canonical()) == ([], [])
    assert _as_pair(Labels.from_strings([])) == ([], [])


@given(st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=8, unique=True).flatmap(
    lambda names: st.tuples(st.just(names), st.lists(st.integers(0, len(names) - 1), max_size=40))))
def test_canonical_is_what_from_strings_gives(case):
    names, codes = case
    lab = Labels(np.array(codes, dtype=np.uint32), names)
    want = Labels.from_strings([names[c] for c in codes])
    assert _as_pair(lab.canonical()) == _as_pair(want)


def test_canonical_with_a_name_given_twice_is_what_from_strings_gives():
    """Two codes for one name mean the same string: the canonical form (and so
    the block) cannot depend on which of the two codes a row used."""
    lab = Labels(np.array([0, 2, 1, 0], dtype=np.uint32), ["move", "chat", "move"])
    assert lab.strings().tolist() == ["move", "move", "chat", "move"]
    assert _as_pair(lab.canonical()) == _as_pair(Labels.from_strings(lab.strings().tolist()))


# --- the same file whether strings or codes + labels were passed ----------------------------------------

def _event_file(path: Path, batches, block_records: int) -> bytes:
    with Chronicle.open(path, "w", schema="event", block_records=block_records, salt=SALT) as ch:
        for cols, labels in batches:
            ch.extend(cols, labels=labels)
    return path.read_bytes()


def _cycle_file(path: Path, batches, block_records: int) -> bytes:
    with Chronicle.open(path, "w", block_records=block_records, salt=SALT) as ch:
        for cols, labels in batches:
            ch.extend(cols, labels=labels)
    return path.read_bytes()


def _event_cols(ts, kind):
    n = len(ts)
    payload = np.empty(n, dtype=object)
    payload[:] = [{"i": int(t), "s": "é" * (int(t) % 3)} if t % 2 else {} for t in ts]
    return {"timestamp": np.asarray(ts, dtype=np.uint64), "event_type": kind, "payload": payload,
            "values.v": np.where(np.asarray(ts) % 3 == 0, np.asarray(ts, dtype=np.float64) / 4, np.nan)}


def _cycle_cols(ts, kind):
    t = np.asarray(ts, dtype=np.float64)
    return {"timestamp": np.asarray(ts, dtype=np.uint64), "phase": kind, "loss_value": t / 8, "coherence": -t / 16,
            "tensor_signature": np.stack([t, t / 2, -t], axis=1), "seed_state": np.asarray(ts, dtype=np.uint64) * 3}


def _batches(strings, cuts, as_codes, label_sets, make):
    """The rows cut into batches; batch k passes its labels as strings, or as
    codes into label_sets[k] (a list holding every name the batch uses)."""
    out, start = [], 0
    for k, end in enumerate(list(cuts) + [len(strings)]):
        part = strings[start:end]
        ts = list(range(start, end))
        if as_codes[k]:
            names = label_sets[k]
            codes = np.array([names.index(s) for s in part], dtype=np.int64)
            out.append((make(ts, codes), {"event_type": names, "phase": names}))
        else:
            out.append((make(ts, np.array(part, dtype=object)), None))
        start = end
    return out


@st.composite
def _layout(draw):
    n = draw(st.integers(1, 60))
    strings = draw(st.lists(st.sampled_from(TYPES), min_size=n, max_size=n))
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=3))) if n > 1 else []
    nb = len(cuts) + 1
    as_codes = draw(st.lists(st.booleans(), min_size=nb, max_size=nb))
    label_sets = []
    for _ in range(nb):
        extra = draw(st.lists(st.sampled_from(["unused", "zz", "éé"]), unique=True, max_size=2))
        names = draw(st.permutations(TYPES + extra))
        label_sets.append(list(names))
    block = draw(st.sampled_from([1, 3, 7, 64, 4096]))
    return strings, cuts, as_codes, label_sets, block


@pytest.mark.parametrize("schema", ["event", "cycle"])
@given(layout=_layout())
def test_strings_and_codes_with_labels_write_the_same_bytes(schema, layout):
    strings, cuts, as_codes, label_sets, block = layout
    make, write, column = (_event_cols, _event_file, "event_type") if schema == "event" else \
        (_cycle_cols, _cycle_file, "phase")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        want = write(d / "strings.cmeta", _batches(strings, [], [False], [None], make), block)
        got = write(d / "codes.cmeta", _batches(strings, cuts, as_codes, label_sets, make), block)
        assert got == want
        with Chronicle.open(d / "codes.cmeta") as ch:
            assert ch.to_numpy()[column].tolist() == strings


@pytest.mark.parametrize("schema", ["event", "cycle"])
def test_unused_and_reordered_labels_leave_no_trace(tmp_path, schema):
    strings = ["chat", "move", "chat", "日本", "move", "chat"]
    make, write = (_event_cols, _event_file) if schema == "event" else (_cycle_cols, _cycle_file)
    ts = list(range(len(strings)))
    want = write(tmp_path / "s.cmeta", [(make(ts, np.array(strings, dtype=object)), None)], 4)
    for names in (["move", "chat", "日本"], ["日本", "never", "chat", "move", "also never"], ["chat", "move", "日本", "z"]):
        codes = np.array([names.index(s) for s in strings], dtype=np.uint16)
        got = write(tmp_path / "c.cmeta", [(make(ts, codes), {"event_type": names, "phase": names})], 4)
        assert got == want, names
    assert b"never" not in got and b"also never" not in got


def test_labels_given_twice_write_the_bytes_of_the_strings(tmp_path):
    strings = ["move", "move", "chat", "move"]
    ts = list(range(4))
    want = _event_file(tmp_path / "s.cmeta", [(_event_cols(ts, np.array(strings, dtype=object)), None)], 64)
    got = _event_file(tmp_path / "c.cmeta", [(_event_cols(ts, np.array([0, 2, 1, 0])),
                                              {"event_type": ["move", "chat", "move"]})], 64)
    with Chronicle.open(tmp_path / "c.cmeta") as ch:
        assert ch.to_numpy()["event_type"].tolist() == strings
    assert got == want


def test_append_and_extend_with_codes_write_the_same_event_log(tmp_path):
    rows = [(0, "chat", {"a": "é"}), (1, "move", {}), (2, "chat", {"b": ""}), (3, "日本", {"c": [1, "ü"]})]
    with Chronicle.open(tmp_path / "a.cmeta", "w", schema="event", block_records=3, salt=SALT) as ch:
        for t, kind, payload in rows:
            ch.append(timestamp=t, event_type=kind, payload=payload)
    names = ["move", "日本", "unused", "chat"]
    payload = np.empty(4, dtype=object)
    payload[:] = [p for _, _, p in rows]
    with Chronicle.open(tmp_path / "b.cmeta", "w", schema="event", block_records=3, salt=SALT) as ch:
        ch.extend({"timestamp": np.arange(4, dtype=np.uint64),
                   "event_type": np.array([names.index(k) for _, k, _ in rows]), "payload": payload},
                  labels={"event_type": names})
    assert (tmp_path / "a.cmeta").read_bytes() == (tmp_path / "b.cmeta").read_bytes()


# --- text columns ---------------------------------------------------------------------------------------

_U16, _U64 = struct.Struct("<H"), struct.Struct("<Q")


def _reference_text_block(name: str, values: list[str]) -> bytes:
    """A one-column block of KIND_TEXT built the plain way: per-item UTF-8,
    lengths in bytes, one zstd frame (docs/FORMAT.md)."""
    encoded = [s.encode("utf-8") for s in values]
    lengths = np.array([len(b) for b in encoded], dtype=np.uint32)
    blob = zstandard.ZstdCompressor(level=3).compress(b"".join(encoded))
    body = core.encode_columns([lengths])[0] + _U64.pack(len(blob)) + blob
    nb = name.encode()
    return _U16.pack(1) + bytes([len(nb)]) + nb + fmt.COLUMN_ENTRY.pack(fmt.KIND_TEXT, len(body)) + body


def _roundtrip(values) -> list[str]:
    payload = encode_block([("t", fmt.KIND_TEXT, values)])
    return payload, decode_block(payload, len(values), 1e-6, "test")["t"].tolist()


@pytest.mark.parametrize("values", [
    ["plain", "", "ascii only", ""],
    ["", "", ""],
    [],
    ["é", "", "日本語", "emoji 😀", "\u200b", "a\x00b", "ascii"],
    ["ascii", "ascii", "ü"],                     # non-ASCII only at the end
    ["\x7f", "\x80", "ÿ"],                       # around the ASCII edge
    ["x" * 70_000, "", "ß" * 40_000],
])
def test_text_columns_round_trip_and_match_the_plain_encoding(values):
    payload, back = _roundtrip(values)
    assert back == values
    assert payload == _reference_text_block("t", values)
    obj = np.empty(len(values), dtype=object)
    obj[:] = values
    assert encode_block([("t", fmt.KIND_TEXT, obj)]) == payload                   # an object array: the same
    assert encode_block([("t", fmt.KIND_TEXT, tuple(values))]) == payload


@given(st.lists(st.text(st.characters(codec="utf-8"), max_size=20), max_size=30))
def test_any_text_column_round_trips(values):
    payload, back = _roundtrip(values)
    assert back == values
    assert payload == _reference_text_block("t", values)


@given(st.lists(st.text(st.characters(codec="ascii"), max_size=20), max_size=30))
def test_ascii_text_columns_take_the_fast_path_to_the_same_bytes(values):
    payload, back = _roundtrip(values)
    assert back == values
    assert payload == _reference_text_block("t", values)


def test_text_with_a_lone_surrogate_is_refused():
    with pytest.raises(UnicodeEncodeError):
        encode_block([("t", fmt.KIND_TEXT, ["ok", "\ud800"])])


def test_payloads_with_non_ascii_and_empty_strings_round_trip(tmp_path):
    payloads = [{}, {"s": ""}, {"s": "é"}, {"日本": "語", "e": ["", "😀"]}, {"k": "a\x00b"}, {"": ""},
                {"n": 1.5, "t": "plain"}]
    n = len(payloads)
    arr = np.empty(n, dtype=object)
    arr[:] = payloads
    as_text = np.empty(n, dtype=object)
    as_text[:] = [json.dumps(p, ensure_ascii=False) for p in payloads]      # the same objects, given as JSON text
    for name, column in (("dicts", arr), ("texts", as_text)):
        with Chronicle.open(tmp_path / f"{name}.cmeta", "w", schema="event", block_records=3, salt=SALT) as ch:
            ch.extend({"timestamp": np.arange(n, dtype=np.uint64), "event_type": np.array(["é"] * n, dtype=object),
                       "payload": column})
        with Chronicle.open(tmp_path / f"{name}.cmeta") as ch:
            cols = ch.to_numpy()
            events = list(ch)
        assert [json.loads(p) for p in cols["payload"].tolist()] == payloads
        assert [e.payload for e in events] == payloads
        assert cols["event_type"].tolist() == ["é"] * n
    assert (tmp_path / "dicts.cmeta").read_bytes() == (tmp_path / "texts.cmeta").read_bytes()
