"""The reader: a Chronos user folder walked and read into the records every
mirror is built from (:class:`~chronoledger.sequence.records.UserTree`).

Folder names are matched without regard to case.  The walk decides which
file holds what (:func:`yaml_files`, :func:`narrative_files`); each file is
then read on its own by :func:`parse_file` (a pure function of the file:
its value and its problems), and :func:`read_user_folder` puts the results
together, which is where the one check across files happens (two files for
the same item).  Nothing here writes; every file that cannot be read becomes
a :class:`~chronoledger.sequence.records.Problem` (path, line, why) and the
rest is read anyway.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

from chronoledger.errors import ConfigError
from chronoledger.sequence.records import Item, Problem, UserTree, rel_path
from chronoledger.sequence.yamlfile import load_yaml, reads_as

#: Top-level folders that hold logs and settings rather than items.
SPECIAL = {"schedules", "logs", "reviews", "settings", "data", "profile"}
_DATE_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.ya?ml$", re.I)
_ITEM_FILE = re.compile(r"^(.+)\.ya?ml$", re.I)
_NARRATIVE_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.md$", re.I)
#: What each kind of YAML file must hold at its top ("dict", "list", None: anything), and
#: whether its entry names keep their case (a completions file's are item names, not fields).
_EXPECT_OF = {"item": ("dict", False), "schedule": ("list", False), "completions": ("dict", True),
              "points": ("dict", False), "status": ("list", False), "review": ("dict", False),
              "setting": (None, False)}
_DATED = ("schedule", "completions", "status")


# --- folders and file names --------------------------------------------------------

def find_user_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` itself if it is named User/user, else its child of that name."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ConfigError(f"{shown_name(str(p))}: no such folder (pass the user folder, or the folder that holds it)")
    if p.name.lower() == "user":
        return _utf8_path(p)
    for child in p.iterdir():
        if child.is_dir() and child.name.lower() == "user":
            return _utf8_path(child)
    raise ConfigError(f"{shown_name(str(p))}: neither it nor a folder in it is named User/ or user/")


def _utf8_path(p: Path) -> Path:
    """``p``, if its path is UTF-8: SQLite opens files by UTF-8 names only, so
    mirrors cannot be written, nor a command recorded, under any other."""
    if not utf8_name(str(p.absolute())):
        raise ConfigError(f"{shown_name(str(p))}: the folder's path is not UTF-8, and SQLite opens files only by "
                          f"UTF-8 names; rename the folder (or the one above it that is not UTF-8)")
    return p


def child(folder: Path, name: str) -> Path | None:
    """The entry of ``folder`` named ``name`` in any case, or None."""
    if not folder.is_dir():
        return None
    want = name.lower()
    for entry in os.scandir(folder):
        if entry.name.lower() == want:
            return Path(entry.path)
    return None


def singular(folder: str) -> str:
    """The item type a plural folder name implies (Inventory_Items -> inventory_item)."""
    f = folder.lower()
    for plural, single in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("sses", "ss"), ("xes", "x")):
        if f.endswith(plural):
            return f[: -len(plural)] + single
    return f[:-1] if f.endswith("s") and not f.endswith("ss") else f


def utf8_name(name: str) -> bool:
    """Whether a file name read from the OS is UTF-8.  One that is not comes
    with its bytes as lone surrogates (``os.fsdecode``), which no UTF-8 text
    (a database, databases.yml, the terminal) can hold."""
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def shown_name(name: str) -> str:
    """A file name as text that can be shown and stored: bytes that are not
    UTF-8 as \\xNN (``caf\\xe9.yml``)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _scan(folder: Path, pattern: re.Pattern, odd: list[str] | None = None) -> list[tuple[str, re.Match]]:
    """The files of ``folder`` whose names match ``pattern``, sorted by name.
    Those whose names are not UTF-8 are left out and, with ``odd``, their
    paths appended to it."""
    out = []
    for e in sorted(os.scandir(folder), key=lambda e: e.name):
        m = pattern.match(e.name)
        if m and e.is_file():
            if utf8_name(e.name):
                out.append((e.path, m))
            elif odd is not None:
                odd.append(e.path)
    return out


