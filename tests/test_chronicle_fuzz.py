"""Hostile and misplaced bytes: a structured fuzzer of the chronicle readers.

Small valid chronicles (cycle records with metrics and phases, exact floats
and fixed point at 1e-6, an event log, a file never closed, a format-1 file)
are mapped into their structures as docs/FORMAT.md lays them out: the file
header and its metadata JSON, block headers, column directories, dictionary
and float prefixes, encoded-column headers and streams, text blobs, meta
blocks, footers and their trailers.  One structure is mutated (a field set
to an edge value, a length or count changed, bytes flipped, inserted or
removed, JSON replaced by something hostile), every CRC-64 is then computed
again over the mutated bytes as the format says (so the decoders see the bad
data, not a checksum failure), and every reading path runs over the result.
Only :class:`~chronoledger.errors.ChronoledgerError` may come out; anything
else fails the test with the seed and the mutation that made it.

Then come the cases it found, one test each, built the same way.

The default run takes a few seconds; ``CHRONOLEDGER_SLOW=1`` runs many more
cases (the ``slow`` profile of tests/conftest.py for the Hypothesis test;
``CHRONOLEDGER_FUZZ_SEED`` moves the seeded loop to other seeds).  A failure
names its seed: ``mutate(base, seed)`` makes the same bytes again.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import struct
import traceback
import tracemalloc
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import given, strategies as st

from chronoledger import core
from chronoledger.chronicle import Chronicle, ChronicleReader, audit, recover, replay, verify
from chronoledger.chronicle import format as fmt
from chronoledger.chronicle.columns import read_directory
from chronoledger.chronicle.precision import Precision
from chronoledger.chronicle.reader import MODES
from chronoledger.chronicle.stats import column_stats
from chronoledger.errors import ChronoledgerError, ConfigError, CorruptDataError

from _chronicle_util import cycle_fields
from conftest import SLOW

U64 = 2**64 - 1


# --- the structure map ----------------------------------------------------------------------------

@dataclass
class Target:
    """One thing the fuzzer may mutate: a fixed-width field, a varint, or a
    byte region.  ``owners`` are the u32/u64 length fields of the structures
    around it, kept consistent when a mutation changes its size."""

    label: str
    kind: str                       # "u8", "u16", "u32", "u64", "f64", "varint", "bytes", "json"
    start: int
    end: int
    owners: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Base:
    name: str
    data: bytes
    version: int
    schema: str
    targets: list[Target]
    blocks: list[int]               # every block's offset, in file order
    offset_fields: list[int]        # u64 fields holding block offsets (footer index, meta list, trailer)
    timestamps: tuple[int, int]


_WIDTH = {"u8": (1, "<B"), "u16": (2, "<H"), "u32": (4, "<I"), "u64": (8, "<Q"), "f64": (8, "<d")}


def _varint(buf: bytes, p: int) -> tuple[int, int]:
    """(value, end) of the LEB128 varint at ``p`` of a valid file."""
    value = shift = 0
    while True:
        b = buf[p]
        value |= (b & 0x7F) << shift
        p += 1
        shift += 7
        if not b & 0x80:
            return value, p


def _encoded_column(buf: bytes, start: int, label: str, owners: list[tuple[int, str]]) -> tuple[list[Target], int]:
    """The header fields and streams of the encoded integer column at ``start`` (docs/FORMAT.md)."""
    t: list[Target] = []
    for i, name in enumerate(("version", "mode", "dtype", "order")):
        t.append(Target(f"{label} column {name}", "u8", start + i, start + i + 1, owners))
    mode, order = buf[start + 1], buf[start + 3]
    n, p = _varint(buf, start + 4)
    t.append(Target(f"{label} column n", "varint", start + 4, p, owners))
    if mode == 1:                                   # BLOCKS: start values, bias
        for j in range(min(order, n)):
            t.append(Target(f"{label} column start value {j}", "u64", p, p + 8, owners))
            p += 8
        t.append(Target(f"{label} column bias", "u64", p, p + 8, owners))
        p += 8
    elif mode == 2:                                 # RLE: runs
        _, q = _varint(buf, p)
        t.append(Target(f"{label} column runs", "varint", p, q, owners))
        p = q
    elif mode == 3:                                 # SPARSE: default, exceptions
        t.append(Target(f"{label} column default", "u64", p, p + 8, owners))
        _, q = _varint(buf, p + 8)
        t.append(Target(f"{label} column exceptions", "varint", p + 8, q, owners))
        p = q
    streams = buf[p]
    t.append(Target(f"{label} column stream count", "u8", p, p + 1, owners))
    p += 1
    stored: list[int] = []
    for s in range(streams):
        t.append(Target(f"{label} stream {s} codec", "u8", p, p + 1, owners))
        _, q = _varint(buf, p + 1)
        t.append(Target(f"{label} stream {s} raw length", "varint", p + 1, q, owners))
        size, r = _varint(buf, q)
        t.append(Target(f"{label} stream {s} stored length", "varint", q, r, owners))
        stored.append(size)
        p = r
    for s, size in enumerate(stored):
        if size:
            t.append(Target(f"{label} stream {s} bytes", "bytes", p, p + size, owners))
        p += size
    assert p == start + core.column_size(buf[start:]), label      # the map agrees with the codec
    return t, p


def _data_payload(buf: bytes, po: int, end: int, label: str, block_owner: tuple[int, str]) -> list[Target]:
    payload = buf[po:end]
    t = [Target(f"{label} column count", "u16", po, po + 2, [block_owner]),
         Target(f"{label} column directory", "bytes", po, po + 2, [block_owner])]
    p = 2
    entries = []
    for name, kind, start, stop in read_directory(payload, label):
        n = payload[p]
        t.append(Target(f"{label} column {name!r} name length", "u8", po + p, po + p + 1, [block_owner]))
        t.append(Target(f"{label} column {name!r} name", "bytes", po + p + 1, po + p + 1 + n, [block_owner]))
        t.append(Target(f"{label} column {name!r} kind", "u8", po + p + 1 + n, po + p + 2 + n, [block_owner]))
        length_at = po + p + 2 + n
        t.append(Target(f"{label} column {name!r} length", "u64", length_at, length_at + 8, [block_owner]))
        entries.append((name, kind, po + start, po + stop, (length_at, "<Q")))
        p += 1 + n + fmt.COLUMN_ENTRY.size
    t[1].end = po + p                                # the whole directory, as one region too
    for name, kind, start, stop, length_owner in entries:
        owners = [length_owner, block_owner]
        where = f"{label} column {name!r}"
        t.append(Target(f"{where} bytes", "bytes", start, stop, owners))
        if kind == fmt.KIND_TEXT:
            t.append(Target(f"{where} texts", "texts", start, stop, owners))
        q = start
        if kind == fmt.KIND_STR:
            (count,) = struct.unpack_from("<I", buf, q)
            t.append(Target(f"{where} dictionary count", "u32", q, q + 4, owners))
            q += 4
            for j in range(count):
                (ln,) = struct.unpack_from("<H", buf, q)
                t.append(Target(f"{where} dictionary entry {j} length", "u16", q, q + 2, owners))
                if ln:
                    t.append(Target(f"{where} dictionary entry {j}", "bytes", q + 2, q + 2 + ln, owners))
                q += 2 + ln
        elif kind == fmt.KIND_FLOAT:
            flags = buf[q]
            t += [Target(f"{where} float flags", "u8", q, q + 1, owners),
                  Target(f"{where} float width", "u8", q + 1, q + 2, owners),
                  Target(f"{where} float exceptions", "u32", q + 2, q + 6, owners)]
            q += 6
            if flags & fmt.FLOAT_FIXED:
                t.append(Target(f"{where} float scale", "f64", q, q + 8, owners))
                q += 8
        parts = 0
        while q < stop:
            sub, q = _encoded_column(buf, q, f"{where} part {parts}", owners)
            t += sub
            parts += 1
            if kind == fmt.KIND_TEXT:
                t.append(Target(f"{where} text blob length", "u64", q, q + 8, owners))
                t.append(Target(f"{where} text blob", "bytes", q + 8, stop, owners))
                break
        assert kind == fmt.KIND_TEXT or q == stop, where
    return t


def map_file(name: str, data: bytes, schema: str) -> Base:
    version = struct.unpack_from("<H", data, 4)[0]
    fixed = fmt.HEADER.size if version == 1 else fmt.HEADER2.size
    meta_at = 24 if version == 1 else 32
    (m,) = struct.unpack_from("<I", data, meta_at)
    header_owners = [(8, "<I"), (meta_at, "<I")]
    t = [Target("file header magic", "u32", 0, 4), Target("file header version", "u16", 4, 6),
         Target("file header flags", "u16", 6, 8), Target("file header length", "u32", 8, 12),
         Target("file header schema", "u32", 12, 16),
         Target("file header scale" if version == 1 else "file header reserved f64", "f64", 16, 24),
         Target("file header metadata length", "u32", meta_at, meta_at + 4),
         Target("file header metadata", "json", fixed, fixed + m, header_owners)]
    if version == 2:
        t.append(Target("file header salt", "u64", 24, 32))
    hsize = fmt.BLOCK_HEADER_SIZES[version]
    blocks: list[int] = []
    offset_fields: list[int] = []
    ts: list[int] = []
    pos = fixed + m + 8
    while pos < len(data):
        bh = fmt.parse_block_header(data, pos, version)
        assert bh is not None, pos
        k = len(blocks)
        kind = {fmt.BLOCK_DATA: "data", fmt.BLOCK_FOOTER: "footer", fmt.BLOCK_META: "meta"}[bh.kind]
        label = f"block #{k} ({kind}) at offset {pos}:"
        blocks.append(pos)
        names = ["magic", "type", "flags", "schema", "payload length", "records", "first timestamp",
                 "last timestamp"] if version == 2 else \
            ["magic", "type", "reserved", "reserved u16", "payload length", "records", "first timestamp",
             "last timestamp"]
        sizes = ["u32", "u8", "u8", "u16", "u64", "u64", "u64", "u64"]
        at = pos
        for fname, fsize in zip(names, sizes):
            w = _WIDTH[fsize][0]
            t.append(Target(f"{label} header {fname}", fsize, at, at + w))
            at += w
        if version == 2:
            t += [Target(f"{label} header salt", "u64", pos + 48, pos + 56),
                  Target(f"{label} header sequence", "u32", pos + 56, pos + 60),
                  Target(f"{label} header reserved", "u32", pos + 60, pos + 64)]
        owner = (pos + 8, "<Q")
        po, end = bh.payload_offset, bh.end
        t.append(Target(f"{label} payload", "bytes", po, end, [owner]))
        if bh.kind == fmt.BLOCK_DATA:
            t += _data_payload(data, po, end, label, owner)
            ts += [bh.first_ts, bh.last_ts]
        elif bh.kind == fmt.BLOCK_META:
            t.append(Target(f"{label} meta JSON", "json", po, end, [owner]))
        else:
            (count,) = struct.unpack_from("<Q", data, po + 16)
            t += [Target(f"{label} footer total", "u64", po, po + 8),
                  Target(f"{label} footer payload CRC", "u64", po + 8, po + 16),
                  Target(f"{label} footer index count", "u64", po + 16, po + 24)]
            q = po + 24
            for j in range(count):
                for fname in ("offset", "records", "first timestamp", "last timestamp"):
                    t.append(Target(f"{label} footer index {j} {fname}", "u64", q, q + 8))
                    if fname == "offset":
                        offset_fields.append(q)
                    q += 8
            t.append(Target(f"{label} footer index", "bytes", po + 24, q, [owner]))
            if version == 2:
                (metas,) = struct.unpack_from("<Q", data, q)
                t.append(Target(f"{label} footer meta count", "u64", q, q + 8))
                for j in range(metas):
                    t.append(Target(f"{label} footer meta offset {j}", "u64", q + 8 + 8 * j, q + 16 + 8 * j))
                    offset_fields.append(q + 8 + 8 * j)
            trailer = end - fmt.TRAILER_SIZE
            t += [Target(f"{label} trailer magic", "u64", trailer, trailer + 8),
                  Target(f"{label} trailer footer offset", "u64", trailer + 8, trailer + 16),
                  Target(f"{label} trailer reserved", "u64", trailer + 16, trailer + 24)]
            offset_fields.append(trailer + 8)
        pos = end
    return Base(name, data, version, schema, t, blocks, offset_fields, (min(ts, default=0), max(ts, default=0)))


def fix_crcs(buf: bytearray, version: int, blocks: list[int], footer_payload_crc: bool = True) -> None:
    """Compute every CRC-64 of the file again, as docs/FORMAT.md says, over
    the (mutated) bytes: the header's, each block's payload and header
    CRC, a footer's payload CRC (bytes H..the footer; unless told not to)
    and its trailer's."""
    fixed, meta_at = (fmt.HEADER.size, 24) if version == 1 else (fmt.HEADER2.size, 32)
    hsize = fmt.BLOCK_HEADER_SIZES[version]
    hcrc = hsize - 8
    n = len(buf)
    if n >= fixed:
        (m,) = struct.unpack_from("<I", buf, meta_at)
        if fixed + m + 8 <= n:
            struct.pack_into("<Q", buf, fixed + m, core.crc64(bytes(buf[:fixed + m])))
    h = min(n, fixed + (struct.unpack_from("<I", buf, meta_at)[0] if n >= fixed else 0) + 8)
    for off in blocks:
        if off < 0 or off + hsize > n:
            continue
        (length,) = struct.unpack_from("<Q", buf, off + 8)
        po = off + hsize
        if po + length <= n:
            if buf[off + 4] == fmt.BLOCK_FOOTER and length >= fmt.FOOTER_FIXED.size + fmt.TRAILER_SIZE:
                if footer_payload_crc:
                    struct.pack_into("<Q", buf, po + 8, core.crc64(bytes(buf[min(h, off):off])))
                tr = po + length - fmt.TRAILER_SIZE
                struct.pack_into("<Q", buf, tr + 24, core.crc64(bytes(buf[tr:tr + 24])))
            struct.pack_into("<Q", buf, off + 40, core.crc64(bytes(buf[po:po + length])))
        struct.pack_into("<Q", buf, off + hcrc, core.crc64(bytes(buf[off:off + hcrc])))


