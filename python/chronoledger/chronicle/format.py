"""The byte layout of a ``.cmeta`` file (docs/FORMAT.md is the prose version).

Everything is little-endian.  A file is a header, then blocks back to back:
data blocks (compressed columns of records) and footer blocks (an index of the
data blocks before it, the record count and the payload CRC, ending in a
fixed trailer).  A writer only ever appends, so a crash leaves the old file
plus, at worst, a torn last block.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

from chronoledger import core
from chronoledger.errors import ChecksumError, CorruptDataError, TruncatedError

MAGIC = 0x0C0DA55E
FORMAT_VERSION = 2             # what a new file is written in
READ_VERSIONS = (1, 2)         # what can be read (and appended to: a file keeps its version)

SCHEMA_CYCLE = 1
SCHEMA_EVENT = 2
SCHEMA_NAMES = {SCHEMA_CYCLE: "cycle", SCHEMA_EVENT: "event"}

# file header, version 1: magic, version, flags, header length, schema, scale, metadata length, reserved
HEADER = struct.Struct("<IHHIIdII")            # 32 bytes, then metadata JSON, then u64 CRC
# version 2: magic, version, flags, header length, schema, reserved f64 (0), salt, metadata length, reserved
HEADER2 = struct.Struct("<IHHIIdQII")          # 40 bytes, then metadata JSON, then u64 CRC
HEADER_MAX_METADATA = 16 << 20
META_MAX = 16 << 20                            # the largest payload of a meta block
JSON_MAX_DEPTH = 64                            # deeper JSON in a header or meta block is refused

BLOCK_MAGIC = 0x4B424C43                       # b"CLBK"
BLOCK_DATA = 1
BLOCK_FOOTER = 2
BLOCK_META = 3                                 # version 2: a JSON amendment (config, tags, note, rewind)
BLOCK_KINDS = {1: (BLOCK_DATA, BLOCK_FOOTER), 2: (BLOCK_DATA, BLOCK_FOOTER, BLOCK_META)}
# block header, version 1: magic, type, reserved, reserved, payload length, records, first ts, last ts, payload CRC
BLOCK_HEADER = struct.Struct("<IBBHQQQQQ")      # 48 bytes, then u64 CRC of those 48 bytes
BLOCK_HEADER_SIZE = BLOCK_HEADER.size + 8      # 56
# version 2 adds what ties a block to its file and its place in it: magic, type, flags, schema,
# payload length, records, first ts, last ts, payload CRC, the file's salt, sequence number, reserved
BLOCK_HEADER2 = struct.Struct("<IBBHQQQQQQII")  # 64 bytes, then u64 CRC of those 64 bytes
BLOCK_HEADER2_SIZE = BLOCK_HEADER2.size + 8    # 72
BLOCK_HEADER_SIZES = {1: BLOCK_HEADER_SIZE, 2: BLOCK_HEADER2_SIZE}
BLOCK_MAX_RECORDS = 1 << 24                    # the most records a data block holds (a writer's largest block)
U64_MAX = 2**64 - 1

FOOTER_FIXED = struct.Struct("<QQQ")           # total records, payload CRC, data blocks
INDEX_ENTRY = struct.Struct("<QQQQ")           # offset, records (version 2: live records), first ts, last ts
META_COUNT = struct.Struct("<Q")               # version 2, after the index: meta blocks, then one u64 offset each
TRAILER_MAGIC = 0x444E4541544D4543             # b"CEMTAEND"
TRAILER = struct.Struct("<QQQ")                # magic, footer block offset, reserved; then u64 CRC
TRAILER_SIZE = TRAILER.size + 8                # 32

COLUMN_ENTRY = struct.Struct("<BQ")            # kind, encoded length (after the name)

#: The bytes of a whole file as the readers take them: a read-only map of it, or bytes.
Buf: TypeAlias = "mmap.mmap | bytes"

# column kinds inside a data block
KIND_INT = 1          # encode_column bytes, dtype kept
KIND_QF32 = 2         # quantized at the chronicle's scale, read back as float32
KIND_QF64 = 3         # quantized, read back as float64
KIND_STR = 4          # dictionary of distinct strings + codes
KIND_TEXT = 5         # lengths column + one zstd frame of UTF-8 text
KIND_OPT_U8 = 6       # code + 1, 0 when absent; read back as int16 with -1 for absent
KIND_OPT_QF64 = 7     # presence column + the present values, quantized; NaN when absent
KIND_FLOAT = 8        # format 2: a float column, exact bits or fixed point at its own scale, optional or not
KIND_NAMES = {KIND_INT: "int", KIND_QF32: "qf32", KIND_QF64: "qf64", KIND_STR: "str",
              KIND_TEXT: "text", KIND_OPT_U8: "opt_u8", KIND_OPT_QF64: "opt_qf64", KIND_FLOAT: "float"}

# KIND_FLOAT's column prefix: u8 flags, u8 width (4: read back as float32, 8: float64),
# u32 exception count; then f64 scale when fixed point.  Its integer columns follow.
FLOAT_PREFIX = struct.Struct("<BBI")
FLOAT_OPTIONAL = 1    # flag: a presence column comes first, and values only for the present rows
FLOAT_FIXED = 2       # flag: values are round-half-even(value / scale); else the float's ordered bits


@dataclass(frozen=True)
class FileHeader:
    schema: int
    scale: float | None          # version 1: the one fixed-point scale; version 2: None (per column)
    metadata: dict[str, Any]
    length: int
    version: int = 1
    salt: int = 0                # version 2: random at creation; every block carries it

    @property
    def schema_name(self) -> str:
        return SCHEMA_NAMES.get(self.schema, f"unknown({self.schema})")

    @property
    def metadata_offset(self) -> int:
        """Where the metadata JSON starts in the file."""
        return HEADER.size if self.version == 1 else HEADER2.size


@dataclass(frozen=True)
class BlockHeader:
    offset: int          # of the block header in the file
    kind: int
    payload_length: int
    records: int         # records the block holds
    first_ts: int
    last_ts: int
    payload_crc: int
    header_size: int = BLOCK_HEADER_SIZE
    sequence: int = -1   # version 2: the block's number in its file (every kind counts), from 0
    salt: int = 0        # version 2: the salt of the file it was written for
    schema: int = 0      # version 2: the schema of the file it was written for
    live: int = -1       # records still in the file (a rewind drops the newest): -1 all of them

    @property
    def end(self) -> int:
        return self.offset + self.header_size + self.payload_length

    @property
    def payload_offset(self) -> int:
        return self.offset + self.header_size

    @property
    def rows(self) -> int:
        """The records of the block that are read (all, or those a rewind kept)."""
        return self.records if self.live < 0 else self.live


def _json_object(raw: bytes, what: str, offset: int) -> dict[str, Any]:
    """A JSON object from untrusted bytes: not JSON, not an object, or nested
    deeper than JSON_MAX_DEPTH is a CorruptDataError naming ``what``."""
    depth = deepest = 0
    in_str = esc = False
    if raw.count(b"[") + raw.count(b"{") <= JSON_MAX_DEPTH:
        raw_to_walk = b""           # too few brackets to nest too deep: nothing to count
    else:
        raw_to_walk = raw
    for b in raw_to_walk:           # nesting is counted before json builds anything
        if in_str:
            if esc:
                esc = False
            elif b == 0x5C:
                esc = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif b in (0x5D, 0x7D):
            depth -= 1
    if deepest > JSON_MAX_DEPTH:
        raise CorruptDataError(f"{what} at offset {offset} nests {deepest} levels deep (at most {JSON_MAX_DEPTH})",
                               offset=offset)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise CorruptDataError(f"{what} at offset {offset} is not JSON: {exc}", offset=offset) from None
    if not isinstance(value, dict):
        raise CorruptDataError(f"{what} at offset {offset} is not a JSON object", offset=offset)
    return value


def valid_scale(scale: float) -> bool:
    """A fixed-point scale a reader can use: finite, > 0, and with a finite 1 / scale."""
    return scale > 0.0 and scale != float("inf") and 1.0 / scale != float("inf")


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def pack_header(schema: int, scale: float | None, metadata: dict[str, Any], salt: int = 0,
                version: int = FORMAT_VERSION) -> bytes:
    """A file header: version 2 (with ``salt``) unless version 1 is asked for (with ``scale``)."""
    meta = canonical_json(metadata)
    if len(meta) > HEADER_MAX_METADATA:
        raise ValueError(f"chronicle metadata is {len(meta)} bytes, more than the {HEADER_MAX_METADATA} allowed")
    if version == 1:
        assert scale is not None
        head = HEADER.pack(MAGIC, 1, 0, HEADER.size + len(meta) + 8, schema, scale, len(meta), 0) + meta
    else:
        head = HEADER2.pack(MAGIC, 2, 0, HEADER2.size + len(meta) + 8, schema, 0.0, salt, len(meta), 0) + meta
    return head + struct.pack("<Q", core.crc64(head))


def read_header(buf: Buf, path: str) -> FileHeader:
    """Parse and check the file header at the start of ``buf``."""
    if len(buf) >= 4 and (magic := struct.unpack_from("<I", buf, 0)[0]) != MAGIC:
        raise CorruptDataError(f"{path}: not a chronicle: magic at offset 0 is 0x{magic:08X}, "
                               f"expected 0x{MAGIC:08X}", offset=0)
    if len(buf) < HEADER.size:
        raise TruncatedError(f"{path}: file is {len(buf)} bytes, shorter than a chronicle header", offset=len(buf))
    (version,) = struct.unpack_from("<H", buf, 4)
    if version not in READ_VERSIONS:
        raise CorruptDataError(f"{path}: format version {version} at offset 4 is not supported "
                               f"(this chronoledger reads versions {', '.join(map(str, READ_VERSIONS))})", offset=4)
    salt = 0
    if version == 1:
        _, _, _flags, length, schema, scale, meta_len, _ = HEADER.unpack_from(buf, 0)
        fixed = HEADER.size
    else:
        if len(buf) < HEADER2.size:
            raise TruncatedError(f"{path}: file is {len(buf)} bytes, shorter than a chronicle header",
                                 offset=len(buf))
        _, _, _flags, length, schema, _zero, salt, meta_len, _ = HEADER2.unpack_from(buf, 0)
        fixed = HEADER2.size
    if meta_len > HEADER_MAX_METADATA or length != fixed + meta_len + 8:
        raise CorruptDataError(f"{path}: header length fields at offset 8 are inconsistent", offset=8)
    if len(buf) < length:
        raise TruncatedError(f"{path}: the header needs {length} bytes, the file has {len(buf)}", offset=len(buf))
    (crc,) = struct.unpack_from("<Q", buf, length - 8)
    if core.crc64(memoryview(buf)[:length - 8]) != crc:
        raise ChecksumError(f"{path}: header CRC-64 mismatch (header bytes 0..{length - 8})", offset=length - 8)
    if schema not in SCHEMA_NAMES:
        raise CorruptDataError(f"{path}: unknown schema {schema} at offset 12", offset=12)
    if version == 1 and not valid_scale(scale):
        raise CorruptDataError(f"{path}: quantization scale {scale!r} at offset 16 is not a usable scale (a finite "
                               f"number > 0 whose inverse is finite)", offset=16)
    metadata = _json_object(bytes(buf[fixed:fixed + meta_len]), f"{path}: header metadata", fixed)
    return FileHeader(schema, scale if version == 1 else None, metadata, length, version, salt)


def pack_block_header(kind: int, payload_length: int, payload_crc: int, records: int, first_ts: int, last_ts: int,
                      header: FileHeader | None = None, sequence: int = 0) -> bytes:
    """The header of a block of ``header``'s version (version 1 without a header)."""
    if header is None or header.version == 1:
        head = BLOCK_HEADER.pack(BLOCK_MAGIC, kind, 0, 0, payload_length, records, first_ts, last_ts, payload_crc)
    else:
        head = BLOCK_HEADER2.pack(BLOCK_MAGIC, kind, 0, header.schema, payload_length, records, first_ts, last_ts,
                                  payload_crc, header.salt, sequence, 0)
    return head + struct.pack("<Q", core.crc64(head))


