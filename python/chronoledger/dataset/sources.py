"""Which files a dataset reads: a folder (every ``*.cmeta`` below it), a glob,
a list of paths, and what each run is called."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from chronoledger.errors import ConfigError, MissingFileError, UnsupportedError

SUFFIX = ".cmeta"


def resolve(sources: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[tuple[str, Path]]:
    """(run, path) of every chronicle ``sources`` names, in a stable order
    (sorted by path): a folder gives the ``*.cmeta`` files below it, a glob
    what it matches (``**`` recursing), a list each of its items.  A run is
    called by its path relative to the folder (or the glob's fixed part),
    without the suffix: ``seed=3/run`` for ``runs/seed=3/run.cmeta``.

    A URL (``s3://...``) is refused here for now: UnsupportedError says so."""
    items = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    if not items:
        raise ConfigError("dataset: no sources given")
    out: list[tuple[str, Path]] = []
    for item in items:
        text = os.fspath(item)
        if not isinstance(text, str):
            raise ConfigError(f"dataset: a source is a path or a glob, got {type(item).__name__}")
        if "://" in text and not text.startswith("file://"):
            raise UnsupportedError(f"dataset: {text}: remote sources (fsspec URLs) are not read yet; copy the "
                                   f"files locally, or name local paths")
        text = text[len("file://"):] if text.startswith("file://") else text
        out += _one(text)
    seen: dict[str, Path] = {}
    for run, path in out:
        if run in seen and seen[run] != path:
            raise ConfigError(f"dataset: two files would be run {run!r} ({seen[run]} and {path}); name them apart")
        seen[run] = path
    return sorted(set(out), key=lambda rp: str(rp[1]))


def _one(text: str) -> list[tuple[str, Path]]:
    p = Path(text)
    if any(ch in text for ch in "*?["):
        base = Path(_fixed_part(text))
        found = [Path(x) for x in glob.glob(text, recursive=True) if Path(x).is_file()]
        return [(_run_name(x, base), x) for x in found]
    if p.is_dir():
        found = [x for x in p.rglob(f"*{SUFFIX}") if x.is_file()]
        return [(_run_name(x, p), x) for x in found]
    if p.is_file():
        return [(_run_name(p, p.parent), p)]
    raise MissingFileError(f"dataset: {text}: no such file or folder")


def _fixed_part(pattern: str) -> str:
    """The folder a glob's matches are below: its parts before the first with a wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "."


def _run_name(path: Path, base: Path) -> str:
    try:
        rel = path.resolve().relative_to(base.resolve())
    except ValueError:
        rel = Path(path.name)
    name = rel.as_posix()
    return name[:-len(SUFFIX)] if name.endswith(SUFFIX) else name
