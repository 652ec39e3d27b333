"""The reader: a Chronos user folder walked and read into the records every
mirror is built from (:class:`~chronoledger.sequence.records.UserTree`), as
Chronos itself lays it out and writes it (docs/sequence.md, "What is read").

Folder names are matched without regard to case, and where a case-sensitive
disk holds several spellings of one (Chronos writes ``Rewards/points.yml``
beside its ``rewards/`` items) all are read, Chronos's own spelling first.
The walk (:func:`walk`) decides which file holds what, and which files are
not mirrored by design (Chronos's scripts, archive, shadow schedules...:
reported as notes, never read); each file is then read on its own by
:func:`parse_file` (a pure function of the file: its value and its
problems), and :func:`read_user_folder` puts the results together, which is
where the one check across files happens (two files for the same item).
Nothing here writes; every file that cannot be read becomes a
:class:`~chronoledger.sequence.records.Problem` (path, line, why) and the
rest is read anyway.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

from chronoledger.errors import ConfigError
from chronoledger.sequence.records import Item, Problem, UserTree, rel_path
from chronoledger.sequence.values import iso_date, status_slug, without_secrets
from chronoledger.sequence.yamlfile import SCHEDULE_DROP_KEYS, load_yaml, reads_as

#: Top-level folders that hold Chronos's logs, profile and settings, each read
#: for what it holds (docs/sequence.md, "What is read"), never as items.
LOG_FOLDERS = ("schedules", "logs", "profile", "reviews", "settings", "timers")
#: The spelling Chronos's writers give each folder.  On a case-sensitive disk
#: Chronos makes sibling folders (``Rewards`` for the points ledger beside the
#: ``rewards`` it keeps rewards in, ``Timers`` beside ``timers``, ``Reviews``
#: beside ``reviews``): every spelling is read, this one first, and a file
#: for the same day in a later one is reported, not read.
CHRONOS_SPELLING = {"schedules": "schedules", "logs": "logs", "profile": "profile", "reviews": "Reviews",
                    "settings": "settings", "timers": "Timers", "rewards": "Rewards"}
#: Top-level folders that hold no items, with what they hold: Chronos's item
#: manager's list (modules/item_manager.py SKIP_ITEM_DIRS), its core mirror's
#: (ideas, temp), and the others its code writes.  Their files are reported
#: (one note per folder), never read.
NOT_ITEMS = {
    "archive": "Chronos's archive (earlier versions of schedules, archived items)",
    "backups": "Chronos's backups",
    "examples": "Chronos's example items (copies of the *_example.yml files)",
    "exports": "reports exported by Chronos's review command",
    "media": "media files (music, playlists)",
    "scripts": "Chronos's scripts and macros",
    "ideas": "ideas, which Chronos does not read as items",
    "temp": "temporary files",
    "plugins": "plugins",
    "data_cards": "data cards",
    "themes": "themes",
    "docs": "documents",
    "debug": "debug output",
}
#: Every top-level folder that is not an item folder (``data`` is where the mirrors live).
SPECIAL = frozenset(LOG_FOLDERS) | frozenset(NOT_ITEMS) | {"data"}
_DATE = r"(\d{4}-\d{2}-\d{2})"
_DATE_FILE = re.compile(rf"^{_DATE}\.ya?ml$", re.I)
_SCHEDULE_FILE = re.compile(rf"^schedule_{_DATE}\.ya?ml$", re.I)
_SHADOW_FILE = re.compile(rf"^schedule_{_DATE}_kairos(_v2)?_shadow\.ya?ml$", re.I)
_MANUAL_FILE = re.compile(rf"^manual_modifications_{_DATE}\.ya?ml$", re.I)
_STATUS_FILE = re.compile(rf"^status_{_DATE}\.ya?ml$", re.I)
_ITEM_FILE = re.compile(r"^(.+)\.ya?ml$", re.I)
_NARRATIVE_FILE = re.compile(rf"^{_DATE}\.md$", re.I)
#: What each kind of YAML file must hold at its top ("dict", "list", None: anything), and
#: whether its entry names keep their case (a completions file's are item names, not fields).
_EXPECT_OF = {"item": ("dict", False), "schedule": ("list", False), "completions": ("dict", True),
              "points": ("dict", False), "status": ("dict", False), "review": ("dict", False),
              "setting": (None, False), "current_status": ("dict", False), "timer_state": ("dict", False),
              "timer_plan": (None, False), "timer_sessions": ("dict", False)}
_DATED = ("schedule", "completions", "status", "timer_sessions")
#: Why a file Chronos writes is not mirrored (the notes a sync reports).
_WHY = {
    "shadow": "a trace of Chronos's Kairos scheduler (schedule_<date>_kairos[_v2]_shadow.yml), not the day's schedule",
    "manual": "Chronos's record of hand edits to a day's schedule, already applied to schedule_<date>.yml",
    "old_schedule": "Chronos names a day's schedule schedule_<date>.yml (this name was chronoledger's "
                    "own sample's); rename it to read it",
    "not_schedule": "not a file Chronos's scheduler writes (schedule_<date>.yml, completions/<date>.yml)",
    "not_completions": "not a completions file (completions/<date>.yml)",
    "old_status": "Chronos writes the status history as logs/status_<date>.yml (a status/<date>.yml was "
                  "chronoledger's own sample's); rename it to read it",
    "conflict_log": "the legacy scheduler's conflict log",
    "decision_log": "the Kairos scheduler's decision log",
    "not_log": "not a log Chronos writes in logs/ (status_<date>.yml)",
    "profile": "Chronos's profile (nickname, preferences): personal, and not a log",
    "not_profile": "not read from profile/ (current_status.yml, Status/status_<date>.yml)",
    "not_review": "not a review (Reviews/daily|weekly|monthly/*.yml, Reviews/*.yml)",
    "setting_folder": "a folder of settings files (only the files directly in settings/ are read)",
    "not_setting": "not YAML (settings are .yml files)",
    "not_timer": "not a timer file Chronos writes (state.yml, start_day_plan.yml, sessions/<date>.yml)",
    "not_yaml": "not YAML: Chronos reads items only from .yml and .yaml files",
    "top_file": "a file at the top of the user folder: Chronos keeps items in type folders and logs in "
                "schedules/, logs/, Reviews/ (only current_status.yml is read here)",
}
_SUBFOLDER_WHY = {"schedules": "not_schedule", "logs": "not_log", "profile": "not_profile", "reviews": "not_review",
                  "settings": "setting_folder", "timers": "not_timer"}


# --- folders and file names --------------------------------------------------------

def find_user_folder(path: str | os.PathLike[str], notes: list[str] | None = None) -> Path:
    """``path`` itself if it is named User/user, else its child of that name.

    When more than one folder could be meant (``path`` is named user/ and
    holds a User/, or holds both User/ and user/ on a case-sensitive disk),
    the one that holds items is taken, and ``notes`` gets a sentence saying
    which and why; ``path`` itself when both do (it was named); two children
    that both hold items are an error naming both."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ConfigError(f"{shown_name(str(p))}: no such folder (pass the user folder, or the folder that holds it)")
    inner = sorted(c for c in p.iterdir() if c.is_dir() and c.name.lower() == "user")
    candidates = [p, *inner] if p.name.lower() == "user" else inner
    if not candidates:
        raise ConfigError(f"{shown_name(str(p))}: neither it nor a folder in it is named User/ or user/")
    if len(candidates) == 1:
        return _utf8_path(candidates[0])
    holding = [c for c in candidates if _holds_items(c, skip=set(inner) if c == p else set())]
    shown = " and ".join(shown_name(str(c)) for c in candidates)
    if len(holding) > 1 and holding[0] != p:
        raise ConfigError(f"{shown_name(str(p))}: {shown} are both user folders with items; pass the one to use "
                          f"with --user")
    chosen = holding[0] if holding else candidates[0]
    others = [shown_name(str(c)) for c in candidates if c != chosen]
    if notes is not None:
        why = ("it holds items and " + " and ".join(others) + (" does not" if len(others) == 1 else " do not")
               if len(holding) == 1 else f"it was named ({' and '.join(others)} also holds items: pass it with "
                                         f"--user to use it instead)" if holding else "none of them holds items")
        notes.append(f"{shown_name(str(p))}: {shown} could each be the user folder; took {shown_name(str(chosen))}: "
                     f"{why}")
    return _utf8_path(chosen)


