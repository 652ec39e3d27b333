"""``chronoledger serve``: the HTTP API over the stores and the pages to
look at them (docs/server.md).  Needs the ``server`` extra (Starlette and
uvicorn)."""

from chronoledger.server.app import create_app
from chronoledger.server.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]
