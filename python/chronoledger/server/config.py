"""What ``chronoledger serve`` serves, and its limits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from chronoledger.errors import ConfigError

#: a request body larger than this is refused (413) before it is read whole
DEFAULT_MAX_BODY = 1 << 20
#: seconds a read-only SQL query of /api/data may run, and rows it may return at most
DEFAULT_SQL_TIMEOUT = 10.0
MAX_SQL_ROWS = 10_000
#: the text and blobs one answer of /api/data/query may hold (and SQLite's limit on one value there)
MAX_SQL_BYTES = 32 << 20
#: SQL queries run at once; the others wait their turn without holding a worker thread
SQL_SLOTS = 4
#: points a series is thinned to unless full resolution is asked for
DEFAULT_POINTS = 2000


@dataclass(frozen=True)
class ServeConfig:
    """The stores a server answers for (None: that part of the API answers
    404 saying how to give it) and its limits.  ``token``: the secret every
    write must carry (``Authorization: Bearer TOKEN``); None makes the
    server read-only."""

    user: Path | None = None            # a Chronos user folder (its mirrors: /api/data, /api/trends, /digest)
    tables: Path | None = None          # a table registry database (/api/tables)
    runtime: Path | None = None         # a runtime memory database (/api/runtime)
    world: Path | None = None           # a world database (/api/world, /world)
    runs: Path | None = None            # a folder of chronicles (/api/runs, /runs)
    schemas: tuple[Path, ...] = ()      # schema folders of the table registry, as `tables --schemas`
    token: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    sql_timeout: float = DEFAULT_SQL_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("tables", "runtime", "world"):
            p = getattr(self, name)
            if p is not None and not Path(p).is_file():
                raise ConfigError(f"--{name}: {p}: no such database file")
        for name in ("user", "runs"):
            p = getattr(self, name)
            if p is not None and not Path(p).is_dir():
                raise ConfigError(f"--{name}: {p}: no such folder")
        if self.token is not None and (len(self.token) < 8 or self.token != self.token.strip()
                                       or any(c.isspace() for c in self.token)):
            raise ConfigError("the token (--token or $CHRONOLEDGER_SERVE_TOKEN): at least 8 characters, no spaces "
                              "(a short one is guessed)")
        if self.max_body < 1024:
            raise ConfigError(f"max_body: {self.max_body} bytes is too small for any request; at least 1024")
        if not self.sql_timeout > 0:
            raise ConfigError(f"sql_timeout: {self.sql_timeout} must be above 0 seconds")

    @classmethod
    def token_from_env(cls) -> str | None:
        """CHRONOLEDGER_SERVE_TOKEN, where a token is kept out of the command line (and so out of ``ps``)."""
        return os.environ.get("CHRONOLEDGER_SERVE_TOKEN") or None
