"""The world's SQLite database: opening it from a path or ``sqlite:///``
URL, its migrations, and the seeding commands (agents, locations,
activities).  Everything else writes through the scheduler."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import (ConfigError, CorruptDataError, NotFoundError, SchemaError, StorageError,
                                 ValidationError)
from chronoledger.world import forms
from chronoledger.world.config import WorldConfig, parse_config

#: Timestamps of seeded rows: fixed, so that two databases seeded alike are alike byte for byte.
SEED_TIME = "2026-01-01T00:00:00.000000Z"
_URL = re.compile(r"sqlite:///(.+)\Z")


def as_int(value: apsw.SQLiteValue, what: str) -> int:
    """A value read from the database that must be an integer (an id, a
    count); a CorruptDataError naming ``what`` (``table.column``) if not."""
    if isinstance(value, int):
        return value
    raise CorruptDataError(f"{what}: expected a whole number in the database, found {value!r}")


def as_text(value: apsw.SQLiteValue, what: str) -> str:
    """A value read from the database that must be text; a CorruptDataError
    naming ``what`` (``table.column``) if not."""
    if isinstance(value, str):
        return value
    raise CorruptDataError(f"{what}: expected text in the database, found {value!r}")


def db_path(db_url: str | os.PathLike[str]) -> Path:
    """The file a ``sqlite:///path`` URL (or a plain path) names.  Other
    schemes are refused: the world's data is SQLite, opened through apsw."""
    text = os.fspath(db_url)
    if "://" not in text:
        return Path(text)
    m = _URL.match(text)
    if not m or "?" in m.group(1):
        raise ConfigError(f"{text}: not a database URL this build reads (write sqlite:///path/to/world.db, "
                          f"without options)")
    return Path(m.group(1))


def count_agents(path: Path) -> int:
    """How many agents the database at ``path`` holds (0 if there is no such file or table), read-only."""
    if not path.is_file():
        return 0
    conn = db.open_readonly(path, db.DEFAULT_BUSY_TIMEOUT_MS)      # another run may be writing it
    try:
        with db.sqlite_errors(path, "counting its agents"):
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agents'").fetchall():
                return 0
            return as_int(conn.execute("SELECT count(*) FROM agents").fetchall()[0][0], "count(agents)")
    finally:
        conn.close()


def refuse_foreign(path: Path) -> None:
    """A SchemaError for a database that is not a world's (yet): the world
    sandbox's, to adopt first, or another program's.  Read-only: a file
    refused is left as it was."""
    form = forms.form_of(path)
    if form.kind == "sandbox":
        raise SchemaError(f"{path}: the world sandbox's database ({form.describe()}); adopt it first with "
                          f"`chronoledger world adopt --db-url {path}` (every row is kept); nothing was changed")
    if form.kind == "foreign":
        raise SchemaError(f"{path}: not a world database ({form.describe()}, no schema version, and tables of the "
                          f"world's names); nothing was changed")


def connect(db_url: str | os.PathLike[str], *, synchronous: str = "normal") -> apsw.Connection:
    """The world database (created if missing), migrated to the current schema."""
    path = db_path(db_url)
    if not path.parent.exists():
        # the sandbox's default URL is sqlite:///./data/agents.db, and its tools make the folder
        try:
            path.parent.mkdir(parents=True)
        except OSError as exc:
            raise StorageError(f"{path}: the folder {path.parent} cannot be made: {exc.strerror or exc}") from None
    refuse_foreign(path)
    conn = db.connect(path, synchronous=synchronous)
    try:
        db.migrate(conn, db.migrations("chronoledger.world"), path)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, apsw.Error):
            raise db.sqlite_error(exc, path) from None
        raise
    return conn


