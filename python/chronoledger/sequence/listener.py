"""``sequence listen``: the nightly sync, in the foreground.

At 00:00 local time, or at ``listener: {sync_time: "HH:MM"}`` (also a bare
``sync_time:``) in ``Settings/Sequence.yml``, it syncs every mirror and runs
the metastudy; ``--once`` runs one cycle now.  While it waits it wakes each
minute, reads the setting again and looks at the clock, so a changed sync
time or a clock set forward is seen within a minute.  A cycle that fails is
logged and the listener waits for the next one; with ``once`` the failure
is raised, as :func:`~chronoledger.sequence.sync.sync` raises it.

It reports through the ``chronoledger.sequence`` logger (or a ``log``
callback): the next sync time and each sync's summary at INFO, a bad setting
at WARNING, a failed cycle at ERROR (with its traceback when the failure is
unexpected).
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path

from chronoledger.errors import ChronoledgerError, ConfigError
from chronoledger.sequence.reader import Reader, child, find_user_folder
from chronoledger.sequence.records import UserTree
from chronoledger.sequence.sync import SyncReport, sync

_logger = logging.getLogger("chronoledger.sequence")


def sync_time(user: Path) -> time:
    """The time of day the listener syncs, from Settings/Sequence.yml (00:00 if unset)."""
    settings = child(user, "settings")
    f = child(settings, "sequence.yml") if settings is not None else None
    if f is None:
        return time(0, 0)
    tree = UserTree(root=user)
    data = Reader(tree).load(f, dict)
    if data is None:
        raise ConfigError(f"{tree.problems[0]}")
    value = (data.get("listener") or {}).get("sync_time") if isinstance(data.get("listener"), dict) \
        else data.get("sync_time")
    if value is None:
        return time(0, 0)
    if isinstance(value, int) and 0 <= value < 24 * 60:     # YAML reads an unquoted 02:30 as 150
        return time(value // 60, value % 60)
    try:
        return time.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{f}: listener.sync_time {value!r} is not a time of day (HH:MM)") from None


def _configured_time(user: Path) -> tuple[time, str | None]:
    """The sync time, and a warning when the setting cannot be used (00:00 is used meanwhile)."""
    try:
        return sync_time(user), None
    except ConfigError as exc:
        return time(0, 0), f"{exc}; syncing at 00:00 until it is fixed"


def next_run(now: datetime, at: time) -> datetime:
    """The first moment at or after ``now`` whose local time of day is ``at``."""
    run = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return run if run >= now else run + timedelta(days=1)


def listen(user_path, *, once: bool = False, log: Callable[[str], None] | None = None,
           sleep: Callable[[float], None] = _time.sleep, now: Callable[[], datetime] = datetime.now,
           cycles: int | None = None) -> list[SyncReport]:
    """Sync at the configured time each day (or once, now).  ``cycles`` bounds
    the loop (tests); ``sleep`` and ``now`` are the clock (tests pass fakes).

    While waiting it wakes at least each minute, reads Settings/Sequence.yml
    again and asks ``now`` the time, so a changed sync time or clock is seen
    within a minute.  A failed cycle is logged and the next one awaited; with
    ``once`` it is raised instead (as :func:`sync` raises it), so a caller
    can tell the failure, and a skipped file, as from a sync.

    Each message goes to the ``chronoledger.sequence`` logger, or, when
    ``log`` is given, to ``log`` instead (a front end that shows the messages
    as its output, so they are not shown twice); nothing is printed."""
    def say(level: int, message: str, exc_info: bool = False) -> None:
        if log is not None:
            log(message)
        else:
            _logger.log(level, "%s", message, exc_info=exc_info)

    notes: list[str] = []
    user = find_user_folder(user_path, notes)
    for note in notes:                        # which folder was taken, when more than one could be meant
        say(logging.WARNING, note)
    reports: list[SyncReport] = []
    done = 0
    while True:
        if not once:
            at, problem = _configured_time(user)
            if problem:
                say(logging.WARNING, problem)
            when = next_run(now(), at)
            say(logging.INFO, f"next sync at {when.isoformat(timespec='minutes')}")
            while (wait := (when - now()).total_seconds()) > 0:
                sleep(min(wait, 60.0))        # wake each minute: a changed clock or setting is seen soon
                new_at, new_problem = _configured_time(user)
                if new_problem and new_problem != problem:
                    say(logging.WARNING, new_problem)
                problem = new_problem
                if new_at != at:
                    at, when = new_at, next_run(now(), new_at)
                    say(logging.INFO, f"sync time is now {at.strftime('%H:%M')}; next sync at "
                                      f"{when.isoformat(timespec='minutes')}")
        try:
            result = sync(user)
            reports.append(result)
            say(logging.INFO, f"synced {result.items} items from {result.files} files in {result.seconds:.1f} s"
                f"{f'; skipped {result.skipped} files' if result.skipped else ''}; tendencies.md updated")
        except (ChronoledgerError, OSError) as exc:
            if once:
                raise
            say(logging.ERROR, f"sync failed: {exc}; the previous mirrors are intact")
        except Exception as exc:   # noqa: BLE001 - a bug or an odd file must not end the nightly loop
            if once:
                raise
            say(logging.ERROR, f"sync failed unexpectedly ({type(exc).__name__}: {exc}); the previous mirrors "
                               f"are intact", exc_info=True)
        done += 1
        if once or (cycles is not None and done >= cycles):
            return reports