def pack_block(kind: int, payload: bytes, records: int, first_ts: int, last_ts: int,
               header: FileHeader | None = None, sequence: int = 0) -> bytes:
    """A whole block of ``header``'s version (version 1 without a header)."""
    return pack_block_header(kind, len(payload), core.crc64(payload), records, first_ts, last_ts, header,
                             sequence) + payload


def parse_block_header(buf: Buf, offset: int, version: int = 1) -> BlockHeader | None:
    """The block header at ``offset`` if its magic and CRC are right (and
    its record count possible), else None.

    Only the header is checked (the payload may extend past the buffer);
    whether it belongs to this file and this place is the scanner's check.
    """
    return check_block_header(buf, offset, version)[0]


def check_block_header(buf: Buf, offset: int, version: int = 1) -> tuple[BlockHeader | None, str]:
    """(the block header at ``offset``, "") if it is valid, else (None, why not)."""
    size = BLOCK_HEADER_SIZES[version]
    if offset < 0 or offset + size > len(buf):
        return None, f"only {max(0, len(buf) - offset)} bytes remain, less than a block header"
    packer = BLOCK_HEADER if version == 1 else BLOCK_HEADER2
    fields = packer.unpack_from(buf, offset)
    if fields[0] != BLOCK_MAGIC:
        return None, "no block magic"
    if fields[1] not in BLOCK_KINDS[version]:
        return None, f"unknown block type {fields[1]}"
    (crc,) = struct.unpack_from("<Q", buf, offset + packer.size)
    if core.crc64(memoryview(buf)[offset:offset + packer.size]) != crc:
        return None, "block header CRC-64 mismatch"
    if fields[1] == BLOCK_DATA and fields[5] > BLOCK_MAX_RECORDS:
        # a count no writer makes: trusting it would size arrays by it
        return None, f"the block header claims {fields[5]:,} records, more than the {BLOCK_MAX_RECORDS:,} a block holds"
    if version == 1:
        _, kind, _, _, length, records, first_ts, last_ts, payload_crc = fields
        return BlockHeader(offset, kind, length, records, first_ts, last_ts, payload_crc), ""
    _, kind, _flags, schema, length, records, first_ts, last_ts, payload_crc, salt, sequence, _ = fields
    return BlockHeader(offset, kind, length, records, first_ts, last_ts, payload_crc, size, sequence, salt,
                       schema), ""


