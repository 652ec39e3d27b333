"""chronoledger: a fast, checksummed, replayable binary ledger for agents,
simulations and behaviour logs, and the SQLite stores built beside it."""

import importlib

from chronoledger import core, errors
from chronoledger._version import __version__
from chronoledger.core import AppendBuffer, crc64, dequantize, quantize
from chronoledger.errors import (
    ChecksumError,
    ChronoledgerError,
    CorruptDataError,
    OrderError,
    QuantizationError,
    TruncatedError,
)


_SUBPACKAGES = ("chronicle", "dataset", "runtime", "sequence", "tables", "world")


def __getattr__(name: str):
    # Deliberately lazy: the subsystems load on first use, so `import chronoledger` stays light
    # (DESIGN.md: cl.Chronicle, cl.sequence, cl.world... are imported when first named).
    if name == "Chronicle":
        from chronoledger.chronicle import Chronicle
        return Chronicle
    if name == "Run":                        # cl.Run(path).log({...}, step=i): the chronicle's run recorder
        from chronoledger.chronicle import Run
        return Run
    if name == "RuntimeMemoryStore":
        from chronoledger.runtime import RuntimeMemoryStore
        return RuntimeMemoryStore
    if name == "TableRegistry":
        from chronoledger.tables import TableRegistry
        return TableRegistry
    if name in _SUBPACKAGES:                 # cl.world.run(...), cl.sequence...: imported when first named
        return importlib.import_module(f"chronoledger.{name}")
    raise AttributeError(f"module 'chronoledger' has no attribute {name!r}")


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
    "Run",
    "RuntimeMemoryStore",
    "TableRegistry",
]
