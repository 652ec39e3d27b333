"""What a run of the world takes and gives, as data: its options, its result,
and what one tick did (what the day's report adds up).  No logic: every
module of the world may read these."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeAlias, TypedDict

import numpy as np

from chronoledger.errors import ConfigError
from chronoledger.world.channel import ReportChannel

REPORT_FORMATS = ("markdown", "json", "both", "none")

#: A conversation of a tick: its members (positions), its action type (act.DUO or act.GROUP) and the
#: scripted prompt, if a scripted event made it.
Chat: TypeAlias = tuple[np.ndarray, int, str | None]
#: Whose a model request is: (conversation index, or REFLECTION or INSIGHT; round; agent position).
Owner: TypeAlias = tuple[int, int, int]
REFLECTION, INSIGHT = -1, -2
#: A stay that ended this tick: (agent position, location index, global minute it began).
Stay: TypeAlias = tuple[int, int, int]
#: (sql, columns, rows) for db.insert_many.
InsertJob: TypeAlias = tuple[str, list[Any], int | None]
#: Keys of WorldState.scripted: (day or None, tick), and ("day", day or None) for a day's events.
ScriptKey: TypeAlias = tuple[int | str | None, int | None]


class Scripted(TypedDict):
    """A scripted event as the ticks read it (see WorldState.scripted)."""
    agents: list[int]               # positions
    type: str                       # an action type
    location: str | None
    prompt: str | None
    activity: str | None
    tick: int


class TickResult(TypedDict):
    """What one tick did (WorldRun.tick): what the day's DayTally adds up."""
    acted: np.ndarray               # the positions of the agents that acted
    action: np.ndarray              # every agent's action code (actions.NONE: none)
    activity: np.ndarray            # every agent's activity (index into the config's activities)
    loc: np.ndarray                 # per agent that acted: where it is, or is going
    chats: list[Chat]
    deltas: list[tuple[int, int, float]]        # relationship changes: (position, position, change)
    transcripts: dict[int, list[str]]           # conversation index -> its turns, for the first few only
    conv_base: int                  # the id of the tick's first conversation
    refused: np.ndarray             # every agent: the place (index) that turned it away this tick, or -1
    scripted: list["ScriptedOutcome"]           # what became of the tick's scripted events
    clock: str                      # the tick's time of day, "09:00"
    action_names: tuple[str, ...]   # the run's action types, by code


class ScriptedOutcome(TypedDict):
    """What became of one scripted event (a day report lists them)."""
    tick: int
    type: str
    agents: list[str]               # the names the scenario gave
    location: str | None
    prompt: str | None
    held: bool                      # the chat or meeting took place / the move began / the action was taken
    took_part: list[str]            # who took part
    away: list[str]                 # on the way to its place, too late to take part
    busy: list[str]                 # travelling or past the day's cap when it came
    turned_away: list[str]          # a move a full place refused


@dataclass
class RunOptions:
    days: int = 1
    agents: int | None = None               # the first N agents (made up, seeded, when the database has fewer)
    seed: int = 0
    chronicle: Path | None = None           # default: beside the database, <its name>-run-<id>.cmeta
    reports_dir: Path | None = None         # default: reports/ beside the database
    report_format: str = "both"             # markdown | json | both | none
    summary_only: bool = False
    progress: Callable[[int, int, int], None] | None = None      # (day, tick, ticks per day)
    first_conversation: int | None = None   # replay: the id the recorded run's conversations started at
    #: make up the agents ``agents`` asks for beyond those the database has (the command line asks with
    #: --invent-agents); they are marked invented and tied only to one another
    invent_agents: bool = True
    #: where each day's JSON report is POSTed (--report-channel), or None
    report_channel: ReportChannel | None = None

    def __post_init__(self) -> None:
        def whole(name: str, low: int, none_ok: bool = False) -> None:
            v = getattr(self, name)
            if (v is None and none_ok) or (isinstance(v, int) and not isinstance(v, bool) and low <= v < 2 ** 63):
                return
            raise ConfigError(f"RunOptions.{name}: {v!r} must be a whole number from {low}"
                              + (" (or None)" if none_ok else ""))
        whole("days", 1)
        whole("agents", 1, none_ok=True)
        whole("seed", 0)
        if self.report_format not in REPORT_FORMATS:
            raise ConfigError(f"RunOptions.report_format: {self.report_format!r} is not one of "
                              f"{', '.join(REPORT_FORMATS)}")
        self.chronicle = Path(self.chronicle) if self.chronicle is not None else None
        self.reports_dir = Path(self.reports_dir) if self.reports_dir is not None else None


@dataclass
class RunResult:
    run_id: int
    days: int
    agents: int
    agent_ticks: int
    events: int
    conversations: int
    memories: int
    chronicle: Path
    reports: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    agent_ticks_run: int = 0                # by this call (a resumed run did the rest before it stopped)
