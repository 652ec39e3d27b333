"""The server's plumbing: JSON answers, errors as JSON naming the problem,
request bodies read within a limit, the token, and checked parameters.

Every answer of the API is JSON: ``{"ok": true, ...}`` or ``{"ok": false,
"error": "what failed: why"}`` (Chronos's dashboard convention), with the
library's exceptions mapped to statuses by one table (:data:`STATUS`).
"""

from __future__ import annotations

import hmac
import json
import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from chronoledger.errors import (ChronoledgerError, ConfigError, CorruptDataError, DatabaseBusyError, ExistsError,
                                 MissingFileError, NotFoundError, QueryError, RequestError, SchemaError,
                                 StorageError, ValidationError)
from chronoledger.server.config import ServeConfig

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


#: the library's exceptions -> HTTP statuses; the first class that matches wins
STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (NotFoundError, 404), (MissingFileError, 404), (ValidationError, 422), (QueryError, 400), (SchemaError, 400),
    (ConfigError, 400), (ExistsError, 409), (DatabaseBusyError, 503), (CorruptDataError, 500), (StorageError, 500),
    (ChronoledgerError, 500),
)


def _plain(value: Any) -> Any:
    """``value`` as strict JSON holds it: NaN and infinities as null (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


class Json(JSONResponse):
    """A JSON response that writes any value the library gives (dates and
    paths as text, NaN as null) and keeps non-ASCII text as it is."""

    def render(self, content: Any) -> bytes:
        try:        # the common case at full speed; only a document holding NaN is walked to null it
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, default=_default, separators=(",", ":"))
        except ValueError:
            text = json.dumps(_plain(content), ensure_ascii=False, allow_nan=False, default=_default,
                              separators=(",", ":"))
        return text.encode("utf-8")


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def ok(**fields: Any) -> Json:
    return Json({"ok": True, **fields})


def error_response(status: int, message: str, **extra: Any) -> Json:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Json({"ok": False, "error": message, **extra}, status_code=status, headers=headers)


def status_of(exc: BaseException) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def library_error(exc: ChronoledgerError) -> Json:
    """A library exception as its answer; a refused row (or batch) lists every bad field."""
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationError) and exc.problems:
        extra["problems"] = [{"row": p[0], "field": p[1], "reason": p[2]} if len(p) >= 3 else {"reason": str(p)}
                             for p in exc.problems]
    return error_response(status_of(exc), str(exc), kind=type(exc).__name__, **extra)


async def read_body(request: Request, config: ServeConfig) -> bytes:
    """The request's body, refused (413) past ``config.max_body`` bytes before it is read whole."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RequestError(400, f"Content-Length: {declared!r} is not a number of bytes") from None
        if size > config.max_body:
            raise RequestError(413, f"the body is {size:,} bytes; this server takes at most {config.max_body:,}")
    got = bytearray()
    async for chunk in request.stream():
        got += chunk
        if len(got) > config.max_body:
            raise RequestError(413, f"the body is over {config.max_body:,} bytes; this server takes at most that")
    return bytes(got)


async def read_json(request: Request, config: ServeConfig, what: str = "the body") -> Any:
    """The request's body as JSON (UTF-8); an empty body is a 400, malformed JSON a 400 naming the line and
    column."""
    found = await read_optional_json(request, config, what)
    if found is None:
        raise RequestError(400, f"{what} is empty; send a JSON document")
    return found


def parse_json(text: str, what: str) -> Any:
    """``text`` as JSON; malformed (or nested past Python's recursion limit) is a 400 naming where."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"{what}: not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise RequestError(400, f"{what}: JSON nested too deeply") from None


async def read_optional_json(request: Request, config: ServeConfig, what: str = "the body") -> Any:
    """The body as JSON, or None when it is empty (however it was framed: a length or chunks)."""
    body = await read_body(request, config)
    if not body.strip():
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"{what} is not UTF-8 text (byte {exc.start})") from None
    return parse_json(text, what)


def require_token(request: Request, config: ServeConfig) -> None:
    """Let a write through only with the configured token (401 without it or with another; 403 when the
    server has none: it is read-only)."""
    if config.token is None:
        raise RequestError(403, "this server is read-only: start it with --token (or CHRONOLEDGER_SERVE_TOKEN) "
                            "to allow writes")
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if not given:
        raise RequestError(401, "a write needs the server's token: send Authorization: Bearer TOKEN")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode("utf-8", "replace"),
                                                             config.token.encode()):
        raise RequestError(401, "the token is wrong (Authorization: Bearer TOKEN, the token the server was started "
                            "with)")


def int_param(request: Request, name: str, default: int | None, *, low: int = 0,
              high: int | None = None) -> int | None:
    """Query parameter ``name`` as a whole number within [low, high]; 400 naming it otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RequestError(400, f"{name}: {raw!r} is not a whole number") from None
    if high is None:
        high = 2 ** 63 - 1          # SQLite's integers
    if value < low or (high is not None and value > high):
        raise RequestError(400, f"{name}: {value} is outside {low}..{high}")
    return value


def name_param(value: str, what: str, status: int = 404) -> str:
    """A name used as an SQL identifier (a table's), checked against ``^[A-Za-z_][A-Za-z0-9_]*$``."""
    if not NAME.match(value):
        raise RequestError(status, f"{what} {value!r}: no such name (names are letters, digits and _)")
    return value


def flag_param(request: Request, name: str) -> bool:
    """A yes/no query parameter: 1, true, yes / 0, false, no (absent: no); anything else is a 400."""
    raw = request.query_params.get(name, "").strip().lower()
    if raw in ("1", "true", "yes"):
        return True
    if raw in ("", "0", "false", "no"):
        return False
    raise RequestError(400, f"{name}: {raw!r} is not yes or no (1, true, yes / 0, false, no)")


def needs(part: Any, option: str, what: str) -> Any:
    """``part`` (a configured store), or a 404 saying which option of ``serve`` gives it."""
    if part is None:
        raise RequestError(404, f"{what}: this server was started without {option}")
    return part
