"""The package's version, read from the installed distribution's metadata.

pyproject.toml's ``[project] version`` is the one source: the build copies it
into the metadata this reads.  A leaf module (it imports nothing from
chronoledger), so any layer may import it without importing the package's
root (``tests/test_version.py`` checks both).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _distribution_version

try:
    __version__ = _distribution_version("chronoledger")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