def _holds_items(folder: Path, skip: set[Path]) -> bool:
    """Whether an item folder of ``folder`` (not one of ``skip``) holds a YAML file."""
    try:
        for sub in os.scandir(folder):
            if sub.is_dir() and sub.name.lower() not in SPECIAL and Path(sub.path) not in skip:
                if any(e.name.lower().endswith((".yml", ".yaml")) and e.is_file() for e in os.scandir(sub.path)):
                    return True
    except OSError:
        return False
    return False


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
    """The item type a plural folder name implies (Inventory_Items ->
    inventory_item, People -> person, as Chronos's item manager infers it)."""
    f = folder.lower().replace(" ", "_")
    if f == "people":
        return "person"
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


# --- the walk: which file holds what -----------------------------------------------

class FileTask(NamedTuple):
    """A file of the user folder and what the walk found it to hold."""
    path: str                 # as the OS gives it, under the user folder
    #: item, schedule, completions, points, status, review, setting, narrative,
    #: current_status, timer_state, timer_plan, timer_sessions
    kind: str
    #: item: (slug, the type its folder implies); schedule, completions, status,
    #: timer_sessions and narrative: the date its name gives; review: daily, weekly,
    #: monthly, or None (from the file itself); setting: the file stem, lower-cased;
    #: the others: None
    key: Any


