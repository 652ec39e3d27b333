"""``chronoledger core ...``: the compiled core from the command line."""

from __future__ import annotations

from pathlib import Path

import click

from chronoledger import core
from chronoledger.cli.output import Group, argument, emit, emit_object, output_options


@click.group("core", cls=Group)
def core_group() -> None:
    """The compiled core: CPU paths and checksums.

    Example:

    \b
        chronoledger core info
    """


@core_group.command("info")
@output_options("json")
def info(fmt: str) -> None:
    """Show which CRC-64 path this CPU uses and which it could use.

    Example:

    \b
        chronoledger core info --json
    """
    found = {"crc64_path": core.crc64_impl(), "crc64_paths_available": list(core.crc64_paths())}

    def text():
        click.echo(f"crc64 path in use: {found['crc64_path']}")
        click.echo(f"crc64 paths available: {', '.join(found['crc64_paths_available'])}")
    emit_object(found, fmt, text)


@core_group.command("crc64")
@argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
          help="The files to checksum (read memory-mapped).")
@output_options()
def crc64_cmd(files: tuple[Path, ...], fmt: str) -> None:
    """Print the CRC-64/XZ of each FILE (as `xz --check=crc64` would compute it).

    The default output is one "CRC  FILE" line per file, as sha256sum
    prints; the rows' columns are crc64 (16 hex digits) and file.

    Example:

    \b
        chronoledger core crc64 run.cmeta columns/*.col
    """
    def rows():
        for path in files:
            yield {"crc64": f"{core.crc64_file(path):016x}", "file": str(path)}

    def text(found):
        for r in found:
            click.echo(f"{r['crc64']}  {r['file']}")
    emit(rows(), fmt, ["crc64", "file"], text=text)