def seed_agent(conn: apsw.Connection, name: str, *, bio: str = "", job: str = "", interests: Any = None,
               family: Any = None, traits: Any = None) -> int:
    """Add an agent (or update the one with this name); returns its id.
    ``interests``: {"coffee": 0.8, ...} or "coffee:0.8,cycling:0.9"."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("an agent needs a name")
    scores = parse_interests(interests)
    for key, value in (("family", family), ("traits", traits)):
        if value is not None and not isinstance(value, (dict, list)):
            raise ValidationError(f"{key}: expected a JSON object or list, got {type(value).__name__}")
    with db.sqlite_errors(conn.filename, f"seeding agent {name}"), \
            db.write_transaction(conn, f"{conn.filename}: seeding agent {name}"):
        conn.execute("INSERT INTO agents (name, bio, job, family_json, traits_json, created_at) VALUES (?, ?, ?, ?, ?, ?) "
                     "ON CONFLICT (name) DO UPDATE SET bio = excluded.bio, job = excluded.job, "
                     "family_json = excluded.family_json, traits_json = excluded.traits_json",
                     (name.strip(), bio or "", job or "", json.dumps(family or {}, sort_keys=True),
                      json.dumps(traits or {}, sort_keys=True), SEED_TIME))
        agent_id = as_int(conn.execute("SELECT id FROM agents WHERE name = ?", (name.strip(),)).fetchall()[0][0],
                          "agents.id")
        conn.execute("DELETE FROM interests WHERE agent_id = ?", (agent_id,))
        conn.executemany("INSERT INTO interests (agent_id, tag, score) VALUES (?, ?, ?)",
                         [(agent_id, tag, score) for tag, score in scores.items()])
    return agent_id


def parse_interests(interests: Any) -> dict[str, float]:
    """"coffee:0.8,cycling" (a tag without a score scores 0.5) or a mapping, checked."""
    if interests is None or interests == "":
        return {}
    if isinstance(interests, str):
        out = {}
        for part in interests.split(","):
            tag, _, score = part.strip().partition(":")
            if not tag.strip():
                raise ValidationError(f"interests: {interests!r}: an empty tag (write tag:score,tag:score)")
            try:
                out[tag.strip()] = float(score) if score.strip() else 0.5
            except ValueError:
                raise ValidationError(f"interests: {part.strip()!r}: the score must be a number 0..1") from None
        interests = out
    if not isinstance(interests, dict):
        raise ValidationError(f"interests: expected tag:score pairs, got {type(interests).__name__}")
    for tag, score in interests.items():
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
            raise ValidationError(f"interests: {tag}: the score {score!r} must be a number 0..1")
    return {str(k): float(v) for k, v in interests.items()}


def tie_families(conn: apsw.Connection, ties: list[tuple[int, int, str]]) -> None:
    """Make the family an agent's family_json names its relationships:
    (from id, to id, role) becomes a relationship of that kind (strength
    0.8 when new; an existing one keeps its strength), and the other way
    round, one of kind ``family`` unless they already have one."""
    with db.sqlite_errors(conn.filename, "relating families"), \
            db.write_transaction(conn, f"{conn.filename}: relating families"):
        conn.executemany("INSERT INTO relationships (from_agent_id, to_agent_id, kind, strength, updated_at) "
                         "VALUES (?, ?, ?, 0.8, ?) ON CONFLICT (from_agent_id, to_agent_id) DO UPDATE SET "
                         "kind = excluded.kind WHERE kind <> excluded.kind",
                         [(a, b, role, SEED_TIME) for a, b, role in ties])
        conn.executemany("INSERT OR IGNORE INTO relationships (from_agent_id, to_agent_id, kind, strength, updated_at) "
                         "VALUES (?, ?, 'family', 0.8, ?)", [(b, a, SEED_TIME) for a, b, _ in ties])


def memories_of(conn: apsw.Connection, positions: dict[int, int]) -> Iterator[tuple[int, str, Any, Any, str]]:
    """The stored memories of the agents in ``positions`` (id -> position),
    in the order they were made: (position, text, importance, created_at,
    norm_hash)."""
    with db.sqlite_errors(conn.filename, "reading memories"):
        for aid, text, imp, made, h in conn.execute(
                "SELECT agent_id, text, importance, created_at, norm_hash FROM memories ORDER BY id"):
            p = positions.get(aid)
            if p is not None:
                yield p, as_text(text, "memories.text"), imp, made, as_text(h, "memories.norm_hash")


def recorded_config(path: Path, run_id: int, config_json: apsw.SQLiteValue) -> WorldConfig:
    """The config run ``run_id`` recorded (``runs.config_json``), checked; damaged text is a CorruptDataError
    naming the run."""
    try:
        data = json.loads(as_text(config_json, "runs.config_json"))
    except ValueError as exc:
        raise CorruptDataError(f"{path}: run {run_id}: its recorded config is not JSON ({exc})") from None
    return parse_config(data, f"{path}: run {run_id} (recorded config)")


def world_init(conn: apsw.Connection, config: WorldConfig) -> tuple[int, int]:
    """Seed (or bring up to date) the locations and activities of ``config``;
    returns how many of each there are."""
    with db.sqlite_errors(conn.filename, "seeding the world"), \
            db.write_transaction(conn, f"{conn.filename}: seeding the world"):
        conn.executemany(
            "INSERT INTO locations (name, kind, capacity, open_hours_json) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, capacity = excluded.capacity, "
            "open_hours_json = excluded.open_hours_json",
            [(loc.name, loc.kind, loc.capacity, json.dumps([loc.open_hour, loc.close_hour]))
             for loc in config.locations.values()])
        ids = {as_text(name, "locations.name"): as_int(lid, "locations.id")
               for name, lid in conn.execute("SELECT name, id FROM locations").fetchall()}
        conn.executemany(
            "INSERT INTO activities (name, category, default_duration_min, location_id, prompt_template) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET category = excluded.category, "
            "default_duration_min = excluded.default_duration_min, location_id = excluded.location_id, "
            "prompt_template = excluded.prompt_template",
            [(a.name, a.category, a.duration_minutes, ids[a.location], a.prompt_template)
             for a in config.activities.values()])
    with db.sqlite_errors(conn.filename, "counting places and activities"):
        n_loc = as_int(conn.execute("SELECT count(*) FROM locations").fetchall()[0][0], "count(locations)")
        n_act = as_int(conn.execute("SELECT count(*) FROM activities").fetchall()[0][0], "count(activities)")
    return n_loc, n_act


def copy_to(src: Path, folder: Path) -> Path:
    """A copy of the database ``src`` (its WAL folded in) in ``folder``, made
    by SQLite's backup from a read-only connection, so the original is not
    touched; the copy's path.  A database that does not exist yet copies as
    nothing (the run creates it)."""
    target = folder / src.name
    if src.exists():
        source = db.open_readonly(src)
        try:
            with db.sqlite_errors(src, f"copying it to {folder}"):
                copy = db.open_connection(target)
                try:
                    with copy.backup("main", source, "main") as b:
                        b.step()
                finally:
                    copy.close()
        finally:
            source.close()
    return target


def _open_existing(db_url: str | os.PathLike[str]) -> apsw.Connection:
    p = db_path(db_url)
    if not p.is_file():
        raise NotFoundError(f"{p}: no such world database")
    refuse_foreign(p)
    return db.open_readonly(p, db.DEFAULT_BUSY_TIMEOUT_MS)      # a run may be writing it


def day_report(db_url: str | os.PathLike[str], day_label: str, run_id: int | None = None) -> tuple[int, str, dict]:
    """(run, summary text, metrics) of a day's stored report, from the latest
    run that has that day unless ``run_id`` says which; read-only."""
    conn = _open_existing(db_url)
    try:
        with db.named_damage(db_path(db_url), "reading a day's report"):
            try:
                rows = conn.execute("SELECT run_id, summary_text, metrics_json FROM daily_reports WHERE day_label = ?"
                                    + (" AND run_id = ?" if run_id is not None else "") +
                                    " ORDER BY run_id DESC LIMIT 1",
                                    [day_label] + ([run_id] if run_id is not None else [])).fetchall()
            except apsw.SQLError as exc:    # kept: no daily_reports table, so not a world database
                raise ConfigError(f"{db_path(db_url)}: not a world database ({exc})") from None
    finally:
        conn.close()
    if not rows:
        days = report_days(db_url, run_id) if run_id is not None else []
        days = days or report_days(db_url)
        raise NotFoundError(f"no report for day {day_label!r}" + (f" in run {run_id}" if run_id else "") +
                            (f" (reports: {days_text(days)})" if days else " (no day has a report yet)"))
    run, summary, metrics = rows[0]
    return (as_int(run, "daily_reports.run_id"), as_text(summary, "daily_reports.summary_text"),
            json.loads(as_text(metrics, "daily_reports.metrics_json")))


def report_days(db_url: str | os.PathLike[str], run_id: int | None = None) -> list[dict[str, Any]]:
    """The days that have a stored report, by run and day: {"run_id",
    "day_label", "events", "conversations"}, of run ``run_id`` only if given;
    read-only."""
    conn = _open_existing(db_url)
    try:
        with db.named_damage(db_path(db_url), "listing the days' reports"):
            try:
                rows = conn.execute("SELECT run_id, day_label, json_extract(metrics_json, '$.events'), "
                                    "json_extract(metrics_json, '$.conversations') FROM daily_reports"
                                    + (" WHERE run_id = ?" if run_id is not None else "") +
                                    " ORDER BY run_id, day_label", [run_id] if run_id is not None else []).fetchall()
            except apsw.SQLError as exc:    # kept: no daily_reports table, so not a world database
                raise ConfigError(f"{db_path(db_url)}: not a world database ({exc})") from None
    finally:
        conn.close()
    return [{"run_id": as_int(run, "daily_reports.run_id"), "day_label": as_text(day, "daily_reports.day_label"),
             "events": as_int(events, "daily_reports.metrics_json events"),
             "conversations": as_int(convs, "daily_reports.metrics_json conversations")}
            for run, day, events, convs in rows]


def days_text(days: list[dict[str, Any]], runs: int = 5) -> str:
    """The days of :func:`report_days` in a line, for a message naming what
    exists: ``run 1: 2026-01-05, 2026-01-06; run 2: 2026-01-05 .. 2026-02-03
    (30 days)`` (the last ``runs`` runs)."""
    by_run: dict[int, list[str]] = {}
    for d in days:
        by_run.setdefault(d["run_id"], []).append(d["day_label"])
    parts = []
    for run, labels in list(by_run.items())[-runs:]:
        parts.append(f"run {run}: " + (", ".join(labels) if len(labels) <= 4 else
                                       f"{labels[0]} .. {labels[-1]} ({len(labels)} days)"))
    earlier = len(by_run) - len(parts)
    return ("; ".join(parts)) + (f"; and {earlier} earlier run{'s' if earlier != 1 else ''}" if earlier else "")


def unfinished_run(db_url: str | os.PathLike[str]) -> tuple[int, bool] | None:
    """(id, whether it has a checkpoint to resume from) of the latest run
    that did not finish, if any; read-only, and never raises (for hints)."""
    try:
        conn = _open_existing(db_url)
    except Exception:                       # noqa: BLE001 - only a hint depends on it
        return None
    try:
        rows = conn.execute("SELECT id, checkpoint_json IS NOT NULL FROM runs WHERE status IN ('running', 'stopped') "
                            "ORDER BY id DESC LIMIT 1").fetchall()
        rid = rows[0][0] if rows else None
        return (rid, bool(rows[0][1])) if isinstance(rid, int) else None      # an id: always an int
    except apsw.Error:                      # kept: a hint only, and this never raises
        return None
    finally:
        conn.close()