# --- mutations -------------------------------------------------------------------------------------

def _edges(kind: str, orig: int | float, size: int) -> list:
    if kind == "f64":
        return [0.0, -0.0, -1.0, float("nan"), float("inf"), float("-inf"), 5e-324, 1e-300, 1e300,
                1.7976931348623157e308, orig * 2, -orig]
    bits = 8 * (size if kind != "varint" else 10)
    top = (1 << min(bits, 64)) - 1
    vals = [0, 1, 2, 3, 7, 8, 61, 62, 63, 64, 65, 127, 128, 255, 256, 0x7FFF, 0xFFFF, 0x10000, 2**24, 2**24 + 1,
            2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40, 2**53 + 1, 2**63 - 1, 2**63, U64]
    vals += [orig + 1, orig - 1, orig * 2, orig + 1000, top]
    return [v & top for v in vals if v >= 0]


def _encode_varint(v: int, overlong: int = 0) -> bytes:
    """LEB128 of ``v``; ``overlong`` more bytes than it needs (a form readers accept)."""
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        if not v:
            out.append(b)
            break
        out.append(b | 0x80)
    if overlong:
        out[-1] |= 0x80
        out += b"\x80" * (overlong - 1) + b"\x00"
    return bytes(out)


def _deep(depth: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * depth + close * depth).encode()