@contextlib.contextmanager
def mapped(fd: int) -> Iterator[mmap.mmap]:
    """A read-only map of the open file ``fd`` for the ``with`` block.  When
    the block raises, views of the map may live on in the traceback (a
    decoder's memoryviews): the map is then unmapped when they go, and the
    error raised is the block's, not mmap's BufferError."""
    m = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    try:
        yield m
    except BaseException:
        try:
            m.close()
        except BufferError:
            pass
        raise
    m.close()


def pack_footer(total_records: int, payload_crc: int, index: list[BlockHeader], offset: int,
                header: FileHeader | None = None, sequence: int = 0, meta: list[int] | None = None) -> bytes:
    """A footer block to be written at ``offset`` (its trailer points back at it).
    Version 2 indexes each data block's live records, then the meta blocks' offsets."""
    v2 = header is not None and header.version == 2
    body = FOOTER_FIXED.pack(total_records, payload_crc, len(index))
    body += b"".join(INDEX_ENTRY.pack(b.offset, b.rows if v2 else b.records, b.first_ts, b.last_ts) for b in index)
    if v2:
        offsets = meta or []
        body += META_COUNT.pack(len(offsets)) + b"".join(struct.pack("<Q", o) for o in offsets)
    trailer = TRAILER.pack(TRAILER_MAGIC, offset, 0)
    body += trailer + struct.pack("<Q", core.crc64(trailer))
    first = index[0].first_ts if index else 0
    last = index[-1].last_ts if index else 0
    return pack_block(BLOCK_FOOTER, body, total_records, first, last, header, sequence)