# --- the walk: which file holds what -----------------------------------------------

class FileTask(NamedTuple):
    """A file of the user folder and what the walk found it to hold."""
    path: str                 # as the OS gives it, under the user folder
    kind: str                 # item, schedule, completions, points, status, review, setting, narrative
    #: item: (file stem, the type its folder implies); schedule, completions, status and
    #: narrative: the date its name gives; review: daily, weekly or monthly; setting: the
    #: file stem, lower-cased; points: None
    key: Any


class _Scanner:
    """A folder's files, or none and a Problem: one unreadable folder
    (permissions, a file where a folder belongs) skips what it holds, never
    the sync.  Files whose names are not UTF-8 are skipped and counted."""

    def __init__(self, tree: UserTree):
        self.tree = tree
        self.root = str(tree.root)

    def files(self, folder: Path | None, pattern: re.Pattern) -> list[tuple[str, re.Match]]:
        if folder is None:
            return []
        odd: list[str] = []
        try:
            found = _scan(folder, pattern, odd)
        except OSError as exc:
            self.tree.problems.append(Problem(rel_path(self.root, str(folder)), None,
                                              f"cannot be read: {exc.strerror or exc}; what it holds is skipped"))
            return []
        for fpath in odd:                     # no text can hold the name: skipped, like an unreadable file
            self.tree.problems.append(Problem(shown_name(rel_path(self.root, fpath)), None,
                                              "the file name is not UTF-8; rename the file to read it"))
        self.tree.files += len(odd)
        return found

    def sub(self, folder: Path | None, name: str) -> Path | None:
        if folder is None:
            return None
        try:
            return child(folder, name)
        except OSError as exc:
            self.tree.problems.append(Problem(rel_path(self.root, str(folder)), None,
                                              f"cannot be read: {exc.strerror or exc}; what it holds is skipped"))
            return None


def yaml_files(tree: UserTree) -> list[FileTask]:
    """Every YAML file of the folder the mirrors read, in the order they are
    read; folders and names that cannot be read are added to the tree's problems."""
    scan = _Scanner(tree)
    root = tree.root
    tasks: list[FileTask] = []
    for entry in sorted(os.scandir(root), key=lambda e: (e.name.lower(), e.name)):     # a stable order, in any case
        if not entry.is_dir() or entry.name.lower() in SPECIAL:
            continue
        if not utf8_name(entry.name):
            tree.problems.append(Problem(shown_name(entry.name), None, "the folder name is not UTF-8; what it "
                                                                       "holds is skipped (rename it to read it)"))
            continue
        lname = entry.name.lower()
        for fpath, m in scan.files(Path(entry.path), _ITEM_FILE):
            if lname == "rewards" and m.group(1).lower() == "points":
                continue                      # the points ledger, not a reward
            tasks.append(FileTask(fpath, "item", (m.group(1), singular(entry.name))))
    schedules = scan.sub(root, "schedules")
    for fpath, m in scan.files(schedules, _DATE_FILE):
        tasks.append(FileTask(fpath, "schedule", m.group(1)))
    for fpath, m in scan.files(scan.sub(schedules, "completions"), _DATE_FILE):
        tasks.append(FileTask(fpath, "completions", m.group(1)))
    points = scan.sub(scan.sub(root, "rewards"), "points.yml")
    if points is not None:
        tasks.append(FileTask(str(points), "points", None))
    for fpath, m in scan.files(scan.sub(scan.sub(root, "logs"), "status"), _DATE_FILE):
        tasks.append(FileTask(fpath, "status", m.group(1)))
    reviews = scan.sub(root, "reviews")
    for kind in ("daily", "weekly", "monthly"):
        for fpath, _ in scan.files(scan.sub(reviews, kind), _ITEM_FILE):
            tasks.append(FileTask(fpath, "review", kind))
    for fpath, m in scan.files(scan.sub(root, "settings"), _ITEM_FILE):
        tasks.append(FileTask(fpath, "setting", m.group(1).lower()))
    return tasks