def hostile_json(rng: random.Random, is_header: bool) -> bytes:
    """A JSON document (or not quite one) chosen to break whoever trusts it."""
    nested = json.dumps({"a": 1})
    for _ in range(70):
        nested = '{"a":' + nested + "}"
    plain = [
        _deep(100_000), _deep(fmt.JSON_MAX_DEPTH), _deep(fmt.JSON_MAX_DEPTH + 1), _deep(3000, "{\"a\":", "}"),
        nested.encode(), b'{"a":"' + b"[" * 5000 + b'"}', b'{"a":"\\"' + b"[" * 200 + b'"}',
        b"[]", b"1", b'"x"', b"null", b"", b"{", b'{"a":1}x', b'{"a":"\xff\xfe"}', b"\xef\xbb\xbf{}",
        b'{"a":1e999}', b'{"a":' + b"9" * 5000 + b"}", b'{"a":NaN,"b":-Infinity}', b'{"a":"\\ud800"}',
        b'{"op":5}', b'{"op":null}', b"{}",
    ]
    if is_header:
        ops = [{"precision": v} for v in (5, "x", [], -1, 0, 1e-320, True, {"loss_value": -1}, {"bogus": 1},
                                          {"loss_value": float("inf")}, {"metrics.": 1e-6}, {"loss_value": [1]},
                                          {"metrics": "exact", "metrics.lr": 1e300}, None)]
        ops += [{"schema": 5}] + [{"initial_seed": v} for v in ("x", 2**70, -1, 1.5, [], None)]
        ops += [{"config": v} for v in (5, [], "x", None)] + [{"user": v} for v in (5, [1], None)]
        base = {"created_by": "fuzz", "schema": "cycle", "precision": {"loss_value": "exact"}}
        docs = [json.dumps({**base, **o}).encode() for o in ops]
    else:
        entries = [{"op": "rewind", "to": v} for v in (2**70, -1, True, 1.5, "5", 0, U64, None, 2**64)]
        entries += [{"op": "rewind", "to": 3, "dropped": v} for v in (-5, "x", 2**80)]
        entries += [{"op": "tags", "add": v} for v in (5, "abc", [1, [2]], [None], {"a": 1}, None)]
        entries += [{"op": "tags", "remove": v} for v in (5, "abc", [[1]], None)]
        entries += [{"op": "config", "config": v, "version": w} for v in (5, [], None) for w in ("x", None, 2**70)]
        entries += [{"op": "note", "text": v} for v in (5, [], None, "x" * 10)]
        entries += [{"op": v} for v in ("unknown", "", "rewind", "tags", "config", "note")]
        entries += [{"op": "note", "at": v} for v in (5, None, [])]
        docs = [json.dumps(e).encode() for e in entries]
    return rng.choice(plain + docs * 2)


def _hostile_texts(rng: random.Random, column: bytes) -> tuple[bytes, str]:
    """A text column (an event log's payloads) whose lengths and zstd frame
    agree, one text of it replaced by something hostile."""
    size = core.column_size(column)
    lengths = core.decode_column(column[:size]).astype(np.int64)
    texts = zstandard.ZstdDecompressor().decompress(column[size + 8:], max_output_size=int(lengths.sum()) + 1)
    ends = np.cumsum(lengths).tolist()
    items = [texts[a:b] for a, b in zip([0] + ends[:-1], ends)]
    i = rng.randrange(len(items))
    items[i] = rng.choice([_deep(100_000), _deep(5000, '{"a":', "}"), b"[1,2]", b"null", b"{", b'"x"', b"\xff\xfe",
                           b'{"a":' + b"9" * 5000 + b"}", b'{"a":1e999}', b"", b'{"a":"\\ud800"}', b"{}" * 3])
    lengths = np.array([len(x) for x in items], dtype=np.uint32)
    frame = zstandard.ZstdCompressor(level=1).compress(b"".join(items))
    new = core.encode_column(lengths) + struct.pack("<Q", len(frame)) + frame
    return new, f"text {i} replaced by {items[i][:40]!r} ({len(items[i])} bytes)"


@dataclass
class Case:
    seed: int
    base: str
    target: str
    offset: int
    what: str
    data: bytes
    crcs: bool

    def describe(self) -> str:
        return (f"seed {self.seed}, base {self.base!r}, structure {self.target!r} at offset {self.offset}: "
                f"{self.what}" + ("" if self.crcs else " (CRCs left stale)"))


def _splice(buf: bytearray, base: Base, target: Target, start: int, end: int, new: bytes,
            blocks: list[int]) -> list[int]:
    """Replace buf[start:end] by ``new``, keep the lengths around it (its
    owners), and the block offsets after it (footer index, meta list,
    trailer), consistent; returns the blocks' new offsets."""
    delta = len(new) - (end - start)
    buf[start:end] = new
    if delta == 0:
        return blocks
    for at, code in target.owners:
        at2 = at if at < start else at + delta
        (v,) = struct.unpack_from(code, buf, at2)
        top = (1 << (8 * struct.calcsize(code))) - 1
        struct.pack_into(code, buf, at2, (v + delta) & top)
    for at in base.offset_fields:
        at2 = at if at < start else at + delta
        if at2 + 8 <= len(buf):
            (v,) = struct.unpack_from("<Q", buf, at2)
            if v >= end:
                struct.pack_into("<Q", buf, at2, (v + delta) & U64)
    return [b if b < end else b + delta for b in blocks]


