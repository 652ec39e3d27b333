"""CRC-64/XZ: published check values, every CPU path, every buffer kind."""

import mmap
import os
import threading

import crcmod
import fastcrc
import numpy as np
import pytest
from hypothesis import given, strategies as st

from chronoledger import core
from chronoledger.errors import UnsupportedError

from _reference import crc64_xz

PATHS = ["table", "pclmul", "vpclmul"]
# crcmod's initCrc is the register start XORed with xorOut: 0 for CRC-64/XZ.
crcmod_xz = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)


def path_or_skip(path):
    if path not in core.crc64_paths():
        pytest.skip(f"this CPU has no {path} instructions")
    return path


@pytest.mark.parametrize("path", PATHS + ["auto"])
def test_published_check_value(path):
    if path != "auto":
        path_or_skip(path)
    assert core.crc64_using(path, b"123456789") == 0x995DC9BBDF1939FA
    assert core.crc64_using(path, b"") == 0


def test_default_uses_best_path():
    assert core.crc64(b"123456789") == 0x995DC9BBDF1939FA
    assert core.crc64_impl() == core.crc64_paths()[-1]
    assert "table" in core.crc64_paths()


def test_independent_packages_agree_on_check_value():
    # guards the reference implementations themselves
    assert crc64_xz(b"123456789") == 0x995DC9BBDF1939FA
    assert crcmod_xz(b"123456789") == 0x995DC9BBDF1939FA
    assert fastcrc.crc64.xz(b"123456789") == 0x995DC9BBDF1939FA


@pytest.mark.parametrize("path", PATHS)
def test_every_length_and_alignment_against_crcmod(path):
    path_or_skip(path)
    rng = np.random.default_rng(7)
    blob = rng.integers(0, 256, 1200, dtype=np.uint8).tobytes()
    view = memoryview(blob)
    for length in range(0, 700):
        start = length % 67  # unaligned starts
        chunk = view[start:start + length]
        assert core.crc64_using(path, chunk) == crcmod_xz(bytes(chunk)), (length, start)


@pytest.mark.parametrize("path", PATHS)
def test_large_buffers_match_fastcrc(path):
    path_or_skip(path)
    rng = np.random.default_rng(11)
    for size in (4096 + 13, (1 << 20) + 7, (8 << 20) + 5):
        data = rng.integers(0, 256, size, dtype=np.uint8)
        assert core.crc64_using(path, data) == fastcrc.crc64.xz(data.tobytes())


@given(st.binary(max_size=300), st.integers(0, 2**64 - 1))
def test_matches_bitwise_reference_with_any_start(data, start):
    expected = crc64_xz(data, start)
    for path in core.crc64_paths():
        assert core.crc64_using(path, data, start) == expected


@given(st.binary(max_size=5000), st.data())
def test_incremental_equals_whole(data, draw):
    cut = draw.draw(st.integers(0, len(data)))
    for path in core.crc64_paths():
        first = core.crc64_using(path, data[:cut])
        assert core.crc64_using(path, data[cut:], first) == core.crc64(data)


def test_buffer_kinds_read_in_place():
    payload = bytes(range(256)) * 40
    expected = crcmod_xz(payload)
    assert core.crc64(payload) == expected
    assert core.crc64(bytearray(payload)) == expected
    assert core.crc64(memoryview(payload)) == expected
    assert core.crc64(np.frombuffer(payload, dtype=np.uint32)) == expected
    assert core.crc64(np.frombuffer(payload, dtype=np.uint8).reshape(40, 256)) == expected
    with mmap.mmap(-1, len(payload)) as mm:
        mm.write(payload)
        assert core.crc64(mm) == expected


def test_non_contiguous_input_hashes_its_c_order_bytes():
    arr = np.arange(4000, dtype=np.int32)
    strided = arr[::3]
    assert core.crc64(strided) == crcmod_xz(strided.tobytes())
    fortran = np.asfortranarray(np.arange(600, dtype=np.int16).reshape(20, 30))
    assert core.crc64(fortran) == crcmod_xz(fortran.tobytes())


def test_rejects_what_is_not_bytes():
    with pytest.raises(TypeError, match="str"):
        core.crc64("123456789")
    with pytest.raises(TypeError):
        core.crc64(12345)
    with pytest.raises(OverflowError):
        core.crc64(b"x", -1)
    with pytest.raises(ValueError, match="unknown path"):
        core.crc64_using("sse9", b"x")


def test_unsupported_path_raises_clearly():
    missing = [p for p in PATHS if p not in core.crc64_paths()]
    if not missing:
        pytest.skip("this CPU supports every path")
    with pytest.raises(UnsupportedError, match=missing[0]):
        core.crc64_using(missing[0], b"x")


def test_threads_compute_concurrently_and_correctly():
    rng = np.random.default_rng(3)
    blobs = [rng.integers(0, 256, (1 << 20) + i, dtype=np.uint8) for i in range(4)]
    expected = [fastcrc.crc64.xz(b.tobytes()) for b in blobs]
    results = [None] * 4

    def work(i):
        for _ in range(5):
            results[i] = core.crc64(blobs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected


def test_crc64_file(tmp_path):
    p = tmp_path / "f.bin"
    data = os.urandom(100_003)
    p.write_bytes(data)
    assert core.crc64_file(p) == crcmod_xz(data)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert core.crc64_file(empty) == 0


def test_constants_in_the_c_source_match_their_generator():
    """native/cl_crc64.c carries tables pasted from tools/crc64_constants.py."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    script, source = root / "tools" / "crc64_constants.py", root / "native" / "cl_crc64.c"
    if not (script.exists() and source.exists()):
        pytest.skip("not running from a source tree")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout
    text = source.read_text()
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    assert len(lines) > 1000
    assert [ln for ln in lines if ln not in text] == []
