"""ISO-8601 time text in the form ``datetime.fromisoformat`` reads on every
Python this package supports (3.10 reads no trailing Z, and only 3 or 6
digits of a fraction of seconds).  Shared by the stores, which otherwise
import nothing from one another."""

from __future__ import annotations

import re

#: a fraction of seconds (after . or ,) of any length; an offset +hhmm at the end of a time
_ISO_FRACTION = re.compile(r"(\d\d:\d\d:\d\d)[.,](\d+)")
_ISO_OFFSET = re.compile(r"(\d\d:\d\d(?::\d\d(?:\.\d+)?)?[+-]\d\d)(\d\d)\Z")


def iso_text(text: str) -> str:
    """ISO-8601 text in the form ``datetime.fromisoformat`` reads on every
    Python this package supports: a trailing Z (or z) as +00:00, a fraction
    of seconds of any length as exactly 6 digits (cut past microseconds, as
    Python 3.11 does), an offset +hhmm as +hh:mm.  Python 3.10 reads none of
    these.  Anything else is left for fromisoformat to accept or refuse."""
    s = text.strip()
    if s[-1:] in ("Z", "z"):
        s = s[:-1] + "+00:00"
    s = _ISO_FRACTION.sub(lambda m: f"{m[1]}.{(m[2] + '000000')[:6]}", s, count=1)
    return _ISO_OFFSET.sub(r"\1:\2", s)
