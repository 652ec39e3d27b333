"""Adopting the world sandbox's database (CalfCrusher/AI_Agents_Communication,
``python/db/models.py``): its agents, interests, family, relationships,
conversations and memories become the world's, and every row it had is kept.

How: in one transaction, each of the sandbox's tables is renamed
``sandbox_<name>`` (rows, indexes and foreign keys as they were: nothing is
lost or rewritten), the world's schema is created, and the rows the world
uses are copied into it:

==================  ===========================================================
sandbox             world
==================  ===========================================================
agents              agents (a NULL bio or job is ''; family_json and
                    traits_json that are not JSON objects or lists are {} and
                    said so; ``preferred_model`` goes into traits)
interests           interests (a score outside 0..1 is clamped, and said so)
relationships       relationships (``type`` is the kind; one with no
                    ``to_agent_id``, or to itself, is left out and said so)
conversations,      conversations, conversation_turns (``scenario`` is the
turns               topic; a turn with empty content is left out and said so)
memories            memories (the sandbox's hash is unique across all agents,
                    so it stays unique per agent; ``source_turn_id`` goes into
                    the metadata; importance 3)
locations,          locations, activities (open hours ``{"start", "end"}``
activities          become ``[open, close]``)
==================  ===========================================================

Its ``world_events`` (another shape: a tick index and the action inside the
metadata), ``agent_locations``, ``agent_schedules``, ``daily_reports`` and
``embeddings`` are history of the sandbox's own runs: they stay, whole, in
their ``sandbox_`` tables.  A crash at any moment leaves the file as it was
(SQLite's rollback journal) or adopted; never between.  The sandbox's own
code no longer opens the file once it is adopted: the move is one way, as
moving to another tool is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import SchemaError
from chronoledger.world import forms, store
from chronoledger.world.memory import minute_of

__all__ = ["Adoption", "adopt_sandbox"]

#: The world tables adoption fills, and what it leaves in the sandbox's own tables.
COPIED = ("agents", "interests", "relationships", "conversations", "turns", "memories", "locations", "activities")


@dataclass
class Adoption:
    """What adopting a database did (or, checked only, would do)."""
    path: Path
    copied: dict[str, int] = field(default_factory=dict)      # world table -> rows copied into it
    kept: dict[str, int] = field(default_factory=dict)        # sandbox_<table> -> rows it keeps
    notes: list[str] = field(default_factory=list)            # every value changed or row left out, named
    done: bool = False

    def __str__(self) -> str:
        state = "adopted" if self.done else "can be adopted (nothing was changed)"
        lines = [f"{self.path}: the world sandbox's database {state}"]
        lines += [f"  {t}: {n} row(s)" for t, n in self.copied.items()]
        lines.append("  kept as they were: " + ", ".join(f"{t} ({n})" for t, n in self.kept.items()))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def adopt_sandbox(db_url: str | Path, *, check: bool = False) -> Adoption:
    """Adopt the sandbox's database at ``db_url`` (see the module's notes);
    ``check``: only say what adopting would do.  A database that is not the
    sandbox's is refused (a SchemaError), and left as it was."""
    path = store.db_path(db_url)
    if not path.is_file():
        raise SchemaError(f"{path}: no such database file" + (" (a folder)" if path.is_dir() else ""))
    form = forms.form_of(path)
    if form.kind == "ours":
        raise SchemaError(f"{path}: already a world database (schema version {form.version}); nothing to adopt")
    if form.kind != "sandbox":
        raise SchemaError(f"{path}: not the world sandbox's database ({form.describe()}); nothing was changed")
    result = Adoption(path)
    # no WAL: the file keeps its rollback journal until adopted, so a failure leaves it byte for byte as it was
    conn = db.connect(path, journal="delete")
    try:
        with db.sqlite_errors(path, "adopting the world sandbox's database"):
            conn.execute("PRAGMA foreign_keys=OFF")      # the renamed tables keep their keys among themselves
            conn.execute("BEGIN IMMEDIATE")
            try:
                _adopt(conn, form, result)
                _leave_out_dangling(conn, result)
                if check:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute("COMMIT")
                    result.done = True
            except BaseException:
                if not conn.getautocommit():
                    conn.execute("ROLLBACK")
                raise
    finally:
        conn.close()
    if result.done:                              # now ours: the stores' way (WAL), migrated to the latest
        store.connect(path).close()
    return result