class _Scanner:
    """A folder's entries, or none and a Problem: one unreadable folder
    (permissions, a file where a folder belongs) skips what it holds, never
    the sync.  Entries whose names are not UTF-8 are skipped and reported;
    hidden ones (``.git``, ``.gitkeep``, ``.DS_Store``) are not Chronos's and
    are passed over.  Files not mirrored by design are collected as notes,
    one per folder and reason."""

    def __init__(self, tree: UserTree):
        self.tree = tree
        self.root = str(tree.root)
        self.notes: dict[tuple[str, str], list[str]] = {}

    def rel(self, path: str) -> str:
        return rel_path(self.root, path)

    def entries(self, folder: Path | str) -> list[os.DirEntry]:
        """The entries of ``folder`` that can be named, sorted by name."""
        try:
            found = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            self.tree.problems.append(Problem(self.rel(str(folder)), None,
                                              f"cannot be read: {exc.strerror or exc}; what it holds is skipped"))
            return []
        out = []
        for e in found:
            if e.name.startswith("."):
                continue
            if utf8_name(e.name):
                out.append(e)
            elif _is_dir(e):
                self.tree.problems.append(Problem(shown_name(self.rel(e.path)), None,
                                                  "the folder name is not UTF-8; what it holds is skipped "
                                                  "(rename it to read it)"))
            elif e.name.lower().endswith((".yml", ".yaml", ".md")):
                # no text can hold the name: skipped, like an unreadable file
                self.tree.problems.append(Problem(shown_name(self.rel(e.path)), None,
                                                  "the file name is not UTF-8; rename the file to read it"))
                self.tree.files += 1
            else:
                self.tree.problems.append(Problem(shown_name(self.rel(e.path)), None, f"not mirrored: "
                                                  f"{_WHY['not_yaml']}", skipped=False, note=True))
        return out

    def note(self, path: str, why: str) -> None:
        """A file (or folder) not mirrored, for the reason ``_WHY[why]``."""
        rel = self.rel(path)
        self.notes.setdefault((rel.rpartition("/")[0], why), []).append(rel)

    def note_folder(self, path: str, why: str) -> None:
        """A whole folder not mirrored, with how many files it holds."""
        n = 0
        for _, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            n += sum(not f.startswith(".") for f in files)
        rel = self.rel(path)
        self.tree.problems.append(Problem(rel, None, f"not mirrored: {why} ({n} file{'s' * (n != 1)})",
                                          skipped=False, note=True))

    def flush_notes(self) -> None:
        for (folder, why), files in self.notes.items():
            files.sort()
            text = _WHY.get(why, why)
            if len(files) == 1:
                self.tree.problems.append(Problem(files[0], None, f"not mirrored: {text}", skipped=False, note=True))
            else:
                self.tree.problems.append(Problem(folder or ".", None, f"{len(files)} files not mirrored "
                                                  f"({files[0]}, ...): {text}", skipped=False, note=True))
        self.notes.clear()