def mutate(base: Base, seed: int) -> Case:
    rng = random.Random(seed)
    buf = bytearray(base.data)
    target = rng.choice(base.targets)
    blocks = list(base.blocks)
    crcs = rng.random() > 0.08
    s, e = target.start, target.end
    if target.kind in _WIDTH:
        size, code = _WIDTH[target.kind]
        (orig,) = struct.unpack_from(code, buf, s)
        if rng.random() < 0.8:
            v = rng.choice(_edges(target.kind, orig, size))
        elif target.kind == "f64":
            v = struct.unpack("<d", rng.randbytes(8))[0]
        else:
            v = rng.getrandbits(8 * size)
        struct.pack_into(code, buf, s, v)
        what = f"{target.kind} {orig!r} -> {v!r}"
    elif target.kind == "varint":
        orig, _ = _varint(base.data, s)
        how = rng.random()
        if how < 0.1:
            new = b"\x80" * rng.randint(1, 12)                          # unterminated / too long
            what = f"varint {orig} -> {new.hex()}"
        elif how < 0.2:
            new = _encode_varint(orig, rng.randint(1, 9))               # over-long but equal
            what = f"varint {orig} -> over-long {new.hex()}"
        else:
            v = rng.choice(_edges("varint", orig, 10))
            new = _encode_varint(v)
            what = f"varint {orig} -> {v}"
        blocks = _splice(buf, base, target, s, e, new, blocks)
    elif target.kind == "texts":
        new, what = _hostile_texts(rng, base.data[s:e])
        blocks = _splice(buf, base, target, s, e, new, blocks)
    else:
        how = rng.choice(("flip", "set", "zero", "ones", "cut", "grow", "dup", "json") if target.kind == "json"
                         else ("flip", "set", "zero", "ones", "cut", "grow", "dup"))
        if target.kind == "json" and rng.random() < 0.6:
            how = "json"
        if e == s and how in ("flip", "set", "zero", "ones", "cut", "dup"):
            how = "grow"
        if how == "flip":
            k = rng.randint(1, 4)
            spots = [rng.randrange(s, e) for _ in range(k)]
            for at in spots:
                buf[at] ^= 1 << rng.randrange(8)
            what = f"bit flips at {spots}"
        elif how == "set":
            at = rng.randrange(s, e)
            buf[at] = rng.randrange(256)
            what = f"byte at {at} set to {buf[at]}"
        elif how in ("zero", "ones"):
            a = rng.randrange(s, e)
            b = rng.randint(a + 1, e)
            buf[a:b] = (b"\0" if how == "zero" else b"\xff") * (b - a)
            what = f"bytes {a}..{b} set to {'0x00' if how == 'zero' else '0xff'}"
        elif how == "cut":
            a = rng.randrange(s, e)
            b = rng.randint(a + 1, e)
            blocks = _splice(buf, base, target, a, b, b"", blocks)
            what = f"bytes {a}..{b} removed"
        elif how == "grow":
            a = rng.randint(s, e)
            new = rng.randbytes(rng.choice((1, 2, 7, 8, 64, 1000)))
            blocks = _splice(buf, base, target, a, a, new, blocks)
            what = f"{len(new)} random bytes inserted at {a}"
        elif how == "dup":
            blocks = _splice(buf, base, target, e, e, bytes(buf[s:e]), blocks)
            what = "its bytes repeated"
        else:
            new = hostile_json(rng, target.label.startswith("file header"))
            blocks = _splice(buf, base, target, s, e, new, blocks)
            what = f"JSON replaced by {new[:60]!r}{'...' if len(new) > 60 else ''} ({len(new)} bytes)"
    if rng.random() < 0.05:                         # and sometimes the file is cut short as well
        cut = rng.randrange(len(buf))
        del buf[cut:]
        what += f"; file cut at {cut}"
    if crcs:
        fix_crcs(buf, base.version, blocks)
    return Case(seed, base.name, target.label, s, what, bytes(buf), crcs)


# --- reading everything ------------------------------------------------------------------------------

def _step_factory(config, seed):
    def step(timestamp, phase, seed_state):
        return {"loss_value": 0.5, "coherence": 0.5, "tensor_signature": (0.0, 0.0, 0.0), "action_code": None,
                "metrics": {}}
    return step


def _reads(ch: Chronicle, lo: int, hi: int):
    """Every reading method of an open chronicle."""
    yield "len", lambda: len(ch)
    for prop in ("schema", "precision", "metadata", "history", "config", "config_history", "tags", "notes",
                 "initial_seed", "last_timestamp"):
        yield prop, lambda prop=prop: getattr(ch, prop)
    yield "iterate", lambda: list(ch)
    yield "to_numpy", ch.to_numpy
    yield "to_numpy(categorical=True)", lambda: ch.to_numpy(categorical=True)
    yield "stats", lambda: column_stats(ch.to_numpy())
    yield "columns", lambda: ch.reader().columns()
    yield "column_names", lambda: ch.reader().column_names()
    mid = (lo + hi) // 2
    for a, b in ((lo, hi + 1), (mid, mid + 1), (lo + 1, mid), (0, U64)):
        yield f"query_range({a}, {b})", lambda a=a, b=b: ch.query_range(a, b)
        yield f"query_columns({a}, {b})", lambda a=a, b=b: ch.query_columns(a, b)
    yield "query_columns(some)", lambda: ch.query_columns(lo, hi + 1, ["timestamp", "phase", "metrics.lr", "nope"])


class Escape(Exception):
    pass


