"""Damage: bit flips, torn tails, killed writers, random files, recovery modes."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import given, settings, strategies as st

from chronoledger.chronicle import Chronicle, ChronicleReader, recover, verify
from chronoledger.chronicle import format as fmt
from chronoledger.errors import ChecksumError, ChronoledgerError, CorruptDataError, TruncatedError

from _chronicle_util import write_cycles
from conftest import SLOW


@pytest.fixture
def small(tmp_path):
    p = tmp_path / "small.cmeta"
    write_cycles(p, 40, block_records=16)
    return p


def test_every_single_bit_flip_is_detected(small, tmp_path):
    data = small.read_bytes()
    bad = tmp_path / "bad.cmeta"
    for pos in range(len(data)):
        for bit in range(8):
            mutated = bytearray(data)
            mutated[pos] ^= 1 << bit
            bad.write_bytes(bytes(mutated))
            report = verify(bad)
            assert not report.ok, f"flip of bit {bit} at offset {pos} went unnoticed"


def test_truncation_anywhere_in_the_last_block_is_a_torn_tail(small, tmp_path):
    data = small.read_bytes()
    with ChronicleReader(small) as r:
        blocks = r.blocks
        header = r.header
    last = blocks[-1]
    kept = sum(b.records for b in blocks[:-1])
    cut_file = tmp_path / "cut.cmeta"
    for cut in range(last.offset + 1, last.end):
        cut_file.write_bytes(data[:cut])
        with ChronicleReader(cut_file) as r:               # tolerated by default
            assert len(r) == kept
            assert r.layout.torn_tail is not None and not r.layout.corrupt
        with pytest.raises(TruncatedError, match="torn tail"):
            ChronicleReader(cut_file, "strict")
        report = recover(cut_file)
        assert report.changed and report.records_kept == kept
        assert report.bytes_dropped == cut - last.offset
        assert verify(cut_file).ok
        assert cut_file.stat().st_size == last.offset + len(fmt.pack_footer(kept, 0, blocks[:-1], 0, header))


def test_corruption_in_the_middle_is_not_a_torn_tail(tmp_path):
    p = tmp_path / "mid.cmeta"
    write_cycles(p, 100, block_records=20)
    with ChronicleReader(p) as r:
        victim = r.blocks[2]
    data = bytearray(p.read_bytes())
    data[victim.payload_offset + 5] ^= 0xFF
    p.write_bytes(bytes(data))
    with ChronicleReader(p) as r:                  # the index is intact: the damage shows on reading
        assert len(r.query(0, 40)["timestamp"]) == 40
        with pytest.raises(ChecksumError, match="corruption, not a torn tail") as info:
            r.to_numpy()
        assert info.value.offset == victim.offset
    with pytest.raises(CorruptDataError, match="valid blocks after it"):
        ChronicleReader(p, "strict")
    with pytest.raises(CorruptDataError):
        recover(p)                                         # tolerate refuses
    with pytest.raises(CorruptDataError):
        recover(p, "strict")
    with ChronicleReader(p, "skip") as r:
        assert len(r) == 80 and len(r.damage) == 1
    report = recover(p, "skip")
    assert report.records_kept == 80 and report.records_dropped == 20
    assert verify(p).ok
    with Chronicle.open(p) as ch:
        ts = ch.to_numpy()["timestamp"].tolist()
    assert ts == list(range(40)) + list(range(60, 100))


def test_unclosed_file_gets_its_footer_back(small, tmp_path):
    with ChronicleReader(small) as r:
        footer = r.layout.footer
    p = tmp_path / "open.cmeta"
    p.write_bytes(small.read_bytes()[:footer.offset])     # as if the writer never closed
    report = recover(p)
    assert report.changed and report.records_dropped == 0
    assert verify(p).ok
    assert recover(p).changed is False


def test_append_after_a_torn_tail_drops_it_with_a_warning(small, tmp_path):
    p = tmp_path / "torn.cmeta"
    data = small.read_bytes()
    with ChronicleReader(small) as r:
        last = r.blocks[-1]
        kept = sum(b.records for b in r.blocks[:-1])
    p.write_bytes(data[:last.end - 3])
    with pytest.warns(UserWarning, match="torn tail"):
        ch = Chronicle.open(p, "a")
    ch.append(timestamp=10**6, phase="train", loss_value=1.0, coherence=0.5)
    ch.close()
    with Chronicle.open(p) as r:
        assert len(r) == kept + 1
    assert verify(p).ok


WRITER = textwrap.dedent("""
    import sys
    from chronoledger.chronicle import Chronicle
    path = sys.argv[1]
    with Chronicle.open(path, "w", block_records=50) as ch:
        i = 0
        while True:
            ch.append(timestamp=i, phase="train", loss_value=i * 0.5, coherence=0.25, seed_state=i)
            i += 1
            if i % 50 == 0:
                ch.flush()                 # the block of 50 is written when flush returns
                print(i, flush=True)
