"""Format 2 of the chronicle: each float stored as its precision says (no
silent loss, NaN and infinity exact), every block tied to its file, its
schema and its place, and the run's amendments (config versions, tags,
notes, rewinds) kept in the file."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from chronoledger.chronicle import Chronicle, ChronicleReader, recover, verify
from chronoledger.chronicle import format as fmt
from chronoledger.chronicle.precision import Precision
from chronoledger.errors import ConfigError, CorruptDataError, OrderError, ValidationError

from _chronicle_util import cycle_fields, write_cycles


def bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


# --- 1. small values are never lost --------------------------------------------------------------

def test_small_learning_rates_come_back_as_they_were_logged(tmp_path):
    """The issue's case: loss 4e-7, lr 1e-8 / 3e-7 / 2.5e-6 read back as 0, 0, 0, 2e-06 before."""
    p = tmp_path / "lr.cmeta"
    with Chronicle.open(p, "w") as ch:
        ch.append(timestamp=0, phase="train", loss_value=4e-7, coherence=0.5,
                  metrics={"lr": 1e-8, "lr2": 3e-7, "lr3": 2.5e-6, "big": 1e7})
    (rec,) = list(Chronicle.open(p))
    assert rec.loss_value == float(np.float32(4e-7)) != 0.0             # the float32 the spec's field holds
    assert rec.metrics == {"lr": 1e-8, "lr2": 3e-7, "lr3": 2.5e-6, "big": 1e7}   # float64, exactly


def test_fixed_point_rounds_as_asked_and_refuses_only_what_overflows(tmp_path):
    p = tmp_path / "fixed.cmeta"
    with Chronicle.open(p, "w", precision=1e-6) as ch:
        ch.append(timestamp=0, phase="train", loss_value=0.25, coherence=0.5, metrics={"lr": 2.4e-6})
        ch.append(timestamp=1, phase="train", loss_value=4e-7, coherence=0.5, metrics={"lr": 1e-8})   # the choice
        with pytest.raises(ValidationError, match=r"loss_value = 1e\+40 is too large for fixed point at scale 1e-06"):
            ch.append(timestamp=2, phase="train", loss_value=1e40, coherence=0.5)
        with pytest.raises(ValidationError, match=r"metric 'lr' = 1e\+20 is too large for fixed point"):
            ch.append(timestamp=2, phase="train", loss_value=0.5, coherence=0.5, metrics={"lr": 1e20})
    with Chronicle.open(p) as ch:
        recs = list(ch)
        assert [r.timestamp for r in recs] == [0, 1] and ch.precision.field("loss_value") == 1e-6
    assert recs[0].metrics == {"lr": 2e-6} and recs[1].loss_value == 0.0 and recs[1].metrics == {"lr": 0.0}


def test_precision_per_field_and_per_metric(tmp_path):
    p = tmp_path / "mixed.cmeta"
    spec = {"loss_value": 1e-6, "tensor_signature": 1e-4, "metrics": 1e-3, "metrics.lr": "exact"}
    with Chronicle.open(p, "w", precision=spec) as ch:
        ch.append(timestamp=0, phase="train", loss_value=0.1234567, coherence=1e-30,
                  tensor_signature=(0.12345, -1.0, 2.0), metrics={"lr": 1e-8, "acc": 0.98765})
    with Chronicle.open(p) as ch:
        (r,) = list(ch)
        assert ch.precision == Precision.parse(spec, "cycle")
        assert ch.metadata["precision"]["metrics.lr"] == "exact"
    assert r.loss_value == float(np.float32(0.123457))                 # fixed at 1e-6, read as float32
    assert r.coherence == float(np.float32(1e-30))                     # exact float32: not the 0 of fixed point
    assert r.tensor_signature[0] == float(np.float32(0.1234)) or r.tensor_signature[0] == float(np.float32(0.1235))
    assert r.metrics == {"lr": 1e-8, "acc": 0.988}
    with pytest.raises(ConfigError, match="precision is fixed when a chronicle is created"):
        Chronicle.open(p, "a", precision=None if False else 1e-6)
    with pytest.raises(ConfigError, match=r"precision: 'nonsense' is not a float field"):
        Chronicle.open(tmp_path / "bad.cmeta", "w", precision={"nonsense": 1e-6})
    with pytest.raises(ConfigError, match=r"expected 'exact' or a scale > 0"):
        Chronicle.open(tmp_path / "bad.cmeta", "w", precision={"loss_value": -1})


