"""What the model clients (:mod:`chronoledger.world.models`) and the report
channel (:mod:`chronoledger.world.channel`) share, since they talk to HTTP
servers and retry alike: the client they make, the hosts that count as this
machine, the pause between attempts, and a server's ``Retry-After``."""

from __future__ import annotations

import datetime
import email.utils
import random
import time
import urllib.parse

import httpx

__all__ = ["LOCAL_HOSTS", "SETUP_ERRORS", "backoff_pause", "is_local", "make_client", "retry_after"]

#: Hosts that are this machine: a server there needs no API key and is reached without a proxy.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: What setting up a client may raise (an unreadable SSL_CERT_FILE, a bad proxy variable): the caller names it.
SETUP_ERRORS = (httpx.HTTPError, OSError, ValueError)


def is_local(url: str) -> bool:
    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError:
        return False
    return host in LOCAL_HOSTS


def make_client(*, headers: dict[str, str], timeout: httpx.Timeout, local: bool,
                limits: httpx.Limits | None = None) -> httpx.Client:
    """An httpx client that follows no redirect, and sends a request for this
    machine through no HTTP(S)_PROXY of the environment.  Raises one of
    SETUP_ERRORS when it cannot be made."""
    if limits is None:                                   # httpx's own default pool
        return httpx.Client(headers=headers, timeout=timeout, trust_env=not local, follow_redirects=False)
    return httpx.Client(headers=headers, timeout=timeout, trust_env=not local, follow_redirects=False, limits=limits)


def backoff_pause(base: float, retry: int, jitter: random.Random, cap: float) -> float:
    """The pause before retry number ``retry`` (1, 2, ...): ``base`` doubled
    each time up to ``cap``, with "equal jitter": half of each step fixed and
    half drawn, so that many requests that failed together do not come back
    together."""
    step = min(base * 2.0 ** min(retry - 1, 32), cap)
    return step / 2 + jitter.uniform(0.0, step / 2)


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
