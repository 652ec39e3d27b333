"""Sessions and their conversation turns (query 3: session replay)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypedDict

from chronoledger import sqlite as db
from chronoledger.errors import ValidationError
from chronoledger.runtime import values as v
from chronoledger.runtime.core import QUERIES, StoreCore, _decode_cursor, _each
from chronoledger.runtime.vocab import CLOSED_SESSION, ENUMS, SESSION_STATUSES

_TURN_KEYS = frozenset({"role", "content", "token_count", "metadata", "created_at", "id"})
_PLAIN_KEYS = _TURN_KEYS
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
        batch = list(_each(turns, "turns", "turn dicts"))
        cols = _plain_turns(batch)
        if cols is None:                     # something beyond a plain turn: each checked, each named
            checked = [self._check_turn(t, i) for i, t in enumerate(batch)]
            given_ids = [c[0] for c in checked]
            roles, contents, tokens = [c[1] for c in checked], [c[2] for c in checked], [c[3] for c in checked]
            times: list[str | None] | None = [c[4] for c in checked]
            metas: list[str] | str = [c[5] for c in checked]
        else:
            given_ids, times, metas = None, None, "{}"
            roles, contents, tokens = cols
        n = len(batch)
        ids = v.new_ids(n)
        if given_ids is not None:
            ids = [g if g is not None else i for g, i in zip(given_ids, ids)]
        with self._locked(), self._write("append_turns"):
            sid = self._open_session(sid)
            stamp = self._stamp()
            # a number (REAL only where another tool stored one)
            first = db.expect(self._conn.execute("SELECT COALESCE(MAX(turn_index) + 1, 0) FROM conversation_turns "
                                                 "WHERE session_id = ?", (sid,)).fetchall()[0][0], (int, float),
                              f"{self.path}: conversation_turns.turn_index")
            created: list[str] | str = stamp if times is None or all(t is None for t in times) else \
                [stamp if t is None else t for t in times]
            index: list[int | float] | range = range(first, first + n) if isinstance(first, int) else \
                [first + i for i in range(n)]
            if n:
                self._insert_columns(
                    "INSERT INTO conversation_turns (id, session_id, turn_index, role, content, token_count, "
                    "created_at, metadata_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [ids, sid, list(index), roles, contents, tokens, created, metas], n, "append_turns")
        return {"session_id": sid, "first_turn_index": first, "count": n, "ids": ids}

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
        rows, nxt = self._page(sql, params, limit, "started_at")
        return {"sessions": rows, "next_cursor": nxt}


    def session_replay(self, session_id: str, *, after: int | None = None, limit: int | None = None) -> dict:
        """Query 3: the session and its turns ordered by turn_index.

        Paged with ``limit`` (turns per page) and ``after`` (the last
        turn_index of the page before): ``next_after`` is the value for the
        next page, None on the last one."""
        sid = v.check_ref(session_id, "session_id")
        after = v.check_int(after, "after", nullable=True, minimum=None)
        limit = v.check_int(limit, "limit", nullable=True, minimum=1)
        with self._locked():
            session = self._get("sessions", sid, "session_id")
            if after is None and limit is None:
                session["turns"] = self._rows(QUERIES["session_replay"], {"session_id": session["id"]})
                session["next_after"] = None
                return session
            rows = self._rows("SELECT * FROM conversation_turns WHERE session_id = ? AND turn_index > ? "
                              "ORDER BY turn_index LIMIT ?",
                              (session["id"], -1 if after is None else after, -1 if limit is None else limit + 1))
        more = limit is not None and len(rows) > limit
        session["turns"] = rows[:limit] if limit is not None else rows
        session["next_after"] = session["turns"][-1]["turn_index"] if more else None
        return session

    def recent_turns(self, session_id: str, *, last: int | None = None, token_budget: int | None = None,
                     count_tokens: Callable[[str], int] | None = None) -> list[dict]:
        """The session's latest turns, in order, for a prompt: at most
        ``last`` of them, and no more than fit in ``token_budget`` tokens
        (counted back from the newest; a turn that does not fit ends it).  A
        turn's tokens are its ``token_count``, or ``count_tokens(content)``
        when it has none (your tokenizer: ``len(enc.encode(text))``), or,
        without one, an estimate of one token per 4 characters, rounded up."""
        sid = v.check_ref(session_id, "session_id")
        last = v.check_int(last, "last", nullable=True, minimum=1)
        budget = v.check_int(token_budget, "token_budget", nullable=True, minimum=0)
        if last is None and budget is None:
            raise ValidationError("recent_turns: give last, token_budget or both")
        if count_tokens is not None and not callable(count_tokens):
            raise ValidationError(f"count_tokens: expected a function of the text, got {type(count_tokens).__name__}")
        picked: list[dict] = []
        used = 0
        with self._locked():
            real = self._get("sessions", sid, "session_id")["id"]
            page = 256 if last is None else min(last, 256)
            below: int | float | None = None
            while True:
                rows = self._rows("SELECT * FROM conversation_turns WHERE session_id = ?"
                                  + ("" if below is None else " AND turn_index < ?") + " ORDER BY turn_index DESC LIMIT ?",
                                  (real, page) if below is None else (real, below, page))
                for row in rows:
                    if last is not None and len(picked) >= last:
                        return picked[::-1]
                    if budget is not None:
                        cost = _tokens(row, count_tokens)
                        if used + cost > budget:
                            return picked[::-1]
                        used += cost
                    picked.append(row)
                if len(rows) < page:
                    return picked[::-1]
                below = rows[-1]["turn_index"]


_NONE_TYPE = type(None)
_INT_OR_NONE = frozenset({int, _NONE_TYPE})


def _plain_turns(batch: list) -> tuple[list, list, list] | None:
    """(roles, contents, token counts) of a batch of plain turns -- dicts of
    a known role, ASCII content of a sane length, an int token count or
    none, and nothing else (no id, time or metadata) -- checked a column at a
    time, in C loops; None when any turn is more than that (each is then
    checked on its own, so that an error names the turn and field)."""
    if not batch or set(map(type, batch)) != {dict}:
        return None
    if not all(map(_PLAIN_KEYS.issuperset, batch)):
        return None
    roles = [t.get("role") for t in batch]
    if set(map(type, roles)) != {str} or not _ROLES.issuperset(roles):
        return None
    contents = [t.get("content") for t in batch]
    if set(map(type, contents)) != {str} or not all(map(str.isascii, contents)) or \
            max(map(len, contents)) > v.MAX_BYTES // 4:
        return None
    tokens = [t.get("token_count") for t in batch]
    kinds = set(map(type, tokens))
    if not kinds <= _INT_OR_NONE:
        return None
    if int in kinds:
        counted = [x for x in tokens if x is not None]
        if min(counted) < 0 or max(counted) > v.INT64_MAX:
            return None
    if any(t.get("id") is not None or t.get("created_at") is not None or t.get("metadata") is not None
           for t in batch):
        return None
    return roles, contents, tokens


def _tokens(row: dict, count: Callable[[str], int] | None) -> int:
    n = row.get("token_count")
    if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
        return n
    text = row["content"] if isinstance(row["content"], str) else ""
    if count is None:
        return -(-len(text) // 4)
    got = count(text)
    if isinstance(got, bool) or not isinstance(got, int) or got < 0:
        raise ValidationError(f"count_tokens: returned {got!r} for turn {row['turn_index']}, not a count")
    return got