def _check_text(conn: apsw.Connection, table: str, columns: set[str], path: Path) -> None:
    """A SchemaError naming the first text of ``table`` that is not UTF-8 (SQLite stores what it is given; the
    world reads text as text)."""
    for col in sorted(columns):
        q = db.quote_found_name(col)
        for rowid, raw in conn.execute(f"SELECT rowid, CAST({q} AS BLOB) FROM sandbox_{table} "
                                       f"WHERE typeof({q}) = 'text'"):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SchemaError(f"{path}: table {table}, row {rowid}, column {col}: not UTF-8 text (byte "
                                  f"{exc.start}: {raw[exc.start:exc.start + 4]!r}); fix it, then adopt; nothing was "
                                  f"changed") from None


def _leave_out_dangling(conn: apsw.Connection, result: Adoption) -> None:
    """Rows of the world's tables whose keys point nowhere (an interest of an
    agent the sandbox does not have) are left out, each named in the notes:
    the sandbox's own rows stay in its ``sandbox_`` tables, right or wrong."""
    for table in ("interests", "relationships", "conversation_turns", "memories", "agents", "activities"):
        while True:
            problems = conn.execute(f"PRAGMA foreign_key_check({table})").fetchall()
            if not problems:
                break
            for _t, rowid, parent, _fk in problems:
                row = conn.execute(f"SELECT * FROM {table} WHERE rowid = ?", (rowid,)).fetchall()
                result.notes.append(f"{table} row {rowid} {tuple(row[0])[:4] if row else ''}: points to no "
                                    f"{parent} row; left out (kept in the sandbox_ tables)")
                conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
                shown = {"conversation_turns": "conversation_turns"}.get(table, table)
                if shown in result.copied:
                    result.copied[shown] -= 1


