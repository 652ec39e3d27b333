"""Warnings that point at the user's line.

``warnings.warn(..., stacklevel=N)`` needs N fixed at the call site, but the
same warning may be raised from different depths (``Chronicle.open`` ->
``ChronicleWriter`` -> ..., or a store opening its event log), so
:func:`warn` counts the frames instead: the warning is attributed to the
first frame outside this package (the command-line interface counts as
outside: it is the library's user).  A leaf: it imports nothing from
chronoledger.
"""

from __future__ import annotations

import inspect
import warnings
from types import FrameType

_PACKAGE = __name__.rpartition(".")[0]          # "chronoledger"
_USER_SIDE = (f"{_PACKAGE}.cli",)               # parts of the package that call the library as a user does


def _inside(frame: FrameType) -> bool:
    name = frame.f_globals.get("__name__") or ""
    if not (name == _PACKAGE or name.startswith(_PACKAGE + ".")):
        return False
    return not any(name == p or name.startswith(p + ".") for p in _USER_SIDE)


def stacklevel(skip: int = 0) -> int:
    """The ``stacklevel`` that makes ``warnings.warn``, called by the caller
    of this function (``skip`` frames further up), name the first frame
    outside the package; the library's own line when the whole stack is the
    package's (a thread it started)."""
    frame = inspect.currentframe()
    for _ in range(skip + 1):                  # up to the frame that will call warnings.warn
        frame = frame.f_back if frame is not None else None
    level = 1
    while frame is not None and _inside(frame):
        frame = frame.f_back
        level += 1
    if frame is None or frame.f_globals.get("__name__") == "threading":
        return 1
    return level


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stacklevel of the first frame outside the package."""
    warnings.warn(message, category, stacklevel=stacklevel(1) + 1)


__all__ = ["stacklevel", "warn"]
