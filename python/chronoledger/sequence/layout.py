"""Reading a Chronos user folder: folder names matched without regard to
case, YAML read with PyYAML's C loader, keys lower-cased, durations in every
form people write them.  Nothing here writes; every file that cannot be read
becomes a :class:`Problem` (path, line, why) and the rest is read anyway.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

try:
    from yaml import CSafeLoader as Loader       # the C loader: about 10x the pure-Python one
except ImportError:                              # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as Loader

from chronoledger.errors import ConfigError

#: Top-level folders that hold logs and settings rather than items.
SPECIAL = {"schedules", "logs", "reviews", "settings", "data", "profile"}
_DATE_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.ya?ml$", re.I)
_ITEM_FILE = re.compile(r"^(.+)\.ya?ml$", re.I)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm])\s*$", re.I)
_HMM = re.compile(r"^\s*(\d{1,3}):([0-5]\d)\s*$")


@dataclass
class Problem:
    """A file (or a value in it) that could not be used, and why."""
    path: str                 # relative to the user folder, with / separators
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.path}{f':{self.line}' if self.line else ''}: {self.reason}"


@dataclass
class Item:
    slug: str
    type: str
    name: str
    path: str                 # relative to the user folder
    data: dict                # the whole mapping, keys lower-cased
    mtime: float


@dataclass
class UserTree:
    """Everything read from one user folder."""
    root: Path
    items: list[Item] = field(default_factory=list)
    completions: dict[str, dict] = field(default_factory=dict)      # date -> {"name@HH:MM": entry}
    schedules: dict[str, list] = field(default_factory=dict)         # date -> blocks
    points: dict = field(default_factory=dict)
    status: dict[str, list] = field(default_factory=dict)            # date -> snapshots
    narratives: dict[str, str] = field(default_factory=dict)         # date -> markdown
    reviews: list[tuple[str, str, dict]] = field(default_factory=list)   # (kind, relative path, data)
    settings: dict[str, Any] = field(default_factory=dict)           # file stem (lower) -> data
    problems: list[Problem] = field(default_factory=list)
    files: int = 0


def find_user_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` itself if it is named User/user, else its child of that name."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ConfigError(f"{p}: no such folder (pass the user folder, or the folder that holds it)")
    if p.name.lower() == "user":
        return p
    for child in p.iterdir():
        if child.is_dir() and child.name.lower() == "user":
            return child
    raise ConfigError(f"{p}: neither it nor a folder in it is named User/ or user/")


def child(folder: Path, name: str) -> Path | None:
    """The entry of ``folder`` named ``name`` in any case, or None."""
    if not folder.is_dir():
        return None
    want = name.lower()
    for entry in os.scandir(folder):
        if entry.name.lower() == want:
            return Path(entry.path)
    return None


def lower_keys(value: Any) -> Any:
    """Mappings with their keys lower-cased (and stripped), all the way down."""
    if isinstance(value, dict):
        return {(k.strip().lower() if isinstance(k, str) else k): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value


def parse_duration(value: Any) -> float | None:
    """Minutes from "00:05" / "02:00" (h:mm), "90d", "24h", "45m" or a bare
    number of minutes; None when the value says nothing we can read."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    m = _HMM.match(value)
    if m:
        return float(int(m.group(1)) * 60 + int(m.group(2)))
    m = _DURATION.match(value)
    if m:
        return float(m.group(1)) * {"d": 1440, "h": 60, "m": 1}[m.group(2).lower()]
    try:
        n = float(value)
    except ValueError:
        return None
    return n if n >= 0 else None


def singular(folder: str) -> str:
    """The item type a plural folder name implies (Inventory_Items -> inventory_item)."""
    f = folder.lower()
    for plural, single in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("sses", "ss"), ("xes", "x")):
        if f.endswith(plural):
            return f[: -len(plural)] + single
    return f[:-1] if f.endswith("s") and not f.endswith("ss") else f