def narrative_files(tree: UserTree) -> list[FileTask]:
    """The day narratives (Logs/narratives/YYYY-MM-DD.md): Markdown, not YAML."""
    scan = _Scanner(tree)
    return [FileTask(fpath, "narrative", m.group(1))
            for fpath, m in scan.files(scan.sub(scan.sub(tree.root, "logs"), "narratives"), _NARRATIVE_FILE)]


# --- one file: its value and its problems ---------------------------------------------

@dataclass(slots=True)
class ParsedFile:
    """What one file gives: its value (an :class:`Item`, a day's schedule
    blocks or status snapshots, a completions file's entries, the points
    ledger, a review, a setting, a narrative's text) and its problems."""
    task: FileTask
    rel: str                  # the path relative to the user folder
    value: Any = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """Whether the file gave a value to use (its problems are warnings at most)."""
        return not self.problems or not any(p.skipped for p in self.problems)


def parse_file(root: str, task: FileTask) -> ParsedFile:
    """One file of the folder at ``root`` read as what ``task`` says it
    holds.  Depends on nothing but the file (its bytes, and an item's
    modification time), so its result may be kept for as long as the file
    is unchanged."""
    rel = rel_path(root, task.path)
    if task.kind == "narrative":
        return _parse_narrative(task, rel)
    expect, keep_case = _EXPECT_OF[task.kind]
    data, problem = load_yaml(root, task.path, expect, keep_case)
    if problem is not None:
        return ParsedFile(task, rel, None, [problem])
    if task.kind in _DATED and not valid_date(task.key):
        return ParsedFile(task, rel, None, [Problem(rel, None, f"{task.key} is not a date; the file is skipped")])
    if task.kind == "item":
        return _parse_item(task, rel, data)
    if task.kind == "completions":
        entries = data.get("entries") or {}       # keys of the file's fields lower-cased, entry names as written
        if not isinstance(entries, dict):
            return ParsedFile(task, rel, None, [Problem(rel, None, "entries: expected a mapping")])
        return ParsedFile(task, rel, entries)
    return ParsedFile(task, rel, data)


def _parse_item(task: FileTask, rel: str, data: dict) -> ParsedFile:
    stem, folder_type = task.key
    name, why = _item_name(data.get("name"), task.path)
    if name is None:
        return ParsedFile(task, rel, None, [Problem(rel, why[0], why[1])])
    itype = data.get("type")
    itype = itype.strip().lower() if isinstance(itype, str) and itype.strip() else folder_type
    try:
        mtime = os.stat(task.path).st_mtime
    except OSError:
        mtime = 0.0
    return ParsedFile(task, rel, Item(slug=stem, type=itype, name=name, path=rel, data=data, mtime=mtime))


def _parse_narrative(task: FileTask, rel: str) -> ParsedFile:
    try:
        return ParsedFile(task, rel, Path(task.path).read_text(encoding="utf-8"))
    except OSError as exc:              # the reason only: the message must not carry an absolute path
        return ParsedFile(task, rel, None, [Problem(rel, None, f"cannot be read: {exc.strerror or exc}")])
    except UnicodeDecodeError as exc:
        return ParsedFile(task, rel, None, [Problem(rel, None, f"not UTF-8 text: {exc.reason} at byte {exc.start}")])


# --- the folder ----------------------------------------------------------------------

