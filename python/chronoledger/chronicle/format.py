"""The byte layout of a ``.cmeta`` file (docs/FORMAT.md is the prose version).

Everything is little-endian.  A file is a header, then blocks back to back:
data blocks (compressed columns of records) and footer blocks (an index of the
data blocks before it, the record count and the payload CRC, ending in a
fixed trailer).  A writer only ever appends, so a crash leaves the old file
plus, at worst, a torn last block.
"""

from __future__ import annotations

import json
import mmap
import struct
from dataclasses import dataclass
from typing import Any, TypeAlias

from chronoledger import core
from chronoledger.errors import ChecksumError, CorruptDataError, TruncatedError

MAGIC = 0x0C0DA55E
FORMAT_VERSION = 1

SCHEMA_CYCLE = 1
SCHEMA_EVENT = 2
SCHEMA_NAMES = {SCHEMA_CYCLE: "cycle", SCHEMA_EVENT: "event"}

# file header: magic, version, flags, header length, schema, scale, metadata length, reserved
HEADER = struct.Struct("<IHHIIdII")            # 32 bytes, then metadata JSON, then u64 CRC
HEADER_MAX_METADATA = 16 << 20

BLOCK_MAGIC = 0x4B424C43                       # b"CLBK"
BLOCK_DATA = 1
BLOCK_FOOTER = 2
# block header: magic, type, reserved, reserved, payload length, records, first ts, last ts, payload CRC
BLOCK_HEADER = struct.Struct("<IBBHQQQQQ")      # 48 bytes, then u64 CRC of those 48 bytes
BLOCK_HEADER_SIZE = BLOCK_HEADER.size + 8      # 56

FOOTER_FIXED = struct.Struct("<QQQ")           # total records, payload CRC, data blocks
INDEX_ENTRY = struct.Struct("<QQQQ")           # offset, records, first ts, last ts
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
KIND_NAMES = {KIND_INT: "int", KIND_QF32: "qf32", KIND_QF64: "qf64", KIND_STR: "str",
              KIND_TEXT: "text", KIND_OPT_U8: "opt_u8", KIND_OPT_QF64: "opt_qf64"}


@dataclass(frozen=True)
class FileHeader:
    schema: int
    scale: float
    metadata: dict[str, Any]
    length: int

    @property
    def schema_name(self) -> str:
        return SCHEMA_NAMES.get(self.schema, f"unknown({self.schema})")


@dataclass(frozen=True)
class BlockHeader:
    offset: int          # of the block header in the file
    kind: int
    payload_length: int
    records: int
    first_ts: int
    last_ts: int
    payload_crc: int

    @property
    def end(self) -> int:
        return self.offset + BLOCK_HEADER_SIZE + self.payload_length

    @property
    def payload_offset(self) -> int:
        return self.offset + BLOCK_HEADER_SIZE


def pack_header(schema: int, scale: float, metadata: dict[str, object]) -> bytes:
    meta = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
    if len(meta) > HEADER_MAX_METADATA:
        raise ValueError(f"chronicle metadata is {len(meta)} bytes, more than the {HEADER_MAX_METADATA} allowed")
    head = HEADER.pack(MAGIC, FORMAT_VERSION, 0, HEADER.size + len(meta) + 8, schema, scale, len(meta), 0) + meta
    return head + struct.pack("<Q", core.crc64(head))


