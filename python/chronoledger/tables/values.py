"""The value of each field type: what a write may give, what is stored, and
what a read returns.

Stored forms (what SQLite holds, so that plain SQL and Datasette read them):
uuid as lower-case hyphenated text; datetime as UTC ISO-8601 text of fixed
width (``2025-01-02T03:04:05.000000Z``: text order is time order); date as
``YYYY-MM-DD``; json as compact JSON text with sorted keys; boolean as 0/1;
integer and float as numbers.

A table adopted from Grace (or declared ``stored_form: grace``) keeps
Grace's forms instead, those its SQLModel registry writes and reads: uuid as
32 lower-case hex digits, datetime as naive UTC text
``2025-01-02 03:04:05.000000`` (fixed width too, so text order is still time
order); the rest as above (SQLAlchemy reads any JSON text).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any

import orjson

from chronoledger._isotime import iso_text
from chronoledger.errors import FieldValueError


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: No value given (None is a value: null).
MISSING: Any = _Missing()


#: A value the field cannot hold; the message says why.  Public as
#: chronoledger.errors.FieldValueError (a ValidationError, still a ValueError).
Bad = FieldValueError


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


class _NotJSON(TypeError):
    pass


def _not_json(o: Any) -> Any:
    raise _NotJSON(f"{type(o).__name__} is not a JSON value (dict, list, str, int, float, bool or None)")


# No cycle check: a value that contains itself ends in RecursionError, reported as such below.
_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                         check_circular=False, default=_not_json)
_INT64 = (-(1 << 63), (1 << 63) - 1)
INT64_MAX = _INT64[1]


def _uuid(v: Any) -> str:
    if type(v) is str:
        if _UUID.match(v):
            return v
        try:
            return str(uuid.UUID(v))
        except ValueError:
            raise Bad(f"{_short(v)} is not a UUID") from None
    if isinstance(v, uuid.UUID):
        return str(v)
    raise Bad(f"expected a UUID (text), got {type(v).__name__}")


def _text(v: Any) -> str:
    if type(v) is str or isinstance(v, str):
        v = str(v)
        if not v.isascii():
            _utf8(v)
        return v
    raise Bad(f"expected text, got {type(v).__name__}")


def _utf8(v: str) -> None:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:         # a lone surrogate: SQLite stores UTF-8
        raise Bad(f"is not valid text: {exc.reason} at character {exc.start}") from None


def _plain(v: Any) -> bool:
    """Whether ``v`` holds only what orjson writes exactly as json does: mappings
    with text keys, lists, text, 64-bit integers, true, false, null (no floats,
    which orjson writes in another form, 1e-7 for 1e-07, and no subclasses)."""
    t = type(v)
    if t is str or t is bool or v is None:
        return True
    if t is int:
        return -(1 << 63) <= v < (1 << 63)
    if t is dict:
        return all(type(k) is str and _plain(x) for k, x in v.items())
    if t is list:
        return all(_plain(x) for x in v)
    return False


def _json(v: Any) -> str:
    # Equality filters compare stored JSON text, so every value has one text: json's
    # (sorted keys, compact, floats as repr writes them).  orjson writes the same text
    # for values without floats (tests/test_tables_values.py compares them), at a tenth
    # of the time: 1.5 against 2.5 us for a small object with the check above, 6 % of a
    # validated bulk insert.  Anything else goes through json.
    try:
        plain = _plain(v)
    except RecursionError:
        plain = False
    if plain:
        try:
            text = orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
        except (orjson.JSONEncodeError, RecursionError):     # a lone surrogate, or nested too deeply: below
            pass
        else:
            return text
    try:
        text = _JSON.encode(v)
        if not text.isascii():
            _utf8(text)
        return text
    except Bad:
        raise
    except _NotJSON as exc:
        raise Bad(f"cannot be stored as JSON: {exc}") from None
    except TypeError:                    # what json refuses of keys: their type, or sorting mixed kinds
        raise Bad("cannot be stored as JSON: keys must be text, numbers, true, false or null, "
                  "all text or all numbers") from None
    except ValueError:                   # allow_nan=False: the one ValueError the encoder raises
        raise Bad("cannot be stored as JSON: NaN and infinity have no JSON form") from None
    except RecursionError:
        raise Bad("cannot be stored as JSON: it contains itself, or nests too deeply") from None


def format_datetime(dt: datetime) -> str:
    """The stored form; a naive datetime is taken as UTC already."""
    try:
        u = dt.astimezone(timezone.utc) if dt.tzinfo is not None else dt
    except OverflowError:
        raise Bad(f"{dt.isoformat()} is outside the years 1..9999 once in UTC") from None
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}."
            f"{u.microsecond:06d}Z")


_STORED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
_SECONDS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")


def now() -> str:
    return format_datetime(datetime.now(timezone.utc))


def _datetime(v: Any) -> str:
    if type(v) is str:
        n = len(v)
        if n == 27 and _STORED.match(v):                       # already the stored form
            try:
                datetime.fromisoformat(v[:26])
                return v
            except ValueError:
                pass
        elif n == 20 and _SECONDS_Z.match(v):                  # 2025-01-02T03:04:05Z
            try:
                datetime.fromisoformat(v[:19])
                return v[:19] + ".000000Z"
            except ValueError:
                pass
        try:
            dt = datetime.fromisoformat(iso_text(v))
        except ValueError:
            raise Bad(f"{_short(v)} is not an ISO-8601 date and time (e.g. 2025-01-02T03:04:05Z)") from None
        return format_datetime(dt)           # a time without an offset is taken as UTC
    if isinstance(v, datetime):
        return format_datetime(v)
    if isinstance(v, date):
        return f"{v.isoformat()}T00:00:00.000000Z"
    raise Bad(f"expected an ISO-8601 date and time, got {type(v).__name__}")


def _date(v: Any) -> str:
    if type(v) is str:
        try:
            return date.fromisoformat(v.strip()).isoformat()
        except ValueError:
            raise Bad(f"{_short(v)} is not an ISO-8601 date (YYYY-MM-DD)") from None
    if isinstance(v, datetime):
        raise Bad("expected a date, got a date and time")
    if isinstance(v, date):
        return v.isoformat()
    raise Bad(f"expected an ISO-8601 date, got {type(v).__name__}")


def _float(v: Any) -> float:
    t = type(v)
    if t is float:
        if v - v == 0:                      # finite
            return v
        raise Bad(f"{v} is not a finite number")
    if t is int or (isinstance(v, (int, float)) and t is not bool):
        try:
            f = float(v)
        except OverflowError:
            raise Bad(f"{_big(v)} is too large for a float") from None
        if not math.isfinite(f):
            raise Bad(f"{v} is not a finite number")
        return f
    raise Bad(f"expected a number, got {type(v).__name__}")


def _big(v: int) -> str:
    """An integer for a message: its digits, or its size once they would be too many
    to read (or, past 4300 digits, for str() to give at all)."""
    return str(v) if v.bit_length() <= 128 else f"a {v.bit_length()}-bit integer"


def _integer(v: Any) -> int:
    t = type(v)
    if t is int:
        if _INT64[0] <= v <= _INT64[1]:
            return v
        raise Bad(f"{_big(v)} is outside the 64-bit integer range")
    if t is float and v.is_integer():
        return _integer(int(v))
    if isinstance(v, int) and t is not bool:
        return _integer(int(v))
    raise Bad(f"expected an integer, got {'a fraction ' + str(v) if t is float else type(v).__name__}")


def _boolean(v: Any) -> int:
    if v is True or v is False:
        return int(v)
    if type(v) is int and v in (0, 1):
        return v
    raise Bad(f"expected true or false, got {_short(v) if isinstance(v, str) else type(v).__name__}")


#: A stored form: text (uuid, string, text, json, datetime, date), an integer (integer, boolean) or a float.
Stored = str | int | float

#: type -> function from a given value to its stored form (raises Bad).
COERCE: dict[str, Callable[[Any], Stored]] = {
    "uuid": _uuid, "string": _text, "text": _text, "json": _json, "datetime": _datetime, "date": _date,
    "float": _float, "integer": _integer, "boolean": _boolean}


def _uuid_hex(v: Any) -> str:
    if type(v) is str and len(v) == 32 and _HEX32.match(v):
        return v
    return _uuid(v).replace("-", "")


_HEX32 = re.compile(r"[0-9a-f]{32}\Z")


def grace_datetime(stored: str) -> str:
    """Grace's form of one of our stored datetimes (both UTC)."""
    return f"{stored[:10]} {stored[11:26]}"


