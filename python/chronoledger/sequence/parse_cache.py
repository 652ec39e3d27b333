"""The parse cache: what :func:`~chronoledger.sequence.reader.parse_file` gave
for each file of a user folder, kept on disk in the mirrors' folder
(``data/chronoledger/.parse_cache``, never among Chronos's own files), so a
nightly sync reads again only the files that changed.  The mirrors are still
rebuilt in full from the whole read tree, so they are the same, byte for
byte, as a sync with no cache would build.

A file's cached result is used only when the file is the same file with the
same bytes:

- its path under the user folder, and what the walk found it to hold (kind
  and key), are the same;
- its size, modification time (ns), change time (ns), inode and device are
  the same; and
- the CRC-64 of its bytes (:func:`chronoledger.core.crc64`) is the same.
  The stat alone could miss an edit that keeps the size within the
  timestamps' granularity (a few ms on many disks), or a tool that restores
  the old modification time; the bytes are read again for every hit, which
  costs a fraction of parsing them.

The whole cache is dropped, and the folder read as if there were none, when
its format version, the package's version or PyYAML's differ from this
process's (the rules that turn bytes into values may have changed), and when
the file is not one this module wrote: a bad magic, a bad length, a CRC-64
that does not match, or data that does not unpickle with the few types a
parsed file can hold.  The file is unpickled with a restricted unpickler
that refuses every class but ``datetime``'s (a YAML value may be a date or
a time stamp), so a foreign file cannot run code.

The cache is written (atomically: temporary file, fsync, rename) right after
the folder is read, under the sync's lock, and only when something changed.
"""

from __future__ import annotations

import datetime
import io
import logging
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import yaml

from chronoledger._fsutil import atomic_write_bytes
from chronoledger._version import __version__
from chronoledger.core import crc64
from chronoledger.sequence.reader import FileTask, ParsedFile, parse_file
from chronoledger.sequence.records import Item, Problem, rel_path

__all__ = ["CACHE_FILE", "FORMAT", "ParseCache"]

_logger = logging.getLogger("chronoledger.sequence")

#: The cache's file name, in the mirrors' folder.
CACHE_FILE = ".parse_cache"
#: Raised whenever what an entry holds, or how it is encoded, changes.
FORMAT = 1
_MAGIC = b"CLPARSE\x00"
_HEADER = struct.Struct("<8sIQQ")          # magic, format, CRC-64 of the rest, length of the rest

#: The only classes a cached value may name: what PyYAML's safe constructors build beyond builtins.
_ALLOWED = {("datetime", name): getattr(datetime, name)
            for name in ("date", "datetime", "time", "timedelta", "timezone")}


def _stamp() -> str:
    """What the cached values depend on besides the files: the code that reads them."""
    return f"chronoledger {__version__}; PyYAML {yaml.__version__}"


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        cls = _ALLOWED.get((module, name))
        if cls is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not a value a parsed file holds")
        return cls


def _encode(parsed: ParsedFile) -> tuple:
    value = parsed.value
    if isinstance(value, Item):
        value = (value.slug, value.type, value.name, value.path, value.data, value.mtime)
    return (parsed.rel, isinstance(parsed.value, Item), value,
            [(p.path, p.line, p.reason, p.skipped, p.note) for p in parsed.problems])


def _decode(task: FileTask, entry: tuple) -> ParsedFile:
    rel, is_item, value, problems = entry
    if is_item:
        value = Item(*value)
    return ParsedFile(task, rel, value, [Problem(*p) for p in problems])


class ParseCache:
    """One sync's parse cache: :meth:`parse` is :func:`parse_file`, answered
    from the cache for files that did not change; :meth:`save` writes what
    this sync read (only the files it read: deleted files leave the cache)."""

    def __init__(self, path: Path, entries: dict[str, tuple] | None = None):
        self.path = path
        self.old: dict[str, tuple] = entries or {}
        self.new: dict[str, tuple] = {}
        self.hits = 0
        self.misses = 0

    @classmethod
    def load(cls, folder: Path) -> ParseCache:
        """The cache kept in the mirrors' ``folder``; empty when there is
        none, or it is from another version, or not one this module wrote."""
        path = folder / CACHE_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            _logger.info("%s: the parse cache cannot be read (%s); every file is read", path, exc)
            return cls(path)
        entries = _entries(raw)
        if entries is None:
            _logger.info("%s: not a parse cache of this version; every file is read", path)
        return cls(path, entries)

    def parse(self, root: str, task: FileTask) -> ParsedFile:
        """:func:`parse_file`, from the cache when the file is unchanged."""
        try:
            st = os.stat(task.path)
            with open(task.path, "rb") as fh:
                crc = crc64(fh.read())
        except OSError:                     # parse_file says why the file cannot be read
            return parse_file(root, task)
        rel = rel_path(root, task.path)
        ident = (task.kind, task.key, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, crc)
        entry = self.old.get(rel)
        if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == ident:
            try:
                parsed = _decode(task, entry[1])
            except Exception:               # an entry of an unexpected shape: read the file
                parsed = None
            if parsed is not None:
                self.hits += 1
                self.new[rel] = entry
                return parsed
        self.misses += 1
        parsed = parse_file(root, task)
        self.new[rel] = (ident, _encode(parsed))
        return parsed

    @property
    def changed(self) -> bool:
        """Whether the cache on disk differs from what this sync read."""
        return self.misses > 0 or len(self.new) != len(self.old)

    def save(self) -> None:
        """Write the entries of this sync's files, if any changed.  A cache
        that cannot be written is logged and left: the mirrors never depend on it."""
        if not self.changed:
            return
        stamp = _stamp().encode()
        body = struct.pack("<I", len(stamp)) + stamp + pickle.dumps(self.new, protocol=5)
        try:
            atomic_write_bytes(self.path, _HEADER.pack(_MAGIC, FORMAT, crc64(body), len(body)) + body)
        except OSError as exc:
            _logger.warning("%s: the parse cache cannot be written (%s); the next sync reads every file",
                            self.path, exc)


def _entries(raw: bytes) -> dict[str, tuple] | None:
    """The entries of a cache file's bytes, or None for a file that is not
    a cache of this format and version (or is damaged)."""
    if len(raw) < _HEADER.size:
        return None
    magic, fmt, crc, length = _HEADER.unpack_from(raw)
    body = memoryview(raw)[_HEADER.size:]
    if magic != _MAGIC or fmt != FORMAT or length != len(body) or crc64(body) != crc:
        return None
    if len(body) < 4:
        return None
    (n,) = struct.unpack_from("<I", body)
    if bytes(body[4:4 + n]) != _stamp().encode():
        return None
    try:
        entries = _Unpickler(io.BytesIO(body[4 + n:])).load()
    except Exception:                       # damaged or foreign bytes behind a good header: no cache
        return None
    if not isinstance(entries, dict):
        return None
    return entries
