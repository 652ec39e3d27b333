"""A user folder's ``Data/`` and its ``databases.yml``, the registry of the
mirrors: for each, its file, schema version, counts, last sync and attempt,
status, and the fingerprint of the YAML it was built from, which
:func:`status` compares with the folder now.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from chronoledger._fsutil import atomic_write_bytes
from chronoledger._isotime import iso_text
from chronoledger.sequence import schema
from chronoledger.sequence.reader import child, find_user_folder

REGISTRY = "databases.yml"


def data_folder(user: Path) -> Path:
    """``User/Data`` (any case), created if missing."""
    existing = child(user, "data")
    d = existing if existing is not None else user / "Data"
    d.mkdir(exist_ok=True)
    return d


def now_text() -> str:
    return datetime.now(timezone.utc).astimezone().replace(microsecond=0).isoformat()


def read_registry(data: Path) -> dict:
    """databases.yml, or an empty registry when it is missing or not one we
    wrote (it only describes the mirrors, and the next sync writes it whole)."""
    p = data / REGISTRY
    try:
        reg = yaml.safe_load(p.read_bytes())
    except (OSError, yaml.YAMLError, RecursionError):
        return {"databases": {}}
    if not isinstance(reg, dict) or not isinstance(reg.get("databases", {}), dict):
        return {"databases": {}}
    reg["databases"] = {k: v for k, v in (reg.get("databases") or {}).items() if isinstance(v, dict)}
    return reg


def write_registry(data: Path, reg: dict) -> None:
    atomic_write_bytes(data / REGISTRY, yaml.safe_dump(reg, sort_keys=False).encode("utf-8"))


def mark_failed(reg: dict, name: str, exc: BaseException) -> None:
    """The mirror ``name`` could not be built: the registry says why (its previous file stays)."""
    reg["databases"][name].update({"status": "failed", "error": f"{type(exc).__name__}: {exc}"})


def mark_built(reg: dict, name: str, counts: dict, when: str, attempt: str, source: dict | None = None) -> None:
    """The mirror ``name`` was put in place at ``when``, holding ``counts``
    rows, from the YAML whose fingerprint is ``source`` (None: not taken)."""
    entry = reg["databases"].setdefault(name, {})
    entry.pop("error", None)
    fields: dict[str, Any] = {"file": schema.FILES[name], "schema_version": schema.VERSIONS[name], "counts": counts,
                              "last_sync": when, "last_attempt": attempt, "status": "ok"}
    if source is not None:
        fields["source"] = source
    entry.update(fields)


def fingerprint(user: Path) -> dict:
    """A summary of the YAML that changes when any file is added, removed,
    moved, resized or touched (Data/ is not part of it): a hash of every
    relative path with its size and modification time, plus totals."""
    h = hashlib.sha256()
    totals = [0, 0, 0]                      # files, bytes, newest change

    def walk(folder: str, rel: str, top: bool) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                if not (top and e.name.lower() == "data"):
                    walk(e.path, f"{rel}{e.name}/", False)
            elif e.name.lower().endswith((".yml", ".yaml", ".md")):
                try:
                    st = e.stat()
                    size, mtime = st.st_size, st.st_mtime_ns
                except OSError:               # a dangling link: counted by name only
                    size = mtime = -1
                # a name that is not UTF-8 comes as lone surrogates: hashed as its own bytes
                h.update(f"{rel}{e.name}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
                totals[0] += 1
                totals[1] += max(size, 0)
                totals[2] = max(totals[2], mtime)

    walk(str(user), "", True)
    return {"files": totals[0], "bytes": totals[1], "newest_ns": totals[2], "sha256": h.hexdigest()}


def status(user_path: str | os.PathLike[str]) -> dict:
    """Each mirror: file, schema version, counts, last sync and its age, and
    whether the YAML changed since (by the fingerprint taken at that sync)."""
    user = find_user_folder(user_path)
    existing = child(user, "data")
    reg = read_registry(existing) if existing is not None else {"databases": {}}
    fp = fingerprint(user)
    now = datetime.now(timezone.utc)
    databases: dict[str, dict[str, Any]] = {}
    for name in schema.DATABASES:
        e = dict(reg["databases"].get(name, {}))
        path = (existing / schema.FILES[name]) if existing is not None else None
        e["exists"] = bool(path is not None and path.exists())
        if e.get("last_sync"):
            age = now - datetime.fromisoformat(iso_text(e["last_sync"]))
            e["age_seconds"] = int(age.total_seconds())
            e["yaml_changed_since"] = e.get("source") != fp
        else:
            e["yaml_changed_since"] = True
        databases[name] = e
    return {"user": str(user), "yaml": fp, "databases": databases}