# --- 2. NaN and infinity are stored exactly --------------------------------------------------------

@pytest.mark.parametrize("precision", [None, 1e-6], ids=["exact", "fixed"])
def test_nan_and_infinities_come_back_bit_for_bit(tmp_path, precision):
    odd_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0]
    p = tmp_path / "nan.cmeta"
    with Chronicle.open(p, "w", precision=precision, block_records=4) as ch:
        ch.append(timestamp=0, phase="train", loss_value=float("nan"), coherence=float("inf"),
                  tensor_signature=(float("-inf"), -0.0, 1.0), metrics={"grad": odd_nan, "lr": float("inf")})
        ch.append(timestamp=1, phase="train", loss_value=0.5, coherence=0.5, metrics={"grad": 1.0})
        ch.extend({"timestamp": np.arange(2, 8, dtype=np.uint64), "phase": np.zeros(6, np.int64),
                   "loss_value": np.array([np.nan, 1, 2, np.inf, -np.inf, 3.0]), "coherence": np.ones(6),
                   "tensor_signature": np.zeros((6, 3)), "seed_state": np.zeros(6, np.uint64),
                   "metrics.grad": np.ma.masked_array([np.nan, 1, 2, 3, 4, 5], mask=[0, 1, 0, 0, 0, 0])},
                  labels={"phase": ["train"]})
    with Chronicle.open(p) as ch:
        recs = list(ch)
        cols = ch.to_numpy()
    assert math.isnan(recs[0].loss_value) and recs[0].coherence == math.inf
    assert recs[0].tensor_signature[0] == -math.inf and math.copysign(1, recs[0].tensor_signature[1]) == -1
    assert bits(recs[0].metrics["grad"]) == bits(odd_nan) and recs[0].metrics["lr"] == math.inf
    assert "lr" not in recs[1].metrics                          # absent is absent ...
    assert math.isnan(recs[2].metrics["grad"])                  # ... and a stored NaN is a value
    assert "grad" not in recs[3].metrics                        # masked in the batch: absent
    assert [math.isnan(x) or x for x in cols["loss_value"][2:].tolist()] == [True, 1, 2, math.inf, -math.inf, 3]
    assert verify(p).ok


# --- format 1 stays readable and appendable -------------------------------------------------------

def test_a_format_1_file_is_read_and_appended_in_format_1(tmp_path):
    p = tmp_path / "v1.cmeta"
    head = fmt.pack_header(fmt.SCHEMA_CYCLE, 1e-6, {"created_by": "an earlier chronoledger", "schema": "cycle"},
                           version=1)
    p.write_bytes(head)
    with Chronicle.open(p, "a", block_records=4) as ch:
        assert ch._writer.header.version == 1 and ch.scale == 1e-6
        for i in range(6):
            ch.append(**cycle_fields(i))
        with pytest.raises(ValidationError, match="format 1 .* no NaN or infinity"):
            ch.append(timestamp=9, phase="train", loss_value=float("nan"), coherence=0.5)
        with pytest.raises(ConfigError, match="format 1, which keeps no amendments"):
            ch.tag("x")
    with Chronicle.open(p) as ch:
        assert len(ch) == 6 and ch.reader().header.version == 1
    assert verify(p).ok


# --- 6. blocks are tied to their file, schema and place -------------------------------------------

def _blocks(path):
    with ChronicleReader(path) as r:
        return list(r.blocks), r.header


def test_a_block_of_an_event_log_spliced_into_a_cycle_chronicle_is_named(tmp_path):
    cyc, ev = tmp_path / "c.cmeta", tmp_path / "e.cmeta"
    write_cycles(cyc, 40, block_records=10)
    with Chronicle.open(ev, "w", schema="event", block_records=10) as ch:
        for i in range(40):
            ch.append(timestamp=i, event_type="x", payload={"i": i})
    cblocks, _ = _blocks(cyc)
    eblocks, _ = _blocks(ev)
    data = bytearray(cyc.read_bytes())
    foreign = ev.read_bytes()[eblocks[1].offset:eblocks[1].end]
    victim = cblocks[1]
    spliced = bytes(data[:victim.offset]) + foreign + bytes(data[victim.end:])
    cyc.write_bytes(spliced)
    report = verify(cyc)
    assert not report.ok and any("a block of another chronicle" in c.detail for c in report.checks)
    with pytest.raises(CorruptDataError, match="a block of another chronicle"):
        list(Chronicle.open(cyc))
    before = cyc.read_bytes()
    with pytest.raises(CorruptDataError):
        recover(cyc)                                # tolerate refuses corruption in the middle ...
    assert cyc.read_bytes() == before              # ... and leaves the file as it was
    rep = recover(cyc, mode="skip")
    assert rep.changed and rep.records_kept == 30
    with Chronicle.open(cyc) as ch:
        assert [r.timestamp for r in ch] == [*range(10), *range(20, 40)]    # no KeyError, no foreign rows