def exercise(path: Path, case: Case, scratch: Path, base: Base) -> None:
    """Run every reading path over ``path``; raise Escape naming the case and
    the call when anything but a ChronoledgerError comes out, when a call
    that only reads (or a refused recovery) changed the file, or when a
    recovery that succeeded left a file that does not verify."""
    original = path.read_bytes()
    lo, hi = base.timestamps

    def attempt(what: str, fn) -> object:
        try:
            return fn()
        except ChronoledgerError:
            return None
        except Exception as exc:     # noqa: BLE001 - the point: anything else is a finding
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-16:])
            raise Escape(f"{case.describe()}\n  {what} raised {type(exc).__name__}: {exc!s:.300}\n{tb}") from None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode in MODES:
            ch = attempt(f"Chronicle.open(mode={mode!r})", lambda mode=mode: Chronicle.open(path, recovery=mode))
            if ch is None:
                continue
            try:
                for name, fn in _reads(ch, lo, hi):
                    attempt(f"[{mode}] {name}", fn)
            finally:
                ch.close()
        attempt("verify", lambda: verify(path))
        attempt("audit", lambda: audit(path))
        attempt("audit(step_factory)", lambda: audit(path, _step_factory))
        if path.read_bytes() != original:
            raise Escape(f"{case.describe()}\n  reading changed the file")
        refused = {}
        for mode in MODES:
            copy = scratch / f"recover-{mode}.cmeta"
            shutil.copyfile(path, copy)

            def run(mode=mode, copy=copy):
                try:
                    recover(copy, mode)
                except ChronoledgerError:
                    refused[mode] = True
                    raise

            attempt(f"recover(mode={mode!r})", run)
            if refused.get(mode) and copy.read_bytes() != original:
                raise Escape(f"{case.describe()}\n  recover(mode={mode!r}) refused the file but changed it")
            if not refused.get(mode) and not verify(copy).ok:
                raise Escape(f"{case.describe()}\n  recover(mode={mode!r}) left a file that does not verify:\n"
                             f"{verify(copy).text()}")
        copy = scratch / "append.cmeta"
        shutil.copyfile(path, copy)
        writer_refused = []

        def reopen():
            try:
                Chronicle.open(copy, "a", schema=base.schema, durability="none").close()
            except ChronoledgerError:
                writer_refused.append(True)
                raise

        attempt("Chronicle.open(mode='a')", reopen)
        if writer_refused and copy.read_bytes() != original:
            raise Escape(f"{case.describe()}\n  a writer refused the file but changed it")
        if refused.get("tolerate") and original and not writer_refused:
            # recover refuses what it cannot mend without losing records (a damaged middle block):
            # a writer must not append after it either
            raise Escape(f"{case.describe()}\n  recover (tolerate) refused the file, a writer appended to it")


# --- the base files ----------------------------------------------------------------------------------

def _cycle(path: Path, precision, closed: bool = True) -> None:
    with Chronicle.open(path, "w", block_records=16, precision=precision, salt=7, config={"lr": 0.1}) as ch:
        for i in range(20):
            ch.append(**cycle_fields(i))
        ch.note("a note")
        ch.tag("x", "y")
        for i in range(20, 40):
            f = cycle_fields(i)
            if i == 25:
                f.update(loss_value=float("nan"), coherence=float("inf"), tensor_signature=(-0.0, 1.0, 2.0),
                         metrics={"lr": float("-inf"), "odd": 1e-9})
            ch.append(**f)
        ch.set_config({"lr": 0.05}, reason="plateau")
    if precision is not None:                      # a second session: a rewind, more blocks, a second footer
        with Chronicle.open(path, "a") as ch:
            ch.rewind(30)
            for i in range(31, 50):
                ch.append(**cycle_fields(i))
    if not closed:
        with ChronicleReader(path) as r:
            end = r.layout.footer.offset
        path.write_bytes(path.read_bytes()[:end])


def _events(path: Path) -> None:
    with Chronicle.open(path, "w", schema="event", block_records=16, salt=9) as ch:
        for i in range(40):
            ch.append(timestamp=i * 3, event_type=("start", "step", "stop")[i % 3],
                      payload={"i": i, "nested": {"a": [1, 2, {"b": "é"}]}}, values={"v": i / 7} if i % 2 else None)
        ch.tag("events")


def _format1(path: Path) -> None:
    head = fmt.pack_header(fmt.SCHEMA_CYCLE, 1e-6, {"created_by": "an earlier chronoledger", "schema": "cycle"},
                           version=1)
    path.write_bytes(head)
    with Chronicle.open(path, "a", block_records=16) as ch:
        for i in range(40):
            ch.append(**cycle_fields(i))


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> list[Base]:
    folder = tmp_path_factory.mktemp("fuzz-bases")
    makers = [("cycle-exact", "cycle", lambda p: _cycle(p, None)),
              ("cycle-fixed-1e-6", "cycle", lambda p: _cycle(p, 1e-6)),
              ("cycle-unclosed", "cycle", lambda p: _cycle(p, None, closed=False)),
              ("event-log", "event", _events),
              ("format-1", "cycle", _format1)]
    out = []
    for name, schema, make in makers:
        p = folder / f"{name}.cmeta"
        make(p)
        assert verify(p).ok or name == "cycle-unclosed"
        out.append(map_file(name, p.read_bytes(), schema))
    return out


def test_the_map_and_the_crcs_agree_with_the_files(bases):
    for base in bases:
        buf = bytearray(base.data)
        fix_crcs(buf, base.version, base.blocks)
        assert bytes(buf) == base.data, base.name            # recomputing the CRCs of a valid file changes nothing
        assert len(base.targets) > 100, base.name


def _run(bases: list[Base], seeds, tmp: Path) -> list[str]:
    failures: list[str] = []
    path = tmp / "case.cmeta"
    for seed in seeds:
        base = bases[seed % len(bases)]
        case = mutate(base, seed)
        path.write_bytes(case.data)
        try:
            exercise(path, case, tmp, base)
        except Escape as exc:
            failures.append(str(exc))
            if len(failures) >= 5:
                break
    return failures


DEFAULT_CASES = 250
SLOW_CASES = 4_000


def test_mutated_structures_raise_only_chronoledger_errors(bases, tmp_path):
    failures = _run(bases, range(DEFAULT_CASES), tmp_path)
    assert not failures, "\n\n".join(failures)


@pytest.mark.skipif(not SLOW, reason="long fuzzing: set CHRONOLEDGER_SLOW=1")
def test_long_fuzz_of_mutated_structures(bases, tmp_path):
    seed0 = int(os.environ.get("CHRONOLEDGER_FUZZ_SEED", "1000000"))
    failures = _run(bases, range(seed0, seed0 + SLOW_CASES), tmp_path)
    assert not failures, "\n\n".join(failures)


@given(st.integers(0, 2**40))
def test_hypothesis_drawn_mutations_raise_only_chronoledger_errors(bases, tmp_path_factory, seed):
    tmp = tmp_path_factory.mktemp("hyp")
    failures = _run(bases, [seed], tmp)
    assert not failures, failures[0]


# --- what the fuzzer found: one test each ---------------------------------------------------------------

def _base(bases: list[Base], name: str) -> Base:
    return next(b for b in bases if b.name == name)


def _target(base: Base, *words: str) -> Target:
    """The first structure whose label holds every one of ``words`` and ends with the last."""
    return next(t for t in base.targets if all(w in t.label for w in words) and t.label.endswith(words[-1]))


def _hostile(tmp_path: Path, base: Base, edits: list[tuple[Target, object]], crcs: bool = True,
             footer_payload_crc: bool = True) -> Path:
    """``base`` with each target set to a value (a number for a field, bytes
    for a region: spliced, lengths around it kept consistent), CRCs computed
    again; the fields' offsets are those of the base file, so a splice goes last."""
    buf = bytearray(base.data)
    blocks = list(base.blocks)
    for target, value in edits:
        if isinstance(value, bytes):
            blocks = _splice(buf, base, target, target.start, target.end, value, blocks)
        else:
            struct.pack_into(_WIDTH[target.kind][1], buf, target.start, value)
    if crcs:
        fix_crcs(buf, base.version, blocks, footer_payload_crc)
    path = tmp_path / f"hostile-{base.name}.cmeta"
    path.write_bytes(bytes(buf))
    return path


