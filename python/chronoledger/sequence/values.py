"""Values as people write them in a user folder (times of day, durations,
dates, ledger times), and the forms the mirrors store them in (JSON text,
TEXT columns, finite numbers, tag lists, event times in microseconds).

Pure functions, shared by every builder; nothing here reads a file.
"""

from __future__ import annotations

import functools
import json
import math
import re
from datetime import date, datetime, timezone
from typing import Any

import numpy as np
import orjson

from chronoledger._isotime import iso_text

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm])\s*$", re.I)
_HMM = re.compile(r"^\s*(\d{1,3}):([0-5]\d)\s*$")


# --- reading what people write --------------------------------------------------

def hhmm(value: Any) -> str | None:
    """"6:30", "06:30", "06:30:00", a time, or YAML's reading of an unquoted
    06:30 (390, sexagesimal) as "HH:MM"; None when it is not a time of day."""
    if type(value) is str:          # the same few hundred spellings, read 100,000s of times
        return _hhmm_text(value)
    return _hhmm(value)


@functools.lru_cache(maxsize=8192)
def _hhmm_text(value: str) -> str | None:
    return _hhmm(value)


def _hhmm(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if hasattr(value, "hour") and hasattr(value, "minute"):
        return f"{value.hour:02d}:{value.minute:02d}"
    if isinstance(value, int):
        minutes = value if value < 24 * 60 else value // 60 if value < 24 * 3600 else None
        return None if minutes is None else f"{minutes // 60:02d}:{minutes % 60:02d}"
    if isinstance(value, str):
        parts = value.strip().split(":")
        if 2 <= len(parts) <= 3 and all(p.isdigit() for p in parts):
            h, m = int(parts[0]), int(parts[1])
            if h < 24 and m < 60:
                return f"{h:02d}:{m:02d}"
    return None


def status_slug(name: Any) -> str:
    """A status dimension's name as Chronos keys it ("Mind State" -> mind_state)."""
    return _slug(name) if type(name) is str else _slug(str(name or ""))


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=1024)
def _slug(name: str) -> str:           # the same few dimension names, read for every status entry
    return _NOT_SLUG.sub("_", name.strip().lower()).strip("_")


#: Words that make a settings key a secret (a key is split into words at anything
#: not a letter or digit, and where a lower-case letter meets a capital).
SECRET_WORDS = frozenset({"token", "tokens", "secret", "secrets", "password", "passwords", "passwd", "passphrase",
                          "pwd", "auth", "authorization", "credential", "credentials", "bearer", "apikey",
                          "cookie", "cookies"})
#: Adjacent words that together name a secret (api_key, private-key, access key...).
SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"),
                          ("session", "key"), ("signing", "key")})
#: Endings of one word that name a secret (keys are read lower-cased, so apiKey is apikey,
#: clientSecret clientsecret, accessToken accesstoken).
SECRET_ENDINGS = ("token", "tokens", "secret", "secrets", "password", "passwd", "apikey", "accesskey",
                  "privatekey", "secretkey", "sessionkey", "signingkey")
_WORD_BREAK = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def is_secret_key(key: Any) -> bool:
    """Whether a settings key names a secret (token, client_secret, apiKey,
    db-password, auth, access_token...); "author" or "tokenizer" do not."""
    if not isinstance(key, str):
        return False
    words = [w.lower() for w in _WORD_BREAK.split(key) if w]
    return (any(w in SECRET_WORDS or w.endswith(SECRET_ENDINGS) for w in words)
            or any(pair in SECRET_PAIRS for pair in zip(words, words[1:])))


def without_secrets(value: Any, where: str = "") -> tuple[Any, list[str]]:
    """``value`` with every mapping entry whose key names a secret left out,
    at any depth, and where each was (``token``, ``dashboard.token``,
    ``accounts[0].password``).  The value itself is not changed."""
    left_out: list[str] = []
    if isinstance(value, dict):
        kept = {}
        for k, v in value.items():
            at = f"{where}.{k}" if where else str(k)
            if is_secret_key(k):
                left_out.append(at)
                continue
            kept[k], inner = without_secrets(v, at)
            left_out += inner
        return kept, left_out
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            v, inner = without_secrets(v, f"{where}[{i}]")
            out.append(v)
            left_out += inner
        return out, left_out
    return value, left_out


def minutes_of(t: str | None) -> int | None:
    """Minutes after midnight of an "HH:MM" time; None for none."""
    if not t:
        return None
    h, m = t.split(":")
    return int(h) * 60 + int(m)


def span(start: str | None, end: str | None) -> float | None:
    a, b = minutes_of(start), minutes_of(end)
    if a is None or b is None:
        return None
    return float((b - a) % (24 * 60))


