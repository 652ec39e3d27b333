"""The records that flow through a sync: what the reader makes of a user
folder (items, logs, settings, and the problems it met), and the shapes the
builders derive from them (completions, commitments judged, ledger, block and
event rows).  Types only: the reader fills them, the builders read them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, TypedDict


@dataclass
class Problem:
    """A file that could not be used (``skipped``), or a value in a file
    that was used without it (a warning), and why."""
    path: str                 # relative to the user folder, with / separators
    line: int | None
    reason: str
    skipped: bool = True

    def __str__(self) -> str:
        return f"{self.path}{f':{self.line}' if self.line else ''}: {self.reason}"


def rel_path(root: str, path: str) -> str:
    """``path`` relative to ``root``, with / separators: problems and mirrors
    never hold an absolute path."""
    # os.path.relpath is slow, and paths here are always under the root they were found in
    if path.startswith(root) and path[len(root):len(root) + 1] in (os.sep, "/"):
        path = path[len(root) + 1:]
    else:
        path = os.path.relpath(path, root)
    return path.replace(os.sep, "/")


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
    completion_files: dict[str, str] = field(default_factory=dict)  # date -> the file's relative path
    schedules: dict[str, list] = field(default_factory=dict)         # date -> blocks
    points: dict = field(default_factory=dict)
    points_file: str = "Rewards/points.yml"
    status: dict[str, list] = field(default_factory=dict)            # date -> snapshots
    narratives: dict[str, str] = field(default_factory=dict)         # date -> markdown
    reviews: list[tuple[str, str, dict]] = field(default_factory=list)   # (kind, relative path, data)
    settings: dict[str, Any] = field(default_factory=dict)           # file stem (lower) -> data
    problems: list[Problem] = field(default_factory=list)
    files: int = 0


class Completion(TypedDict):
    """One completions entry, as the builds read it."""
    date: str
    name: str
    type: str | None
    scheduled_start: str | None     # "HH:MM"
    scheduled_end: str | None
    actual_start: str | None
    actual_end: str | None
    status: str                     # lower-cased
    quality: float | None
    logged_at: str | None           # "YYYY-MM-DDTHH:MM:SS"
    note: str | None
    source: str                     # the completions file


class Trigger(TypedDict):
    """A commitment judged for one period (met or violated), or a reward redeemed."""
    ts: str
    source_type: str                # "commitment" or "reward"
    source_name: str
    trigger: str                    # "on_met", "on_violation", "on_complete"
    period: str | None
    outcome: str                    # "met", "violated", "redeemed"
    actions: Any                    # the actions as the item's YAML lists them
    actions_json: str
    detail: dict[str, Any]
    detail_json: str


#: A points ledger row: (ts, delta, reason, source, tags JSON, balance after it).
LedgerRow: TypeAlias = "tuple[str, float, str | None, str | None, str, float]"
#: A named schedule block: (day, path, parent path, depth, the block, name, type,
#: start, end, planned minutes, the completion matched to it or None).
BlockRow: TypeAlias = ("tuple[str, str, str | None, int, dict[str, Any], str, str | None, str | None, str | None, "
                       "float | None, Completion | None]")
#: An event for the events database and log: (ts, type, payload).
Event: TypeAlias = "tuple[str, str, dict[str, Any]]"
