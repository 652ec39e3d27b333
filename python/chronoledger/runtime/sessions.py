"""Sessions and their conversation turns (query 3: session replay)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from chronoledger import sqlite as db
from chronoledger.errors import ValidationError
from chronoledger.runtime import values as v
from chronoledger.runtime.core import QUERIES, StoreCore, _decode_cursor, _each, _encode_cursor
from chronoledger.runtime.vocab import CLOSED_SESSION, ENUMS, SESSION_STATUSES

_TURN_KEYS = frozenset({"role", "content", "token_count", "metadata", "created_at", "id"})
_ROLES = frozenset(ENUMS[("conversation_turns", "role")])


class _SessionRow(TypedDict):
    id: str
    actor: str
    channel: str | None
    started_at: str
    status: str
    metadata_json: str



class Sessions(StoreCore):
    # --- sessions and turns ---------------------------------------------------
    def start_session(self, actor: str, channel: str | None = None, metadata: dict | None = None, *,
                      started_at=None, id: str | None = None) -> dict:
        row: _SessionRow = {
            "id": v.check_id(id, "id") if id is not None else v.new_id(),
            "actor": v.check_text(actor, "sessions.actor"),
            "channel": v.check_enum(channel, "sessions", "channel", nullable=True),
            "started_at": v.check_time(started_at, "sessions.started_at"),
            "status": "active",
            "metadata_json": v.check_json_object(metadata, "sessions.metadata_json")}
        with self._locked(), self._write("start_session"):
            self._insert("sessions", row, "start_session")
        return self._get("sessions", row["id"], "id")

    def end_session(self, session_id: str, status: str = "ended", metadata: dict | None = None, *,
                    ended_at=None) -> dict:
        """Close a session (ended, aborted, or as ToM's store does, completed or failed); ``metadata`` is merged into the
        stored metadata.  Turns are refused afterwards."""
        status = v.check_enum(status, "sessions", "status", SESSION_STATUSES[1:])
        return self._finish("sessions", session_id, "session_id", status, "ended_at", ended_at,
                            "metadata_json", metadata, "the session started")

    def _check_turn(self, t: dict, i: int) -> tuple:
        """(id, role, content, token_count, created_at, metadata_json) of one turn."""
        # The common turn (a known role, str content, nothing else) is checked
        # inline: batches of turns are this store's hottest path.
        if not isinstance(t, dict):
            raise ValidationError(f"turns[{i}]: expected a dict, got {type(t).__name__}")
        if t.keys() - _TURN_KEYS:
            raise ValidationError(f"turns[{i}]: unknown field(s) {', '.join(sorted(t.keys() - _TURN_KEYS))}")
        role = t.get("role")
        if type(role) is not str or role not in _ROLES:
            v.check_enum(role, "conversation_turns", "role")
        content = t.get("content")
        if type(content) is not str or not content.isascii() or len(content) > v.MAX_BYTES // 4:
            v.check_text(content, f"turns[{i}].content", empty=True)     # its type, UTF-8 form and size
        tokens = t.get("token_count")
        if tokens is not None and type(tokens) is not int:
            tokens = v.check_int(tokens, f"turns[{i}].token_count")     # e.g. numpy ints, as int
        elif tokens is not None and not 0 <= tokens <= v.INT64_MAX:
            v.check_int(tokens, f"turns[{i}].token_count")
        meta = t.get("metadata")
        row_id = t.get("id")
        created = t.get("created_at")
        return (None if row_id is None else v.check_id(row_id, f"turns[{i}].id"), role, content, tokens,
                None if created is None else v.check_time(created, f"turns[{i}].created_at"),
                "{}" if meta is None else v.check_json_object(meta, f"turns[{i}].metadata"))

    def _open_session(self, sid: str) -> str:
        """The stored id of an open session."""
        row = self._get("sessions", sid, "session_id")
        if row["ended_at"] is not None or row["status"] in CLOSED_SESSION:
            raise ValidationError(f"session {sid} is {row['status']}; turns are appended to open sessions only")
        return row["id"]

    def append_turn(self, session_id: str, role: str, content: str, *, token_count: int | None = None,
                    metadata: dict | None = None, created_at=None, id: str | None = None) -> dict:
        """Append one turn; its ``turn_index`` (0, 1, 2...) is assigned in the
        same transaction, so concurrent appenders never collide."""
        res = self.append_turns(session_id, [{"role": role, "content": content, "token_count": token_count,
                                              "metadata": metadata, "created_at": created_at, "id": id}])
        return self._get("conversation_turns", res["ids"][0], "id")

    def append_turns(self, session_id: str, turns: Iterable[dict]) -> dict:
        """Append many turns (dicts with role, content and optionally
        token_count, metadata, created_at, id) in one transaction, with
        consecutive turn indexes.  Every turn is checked before any is
        written.  Returns ``{"session_id", "first_turn_index", "count", "ids"}``."""
        sid = v.check_ref(session_id, "session_id")
        checked = [self._check_turn(t, i) for i, t in enumerate(_each(turns, "turns", "turn dicts"))]
        ids = v.new_ids(len(checked))
        with self._locked(), self._write("append_turns"):
            sid = self._open_session(sid)
            stamp = self._stamp()
            # a number (REAL only where another tool stored one)
            first = db.expect(self._conn.execute("SELECT COALESCE(MAX(turn_index) + 1, 0) FROM conversation_turns "
                                                 "WHERE session_id = ?", (sid,)).fetchall()[0][0], (int, float),
                              f"{self.path}: conversation_turns.turn_index")
            rows = [(ids[i] if rid is None else rid, sid, first + i, role, content, tokens,
                     stamp if created is None else created, meta)
                    for i, (rid, role, content, tokens, created, meta) in enumerate(checked)]
            self._insert_many("INSERT INTO conversation_turns (id, session_id, turn_index, role, content, "
                              "token_count, created_at, metadata_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              rows, "append_turns")
        return {"session_id": sid, "first_turn_index": first, "count": len(rows), "ids": [r[0] for r in rows]}

    def list_sessions(self, *, limit: int = 50, cursor: str | None = None) -> dict:
        """Sessions, newest first, each with its ``turn_count`` (:meth:`session_replay` gives the ``turns``
        themselves); paged like list_workflow_runs."""
        limit = v.check_int(limit, "limit", minimum=1)
        params: dict = {"limit": limit + 1}
        where = ""
        if cursor is not None:
            after_t, after_id = _decode_cursor(cursor)
            where = "WHERE (s.started_at < :after_t OR (s.started_at = :after_t AND s.id < :after_id))"
            params.update(after_t=after_t, after_id=after_id)
        sql = (f"SELECT s.*, (SELECT COUNT(*) FROM conversation_turns t WHERE t.session_id = s.id) AS turn_count "
               f"FROM sessions s {where} ORDER BY s.started_at DESC, s.id DESC LIMIT :limit")
        with self._locked():
            rows = self._rows(sql, params)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"sessions": rows,
                "next_cursor": _encode_cursor(rows[-1]["started_at"], rows[-1]["id"]) if more else None}


    def session_replay(self, session_id: str) -> dict:
        """Query 3: the session and its turns ordered by turn_index."""
        sid = v.check_ref(session_id, "session_id")
        with self._locked():
            session = self._get("sessions", sid, "session_id")
            session["turns"] = self._rows(QUERIES["session_replay"], {"session_id": session["id"]})
        return session

