"""The exception hierarchy of chronoledger.

Every error the package raises is a :class:`ChronoledgerError`.  Errors about
bad bytes are also :class:`ValueError`, so code that already guards parsing
with ``except ValueError`` keeps working.  Messages take the form
``"what failed: why"`` and name the offset, index, file or field involved.

Every public exception class of the package is defined here (other modules
re-export some of them under their old names), and :func:`status_error` is
the one table that turns a status of the compiled kernels into an exception.
SQLite's errors are turned into these classes by one function too,
:func:`chronoledger.sqlite.sqlite_error`.
"""

from __future__ import annotations

__all__ = [
    "ChronoledgerError",
    "RequestError",
    "CorruptDataError",
    "ChecksumError",
    "TruncatedError",
    "OrderError",
    "QuantizationError",
    "UnsupportedError",
    "MissingDependencyError",
    "SchemaError",
    "ValidationError",
    "FieldValueError",
    "NotFoundError",
    "ExistsError",
    "MissingFileError",
    "WalLostError",
    "ConfigError",
    "StepError",
    "QueryError",
    "StorageError",
    "DatabaseBusyError",
    "WriterLockedError",
    "ModelError",
    "ReportChannelError",
    "ReplayMismatch",
    "status_error",
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


class FieldValueError(ValidationError):
    """A value a field of a table cannot hold (a wrong type, a number out of
    range, text that is not a date...); the message says why.  Raised by
    ``chronoledger.tables.values.coerce`` (where it was called ``Bad``, a
    name kept there); the stores collect these into one ValidationError."""


class NotFoundError(ValidationError):
    """A value refers to a row, session, proposal... that does not exist."""


class ConfigError(ChronoledgerError, ValueError):
    """A configuration file or option is invalid."""


class StepError(ConfigError):
    """A replay's step function (user code) raised, or returned something
    that is not a cycle's result.  ``index`` and ``timestamp`` name the
    record being replayed (None when the step factory itself failed); the
    step's own exception, with its traceback, is ``__cause__``."""

    def __init__(self, message: str, index: int | None = None, timestamp: int | None = None):
        super().__init__(message)
        self.index = index
        self.timestamp = timestamp


class QueryError(ChronoledgerError):
    """A query is malformed or cannot be answered."""


class RequestError(ChronoledgerError):
    """An HTTP request ``chronoledger serve`` refuses before any store sees
    it: a body that is not JSON or too large, a bad parameter, a path that
    leaves its folder, a missing or wrong token.  ``status`` is the HTTP
    status it is answered with (4xx); ``extra`` the other fields of the
    JSON answer."""

    def __init__(self, status: int, message: str, **extra: object):
        super().__init__(message)
        self.status = status
        self.extra = extra


class StorageError(ChronoledgerError, OSError):
    """A database file cannot be opened, read or written: a failing or full
    disk, a missing permission, a read-only file or folder, a file moved
    away while open.  Also an :class:`OSError`, as the same failure met
    outside SQLite would be.

    ``errno``, ``strerror`` and ``filename`` are set where the cause has
    them; ``str()`` is the message alone, which names the file itself
    (OSError's form would add "[Errno N]" and the path again)."""

    def __str__(self) -> str:
        if len(self.args) >= 2 and isinstance(self.strerror, str) and self.strerror:
            return self.strerror
        return super().__str__()


class WalLostError(StorageError):
    """The WAL of a database a store had open was removed under it: another
    copy of SQLite in the same process (Python's ``sqlite3``) closed a
    connection to the file and, unable to see the store's locks (POSIX locks
    are per process), took itself for the last connection (docs/runtime.md,
    "Two SQLite libraries in one process").  The store has copied what it
    committed into the database file and closed; open it again."""


class MissingFileError(StorageError, FileNotFoundError):
    """A database or folder a store was asked to open does not exist (read
    commands never create one).  Also a :class:`FileNotFoundError`."""


class ExistsError(StorageError, FileExistsError):
    """A file we were asked to create exists already, and we do not replace
    it unasked (a run that exists, an export target without ``--force``).
    Also a :class:`FileExistsError`."""


class DatabaseBusyError(ChronoledgerError):
    """Another connection held the write lock for longer than the busy timeout."""


class WriterLockedError(ChronoledgerError):
    """Another writer (in this or another process) holds the chronicle."""


class ModelError(ChronoledgerError):
    """A language model could not give a text for a request.

    One class for every cause (bad configuration, refused request, timeout,
    empty answer) so that the scheduler can stop a run cleanly with one
    ``except``; the message tells a person which of them it was.
    """


class ReportChannelError(ChronoledgerError):
    """A day's report could not be delivered to its report channel (a
    webhook): the message names the URL, the day, the HTTP status or the
    network failure, and how many attempts were made."""


class ReplayMismatch(CorruptDataError):
    """The replayed run asked the model for something the recorded run did not."""


# ---------------------------------------------------------------------------
# kernel status -> exception, the one table
#
# The codes are ``cl_status`` of native/cl_status.h (tests/test_errors.py checks
# that they agree).  The extensions test for CL_OK in C and call status_error
# only on the slow path, to raise what it returns.

_STATUS: dict[int, tuple[type[BaseException], str]] = {
    1: (MemoryError, "out of memory"),                                   # CL_ERR_NOMEM
    2: (ValueError, "invalid argument"),                                 # CL_ERR_ARG
    3: (QuantizationError, "value out of range"),                        # CL_ERR_RANGE
    4: (CorruptDataError, "malformed bytes"),                            # CL_ERR_CORRUPT
    5: (TruncatedError, "bytes end too early"),                          # CL_ERR_TRUNCATED
    6: (OrderError, "timestamp older than the last flushed one"),        # CL_ERR_ORDER
    7: (UnsupportedError, "not supported by this CPU or build"),         # CL_ERR_UNSUPPORTED
    8: (ValueError, "output buffer too small"),                          # CL_ERR_SMALL
    # CL_ERR_SQLITE: _sqlbulk, which has SQLite's result code, raises apsw's class for it
    # (chronoledger.sqlite.sqlite_error maps those); this is only the fallback without a code
    9: (ChronoledgerError, "SQLite refused"),                            # CL_ERR_SQLITE
}


def status_error(status: int, what: str, why: str | None = None, offset: int | None = None) -> BaseException:
    """The exception for a kernel's ``status`` (not CL_OK), with the message
    ``"what: why"`` (``why`` defaults to the status's own reason); ``offset``
    is kept by the :class:`CorruptDataError` kinds.  An unknown status is a
    :class:`ChronoledgerError` that says its number."""
    cls, default_why = _STATUS.get(status, (ChronoledgerError, f"unknown status {status}"))
    message = f"{what}: {why if why is not None else default_why}"
    if offset is not None and issubclass(cls, CorruptDataError):
        return cls(message, offset=offset)
    return cls(message)
