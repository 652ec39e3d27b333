"""Reading a ``.cmeta`` file: header, block index, damage, decoding, queries."""

from __future__ import annotations

import bisect
import concurrent.futures
import json
import logging
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from chronoledger import core
from chronoledger._chronicle import build_cycle_records
from chronoledger.chronicle import columns as colfmt
from chronoledger.chronicle import format as fmt
from chronoledger.chronicle.columns import Column, Labels, Optional
from chronoledger.chronicle.precision import Precision
from chronoledger.chronicle.records import DYNAMIC_PREFIX, FIXED_COLUMNS, CycleRecord, EventRecord, cycle_records
from chronoledger.errors import (ChecksumError, ConfigError, CorruptDataError, MissingFileError, StorageError,
                                 TruncatedError, UnsupportedError)

# Result dtypes of the schema columns that to_numpy decodes in place.
_RESULT_DTYPES: dict[str, type[np.generic]] = {
    "timestamp": np.uint64, "seed_state": np.uint64, "loss_value": np.float32, "coherence": np.float32,
    "tensor_signature.0": np.float32, "tensor_signature.1": np.float32, "tensor_signature.2": np.float32}

MODES = ("tolerate", "strict", "skip")
_U64_FIELDS = ("timestamp", "seed_state")       # the record fields that are u64
# numpy kinds each fixed cycle column may decode to ("U": phase labels)
_CYCLE_KINDS = {"timestamp": "ui", "phase": "U", "loss_value": "f", "coherence": "f", "tensor_signature.0": "f",
                "tensor_signature.1": "f", "tensor_signature.2": "f", "action_code": "iu", "seed_state": "ui"}


def _u64(t: int) -> np.uint64:
    """A bound for searchsorted over u64 timestamps, clamped to u64 (a Python
    int would make numpy compare as floats: slow, and inexact past 2**53)."""
    return np.uint64(min(max(int(t), 0), 2**64 - 1))
_logger = logging.getLogger("chronoledger.chronicle")


@dataclass
class Damage:
    """A damaged stretch of a file: where it starts and ends, what it is."""

    start: int
    end: int
    kind: str            # "torn-tail", "corrupt" or "footer" (the last footer, with intact blocks before it)
    reason: str
    records: int = 0     # records the damaged blocks held, when a block header or the index says

    def as_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "kind": self.kind, "reason": self.reason,
                "records": self.records}


@dataclass
class Layout:
    """What opening a file found."""

    header: fmt.FileHeader
    size: int
    blocks: list[fmt.BlockHeader]                   # the data blocks read, in order (a rewind's drops left out)
    footer: fmt.BlockHeader | None = None           # the footer the trailer points at, if valid
    footer_total: int | None = None
    footer_payload_crc: int | None = None
    damage: list[Damage] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)    # version 2: the amendments, in file order
    meta_offsets: list[int] = field(default_factory=list)
    next_sequence: int = 0                          # version 2: the number the next block takes

    @property
    def torn_tail(self) -> Damage | None:
        return next((d for d in self.damage if d.kind == "torn-tail"), None)

    @property
    def corrupt(self) -> list[Damage]:
        return [d for d in self.damage if d.kind == "corrupt"]

    @property
    def damaged_footer(self) -> Damage | None:
        """The footer at the end of the file, if it is damaged (the data blocks before it are intact)."""
        return next((d for d in self.damage if d.kind == "footer"), None)

    @property
    def clean_end(self) -> int:
        """Where the last whole data block ends: the file length after a recovery."""
        tail = self.torn_tail or self.damaged_footer
        return tail.start if tail else self.size


def _next_valid_block(buf: fmt.Buf, start: int, size: int, version: int) -> fmt.BlockHeader | None:
    magic = fmt.BLOCK_MAGIC.to_bytes(4, "little")
    pos = start
    while True:
        pos = buf.find(magic, pos, size)
        if pos < 0:
            return None
        bh = fmt.parse_block_header(buf, pos, version)
        if bh is not None and bh.end <= size and core.crc64(buf[bh.payload_offset:bh.end]) == bh.payload_crc:
            return bh
        pos += 1


def _block_ok(buf: fmt.Buf, bh: fmt.BlockHeader) -> bool:
    return core.crc64(memoryview(buf)[bh.payload_offset:bh.end]) == bh.payload_crc


def _foreign(bh: fmt.BlockHeader, header: fmt.FileHeader) -> str | None:
    """Why a version-2 block does not belong to this file, or None."""
    if header.version == 1:
        return None
    if bh.salt != header.salt:
        return f"a block of another chronicle (its salt is {bh.salt:016x}, this file's {header.salt:016x})"
    if bh.schema != header.schema:
        return (f"a block of a {fmt.SCHEMA_NAMES.get(bh.schema, bh.schema)} chronicle in a "
                f"{header.schema_name} chronicle")
    return None


def live_rows(buf: fmt.Buf, bh: fmt.BlockHeader, header: fmt.FileHeader, upto: int, path: str) -> tuple[int, int]:
    """(records with timestamp <= ``upto``, the last of their timestamps) of a data block."""
    payload = memoryview(buf)[bh.payload_offset:bh.end]
    ts = colfmt.decode_block(payload, bh.records, header.scale, f"{path}: block at offset {bh.offset}",
                             {"timestamp"}).get("timestamp")
    if ts is None:
        raise CorruptDataError(f"{path}: block at offset {bh.offset} lacks the column 'timestamp' of its schema",
                               offset=bh.offset)
    if not isinstance(ts, np.ndarray) or ts.dtype.kind not in "iu":
        raise CorruptDataError(f"{path}: block at offset {bh.offset}: its timestamps are not integers",
                               offset=bh.offset)
    k = int(np.searchsorted(ts, _u64(upto), "right"))
    return k, int(ts[k - 1]) if k else bh.first_ts