""")


def test_a_writer_killed_with_sigkill_loses_no_flushed_record(tmp_path):
    p = tmp_path / "killed.cmeta"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(p)], stdout=subprocess.PIPE, text=True)
    flushed = 0
    deadline = time.time() + 60
    while flushed < 3000 and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        flushed = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert flushed >= 3000, "the writer did not get going"
    with ChronicleReader(p) as r:                      # a reader copes with the unclosed file
        assert len(r) >= flushed
    report = recover(p)
    assert report.records_kept >= flushed
    with Chronicle.open(p) as ch:
        ts = ch.to_numpy()["timestamp"]
    assert ts.tolist()[:flushed] == list(range(flushed))
    assert verify(p).ok


def test_a_second_writer_in_another_process_is_refused(tmp_path):
    p = tmp_path / "locked.cmeta"
    with Chronicle.open(p, "w"):
        out = subprocess.run([sys.executable, "-c", (
            "import sys\nfrom chronoledger.chronicle import Chronicle\n"
            "try:\n    Chronicle.open(sys.argv[1], 'a')\nexcept Exception as e:\n    print(type(e).__name__, e)\n"),
            str(p)], capture_output=True, text=True)
    assert "WriterLockedError" in out.stdout and "another writer" in out.stdout


def _read_everything(path):
    try:
        with ChronicleReader(path) as r:
            r.to_numpy()
            list(r.records())
    except ChronoledgerError:
        pass
    try:
        verify(path)
    except ChronoledgerError:
        pass


@settings(max_examples=300 if SLOW else 60)
@given(st.binary(max_size=600))
def test_random_files_never_crash_the_reader(tmp_path_factory, blob):
    p = tmp_path_factory.mktemp("fuzz") / "f.cmeta"
    p.write_bytes(blob)
    _read_everything(p)
    p.write_bytes(fmt.pack_header(1, 1e-6, {}, version=1) + blob)        # a valid header, garbage after
    _read_everything(p)
    p.write_bytes(fmt.pack_header(1, None, {}, salt=7) + blob)             # the same in format 2
    _read_everything(p)


@settings(max_examples=3000 if SLOW else 150)
@given(st.data())
def test_mutated_files_never_crash_the_reader(tmp_path_factory, data):
    base = tmp_path_factory.getbasetemp() / "mutation-base.cmeta"
    if not base.exists():
        write_cycles(base, 60, block_records=16)
    blob = bytearray(base.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    p = tmp_path_factory.mktemp("mut") / "m.cmeta"
    p.write_bytes(bytes(blob))
    _read_everything(p)


def _ten_blocks(path, block_records=100):
    write_cycles(path, 10 * block_records, block_records=block_records)
    with ChronicleReader(path) as r:
        assert len(r.blocks) == 10
        return r.blocks, r.layout.footer


def test_skip_recovery_counts_a_block_whose_header_is_damaged(tmp_path):
    p = tmp_path / "hdr.cmeta"
    blocks, _ = _ten_blocks(p)
    data = bytearray(p.read_bytes())
    data[blocks[4].offset + 20] ^= 1                  # the record count field: the header CRC fails
    p.write_bytes(bytes(data))
    report = verify(p)
    assert not report.ok and "(100 records)" in report.text()     # the footer's index counts it
    report = recover(p, "skip")
    assert report.records_kept == 900 and report.records_dropped == 100
    assert "may have been lost" not in report.message
    assert verify(p).ok
    with Chronicle.open(p) as ch:
        ts = ch.to_numpy()["timestamp"].tolist()
    assert ts == list(range(400)) + list(range(500, 1000))


def test_skip_recovery_without_a_footer_says_the_count_may_be_short(tmp_path):
    p = tmp_path / "open.cmeta"
    blocks, footer = _ten_blocks(p)
    data = bytearray(p.read_bytes()[:footer.offset])  # never closed: no index to count a lost block
    data[blocks[4].offset + 20] ^= 1
    p.write_bytes(bytes(data))
    report = recover(p, "skip")
    assert report.records_kept == 900 and report.records_dropped == 0
    assert "no readable block header" in report.message and "more records may have been lost" in report.message


def test_skip_recovery_streams_instead_of_building_the_file_in_memory(tmp_path):
    import tracemalloc

    import numpy as np

    p = tmp_path / "big.cmeta"
    n = 400_000                                      # random seeds: 8 incompressible bytes a record
    with Chronicle.open(p, "w", block_records=20_000) as ch:
        ch.extend({"timestamp": np.arange(n, dtype=np.uint64), "phase": np.zeros(n, np.int64),
                   "loss_value": np.zeros(n), "coherence": np.zeros(n), "tensor_signature": np.zeros((n, 3)),
                   "seed_state": np.random.default_rng(1).integers(0, 2**63, n, dtype=np.uint64)},
                  labels={"phase": ["train"]})
    with ChronicleReader(p) as r:
        victim = r.blocks[7]
    data = bytearray(p.read_bytes())
    data[victim.payload_offset + 100] ^= 1
    p.write_bytes(bytes(data))
    size = len(data)
    assert size > 3_000_000
    tracemalloc.start()
    try:
        report = recover(p, "skip")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.records_kept == n - 20_000 and report.records_dropped == 20_000
    assert peak < size // 4, f"recover --mode skip held {peak:,} bytes for a {size:,}-byte file"
    assert verify(p).ok
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def _flip_each_part_of_the_footer(footer, size):
    """Offsets in the footer block: its header, its index, the trailer's magic, offset and CRC."""
    return [footer.offset + 2, footer.offset + 20, footer.payload_offset + 30, size - 30, size - 20, size - 3]


