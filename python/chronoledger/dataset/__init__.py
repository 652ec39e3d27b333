"""Many runs as one dataset: chronicles (and event logs), local or in object
storage, read as one Arrow table, for DuckDB on a laptop and Dask on a
cluster.  See docs/datasets.md.

The package is callable: ``chronoledger.dataset("runs/")`` is
``chronoledger.dataset.dataset("runs/")``."""

import sys
import types
from typing import Any

from chronoledger.dataset.remote import open_remote
from chronoledger.dataset.scan import ChronicleDataset, Filters, dataset

__all__ = ["ChronicleDataset", "Filters", "dataset", "open_remote"]


class _CallableModule(types.ModuleType):
    """This package, callable as its :func:`dataset` (so that the documented
    ``chronoledger.dataset(...)`` works whether or not the module was imported)."""

    def __call__(self, sources: Any, **options: Any) -> ChronicleDataset:
        return dataset(sources, **options)


sys.modules[__name__].__class__ = _CallableModule
