"""Checking and normalising what callers hand the runtime store: ids, times,
JSON objects, allowed values.  Every failure is a ValidationError that names
the field."""

from __future__ import annotations

import json
import math
import numbers
import uuid
from datetime import datetime, timezone
from typing import Any, Literal, overload


from chronoledger._isotime import iso_text
from chronoledger.errors import ValidationError
from chronoledger.ids import new_id, new_ids  # noqa: F401  (the store's ids; re-exported)
from chronoledger.runtime.vocab import ENUMS

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

def check_id(value: Any, field: str) -> str:
    """A caller's id: any UUID spelling, stored in canonical lowercase form."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise ValidationError(f"{field}: expected a UUID string, got {type(value).__name__}")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationError(f"{field}: {value!r} is not a UUID") from None


def check_ref(value: Any, field: str) -> str:
    """The id of an existing row, as the caller gives it: ours are UUIDs, but
    a database adopted from another tool may hold any text (the store looks
    an id up as given and, for a UUID, in canonical form too)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{field}: expected an id (a non-empty string), got {value!r}")
    if not value.isascii():
        check_utf8(value, field)
    if len(value) > MAX_BYTES // 4:
        check_size(value, field)
    return value


#: The most bytes SQLite stores in one value (its default SQLITE_MAX_LENGTH, which apsw's build keeps).
MAX_BYTES = 1_000_000_000


def check_size(value: str, field: str) -> None:
    """Refuse text longer, in UTF-8, than SQLite stores in one value."""
    n = len(value.encode("utf-8", "surrogatepass"))
    if n > MAX_BYTES:
        raise ValidationError(f"{field}: {n:,} bytes of UTF-8, more than SQLite stores in one value "
                              f"({MAX_BYTES:,})")


def ref_forms(value: str) -> tuple[str, str]:
    """(as given, canonical) spellings of an id, for lookups."""
    try:
        return value, str(uuid.UUID(value))
    except ValueError:
        return value, value


def now() -> str:
    return format_time(datetime.now(timezone.utc))


def format_time(dt: datetime) -> str:
    """ISO-8601 UTC with microseconds and a Z: fixed width (the year too), so
    text order is time order."""
    u = dt.astimezone(timezone.utc)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}."
            f"{u.microsecond:06d}Z")


def parse_time(text: Any) -> datetime | None:
    """A stored time as an aware datetime, whatever ISO-8601 form another
    tool wrote (offsets, a space for the T, no fraction; no zone = UTC), or
    None if it is not a time."""
    if not isinstance(text, str):
        return None
    try:
        dt = datetime.fromisoformat(iso_text(text))
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


@overload
def check_time(value: Any, field: str, default_now: Literal[True] = True) -> str: ...
@overload
def check_time(value: Any, field: str, default_now: bool) -> str | None: ...
def check_time(value: Any, field: str, default_now: bool = True) -> str | None:
    """An aware datetime or an ISO-8601 string with ``Z`` or an offset, as UTC text.
    A time without a zone is refused: it would silently mean the server's zone."""
    if value is None:
        return now() if default_now else None
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(iso_text(value))
        except ValueError:
            raise ValidationError(f"{field}: {value!r} is not an ISO-8601 time "
                                  f"(e.g. 2026-01-02T03:04:05Z)") from None
    elif isinstance(value, datetime):
        dt = value
    else:
        raise ValidationError(f"{field}: expected a datetime or an ISO-8601 string, got {type(value).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValidationError(f"{field}: {value!r} has no time zone; give an aware datetime or a string "
                              f"ending in Z or +hh:mm")
    try:
        return format_time(dt)
    except OverflowError:
        raise ValidationError(f"{field}: {value!r} is outside the years 1..9999 once in UTC") from None


