"""File helpers shared by every layer that writes files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old file or the new one.

    The bytes go to a temporary file in the same folder, are fsynced, and the
    file is renamed over ``path``; the folder is fsynced so the rename itself
    survives a power loss.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{target}: the folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        try:                       # keep the permissions of the file being replaced
            os.fchmod(fd, os.stat(target).st_mode & 0o7777)
        except FileNotFoundError:  # a new file: what open() would give it (mkstemp's are owner-only)
            os.fchmod(fd, 0o666 & ~_umask())
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


def _umask() -> int:
    mask = os.umask(0)          # reading the umask means setting it; set straight back
    os.umask(mask)
    return mask


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync the folder holding ``path``, so a new or renamed entry survives a power loss."""
    if hasattr(os, "O_DIRECTORY"):
        dfd = os.open(Path(path).parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
