"""Between syncs: a command run, or a review, appended to chronos_events.db
(created if need be) and to its chronicle log, under the folder's lock.
The next sync carries these over into the database it rebuilds.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from chronoledger import sqlite as db
from chronoledger.chronicle import Chronicle
from chronoledger.sequence import schema
from chronoledger.sequence.events_builder import EVENT_LOG
from chronoledger.sequence.lock import sync_lock
from chronoledger.sequence.registry import data_folder
from chronoledger.sequence.values import micros, to_json


def record_command(user: Path, command: str, args: list[str], duration_s: float, result: str,
                   detail: str | None = None) -> None:
    """Append one command run to chronos_events.db (creating it if need be),
    with its event, also appended to the event log."""
    ts = datetime.now().replace(microsecond=0).isoformat()
    payload = {"command": command, "args": args, "result": result, "duration_s": round(duration_s, 3)}
    _append(user, ts, "command", payload,
            ("INSERT INTO command_runs (ts, command, args_json, duration_s, result, detail) VALUES (?, ?, ?, ?, ?, ?)",
             (ts, command, to_json(args), duration_s, result, detail)))


def record_review(user: Path, kind: str, day: date) -> None:
    """A review event (daily, weekly or monthly) for ``day``."""
    ts = datetime.now().replace(microsecond=0).isoformat()
    _append(user, ts, "review", {"kind": kind, "date": day.isoformat(), "source": "sequence review"})


def _append(user: Path, ts: str, etype: str, payload: dict, extra: tuple[str, tuple] | None = None) -> None:
    data = data_folder(user)
    with sync_lock(data, wait=True):      # not while a sync is copying command_runs into its new file
        _append_locked(data, ts, etype, payload, extra)


def _append_locked(data: Path, ts: str, etype: str, payload: dict, extra: tuple[str, tuple] | None) -> None:
    target = data / schema.FILES["events"]
    conn = db.connect(target, journal="delete")
    try:
        with db.sqlite_errors(target, f"appending a {etype} event"), \
                db.write_transaction(conn, f"{target}: appending a {etype} event"):
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'command_runs'").fetchall():
                conn.execute(schema.EVENTS)
                conn.execute(f"PRAGMA user_version={schema.VERSIONS['events']}")
            if extra is not None:
                conn.execute(*extra)
            conn.execute("INSERT INTO events (ts, event_type, payload_json) VALUES (?, ?, ?)",
                         (ts, etype, to_json(payload)))
    finally:
        conn.close()
    with Chronicle.open(data / EVENT_LOG, "a", schema="event") as ch:
        # the log is in time order; logs dated after now (a plan logged ahead)
        # would make "now" too old for it: such an event is placed at the
        # log's last time (its payload and the database keep the real one)
        when = max(micros(ts), ch.last_timestamp or 0)
        ch.append(timestamp=when, event_type=etype, payload={**payload, "recorded_at": ts})