def apply_rewind(buf: fmt.Buf, blocks: list[fmt.BlockHeader], header: fmt.FileHeader, upto: int,
                 path: str) -> int:
    """Drop, from the data blocks before a rewind, every record newer than
    ``upto``: whole blocks, and the tail of the one that straddles it.
    Returns how many records were dropped."""
    dropped = 0
    while blocks and blocks[-1].first_ts > upto:
        dropped += blocks.pop().rows
    if blocks and blocks[-1].last_ts > upto:
        last = blocks[-1]
        k, last_ts = live_rows(buf, last, header, upto, path)
        k = min(k, last.rows)
        dropped += last.rows - k
        if k:
            blocks[-1] = replace(last, live=k, last_ts=last_ts)
        else:
            blocks.pop()
    return dropped


def intact_blocks(buf: fmt.Buf, header: fmt.FileHeader) -> list[fmt.BlockHeader]:
    """Every whole block of a version-2 file that belongs to it (its salt and
    schema), data and meta, wherever it lies, in the order of its number,
    each number once: what a salvaging rewrite keeps."""
    size = len(buf)
    found: dict[int, fmt.BlockHeader] = {}
    pos = header.length
    while True:
        bh = _next_valid_block(buf, pos, size, header.version)
        if bh is None:
            break
        if bh.kind in (fmt.BLOCK_DATA, fmt.BLOCK_META) and _foreign(bh, header) is None:
            found.setdefault(bh.sequence, bh)
        pos = bh.end
    return [found[k] for k in sorted(found)]


def _from_footer(buf: fmt.Buf, header: fmt.FileHeader, footer_at: int, size: int, path: str) -> Layout | None:
    """The layout a valid footer at the end of the file gives, or None when it cannot be trusted."""
    v = header.version
    fb = fmt.parse_block_header(buf, footer_at, v)
    if fb is None or fb.kind != fmt.BLOCK_FOOTER or fb.end != size or not _block_ok(buf, fb) \
            or _foreign(fb, header) is not None:
        return None
    try:
        total, pcrc, entries, metas = fmt.unpack_footer(buf, fb, v)
    except CorruptDataError:
        return None
    blocks: list[fmt.BlockHeader] = []
    previous = -1
    for off, rows, first, last in entries:
        bh = fmt.parse_block_header(buf, off, v)
        if bh is None or bh.kind != fmt.BLOCK_DATA or bh.end > footer_at or _foreign(bh, header) is not None \
                or bh.first_ts != first:
            return None
        if v == 1:
            if bh.records != rows or bh.last_ts != last:
                return None
        else:
            if bh.sequence <= previous or not 0 < rows <= bh.records or last > bh.last_ts \
                    or (rows == bh.records and last != bh.last_ts):
                return None
            previous = bh.sequence
            if rows < bh.records:
                bh = replace(bh, live=rows, last_ts=last)
        blocks.append(bh)
    if sum(b.rows for b in blocks) != total:
        return None
    if any(b <= a for a, b in zip(metas, metas[1:])):
        return None                                 # meta blocks are listed in file order, each once
    layout = Layout(header, size, blocks, fb, total, pcrc, next_sequence=fb.sequence + 1)
    for off in metas:
        mb = fmt.parse_block_header(buf, off, v)
        if mb is None or mb.kind != fmt.BLOCK_META or mb.end > footer_at or _foreign(mb, header) is not None \
                or not _block_ok(buf, mb):
            return None
        layout.meta.append(fmt.read_meta(buf, mb, path))
        layout.meta_offsets.append(off)
    return layout


def _footer_disagrees(buf: fmt.Buf, layout: Layout, footer: fmt.BlockHeader, total: int, payload_crc: int,
                      entries: list[tuple[int, int, int, int]], metas: list[int], check_payloads: bool) -> str | None:
    """Why the (CRC-valid) footer at the end of a file cannot be its index,
    or None.  With damage in the middle it is only asked to add up (its
    index then counts the records of the damaged blocks); otherwise it must
    list the blocks found, and (``check_payloads``) its payload CRC-64 hold."""
    indexed = sum(e[1] for e in entries)
    if indexed != total:
        return f"its index holds {indexed:,} records, its total says {total:,}"
    if layout.corrupt:
        return None
    v2 = layout.header.version == 2
    found = [(b.offset, b.rows if v2 else b.records, b.first_ts, b.last_ts) for b in layout.blocks]
    for k, (entry, block) in enumerate(zip(entries, found)):
        if tuple(entry) != block:
            return (f"its index entry {k} (offset, records, first and last timestamp) is {tuple(entry)}, the "
                    f"file's block {block}")
    if len(entries) != len(found):
        return f"its index lists {len(entries):,} data blocks, the file has {len(found):,}"
    if v2 and metas != layout.meta_offsets:
        k = next((k for k, (a, b) in enumerate(zip(metas, layout.meta_offsets)) if a != b),
                 min(len(metas), len(layout.meta_offsets)))
        return (f"its list of meta blocks differs from the file's at entry {k} (it lists {len(metas):,}, the file "
                f"has {len(layout.meta_offsets):,})")
    if check_payloads:
        with memoryview(buf) as view, view[layout.header.length:footer.offset] as covered:
            actual = core.crc64(covered)
        if actual != payload_crc:
            return (f"its payload CRC-64 {payload_crc:016x} is not that of bytes {layout.header.length}.."
                    f"{footer.offset} ({actual:016x})")
    return None