def _unclosed(path: Path) -> Path:
    """``path`` without its last footer (as a writer that died leaves it): readers walk the blocks."""
    data = path.read_bytes()
    (footer_at,) = struct.unpack_from("<Q", data, len(data) - fmt.TRAILER_SIZE + 8)
    path.write_bytes(data[:footer_at])
    return path


def test_a_block_claiming_2_40_records_is_refused_before_anything_is_sized_by_it(bases, tmp_path):
    base = _base(bases, "cycle-exact")
    first = base.blocks[0]
    (total,) = struct.unpack_from("<Q", base.data, _target(base, "footer total").start)
    # the block header, the footer's index entry and its total all agree, so the footer is believed
    p = _hostile(tmp_path, base, [(_target(base, f"at offset {first}:", "header records"), 2**40),
                                  (_target(base, "footer index 0 records"), 2**40),
                                  (_target(base, "footer total"), total - 16 + 2**40)])
    with pytest.raises(CorruptDataError, match=rf"{p.name}: corrupt data at offset {first}\.\.\d+ \(no valid block "
                                               rf"header: the block header claims 1,099,511,627,776 records, more "
                                               rf"than the 16,777,216 a block holds\)"):
        Chronicle.open(p)
    with Chronicle.open(p, recovery="skip") as ch:              # the other blocks are read
        assert len(ch) == 24 and ch.to_numpy()["timestamp"].tolist() == list(range(16, 40))
    assert not verify(p).ok


def test_the_sum_over_blocks_is_checked_against_their_columns_before_allocating(bases, tmp_path):
    base = _base(bases, "cycle-exact")
    first = base.blocks[0]
    p = _unclosed(_hostile(tmp_path, base, [(_target(base, f"at offset {first}:", "header records"), 2**24)]))
    tracemalloc.start()
    try:
        with Chronicle.open(p) as ch:                          # a torn file: the block headers are believed
            assert len(ch) == 2**24 + 24
            with pytest.raises(CorruptDataError, match=rf"{p.name}: block 0 at offset {first}: its header says "
                                                       rf"16,777,216 records, its timestamp column holds 16"):
                ch.to_numpy()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20, f"{peak:,} bytes allocated for a file of {p.stat().st_size:,}"


def test_a_rewind_to_a_timestamp_past_u64_is_corrupt_not_an_overflow(bases, tmp_path):
    base = _base(bases, "cycle-exact")
    meta = _target(base, "(meta)", "meta JSON")
    p = _unclosed(_hostile(tmp_path, base, [(meta, json.dumps({"op": "rewind", "to": 2**64, "dropped": 0}).encode())]))
    match = rf"{p.name}: meta block at offset {meta.start - 72} \(rewind\): its timestamp 'to' 18446744073709551616 " \
            rf"is not a u64"
    with pytest.raises(CorruptDataError, match=match):
        Chronicle.open(p)
    with pytest.raises(CorruptDataError, match=match):
        Chronicle.open(p, "a")


@pytest.mark.parametrize("entry, why", [
    ({"op": "tags", "add": 5}, "its 'add' is not a list of tags"),
    ({"op": "tags", "remove": ["a", 1]}, "its 'remove' is not a list of tags"),
    ({"op": "note", "text": ["x"]}, "its 'text' is not text"),
    ({"op": "config", "version": "2", "config": {}}, "its version '2' is not a number"),
    ({"op": "rewind", "to": True}, "its timestamp 'to' True is not a u64"),
    ({"op": "note", "text": "x", "at": 5}, "its time 5 is not text"),
], ids=["tags-add", "tags-remove", "note", "config", "rewind-bool", "at"])
def test_an_amendment_whose_fields_are_of_the_wrong_kind_is_corrupt(bases, tmp_path, entry, why):
    base = _base(bases, "cycle-exact")
    meta = _target(base, "(meta)", "meta JSON")
    p = _hostile(tmp_path, base, [(meta, json.dumps(entry).encode())])
    with pytest.raises(CorruptDataError, match=rf"{p.name}: meta block at offset {meta.start - 72} "
                                               rf"\({entry['op']}\): {re.escape(why)}"):
        with Chronicle.open(p) as ch:
            ch.tags, ch.notes, ch.config_history


def test_a_block_without_its_timestamp_column_is_named(bases, tmp_path):
    base = _base(bases, "event-log")
    name = _target(base, "block #0", "column 'timestamp' name")
    p = _hostile(tmp_path, base, [(name, b"timestamq")])
    with Chronicle.open(p) as ch:
        for query in (lambda: ch.query_columns(0, 60), lambda: ch.query(0, 60), ch.to_numpy, lambda: list(ch)):
            with pytest.raises(CorruptDataError, match=rf"{p.name}: block 0 at offset {base.blocks[0]}:? (lacks|its "
                                                       rf"timestamp column)"):
                query()


def test_a_block_a_rewind_cuts_without_its_timestamp_column_is_named(bases, tmp_path):
    base = _base(bases, "cycle-fixed-1e-6")
    p = _hostile(tmp_path, base, [(_target(base, "block #4 (data)", "column 'timestamp' name"), b"timestamq")])
    match = rf"{p.name}: block at offset {base.blocks[4]} lacks the column 'timestamp' of its schema"
    for call in (lambda: Chronicle.open(p, recovery="strict"), lambda: recover(p), lambda: Chronicle.open(p, "a")):
        with pytest.raises(CorruptDataError, match=match):        # reading the rewind decodes its timestamps
            call()



def _payload_texts(events, block):
    """An event log block's payload text column: its target, its bytes, and the size of its lengths part."""
    texts = _target(events, block, "column 'payload' texts")
    column = events.data[texts.start:texts.end]
    return texts, column, core.column_size(column)

def test_json_nested_too_deep_is_corrupt_in_the_header_a_meta_block_and_an_event_payload(bases, tmp_path):
    deep = b"[" * 100_000 + b"]" * 100_000
    base = _base(bases, "cycle-exact")
    p = _hostile(tmp_path, base, [(_target(base, "file header metadata"), b'{"a":' + deep + b"}")])
    with pytest.raises(CorruptDataError, match=rf"{p.name}: header metadata at offset 40 nests 100,?001 levels deep"):
        Chronicle.open(p)
    meta = _target(base, "(meta)", "meta JSON")
    p = _hostile(tmp_path, base, [(meta, deep)])
    with pytest.raises(CorruptDataError, match=rf"{p.name}: meta block at offset {meta.start - 72} nests"):
        Chronicle.open(p)
    events = _base(bases, "event-log")
    texts, column, size = _payload_texts(events, "block #1")
    lengths = core.decode_column(column[:size])
    frame = zstandard.ZstdCompressor().compress(b"[" * 50_000 + b"]" * 50_000)
    lengths[0], lengths[1:] = 100_000, 0
    p = _hostile(tmp_path, events, [(texts, core.encode_column(lengths) + struct.pack("<Q", len(frame)) + frame)])
    with Chronicle.open(p) as ch:
        with pytest.raises(CorruptDataError, match=rf"{p.name}: block 1 at offset {events.blocks[1]}: a record "
                                                   rf"cannot be read"):
            list(ch)