_GRACE_STORED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\Z")


def _naive_datetime(v: Any) -> str:
    if type(v) is str and len(v) == 26 and _GRACE_STORED.match(v):
        try:
            datetime.fromisoformat(v)
            return v
        except ValueError:
            pass
    return grace_datetime(_datetime(v))


def _grace_json(v: Any) -> str:
    # Grace's JSON columns have numeric affinity: SQLite turns JSON text that spells a number into that
    # number, exactly for a 64-bit integer or a fraction, but 1.0 into 1, -0.0 into 0 and a larger integer
    # into a rounded float.  Those are refused rather than read back changed.
    text = _json(v)
    if type(v) is float and v.is_integer():
        raise Bad(f"{v!r} in a JSON column of Grace's (numeric affinity) would be read back as {int(v)}; "
                  f"store it inside a list or an object")
    if isinstance(v, int) and not isinstance(v, bool) and not _INT64[0] <= v <= _INT64[1]:
        raise Bad(f"{_big(v)} in a JSON column of Grace's (numeric affinity) would be read back rounded; "
                  f"store it inside a list or an object")
    return text


#: stored form (schema.STORED_FORMS) -> its COERCE table.
COERCE_BY_FORM: dict[str, dict[str, Callable[[Any], Stored]]] = {
    "chronoledger": COERCE,
    "grace": {**COERCE, "uuid": _uuid_hex, "datetime": _naive_datetime, "json": _grace_json}}


def coerce(ftype: str, v: Any, form: str = "chronoledger") -> Any:
    return COERCE_BY_FORM[form][ftype](v)


_DECODER = json.JSONDecoder()


def decode(ftype: str, stored: Any) -> Any:
    """The value a read returns for a stored value."""
    if stored is None:
        return None
    if ftype == "json":
        # a number in a column SQLite gave numeric affinity (Grace's JSON columns) is stored as one
        return _DECODER.decode(stored) if type(stored) is str else stored
    if ftype == "boolean":
        return bool(stored)
    return stored


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
