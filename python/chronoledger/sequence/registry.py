"""Where a user folder's mirrors live, and their ``databases.yml``, the
registry of the mirrors: for each, its file, schema version, counts, last
sync and attempt, status, and the fingerprint of the YAML it was built from,
which :func:`status` compares with the folder now.

The mirrors live in ``data/chronoledger/`` (``User/Data/chronoledger/`` for
a folder spelled ``User``), never in ``data/`` itself: Chronos writes
``user/data`` too (its own ``chronos_core.db``... under the same names, on
every item save and every ``sequence sync``, and its own databases.yml), so
each tool keeps to its folder and neither replaces the other's files.  What
an older chronoledger wrote directly into ``data/`` is moved into the new
folder the first time a command writes (:func:`move_legacy_files`); Chronos's
files there are left as they are.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import apsw
import yaml

from chronoledger import sqlite as db
from chronoledger._fsutil import atomic_write_bytes
from chronoledger._isotime import iso_text
from chronoledger.errors import ChronoledgerError
from chronoledger.sequence import schema
from chronoledger.sequence.lock import sync_lock
from chronoledger.sequence.reader import child, find_user_folder

_logger = logging.getLogger("chronoledger.sequence")

REGISTRY = "databases.yml"
#: The folder inside the user folder's data/ that holds chronoledger's mirrors.
MIRROR_FOLDER = "chronoledger"


def chronos_data_folder(user: Path) -> Path:
    """The user folder's data folder, where Chronos keeps its own mirrors
    (not created): ``data`` for a folder named ``user`` (Chronos reads
    ``user/data``, and where case matters ``user/Data`` is another folder);
    otherwise the one there is in any case, else ``Data``."""
    if user.name == "user":
        return user / "data"
    existing = child(user, "data")
    return existing if existing is not None else user / "Data"


def mirror_folder(user: Path) -> Path:
    """Where the mirrors live: ``data/chronoledger`` of the user folder (not created)."""
    return chronos_data_folder(user) / MIRROR_FOLDER


def existing_mirror_folder(user: Path) -> Path | None:
    """The mirrors' folder if it exists, else None (for commands that only read)."""
    d = mirror_folder(user)
    return d if d.is_dir() else None


def data_folder(user: Path) -> Path:
    """The mirrors' folder, created if missing, with what an older
    chronoledger left in the data folder itself moved into it."""
    d = mirror_folder(user)
    d.mkdir(parents=True, exist_ok=True)
    if legacy_files(user, d):
        with sync_lock(d, wait=True):     # one mover at a time; a second finds nothing left to move
            for line in move_legacy_files(user, d):
                _logger.warning("%s", line)
    return d


# --- what an older chronoledger wrote into data/ itself --------------------------------

#: The databases an older chronoledger wrote into data/, and a table (and column) only
#: its own has: Chronos writes databases of the same names, without a user_version.
_LEGACY_DATABASES = {"chronos_core.db": ("points_ledger", "balance"),
                     "chronos_events.db": ("command_runs", "args_json"),
                     "chronos_memory.db": ("activity_facts", "weekday"),
                     "chronos_trends.db": ("item_trends", "as_of")}
#: Files no one but chronoledger writes.
_LEGACY_OURS = ("chronos_events.cmeta", "tendencies.md", "tendencies.json")
_SET_ASIDE = re.compile(r"^chronos_events\.db\.unreadable-\d{8}T\d{6}$")
#: Keys of databases.yml only chronoledger writes (in an entry, and at the top), and
#: those only Chronos writes: an older chronoledger merged its entries into Chronos's.
_OUR_ENTRY_KEYS = {"file", "schema_version", "counts", "source", "error"}
_OUR_TOP_KEYS = {"user_folder", "skipped_files", "warnings"}
_CHRONOS_ENTRY_KEYS = {"key", "name", "path", "filename", "type", "description", "records", "notes", "version"}


def _legacy_folders(user: Path) -> list[Path]:
    """The user folder's data folders (any case: on a case-sensitive system
    an older chronoledger's ``Data`` may sit beside Chronos's ``data``)."""
    try:
        entries = sorted(os.scandir(user), key=lambda e: e.name)
    except OSError:
        return []
    return [Path(e.path) for e in entries if e.name.lower() == "data" and e.is_dir(follow_symlinks=False)]


def _db_signature(path: Path) -> tuple[int, dict[str, set[str]]] | None:
    """(user_version, columns by table) of a database, or None when it cannot be read."""
    try:
        conn = db.open_readonly(path)
    except ChronoledgerError:
        return None
    try:
        version = db.user_version(conn)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return version, {t: {r[1] for r in conn.execute(f"PRAGMA table_info({db.quote_identifier(t)})")}
                         for t in tables}
    except apsw.Error:                  # control flow: a file that is no database we can read is not ours to move
        return None
    finally:
        conn.close()


def _written_by_us(path: Path, kind: str) -> bool:
    """Whether a database in data/ is one an older chronoledger built: it has a
    user_version (Chronos sets none) and a table with a column only ours have."""
    sig = _db_signature(path)
    if sig is None:
        return False
    table, column = _LEGACY_DATABASES[kind]
    return sig[0] >= 1 and column in sig[1].get(table, set())


def _registry_has_ours(path: Path) -> bool:
    try:
        reg = yaml.safe_load(path.read_bytes())
    except (OSError, yaml.YAMLError, RecursionError):
        return False
    if not isinstance(reg, dict):
        return False
    entries = reg["databases"] if isinstance(reg.get("databases"), dict) else {}
    return bool(_OUR_TOP_KEYS & set(reg)) or any(isinstance(e, dict) and _OUR_ENTRY_KEYS & set(e)
                                                 for e in entries.values())