def read_trailer(buf: Buf) -> int | None:
    """Offset of the footer block named by a valid trailer at the end of ``buf``, else None."""
    if len(buf) < TRAILER_SIZE:
        return None
    start = len(buf) - TRAILER_SIZE
    magic, footer_offset, _ = TRAILER.unpack_from(buf, start)
    (crc,) = struct.unpack_from("<Q", buf, start + TRAILER.size)
    if magic != TRAILER_MAGIC or core.crc64(memoryview(buf)[start:start + TRAILER.size]) != crc:
        return None
    return int(footer_offset)


def unpack_footer(buf: Buf, block: BlockHeader, version: int = 1
                  ) -> tuple[int, int, list[tuple[int, int, int, int]], list[int]]:
    """(total records, payload CRC, index entries, meta block offsets) from a
    footer block whose CRC was checked; its counts are checked against its length."""
    p = block.payload_offset
    if block.payload_length < FOOTER_FIXED.size + TRAILER_SIZE:
        raise CorruptDataError(f"footer at offset {block.offset} is too short", offset=block.offset)
    total, payload_crc, count = FOOTER_FIXED.unpack_from(buf, p)
    p += FOOTER_FIXED.size
    room = block.payload_length - FOOTER_FIXED.size - TRAILER_SIZE
    if count > room // INDEX_ENTRY.size:
        raise CorruptDataError(f"footer at offset {block.offset}: its index size does not match its length",
                               offset=block.offset)
    entries = [INDEX_ENTRY.unpack_from(buf, p + i * INDEX_ENTRY.size) for i in range(count)]
    p += count * INDEX_ENTRY.size
    meta: list[int] = []
    rest = room - count * INDEX_ENTRY.size
    if version == 2:
        if rest < META_COUNT.size:
            raise CorruptDataError(f"footer at offset {block.offset} lacks its meta block list", offset=block.offset)
        (m,) = META_COUNT.unpack_from(buf, p)
        rest -= META_COUNT.size
        if m != rest // 8 or rest % 8:
            raise CorruptDataError(f"footer at offset {block.offset}: its meta block list does not match its length",
                                   offset=block.offset)
        meta = [struct.unpack_from("<Q", buf, p + 8 + 8 * i)[0] for i in range(m)]
    elif rest:
        raise CorruptDataError(f"footer at offset {block.offset}: its index size does not match its length",
                               offset=block.offset)
    return total, payload_crc, entries, meta


