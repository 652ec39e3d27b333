"""A user folder's ``Data/``: where it is, the lock its writers take, and
``databases.yml`` (the registry of its mirrors).

Below both :mod:`~chronoledger.sequence.sync` and
:mod:`~chronoledger.sequence.metastudy`, which each write the registry under
the lock (a sync runs the metastudy; the metastudy alone records itself).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import yaml

from chronoledger._fsutil import atomic_write_bytes
from chronoledger.errors import ConfigError
from chronoledger.sequence.layout import child

REGISTRY = "databases.yml"


def data_folder(user: Path) -> Path:
    """``User/Data`` (any case), created if missing."""
    existing = child(user, "data")
    d = existing if existing is not None else user / "Data"
    d.mkdir(exist_ok=True)
    return d


@contextmanager
def sync_lock(data: Path, wait: bool = False):
    """One writer of a folder's Data/ at a time (an OS lock on
    Data/.sequence.lock).  A sync refuses to start while another runs;
    ``wait`` (recording a command, the metastudy) waits its turn instead."""
    fd = os.open(data / ".sequence.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise ConfigError(f"{data}: another sync of this folder is running") from None
        yield
    finally:
        os.close(fd)


def now_text() -> str:
    return datetime.now(timezone.utc).astimezone().replace(microsecond=0).isoformat()


def read_registry(data: Path) -> dict:
    """databases.yml, or an empty registry when it is missing or not one we
    wrote (it only describes the mirrors, and the next sync writes it whole)."""
    p = data / REGISTRY
    try:
        reg = yaml.safe_load(p.read_bytes())
    except (OSError, yaml.YAMLError, RecursionError):
        return {"databases": {}}
    if not isinstance(reg, dict) or not isinstance(reg.get("databases", {}), dict):
        return {"databases": {}}
    reg["databases"] = {k: v for k, v in (reg.get("databases") or {}).items() if isinstance(v, dict)}
    return reg


def write_registry(data: Path, reg: dict) -> None:
    atomic_write_bytes(data / REGISTRY, yaml.safe_dump(reg, sort_keys=False).encode("utf-8"))


__all__ = ["REGISTRY", "data_folder", "now_text", "read_registry", "sync_lock", "write_registry"]