def scan(buf: fmt.Buf, path: str, check_payloads: bool = False) -> Layout:
    """Find the blocks of a file: through its footer if it has a valid one,
    otherwise by walking the block headers from the start.

    Damage followed by a valid block is "corrupt"; damage that runs to the end
    of the file is a "torn-tail" (a writer died mid-block), or "footer" when
    it starts at the last footer (a bit flip in it, or a footer cut short):
    the data blocks before it are intact and were found by scanning.  With
    ``check_payloads`` every block's payload CRC is checked too; otherwise only
    the last block's (which is what tells a torn tail apart).  When the file
    ends in a valid footer, its index gives the records of damaged blocks
    whose own headers are unreadable.

    In a version-2 file every block carries the file's salt, its schema and
    its number: a block of another file, or one out of its place
    (duplicated, swapped, or with blocks missing before it) is corruption
    too, named as such.  Meta blocks (amendments) are read as they come, and
    a rewind among them drops the newer records of the blocks before it.
    """
    size = len(buf)
    header = fmt.read_header(buf, path)
    v = header.version
    footer_at = fmt.read_trailer(buf)
    if footer_at is not None and not check_payloads:
        fast = _from_footer(buf, header, footer_at, size, path)
        if fast is not None:
            return fast
    layout = Layout(header, size, [])
    pos = header.length
    last_footer = None
    expected = 0
    while pos < size:
        bh, why = fmt.check_block_header(buf, pos, v)
        bad: str | None = None
        if bh is None:
            bad = f"no valid block header: {why}"
        elif bh.end > size:
            bad = f"the block claims {bh.payload_length} payload bytes, only {size - bh.payload_offset} remain"
        elif (check_payloads or bh.kind == fmt.BLOCK_META) and not _block_ok(buf, bh):
            bad = f"{ {fmt.BLOCK_FOOTER: 'footer', fmt.BLOCK_META: 'meta block'}.get(bh.kind, 'block')} " \
                  f"payload CRC-64 mismatch"
        else:                               # a whole block: is it this file's, and in its place?
            assert bh is not None
            misplaced = _foreign(bh, header)
            if misplaced is None and v == 2 and bh.sequence < expected:
                misplaced = (f"block #{bh.sequence} where #{expected} belongs (a block repeated, or blocks "
                             f"swapped)")
            if misplaced is not None:
                layout.damage.append(Damage(pos, bh.end, "corrupt", misplaced,
                                            bh.records if bh.kind == fmt.BLOCK_DATA else 0))
                pos = bh.end
                continue
            if v == 2 and bh.sequence > expected and not (layout.damage and layout.damage[-1].end == pos):
                layout.damage.append(Damage(pos, pos, "corrupt",
                                            f"blocks #{expected}..#{bh.sequence - 1} are missing before this one"))
            expected = bh.sequence + 1
            if bh.kind == fmt.BLOCK_DATA:
                layout.blocks.append(bh)
            elif bh.kind == fmt.BLOCK_META:
                entry = fmt.read_meta(buf, bh, path)
                layout.meta.append(entry)
                layout.meta_offsets.append(bh.offset)
                if entry["op"] == "rewind":         # read_meta checked that "to" is a u64
                    apply_rewind(buf, layout.blocks, header, entry["to"], path)
            else:
                last_footer = bh
            pos = bh.end
            continue
        nxt = _next_valid_block(buf, pos + 1, size, v)
        claimed = bh.records if bh is not None and bh.kind == fmt.BLOCK_DATA else 0
        if nxt is None:
            if (bh is not None and bh.kind == fmt.BLOCK_FOOTER) or pos == footer_at:
                layout.damage.append(Damage(pos, size, "footer", bad))
            else:
                layout.damage.append(Damage(pos, size, "torn-tail", bad, claimed))
            break
        layout.damage.append(Damage(pos, nxt.offset, "corrupt", bad, claimed))
        pos = nxt.offset
    layout.next_sequence = expected
    # the last block decides between a clean end and a torn tail
    if not check_payloads and layout.blocks and layout.torn_tail is None:
        last_block = layout.blocks[-1]
        tail_is_last = (last_footer is None or last_footer.offset < last_block.offset) and \
            all(off < last_block.offset for off in layout.meta_offsets)
        if tail_is_last and not _block_ok(buf, last_block):
            layout.blocks.pop()
            layout.damage.append(Damage(last_block.offset, size, "torn-tail", "last block payload CRC-64 mismatch",
                                        last_block.records))
            layout.next_sequence = last_block.sequence if v == 2 else 0
    if last_footer is not None and last_footer.end == size:
        # the file ends in a footer: it is the index only if the trailer points at it, its CRC holds
        # and what it says agrees with the blocks
        footer_bad: str | None = None
        if not _block_ok(buf, last_footer):
            footer_bad = "footer payload CRC-64 mismatch"
        elif footer_at != last_footer.offset:
            footer_bad = "the trailer at the end of the file is not valid" if footer_at is None else \
                f"the trailer points at offset {footer_at}, not at the footer"
        else:
            try:
                total, pcrc, entries, metas = fmt.unpack_footer(buf, last_footer, v)
            except CorruptDataError as exc:
                footer_bad = str(exc)
            else:
                footer_bad = _footer_disagrees(buf, layout, last_footer, total, pcrc, entries, metas, check_payloads)
                if footer_bad is None:
                    layout.footer, layout.footer_total, layout.footer_payload_crc = last_footer, total, pcrc
                    for d in layout.damage:      # the index counts the records of blocks whose header is unreadable
                        indexed = sum(records for off, records, _, _ in entries if d.start <= off < d.end)
                        d.records = max(d.records, indexed)
        if footer_bad is not None:
            layout.damage.append(Damage(last_footer.offset, size, "footer", footer_bad))
            if v == 2:
                layout.next_sequence = last_footer.sequence
    return layout