def test_an_event_payload_that_is_not_a_json_object_is_corrupt(bases, tmp_path):
    events = _base(bases, "event-log")
    texts, column, size = _payload_texts(events, "block #0")
    lengths = core.decode_column(column[:size])
    frame = zstandard.ZstdCompressor().compress(b"[1,2]")
    lengths[0], lengths[1:] = 5, 0
    p = _hostile(tmp_path, events, [(texts, core.encode_column(lengths) + struct.pack("<Q", len(frame)) + frame)])
    with Chronicle.open(p) as ch:
        with pytest.raises(CorruptDataError, match=r"its payload '\[1,2\]' is not a JSON object"):
            list(ch)


def test_a_text_frame_that_claims_a_terabyte_is_refused_before_it_is_decompressed(bases, tmp_path):
    events = _base(bases, "event-log")
    texts, column, size = _payload_texts(events, "block #0")
    (z,) = struct.unpack_from("<Q", column, size)
    frame = column[size + 8:]
    params = zstandard.get_frame_parameters(frame)
    header_size = zstandard.frame_header_size(frame)
    assert params.content_size != zstandard.CONTENTSIZE_UNKNOWN and not params.dict_id
    # the same blocks, under a frame header (8-byte content size, single segment) that says 2**40 bytes
    forged = frame[:4] + bytes([0xE0 | frame[4] & 0x04]) + struct.pack("<Q", 2**40) + frame[header_size:]
    assert zstandard.get_frame_parameters(forged).content_size == 2**40
    p = _hostile(tmp_path, events, [(texts, column[:size] + struct.pack("<Q", len(forged)) + forged)])
    with Chronicle.open(p) as ch:
        with pytest.raises(CorruptDataError, match=rf"{p.name}: block 0 at offset {events.blocks[0]}: text column "
                                                   rf"'payload': its zstd frame holds 1,099,511,627,776 bytes, its "
                                                   rf"lengths say {params.content_size:,}"):
            ch.to_numpy()
    # lengths that add up to more than any frame of that size can hold: refused before decompressing
    lengths = core.decode_column(column[:size]).astype(np.uint64)
    lengths[0] = 2**40
    p = _hostile(tmp_path, events, [(texts, core.encode_column(lengths) + column[size:])])
    with Chronicle.open(p) as ch:
        with pytest.raises(CorruptDataError, match=rf"text column 'payload': its lengths add up to more than the "
                                                   rf"[\d,]+ bytes its zstd frame of {z:,} bytes can hold"):
            list(ch)


def test_text_lengths_stored_as_a_wide_or_signed_type_are_checked(bases, tmp_path):
    events = _base(bases, "event-log")
    texts, column, size = _payload_texts(events, "block #0")
    lengths = core.decode_column(column[:size])
    for dtype in (np.uint64, np.int64):                  # the same lengths, another integer type
        p = _hostile(tmp_path, events, [(texts, core.encode_column(lengths.astype(dtype)) + column[size:])])
        with Chronicle.open(p) as ch:
            assert [r.payload for r in ch][:2] == [{"i": 0, "nested": {"a": [1, 2, {"b": "é"}]}},
                                                   {"i": 1, "nested": {"a": [1, 2, {"b": "é"}]}}]
    negative = lengths.astype(np.int64)
    negative[0], negative[1] = -5, negative[1] + negative[0] + 5
    p = _hostile(tmp_path, events, [(texts, core.encode_column(negative) + column[size:])])
    with Chronicle.open(p) as ch:
        with pytest.raises(CorruptDataError, match=r"text column 'payload': its lengths are not byte counts"):
            list(ch)


def test_a_u64_field_stored_as_int64_reads_back_as_its_bits_everywhere(bases, tmp_path):
    base = _base(bases, "cycle-exact")
    dtype = _target(base, "block #0", "column 'seed_state' part 0 column dtype")
    p = _hostile(tmp_path, base, [(dtype, 6)])                 # uint64 -> int64: the seeds above 2**63 turn negative
    with Chronicle.open(p) as ch:
        seeds = [r.seed_state for r in ch]
        assert seeds == ch.to_numpy()["seed_state"].tolist() and min(seeds) >= 0 and max(seeds) >= 2**63
        assert seeds == [cycle_fields(i)["seed_state"] for i in range(40)]
    assert audit(p, _step_factory).checks                     # replay hashes the seeds as u64: no struct.error


@pytest.mark.parametrize("column, kind", [("timestamp", fmt.KIND_QF64), ("seed_state", fmt.KIND_QF32)])
def test_a_format_1_integer_column_recast_as_fixed_point_is_corrupt(bases, tmp_path, column, kind):
    base = _base(bases, "format-1")
    p = _hostile(tmp_path, base, [(_target(base, "block #0", f"column {column!r} kind"), kind)])
    with Chronicle.open(p) as ch:
        with pytest.raises(CorruptDataError, match=rf"{p.name}: block 0 at offset {base.blocks[0]}: (its )?column "
                                                   rf"'{column}'( is of kind qf64, not int|: fixed-point values "
                                                   rf"stored as uint64)"):
            ch.to_numpy() if column == "timestamp" else list(ch)


def test_a_scale_whose_inverse_overflows_is_corrupt(bases, tmp_path):
    fixed = _base(bases, "cycle-fixed-1e-6")
    p = _hostile(tmp_path, fixed, [(_target(fixed, "block #0", "column 'tensor_signature.1' float scale"), 5e-324)])
    with Chronicle.open(p) as ch:
        with pytest.raises(CorruptDataError, match=rf"{p.name}: block 0 at offset {fixed.blocks[0]}: column "
                                                   rf"'tensor_signature.1' is malformed: float column scale 5e-324 "
                                                   rf"is not a usable scale"):
            list(ch)
    v1 = _base(bases, "format-1")
    p = _hostile(tmp_path, v1, [(_target(v1, "file header scale"), 5e-324)])
    with pytest.raises(CorruptDataError, match=rf"{p.name}: quantization scale 5e-324 at offset 16 is not a usable"):
        Chronicle.open(p)
    with pytest.raises(ConfigError, match=r"precision of 'precision': expected 'exact' or a scale > 0"):
        Precision.parse(5e-324, "cycle")


@pytest.mark.parametrize("precision", [{"loss_value": 10**400}, {"loss_value": 5e-324}, {"bogus": 1}],
                         ids=["huge-int", "tiny", "unknown-field"])
def test_a_header_precision_that_cannot_be_read_is_corrupt(bases, tmp_path, precision):
    base = _base(bases, "cycle-exact")
    meta = json.loads(base.data[40:_target(base, "file header metadata").end])
    meta["precision"] = precision
    p = _hostile(tmp_path, base, [(_target(base, "file header metadata"), json.dumps(meta).encode())])
    with Chronicle.open(p) as ch:
        with pytest.raises(CorruptDataError, match=rf"{p.name}: header metadata: precision"):
            ch.precision
    with pytest.raises(CorruptDataError, match=rf"{p.name}: header metadata: precision"):
        Chronicle.open(p, "a")


