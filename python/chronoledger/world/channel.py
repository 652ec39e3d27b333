"""A report channel: each day's JSON report POSTed to a webhook
(``chronoledger world run --report-channel URL``), as the day's report is
written (:func:`chronoledger.world.reporting.write_day`).

The retry policy is the model clients' (:mod:`chronoledger.world.models`):
a connection error, a timeout, a 429 or a 5xx is tried again, after the
pause the server's ``Retry-After`` asks for (at most a minute) or else an
exponential backoff with jitter; any other answer but a 2xx is final.  Each
report carries an ``Idempotency-Key`` (a digest of its body), so a receiver
can drop the copy a retry sends after an attempt that timed out but arrived.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import urllib.parse
from types import TracebackType
from typing import Any, Mapping

import httpx

from chronoledger.errors import ConfigError, ReportChannelError   # defined with every public exception
from chronoledger.world.http_common import LOCAL_HOSTS, SETUP_ERRORS, backoff_pause, make_client
from chronoledger.world.http_common import retry_after as _retry_after

__all__ = ["ReportChannel", "ReportChannelError"]

_logger = logging.getLogger("chronoledger.world")
_MAX_BACKOFF = 8.0          # the longest pause the exponential backoff makes, in seconds
_MAX_RETRY_AFTER = 60.0     # the longest pause a server's Retry-After is granted
_EXCERPT = 200


def shown_url(url: str) -> str:
    """``url`` as messages and logs show it: without a password or a query
    string, which often hold a webhook's secret."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return url
    if ":" in host:
        host = f"[{host}]"
    user = f"{parts.username}@" if parts.username else ""
    netloc = user + host + (f":{port}" if port is not None else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "..." if parts.query else "", ""))


