"""Chronicles in object storage (any fsspec filesystem: s3://, gs://, az://,
http(s)://, memory://), read a range at a time.

A remote file is read into a sparse copy of itself: a temporary local file
of the remote one's size, memory-mapped (its holes take no disk and no
memory; what is fetched lives in the page cache, which the kernel can
write out and evict, so a file larger than memory can be read), into which ranged
reads fetch first the header, the trailer and the footer with its block
index, the meta blocks and the headers of the data blocks, and then, when
a block is about to be decoded, that block.  The reader checks every
block's CRC-64 as it reads a local file's, so a range that came back wrong
is named as damage, never read as data.  A time range of a large file thus
fetches a small part of it (the bytes fetched are counted).
"""

from __future__ import annotations

import mmap
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chronoledger.chronicle import Chronicle
from chronoledger.chronicle import format as fmt
from chronoledger.chronicle.reader import ChronicleReader
from chronoledger.errors import ConfigError, ExistsError, MissingDependencyError, MissingFileError, StorageError

#: What the first ranged reads take from each end of a file (a header with its metadata, a footer's index).
EDGE = 16 * 1024
#: A file this small is fetched whole in one read.
SMALL = 1024 * 1024


@dataclass(frozen=True)
class RemoteSource:
    """A file on an fsspec filesystem."""
    fs: Any
    path: str
    url: str

    def __str__(self) -> str:
        return self.url


def url_to_fs(url: str, storage_options: dict | None = None) -> tuple[Any, str]:
    try:
        import fsspec                    # optional (the dataset extra): imported where a URL is read
    except ImportError:
        raise MissingDependencyError(f"{url}: reading a URL needs fsspec: pip install 'chronoledger[dataset]'") \
            from None
    if storage_options is not None and not isinstance(storage_options, dict):
        raise ConfigError(f"{url}: storage_options must be a dict, got {type(storage_options).__name__}")
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:                 # the protocol's package is missing (s3fs, gcsfs...)
        raise MissingDependencyError(f"{url}: {exc}") from None
    except (ValueError, TypeError) as exc:     # an unknown protocol, or options its filesystem does not take
        raise ConfigError(f"{url}: {exc}") from None
    return fs, path


def storage_error(url: str, exc: BaseException, what: str = "") -> StorageError:
    """Whatever a filesystem raised (botocore's, aiohttp's, OSError...) as a StorageError naming the URL."""
    return StorageError(f"{url}: {what}{type(exc).__name__}: {exc}")


class RemoteFile:
    """A remote chronicle as a sparse local copy, fetched by ranges (see the module)."""

    def __init__(self, src: RemoteSource):
        self.src = src
        try:
            self.size = int(src.fs.size(src.path))
        except FileNotFoundError:
            raise MissingFileError(f"{src.url}: no such file") from None
        except Exception as exc:   # noqa: BLE001 -- a filesystem's own errors (botocore's...), named
            raise storage_error(src.url, exc) from None
        self._file = tempfile.TemporaryFile(prefix="chronoledger-remote-")
        self._file.truncate(max(self.size, 1))          # a hole: no disk, no memory until written
        self.map = mmap.mmap(self._file.fileno(), max(self.size, 1))
        self.fetched = 0                         # bytes read from storage
        self.requests = 0
        self._have: list[tuple[int, int]] = []   # ranges present
        self._lock = threading.Lock()

    def get(self, ranges: list[tuple[int, int]]) -> None:
        """Fetch ``[start, end)`` ranges not present yet, in one batched call."""
        with self._lock:
            todo = sorted({(max(0, a), min(self.size, b)) for a, b in ranges if b > a} - set(self._have))
            todo = [r for r in todo if not any(h0 <= r[0] and r[1] <= h1 for h0, h1 in self._have)]
            if not todo:
                return
            try:
                parts = self.src.fs.cat_ranges([self.src.path] * len(todo), [a for a, _ in todo], [b for _, b in todo])
            except Exception as exc:   # noqa: BLE001 -- a filesystem's own errors, named
                raise storage_error(self.src.url, exc, "a ranged read failed: ") from None
            for (a, b), data in zip(todo, parts):
                if isinstance(data, BaseException):
                    raise StorageError(f"{self.src.url}: bytes {a}..{b}: {data}")
                if len(data) != b - a:
                    raise StorageError(f"{self.src.url}: bytes {a}..{b}: {len(data)} came back")
                self.map[a:b] = data
                self.fetched += len(data)
                self._have.append((a, b))
            self.requests += 1

    def reader(self, mode: str) -> "RemoteReader":
        """A reader of the file: its index fetched (the whole file for a
        small one, or when its footer cannot be trusted, or ``mode`` checks
        every block's checksum up front)."""
        if self.size <= SMALL or mode != "tolerate":
            self.get([(0, self.size)])
            return RemoteReader.of(self, mode)
        self.get([(0, EDGE), (self.size - EDGE, self.size)])
        header = fmt.read_header(self.map, self.src.url) if self._header_fits() else None
        if header is None:
            self.get([(0, self.size)])
            return RemoteReader.of(self, mode)
        footer_at = fmt.read_trailer(self.map)
        if footer_at is None:
            self.get([(0, self.size)])           # no footer: the blocks are found by walking them all
            return RemoteReader.of(self, mode)
        self.get([(footer_at, self.size)])
        v = header.version
        fb = fmt.parse_block_header(self.map, footer_at, v)
        try:
            if fb is None:
                raise ValueError("no footer block")
            entries, metas = fmt.unpack_footer(self.map, fb, v)[2:4]
        except Exception:       # noqa: BLE001 -- a footer that does not parse is damage: read the file whole
            self.get([(0, self.size)])
            return RemoteReader.of(self, mode)
        hsize = fmt.BLOCK_HEADER_SIZES[v]
        self.get([(off, off + hsize) for off, *_ in entries] + [(off, off + hsize) for off in metas])
        lengths = []
        for off in metas:
            mb = fmt.parse_block_header(self.map, off, v)
            if mb is not None:
                lengths.append((off, mb.end))
        self.get(lengths)
        return RemoteReader.of(self, mode)

    def _header_fits(self) -> bool:
        """Whether the header, with its metadata, lies within what was fetched (else fetch more)."""
        for _ in range(8):
            try:
                fmt.read_header(self.map, self.src.url)
                return True
            except Exception:   # noqa: BLE001 -- a header cut short by the first read: read further
                have = max(b for a, b in self._have if a == 0)
                if have >= self.size:
                    return False
                self.get([(0, min(self.size, have * 4))])
        return False


