"""``chronoledger core ...``: the compiled core from the command line."""

from __future__ import annotations

from pathlib import Path

import click

from chronoledger import core


@click.group("core")
def core_group() -> None:
    """The compiled core: CPU paths and checksums."""


@core_group.command("info")
def info() -> None:
    """Show which CRC-64 path this CPU uses and which it could use."""
    click.echo(f"crc64 path in use: {core.crc64_impl()}")
    click.echo(f"crc64 paths available: {', '.join(core.crc64_paths())}")


@core_group.command("crc64")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
def crc64_cmd(files: tuple[Path, ...]) -> None:
    """Print the CRC-64/XZ of each FILE (as `xz --check=crc64` would compute it)."""
    for path in files:
        click.echo(f"{core.crc64_file(path):016x}  {path}")
