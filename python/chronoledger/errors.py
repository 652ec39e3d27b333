"""The exception hierarchy of chronoledger.

Every error the package raises is a :class:`ChronoledgerError`.  Errors about
bad bytes are also :class:`ValueError`, so code that already guards parsing
with ``except ValueError`` keeps working.  Messages take the form
``"what failed: why"`` and name the offset, index, file or field involved.
"""

from __future__ import annotations

__all__ = [
    "ChronoledgerError",
    "CorruptDataError",
    "ChecksumError",
    "TruncatedError",
    "OrderError",
    "QuantizationError",
    "UnsupportedError",
    "MissingDependencyError",
    "SchemaError",
    "ValidationError",
    "ConfigError",
    "QueryError",
]


class ChronoledgerError(Exception):
    """Root of every error raised by chronoledger."""


class CorruptDataError(ChronoledgerError, ValueError):
    """Stored or received bytes are malformed.

    ``offset`` is the byte offset at which the problem was found, when known.
    """

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.offset = offset


class ChecksumError(CorruptDataError):
    """A CRC-64 over stored bytes does not match the bytes."""


class TruncatedError(CorruptDataError):
    """Bytes end before the structure they hold is complete."""


class OrderError(ChronoledgerError, ValueError):
    """A record is older than what has already been flushed."""


class QuantizationError(ChronoledgerError, ValueError):
    """A float cannot be stored as fixed point (NaN, infinity, or outside int64).

    ``index`` and ``value`` name the offending element.
    """

    def __init__(self, message: str, index: int | None = None, value: float | None = None):
        super().__init__(message)
        self.index = index
        self.value = value


class UnsupportedError(ChronoledgerError):
    """This machine lacks what the call asks for (e.g. a CPU instruction set)."""


class MissingDependencyError(UnsupportedError, ImportError):
    """An optional package the call needs is not installed; the message says
    which extra installs it (``pip install 'chronoledger[arrow]'``)."""


class SchemaError(ChronoledgerError):
    """A schema or migration is invalid or incompatible."""


class ValidationError(ChronoledgerError, ValueError):
    """A value written to a store does not satisfy its declared rules.

    ``problems``, when the store checks several fields at once, lists every
    one found as ``(row, field, reason)`` (``row`` is the index in a batch,
    or None for a single row); the message names them all.
    """

    def __init__(self, message: str, problems: list[tuple] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class NotFoundError(ValidationError):
    """A value refers to a row, session, proposal... that does not exist."""


class ConfigError(ChronoledgerError, ValueError):
    """A configuration file or option is invalid."""


class QueryError(ChronoledgerError):
    """A query is malformed or cannot be answered."""