def read_header(buf: Buf, path: str) -> FileHeader:
    """Parse and check the file header at the start of ``buf``."""
    if len(buf) >= 4 and (magic := struct.unpack_from("<I", buf, 0)[0]) != MAGIC:
        raise CorruptDataError(f"{path}: not a chronicle: magic at offset 0 is 0x{magic:08X}, "
                               f"expected 0x{MAGIC:08X}", offset=0)
    if len(buf) < HEADER.size:
        raise TruncatedError(f"{path}: file is {len(buf)} bytes, shorter than a chronicle header", offset=len(buf))
    _, version, _flags, length, schema, scale, meta_len, _ = HEADER.unpack_from(buf, 0)
    if version != FORMAT_VERSION:
        raise CorruptDataError(f"{path}: format version {version} at offset 4 is not supported "
                               f"(this chronoledger reads version {FORMAT_VERSION})", offset=4)
    if meta_len > HEADER_MAX_METADATA or length != HEADER.size + meta_len + 8:
        raise CorruptDataError(f"{path}: header length fields at offset 8 are inconsistent", offset=8)
    if len(buf) < length:
        raise TruncatedError(f"{path}: the header needs {length} bytes, the file has {len(buf)}", offset=len(buf))
    (crc,) = struct.unpack_from("<Q", buf, length - 8)
    if core.crc64(memoryview(buf)[:length - 8]) != crc:
        raise ChecksumError(f"{path}: header CRC-64 mismatch (header bytes 0..{length - 8})", offset=length - 8)
    if schema not in SCHEMA_NAMES:
        raise CorruptDataError(f"{path}: unknown schema {schema} at offset 12", offset=12)
    if not (scale > 0.0) or scale == float("inf"):
        raise CorruptDataError(f"{path}: quantization scale {scale!r} at offset 16 is not a positive number", offset=16)
    try:
        metadata = json.loads(bytes(buf[HEADER.size:HEADER.size + meta_len]))
    except ValueError as exc:
        raise CorruptDataError(f"{path}: header metadata at offset {HEADER.size} is not JSON: {exc}",
                               offset=HEADER.size) from None
    if not isinstance(metadata, dict):
        raise CorruptDataError(f"{path}: header metadata at offset {HEADER.size} is not a JSON object",
                               offset=HEADER.size)
    return FileHeader(schema, scale, metadata, length)


def pack_block(kind: int, payload: bytes, records: int, first_ts: int, last_ts: int) -> bytes:
    head = BLOCK_HEADER.pack(BLOCK_MAGIC, kind, 0, 0, len(payload), records, first_ts, last_ts,
                             core.crc64(payload))
    return head + struct.pack("<Q", core.crc64(head)) + payload


def parse_block_header(buf: Buf, offset: int) -> BlockHeader | None:
    """The block header at ``offset`` if its magic and CRC are right, else None.

    Only the header is checked (the payload may extend past the buffer).
    """
    if offset + BLOCK_HEADER_SIZE > len(buf):
        return None
    fields = BLOCK_HEADER.unpack_from(buf, offset)
    if fields[0] != BLOCK_MAGIC or fields[1] not in (BLOCK_DATA, BLOCK_FOOTER):
        return None
    (crc,) = struct.unpack_from("<Q", buf, offset + BLOCK_HEADER.size)
    if core.crc64(memoryview(buf)[offset:offset + BLOCK_HEADER.size]) != crc:
        return None
    _, kind, _, _, length, records, first_ts, last_ts, payload_crc = fields
    return BlockHeader(offset, kind, length, records, first_ts, last_ts, payload_crc)


def pack_footer(total_records: int, payload_crc: int, index: list[BlockHeader], offset: int) -> bytes:
    """A footer block to be written at ``offset`` (its trailer points back at it)."""
    body = FOOTER_FIXED.pack(total_records, payload_crc, len(index))
    body += b"".join(INDEX_ENTRY.pack(b.offset, b.records, b.first_ts, b.last_ts) for b in index)
    trailer = TRAILER.pack(TRAILER_MAGIC, offset, 0)
    body += trailer + struct.pack("<Q", core.crc64(trailer))
    first = index[0].first_ts if index else 0
    last = index[-1].last_ts if index else 0
    return pack_block(BLOCK_FOOTER, body, total_records, first, last)


def read_trailer(buf: Buf) -> int | None:
    """Offset of the footer block named by a valid trailer at the end of ``buf``, else None."""
    if len(buf) < TRAILER_SIZE:
        return None
    start = len(buf) - TRAILER_SIZE
    magic, footer_offset, _ = TRAILER.unpack_from(buf, start)
    (crc,) = struct.unpack_from("<Q", buf, start + TRAILER.size)
    if magic != TRAILER_MAGIC or core.crc64(memoryview(buf)[start:start + TRAILER.size]) != crc:
        return None
    return footer_offset


def unpack_footer(buf: Buf, block: BlockHeader) -> tuple[int, int, list[tuple[int, int, int, int]]]:
    """(total records, payload CRC, index entries) from a footer block whose CRC was checked."""
    p = block.payload_offset
    total, payload_crc, count = FOOTER_FIXED.unpack_from(buf, p)
    p += FOOTER_FIXED.size
    if FOOTER_FIXED.size + count * INDEX_ENTRY.size + TRAILER_SIZE != block.payload_length:
        raise CorruptDataError(f"footer at offset {block.offset}: its index size does not match its length",
                               offset=block.offset)
    entries = [INDEX_ENTRY.unpack_from(buf, p + i * INDEX_ENTRY.size) for i in range(count)]
    return total, payload_crc, entries