def _with_seed(bases: list[Base], tmp_path: Path, seed: object) -> Path:
    base = _base(bases, "cycle-exact")
    meta = json.loads(base.data[40:_target(base, "file header metadata").end])
    meta["initial_seed"] = seed
    return _hostile(tmp_path, base, [(_target(base, "file header metadata"), json.dumps(meta).encode())])


def test_a_null_initial_seed_is_no_seed(bases, tmp_path):
    p = _with_seed(bases, tmp_path, None)
    with Chronicle.open(p) as ch:
        assert ch.initial_seed is None
    assert audit(p, _step_factory).replay["records"] == 40


@pytest.mark.parametrize("seed", ["x", -1, 2**64, 1.5])
def test_an_initial_seed_that_is_not_a_u64_is_corrupt(bases, tmp_path, seed):
    p = _with_seed(bases, tmp_path, seed)
    match = rf"{p.name}: header metadata: initial_seed {re.escape(repr(seed))} is not a u64"
    with Chronicle.open(p) as ch:
        with pytest.raises(CorruptDataError, match=match):
            ch.initial_seed
    for run in (audit, replay):                         # a replay starts from the header's seed
        with pytest.raises(CorruptDataError, match=match):
            run(p, _step_factory)


def test_phase_codes_stored_signed_and_negative_are_corrupt(bases, tmp_path):
    base = _base(bases, "cycle-exact")
    phase = _target(base, "block #0", "column 'phase' bytes")
    codes_at = _target(base, "block #0", "column 'phase' part 0 column version").start
    dictionary = base.data[phase.start:codes_at]
    p = _hostile(tmp_path, base, [(phase, dictionary + core.encode_column(np.full(16, -1, np.int64)))])
    with Chronicle.open(p) as ch:
        for read in (lambda: list(ch), ch.to_numpy, lambda: ch.to_numpy(categorical=True)):
            with pytest.raises(CorruptDataError, match=rf"{p.name}: block 0 at offset {base.blocks[0]}: column "
                                                       rf"'phase' holds codes outside its dictionary of 3"):
                read()


@pytest.mark.parametrize("what", ["data block payload", "footer of an earlier session"])
def test_a_writer_refuses_to_append_after_a_damaged_block_in_the_middle(bases, tmp_path, what):
    base = _base(bases, "cycle-fixed-1e-6")
    victim = _target(base, "block #1 (data)", "payload") if what == "data block payload" else \
        _target(base, "block #7 (footer)", "payload")
    assert victim.end < len(base.data) - 1000              # blocks follow it: not a torn tail
    p = _hostile(tmp_path, base, [(victim, bytes(x ^ 0x55 for x in base.data[victim.start:victim.end]))],
                 crcs=False)                               # damaged: its CRC-64 no longer holds
    block_at = victim.start - fmt.BLOCK_HEADER2_SIZE
    before = p.read_bytes()
    with pytest.raises(CorruptDataError, match=rf"{p.name}: corrupt data at offset {block_at}\.\.") as refused:
        recover(p)
    with pytest.raises(CorruptDataError, match=rf"{p.name}: cannot append: corrupt data at offset {block_at}\.\."
                                               rf"\d+ \(.*payload CRC-64 mismatch\); run `chronoledger chronicle "
                                               rf"recover --mode skip` first") as info:
        Chronicle.open(p, "a")
    assert info.value.offset == refused.value.offset == block_at
    assert p.read_bytes() == before
    recover(p, "skip")                                     # what the message says to do
    with Chronicle.open(p, "a") as ch:
        ch.append(**cycle_fields(1000))
    assert verify(p).ok


@pytest.mark.parametrize("field, value, why", [
    ("footer total", 41, "its index holds 40 records, its total says 41"),
    ("footer index 1 first timestamp", 17, "its index entry 1 (offset, records, first and last timestamp) is "),
    ("footer meta offset 0", "second meta", "its list of meta blocks differs from the file's at entry 0"),
    ("footer meta count", 2, "its meta block list does not match its length"),
    ("footer payload CRC", 12345, "its payload CRC-64 0000000000003039 is not that of bytes"),
], ids=["total", "index", "meta-offset", "meta-count", "payload-crc"])
def test_a_footer_that_disagrees_with_the_blocks_is_a_damaged_footer(bases, tmp_path, field, value, why):
    base = _base(bases, "cycle-exact")
    if value == "second meta":                     # the second meta block listed twice, the first not at all
        value = base.blocks[3]
    p = _hostile(tmp_path, base, [(_target(base, field), value)], footer_payload_crc=field != "footer payload CRC")
    report = verify(p)
    assert not report.ok and [d["kind"] for d in report.damage] == ["footer"], report.text()
    assert why in report.text()
    with Chronicle.open(p) as ch:                  # the blocks are read, the footer is not believed
        assert [r.timestamp for r in ch] == list(range(40))
    with pytest.raises(CorruptDataError, match=rf"{p.name}: the footer \(block index\) at offset "
                                               rf"{base.blocks[-1]} is damaged \((footer at offset \d+: )?"
                                               rf"{re.escape(why)}"):
        Chronicle.open(p, recovery="strict")
    rep = recover(p)
    assert rep.changed and "replaced a damaged footer" in rep.message
    assert verify(p).ok


def test_a_failure_while_decoding_inside_recovery_is_the_error_raised_and_the_file_is_kept(bases, tmp_path):
    base = _base(bases, "cycle-fixed-1e-6")
    # the block a rewind cuts: reading the meta block decodes its timestamps, whose column is unreadable
    straddling = _target(base, "block #4 (data)", "column 'timestamp' name length")
    p = _hostile(tmp_path, base, [(straddling, 255)])
    before = p.read_bytes()
    match = rf"{p.name}: block at offset {base.blocks[4]}: column directory is malformed"
    for call in (lambda: recover(p), lambda: recover(p, "skip"), lambda: Chronicle.open(p, "a")):
        with pytest.raises(CorruptDataError, match=match):        # not mmap's BufferError
            call()
    assert p.read_bytes() == before
    assert not verify(p).ok and p.read_bytes() == before


def test_recover_and_verify_leave_a_mutated_file_as_it_was_when_they_refuse_it(bases, tmp_path):
    refused = 0
    path = tmp_path / "m.cmeta"
    for seed in range(400):
        base = bases[seed % len(bases)]
        case = mutate(base, seed)
        path.write_bytes(case.data)
        verify(path)
        assert path.read_bytes() == case.data, case.describe()
        for mode in MODES:
            try:
                recover(path, mode)
            except ChronoledgerError:
                refused += 1
                assert path.read_bytes() == case.data, f"recover({mode!r}) refused but changed it: {case.describe()}"
            path.write_bytes(case.data)
        if refused >= 60:
            break
    assert refused >= 60