def header_precision(header: fmt.FileHeader, path: str) -> Precision:
    """The precision a file's header gives; a header whose ``precision``
    cannot be read is corrupt (it was checked when the file was created)."""
    try:
        return Precision.from_metadata(header.metadata, header.schema_name, header.scale)
    except ConfigError as exc:
        raise CorruptDataError(f"{path}: header metadata: {exc}", offset=header.metadata_offset) from None


def config_history(metadata: dict[str, Any], amendments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every version of a run's configuration, oldest first: ``{"version",
    "config", "at", "reason"}`` (version 0, the creation's, has no ``at``)."""
    out: list[dict[str, Any]] = []
    if metadata.get("config") is not None:
        out.append({"version": 0, "config": metadata["config"], "at": None, "reason": None})
    for e in amendments:
        if e.get("op") == "config":
            out.append({"version": e.get("version"), "config": e.get("config"), "at": e.get("at"),
                        "reason": e.get("reason")})
    return out


def run_tags(amendments: list[dict[str, Any]]) -> list[str]:
    """A run's tags, in the order they were first added (removed ones left out)."""
    tags: list[str] = []
    for e in amendments:
        if e.get("op") == "tags":
            for t in e.get("add") or []:
                if isinstance(t, str) and t not in tags:
                    tags.append(t)
            for t in e.get("remove") or []:
                if t in tags:
                    tags.remove(t)
    return tags


class ChronicleReader:
    """Read-only access to a chronicle file (a snapshot of it as it was when opened).

    ``mode`` says what to do about damage: "tolerate" (default) ignores a torn
    tail and raises on corruption in the middle; "strict" raises on any
    damage; "skip" leaves damaged blocks out and records them in ``damage``.
    """

    def __init__(self, path: str | os.PathLike[str], mode: str = "tolerate"):
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
        self.path = Path(path)
        self.mode = mode
        try:
            self._fh: Any = open(self.path, "rb")
        except FileNotFoundError:
            raise MissingFileError(f"{self.path}: no such chronicle") from None
        except OSError as exc:       # a folder, a missing permission, a failing disk: named, as the store errors are
            raise StorageError(exc.errno, f"{self.path}: cannot be read: {exc.strerror or exc}",
                               str(self.path)) from None
        try:
            size = os.fstat(self._fh.fileno()).st_size
            self._map: mmap.mmap | bytes = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            self.layout = scan(self._map, str(self.path), check_payloads=(mode != "tolerate"))
        except BaseException:
            self.close()
            raise
        self._ready()

    @classmethod
    def from_buffer(cls, buf: mmap.mmap | bytes, name: str, mode: str = "tolerate") -> "ChronicleReader":
        """A reader of the chronicle in ``buf`` (the whole file's bytes, or a
        copy of its size where the bytes a read needs are filled in before it
        reads them, see :meth:`prefetch`); ``name`` names it in messages.
        The reader closes ``buf`` when it is an mmap."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self = cls.__new__(cls)
        self.path, self.mode, self._fh, self._map = Path(name), mode, None, buf
        try:
            self.layout = scan(buf, name, check_payloads=(mode != "tolerate"))
        except BaseException:
            self.close()
            raise
        self._ready()
        return self

    def prefetch(self, blocks: list[int]) -> None:
        """Make the bytes of data blocks ``blocks`` readable: here they are
        (the file is mapped); a reader of a remote copy fetches them."""

    def _ready(self) -> None:
        self._check_mode()
        self._first = [b.first_ts for b in self.layout.blocks]
        self._last = [b.last_ts for b in self.layout.blocks]
        self._starts = np.cumsum([0] + [b.rows for b in self.layout.blocks])

    def _check_mode(self) -> None:
        lay = self.layout
        if self.mode == "skip":
            if lay.damage:
                _logger.info("%s: left out %d damaged region(s) (reader mode skip); the reader's damage lists them",
                             self.path, len(lay.damage))
            return
        corrupt = lay.corrupt
        if corrupt:
            d = corrupt[0]
            after = sum(b.rows for b in lay.blocks if b.offset >= d.end)
            what = (f"with {after:,} records in valid blocks after it; `chronoledger chronicle recover --mode skip` "
                    f"salvages them") if after else \
                "with no valid block after it; `chronoledger chronicle recover --mode skip` keeps the blocks before it"
            raise CorruptDataError(f"{self.path}: corrupt data at offset {d.start}..{d.end} ({d.reason}) {what}",
                                   offset=d.start)
        if self.mode == "strict" and lay.torn_tail is not None:
            d = lay.torn_tail
            raise TruncatedError(f"{self.path}: torn tail at offset {d.start} ({d.reason}); "
                                 f"`chronoledger chronicle recover` truncates it", offset=d.start)
        if self.mode == "strict" and lay.damaged_footer is not None:
            d = lay.damaged_footer
            raise CorruptDataError(f"{self.path}: the footer (block index) at offset {d.start} is damaged "
                                   f"({d.reason}); the {len(lay.blocks):,} data blocks before it are intact; "
                                   f"`chronoledger chronicle recover` rewrites the footer", offset=d.start)
        tail = lay.torn_tail or lay.damaged_footer
        if tail is not None:            # tolerated: a writer may be mid-block, or one died there
            _logger.info("%s: reading the %d whole blocks before %s at offset %d (%s)", self.path, len(lay.blocks),
                         "a torn tail" if tail is lay.torn_tail else "a damaged footer", tail.start, tail.reason)

    # --- properties -----------------------------------------------------
    @property
    def header(self) -> fmt.FileHeader:
        return self.layout.header

    @property
    def schema(self) -> int:
        return self.layout.header.schema

    @property
    def scale(self) -> float | None:
        """A format-1 file's one fixed-point scale; None in format 2 (see :attr:`precision`)."""
        return self.layout.header.scale

    @property
    def metadata(self) -> dict[str, Any]:
        return self.layout.header.metadata

    @property
    def precision(self) -> Precision:
        """How the file stores its floats (chronicle.precision)."""
        return header_precision(self.layout.header, str(self.path))

    @property
    def initial_seed(self) -> int | None:
        """The run's initial seed from the header, or None."""
        seed = self.metadata.get("initial_seed")
        if seed is not None and not fmt.is_u64(seed):
            raise CorruptDataError(f"{self.path}: header metadata: initial_seed {seed!r} is not a u64",
                                   offset=self.layout.header.metadata_offset)
        return seed

    @property
    def amendments(self) -> list[dict[str, Any]]:
        """The file's amendments (config versions, tags, notes, rewinds), in order."""
        return list(self.layout.meta)

    @property
    def blocks(self) -> list[fmt.BlockHeader]:
        return self.layout.blocks

    @property
    def damage(self) -> list[Damage]:
        return self.layout.damage

    def __len__(self) -> int:
        return int(self._starts[-1])

    # --- decoding ---------------------------------------------------------
    def read_block(self, i: int, names: set[str] | None = None, check: bool = True,
                   rows: slice | None = None, into: dict[str, npt.NDArray[Any]] | None = None,
                   skip: set[str] | None = None, threads: int | None = None) -> dict[str, Column]:
        """Decode data block ``i`` (checking its CRC-64 first); only the
        records ``rows`` of it if given; ``into`` as in columns.decode_block.
        A dictionary (phase / event_type) column comes as :class:`Labels`."""
        bh = self.layout.blocks[i]
        payload = memoryview(self._map)[bh.payload_offset:bh.end]
        where = f"{self.path}: block {i} at offset {bh.offset}"
        if check:
            self._check_crc(i, payload)
        if bh.live >= 0:                # a rewind kept only the first records of this block
            if rows is None:
                rows = slice(0, bh.live)
            else:
                rows = slice(min(rows.start or 0, bh.live), min(bh.live if rows.stop is None else rows.stop,
                                                                 bh.live))
        return colfmt.decode_block(payload, bh.records, self.scale, where, names, rows, into, skip, threads)

    def read_timestamps(self, i: int) -> npt.NDArray[np.integer[Any]]:
        """The timestamps of data block ``i`` (checking its CRC-64 first)."""
        ts = self.read_block(i, {"timestamp"}).get("timestamp")
        bh = self.layout.blocks[i]
        if ts is None:
            raise CorruptDataError(f"{self.path}: block {i} at offset {bh.offset} lacks the column 'timestamp' "
                                   f"of its schema", offset=bh.offset)
        if not isinstance(ts, np.ndarray) or ts.dtype.kind not in "iu":
            raise CorruptDataError(f"{self.path}: block {i} at offset {bh.offset}: its timestamp column does not "
                                   f"hold integers", offset=bh.offset)
        return ts

    def rows_in(self, i: int, start: int | None, end: int | None) -> tuple[int, int, npt.NDArray[Any]]:
        """Rows ``[a, b)`` of data block ``i`` whose timestamps lie in
        ``[start, end)`` (None: unbounded), and those timestamps; the block's
        CRC-64 is checked first.

        Where the range lies inside the block's time span, the block's first
        and last timestamps say about where its rows are: only a window of
        timestamps around that guess is stored (the codec still sums the
        deltas before it), and the whole prefix only when the window does not
        hold both ends.  A range query then touches few fresh pages."""
        bh = self.layout.blocks[i]
        payload = memoryview(self._map)[bh.payload_offset:bh.end]
        where = f"{self.path}: block {i} at offset {bh.offset}"
        self._check_crc(i, payload)
        n = bh.records if bh.live < 0 else bh.live
        span = bh.last_ts - bh.first_ts
        if start is not None and end is not None and bh.first_ts < start < end <= bh.last_ts and span > 0:
            margin = 256 + n // 64
            lo = max(0, int((start - bh.first_ts) / span * n) - margin)
            hi = min(n, int((end - bh.first_ts) / span * n) + margin)
            window = colfmt.int_values(payload, bh.records, "timestamp", lo, hi, where)
            if len(window) and (lo == 0 or int(window[0]) < start) and (hi == n or int(window[-1]) >= end):
                a = int(np.searchsorted(window, _u64(start), "left"))
                b = max(a, int(np.searchsorted(window, _u64(end), "left")))
                return lo + a, lo + b, window[a:b].copy()     # (from 0 the window is a reused buffer)
        limit = n
        if end is not None and bh.first_ts < end <= bh.last_ts and span > 0:
            limit = min(n, int((end - bh.first_ts) / span * n * 1.125) + 256)
        ts = colfmt.int_values(payload, bh.records, "timestamp", 0, limit, where)
        if end is not None and limit < n and (not len(ts) or int(ts[-1]) < end):     # the guess fell short
            ts = colfmt.int_values(payload, bh.records, "timestamp", 0, n, where)
        a = 0 if start is None else int(np.searchsorted(ts, _u64(start), "left"))
        b = len(ts) if end is None else int(np.searchsorted(ts, _u64(end), "left"))
        b = max(a, b)
        return a, b, ts[a:b].copy()

    def column_names(self) -> list[str]:
        """Every column of the file: the schema's, then metric/value columns in order of appearance."""
        names = [n for n, _ in FIXED_COLUMNS[self.schema]]
        seen = set(names)
        for bh in self.layout.blocks:
            payload = memoryview(self._map)[bh.payload_offset:bh.end]
            try:
                directory = colfmt.read_directory(payload, f"{self.path}: block at offset {bh.offset}")
            except CorruptDataError:
                continue        # reading that block reports it, with its CRC
            for name, _, _, _ in directory:
                if name not in seen:
                    seen.add(name)
                    names.append(name)
        return names

    def _concat(self, parts: list[dict[str, Column]], names: list[str], counts: list[int],
                done: dict[str, npt.NDArray[Any]] | None = None, raw: bool = False) -> dict[str, Any]:
        """Join blocks' columns; those in ``done`` were decoded in place
        already.  ``raw``: dictionary columns stay :class:`Labels` (codes and
        names) and optional float columns :class:`Optional` (values and
        presence); otherwise they become strings and floats (NaN: absent)."""
        out: dict[str, Any] = {}
        for name in names:
            if done and name in done:
                out[name] = done[name]
                continue
            arrays: list[npt.NDArray[Any]] = []
            labels: list[Labels] = []
            optionals: list[Optional] = []
            for part, n in zip(parts, counts):
                column = part.get(name)
                if column is None:      # a metric that had not appeared yet in this block
                    optionals.append(Optional.absent(n))
                elif isinstance(column, Optional):
                    optionals.append(column)
                elif isinstance(column, Labels):
                    labels.append(column)
                else:
                    arrays.append(column)
            if labels and (arrays or optionals):
                raise CorruptDataError(f"{self.path}: column {name!r} holds strings in some blocks, "
                                       f"not in others")
            if labels:
                joined = Labels.concat(labels) if len(labels) > 1 else labels[0]
                out[name] = joined if raw else joined.strings()
            elif arrays and optionals:          # format 1: NaN-for-absent arrays beside absent blocks
                pieces: list[npt.NDArray[Any]] = []
                for part, n in zip(parts, counts):
                    column = part.get(name)
                    if column is None or isinstance(column, Labels):
                        pieces.append(np.full(n, np.nan))
                    else:
                        pieces.append(column.values if isinstance(column, Optional) else column)
                out[name] = np.concatenate(pieces)
            elif optionals:
                joined_opt = Optional.concat(optionals) if len(optionals) > 1 else optionals[0]
                out[name] = joined_opt if raw else joined_opt.values
            elif not arrays:
                out[name] = np.empty(0)
            else:
                out[name] = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        return out

    def to_numpy(self, columns: list[str] | None = None, *, categorical: bool = False) -> dict[str, Any]:
        """Every record as numpy columns (name -> array).  ``categorical``:
        phase / event_type come as :class:`~chronoledger.chronicle.columns.Labels`
        (``codes``: uint32, ``names``: the labels; ``strings()`` makes the
        strings), much faster and smaller than one string object per record."""
        cols = self._read_range(0, len(self.layout.blocks), columns, raw=True)
        return {k: (v.strings() if isinstance(v, Labels) and not categorical else
                    v.values if isinstance(v, Optional) else v) for k, v in cols.items()}

    def columns(self, columns: list[str] | None = None) -> dict[str, Any]:
        """Every record as decoded columns: numpy arrays, :class:`Labels` for
        phase / event_type and :class:`Optional` (values, presence) for the
        metric / value columns of format 2 (a stored NaN is present, an
        absent value is not): what to_pandas and to_arrow build on."""
        return self._read_range(0, len(self.layout.blocks), columns, raw=True)

    def _check_crc(self, i: int, payload: memoryview) -> None:
        bh = self.layout.blocks[i]
        if core.crc64(payload) != bh.payload_crc:
            raise ChecksumError(f"{self.path}: block {i} at offset {bh.offset}: payload CRC-64 mismatch; valid data "
                                f"follows this block, so it is corruption, not a torn tail (`chronoledger chronicle "
                                f"recover --mode skip` salvages the rest)", offset=bh.offset)

    def _check_counts(self, lo: int, hi: int) -> None:
        """Check that blocks lo..hi hold the records their headers say (the
        header of each one's timestamp column: nothing is decoded) before
        arrays are sized by those counts.  A block that does not is reported
        as damaged if its CRC fails, else as corrupt."""
        for i in range(lo, hi):
            bh = self.layout.blocks[i]
            where = f"{self.path}: block {i} at offset {bh.offset}"
            with memoryview(self._map)[bh.payload_offset:bh.end] as payload:
                try:
                    held = colfmt.column_values(payload, "timestamp", where)
                    if held is not None and held != bh.records:
                        raise CorruptDataError(f"{where}: its header says {bh.records:,} records, its timestamp "
                                               f"column holds {held:,}", offset=bh.offset)
                except CorruptDataError:
                    self._check_crc(i, payload)
                    raise

    def _read_range(self, lo: int, hi: int, columns: list[str] | None, raw: bool = False) -> dict[str, Any]:
        want = set(columns) if columns is not None else None
        counts = [self.layout.blocks[i].rows for i in range(lo, hi)]
        # The schema's numeric columns are decoded straight into their result
        # arrays, block by block: no per-block arrays to allocate and join.
        total = sum(counts)
        self._check_counts(lo, hi)
        names = [name for name, _ in FIXED_COLUMNS[self.schema] if name in _RESULT_DTYPES and
                 (want is None or name in want)]
        try:
            finals = {name: np.empty(total, _RESULT_DTYPES[name]) for name in names}
        except MemoryError:
            need = total * sum(np.dtype(_RESULT_DTYPES[name]).itemsize for name in names)
            raise UnsupportedError(f"{self.path}: reading {total:,} records at once needs {need:,} bytes, more "
                                   f"than this machine can give; read them by time range (query_columns) or "
                                   f"block by block") from None
        def one(i: int, start: int, n: int) -> dict[str, Column]:
            views = {k: v[start:start + n] for k, v in finals.items()}
            part = self.read_block(i, want, into=views, threads=1)
            missing = [k for k in finals if k not in part]
            if missing:
                bh = self.layout.blocks[i]
                raise CorruptDataError(f"{self.path}: block {i} at offset {bh.offset} lacks the column "
                                       f"{missing[0]!r} of its schema", offset=bh.offset)
            for k, view in views.items():       # a column that could not be decoded in place
                got = part[k]
                if got is not view:
                    if not isinstance(got, np.ndarray) or len(got) != n or \
                            got.dtype.kind not in ("iu" if view.dtype.kind in "iu" else "f"):
                        bh = self.layout.blocks[i]
                        raise CorruptDataError(f"{self.path}: block {i} at offset {bh.offset}: its column "
                                               f"{k!r} is not of its schema's type", offset=bh.offset)
                    view[...] = got
            return part

        starts = np.concatenate([[0], np.cumsum(counts)]).tolist()
        jobs = list(zip(range(lo, hi), starts, counts))
        if len(jobs) > 1 and (os.cpu_count() or 1) > 1:
            # Whole blocks in parallel, each decoded and converted on one
            # thread into its slice of the results: converting (dequantize,
            # float bits) on the caller's thread after a parallel decode of
            # the columns left one core idle for most of a load.
            futures = [core.executor().submit(one, *job) for job in jobs]
            # every block's decode ends before an error goes up: the caller
            # may then close the memory map the others still read
            concurrent.futures.wait(futures)
            parts = [f.result() for f in futures]
        else:
            parts = [one(*job) for job in jobs]
        if columns is not None:
            names = list(columns)
        else:   # the schema's columns, then metrics in order of first appearance
            names = [n for n, _ in FIXED_COLUMNS[self.schema]]
            for part in parts:
                names += [k for k in part if k not in names]
        return self._concat(parts, names, counts, finals, raw)

    def query(self, start: int, end: int, columns: list[str] | None = None) -> dict[str, npt.NDArray[Any]]:
        """Columns of the records with ``start <= timestamp < end``.

        Finds the blocks by binary search over the block index; only those
        blocks are read and decoded.
        """
        lo = bisect.bisect_left(self._last, start)
        hi = max(lo, bisect.bisect_left(self._first, end))
        want = None if columns is None else set(columns)
        parts: list[dict[str, Column]] = []
        counts: list[int] = []
        for i in range(lo, hi):
            # the timestamps say which rows of the block are wanted; the other
            # columns are then cut to those rows before any conversion
            a, b, ts = self.rows_in(i, start, end)
            if a < b:
                part = self.read_block(i, want, check=False, rows=slice(a, b), skip={"timestamp"})
                if want is None or "timestamp" in want:
                    part = {"timestamp": ts, **part}
                parts.append(part)
                counts.append(b - a)
        if columns is not None:
            names = list(columns)
        else:
            names = [n for n, _ in FIXED_COLUMNS[self.schema]]
            for part in parts:
                names += [k for k in part if k not in names]
        return self._concat(parts, names, counts)

    def records(self, start: int | None = None, end: int | None = None) -> Iterator[CycleRecord | EventRecord]:
        """Records (CycleRecord or EventRecord) with ``start <= timestamp <
        end`` (either may be None), in timestamp order, block by block.  A
        block only partly in the range has its timestamps decoded first and
        only the rows in range decoded into records."""
        lo = 0 if start is None else bisect.bisect_left(self._last, start)
        hi = len(self.layout.blocks) if end is None else bisect.bisect_left(self._first, end)
        for i in range(lo, hi):
            bh = self.layout.blocks[i]
            if (start is not None and bh.first_ts < start) or (end is not None and bh.last_ts >= end):
                a, b, ts = self.rows_in(i, start, end)
                if a >= b:
                    continue
                # the CRC was checked with the timestamps, which are not decoded twice
                cols = self.read_block(i, check=False, rows=slice(a, b), skip={"timestamp"})
                cols["timestamp"] = ts
            else:
                cols = self.read_block(i)
            yield from self._records_of(cols, i)

    def _records_of(self, cols: dict[str, Column], i: int) -> Iterator[CycleRecord | EventRecord]:
        """The records of decoded columns: each column turned into Python values once."""
        bh = self.layout.blocks[i]
        missing = [name for name, _ in FIXED_COLUMNS[self.schema] if name not in cols]
        if missing:
            raise CorruptDataError(f"{self.path}: block {i} at offset {bh.offset} lacks the column "
                                   f"{missing[0]!r} of its schema", offset=bh.offset)
        prefix = DYNAMIC_PREFIX[self.schema]
        if self.schema == fmt.SCHEMA_CYCLE:
            self._check_cycle_kinds(cols, i)
            fast = self._cycle_records(cols, i, prefix)
            if fast is not None:
                yield from fast
                return
        py: dict[str, list[Any]] = {}
        extras: list[tuple[str, list[Any], list[bool]]] = []
        for k, v in cols.items():
            if isinstance(v, Labels):
                py[k] = v.strings().tolist()
            elif isinstance(v, Optional):                       # absent stays absent; a stored NaN is a value
                extras.append((k[len(prefix):], v.values.tolist(), v.present.tolist()))
            elif k.startswith(prefix):
                if v.dtype.kind != "f":
                    raise CorruptDataError(f"{self.path}: block {i} at offset {bh.offset}: column {k!r} does "
                                           f"not hold floats", offset=bh.offset)
                extras.append((k[len(prefix):], v.tolist(), (~np.isnan(v)).tolist()))   # format 1: NaN = absent
            elif k in _U64_FIELDS and v.dtype.kind == "i":     # a u64 stored signed: its bits, as to_numpy reads it
                py[k] = v.astype(np.int64, copy=False).view(np.uint64).tolist()
            else:
                py[k] = v.tolist()
        n = len(py["timestamp"])
        if any(len(c) != n for c in py.values()) or any(len(e[1]) != n for e in extras):
            raise CorruptDataError(f"{self.path}: block {i} at offset {bh.offset}: its columns hold different "
                                   f"numbers of records", offset=bh.offset)
        metric_rows: list[dict[str, float]] = [{} for _ in range(n)]
        for name, values, present in extras:
            for j, (value, here) in enumerate(zip(values, present)):
                if here:
                    metric_rows[j][name] = float(value)
        try:
            if self.schema == fmt.SCHEMA_CYCLE:
                # tolist() gave Python ints, floats and strs: no conversion per value
                yield from cycle_records(
                    (ts, phase, loss, coh, (s0, s1, s2), None if action < 0 else action, seed, metrics)
                    for ts, phase, loss, coh, s0, s1, s2, action, seed, metrics in zip(
                        py["timestamp"], py["phase"], py["loss_value"], py["coherence"], py["tensor_signature.0"],
                        py["tensor_signature.1"], py["tensor_signature.2"], py["action_code"], py["seed_state"],
                        metric_rows))
            else:
                for ts, etype, payload, named in zip(py["timestamp"], py["event_type"], py["payload"], metric_rows):
                    obj = json.loads(payload)
                    if not isinstance(obj, dict):
                        raise ValueError(f"its payload {payload[:40]!r} is not a JSON object")
                    yield EventRecord(int(ts), str(etype), obj, named)
        # a value of the wrong kind, or JSON nested deeper than the parser goes: not what we write
        except (TypeError, ValueError, RecursionError) as exc:
            raise CorruptDataError(f"{self.path}: block {i} at offset {bh.offset}: a record cannot be read: "
                                   f"{exc}", offset=bh.offset) from None

    def _cycle_records(self, cols: dict[str, Column], i: int, prefix: str) -> list[CycleRecord] | None:
        """The records of a cycle block's decoded columns, built in compiled
        code; None where a column has a dtype only the general path reads
        (checked by _check_cycle_kinds first)."""
        phase, action = cols["phase"], cols["action_code"]
        if not isinstance(phase, Labels) or not isinstance(action, np.ndarray) or action.dtype != np.int16:
            return None
        bh = self.layout.blocks[i]

        def u64(name: str) -> npt.NDArray[np.uint64]:     # a u64 stored signed: its bits, as to_numpy reads it
            v = cols[name]
            assert isinstance(v, np.ndarray)
            return np.ascontiguousarray(v.astype(np.int64, copy=False).view(np.uint64) if v.dtype.kind == "i"
                                        else v.astype(np.uint64, copy=False))

        def f64(name: str) -> npt.NDArray[np.float64]:
            v = cols[name]
            assert isinstance(v, np.ndarray)
            return np.ascontiguousarray(v, dtype=np.float64)

        ts = u64("timestamp")
        n = len(ts)
        metrics: list[dict[str, float]] | None = None
        for k, v in cols.items():
            if not k.startswith(prefix):
                continue
            if isinstance(v, Optional):                 # absent stays absent; a stored NaN is a value
                values, present = v.values, v.present
            elif isinstance(v, np.ndarray) and v.dtype.kind == "f":
                values, present = v, ~np.isnan(v)       # format 1: NaN = absent
            else:
                raise CorruptDataError(f"{self.path}: block {i} at offset {bh.offset}: column {k!r} does not "
                                       f"hold floats", offset=bh.offset)
            if len(values) != n or len(present) != n:
                raise CorruptDataError(f"{self.path}: block {i} at offset {bh.offset}: its columns hold "
                                       f"different numbers of records", offset=bh.offset)
            if metrics is None:
                metrics = [{} for _ in range(n)]
            name = k[len(prefix):]
            for j, value in zip(np.flatnonzero(present).tolist(), values[present].tolist()):
                metrics[j][name] = value
        try:
            return build_cycle_records(CycleRecord, ts, np.ascontiguousarray(phase.codes, dtype=np.uint32),
                                       list(phase.names), f64("loss_value"), f64("coherence"),
                                       f64("tensor_signature.0"), f64("tensor_signature.1"),
                                       f64("tensor_signature.2"), action, u64("seed_state"), metrics)
        except ValueError as exc:
            raise CorruptDataError(f"{self.path}: block {i} at offset {bh.offset}: {exc}", offset=bh.offset) from None

    def _check_cycle_kinds(self, cols: dict[str, Column], i: int) -> None:
        """Each fixed cycle column holds the kind of number its field is."""
        for name, kinds in _CYCLE_KINDS.items():
            col = cols[name]
            kind = "U" if isinstance(col, Labels) else col.dtype.kind if isinstance(col, np.ndarray) else "?"
            if kind not in kinds:
                bh = self.layout.blocks[i]
                raise CorruptDataError(f"{self.path}: block {i} at offset {bh.offset}: column {name!r} does not "
                                       f"hold the numbers of its field", offset=bh.offset)

    def __iter__(self) -> Iterator[CycleRecord | EventRecord]:
        return self.records()

    def close(self) -> None:
        m = getattr(self, "_map", None)
        if isinstance(m, mmap.mmap):
            try:
                m.close()
            except BufferError:
                # numpy views of the map are still alive; the map goes with them
                pass
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()

    def __enter__(self) -> ChronicleReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