def _is_dir(e: os.DirEntry) -> bool:
    try:
        return e.is_dir()
    except OSError:
        return False


#: What two files of one kind hold the same of (the second is reported, not read).
_SAME = {"schedule": "the schedule of {}", "completions": "the completions of {}",
         "status": "the status history of {}", "timer_sessions": "the timer sessions of {}",
         "narrative": "the narrative of {}", "points": "the points ledger", "current_status": "the current status",
         "setting": "settings.{}", "timer_state": "the timer's state", "timer_plan": "the timer's day plan"}


class _Walk:
    """One walk of the user folder: the tasks, each dated log once."""

    def __init__(self, tree: UserTree):
        self.tree = tree
        self.scan = _Scanner(tree)
        self.tasks: dict[str, list[FileTask]] = {}
        self.dated: dict[tuple[str, str], str] = {}          # (kind, date) -> the file taken
        self.named: dict[tuple[str, str], str] = {}          # (kind, name) -> the file taken

    def add(self, kind: str, path: str, key: Any = None, once: str | None = None) -> None:
        """A task; with ``once``, only the first file for (kind, once): a later
        one (another spelling of the folder, a fallback place) is reported."""
        if once is not None:
            taken = self.named.get((kind, once))
            if taken is not None:
                what = _SAME[kind].format(once)
                self.tree.problems.append(Problem(self.scan.rel(path), None, f"not mirrored: {taken} holds {what} "
                                                                             f"too, and Chronos reads that one",
                                                  skipped=False, note=True))
                return
            self.named[(kind, once)] = self.scan.rel(path)
        self.tasks.setdefault(kind, []).append(FileTask(path, kind, key))

    def folders(self) -> None:
        root = self.tree.root
        logs: dict[str, list[Path]] = {}
        points: list[Path] = []
        for e in sorted(self.scan.entries(root), key=lambda e: (e.name.lower(), e.name)):
            lname = e.name.lower()
            if lname in LOG_FOLDERS:           # a file where the folder belongs is reported when it is read
                logs.setdefault(lname, []).append(Path(e.path))
            elif not _is_dir(e):
                if lname in ("current_status.yml", "current_status.yaml"):
                    self.add("current_status", e.path, None, once="current status")
                else:
                    self.scan.note(e.path, "top_file")
            elif lname == "data":
                continue                       # the mirrors (and Chronos's own)
            elif lname in NOT_ITEMS:
                self.scan.note_folder(e.path, NOT_ITEMS[lname])
            else:
                points += self.items(Path(e.path), singular(e.name), lname == "rewards")
        for p in sorted(points, key=lambda p: (p.parent.name != CHRONOS_SPELLING["rewards"], str(p))):
            self.add("points", str(p), None, once="points ledger")
        for name in LOG_FOLDERS:
            folders = sorted(logs.get(name, []), key=lambda p: (p.name != CHRONOS_SPELLING[name], p.name))
            for folder in folders:
                getattr(self, f"_{name}")(folder)

    def items(self, folder: Path, folder_type: str, rewards: bool) -> list[Path]:
        """An item folder and its subfolders (Chronos's item manager walks
        them all); returns the points ledgers found at the top of a rewards
        folder."""
        points = []
        stack = [(folder, "")]
        while stack:
            here, prefix = stack.pop()
            subs = []
            for e in self.scan.entries(here):
                if _is_dir(e):
                    subs.append((Path(e.path), f"{prefix}{e.name}/"))
                    continue
                m = _ITEM_FILE.match(e.name)
                if m is None:
                    self.scan.note(e.path, "not_yaml")
                elif rewards and not prefix and m.group(1).lower() == "points":
                    points.append(Path(e.path))          # the points ledger, not a reward
                else:
                    self.add("item", e.path, (prefix + m.group(1), folder_type))
            stack.extend(reversed(subs))
        return points

    def _schedules(self, folder: Path) -> None:
        for e in self.scan.entries(folder):
            if _is_dir(e):
                if e.name.lower() == "completions":
                    self._completions(Path(e.path))
                else:
                    self.scan.note_folder(e.path, _WHY["not_schedule"])
                continue
            m = _SCHEDULE_FILE.match(e.name)
            if m:
                self.add("schedule", e.path, m.group(1), once=m.group(1))
            elif _SHADOW_FILE.match(e.name):
                self.scan.note(e.path, "shadow")
            elif _MANUAL_FILE.match(e.name):
                self.scan.note(e.path, "manual")
            elif _DATE_FILE.match(e.name):
                self.scan.note(e.path, "old_schedule")
            else:
                self.scan.note(e.path, "not_schedule")

    def _completions(self, folder: Path) -> None:
        for e in self.scan.entries(folder):
            m = _DATE_FILE.match(e.name)
            if m and not _is_dir(e):
                self.add("completions", e.path, m.group(1), once=m.group(1))
            elif _is_dir(e):
                self.scan.note_folder(e.path, _WHY["not_completions"])
            else:
                self.scan.note(e.path, "not_completions")

    def _logs(self, folder: Path) -> None:
        for e in self.scan.entries(folder):
            lname = e.name.lower()
            if _is_dir(e):
                if lname == "narratives":
                    for n in self.scan.entries(e.path):
                        m = _NARRATIVE_FILE.match(n.name)
                        if m and not _is_dir(n):
                            self.add("narrative", n.path, m.group(1), once=m.group(1))
                        else:
                            self.scan.note(n.path, "not_log")
                elif lname == "status":
                    self.scan.note_folder(e.path, _WHY["old_status"])
                else:
                    self.scan.note_folder(e.path, _WHY["not_log"])
                continue
            m = _STATUS_FILE.match(e.name)
            if m:
                self.add("status", e.path, m.group(1), once=m.group(1))
            elif lname.startswith("conflict_log_"):
                self.scan.note(e.path, "conflict_log")
            elif lname.startswith("kairos_v2_decision_log"):
                self.scan.note(e.path, "decision_log")
            else:
                self.scan.note(e.path, "not_log")

    def _profile(self, folder: Path) -> None:
        for e in self.scan.entries(folder):
            lname = e.name.lower()
            if _is_dir(e):
                if lname == "status":       # Chronos's second place for the status history
                    for f in self.scan.entries(e.path):
                        m = _STATUS_FILE.match(f.name)
                        if m and not _is_dir(f):
                            self.add("status", f.path, m.group(1), once=m.group(1))
                        else:
                            self.scan.note(f.path, "not_profile")
                else:
                    self.scan.note_folder(e.path, _WHY["not_profile"])
            elif lname in ("current_status.yml", "current_status.yaml"):
                self.add("current_status", e.path, None, once="current status")
            elif lname in ("profile.yml", "profile.yaml"):
                self.scan.note(e.path, "profile")
            else:
                self.scan.note(e.path, "not_profile")

    def _reviews(self, folder: Path) -> None:
        for e in self.scan.entries(folder):
            if _is_dir(e):
                kind = e.name.lower()
                if kind not in ("daily", "weekly", "monthly"):
                    self.scan.note_folder(e.path, _WHY["not_review"])
                    continue
                for f in self.scan.entries(e.path):
                    if _ITEM_FILE.match(f.name) and not _is_dir(f):
                        self.add("review", f.path, kind)
                    else:
                        self.scan.note(f.path, "not_review")
            elif _ITEM_FILE.match(e.name):
                self.add("review", e.path, None)         # its kind from the file itself
            else:
                self.scan.note(e.path, "not_review")

    def _settings(self, folder: Path) -> None:
        # a setting in two spellings (Timer_Profiles.yml, timer_profiles.yml): Chronos's code
        # opens the lower-case name, so that one is read
        entries = sorted(self.scan.entries(folder), key=lambda e: (e.name != e.name.lower(), e.name))
        for e in entries:
            m = _ITEM_FILE.match(e.name)
            if _is_dir(e):
                self.scan.note_folder(e.path, _WHY["setting_folder"])
            elif m is None:
                self.scan.note(e.path, "not_setting")
            else:
                self.add("setting", e.path, m.group(1).lower(), once=m.group(1).lower())

    def _timers(self, folder: Path) -> None:
        for e in self.scan.entries(folder):
            lname = e.name.lower()
            if _is_dir(e):
                if lname != "sessions":
                    self.scan.note_folder(e.path, _WHY["not_timer"])
                    continue
                for f in self.scan.entries(e.path):
                    m = _DATE_FILE.match(f.name)
                    if m and not _is_dir(f):
                        self.add("timer_sessions", f.path, m.group(1), once=m.group(1))
                    else:
                        self.scan.note(f.path, "not_timer")
            elif lname in ("state.yml", "state.yaml"):
                self.add("timer_state", e.path, None, once="timer state")
            elif lname in ("start_day_plan.yml", "start_day_plan.yaml"):
                self.add("timer_plan", e.path, None, once="timer plan")
            elif lname.endswith(".lock"):
                continue                    # the timer's lock while it writes state.yml
            else:
                self.scan.note(e.path, "not_timer")


