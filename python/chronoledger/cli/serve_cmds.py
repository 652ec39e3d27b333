"""``chronoledger serve``: the HTTP API and the pages (docs/server.md)."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import click

from chronoledger.cli.output import EXIT_UNUSABLE, EXIT_USAGE, Command, exit_codes

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command("serve", cls=Command)
@click.option("--user", type=FOLDER, help="A Chronos user folder (synced): /api/data, /api/trends/metrics, /digest.")
@click.option("--tables", type=FILE, help="A table registry database: /api/tables.")
@click.option("--schemas", type=FOLDER, multiple=True, help="Schema folders of the registry (as `tables --schemas`).")
@click.option("--runtime", type=FILE, help="A runtime memory database: /api/runtime (read-only).")
@click.option("--world", type=FILE, help="A world database: /api/world, /world.")
@click.option("--runs", type=FOLDER, help="A folder of chronicles (.cmeta, searched below): /api/runs, /runs.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on (0.0.0.0: every interface; then give a --token).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="The port.")
@click.option("--token", help="Allow writes to whoever sends Authorization: Bearer TOKEN (default: "
                              "$CHRONOLEDGER_SERVE_TOKEN; without one the server is read-only).")
@click.option("--max-body", type=click.IntRange(1024), default=1 << 20, show_default=True,
              help="The largest request body taken, in bytes (larger: 413).")
def serve_cmd(user: Path | None, tables: Path | None, schemas: tuple[Path, ...], runtime: Path | None,
              world: Path | None, runs: Path | None, host: str, port: int, token: str | None, max_body: int) -> None:
    """Serve the HTTP API and the pages over the stores given, until stopped
    (needs the server extra: pip install 'chronoledger[server]').

    Reads need nothing; every write needs the token.  The API is described
    at /openapi.json and listed at /docs.

    Example:

    \b
        chronoledger demo
        chronoledger serve --user chronoledger-demo/sequence/User --tables chronoledger-demo/tables.db \\
            --runtime chronoledger-demo/runtime.sqlite --world chronoledger-demo/world/world.db \\
            --runs chronoledger-demo
    """
    if importlib.util.find_spec("starlette") is None or importlib.util.find_spec("uvicorn") is None:
        click.echo("error: serve needs Starlette and uvicorn; pip install 'chronoledger[server]'", err=True)
        sys.exit(EXIT_UNUSABLE)
    import uvicorn                      # optional (the server extra): imported where it is needed

    from chronoledger.server import ServeConfig, create_app     # imports Starlette: the same extra
    with exit_codes():
        config = ServeConfig(user=user, tables=tables, runtime=runtime, world=world, runs=runs,
                             schemas=tuple(schemas), token=token or ServeConfig.token_from_env(), max_body=max_body)
        app = create_app(config)
        app.state.stores.check()            # a wrong file is refused now, not by every request after
    try:                                    # say so now, not after "serving on ..."
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        click.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_USAGE)
    if host not in ("127.0.0.1", "localhost", "::1") and config.token is None:
        click.echo(f"warning: listening on {host} with no token: anyone who reaches it can read every store given",
                   err=True)
    click.echo(f"serving on http://{host}:{port}/ ({'writes need the token' if config.token else 'read-only'}); "
               "Ctrl-C stops", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
