"""Audit, verify and recover chronicle files."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from chronoledger import core
from chronoledger._fsutil import fsync_dir
from chronoledger.chronicle import format as fmt
from chronoledger.chronicle.reader import MODES, ChronicleReader, Layout, apply_rewind, intact_blocks, scan
from chronoledger.chronicle.replay import StepFactory, replay_records
from chronoledger.chronicle.writer import lock_for_writing
from chronoledger.errors import CorruptDataError, TruncatedError


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class AuditReport:
    path: str
    title: str = "audit"
    checks: list[Check] = field(default_factory=list)
    damage: list[dict] = field(default_factory=list)
    replay: dict | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def as_dict(self) -> dict:
        return {"path": self.path, "ok": self.ok, "checks": [c.as_dict() for c in self.checks],
                "damage": self.damage, "replay": self.replay}

    def text(self) -> str:
        lines = [f"{self.title} of {self.path}: {'OK' if self.ok else 'FAILED'}"]
        for c in self.checks:
            lines.append(f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
        return "\n".join(lines)


def verify(path, *, progress: Callable[[int], None] | None = None) -> AuditReport:
    """Check every checksum of a file: header, block headers, block payloads,
    the payload CRC and record count in the footer."""
    path = Path(path)
    report = AuditReport(str(path), "verify")
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            report.add("header", False, "the file is empty")
            return report
        with fmt.mapped(fh.fileno()) as buf:
            try:
                layout = scan(buf, str(path), check_payloads=True)
            except (CorruptDataError, TruncatedError) as exc:
                report.add("header", False, str(exc))
                return report
            h = layout.header
            floats = f"scale {h.scale!r}" if h.version == 1 else "floats as their precision says"
            report.add("header", True, f"{h.schema_name} chronicle, format {h.version}, {floats}, CRC-64 ok")
            report.damage = [d.as_dict() for d in layout.damage]
            for d in layout.damage:
                if d.kind == "footer":       # reported as the footer check below
                    continue
                report.add("damage", False, f"{d.kind} at offset {d.start}..{d.end}: {d.reason}"
                                            + (f" ({d.records} records)" if d.records else ""))
            total = sum(b.rows for b in layout.blocks)
            tied = "; each block of this file and in its place" if h.version == 2 else ""
            report.add("blocks", True, f"{len(layout.blocks)} data blocks, {total} records, payload CRC-64 "
                                       f"of each block checked{tied}")
            if progress:
                progress(size)
            footer = layout.footer
            broken = layout.damaged_footer
            if broken is not None:
                intact = "intact" if not layout.corrupt else "found by scanning (see the damage above)"
                report.add("footer", False,
                           f"the footer (block index) at offset {broken.start}..{broken.end} is damaged "
                           f"({broken.reason}); the {len(layout.blocks)} data blocks before it are {intact}; "
                           f"readers find them by scanning; `chronoledger chronicle recover` rewrites the footer")
                return report
            if footer is None or footer.end != size:
                report.add("footer", not layout.damage,
                           "no footer at the end: the file was not closed cleanly (a writer may still be "
                           "appending); blocks were found by scanning")
                return report
            try:
                ftotal, pcrc, entries, _ = fmt.unpack_footer(buf, footer, h.version)
            except CorruptDataError as exc:
                report.add("footer", False, str(exc))
                return report
            actual = core.crc64(memoryview(buf)[layout.header.length:footer.offset])
            report.add("payload crc", actual == pcrc,
                       f"CRC-64 of bytes {layout.header.length}..{footer.offset} is {actual:016x}, "
                       f"footer says {pcrc:016x}")
            indexed = sum(e[1] for e in entries)
            report.add("record count", ftotal == total == indexed,
                       f"footer says {ftotal}, its index {indexed}, the blocks hold {total}")
    return report


def audit(path, step_factory: StepFactory | None = None, *,
          progress: Callable[[int], None] | None = None) -> AuditReport:
    """:func:`verify`, plus decoded checks: record counts per block, monotonic
    timestamps, block time ranges, and (with a step factory) replay hashes."""
    report = verify(path)
    report.title = "audit"
    if not report.ok:
        return report
    with ChronicleReader(path, "skip") as reader:
        prev = None
        bad_order = None
        bad_range = None
        for i, bh in enumerate(reader.blocks):
            ts = reader.read_timestamps(i)
            if len(ts) != bh.rows:
                bad_range = f"block {i} at offset {bh.offset} decodes to {len(ts)} records, its header says {bh.rows}"
            elif len(ts) and (int(ts[0]) != bh.first_ts or int(ts[-1]) != bh.last_ts):
                bad_range = f"block {i} at offset {bh.offset}: timestamps {int(ts[0])}..{int(ts[-1])}, header " \
                            f"says {bh.first_ts}..{bh.last_ts}"
            if bad_order is None and len(ts):
                if np.any(ts[1:] < ts[:-1]):
                    j = int(np.argmax(ts[1:] < ts[:-1]))
                    bad_order = f"block {i}: timestamp {int(ts[j + 1])} follows {int(ts[j])}"
                elif prev is not None and int(ts[0]) < prev:
                    bad_order = f"block {i} starts at {int(ts[0])}, before the previous block's end {prev}"
                prev = int(ts[-1])
            if progress:
                progress(1)
        report.add("block ranges", bad_range is None, bad_range or "every block's count and time range match its data")
        report.add("monotonic timestamps", bad_order is None, bad_order or "timestamps never go backwards")
        if step_factory is not None:
            if reader.schema != fmt.SCHEMA_CYCLE:
                report.add("replay", False, "replay needs a cycle chronicle")
                return report
            meta = reader.metadata
            rep = replay_records(reader.records(), step_factory, meta.get("config") or {},
                                 reader.initial_seed or 0, reader.precision, progress)
            report.replay = rep.as_dict()
            if rep.first_divergence is not None:
                d = rep.first_divergence
                detail = (f"{rep.divergences} of {rep.records} records differ; first at index {d.index} "
                          f"(timestamp {d.timestamp}): {', '.join(d.fields)}")
            else:
                detail = f"all {rep.records} records regenerate with identical hashes"
            report.add("replay", rep.ok, detail)
    return report


@dataclass
class RecoveryReport:
    path: str
    mode: str
    changed: bool
    records_kept: int
    records_dropped: int
    bytes_dropped: int
    damage: list[dict]
    message: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def recover(path, mode: str = "tolerate") -> RecoveryReport:
    """Bring a damaged or unclosed chronicle back to a clean, closed state.

    ``tolerate`` truncates a torn tail (or a damaged footer) back to the last
    whole block (only records never flushed are lost) and refuses if the
    middle is corrupt; ``strict`` changes nothing and raises on any damage;
    ``skip`` rewrites the file without its damaged blocks (atomically,
    streaming the kept blocks to a temporary file) and reports what was lost.
    A valid footer is written at the end in every case.  Records dropped are
    counted from the footer when the file ends in a valid one (it counts
    blocks whose own header is damaged), else from the damaged blocks' headers.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    path = Path(path)
    fd = os.open(path, os.O_RDWR)
    try:
        lock_for_writing(fd, path)
        size = os.fstat(fd).st_size
        if size == 0:
            raise TruncatedError(f"{path}: the file is empty, not a chronicle; nothing to recover", offset=0)
        with fmt.mapped(fd) as buf:
            layout = scan(buf, str(path), check_payloads=True)
            damage = [d.as_dict() for d in layout.damage]
            kept = sum(b.rows for b in layout.blocks)
            dropped = sum(d.records for d in layout.damage)
            if layout.footer_total is not None:
                dropped = max(dropped, layout.footer_total - kept)
            # corruption with no readable block header, and no footer to count its records
            uncounted = [d for d in layout.corrupt if d.records == 0] if layout.footer_total is None else []
            footer_ok = fmt.read_trailer(buf) is not None and layout.footer is not None \
                and layout.footer.end == size
            if mode == "strict" and layout.damage:
                d = layout.damage[0]
                raise CorruptDataError(f"{path}: {d.kind} at offset {d.start} ({d.reason}); strict mode "
                                       f"changes nothing", offset=d.start)
            if mode == "tolerate" and layout.corrupt:
                d = layout.corrupt[0]
                raise CorruptDataError(f"{path}: corrupt data at offset {d.start}..{d.end} ({d.reason}) with "
                                       f"valid blocks after it; use --mode skip to salvage them", offset=d.start)
            if not layout.damage and footer_ok:
                return RecoveryReport(str(path), mode, False, kept, 0, 0, [], "no damage; nothing to do")
            unknown = (f"; {len(uncounted)} damaged stretch(es) had no readable block header and the file no "
                       f"footer to count them, so more records may have been lost") if uncounted else ""
            if mode == "skip" and layout.corrupt:
                tmp, data_end, kept = _write_without_damage(path, fd, buf, layout, kept)
            else:
                tmp, end = None, layout.clean_end
                with memoryview(buf) as view, view[layout.header.length:end] as kept_bytes:
                    payload_crc = core.crc64(kept_bytes)
        if tmp is not None:
            _replace(tmp, path)
            return RecoveryReport(str(path), mode, True, kept, dropped, max(0, size - data_end), damage,
                                  f"rewrote the file without {len(layout.damage)} damaged stretch(es){unknown}")
        os.ftruncate(fd, end)
        footer = fmt.pack_footer(kept, payload_crc, list(layout.blocks), end, layout.header, layout.next_sequence,
                                 layout.meta_offsets)
        os.pwrite(fd, footer, end)
        os.fsync(fd)
        fsync_dir(path)
        if layout.damaged_footer is not None:
            msg = (f"replaced a damaged footer of {size - end} bytes at offset {end} "
                   f"({layout.damaged_footer.reason}); every data block was intact")
        elif size != end:
            msg = f"truncated a torn tail of {size - end} bytes at offset {end}"
        else:
            msg = "the file was not closed; wrote its footer"
        return RecoveryReport(str(path), mode, True, kept, dropped, size - end, damage, msg + unknown)
    finally:
        os.close(fd)