def check_json_object(value: Any, field: str, default: Any = "{}") -> str:
    """A dict (or the JSON text of an object) as compact JSON text."""
    if value is None:
        if default is None:
            raise ValidationError(f"{field}: a JSON object is required")
        return default
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValidationError(f"{field}: not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationError(f"{field}: must be a JSON object (a dict), got {type(value).__name__}")
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{field}: cannot be stored as JSON: {exc}") from None
    except RecursionError:
        raise ValidationError(f"{field}: cannot be stored as JSON: it contains itself, or nests too deeply") from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:        # a lone surrogate in a key or a string value
            raise ValidationError(f"{field}: cannot be stored as JSON: a string in it is not valid text "
                                  f"({exc.reason}: {text[exc.start]!r})") from None
    if len(text) > MAX_BYTES // 4:
        check_size(text, field)
    return text


@overload
def check_enum(value: Any, table: str, column: str, allowed: tuple[str, ...] | None = None,
               nullable: Literal[False] = False) -> str: ...
@overload
def check_enum(value: Any, table: str, column: str, allowed: tuple[str, ...] | None = None, *,
               nullable: bool) -> str | None: ...
def check_enum(value: Any, table: str, column: str, allowed: tuple[str, ...] | None = None,
               nullable: bool = False) -> str | None:
    allowed = allowed if allowed is not None else ENUMS[(table, column)]
    if value is None and nullable:
        return None
    if value not in allowed:
        raise ValidationError(f"{table}.{column}: {value!r} is not allowed; use one of: {', '.join(allowed)}")
    return value


@overload
def check_text(value: Any, field: str, nullable: Literal[False] = False, empty: bool = False) -> str: ...
@overload
def check_text(value: Any, field: str, nullable: bool, empty: bool = False) -> str | None: ...
def check_text(value: Any, field: str, nullable: bool = False, empty: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field}: expected a string, got {type(value).__name__}")
    if not empty and not value.strip():
        raise ValidationError(f"{field}: must not be empty")
    if not value.isascii():
        check_utf8(value, field)
    if len(value) > MAX_BYTES // 4:
        check_size(value, field)
    return value


def check_utf8(value: str, field: str) -> None:
    """Refuse text that has no UTF-8 form (a lone surrogate): SQLite stores UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{field}: not valid text ({exc.reason} at character {exc.start})") from None


@overload
def check_int(value: Any, field: str, nullable: Literal[False] = False, minimum: int | None = 0) -> int: ...
@overload
def check_int(value: Any, field: str, nullable: bool, minimum: int | None = 0) -> int | None: ...
def check_int(value: Any, field: str, nullable: bool = False, minimum: int | None = 0) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValidationError(f"{field}: expected an integer, got {value!r}")
    value = int(value)
    if not INT64_MIN <= value <= INT64_MAX:
        shown = value if value.bit_length() <= 128 else f"a {value.bit_length()}-bit integer"
        raise ValidationError(f"{field}: {shown} is outside the 64-bit integer range SQLite stores")
    if minimum is not None and value < minimum:
        raise ValidationError(f"{field}: must be >= {minimum}, got {value}")
    return value


@overload
def check_unit(value: Any, field: str, nullable: Literal[False] = False) -> float: ...
@overload
def check_unit(value: Any, field: str, nullable: bool) -> float | None: ...
def check_unit(value: Any, field: str, nullable: bool = False) -> float | None:
    """A number in [0, 1] (confidence, determinism score)."""
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise ValidationError(f"{field}: expected a number from 0 to 1, got {value!r}")
    return float(value)


def check_flag(value: Any, field: str) -> int:
    if value in (True, False, 0, 1):
        return int(value)
    raise ValidationError(f"{field}: expected True/False (or 1/0), got {value!r}")


def merge_json(stored: Any, update: str, field: str) -> str:
    """``update`` merged into ``stored`` (a dict), recursively for nested
    objects; a key is only ever added or replaced, never removed.  A stored
    value that is not an object (written by another tool) is not guessed at."""
    def merge(a: dict, b: dict) -> dict:
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
        return out
    if stored is None or stored == "":
        stored = {}
    if not isinstance(stored, dict):
        raise ValidationError(f"{field}: the stored value {str(stored)[:80]!r} is not a JSON object, so nothing "
                              f"can be merged into it")
    return json.dumps(merge(stored, json.loads(update)), ensure_ascii=False, separators=(",", ":"))
