"""Full-text search over conversation turns (SQLite FTS5, migration 0006).

The index is brought up to date when a search runs (or by
:meth:`TurnSearch.index_turns`), not inside ``append_turns``: tokenizing
every turn as it is appended would cost more than the append itself, and
most turns are never searched.  docs/runtime.md, "Search".
"""

from __future__ import annotations

import re
import unicodedata

import apsw

from chronoledger import sqlite as db
from chronoledger.errors import QueryError, ValidationError
from chronoledger.runtime import values as v
from chronoledger.runtime.core import StoreCore

#: a word of a plain query: letters and digits in any script (FTS5's unicode61 splits the same way)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_INDEX_BATCH = 50_000


class TurnSearch(StoreCore):
    """Search over the turns of every session."""

    def _has_index(self) -> bool:
        return bool(self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_turns_fts'").fetchall())

    def _index_behind(self) -> bool:
        conn = self._conn
        (mark, mark_id), = conn.execute("SELECT indexed_rowid, indexed_id FROM _turns_fts_state WHERE id = 1")
        at = conn.execute("SELECT id FROM conversation_turns WHERE rowid = ?", (mark,)).fetchall()
        renumbered = mark and (not at or at[0][0] != mark_id)
        newer = conn.execute("SELECT 1 FROM conversation_turns WHERE rowid > ? LIMIT 1", (mark,)).fetchall()
        return bool(renumbered or newer)

    def index_turns(self) -> int:
        """Index the turns appended since the last search; returns how many.
        If the rows were renumbered (VACUUM renumbers a table without an
        INTEGER PRIMARY KEY), the index is rebuilt from all of them."""
        with self._locked():
            if not self._has_index():
                return 0
            if not self._index_behind():
                return 0
            with self._write("indexing turns for search"):
                conn = self._conn
                (mark, mark_id), = conn.execute("SELECT indexed_rowid, indexed_id FROM _turns_fts_state WHERE id = 1")
                at = conn.execute("SELECT id FROM conversation_turns WHERE rowid = ?", (mark,)).fetchall()
                if mark and (not at or at[0][0] != mark_id):
                    conn.execute("DELETE FROM _turns_fts")
                    mark = 0
                done = 0
                top = conn.execute("SELECT coalesce(max(rowid), 0) FROM conversation_turns").fetchall()[0][0]
                while mark < top:
                    # a batch at a time by rowid range: the rows are read by the statement that indexes them
                    upto = mark + _INDEX_BATCH
                    conn.execute("INSERT INTO _turns_fts (rowid, content, turn_id, session_id) SELECT rowid, "
                                 "CAST(content AS TEXT), id, session_id FROM conversation_turns "
                                 "WHERE rowid > ? AND rowid <= ?", (mark, upto))
                    done += conn.changes()
                    mark = upto
                last = conn.execute("SELECT rowid, id FROM conversation_turns WHERE rowid <= ? ORDER BY rowid DESC "
                                    "LIMIT 1", (top,)).fetchall()
                conn.execute("UPDATE _turns_fts_state SET indexed_rowid = ?, indexed_id = ? WHERE id = 1",
                             (last[0][0], last[0][1]) if last else (0, None))
            return done

    def search_turns(self, query: str, *, session_id: str | None = None, limit: int = 20,
                     syntax: str = "words") -> list[dict]:
        """Turns that match ``query``, best first (FTS5's bm25 rank), each a
        turn's row with ``rank`` and a ``snippet`` (the match in [brackets]).

        ``syntax="words"`` (the default): every word of ``query`` must occur
        (in any case, accents ignored), whatever else it holds -- punctuation
        and FTS5's operators are plain text here.  ``syntax="fts5"``: the
        query is FTS5's own language (``"exact phrase"``, ``retry OR
        resume``, ``sync*``, ``NEAR(a b, 3)``); a query it cannot read is a
        QueryError.  ``session_id`` keeps to one session.

        A store opened read-only, or a file older than the index (schema
        version 6), cannot bring the index up to date: a words query then
        reads every turn (slower, the same matches, newest first, no rank),
        and an fts5 query is refused."""
        if syntax not in ("words", "fts5"):
            raise ValidationError(f"syntax: {syntax!r} is not one of words, fts5")
        text = v.check_text(query, "query")
        limit = v.check_int(limit, "limit", minimum=1)
        sid = v.check_ref(session_id, "session_id") if session_id is not None else None
        words = _WORD.findall(text)
        if syntax == "words" and not words:
            raise ValidationError(f"query: {query!r} has no word to search for")
        with self._locked():
            if sid is not None:
                sid = self._get("sessions", sid, "session_id")["id"]
            indexed = self._has_index()
            if indexed and not self.readonly:
                self.index_turns()
            elif not indexed or self._index_behind():
                if syntax == "fts5":
                    raise QueryError(f"{self.path}: the search index is not up to date and the store is read-only "
                                     f"(or older than the index); bring it up to date once (`chronoledger runtime index "
                                     f"{self.path}`, or index_turns() on a store opened for writing), or search words")
                return self._scan(words, sid, limit)
            match = " ".join('"' + w.replace('"', '""') + '"' for w in words) if syntax == "words" else text
            sql = ("SELECT t.*, bm25(_turns_fts) AS rank, snippet(_turns_fts, 0, '[', ']', '...', 12) AS snippet "
                   "FROM _turns_fts JOIN conversation_turns t ON t.rowid = _turns_fts.rowid "
                   "WHERE _turns_fts MATCH ?" + (" AND _turns_fts.session_id = ?" if sid is not None else "")
                   + " ORDER BY rank LIMIT ?")
            try:
                return list(self._iter_rows(sql, (match, sid, limit) if sid is not None else (match, limit)))
            except apsw.SQLError as exc:       # FTS5 could not read the query (words queries are always read)
                raise QueryError(f"query: {query!r} is not an FTS5 query ({exc})") from None
            except apsw.Error as exc:
                raise db.sqlite_error(exc, self.path, "search_turns") from None

    def _scan(self, words: list[str], sid: str | None, limit: int) -> list[dict]:
        """The words query without the index: every turn read (newest first)."""
        wanted = [_fold(w) for w in words]
        out: list[dict] = []
        sql = "SELECT * FROM conversation_turns" + (" WHERE session_id = ?" if sid is not None else "") + \
            " ORDER BY rowid DESC"
        for row in self._iter(sql, (sid,) if sid is not None else ()):
            content = row["content"] if isinstance(row["content"], str) else ""
            have = {_fold(w) for w in _WORD.findall(content)}
            if all(w in have for w in wanted):
                row["rank"] = None
                row["snippet"] = None
                out.append(row)
                if len(out) >= limit:
                    break
        return out


def _fold(word: str) -> str:
    """A word as FTS5's unicode61 tokenizer with remove_diacritics 2 compares it: case folded, accents dropped."""
    return "".join(c for c in unicodedata.normalize("NFKD", word.casefold()) if not unicodedata.combining(c))
