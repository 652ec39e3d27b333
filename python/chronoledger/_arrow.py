"""The arrow extra (pyarrow), imported on use: optional, and heavy to import."""

from __future__ import annotations

from typing import Any

from chronoledger.errors import MissingDependencyError


def parquet_modules(what: str = "parquet export") -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), or MissingDependencyError naming ``what`` and the extra."""
    try:
        import pyarrow as pa              # optional (the arrow extra), and heavy: imported on use
        import pyarrow.parquet as pq      # optional, as pyarrow
    except ImportError:
        raise MissingDependencyError(f"{what} needs pyarrow, which is not installed: "
                                     "pip install 'chronoledger[arrow]'") from None
    return pa, pq