def pack_meta(entry: dict[str, Any], header: FileHeader, sequence: int, stamp: int = 0) -> bytes:
    """A meta block holding one amendment (a JSON object with an ``op``)."""
    body = canonical_json(entry)
    if len(body) > META_MAX:
        raise ValueError(f"a meta entry of {len(body)} bytes is more than the {META_MAX} allowed")
    return pack_block(BLOCK_META, body, 0, stamp, stamp, header, sequence)


def read_meta(buf: Buf, block: BlockHeader, path: str) -> dict[str, Any]:
    """The amendment a meta block holds (its CRC checked by the caller),
    with the fields of the ops this version knows checked (an unknown op is
    kept as it is: readers skip it)."""
    if block.payload_length > META_MAX:
        raise CorruptDataError(f"{path}: meta block at offset {block.offset} is {block.payload_length} bytes, "
                               f"more than the {META_MAX} allowed", offset=block.offset)
    entry = _json_object(bytes(buf[block.payload_offset:block.end]), f"{path}: meta block", block.offset)
    if not isinstance(entry.get("op"), str):
        raise CorruptDataError(f"{path}: meta block at offset {block.offset} has no op", offset=block.offset)
    problem = _amendment_problem(entry)
    if problem is not None:
        raise CorruptDataError(f"{path}: meta block at offset {block.offset} ({entry['op']}): {problem}",
                               offset=block.offset)
    return entry


def is_u64(v: object) -> bool:
    """An int (not a bool) in 0 .. 2**64 - 1."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= U64_MAX


def _amendment_problem(entry: dict[str, Any]) -> str | None:
    """What is wrong with the fields of an amendment of a known op, or None."""
    op = entry["op"]
    if "at" in entry and not isinstance(entry["at"], str):
        return f"its time {entry['at']!r} is not text"
    if op == "rewind":
        if not is_u64(entry.get("to")):
            return f"its timestamp 'to' {entry.get('to')!r} is not a u64"
        if "dropped" in entry and not is_u64(entry["dropped"]):
            return f"its count 'dropped' {entry['dropped']!r} is not a count"
    elif op == "tags":
        for key in ("add", "remove"):
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                return f"its {key!r} is not a list of tags (text)"
    elif op == "note":
        if not isinstance(entry.get("text"), str):
            return "its 'text' is not text"
    elif op == "config":
        if not is_u64(entry.get("version")):
            return f"its version {entry.get('version')!r} is not a number"
        if entry.get("reason") is not None and not isinstance(entry["reason"], str):
            return "its 'reason' is not text"
    return None
