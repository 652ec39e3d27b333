"""File helpers shared by every layer that writes files."""

from __future__ import annotations

import errno
import os
import secrets
from typing import IO, Any
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chronoledger.errors import ChronoledgerError, ExistsError, StorageError

#: os.open flags of a new temporary file: never follow or reuse an existing name
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old file or the new one.

    The bytes go to a temporary file in the same folder, are fsynced, and the
    file is renamed over ``path``; the folder is fsynced so the rename itself
    survives a power loss.  A replaced file keeps its permissions; a new one
    gets what ``open()`` would give it (0o666 less the umask, applied by the
    OS: the process umask is never read or changed, as other threads may be
    creating files meanwhile).
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"the folder {target.parent} does not exist", str(target))
    try:
        keep: int | None = os.stat(target).st_mode & 0o7777     # the permissions of the file being replaced
    except FileNotFoundError:
        keep = None
    # owner-only until its permissions are set when it replaces a file; 0o666 & ~umask when it is new
    fd, tmp = _create_temporary(target, 0o600 if keep is not None else 0o666)
    try:
        if keep is not None:
            os.fchmod(fd, keep)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(target)


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, replace: bool = True) -> Iterator[Path]:
    """A temporary file beside ``path`` for the body to write by name; when
    the body succeeds it is fsynced and renamed to ``path`` (and the folder
    fsynced), so a crash leaves the old file or the new one, never half.

    For writers that need a file name rather than bytes (a chronicle writer,
    a stream too large to hold in memory).  The temporary file exists, empty,
    when the body starts.  With ``replace=False`` an existing ``path`` is
    never replaced: the new file is linked into place, and FileExistsError is
    raised (leaving ``path`` as it was) if ``path`` exists by then.  If the body
    raises, the temporary file is removed and ``path`` is untouched.  A
    replaced file's permissions are kept, as :func:`atomic_write_bytes` keeps them.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"the folder {target.parent} does not exist", str(target))
    keep: int | None = None
    if replace:
        try:
            keep = os.stat(target).st_mode & 0o7777
        except FileNotFoundError:
            keep = None
    fd, name = _create_temporary(target, 0o600 if keep is not None else 0o666)
    tmp = Path(name)
    try:
        try:
            if keep is not None:
                os.fchmod(fd, keep)
        finally:
            os.close(fd)
        yield tmp
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, target)
        else:
            _link_no_clobber(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(target)


def _link_no_clobber(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target`` unless ``target`` exists (ExistsError)."""
    try:
        os.link(tmp, target)            # atomic: FileExistsError if the name is taken
    except FileExistsError:
        raise ExistsError(errno.EEXIST, "the file exists already", str(target)) from None
    except OSError:                     # a file system without hard links: check, then rename
        if os.path.lexists(target):
            raise ExistsError(errno.EEXIST, "the file exists already", str(target)) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def _create_temporary(target: Path, mode: int) -> tuple[int, str]:
    """A new, empty file ``.NAME.XXXXXXXX.tmp`` beside ``target``, created with
    ``mode`` (less the umask): its descriptor, open for writing, and its name."""
    for _ in range(100):
        tmp = str(target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp"))
        try:
            return os.open(tmp, _TMP_FLAGS, mode), tmp
        except FileExistsError:       # a name taken by chance: draw another
            continue
    raise ExistsError(f"{target}: no free name for a temporary file in {target.parent}")


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync the folder holding ``path``, so a new or renamed entry survives a power loss."""
    if hasattr(os, "O_DIRECTORY"):
        dfd = os.open(Path(path).parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def check_output(path: str | os.PathLike[str], *, force: bool, what: str) -> None:
    """Refuse an output ``path`` that is a folder (StorageError) or that
    exists without ``force`` (ExistsError): before any work is done."""
    target = Path(path)
    if target.is_dir():
        raise StorageError(errno.EISDIR, f"{what}: {target} is a folder; name the file to write", str(target))
    if not force and os.path.lexists(target):
        raise ExistsError(errno.EEXIST, f"{what}: {target} exists; force=True (--force) replaces it", str(target))


@contextmanager
def output_file(path: str | os.PathLike[str], *, force: bool, what: str) -> Iterator[IO[bytes]]:
    """A binary file for an export to write, put in place atomically
    (:func:`atomic_path`) when the body succeeds.  An existing file is
    refused with ExistsError unless ``force`` (checked before the body runs,
    and again when the file is put in place), and left as it was; a folder,
    a missing folder or a failing write is a StorageError naming the file.
    ``what`` names the job in the messages."""
    target = Path(path)
    check_output(target, force=force, what=what)
    try:
        with atomic_path(target, replace=force) as tmp, open(tmp, "wb") as fh:
            yield fh
    except ChronoledgerError:
        raise
    except OSError as exc:
        raise StorageError(exc.errno, f"{what}: {target}: {exc.strerror or exc}", str(target)) from None


class CountingSink:
    """A binary stream for ParquetWriter that counts what it wrote (a pipe cannot tell its position)
    and that ParquetWriter does not close."""

    closed = False

    def __init__(self, fh: IO[bytes]):
        self._fh = fh
        self._pos = 0

    def write(self, data: Any) -> int:
        n = self._fh.write(data)
        self._pos += len(memoryview(data))
        return n if n is not None else len(memoryview(data))

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False
