"""One writer of a user folder's Data/ at a time: an OS lock on
``Data/.sequence.lock``, held by a sync, by the metastudy run alone, and by
a command recording itself.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chronoledger.errors import ConfigError


@contextmanager
def sync_lock(data: Path, wait: bool = False) -> Iterator[None]:
    """Hold the lock of ``data`` (a folder's Data/) for the block.  A sync
    refuses to start while another runs; ``wait`` (recording a command, the
    metastudy) waits its turn instead."""
    fd = os.open(data / ".sequence.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ConfigError(f"{data}: another sync of this folder is running") from None
        yield
    finally:
        os.close(fd)
