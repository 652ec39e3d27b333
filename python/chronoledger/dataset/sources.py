"""Which files a dataset reads: a folder (every ``*.cmeta`` below it), a glob,
a list of paths, and what each run is called."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, Union

from chronoledger.dataset.remote import RemoteSource, storage_error, url_to_fs
from chronoledger.errors import ConfigError, MissingFileError

SUFFIX = ".cmeta"


Source = Union[Path, RemoteSource]


def resolve(sources: Any, storage_options: dict | None = None) -> list[tuple[str, Source]]:
    """(run, path) of every chronicle ``sources`` names, in a stable order
    (sorted by path): a folder gives the ``*.cmeta`` files below it, a glob
    what it matches (``**`` recursing), a list each of its items.  A run is
    called by its path relative to the folder (or the glob's fixed part),
    without the suffix: ``seed=3/run`` for ``runs/seed=3/run.cmeta``.

    A URL (``s3://bucket/runs/``, ``gs://...``, ``memory://...``: any
    fsspec filesystem, with ``storage_options`` for it) names remote files
    the same ways."""
    if not isinstance(sources, (str, os.PathLike, RemoteSource, list, tuple)):
        raise ConfigError(f"dataset: sources are a path, a glob, a URL or a list of them, got "
                          f"{type(sources).__name__}")
    items = [sources] if isinstance(sources, (str, os.PathLike, RemoteSource)) else list(sources)
    if not items:
        raise ConfigError("dataset: no sources given")
    out: list[tuple[str, Source]] = []
    for item in items:
        if isinstance(item, RemoteSource):
            out.append((_run_name_text(item.path.rsplit("/", 1)[-1]), item))
            continue
        if not isinstance(item, (str, os.PathLike)):
            raise ConfigError(f"dataset: a source is a path, a glob or a URL, got {type(item).__name__}")
        text = os.fspath(item)
        if not isinstance(text, str):
            raise ConfigError(f"dataset: a source is a path, a glob or a URL, got {type(item).__name__}")
        if "://" in text and not text.startswith("file://"):
            out += _remote(text, storage_options)
            continue
        text = text[len("file://"):] if text.startswith("file://") else text
        out += _one(text)
    seen: dict[str, Source] = {}
    for run, path in out:
        if run in seen and seen[run] != path:
            raise ConfigError(f"dataset: two files would be run {run!r} ({seen[run]} and {path}); name them apart")
        seen[run] = path
    return sorted(set(out), key=lambda rp: str(rp[1]))


def _remote(url: str, storage_options: dict | None) -> list[tuple[str, Source]]:
    fs, path = url_to_fs(url, storage_options)
    protocol = url.split("://", 1)[0]
    try:
        if fs.isfile(path):
            base = path.rsplit("/", 1)[0]
            found = [path]
        elif any(ch in path for ch in "*?["):
            base = _fixed_part(path)
            found = [p for p in fs.glob(path) if not fs.isdir(p)]
        elif fs.isdir(path):
            base = path.rstrip("/")
            found = [p for p in fs.find(path) if p.endswith(SUFFIX)]
        else:
            found = None
    except Exception as exc:   # noqa: BLE001 -- a filesystem's own errors (botocore's...), named
        raise storage_error(url, exc, "listing it failed: ") from None
    if found is None:
        raise MissingFileError(f"dataset: {url}: no such file or folder")
    if not found:
        raise MissingFileError(f"dataset: {url}: no chronicle there (no {SUFFIX} file, or nothing the glob matches)")
    out: list[tuple[str, Source]] = []
    for p in sorted(found):
        rel = p[len(base):].lstrip("/") if p.startswith(base) else p.rsplit("/", 1)[-1]
        out.append((_run_name_text(rel), RemoteSource(fs, p, f"{protocol}://{p}")))
    return out


def _run_name_text(name: str) -> str:
    return name[:-len(SUFFIX)] if name.endswith(SUFFIX) else name


def _one(text: str) -> list[tuple[str, Source]]:
    p = Path(text)
    if p.is_file():                           # a name with [ in it is a file before it is a glob
        return [(_run_name(p, p.parent), p)]
    if any(ch in text for ch in "*?["):
        base = Path(_fixed_part(text))
        found = [Path(x) for x in glob.glob(text, recursive=True) if Path(x).is_file()]
        if not found:
            raise MissingFileError(f"dataset: {text}: the glob matches no file")
        return [(_run_name(x, base), x) for x in found]
    if p.is_dir():
        found = [x for x in p.rglob(f"*{SUFFIX}") if x.is_file()]
        if not found:
            raise MissingFileError(f"dataset: {text}: the folder holds no {SUFFIX} file")
        return [(_run_name(x, p), x) for x in found]
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
    return _run_name_text(rel.as_posix())