def test_swapped_blocks_are_out_of_place_and_skip_recovery_puts_them_back(tmp_path):
    p = tmp_path / "s.cmeta"
    write_cycles(p, 40, block_records=10)
    blocks, _ = _blocks(p)
    data = p.read_bytes()
    a, b = blocks[1], blocks[2]
    swapped = data[:a.offset] + data[b.offset:b.end] + data[a.offset:a.end] + data[b.end:]
    p.write_bytes(swapped)
    with pytest.raises(CorruptDataError, match=r"block #1 where #3 belongs|out of|swapped"):
        list(Chronicle.open(p, recovery="strict"))
    with pytest.raises(CorruptDataError):
        list(Chronicle.open(p))
    rep = recover(p, mode="skip")
    assert rep.changed and rep.records_kept == 40
    with Chronicle.open(p) as ch:
        assert [r.timestamp for r in ch] == list(range(40))
    assert verify(p).ok


def test_a_duplicated_block_is_not_served_twice(tmp_path):
    p = tmp_path / "d.cmeta"
    write_cycles(p, 30, block_records=10)
    blocks, _ = _blocks(p)
    data = p.read_bytes()
    b = blocks[1]
    p.write_bytes(data[:b.end] + data[b.offset:b.end] + data[b.end:])
    assert not verify(p).ok
    rep = recover(p, mode="skip")
    with Chronicle.open(p) as ch:
        assert [r.timestamp for r in ch] == list(range(30)) and rep.records_kept == 30


# --- amendments: config versions, tags, notes, rewind ---------------------------------------------

def test_config_versions_tags_and_notes_are_kept_in_the_file(tmp_path):
    p = tmp_path / "a.cmeta"
    with Chronicle.open(p, "w", config={"lr": 0.1}) as ch:
        ch.append(**cycle_fields(0))
        assert ch.set_config({"lr": 0.05}, reason="plateau") == 1
        ch.tag("baseline", "resnet")
        ch.note("lowered the learning rate")
        ch.append(**cycle_fields(1))
        ch.tag(remove=["resnet"])
        assert ch.config == {"lr": 0.05}
    with Chronicle.open(p) as ch:
        assert ch.config == {"lr": 0.05}
        assert [(v["version"], v["config"], v["reason"]) for v in ch.config_history] == \
            [(0, {"lr": 0.1}, None), (1, {"lr": 0.05}, "plateau")]
        assert ch.tags == ["baseline"] and [n["text"] for n in ch.notes] == ["lowered the learning rate"]
        assert [e["op"] for e in ch.history] == ["config", "tags", "note", "tags"]
        assert len(ch) == 2
    with Chronicle.open(p, "a") as ch:               # a writer reopening the file sees them too
        assert ch.config == {"lr": 0.05} and ch.tags == ["baseline"]
        ch.note("resumed")
    with Chronicle.open(p) as ch:
        assert [n["text"] for n in ch.notes] == ["lowered the learning rate", "resumed"]
    assert verify(p).ok


@pytest.mark.parametrize("schema", ["cycle", "event"])
def test_rewind_drops_the_newer_records_for_every_reader(tmp_path, schema):
    p = tmp_path / "r.cmeta"

    def add(ch, ts):
        if schema == "cycle":
            ch.append(**cycle_fields(ts))
        else:
            ch.append(timestamp=ts, event_type="e", payload={"t": ts})

    with Chronicle.open(p, "w", schema=schema, block_records=8) as ch:
        for t in range(30):
            add(ch, t)
        assert ch.rewind(12) == 17                  # 13..29 dropped, 12 kept
        with pytest.raises(OrderError):
            add(ch, 11)
        for t in range(13, 20):                     # the resumed run logs its steps again
            add(ch, t)
    with Chronicle.open(p) as ch:
        assert [r.timestamp for r in ch] == list(range(20))
        assert len(ch) == 20 and ch.to_numpy()["timestamp"].tolist() == list(range(20))
        assert [r.timestamp for r in ch.query(10, 15)] == [10, 11, 12, 13, 14]
        rewinds = [e for e in ch.history if e["op"] == "rewind"]
        assert rewinds[0]["to"] == 12 and rewinds[0]["dropped"] == 17
    assert verify(p).ok
    # without its footer (a writer died), a reader finds the same by walking the blocks
    data = p.read_bytes()
    with ChronicleReader(p) as r:
        footer = r.layout.footer
    p.write_bytes(data[:footer.offset])
    with Chronicle.open(p) as ch:
        assert [r.timestamp for r in ch] == list(range(20))
    rep = recover(p)
    assert rep.changed and rep.records_kept == 20 and verify(p).ok
    with Chronicle.open(p, "a", schema=schema) as ch:   # and a writer appends after it
        add(ch, 20)
    with Chronicle.open(p) as ch:
        assert [r.timestamp for r in ch] == list(range(21))


