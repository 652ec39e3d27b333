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
    """A file that could not be used (``skipped``), a value in a file that
    was used without it (a warning), or a file the mirrors do not hold by
    design (a ``note``: Chronos's scripts, archive, shadow schedules, a
    secret left out of a setting...), and why.  Only skipped files make a
    sync exit 1; notes and warnings are reported, never fatal."""
    path: str                 # relative to the user folder, with / separators
    line: int | None
    reason: str
    skipped: bool = True
    note: bool = False        # not a fault in the file: what is not mirrored, and why

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
    slug: str                 # the file's stem (its path below the type folder, for a file in a subfolder)
    type: str
    name: str
    path: str                 # relative to the user folder
    data: dict                # the whole mapping, keys lower-cased
    mtime: float
    # the item as Chronos names it (type::name, #2 for a repeat) is slugs.item_slugs's: it depends on the others


@dataclass
class UserTree:
    """Everything read from one user folder."""
    root: Path
    items: list[Item] = field(default_factory=list)
    completions: dict[str, dict] = field(default_factory=dict)      # date -> {"name@HH:MM": entry}
    completion_files: dict[str, str] = field(default_factory=dict)  # date -> the file's relative path
    schedules: dict[str, list] = field(default_factory=dict)         # date -> blocks (buffers left in)
    schedule_files: dict[str, str] = field(default_factory=dict)    # date -> the file's relative path
    points: dict = field(default_factory=dict)
    points_file: str = "Rewards/points.yml"
    #: date -> snapshots, each {"time": "HH:MM:SS", dimension: value, ...}: every entry of
    #: Chronos's logs/status_DATE.yml ({date, entries: [{at, status: {...}}]}), dimensions slugged
    status: dict[str, list] = field(default_factory=dict)
    status_files: dict[str, str] = field(default_factory=dict)      # date -> the file's relative path
    #: current_status.yml (user/, else profile/, as Chronos looks), dimensions slugged; None without one
    current_status: dict | None = None
    current_status_file: str | None = None
    narratives: dict[str, str] = field(default_factory=dict)         # date -> markdown
    reviews: list[tuple[str, str, dict]] = field(default_factory=list)   # (kind, relative path, data)
    settings: dict[str, Any] = field(default_factory=dict)           # file stem (lower) -> data, secrets left out
    setting_files: dict[str, str] = field(default_factory=dict)     # file stem (lower) -> the file's relative path
    #: Timers/: state.yml and start_day_plan.yml as read (None without them), and
    #: sessions/DATE.yml's entries by date
    timer_state: dict | None = None
    timer_plan: Any = None
    timer_sessions: dict[str, list] = field(default_factory=dict)
    timer_files: dict[str, str] = field(default_factory=dict)       # "state", "plan" or a date -> relative path
    problems: list[Problem] = field(default_factory=list)
    files: int = 0


class Completion(TypedDict):
    """One completions entry, as the builds read it."""
    date: str
    name: str                       # the entry's own name (Chronos's ``did`` keys entries by its last property)
    type: str | None
    scheduled_start: str | None     # "HH:MM"
    scheduled_end: str | None
    actual_start: str | None
    actual_end: str | None
    status: str                     # lower-cased
    quality: float | None           # the score: a number as written, or the label's value in quality_settings.yml
    quality_label: str | None       # the label as written (Chronos's "Good", "Excellent"...)
    logged_at: str | None           # "YYYY-MM-DDTHH:MM:SS"
    note: str | None
    source: str                     # the completions file, relative to the user folder
    key: str                        # the entry's key as written ("Name@HH:MM", "Name@unscheduled", "quality"...)
    origin: str | None              # the entry's own ``source:`` (kairos_cut, auto_miss_yesterday...)
    auto: str | None                # "missed" (auto_missed: true), "skipped" (auto_skipped: true) or None
    extra_json: str | None          # the entry's other fields (reason, block_id, tags, additional...) as JSON


class HabitDate(TypedDict):
    """A day from an item's own history: Chronos's ``completion_dates`` and
    ``incident_dates`` (a habit to avoid records its incidents in both)."""
    item_id: int
    name: str
    type: str
    date: str                       # YYYY-MM-DD
    kind: str                       # "completion" or "incident"
    polarity: str                   # "good" or "bad"


class TimerSession(TypedDict):
    """One phase of Chronos's timer (Timers/sessions/DATE.yml)."""
    date: str                       # the file's date
    start: str | None               # "YYYY-MM-DDTHH:MM:SS"
    end: str | None
    phase: str | None               # focus, short_break, long_break
    profile: str | None
    seconds: float | None
    minutes: float | None           # as Chronos counts them: max(1, seconds // 60)
    bound_type: str | None
    bound_name: str | None
    item_id: int | None
    source: str                     # the sessions file


#: A relation row as chronos_core.db's relations table takes it: (parent id, child id
#: or None, child name, child type, kind, order, resolved 0/1, detail JSON or None).
RelationRow: TypeAlias = "tuple[int, int | None, str, str | None, str, int, int, str | None]"


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