class Reader:
    """Reads YAML files of one tree, keeping the problems."""

    def __init__(self, tree: UserTree):
        self.tree = tree

    def rel(self, path: Path) -> str:
        return path.relative_to(self.tree.root).as_posix()

    def load(self, path: Path, expect: type | tuple[type, ...] | None = None) -> Any:
        """The file's data with keys lower-cased, or None (and a Problem)."""
        self.tree.files += 1
        rel = self.rel(path)
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            self.tree.problems.append(Problem(rel, None, f"cannot be read: {exc.strerror or exc}"))
            return None
        if not raw.strip():
            self.tree.problems.append(Problem(rel, None, "the file is empty"))
            return None
        try:
            data = yaml.load(raw, Loader=Loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            what = " ".join(x for x in (exc.context, exc.problem) if x)
            self.tree.problems.append(Problem(rel, line, f"malformed YAML: {what}"))
            return None
        except yaml.YAMLError as exc:
            self.tree.problems.append(Problem(rel, None, f"malformed YAML: {exc}"))
            return None
        except UnicodeDecodeError as exc:
            self.tree.problems.append(Problem(rel, None, f"not UTF-8 text: {exc}"))
            return None
        data = lower_keys(data)
        if expect is not None and not isinstance(data, expect):
            kinds = expect if isinstance(expect, tuple) else (expect,)
            want = " or ".join({dict: "a mapping", list: "a list"}.get(k, k.__name__) for k in kinds)
            self.tree.problems.append(Problem(rel, 1, f"expected {want}, found {type(data).__name__}"))
            return None
        return data


def read_user_folder(path: str | os.PathLike[str]) -> UserTree:
    """Read every item, log and setting of the user folder at (or in) ``path``."""
    root = find_user_folder(path)
    tree = UserTree(root=root)
    rd = Reader(tree)
    for entry in sorted(os.scandir(root), key=lambda e: e.name.lower()):
        if not entry.is_dir():
            continue
        lname = entry.name.lower()
        if lname in SPECIAL:
            continue
        folder = Path(entry.path)
        default_type = singular(entry.name)
        for f in sorted(os.scandir(folder), key=lambda e: e.name):
            m = _ITEM_FILE.match(f.name)
            if not m or not f.is_file():
                continue
            if lname == "rewards" and m.group(1).lower() == "points":
                continue                      # the points ledger, not a reward
            p = Path(f.path)
            data = rd.load(p, dict)
            if data is None:
                continue
            name = data.get("name")
            if not isinstance(name, str) or not name.strip():
                tree.problems.append(Problem(rd.rel(p), 1, "the item has no name"))
                continue
            itype = data.get("type")
            itype = itype.strip().lower() if isinstance(itype, str) and itype.strip() else default_type
            tree.items.append(Item(slug=m.group(1), type=itype, name=name.strip(), path=rd.rel(p), data=data,
                                   mtime=f.stat().st_mtime))

    schedules = child(root, "schedules")
    if schedules is not None:
        for f in sorted(os.scandir(schedules), key=lambda e: e.name):
            m = _DATE_FILE.match(f.name)
            if m and f.is_file():
                data = rd.load(Path(f.path), list)
                if data is not None:
                    tree.schedules[m.group(1)] = data
        comp = child(schedules, "completions")
        if comp is not None:
            for f in sorted(os.scandir(comp), key=lambda e: e.name):
                m = _DATE_FILE.match(f.name)
                if m and f.is_file():
                    data = rd.load(Path(f.path), dict)
                    if data is None:
                        continue
                    entries = data.get("entries") or {}
                    if not isinstance(entries, dict):
                        tree.problems.append(Problem(rd.rel(Path(f.path)), None, "entries: expected a mapping"))
                        continue
                    tree.completions[m.group(1)] = entries

    rewards = child(root, "rewards")
    points = child(rewards, "points.yml") if rewards is not None else None
    if points is not None:
        tree.points = rd.load(points, dict) or {}

    logs = child(root, "logs")
    status = child(logs, "status") if logs is not None else None
    if status is not None:
        for f in sorted(os.scandir(status), key=lambda e: e.name):
            m = _DATE_FILE.match(f.name)
            if m and f.is_file():
                data = rd.load(Path(f.path), list)
                if data is not None:
                    tree.status[m.group(1)] = data
    narr = child(logs, "narratives") if logs is not None else None
    if narr is not None:
        for f in sorted(os.scandir(narr), key=lambda e: e.name):
            m = re.match(r"^(\d{4}-\d{2}-\d{2})\.md$", f.name, re.I)
            if m and f.is_file():
                try:
                    tree.narratives[m.group(1)] = Path(f.path).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    tree.problems.append(Problem(rd.rel(Path(f.path)), None, f"cannot be read: {exc}"))

    reviews = child(root, "reviews")
    if reviews is not None:
        for kind in ("daily", "weekly", "monthly"):
            folder = child(reviews, kind)
            if folder is None:
                continue
            for f in sorted(os.scandir(folder), key=lambda e: e.name):
                if _ITEM_FILE.match(f.name) and f.is_file():
                    data = rd.load(Path(f.path), dict)
                    if data is not None:
                        tree.reviews.append((kind, rd.rel(Path(f.path)), data))

    settings = child(root, "settings")
    if settings is not None:
        for f in sorted(os.scandir(settings), key=lambda e: e.name):
            m = _ITEM_FILE.match(f.name)
            if m and f.is_file():
                data = rd.load(Path(f.path))
                if data is not None:
                    tree.settings[m.group(1).lower()] = data
    return tree


def valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
        return True
    except ValueError:
        return False
