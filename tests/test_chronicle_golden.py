"""Golden files: every later version must read what format v1 wrote."""

from pathlib import Path

import numpy as np
import pytest

from chronoledger.chronicle import Chronicle, CycleRecord, EventRecord, normalise, verify

from _chronicle_util import cycle_fields

DATA = Path(__file__).resolve().parent / "data"


def test_golden_cycle_file_reads_as_written():
    path = DATA / "golden_v1_cycles.cmeta"
    assert verify(path).ok
    with Chronicle.open(path) as ch:
        assert ch.schema == "cycle" and ch.scale == 1e-6
        assert ch.config == {"lr": 0.01, "layers": [4, 2]} and ch.initial_seed == 2026
        assert ch.metadata["user"] == {"purpose": "golden file, format v1"}
        records = list(ch)
        cols = ch.to_numpy()
    assert len(records) == 300
    expected = [normalise(CycleRecord(**cycle_fields(i)), 1e-6) for i in range(300)]
    assert records == expected
    assert cols["timestamp"].tolist() == list(range(300))
    assert set(cols) >= {"metrics.lr", "metrics.grad_norm"}
    assert np.isnan(cols["metrics.grad_norm"][1]) and not np.isnan(cols["metrics.grad_norm"][3])


def test_golden_event_file_reads_as_written():
    path = DATA / "golden_v1_events.cmeta"
    assert verify(path).ok
    with Chronicle.open(path) as ch:
        events = list(ch)
    assert len(events) == 10
    assert events[4] == EventRecord(1_767_225_604_000, "turn", {"i": 4, "text": "event 4 ✓", "tags": ["a"]}, {})
    assert events[5].values == {"tokens": 15.0}


@pytest.mark.parametrize("name", ["golden_v1_cycles.cmeta", "golden_v1_events.cmeta"])
def test_golden_files_start_with_the_documented_magic(name):
    head = (DATA / name).read_bytes()[:6]
    assert int.from_bytes(head[:4], "little") == 0x0C0DA55E
    assert int.from_bytes(head[4:6], "little") == 1