#: The order tasks are read in (and their problems reported).
_ORDER = ("item", "schedule", "completions", "points", "status", "review", "setting", "current_status",
          "timer_state", "timer_plan", "timer_sessions", "narrative")


def walk(tree: UserTree) -> list[FileTask]:
    """Every file of the folder the mirrors read, in the order they are read
    (the YAML, then the narratives); folders and names that cannot be read,
    and files not mirrored by design (notes), are added to the tree's problems."""
    w = _Walk(tree)
    w.folders()
    w.scan.flush_notes()
    return [t for kind in _ORDER for t in w.tasks.get(kind, ())]


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
    kind = task.kind
    if kind == "narrative":
        return _parse_narrative(task, rel)
    expect, keep_case = _EXPECT_OF[kind]
    data, problem = load_yaml(root, task.path, expect, keep_case,
                              SCHEDULE_DROP_KEYS if kind == "schedule" else frozenset())
    if problem is not None:
        return ParsedFile(task, rel, None, [problem])
    if kind in _DATED and not valid_date(task.key):
        return ParsedFile(task, rel, None, [Problem(rel, None, f"{task.key} is not a date; the file is skipped")])
    if kind == "item":
        return _parse_item(task, rel, data)
    if kind == "completions":
        entries = data.get("entries") or {}       # keys of the file's fields lower-cased, entry names as written
        if not isinstance(entries, dict):
            return ParsedFile(task, rel, None, [Problem(rel, None, "entries: expected a mapping")])
        return ParsedFile(task, rel, entries)
    if kind == "status":
        return _parse_status(task, rel, data)
    if kind == "current_status":
        inner = data.get("current_status")
        status = inner if isinstance(inner, dict) and len(data) == 1 else data
        return ParsedFile(task, rel, {status_slug(k): v for k, v in status.items()})
    if kind == "timer_sessions":
        entries = data.get("entries") or []
        if not isinstance(entries, list):
            return ParsedFile(task, rel, None, [Problem(rel, None, "entries: expected a list")])
        return ParsedFile(task, rel, entries)
    if kind == "review":
        return _parse_review(task, rel, data)
    if kind == "setting":
        kept, left_out = without_secrets(data)
        if not left_out:
            return ParsedFile(task, rel, data)
        return ParsedFile(task, rel, kept, [Problem(rel, None, f"{', '.join(left_out)} left out of the mirror: "
                                                               f"{'a secret' if len(left_out) == 1 else 'secrets'} "
                                                               f"(the file's other values are kept)",
                                                    skipped=False, note=True)])
    return ParsedFile(task, rel, data)