def _write_without_damage(path: Path, fd: int, buf: fmt.Buf, layout: Layout, kept: int) -> tuple[str, int, int]:
    """Stream the header and the valid blocks of ``buf`` to a temporary file
    beside ``path``, then a new footer, and fsync it; returns its name, where
    its data blocks end, and the records it holds.  The map is read in
    place, a block at a time, so memory use does not grow with the file.

    Format 2: every intact block of this file (data and meta, even one out
    of its place) is taken in the order of its number, once, and numbered
    anew, so blocks that were swapped come back in order and the new file
    has no gaps; rewinds among the meta blocks apply as they did."""
    header = layout.header
    if header.version == 1:
        blocks = list(layout.blocks)
    else:
        blocks = intact_blocks(buf, header)
    tmp_fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(tmp_fd, os.fstat(fd).st_mode & 0o7777)      # keep the permissions of the file replaced
        with os.fdopen(tmp_fd, "wb") as out, memoryview(buf) as view:
            pos = header.length
            with view[:pos] as head:
                out.write(head)
            old_index: list[fmt.BlockHeader] = []      # at their offsets in buf, where rewinds read them
            moved: dict[int, tuple[int, int]] = {}      # old offset -> (new offset, new number)
            meta: list[int] = []
            crc = 0
            for seq, b in enumerate(blocks):
                with view[b.payload_offset:b.end] as payload:
                    head_bytes = fmt.pack_block_header(b.kind, b.payload_length, b.payload_crc, b.records,
                                                       b.first_ts, b.last_ts, header, seq)
                    out.write(head_bytes)
                    out.write(payload)
                    crc = core.crc64(payload, core.crc64(head_bytes, crc))
                moved[b.offset] = (pos, seq)
                if b.kind == fmt.BLOCK_META:
                    meta.append(pos)
                    entry = fmt.read_meta(buf, b, str(path))
                    if entry["op"] == "rewind":         # read_meta checked that "to" is a u64
                        apply_rewind(buf, old_index, header, entry["to"], str(path))
                else:
                    old_index.append(b)
                pos += len(head_bytes) + b.payload_length
            index = [replace(b, offset=moved[b.offset][0], sequence=moved[b.offset][1]) for b in old_index]
            kept = sum(b.rows for b in index)
            out.write(fmt.pack_footer(kept, crc, index, pos, header, len(blocks), meta))
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        _unlink(tmp)
        raise
    return tmp, pos, kept


def _replace(tmp: str, path: Path) -> None:
    """Rename the fsynced ``tmp`` over ``path`` and make the rename durable."""
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    fsync_dir(path)


def _unlink(name: str) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


__all__ = ["AuditReport", "Check", "RecoveryReport", "audit", "recover", "verify"]