def parse_duration(value: Any) -> float | None:
    """Minutes from "00:05" / "02:00" (h:mm), "90d", "24h", "45m" or a bare
    number of minutes; None when the value says nothing we can read."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if 0 <= value < math.inf else None      # .inf and NaN say nothing either
    if not isinstance(value, str):
        return None
    m = _HMM.match(value)
    if m:
        return float(int(m.group(1)) * 60 + int(m.group(2)))
    m = _DURATION.match(value)
    if m:
        return float(m.group(1)) * {"d": 1440, "h": 60, "m": 1}[m.group(2).lower()]
    try:
        n = float(value)
    except ValueError:
        return None
    return n if 0 <= n < math.inf else None


def iso_date(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            return None
    return None


def stamp(value: Any, day: str | None = None) -> str | None:
    """A ledger/log time ("2026-01-02 06:30:00", a datetime, an ISO string, or a
    time of day on ``day``) as "YYYY-MM-DDTHH:MM:SS" local time."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="seconds")
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00"
    if isinstance(value, str):
        v = value.strip().replace(" ", "T", 1)
        try:
            return datetime.fromisoformat(iso_text(v)).replace(tzinfo=None).isoformat(timespec="seconds")
        except ValueError:
            pass
    t = hhmm(value)
    if t is not None and day is not None:
        return f"{day}T{t}:00"
    return None


# --- the forms the mirrors store ------------------------------------------------------

_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str)
# orjson: the mirrors hold hundreds of thousands of small JSON objects (event
# payloads, raw items), and the standard library's encoder, with its Python
# wrapper per call, was the largest single cost of a sync (1.8 s of a
# 20,000-item folder's).  Dates and times go through str() as before.
_FAST = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _default(value: Any) -> Any:
    """What orjson cannot write as it is: a float or int subclass (numpy's
    scalars) as the number, anything else as its text (dates, sets, bytes)."""
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return str(value)


def to_json(value: Any) -> str:
    """Compact JSON text (keys sorted, non-ASCII kept) of a value read from
    YAML; dates and anything else JSON has no form for are written as their
    text, NaN and the infinities (which JSON cannot hold, and SQLite's JSON
    functions refuse) as null, and keys JSON cannot sort or hold as they are
    (an int beside a string, a date, bytes) as text."""
    try:
        return orjson.dumps(value, default=_default, option=_FAST).decode()
    except TypeError:       # keys that are not strings, or an int past 64 bits
        pass
    try:
        return orjson.dumps(_text_keys(value), default=_default, option=_FAST).decode()
    except TypeError:       # an int past 64 bits: the standard library writes any int
        return _COMPACT.encode(_nan_free(_text_keys(value)))


_COMPACT = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":"))


def _nan_free(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_free(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_free(v) for v in value]
    return value


def _text_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_key_text(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_text_keys(v) for v in value]
    return value


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return _ENCODER.encode(key)            # as JSON itself writes such keys: null, true, 1, 1.5
    if isinstance(key, date):
        return key.isoformat()
    return str(key)


def to_tags(value: Any) -> str:
    if value is None:
        return "[]"
    if isinstance(value, str):
        value = [t.strip() for t in value.split(",") if t.strip()]
    return to_json(value if isinstance(value, list) else [value])


def to_num(value: Any) -> float | None:
    """A finite number, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            x = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str):
        try:
            x = float(value)
        except ValueError:
            return None
    else:
        return None
    return x if math.isfinite(x) else None


def to_text(value: Any) -> str | None:
    """A value for a TEXT column: text as it is, other scalars written out,
    mappings and lists as JSON (a file may hold anything anywhere)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple, set)):
        return to_json(value)
    return str(value)


def to_plain(value: Any) -> Any:
    """A YAML value as plain JSON types (dates as ISO text), for event payloads."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_plain(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def micros(ts: str) -> int:
    """An event time ("YYYY-MM-DDTHH:MM:SS", UTC when it names no zone) in
    microseconds since the epoch, as the chronicle event log stores it."""
    dt = datetime.fromisoformat(iso_text(ts))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return max(0, int(dt.timestamp() * 1_000_000))


def micros_array(stamps: list[str]) -> np.ndarray:
    """micros for many "YYYY-MM-DDTHH:MM:SS" texts at once (numpy parses ISO times in C)."""
    try:
        t = np.array(stamps, dtype="datetime64[us]")
    except ValueError:                    # an odd form: one at a time
        return np.array([micros(x) for x in stamps], dtype=np.uint64)
    us = t.astype(np.int64)
    return np.maximum(us, 0).astype(np.uint64)