def _parse_status(task: FileTask, rel: str, data: dict) -> ParsedFile:
    """Chronos's status history: ``{date, entries: [{at: HH:MM:SS, status:
    {dimension: value}}]}``, each entry the whole status after a change, as
    snapshots ``{"time": at, dimension: value}`` (dimensions as Chronos keys
    them: mind_state)."""
    entries = data.get("entries")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        return ParsedFile(task, rel, None, [Problem(rel, None, "entries: expected a list")])
    snaps, problems = [], []
    for i, e in enumerate(entries):
        status = e.get("status") if isinstance(e, dict) else None
        if not isinstance(status, dict):
            problems.append(Problem(rel, None, f"entry {i} has no status mapping; it is left out", skipped=False))
            continue
        snap = {"time": e.get("at")}
        snap.update((status_slug(k), v) for k, v in status.items() if status_slug(k) != "time")
        snaps.append(snap)
    return ParsedFile(task, rel, snaps, problems)


_WEEK_STEM = re.compile(r"^(\d{4})-w?(\d{1,2})(?:\D.*)?$", re.I)
_MONTH_STEM = re.compile(r"^\d{4}-\d{2}$")


def _parse_review(task: FileTask, rel: str, data: dict) -> ParsedFile:
    """A review, with its kind (from its folder, else from the file: its
    ``period.type``, a ``week``, ``month`` or ``date``, else its name).
    Chronos's review command names a weekly review by ISO year and week
    without a W (``2026-49.yml``); such a review is given the ``week``
    ``2026-W49`` (from ``period.start`` when it has one), so it is dated as
    that week and not read as a month."""
    stem = Path(task.path).stem
    period = data.get("period")
    if not isinstance(period, dict):
        period = {}
    kind = task.key
    if kind is None:
        ptype = str(period.get("type") or "").strip().lower()
        if ptype in ("daily", "weekly", "monthly"):
            kind = ptype
        elif data.get("week") is not None:
            kind = "weekly"
        elif data.get("month") is not None:
            kind = "monthly"
        elif data.get("date") is not None or valid_date(stem[:10]):
            kind = "daily"
        elif _MONTH_STEM.match(stem):
            kind = "monthly"
        else:
            kind = "weekly" if _WEEK_STEM.match(stem) else "review"
    if kind == "weekly" and data.get("week") is None:
        start = iso_date(period.get("start"))
        week = None
        if start is not None:
            y, w, _ = date.fromisoformat(start).isocalendar()
            week = f"{y}-W{w:02d}"
        else:
            m = _WEEK_STEM.match(stem)
            if m and 1 <= int(m.group(2)) <= 53:
                week = f"{m.group(1)}-W{int(m.group(2)):02d}"
        if week is not None:
            data = {**data, "week": week}
    return ParsedFile(task, rel, (kind, data))


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