def read_user_folder(path: str | os.PathLike[str]) -> UserTree:
    """Read every item, log and setting of the user folder at (or in) ``path``.

    Files are read one after another: worker processes were tried, and on
    two cores the copying of results and copy-on-write of the parent's heap
    cost more than they saved."""
    root = find_user_folder(path)
    tree = UserTree(root=root)
    tasks = yaml_files(tree)
    tree.files += len(tasks)
    seen_items: dict[tuple[str, str], str] = {}
    for task in tasks:
        _add(tree, parse_file(str(root), task), seen_items)
    for task in narrative_files(tree):                  # listed only now: their problems come after the YAML's
        _add(tree, parse_file(str(root), task), seen_items)
    return tree


def _add(tree: UserTree, parsed: ParsedFile, seen_items: dict[tuple[str, str], str]) -> None:
    """One file's result into the tree; an item whose type and file stem another file already holds is skipped."""
    tree.problems.extend(parsed.problems)
    if not parsed.usable:
        return
    kind, key, value, rel = parsed.task.kind, parsed.task.key, parsed.value, parsed.rel
    if kind == "item":
        ident = (value.type, value.slug.lower())
        if ident in seen_items:
            tree.problems.append(Problem(rel, None, f"another file already holds the {value.type} {value.slug!r} "
                                                    f"({seen_items[ident]}); this one is skipped"))
            return
        seen_items[ident] = rel
        tree.items.append(value)
    elif kind == "schedule":
        tree.schedules[key] = value
    elif kind == "completions":
        tree.completions[key] = value
        tree.completion_files[key] = rel
    elif kind == "points":
        tree.points = value
        tree.points_file = rel
    elif kind == "status":
        tree.status[key] = value
    elif kind == "review":
        tree.reviews.append((key, rel, value))
    elif kind == "narrative":
        tree.narratives[key] = value
    else:
        tree.settings[key] = value


_NAME_LINE = re.compile(rb"^[\"']?name[\"']?[ \t]*:[ \t]*([^#\r\n]*)", re.I | re.M)


def _item_name(value: Any, path: str) -> tuple[str | None, tuple[int | None, str]]:
    """An item's name as text, or (None, (line, why)).  YAML reads an
    unquoted ``name: 1984`` as a number and ``name: 2025-01-01`` as a date:
    those are names as written.  ``name: yes`` (also no, on, off, true,
    false) reads as a boolean, which cannot say which word was meant: the
    file is skipped and the message says to quote it."""
    if isinstance(value, str):
        return (value.strip(), (None, "")) if value.strip() else (None, (1, "the item has no name"))
    if value is None:
        return None, (1, "the item has no name")
    line, written = _name_as_written(path)
    if isinstance(value, bool):
        said = f"{written} " if written else ""
        return None, (line, f"the name {said}reads as the boolean {str(value).lower()} (so do yes, no, on, off, "
                            f"true and false); quote it: name: \"{written or 'Yes'}\"")
    if isinstance(value, (int, float, date)):
        # the spelling in the file (007, 3.10, 2025-01-01T10:00:00) when it reads as this very value
        if written and reads_as(written, value):
            return written, (None, "")
        return str(value), (None, "")
    return None, (line, f"the name is a {'mapping' if isinstance(value, dict) else type(value).__name__}, not text")


def _name_as_written(path: str) -> tuple[int | None, str]:
    """The line of a file's top-level ``name:`` and the text after it (rare: only for names that are not text)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None, ""
    m = _NAME_LINE.search(raw)
    if m is None:
        return None, ""
    return raw.count(b"\n", 0, m.start()) + 1, m.group(1).strip().decode("utf-8", "replace")


#: load_yaml's ``expect`` for the types Reader.load takes.
_EXPECT: dict[type, str] = {dict: "dict", list: "list"}


class Reader:
    """Reads single YAML files of a tree, keeping the problems (the listener's settings)."""

    def __init__(self, tree: UserTree):
        self.tree = tree

    def load(self, path: Path, expect: type | None = None) -> Any:
        data, problem = load_yaml(str(self.tree.root), str(path), _EXPECT.get(expect) if expect else None)
        if problem is not None:
            self.tree.problems.append(problem)
        return data


def valid_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
        return True
    except ValueError:
        return False
