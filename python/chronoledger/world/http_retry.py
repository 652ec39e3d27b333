"""Reading an HTTP server's ``Retry-After``: shared by the model clients
(:mod:`chronoledger.world.models`) and the report channel
(:mod:`chronoledger.world.channel`), which retry alike."""

from __future__ import annotations

import datetime
import email.utils
import time

__all__ = ["retry_after"]


def retry_after(value: str | None) -> float | None:
    """The seconds a ``Retry-After`` header asks a client to wait, or None when it says nothing usable.

    Both forms of RFC 9110 are understood: delta-seconds (``120``) and an
    HTTP-date (``Wed, 21 Oct 2026 07:28:00 GMT``); a date in the past means now.
    """
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:                       # some Pythons return None for a date they cannot read
            return None
        if when.tzinfo is None:                # "-0000": UTC, as RFC 5322 says
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = when.timestamp() - time.time()
    if seconds != seconds:                     # nan
        return None
    return max(seconds, 0.0)