def read_user_folder(path: str | os.PathLike[str],
                     parse: Callable[[str, FileTask], ParsedFile] = parse_file) -> UserTree:
    """Read every item, log and setting of the user folder at (or in) ``path``.
    ``parse`` reads one file: :func:`parse_file`, or a parse cache's
    (:class:`chronoledger.sequence.parse_cache.ParseCache`) that gives the
    same results.

    Files are read one after another: worker processes were tried, and on
    two cores the copying of results and copy-on-write of the parent's heap
    cost more than they saved."""
    root = find_user_folder(path)
    tree = UserTree(root=root)
    tasks = walk(tree)
    tree.files += sum(t.kind != "narrative" for t in tasks)       # the YAML files
    seen_items: dict[tuple[str, str], str] = {}
    for task in tasks:
        _add(tree, parse(str(root), task), seen_items)
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
        tree.schedule_files[key] = rel
    elif kind == "completions":
        tree.completions[key] = value
        tree.completion_files[key] = rel
    elif kind == "points":
        tree.points = value
        tree.points_file = rel
    elif kind == "status":
        tree.status[key] = value
        tree.status_files[key] = rel
    elif kind == "review":
        tree.reviews.append((value[0], rel, value[1]))
    elif kind == "narrative":
        tree.narratives[key] = value
    elif kind == "current_status":
        tree.current_status, tree.current_status_file = value, rel
    elif kind == "timer_state":
        tree.timer_state = value
        tree.timer_files["state"] = rel
    elif kind == "timer_plan":
        tree.timer_plan = value
        tree.timer_files["plan"] = rel
    elif kind == "timer_sessions":
        tree.timer_sessions[key] = value
        tree.timer_files[key] = rel
    else:
        tree.settings[key] = value
        tree.setting_files[key] = rel


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