def test_a_bit_flip_in_the_footer_is_footer_damage_with_the_blocks_intact(tmp_path):
    p = tmp_path / "closed.cmeta"
    _ten_blocks(p)
    clean = p.read_bytes()
    with ChronicleReader(p) as r:
        footer = r.layout.footer
        everything = r.to_numpy()["timestamp"].tolist()
    bad = tmp_path / "bad.cmeta"
    for at in _flip_each_part_of_the_footer(footer, len(clean)):
        data = bytearray(clean)
        data[at] ^= 0x10
        bad.write_bytes(bytes(data))
        report = verify(bad)
        assert not report.ok, at
        assert [d["kind"] for d in report.damage] == ["footer"], (at, report.text())
        text = report.text()
        assert "the footer (block index) at offset" in text and "10 data blocks before it are intact" in text
        assert "torn" not in text and "not closed cleanly" not in text, text
        with ChronicleReader(bad) as r:                              # readers keep working on the blocks
            assert r.layout.damaged_footer is not None and r.layout.torn_tail is None
            assert r.to_numpy()["timestamp"].tolist() == everything
        with ChronicleReader(bad, "skip") as r:
            assert len(r) == 1000
        with pytest.raises(CorruptDataError, match="footer .* is damaged"):
            ChronicleReader(bad, "strict")
        report = recover(bad)
        assert report.changed and report.records_dropped == 0 and "damaged footer" in report.message
        assert bad.read_bytes() == clean, at                         # the same footer, written again
        assert verify(bad).ok


def test_append_after_a_damaged_footer_replaces_it(tmp_path):
    p = tmp_path / "app.cmeta"
    _ten_blocks(p)
    data = bytearray(p.read_bytes())
    data[len(data) - 30] ^= 1
    p.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="damaged footer"):
        ch = Chronicle.open(p, "a")
    ch.append(timestamp=5000, phase="train", loss_value=1.0, coherence=0.5)
    ch.close()
    report = verify(p)
    assert report.ok, report.text()                  # no damaged block left in the middle of the file
    with Chronicle.open(p) as r:
        assert len(r) == 1001