def test_salvaging_keeps_a_rewind(tmp_path):
    p = tmp_path / "rw.cmeta"
    with Chronicle.open(p, "w", block_records=5) as ch:
        for t in range(20):
            ch.append(**cycle_fields(t))
        ch.rewind(7)
        for t in range(8, 12):
            ch.append(**cycle_fields(t))
    blocks, _ = _blocks(p)
    data = bytearray(p.read_bytes())
    data[blocks[0].payload_offset + 3] ^= 0xFF         # damage the first block
    p.write_bytes(bytes(data))
    rep = recover(p, mode="skip")
    assert rep.records_kept == 7                        # 5..11: block 0 lost, the rewind still applies
    with Chronicle.open(p) as ch:
        assert [r.timestamp for r in ch] == list(range(5, 12))


def test_the_same_salt_gives_the_same_bytes(tmp_path):
    for name in ("a", "b"):
        with Chronicle.open(tmp_path / f"{name}.cmeta", "w", salt=42) as ch:
            for i in range(20):
                ch.append(**cycle_fields(i))
    assert (tmp_path / "a.cmeta").read_bytes() == (tmp_path / "b.cmeta").read_bytes()
    with pytest.raises(ValueError, match="salt must be a u64"):
        Chronicle.open(tmp_path / "c.cmeta", "w", salt=-1)


# --- reading: categorical phase, absent vs NaN in Arrow, ranges inside a block ---------------------

def _mixed(tmp_path):
    p = tmp_path / "m.cmeta"
    with Chronicle.open(p, "w", block_records=64) as ch:
        for i in range(200):
            ch.append(timestamp=i, phase=("train", "validate", "dream")[i % 3], loss_value=i / 10, coherence=0.5,
                      metrics={"lr": 1e-3} if i % 2 else ({"lr": float("nan")} if i % 5 == 0 else {}))
    return p


def test_phase_can_come_as_codes_and_labels(tmp_path):
    from chronoledger.chronicle.columns import Labels

    p = _mixed(tmp_path)
    with Chronicle.open(p) as ch:
        plain = ch.to_numpy()
        cat = ch.to_numpy(categorical=True)
        df = ch.to_pandas()
    assert isinstance(cat["phase"], Labels) and cat["phase"].codes.dtype == np.uint32
    assert cat["phase"].strings().tolist() == plain["phase"].tolist()
    assert str(df["phase"].dtype) == "category" and df["phase"].tolist() == plain["phase"].tolist()


def test_arrow_keeps_an_absent_metric_apart_from_a_stored_nan(tmp_path):
    p = _mixed(tmp_path)
    with Chronicle.open(p) as ch:
        table = ch.to_arrow()
    lr = table.column("metrics.lr").to_pylist()
    assert lr[1] == 1e-3 and lr[2] is None and math.isnan(lr[0]) and math.isnan(lr[10])
    assert table.column("phase").type.value_type == __import__("pyarrow").string()
    assert table.column("phase").to_pylist()[:3] == ["train", "validate", "dream"]


def test_a_range_inside_blocks_gives_exactly_its_records(tmp_path):
    p = _mixed(tmp_path)
    with Chronicle.open(p) as ch:
        every = list(ch)
        for lo, hi in [(0, 1), (5, 60), (63, 65), (64, 128), (100, 199), (150, 400), (199, 200)]:
            got = ch.query(lo, hi)
            assert list(map(repr, got)) == [repr(r) for r in every if lo <= r.timestamp < hi], (lo, hi)   # NaN-aware
            cols = ch.query_columns(lo, hi)
            assert cols["timestamp"].tolist() == [r.timestamp for r in got]
            assert cols["phase"].tolist() == [r.phase for r in got]