class ReportChannel:
    """Where each day's report goes: ``post(report)`` sends it as JSON to
    ``url``, trying up to ``attempts`` times; a report not delivered is a
    :class:`ReportChannelError`.  One :class:`httpx.Client` (kept-alive
    connection) for the channel's life; :meth:`close`, or use it as a
    context manager.

    ``timeout``: seconds for each attempt (connecting, sending, the answer);
    ``backoff``: the first pause between attempts, doubled each time (with
    jitter, at most 8 s)."""

    def __init__(self, url: str, *, timeout: float = 10.0, attempts: int = 3, backoff: float = 0.5):
        host = _http_host(url)
        if host is None or any(c.isspace() for c in url):
            raise ConfigError(f"report channel {url!r}: not an http(s) URL (write http://host/path or "
                              f"https://host/path)")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError(f"report channel {shown_url(url)}: the timeout must be a positive number of "
                              f"seconds, got {timeout!r}")
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ConfigError(f"report channel {shown_url(url)}: attempts must be a whole number of at least 1, "
                              f"got {attempts!r}")
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or not backoff >= 0:
            raise ConfigError(f"report channel {shown_url(url)}: backoff must be 0 or more seconds, got {backoff!r}")
        self.url = url
        self.timeout = float(timeout)
        self.attempts = attempts
        self.backoff = float(backoff)
        self._shown = shown_url(url)
        local = host in LOCAL_HOSTS
        try:
            self._client = make_client(headers={"Content-Type": "application/json", "User-Agent": "chronoledger-world"},
                                       timeout=httpx.Timeout(self.timeout), local=local)
        except SETUP_ERRORS as exc:
            raise ReportChannelError(f"report channel {self._shown}: cannot set up a client: "
                                     f"{type(exc).__name__}: {exc}") from None
        self._jitter = random.Random()          # from os.urandom: never the simulation's generator
        self._stop = threading.Event()          # set by close(): no more attempts, no more waiting
        self._closed = False

    def __repr__(self) -> str:
        return f"ReportChannel({self._shown!r}, timeout={self.timeout:g}, attempts={self.attempts})"

    def __enter__(self) -> "ReportChannel":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop waiting to retry and close the connection; closing twice is harmless."""
        self._closed = True
        self._stop.set()
        self._client.close()

    def post(self, report: Mapping[str, Any]) -> None:
        """Deliver one day's report (a JSON object: the day's JSON report,
        with ``run_id``).  Returns once a 2xx answers; raises
        :class:`ReportChannelError` naming the URL, the day, the status or
        the network failure and the attempts made, if none does."""
        day = _what(report)
        if self._closed:
            raise ReportChannelError(f"report channel {self._shown}: the report of {day} was not sent: "
                                     f"the channel is closed")
        body = json.dumps(report, ensure_ascii=False).encode("utf-8")
        headers = {"Idempotency-Key": hashlib.sha256(body).hexdigest()[:32]}
        failed = ""
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self._client.post(self.url, content=body, headers=headers)
            except httpx.TimeoutException as exc:
                failed = f"{_timeout_phase(exc)}timed out after {self.timeout:g} s"
                delay: float | None = None
            except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
                failed = f"connection failed ({str(exc) or type(exc).__name__})"
                delay = None
            except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError, RuntimeError) as exc:
                # not worth another try: a URL httpx refuses, a closed client
                raise ReportChannelError(f"report channel {self._shown}: the report of {day} was not sent: "
                                         f"{type(exc).__name__}: {exc}") from None
            else:
                status = resp.status_code
                if 200 <= status < 300:
                    _logger.debug("report channel %s: the report of %s delivered (HTTP %d, attempt %d of %d)",
                                  self._shown, day, status, attempt, self.attempts)
                    return
                failed = f"HTTP {status}{_excerpt(resp.content)}"
                if not (status == 429 or status >= 500):
                    if 300 <= status < 400 and resp.headers.get("Location"):
                        failed += f" (redirected to {shown_url(resp.headers['Location'])}: give that URL)"
                    raise ReportChannelError(f"report channel {self._shown}: the report of {day} was refused: "
                                             f"{failed} (attempt {attempt} of {self.attempts}; a {status} is not "
                                             f"retried)")
                asked = _retry_after(resp.headers.get("Retry-After"))
                delay = None if asked is None else min(asked, _MAX_RETRY_AFTER)
            if attempt == self.attempts:
                break
            pause = self._backoff(attempt) if delay is None else delay
            _logger.warning("report channel %s: the report of %s: %s; trying again in %.1f s (attempt %d of %d)",
                            self._shown, day, failed, pause, attempt + 1, self.attempts)
            if self._stop.wait(pause):
                raise ReportChannelError(f"report channel {self._shown}: the report of {day} was not delivered: "
                                         f"the channel was closed after {attempt} attempt"
                                         f"{'s' if attempt != 1 else ''} (last: {failed})")
        raise ReportChannelError(f"report channel {self._shown}: the report of {day} was not delivered after "
                                 f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}: {failed}")

    def _backoff(self, retry: int) -> float:
        """The pause before retry number ``retry`` (1, 2, ...): exponential, capped, half of it jitter."""
        return backoff_pause(self.backoff, retry, self._jitter, _MAX_BACKOFF)


def _http_host(url: object) -> str | None:
    """The host of an http(s) URL, or None for anything else."""
    if not isinstance(url, str):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port                  # a port that is not a number raises ValueError here
    except ValueError:
        return None
    if parts.scheme not in ("http", "https"):
        return None
    return parts.hostname or None


def _what(report: Mapping[str, Any]) -> str:
    """The report a message is about: ``2026-01-05 (run 3)``."""
    day = report.get("day_label", "a day")
    run = report.get("run_id")
    return f"{day}" + (f" (run {run})" if run is not None else "")


def _timeout_phase(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting "
    if isinstance(exc, httpx.PoolTimeout):
        return "waiting for a connection "
    return ""


def _excerpt(raw: bytes) -> str:
    """What the server said, for a message: ``: <the start of its body>``, or nothing."""
    text = " ".join(raw.decode("utf-8", "replace").split()) if raw else ""
    if not text:
        return ""
    return ": " + (text if len(text) <= _EXCERPT else text[:_EXCERPT] + "...")