def _number(value: Any, default: float, low: float, high: float, what: str, notes: list[str]) -> float:
    """A stored number, within low..high; anything else is ``default`` or clamped, and a note says so."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        notes.append(f"{what}: {str(value)[:40]!r} is not a number; the world has {default}")
        return default
    if not low <= value <= high:
        notes.append(f"{what}: {value} clamped to {low:g}..{high:g}")
        return min(high, max(low, float(value)))
    return float(value)


def _count(conn: apsw.Connection, table: str) -> int:
    return db.expect(conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0], int, f"count({table})")


def _columns(conn: apsw.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({db.quote_identifier(table)})")}


def _json_or(raw: Any, fallback: str, what: str, notes: list[str]) -> str:
    """A stored JSON object or list, as text; anything else is ``fallback`` (and a note names it)."""
    if raw is None or raw == "":
        return fallback
    try:
        value = json.loads(raw) if isinstance(raw, (str, bytes)) else None
    except ValueError:
        value = None
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    notes.append(f"{what}: {str(raw)[:60]!r} is not a JSON object or list; the world has {fallback} "
                 f"(the original is in the sandbox_ table)")
    return fallback


def _adopt(conn: apsw.Connection, form: forms.Form, result: Adoption) -> None:
    notes = result.notes
    theirs = [t for t in forms.SANDBOX_TABLES if t in form.tables]
    for t in theirs:
        if f"sandbox_{t}" in form.tables:
            raise SchemaError(f"{result.path}: it already has a table sandbox_{t}; adopt a copy made before the "
                              f"last attempt (nothing was changed)")
    for t in theirs:
        conn.execute(f"ALTER TABLE {t} RENAME TO sandbox_{t}")
        result.kept[f"sandbox_{t}"] = _count(conn, f"sandbox_{t}")
    for m in db.migrations("chronoledger.world"):
        conn.execute(m.sql)
        conn.execute(f"PRAGMA user_version={int(m.version)}")
    has = {t: _columns(conn, f"sandbox_{t}") for t in theirs}
    for t in COPIED:
        if t in has:
            _check_text(conn, t, has[t], result.path)
    seed = store.SEED_TIME

    def col(table: str, name: str, default: str = "NULL") -> str:
        return name if name in has.get(table, ()) else default

    rows: list[tuple[Any, ...]]
    if "agents" in has:
        rows = []
        for aid, name, bio, job, family, traits, made, model in conn.execute(
                f"SELECT id, name, {col('agents', 'bio')}, {col('agents', 'job')}, {col('agents', 'family_json')}, "
                f"{col('agents', 'traits_json')}, {col('agents', 'created_at')}, "
                f"{col('agents', 'preferred_model')} FROM sandbox_agents ORDER BY id"):
            traits_text = _json_or(traits, "{}", f"agent {aid} traits_json", notes)
            if model is not None:
                t = json.loads(traits_text)
                if isinstance(t, dict):
                    t.setdefault("preferred_model", model)
                    traits_text = json.dumps(t, sort_keys=True)
            rows.append((aid, name, bio or "", job or "", _json_or(family, "{}", f"agent {aid} family_json", notes),
                         traits_text, str(made) if made is not None else seed))
        conn.executemany("INSERT INTO agents (id, name, bio, job, family_json, traits_json, created_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        result.copied["agents"] = len(rows)
    if "interests" in has:
        rows = []
        for aid, tag, score in conn.execute("SELECT agent_id, tag, score FROM sandbox_interests ORDER BY id"):
            rows.append((aid, tag, _number(score, 0.5, 0.0, 1.0, f"agent {aid} interest {tag!r}: score", notes)))
        conn.executemany("INSERT INTO interests (agent_id, tag, score) VALUES (?, ?, ?)", rows)
        result.copied["interests"] = len(rows)
    if "relationships" in has:
        rows = []
        for rid, a, b, kind, strength, updated, since in conn.execute(
                f"SELECT id, from_agent_id, to_agent_id, {col('relationships', 'type')}, "
                f"{col('relationships', 'strength')}, {col('relationships', 'updated_at')}, "
                f"{col('relationships', 'since_date')} FROM sandbox_relationships ORDER BY id"):
            if b is None or a == b:
                notes.append(f"relationship {rid}: {'no to_agent_id' if b is None else 'an agent to itself'}; "
                             f"left out (kept in sandbox_relationships)")
                continue
            s = _number(strength, 0.0, -1.0, 1.0, f"relationship {rid}: strength", notes)
            rows.append((a, b, kind or "acquaintance", s, str(updated or since or seed)))
        conn.executemany("INSERT INTO relationships (from_agent_id, to_agent_id, kind, strength, updated_at) "
                         "VALUES (?, ?, ?, ?, ?)", rows)
        result.copied["relationships"] = len(rows)
    if "conversations" in has:
        first_model = {}
        if "turns" in has:
            first_model = {c: m for c, m in conn.execute(
                "SELECT conversation_id, model FROM sandbox_turns t WHERE id = "
                "(SELECT min(id) FROM sandbox_turns WHERE conversation_id = t.conversation_id)")}
        rows = [(cid, "scripted" if prompt else "duo_chat", topic or "", first_model.get(cid) or "unknown",
                 str(started or seed))
                for cid, topic, prompt, started in conn.execute(
                    f"SELECT id, {col('conversations', 'scenario')}, {col('conversations', 'initial_prompt')}, "
                    f"{col('conversations', 'started_at')} FROM sandbox_conversations ORDER BY id")]
        conn.executemany("INSERT INTO conversations (id, kind, topic, model, created_at) VALUES (?, ?, ?, ?, ?)", rows)
        result.copied["conversations"] = len(rows)
    if "turns" in has:
        rows = []
        for tid, conv, rnd, agent, role, content, model in conn.execute(
                "SELECT id, conversation_id, round, agent_id, role, content, model FROM sandbox_turns ORDER BY id"):
            if not content:
                notes.append(f"turn {tid}: empty content; left out (kept in sandbox_turns)")
                continue
            rows.append((tid, conv, rnd, agent, role or "assistant", content, model or "unknown"))
        conn.executemany("INSERT INTO conversation_turns (id, conversation_id, round, agent_id, role, content, model) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        result.copied["conversation_turns"] = len(rows)
    if "memories" in has:
        rows = []
        for mid, aid, kind, text, conf, turn, h, meta, made in conn.execute(
                f"SELECT id, agent_id, kind, text, {col('memories', 'confidence')}, "
                f"{col('memories', 'source_turn_id')}, normalized_hash, {col('memories', 'metadata_json')}, "
                f"{col('memories', 'created_at')} FROM sandbox_memories ORDER BY id"):
            if not isinstance(text, str) or not text:
                notes.append(f"memory {mid}: no text; left out (kept in sandbox_memories)")
                continue
            c = _number(conf, 0.5, 0.0, 1.0, f"memory {mid}: confidence", notes)
            meta_text = _json_or(meta, "{}", f"memory {mid} metadata_json", notes)
            if turn is not None:
                m = json.loads(meta_text)
                if isinstance(m, dict):
                    m["source_turn"] = turn
                    meta_text = json.dumps(m, sort_keys=True)
            if made is not None and minute_of(made) == 0:
                notes.append(f"memory {mid}: created_at {str(made)[:40]!r} is not a time; it counts as long ago")
            rows.append((mid, aid, kind, text, c, h, meta_text, str(made or seed)))
        conn.executemany("INSERT INTO memories (id, agent_id, kind, text, confidence, norm_hash, metadata_json, "
                         "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        result.copied["memories"] = len(rows)
    if "locations" in has:
        rows = []
        for lid, name, kind, cap, hours in conn.execute(
                f"SELECT id, name, kind, {col('locations', 'capacity')}, {col('locations', 'open_hours_json')} "
                f"FROM sandbox_locations ORDER BY id"):
            if not (isinstance(cap, int) and cap > 0) and cap is not None:
                notes.append(f"location {name!r}: capacity {str(cap)[:20]!r} is not a number above 0; the world has 10")
            hours_list = _open_hours(hours)
            if hours is not None and hours_list == [0, 24] and _open_hours(hours, strict=True) is None:
                notes.append(f"location {name!r}: open hours {str(hours)[:40]!r} cannot be read; open all day")
            rows.append((lid, name, kind, cap if isinstance(cap, int) and cap > 0 else 10, json.dumps(hours_list)))
        conn.executemany("INSERT INTO locations (id, name, kind, capacity, open_hours_json) VALUES (?, ?, ?, ?, ?)",
                         rows)
        result.copied["locations"] = len(rows)
    if "activities" in has:
        rows = [(aid, name, cat, dur if isinstance(dur, int) and dur > 0 else 60, tpl or "")
                for aid, name, cat, dur, tpl in conn.execute(
                    f"SELECT id, name, category, {col('activities', 'default_duration_min')}, "
                    f"{col('activities', 'prompt_template')} FROM sandbox_activities ORDER BY id")]
        conn.executemany("INSERT INTO activities (id, name, category, default_duration_min, prompt_template) "
                         "VALUES (?, ?, ?, ?, ?)", rows)
        result.copied["activities"] = len(rows)


def _open_hours(raw: Any, strict: bool = False) -> list[int] | Any:
    """The sandbox's ``{"start": 7, "end": 22}`` as ``[7, 22]`` (all day when
    unreadable; ``strict``: None then)."""
    try:
        value = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("start"), int) and isinstance(value.get("end"), int):
        return [value["start"], value["end"]]
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value
    return None if strict else [0, 24]