def _legacy_action(path: Path) -> str | None:
    """What to do with a file of the data folder: "move" (an older
    chronoledger's), "restore" (Chronos's events database it set aside),
    "registry" (its databases.yml, or Chronos's with its keys merged in),
    "remove" (its lock file), or None (not ours: left alone)."""
    name = path.name
    if name == ".sequence.lock":
        return "remove"
    if name in _LEGACY_OURS:
        return "move"
    if name == REGISTRY:
        return "registry" if _registry_has_ours(path) else None
    if name in _LEGACY_DATABASES:
        return "move" if _written_by_us(path, name) else None
    if _SET_ASIDE.match(name):
        sig = _db_signature(path)
        if sig is not None and "timestamp" in sig[1].get("events", set()):      # Chronos's, set aside by us
            return "restore" if not (path.parent / "chronos_events.db").exists() else None
        return "move"                   # ours (or what was left of ours): only chronoledger makes such names
    return None


def legacy_files(user: Path, mirrors: Path) -> list[tuple[Path, str]]:
    """(file, action) for what an older chronoledger left in the data
    folder(s) itself (:func:`_legacy_action`); empty once they are moved."""
    out = []
    for folder in _legacy_folders(user):
        try:
            names = sorted(e.name for e in os.scandir(folder) if e.is_file(follow_symlinks=False))
        except OSError:
            continue
        for name in names:
            action = _legacy_action(folder / name)
            if action is not None:
                out.append((folder / name, action))
    return out


def move_legacy_files(user: Path, mirrors: Path) -> list[str]:
    """Move what an older chronoledger wrote into the data folder itself into
    ``mirrors``, and say what was done.  Only files it is sure are ours move
    (by name, and for a database by what only ours hold); one already in
    ``mirrors`` is never replaced (the older one stays, and the line says
    so).  Chronos's files stay where they are; an events database of Chronos's
    that an older chronoledger set aside as unreadable is put back when
    Chronos has not made a new one; databases.yml keeps Chronos's entries and
    loses only the keys chronoledger merged into it."""
    lines = []
    moved: dict[Path, list[str]] = {}
    for path, action in legacy_files(user, mirrors):
        folder = path.parent
        if action == "remove":
            path.unlink(missing_ok=True)
        elif action == "registry":
            lines += _split_registry(path, mirrors)
        elif action == "restore":
            lines.append(_restore(path))
        else:
            if path.suffix == ".db" or _SET_ASIDE.match(path.name):
                db.settle(path)
            target = mirrors / path.name
            if target.exists():
                lines.append(f"{path}: left where it is: {target} already exists")
                continue
            os.replace(path, target)
            moved.setdefault(folder, []).append(path.name)
    # Chronos's events database set aside by an older chronoledger, once ours has left its name
    lines += [_restore(path) for path, action in legacy_files(user, mirrors) if action == "restore"]
    for folder in _legacy_folders(user):
        for stale in db.remove_stale_builds(folder):
            _logger.info("%s: removed %s, left by a rebuild that did not finish", folder, stale.name)
        if folder in moved:
            lines.append(f"{folder}: moved {', '.join(moved[folder])} (written there by an older chronoledger) "
                         f"into {mirrors}; Chronos's own files in {folder.name}/ were left as they are")
        if not os.path.samefile(folder, mirrors.parent) and not any(folder.iterdir()):
            folder.rmdir()                    # an older chronoledger's own Data/ beside Chronos's data/, now empty
    return lines


def _restore(path: Path) -> str:
    target = path.parent / "chronos_events.db"
    os.replace(path, target)
    return f"{path}: Chronos's events database, set aside by an older chronoledger, is back as {target}"


def _split_registry(path: Path, mirrors: Path) -> list[str]:
    """An older chronoledger's databases.yml in the data folder: moved when it
    is ours alone (unless ``mirrors`` has one), else rewritten without the
    keys chronoledger merged into Chronos's (its entries and the rest as
    they were)."""
    try:
        reg = yaml.safe_load(path.read_bytes())
    except (OSError, yaml.YAMLError, RecursionError):
        return []
    if not isinstance(reg, dict):
        return []
    entries = reg["databases"] if isinstance(reg.get("databases"), dict) else {}
    chronos = ("version" in reg or "generated_at" in reg
               or any(isinstance(e, dict) and _CHRONOS_ENTRY_KEYS & set(e) for e in entries.values()))
    if not chronos:                            # ours alone: the registry of the mirrors just moved
        if (mirrors / REGISTRY).exists():
            path.unlink()
        else:
            os.replace(path, mirrors / REGISTRY)
        return []
    cleaned: dict[str, Any] = {k: v for k, v in reg.items() if k not in _OUR_TOP_KEYS}
    kept = {}
    for key, e in entries.items():
        if not isinstance(e, dict):
            kept[key] = e
            continue
        rest = {k: v for k, v in e.items() if k not in _OUR_ENTRY_KEYS}
        if _CHRONOS_ENTRY_KEYS & set(rest):      # an entry only chronoledger made goes; Chronos's keep theirs
            kept[key] = rest
    cleaned["databases"] = kept
    if cleaned == reg:
        return []
    atomic_write_bytes(path, yaml.safe_dump(cleaned, sort_keys=True, allow_unicode=True).encode("utf-8"))
    return [f"{path}: the entries and keys an older chronoledger merged into Chronos's registry were taken out "
            f"(chronoledger's registry is {mirrors / REGISTRY})"]


# --- databases.yml --------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, writing a value as often as it appears: no
    anchors and aliases (``&id001``), which other readers need not expect."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


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
    atomic_write_bytes(data / REGISTRY, yaml.dump(reg, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
                       .encode("utf-8"))


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
    existing = existing_mirror_folder(user)
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
