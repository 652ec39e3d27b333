"""chronoledger: a fast, checksummed, replayable binary ledger for agents,
simulations and behaviour logs, and the SQLite stores built beside it."""

from importlib.metadata import PackageNotFoundError, version as _version

from chronoledger import core, errors
from chronoledger.core import AppendBuffer, crc64, dequantize, quantize
from chronoledger.errors import (
    ChecksumError,
    ChronoledgerError,
    CorruptDataError,
    OrderError,
    QuantizationError,
    TruncatedError,
)


_SUBPACKAGES = ("chronicle", "runtime", "sequence", "tables", "world")


def __getattr__(name: str):
    # The subsystems load on first use, so `import chronoledger` stays light.
    if name == "Chronicle":
        from chronoledger.chronicle import Chronicle
        return Chronicle
    if name == "RuntimeMemoryStore":
        from chronoledger.runtime import RuntimeMemoryStore
        return RuntimeMemoryStore
    if name == "TableRegistry":
        from chronoledger.tables import TableRegistry
        return TableRegistry
    if name in _SUBPACKAGES:                 # cl.world.run(...), cl.sequence...: imported when first named
        import importlib
        return importlib.import_module(f"chronoledger.{name}")
    raise AttributeError(f"module 'chronoledger' has no attribute {name!r}")


try:
    __version__ = _version("chronoledger")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "core",
    "errors",
    "AppendBuffer",
    "crc64",
    "quantize",
    "dequantize",
    "ChronoledgerError",
    "CorruptDataError",
    "ChecksumError",
    "TruncatedError",
    "OrderError",
    "QuantizationError",
    "Chronicle",
    "RuntimeMemoryStore",
    "TableRegistry",
]