class RemoteReader(ChronicleReader):
    """A ChronicleReader over a RemoteFile: a data block's bytes are fetched before it is decoded."""

    remote: RemoteFile

    @classmethod
    def of(cls, remote: RemoteFile, mode: str) -> "RemoteReader":
        reader = cls.from_buffer(remote.map, remote.src.url, mode)
        assert isinstance(reader, RemoteReader)
        reader.remote = remote
        return reader

    def prefetch(self, blocks: list[int]) -> None:
        self.remote.get([(self.blocks[i].offset, self.blocks[i].end) for i in blocks])

    def close(self) -> None:
        """The sparse copy is the RemoteFile's (a dataset reads a file more than once): it stays open."""
        self._map = b""


@contextmanager
def open_remote(url: str, mode: str = "w", *, storage_options: dict | None = None,
                **options: Any) -> Iterator[Chronicle]:
    """Write a chronicle to object storage: ``with open_remote("s3://b/runs/r1.cmeta", config=...) as ch: ...``.

    The chronicle is written to a local file (object stores cannot append),
    and uploaded whole when the block ends without an error; then it is
    read back from storage and checked (its size and its trailer), so a
    failed or partial upload is a StorageError, and the object at ``url``
    is either the old one or the whole new one.  ``mode`` is "w" or "x"
    (refuse an existing object); ``options`` are Chronicle.open's."""
    if mode not in ("w", "x"):
        raise ConfigError(f"open_remote: mode {mode!r}: a remote chronicle is written whole, mode 'w' or 'x'")
    fs, path = url_to_fs(url, storage_options)
    try:
        exists = fs.exists(path)
    except Exception as exc:   # noqa: BLE001 -- a filesystem's own errors, named
        raise storage_error(url, exc) from None
    if mode == "x" and exists:
        raise ExistsError(f"{url} exists; open it with mode 'w' to replace it")
    with tempfile.TemporaryDirectory(prefix="chronoledger-upload-") as tmp:
        local = Path(tmp) / "run.cmeta"
        with Chronicle.open(local, "w", **options) as ch:
            yield ch
        size = local.stat().st_size
        try:
            fs.put(str(local), path)
            got = int(fs.size(path))
            tail = fs.cat_file(path, start=max(0, got - fmt.TRAILER_SIZE), end=got)
        except Exception as exc:   # noqa: BLE001 -- a filesystem's own errors, named
            raise storage_error(url, exc, "the upload failed: ") from None
        if got != size or tail != local.read_bytes()[-fmt.TRAILER_SIZE:]:
            raise StorageError(f"{url}: the upload did not arrive whole ({got:,} of {size:,} bytes)")
